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

# libevent_core + libevent_extra rather than libevent (both in one library)
# and libevent_pthreads without its .pc, which asks for libevent too: with
# both, every box mapped and relocated libevent's code twice.
PKGS     := libevent_core libevent_extra inih sqlite3 libcrypto libsystemd libisal
WARN     := -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion
CXXFLAGS += -std=c++20 $(OPT) $(WARN) -pthread -DSHOAL_VERSION='"$(VERSION)"' -Isrc
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent_core -levent_extra -linih -lsqlite3 -lcrypto -lsystemd -lisal) -levent_pthreads -pthread
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
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/testobj/%.o: tests/unit/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libshoal.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/shoald: $(BUILD)/obj/shoald.o $(BUILD)/libshoal.a
	$(CXX) $(LDFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/shoalctl: $(BUILD)/obj/shoalctl.o $(BUILD)/libshoal.a
	$(CXX) $(LDFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS)

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

MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system

# Man pages, the systemd unit (ExecStart pointed at PREFIX) and, unless one
# is there already, the system-wide config.
install: all install-man
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/shoald $(DESTDIR)$(PREFIX)/sbin/shoald
	install -m 0755 $(BUILD)/shoalctl $(DESTDIR)$(PREFIX)/bin/shoalctl
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/shoal
	sed 's|/usr/sbin/shoald|$(PREFIX)/sbin/shoald|' systemd/shoald.service > $(DESTDIR)$(UNITDIR)/shoald.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/shoald.service
	test -e $(DESTDIR)$(SYSCONFDIR)/shoal/shoal.conf || \
	  install -m 0644 packaging/shoal.conf $(DESTDIR)$(SYSCONFDIR)/shoal/shoal.conf

clean:
	rm -rf build build-san build-fuzz build-noaead

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BUILD)/obj/shoald.d $(BUILD)/obj/shoalctl.d

# ---- packaging ----------------------------------------------------------------
# `make deb`: build/shoal_VERSION_ARCH.deb from packaging/debian (installs
# missing build dependencies with apt-get, then runs lintian when present).
# `make test-deb` (root): install, check, purge, check nothing is left.
# `make check-unit`: systemd-analyze verify + security of systemd/shoald.service.
# `make check-man`: render the man pages with groff warnings as errors.
.PHONY: deb test-deb check-unit check-man install-man

deb:
	@bash packaging/build-deb.sh $(VERSION)

test-deb:
	@bash packaging/test-deb.sh $(VERSION)

check-unit: all
	@bash packaging/check-unit.sh $(BUILD)/shoald

check-man:
	@for f in man/*.[0-9]; do \
	  out=$$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z $$f 2>&1); \
	  if [ -n "$$out" ]; then echo "$$f:"; echo "$$out"; exit 1; fi; \
	  echo "ok    $$f"; done

install-man:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 man/shoalctl.1 $(DESTDIR)$(MANDIR)/man1/shoalctl.1
	install -m 0644 man/shoal.conf.5 $(DESTDIR)$(MANDIR)/man5/shoal.conf.5
	install -m 0644 man/shoald.8 $(DESTDIR)$(MANDIR)/man8/shoald.8

# ---- fuzzing (libFuzzer; needs clang) ----------------------------------------
# `make fuzz` builds tests/fuzz/*_fuzz.cc with clang into build-fuzz/ and runs
# each target for FUZZ_SECONDS over its seed corpus (tests/fuzz/corpus/NAME,
# read only; new inputs go to build-fuzz/corpus/NAME). Any crash, sanitizer
# report or failed assertion fails the make; the input is kept as
# build-fuzz/crash/NAME-*. FUZZ_ARGS adds libFuzzer flags, e.g.
# `make fuzz FUZZ_SECONDS=0 FUZZ_ARGS=-runs=1000000`.
# The sources are compiled with clang here: g++-built libshoal objects do not
# link reliably with clang's fuzzer runtime.
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
FUZZ_BUILD   := build-fuzz
FUZZ_FLAGS   := -std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined $(WARN) -pthread -DSHOAL_VERSION='"$(VERSION)"' -Isrc
FUZZ_TARGETS := wire manifest config control
FUZZ_LIB_SRCS:= wire crypto hash parse result log manifest config control ctl
FUZZ_LIB_SRCS+= doctor progress  # ctl.cc uses them
FUZZ_LIB_SRCS+= fileio          # config.cc writes files through it
FUZZ_LIB_OBJS:= $(FUZZ_LIB_SRCS:%=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%_fuzz)

$(FUZZ_BUILD)/obj/%.o: src/%.cc
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/obj/%_fuzz.o: tests/fuzz/%_fuzz.cc
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libshoal-fuzz.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/%_fuzz: $(FUZZ_BUILD)/obj/%_fuzz.o $(FUZZ_BUILD)/libshoal-fuzz.a
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crash || exit 1; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	  $(FUZZ_BUILD)/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash/$$t- $(FUZZ_ARGS) \
	    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t > $(FUZZ_BUILD)/$$t.log 2>&1 \
	    || { tail -n 40 $(FUZZ_BUILD)/$$t.log; echo "fuzz: $$t FAILED (log: $(FUZZ_BUILD)/$$t.log)"; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_BUILD)/$$t.log; \
	done; echo "fuzz: all targets ran without a crash"

# Regenerates the binary seeds (wire, manifest) from the encoders.
fuzz-corpus: $(BUILD)/libshoal.a
	@mkdir -p $(BUILD)/tools tests/fuzz/corpus/wire tests/fuzz/corpus/manifest
	$(CXX) $(CXXFLAGS) -o $(BUILD)/tools/gen_corpus tests/fuzz/gen_corpus.cc $(BUILD)/libshoal.a $(LDLIBS)
	$(BUILD)/tools/gen_corpus tests/fuzz/corpus

.PHONY: fuzz-build fuzz-corpus
-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/obj/%_fuzz.d)
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/obj/%_fuzz.o)

# Replication benchmark against uftp and udpcast on a namespace LAN (root).
# bench/replicate.sh documents the knobs; results go to build/bench/.
bench: all build-bench-noaead
	@bash scripts/deps.sh --bench
	RECEIVERS="1 3 7 15" SIZE_MB=256 RATES="off 1gbit" LOSSES="0 2" REPS=2 TIMEOUT=150 \
	  TOOLS="shoal shoal-noaead uftp udpcast" EXTRA="30:64:1gbit:1" PLOT=docs/bench.png \
	  bash bench/replicate.sh

bench-quick: all build-bench-noaead
	@bash scripts/deps.sh --bench
	RECEIVERS="1 3" SIZE_MB=64 RATES=1gbit LOSSES="0 2" REPS=1 TIMEOUT=120 \
	  PLOT=build/bench/bench-quick.png bash bench/replicate.sh

# ---- bench-only build without encryption ------------------------------------
# `make build-bench-noaead`: build-noaead/shoald with AES-256-GCM replaced by
# a copy and a fixed tag (-DSHOAL_BENCH_NULL_AEAD; packets keep their sizes),
# so bench/replicate.sh can measure what encryption costs (tool shoal-noaead).
# It refuses to start unless SHOAL_BENCH_UNSAFE=1, logs a loud warning when
# it runs, and its --version says so. It has a build dir of its own: install,
# deb and the tests never use it.
NOAEAD_BUILD := build-noaead
.PHONY: build-bench-noaead
build-bench-noaead:
	@$(MAKE) --no-print-directory BUILD=$(NOAEAD_BUILD) VERSION=$(VERSION)+null-aead-bench-only \
	  CPPFLAGS="$(CPPFLAGS) -DSHOAL_BENCH_NULL_AEAD" $(NOAEAD_BUILD)/shoald $(NOAEAD_BUILD)/shoalctl
