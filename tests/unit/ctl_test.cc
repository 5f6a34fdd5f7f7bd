#include "ctl.h"

#include <CppUTest/TestHarness.h>

#include <deque>
#include <sstream>

using namespace shoal;

namespace {

Result<CtlArgs> parse(std::initializer_list<const char*> args) {
  return parse_ctl_args(std::vector<std::string>(args.begin(), args.end()));
}

// A fake daemon: replies from a script, a clock that only sleep() advances.
struct FakeCtl {
  std::vector<Json> requests;
  std::deque<Result<Json>> replies;
  uint64_t clock = 1000;
  std::ostringstream out, err;
  CtlEnv env() {
    CtlEnv e;
    e.call = [this](const Json& req, int) -> Result<Json> {
      requests.push_back(req);
      if (replies.empty()) return make_error(Errc::internal, "script ran out");
      if (replies.size() == 1) return replies.front();  // the last reply repeats
      Result<Json> r = std::move(replies.front());  // no copy: some replies are huge
      replies.pop_front();
      return r;
    };
    e.now_ms = [this] { return clock; };
    e.sleep_ms = [this](uint64_t ms) { clock += ms; };
    e.out = &out;
    e.err = &err;
    return e;
  }
  int run(std::initializer_list<const char*> args) {
    Result<CtlArgs> a = parse(args);
    if (!a) FAIL(a.error().msg.c_str());
    return run_ctl_command(*a, env());
  }
};

Json pending_status(uint64_t ingest, uint64_t settle, uint64_t transfers) {
  return Json{{"ok", true},
              {"node", "box-a"},
              {"pending", {{"ingest", ingest}, {"settle", settle}, {"transfers", transfers}}}};
}

Json example_status() {
  return Json::parse(R"({"ok":true,"node":"box-a","version":"0.1.0","uptime_s":3725,
    "shares":[{"name":"default","path":"/srv/drop","files":3,"bytes":12345,"state":"ok"},
              {"name":"photos","path":"/srv/photos","files":120,"bytes":7,"state":"error: path missing"}],
    "store":{"chunks":10,"bytes":655360},
    "pending":{"ingest":1,"settle":2,"transfers":0},
    "peers":0,"drops":{"short":4,"bad_version":0}})");
}

}  // namespace

TEST_GROUP(Ctl){};

TEST(Ctl, WaitTimeoutAcceptsFractionalSeconds) {
  Result<CtlArgs> a = parse({"wait", "--timeout", "0.5"});
  CHECK_TRUE(a.ok());
  STRCMP_EQUAL("wait", a->cmd.c_str());
  CHECK_TRUE(a->has_timeout);
  LONGS_EQUAL(500, a->timeout_ms);
  STRCMP_EQUAL("0.5", a->timeout_text.c_str());
  LONGS_EQUAL(2000, parse({"--timeout=2", "wait"})->timeout_ms);
  LONGS_EQUAL(1250, parse_seconds("1.25").value());
  LONGS_EQUAL(1, parse_seconds("0.0001").value());  // never rounds down to "no time"
  LONGS_EQUAL(31536000000ULL, parse_seconds("31536000").value());
}

TEST(Ctl, BadSecondsAreRejected) {
  for (const char* bad : {"", "abc", "-1", "+1", "0", "0.0", "1e3", ".5", "5.", "1.2.3", "inf",
                          "nan", " 1", "1 ", "0x10", "31536001", "1.0000000001",
                          "99999999999999999999999"}) {
    if (parse_seconds(bad).ok()) FAIL((std::string("accepted '") + bad + "'").c_str());
  }
  CHECK_FALSE(parse({"wait", "--timeout"}).ok());
  CHECK_FALSE(parse({"wait", "--timeout", "soon"}).ok());
  STRCMP_CONTAINS("--timeout", parse({"wait", "--timeout", "-3"}).error().msg.c_str());
}

TEST(Ctl, OptionsAnywhereAndCommandArguments) {
  Result<CtlArgs> a = parse({"files", "--json", "-s", "/run/x.sock", "docs"});
  CHECK_TRUE(a.ok());
  STRCMP_EQUAL("files", a->cmd.c_str());
  STRCMP_EQUAL("docs", a->share.c_str());
  STRCMP_EQUAL("/run/x.sock", a->socket.c_str());
  CHECK_TRUE(a->json);
  Result<CtlArgs> b = parse({"-c", "/etc/other.conf", "rescan"});
  STRCMP_EQUAL("/etc/other.conf", b->config.c_str());
  CHECK_TRUE(b->config_given);
  CHECK_TRUE(b->share.empty());
  Result<CtlArgs> c = parse({"status"});
  STRCMP_EQUAL(kDefaultConfigPath, c->config.c_str());
  CHECK_FALSE(c->config_given);
  CHECK_TRUE(parse({"--help"})->help);
  CHECK_TRUE(parse({"bogus", "-h"})->help);
  CHECK_TRUE(parse({"--version"})->version);
}

TEST(Ctl, BadArgumentsAreUsageErrors) {
  STRCMP_CONTAINS("unknown command", parse({"frobnicate"}).error().msg.c_str());
  STRCMP_CONTAINS("no command", parse({}).error().msg.c_str());
  STRCMP_CONTAINS("unknown option", parse({"status", "--jsn"}).error().msg.c_str());
  STRCMP_CONTAINS("too many", parse({"status", "extra"}).error().msg.c_str());
  STRCMP_CONTAINS("too many", parse({"files", "a", "b"}).error().msg.c_str());
  STRCMP_CONTAINS("only applies", parse({"status", "--timeout", "1"}).error().msg.c_str());
  STRCMP_CONTAINS("not both", parse({"-c", "a.conf", "-s", "b.sock", "status"}).error().msg.c_str());
  STRCMP_CONTAINS("needs a value", parse({"status", "-s"}).error().msg.c_str());
  CHECK_FALSE(parse({"-s", "", "status"}).ok());
  CHECK_FALSE(parse({"files", ""}).ok());
}

TEST(Ctl, SocketOptionWinsOverConfig) {
  Result<CtlArgs> a = parse({"-s", "/tmp/x.sock", "status"});
  STRCMP_EQUAL("/tmp/x.sock", ctl_socket_path(*a).value().c_str());
}

TEST(Ctl, TableColumnsAreAligned) {
  std::string t = format_table({"NAME", "SIZE", "STATE"},
                               {{"a", "5", "ok"}, {"longer-name", "12345", "error: gone"}}, {1});
  STRCMP_EQUAL(
      "NAME          SIZE  STATE\n"
      "a                5  ok\n"
      "longer-name  12345  error: gone\n",
      t.c_str());
  // Width counts characters, not UTF-8 bytes.
  STRCMP_EQUAL("café  x\nab    y\n", format_table({}, {{"café", "x"}, {"ab", "y"}}).c_str());
}

TEST(Ctl, StatusHumanOutput) {
  STRCMP_EQUAL(
      "node     box-a\n"
      "version  0.1.0\n"
      "uptime   1h02m05s\n"
      "peers    0\n"
      "store    10 chunks, 655360 bytes (640.0 KiB)\n"
      "pending  ingest 1, settle 2, transfers 0\n"
      "drops    bad_version 0, short 4\n"
      "\n"
      "SHARE    PATH         FILES  BYTES  STATE\n"
      "default  /srv/drop        3  12345  ok\n"
      "photos   /srv/photos    120      7  error: path missing\n",
      format_status(example_status()).c_str());
}

TEST(Ctl, StatusToleratesMissingAndOddFields) {
  std::string s = format_status(Json{{"ok", true}, {"node", 5}, {"shares", "nope"}});
  STRCMP_CONTAINS("node     5\n", s.c_str());
  STRCMP_CONTAINS("uptime   -\n", s.c_str());
  STRCMP_CONTAINS("no shares\n", s.c_str());
}

TEST(Ctl, FilesHumanOutputEscapesPaths) {
  Json r = Json::parse(R"({"ok":true,"files":[
    {"share":"default","path":"a/b.txt","size":123,"chunks":1,"state":"stored","manifest":"ab"},
    {"share":"default","path":"evil\u001b[2Jname","size":1048576,"chunks":16,"state":"stored"}]})");
  STRCMP_EQUAL(
      "SHARE    PATH                SIZE  CHUNKS  STATE\n"
      "default  a/b.txt              123       1  stored\n"
      "default  evil\\x1b[2Jname  1048576      16  stored\n"
      "2 files, 1048699 bytes (1.0 MiB)\n",
      format_files(r).c_str());
  STRCMP_EQUAL("no files\n", format_files(Json{{"ok", true}, {"files", Json::array()}}).c_str());
}

TEST(Ctl, PeersAndTransfersHumanOutput) {
  Json peers = Json::parse(R"({"ok":true,"peers":[{"name":"box-b","addr":"10.0.0.2:7788",
    "share":"default","last_heard_ms":1500,"rtt_ms":0.42,"loss":0.01,"have":0.5}]})");
  STRCMP_EQUAL(
      "NAME   ADDR           SHARE    LAST HEARD     RTT  LOSS   HAVE\n"
      "box-b  10.0.0.2:7788  default    1.5s ago  0.4 ms  1.0%  50.0%\n",
      format_peers(peers).c_str());
  Json tr = Json::parse(R"({"ok":true,"transfers":[{"share":"default","path":"big.iso",
    "done":250,"total":1000,"rate_bps":12500000,"sources":["box-b","box-c"]}]})");
  STRCMP_EQUAL(
      "SHARE    PATH     DONE  TOTAL  PROGRESS         RATE  SOURCES\n"
      "default  big.iso   250   1000     25.0%  12.5 Mbit/s  box-b,box-c\n",
      format_transfers(tr).c_str());
  STRCMP_EQUAL("no peers\n", format_peers(Json{{"ok", true}}).c_str());
}

TEST(Ctl, JsonOutputIsTheReplyWithoutOk) {
  std::string out = format_json(example_status());
  Json back = Json::parse(out);
  CHECK_FALSE(back.contains("ok"));
  Json expect = example_status();
  expect.erase("ok");
  CHECK_TRUE(back == expect);
  CHECK_EQUAL('\n', out.back());
}

TEST(Ctl, DisplayEscapeAndHumanUnits) {
  STRCMP_EQUAL("a\\x1b[31mb\\x0a\\x5c", display_escape("a\x1b[31mb\n\\").c_str());
  STRCMP_EQUAL("café/日本", display_escape("café/日本").c_str());
  STRCMP_EQUAL("x\\xc2\\x9by", display_escape("x\xc2\x9by").c_str());  // C1 CSI
  STRCMP_EQUAL("0 B", human_size(0).c_str());
  STRCMP_EQUAL("1023 B", human_size(1023).c_str());
  STRCMP_EQUAL("1.5 KiB", human_size(1536).c_str());
  STRCMP_EQUAL("16.0 EiB", human_size(UINT64_MAX).c_str());
  STRCMP_EQUAL("12s", human_duration(12).c_str());
  STRCMP_EQUAL("3m05s", human_duration(185).c_str());
  STRCMP_EQUAL("2h03m04s", human_duration(7384).c_str());
  STRCMP_EQUAL("2d00h01m", human_duration(2 * 86400 + 60).c_str());
}

TEST(Ctl, CommandsSendTheRightRequests) {
  FakeCtl f;
  f.replies.push_back(Json{{"ok", true}});
  LONGS_EQUAL(0, f.run({"rescan", "docs"}));
  STRCMP_EQUAL("rescan started\n", f.out.str().c_str());
  LONGS_EQUAL(0, f.run({"files"}));
  LONGS_EQUAL(0, f.run({"peers"}));
  LONGS_EQUAL(3, f.requests.size());
  CHECK_TRUE(f.requests[0] == Json({{"cmd", "rescan"}, {"share", "docs"}}));
  CHECK_TRUE(f.requests[1] == Json({{"cmd", "files"}}));
  CHECK_TRUE(f.requests[2] == Json({{"cmd", "peers"}}));
}

TEST(Ctl, StatusJsonPrintsOneDocument) {
  FakeCtl f;
  f.replies.push_back(example_status());
  LONGS_EQUAL(0, f.run({"status", "--json"}));
  Json doc = Json::parse(f.out.str());  // throws (test error) unless exactly one document
  STRCMP_EQUAL("box-a", doc["node"].get<std::string>().c_str());
  CHECK_FALSE(doc.contains("ok"));
  STRCMP_EQUAL("", f.err.str().c_str());
}

TEST(Ctl, DaemonErrorsGoToStderrWithExitOne) {
  FakeCtl f;
  f.replies.push_back(Json{{"ok", false}, {"error", "no such share \x1b"}});
  LONGS_EQUAL(1, f.run({"files", "nope"}));
  STRCMP_EQUAL("shoalctl: no such share \\x1b\n", f.err.str().c_str());
  STRCMP_EQUAL("", f.out.str().c_str());

  FakeCtl g;
  g.replies.push_back(make_error(Errc::not_found, "shoald is not running (no socket at /x)"));
  LONGS_EQUAL(1, g.run({"status"}));
  STRCMP_EQUAL("shoalctl: shoald is not running (no socket at /x)\n", g.err.str().c_str());

  FakeCtl h;
  h.replies.push_back(Json{{"node", "x"}});  // no "ok"
  LONGS_EQUAL(1, h.run({"status"}));
  STRCMP_CONTAINS("malformed", h.err.str().c_str());
}

TEST(Ctl, WaitNeedsTwoIdlePollsInARow) {
  FakeCtl f;
  f.replies = {pending_status(2, 0, 0), pending_status(0, 0, 0), pending_status(0, 1, 0),
               pending_status(0, 0, 1), pending_status(0, 0, 0)};  // last one repeats
  LONGS_EQUAL(0, f.run({"wait"}));
  LONGS_EQUAL(6, f.requests.size());
  CHECK_TRUE(f.requests[0] == Json({{"cmd", "status"}}));
  LONGS_EQUAL(1000 + 5 * 50, f.clock);  // polled every 50 ms
  STRCMP_EQUAL("", f.out.str().c_str());
  STRCMP_EQUAL("", f.err.str().c_str());
}

TEST(Ctl, WaitTimesOutWithPendingCount) {
  FakeCtl f;
  f.replies = {pending_status(1, 1, 1)};
  LONGS_EQUAL(1, f.run({"wait", "--timeout", "0.5"}));
  STRCMP_EQUAL("shoalctl: timed out after 0.5 s with 3 pending\n", f.err.str().c_str());
  LONGS_EQUAL(1500, f.clock);
  LONGS_EQUAL(11, f.requests.size());
}

TEST(Ctl, WaitWithoutTimeoutKeepsWaiting) {
  FakeCtl f;
  for (int i = 0; i < 3000; ++i) f.replies.push_back(pending_status(1, 0, 0));  // 2.5 minutes busy
  f.replies.push_back(pending_status(0, 0, 0));
  LONGS_EQUAL(0, f.run({"wait", "--json"}));
  Json doc = Json::parse(f.out.str());
  LONGS_EQUAL(0, doc["pending"]["ingest"].get<int>());
}

TEST(Ctl, WaitFailsOnAMalformedOrFailedStatus) {
  FakeCtl f;
  f.replies = {Json{{"ok", true}, {"pending", {{"ingest", 0}}}}};
  LONGS_EQUAL(1, f.run({"wait"}));
  STRCMP_CONTAINS("pending", f.err.str().c_str());
  FakeCtl g;
  g.replies = {pending_status(1, 0, 0), make_error(Errc::io, "shoald closed the connection")};
  LONGS_EQUAL(1, g.run({"wait"}));
  STRCMP_EQUAL("shoalctl: shoald closed the connection\n", g.err.str().c_str());
}

// A process squatting on the socket can send "[[[[..." up to the reply size
// limit; nlohmann's copy and dump recurse once per level.
TEST(Ctl, DeeplyNestedReplyIsRefusedNotACrash) {
  // Never copied: a copy alone would overflow the stack.
  auto nested = [](size_t depth) {
    return Json::parse("{\"ok\":true,\"node\":" + std::string(depth, '[') +
                       std::string(depth, ']') + "}");
  };
  FakeCtl f;
  f.replies.push_back(nested(200000));
  f.replies.push_back(Json{{"ok", true}});
  LONGS_EQUAL(1, f.run({"status", "--json"}));
  STRCMP_EQUAL("shoalctl: malformed reply from shoald (nested too deeply)\n", f.err.str().c_str());
  STRCMP_EQUAL("", f.out.str().c_str());
  const Json deep = nested(200000);
  STRCMP_EQUAL("{\"error\": \"reply nested too deeply\"}\n", format_json(deep).c_str());
  STRCMP_CONTAINS("node     -\n", format_status(deep).c_str());

  FakeCtl g;
  g.replies.push_back(nested(63));  // 64 levels with the outer object
  LONGS_EQUAL(0, g.run({"status", "--json"}));
  CHECK_TRUE(Json::parse(g.out.str())["node"].is_array());
  CHECK_TRUE(format_json(nested(64)).find("too deeply") != std::string::npos);
}

// ---- live progress, doctor ----

namespace {

Json transfers_reply(uint64_t done, uint64_t total) {
  return Json{{"ok", true},
              {"transfers", Json::array({Json{{"share", "s"}, {"path", "big.iso"}, {"done", done},
                                              {"total", total}, {"rate_bps", 8000000},
                                              {"state", "chunks"}}})}};
}

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Ctl, WatchAndProgressOptionsBelongToTheirCommands) {
  CHECK_TRUE(parse({"transfers", "--watch"})->watch);
  CHECK_TRUE(parse({"wait", "--progress", "--timeout", "3"})->progress);
  CHECK_TRUE(parse({"doctor", "--json"})->json);
  STRCMP_CONTAINS("only applies", parse({"status", "--watch"}).error().msg.c_str());
  STRCMP_CONTAINS("only applies", parse({"transfers", "--progress"}).error().msg.c_str());
  STRCMP_CONTAINS("do not mix", parse({"wait", "--progress", "--json"}).error().msg.c_str());
  STRCMP_CONTAINS("too many", parse({"doctor", "x"}).error().msg.c_str());
}

TEST(Ctl, WatchRedrawsInPlaceOnATerminalUntilStopped) {
  FakeCtl f;
  f.replies = {transfers_reply(0, 1000000), transfers_reply(250000, 1000000),
               transfers_reply(500000, 1000000)};
  CtlEnv env = f.env();
  env.tty = true;
  env.width = [] { return size_t{100}; };
  env.stopped = [&f] { return f.requests.size() >= 3; };
  Result<CtlArgs> a = parse({"transfers", "--watch"});
  LONGS_EQUAL(0, run_ctl_command(*a, env));
  LONGS_EQUAL(3, f.requests.size());
  CHECK_TRUE(f.requests[0] == Json({{"cmd", "transfers"}}));
  LONGS_EQUAL(1000 + 3 * 500, f.clock);  // a frame every 500 ms
  std::string out = f.out.str();
  STRCMP_CONTAINS("  0% ", out.c_str());
  STRCMP_CONTAINS(" 25% ", out.c_str());
  STRCMP_CONTAINS(" 50% ", out.c_str());
  LONGS_EQUAL(2, count_of(out, "\x1b[2A"));  // two lines (file, total) moved over twice
  LONGS_EQUAL(3, count_of(out, "\x1b[J"));
}

TEST(Ctl, WatchPrintsPlainLinesWithoutATerminal) {
  FakeCtl f;
  f.replies = {transfers_reply(0, 1000), transfers_reply(0, 1000), transfers_reply(500, 1000),
               Json{{"ok", true}, {"transfers", Json::array()}}};
  CtlEnv env = f.env();
  env.stopped = [&f] { return f.requests.size() >= 5; };
  LONGS_EQUAL(0, run_ctl_command(parse({"transfers", "--watch"}).value(), env));
  std::string out = f.out.str();
  LONGS_EQUAL(std::string::npos, out.find('\x1b'));
  LONGS_EQUAL(1, count_of(out, "big.iso 0% "));  // unchanged percent: no new line
  LONGS_EQUAL(1, count_of(out, "big.iso 50% "));
  LONGS_EQUAL(1, count_of(out, "no transfers\n"));
}

TEST(Ctl, WatchStopsOnAClosedPipeAndFailsWithoutADaemon) {
  FakeCtl f;
  f.replies = {transfers_reply(1, 2)};
  CtlEnv env = f.env();
  f.out.setstate(std::ios::badbit);  // what a write to a closed pipe leaves
  LONGS_EQUAL(0, run_ctl_command(parse({"transfers", "--watch"}).value(), env));
  LONGS_EQUAL(1, f.requests.size());

  FakeCtl g;
  g.replies = {make_error(Errc::not_found, "shoald is not running (no socket at /x)")};
  LONGS_EQUAL(1, g.run({"transfers", "--watch"}));
  STRCMP_EQUAL("shoalctl: shoald is not running (no socket at /x)\n", g.err.str().c_str());
}

TEST(Ctl, WatchJsonPrintsOneReplyPerLine) {
  FakeCtl f;
  f.replies = {transfers_reply(1, 2), transfers_reply(2, 2)};
  CtlEnv env = f.env();
  env.tty = true;  // --json never draws
  env.stopped = [&f] { return f.requests.size() >= 2; };
  LONGS_EQUAL(0, run_ctl_command(parse({"transfers", "--watch", "--json"}).value(), env));
  std::istringstream in(f.out.str());
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    Json j = Json::parse(line);
    CHECK_FALSE(j.contains("ok"));
    CHECK_TRUE(j["transfers"].is_array());
    ++n;
  }
  LONGS_EQUAL(2, n);
}

TEST(Ctl, WaitProgressShowsTransfersAndPending) {
  FakeCtl f;
  f.replies = {pending_status(0, 0, 1), transfers_reply(400, 1000), pending_status(0, 0, 0),
               pending_status(0, 0, 0), Json{{"ok", true}, {"transfers", Json::array()}}};
  LONGS_EQUAL(0, f.run({"wait", "--progress"}));
  std::string out = f.out.str();
  STRCMP_CONTAINS("big.iso 40% ", out.c_str());
  STRCMP_CONTAINS("pending: ingest 0, settle 0, transfers 1\n", out.c_str());
  STRCMP_CONTAINS("no transfers\n", out.c_str());
  STRCMP_CONTAINS("pending: ingest 0, settle 0, transfers 0\n", out.c_str());
}

TEST(Ctl, WaitIsInterruptible) {
  FakeCtl f;
  f.replies = {pending_status(1, 0, 0)};
  CtlEnv env = f.env();
  env.stopped = [] { return true; };
  LONGS_EQUAL(130, run_ctl_command(parse({"wait"}).value(), env));
  LONGS_EQUAL(1, f.requests.size());
}

TEST(Ctl, DoctorExitsOneOnFindingsAndPrintsJsonOnRequest) {
  Json healthy = Json::parse(R"({"ok":true,"store":"ok","network":"ok","shares":[{"name":"s",
    "state":"ok","key_file":"/k","key_mode":384}]})");
  FakeCtl f;
  f.replies = {healthy};
  LONGS_EQUAL(0, f.run({"doctor"}));
  CHECK_TRUE(f.requests[0] == Json({{"cmd", "doctor"}}));
  STRCMP_EQUAL("ok: share s: key file /k is private (mode 0600)\n", f.out.str().c_str());

  Json open_key = healthy;
  open_key["shares"][0]["key_mode"] = 0644;
  FakeCtl g;
  g.replies = {open_key};
  LONGS_EQUAL(1, g.run({"doctor"}));
  STRCMP_CONTAINS("fail: share s: key file /k is open to group or others (mode 0644) -> chmod 600 /k\n",
                  g.out.str().c_str());
  FakeCtl h;
  h.replies = {open_key};
  LONGS_EQUAL(1, h.run({"doctor", "--json"}));
  LONGS_EQUAL(0644, Json::parse(h.out.str())["shares"][0]["key_mode"].get<int>());
}

TEST(Ctl, EveryDataCommandPrintsJson) {
  for (const char* cmd : {"status", "files", "peers", "transfers", "rescan", "doctor"}) {
    FakeCtl f;
    f.replies = {Json{{"ok", true}, {"answer", cmd}, {"pending", {{"ingest", 0}, {"settle", 0}, {"transfers", 0}}}}};
    f.run({cmd, "--json"});
    Json j = Json::parse(f.out.str());
    STRCMP_EQUAL(cmd, j["answer"].get<std::string>().c_str());
  }
}
