#include "progress.h"

#include <cmath>
#include <string>
#include <vector>
// CppUTest last: its operator-new macro breaks standard headers included after it.
#include <CppUTest/TestHarness.h>

using namespace shoal;

namespace {

Json item(const std::string& path, uint64_t done, uint64_t total, double rate_bps = -1,
          const char* state = "chunks") {
  Json j{{"share", "s"}, {"path", path}, {"done", done}, {"total", total}, {"state", state}};
  if (rate_bps >= 0) j["rate_bps"] = rate_bps;
  return j;
}

Json reply(std::vector<Json> items) {
  Json arr = Json::array();
  for (auto& i : items) arr.push_back(std::move(i));
  return Json{{"ok", true}, {"transfers", arr}};
}

size_t columns(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

}  // namespace

TEST_GROUP(Progress){};

TEST(Progress, EtaFormat) {
  STRCMP_EQUAL("--:--", format_eta(-1).c_str());
  STRCMP_EQUAL("--:--", format_eta(NAN).c_str());
  STRCMP_EQUAL("--:--", format_eta(100.0 * 3600).c_str());
  STRCMP_EQUAL("0:00", format_eta(0).c_str());
  STRCMP_EQUAL("0:07", format_eta(6.2).c_str());  // rounds up: never "0:00" while bytes remain
  STRCMP_EQUAL("12:34", format_eta(754).c_str());
  STRCMP_EQUAL("1:02:03", format_eta(3723).c_str());
}

TEST(Progress, BarLinesAndTotal) {
  ProgressState st;
  progress_update(&st, reply({item("big.iso", 420, 1000, 8000), item("a/small.bin", 0, 3000, 8000)}), 0);
  std::vector<std::string> l = progress_lines(st, 64);
  LONGS_EQUAL(3, l.size());
  // Sorted by share/path; names padded to one column, bars as wide as fits.
  STRCMP_EQUAL("a/small.bin     [..............]   0%     1000 B/s ETA 0:03", l[0].c_str());
  STRCMP_EQUAL("big.iso         [#####.........]  42%     1000 B/s ETA 0:01", l[1].c_str());
  STRCMP_EQUAL("total (2 files) [#.............]  10%    2.0 KiB/s ETA 0:02", l[2].c_str());
  for (const auto& line : l) CHECK(columns(line) <= 63);
}

TEST(Progress, RateIsTheSmoothedDeltaOverTime) {
  ProgressState st;
  progress_update(&st, reply({item("f", 0, 100u << 20, 8000)}), 1000);  // seeded: 1000 B/s
  DOUBLES_EQUAL(1000, st.tracks.begin()->second.rate, 0.01);
  progress_update(&st, reply({item("f", 5000, 100u << 20, 8000)}), 2000);
  DOUBLES_EQUAL(5000, st.tracks.begin()->second.rate, 0.01);  // measured: the seed is gone
  progress_update(&st, reply({item("f", 6000, 100u << 20, 8000)}), 3000);
  // One second at 1000 B/s with a 2 s time constant: 5000 - (1 - e^-0.5) * 4000.
  DOUBLES_EQUAL(5000 - (1 - std::exp(-0.5)) * 4000, st.tracks.begin()->second.rate, 0.01);
  uint64_t done = 6000;
  for (uint64_t t = 3500; t <= 30000; t += 500) {
    done += 512 * 1024;  // 1 MiB/s
    progress_update(&st, reply({item("f", done, 100u << 20, 8000)}), t);
  }
  DOUBLES_EQUAL(1024.0 * 1024, st.tracks.begin()->second.rate, 1024);
  std::string line = progress_lines(st, 80)[0];
  STRCMP_CONTAINS(" ETA 1:1", line.c_str());  // about 72 MiB left at 1 MiB/s
  // A snapshot at the same instant changes nothing; a restarted transfer is seeded again.
  progress_update(&st, reply({item("f", done, 100u << 20, 8000)}), 30000);
  DOUBLES_EQUAL(1024.0 * 1024, st.tracks.begin()->second.rate, 1024);
  progress_update(&st, reply({item("f", 10, 100u << 20, 16000)}), 30500);
  DOUBLES_EQUAL(2000, st.tracks.begin()->second.rate, 0.01);
}

TEST(Progress, UnknownRatePausedAndGone) {
  ProgressState st;
  progress_update(&st, reply({item("x", 10, 100), item("y", 10, 100, 800, "paused")}), 0);
  std::vector<std::string> l = progress_lines(st, 80);
  STRCMP_CONTAINS("  10%            - ETA --:--", l[0].c_str());
  STRCMP_CONTAINS(" ETA paused", l[1].c_str());
  progress_update(&st, reply({}), 500);
  CHECK_TRUE(st.tracks.empty());
  l = progress_lines(st, 80);
  LONGS_EQUAL(1, l.size());
  STRCMP_EQUAL("no transfers", l[0].c_str());
  progress_update(&st, Json{{"ok", true}, {"transfers", "odd"}}, 600);  // another version's reply
  CHECK_TRUE(st.tracks.empty());
}

TEST(Progress, NarrowTerminalsAndHostileNames) {
  ProgressState st;
  std::string evil = "dir/\x1b[2Jvery-long-name-that-does-not-fit-anywhere-at-all.bin";
  progress_update(&st, reply({item(evil, 1, 2, 80000)}), 0);
  for (size_t w : {20, 40, 64, 200}) {
    for (const std::string& line : progress_lines(st, w)) {
      CHECK(columns(line) <= w - 1);
      CHECK(line.find('\x1b') == std::string::npos);
    }
  }
  std::string wide = progress_lines(st, 200)[0];
  STRCMP_CONTAINS("dir/\\x1b[2Jvery-long", wide.c_str());
  std::string narrow = progress_lines(st, 64)[0];
  CHECK(narrow.rfind("...", 0) == 0);  // cut at the front: the file name stays
  STRCMP_CONTAINS("at-all.bin [", narrow.c_str());
}

TEST(Progress, PlainLinesOnlyWhenThePercentChanges) {
  ProgressState st;
  PlainMemo memo;
  progress_update(&st, reply({item("f", 0, 1000, 8000)}), 0);
  std::vector<std::string> c = progress_changes(st, &memo);
  LONGS_EQUAL(1, c.size());
  STRCMP_EQUAL("f 0% 1000 B/s ETA 0:01", c[0].c_str());
  progress_update(&st, reply({item("f", 5, 1000, 8000)}), 500);
  CHECK_TRUE(progress_changes(st, &memo).empty());  // still 0%
  progress_update(&st, reply({item("f", 500, 1000, 8000), item("g", 0, 10, 0)}), 1000);
  c = progress_changes(st, &memo);
  LONGS_EQUAL(3, c.size());
  STRCMP_CONTAINS("f 50% ", c[0].c_str());
  STRCMP_CONTAINS("g 0% 0 B/s ETA --:--", c[1].c_str());
  STRCMP_CONTAINS("total (2 files) 49% ", c[2].c_str());
  progress_update(&st, reply({}), 1500);
  c = progress_changes(st, &memo);
  LONGS_EQUAL(1, c.size());
  STRCMP_EQUAL("no transfers", c[0].c_str());
  CHECK_TRUE(progress_changes(st, &memo).empty());  // said once
}

TEST(Progress, RedrawMovesUpOverThePreviousFrame) {
  STRCMP_EQUAL("\r\x1b[Ja\nb\n", progress_redraw({"a", "b"}, 0).c_str());
  STRCMP_EQUAL("\x1b[3A\r\x1b[Jc\n", progress_redraw({"c"}, 3).c_str());
}

// Found by the control fuzzer: a reply with an absurd rate or done > total
// must render (clamped), not convert an out-of-range double.
TEST(Progress, AbsurdNumbersAreClamped) {
  ProgressState st;
  progress_update(&st, reply({item("f", 5000, 1000, 1.25e119)}), 0);
  std::vector<std::string> l = progress_lines(st, 80);
  LONGS_EQUAL(2, l.size());
  CHECK(l[0].find("100%") != std::string::npos);
  CHECK(l[0].find("/s") != std::string::npos);
}
