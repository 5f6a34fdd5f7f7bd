# shoal: plain Makefile. `make`, `make test`, `make run`, `make install`.
# SAN=1 builds with AddressSanitizer + UBSan into build-san/.

CXX      ?= g++
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := 0.1.0

ifeq ($(SAN),1)
BUILD    := build-san
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN    := -fsanitize=address,undefined
else
BUILD    := build
OPT      := -O2 -g
LDSAN    :=
endif

PKGS     := libevent libevent_pthreads inih sqlite3 libcrypto libsystemd
WARN     := -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion
CXXFLAGS += -std=c++20 $(OPT) $(WARN) -pthread -DSHOAL_VERSION='"$(VERSION)"' -Isrc
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent -levent_pthreads -linih -lsqlite3 -lcrypto -lsystemd) -pthread
TESTLIBS := -lCppUTest -lCppUTestExt

MAINS    := src/shoald.cc src/shoalctl.cc
LIB_SRCS := $(filter-out $(MAINS),$(wildcard src/*.cc))
LIB_OBJS := $(LIB_SRCS:src/%.cc=$(BUILD)/obj/%.o)
TEST_SRCS:= $(wildcard tests/unit/*.cc)
TEST_OBJS:= $(TEST_SRCS:tests/unit/%.cc=$(BUILD)/testobj/%.o)

.PHONY: all deps run test unit tools test-unit test-config test-net install clean demo \
        bench bench-quick bench-ingest fuzz

all: $(BUILD)/shoald $(BUILD)/shoalctl

deps:
	@bash scripts/deps.sh

$(BUILD)/obj/%.o: src/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/testobj/%.o: tests/unit/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libshoal.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/shoald: $(BUILD)/obj/shoald.o $(BUILD)/libshoal.a
	$(CXX) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/shoalctl: $(BUILD)/obj/shoalctl.o $(BUILD)/libshoal.a
	$(CXX) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/unit_tests: $(TEST_OBJS) $(BUILD)/libshoal.a
	$(CXX) $(LDSAN) -o $@ $^ $(TESTLIBS) $(LDLIBS)

unit: $(BUILD)/unit_tests

# Small programs used only by tests and benchmarks (tests/tools/*.cc).
TOOL_SRCS:= $(wildcard tests/tools/*.cc)
TOOLS    := $(TOOL_SRCS:tests/tools/%.cc=$(BUILD)/tools/%)
$(BUILD)/tools/%: tests/tools/%.cc $(BUILD)/libshoal.a
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(LDSAN) -o $@ $< $(BUILD)/libshoal.a $(LDLIBS)
tools: $(TOOLS)

# Runs every suite (unit, config golden files, black-box daemon and network
# tests) and ends with one line "N passed, M failed".
test: deps all unit tools
	@BUILD=$(BUILD) bash tests/run_all.sh

test-unit: deps all unit
	@BUILD=$(BUILD) bash tests/run_all.sh unit

test-config: deps all
	@BUILD=$(BUILD) bash tests/run_all.sh config

test-net: deps all tools
	@BUILD=$(BUILD) bash tests/run_all.sh net

run: deps all
	@mkdir -p drop var
	$(BUILD)/shoald -c config/shoal.conf

demo: deps all
	bash scripts/demo.sh

bench-ingest: deps all
	bash bench/ingest.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/shoald $(DESTDIR)$(PREFIX)/sbin/shoald
	install -m 0755 $(BUILD)/shoalctl $(DESTDIR)$(PREFIX)/bin/shoalctl

clean:
	rm -rf build build-san

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BUILD)/obj/shoald.d $(BUILD)/obj/shoalctl.d

# Replication benchmark against uftp and udpcast on a namespace LAN (root).
# bench/replicate.sh documents the knobs; results go to build/bench/.
bench: all
	@bash scripts/deps.sh --bench
	RECEIVERS="1 3 7 15" SIZE_MB=256 RATES="off 1gbit" LOSSES="0 2" REPS=3 TIMEOUT=300 \
	  EXTRA="30:64:1gbit:1" PLOT=docs/bench.png bash bench/replicate.sh

bench-quick: all
	@bash scripts/deps.sh --bench
	RECEIVERS="1 3" SIZE_MB=64 RATES=1gbit LOSSES="0 2" REPS=1 TIMEOUT=120 \
	  PLOT=build/bench/bench-quick.png bash bench/replicate.sh
