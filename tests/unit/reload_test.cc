#include "reload.h"

#include <CppUTest/TestHarness.h>

#include <sstream>
#include <string>
#include <vector>

#include "ctl.h"
#include "pacer.h"

using namespace shoal;

namespace {

const char* kHead =
    "[node]\nname = box-a\nstate_dir = /var/lib/shoal\nlog_level = info\n"
    "[net]\nbind = 0.0.0.0\nport = 7788\nmax_rate = 100mbit\n"
    "[control]\nsocket = /run/shoal/shoald.sock\n";
const char* kShareA = "[share a]\npath = /srv/a\ngroup = 239.1.1.1:7700\nkey_file = /k/a\n";
const char* kShareB = "[share b]\npath = /srv/b\ngroup = 239.1.1.2:7700\nkey_file = /k/b\n";

Config parse(const std::string& text) {
  ConfigLoad l = parse_config(text, "t.conf", "/etc/shoal");
  if (!l.ok()) FAIL(l.errors.front().format().c_str());
  return l.config;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// Replaces the first occurrence of `from` in `text`.
std::string edit(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  if (at == std::string::npos) FAIL(("no '" + from + "' to edit").c_str());
  return text.replace(at, from.size(), to);
}

// `shoalctl ARGS` against one canned reply; returns the exit status.
struct CtlRun {
  std::vector<Json> requests;
  std::ostringstream out, err;
  int run(std::vector<std::string> args, Result<Json> reply) {
    Result<CtlArgs> a = parse_ctl_args(args);
    if (!a) FAIL(a.error().msg.c_str());
    CtlEnv e;
    e.call = [this, &reply](const Json& req, int) -> Result<Json> {
      requests.push_back(req);
      return reply;
    };
    e.now_ms = [] { return uint64_t{0}; };
    e.sleep_ms = [](uint64_t) {};
    e.out = &out;
    e.err = &err;
    return run_ctl_command(*a, e);
  }
};

}  // namespace

TEST_GROUP(Reload){};

TEST(Reload, SameConfigIsNoChange) {
  std::string text = std::string(kHead) + kShareA + kShareB;
  // Comments and blank lines move the shares' line numbers, nothing else.
  std::string moved = "; edited\n\n" + std::string(kHead) + "\n" + kShareA + "# b\n" + kShareB;
  ConfigDiff d = diff_configs(parse(text), parse(moved));
  CHECK_TRUE(d.empty());
  STRCMP_EQUAL("no changes", reload_summary(d).c_str());
}

TEST(Reload, SharesAddedAndRemoved) {
  Config one = parse(std::string(kHead) + kShareA);
  Config other = parse(std::string(kHead) + kShareB);
  ConfigDiff d = diff_configs(one, other);
  STRCMP_EQUAL("b", joined(d.added).c_str());
  STRCMP_EQUAL("a", joined(d.removed).c_str());
  CHECK_TRUE(d.changed.empty());
  CHECK_TRUE(d.updated.empty());
  CHECK_TRUE(d.restart.empty());
  STRCMP_EQUAL("shares added: b; shares removed: a", reload_summary(d).c_str());
  ConfigDiff both = diff_configs(one, parse(std::string(kHead) + kShareB + kShareA));
  STRCMP_EQUAL("b", joined(both.added).c_str());
  CHECK_TRUE(both.removed.empty());
}

TEST(Reload, EveryShareSettingCountsAsAChange) {
  const std::string base = std::string(kHead) + kShareA + kShareB;
  const Config running = parse(base);
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"path = /srv/a", "path = /srv/a2"},
      {"group = 239.1.1.1:7700", "group = 239.1.1.1:7701"},
      {"group = 239.1.1.1:7700", "group = 239.1.1.9:7700"},
      {"key_file = /k/a", "key_file = /k/a2"},
      {"key_file = /k/a\n", "key_file = /k/a\nmode = sendonly\n"},
      {"key_file = /k/a\n", "key_file = /k/a\npeers = 10.0.0.1:7788\n"},
      {"key_file = /k/a\n", "key_file = /k/a\nsettle_ms = 900\n"},
      {"key_file = /k/a\n", "key_file = /k/a\norder = rarest\n"},
      {"key_file = /k/a\n", "key_file = /k/a\ndelete = propagate\n"},
      {"key_file = /k/a\n", "key_file = /k/a\nmax_file_size = 1m\n"},
      {"key_file = /k/a\n", "key_file = /k/a\nmax_files = 3\n"},
  };
  for (const auto& [from, to] : edits) {
    ConfigDiff d = diff_configs(running, parse(edit(base, from, to)));
    STRCMP_EQUAL_TEXT("a", joined(d.changed).c_str(), to.c_str());
    CHECK_TRUE_TEXT(d.added.empty() && d.removed.empty(), to.c_str());
  }
}

TEST(Reload, PeerListOrderAndLengthMatter) {
  const std::string base = std::string(kHead) + kShareA + "peers = 10.0.0.1:1, 10.0.0.2:1\n";
  const Config running = parse(base);
  CHECK_TRUE(diff_configs(running, parse(base)).empty());
  ConfigDiff swapped =
      diff_configs(running, parse(edit(base, "10.0.0.1:1, 10.0.0.2:1", "10.0.0.2:1, 10.0.0.1:1")));
  STRCMP_EQUAL("a", joined(swapped.changed).c_str());
  ConfigDiff shorter = diff_configs(running, parse(edit(base, ", 10.0.0.2:1", "")));
  STRCMP_EQUAL("a", joined(shorter.changed).c_str());
}

TEST(Reload, LogLevelAndMaxRateApplyInPlace) {
  const std::string base = std::string(kHead) + kShareA;
  std::string text = edit(edit(base, "log_level = info", "log_level = debug"), "max_rate = 100mbit",
                          "max_rate = 10mbit");
  const Config running = parse(base);
  ConfigDiff d = diff_configs(running, parse(text));
  STRCMP_EQUAL("node.log_level,net.max_rate", joined(d.updated).c_str());
  CHECK_TRUE(d.restart.empty());
  CHECK_TRUE(d.changed.empty());
  Config next = reloadable_config(running, parse(text));
  CHECK_TRUE(next.log_level == LogLevel::debug);
  LONGS_EQUAL(10000000, next.max_rate_bps);
}

TEST(Reload, RestartKeysAreReportedAndKeptAtTheRunningValue) {
  const std::string base = std::string(kHead) + kShareA;
  std::string text = base;
  text = edit(text, "name = box-a", "name = box-b");
  text = edit(text, "state_dir = /var/lib/shoal", "state_dir = /var/lib/other");
  text = edit(text, "bind = 0.0.0.0", "bind = 10.0.0.5");
  text = edit(text, "port = 7788", "port = 7799\ninterface = eth1\nmulticast = off");
  text = edit(text, "socket = /run/shoal/shoald.sock",
              "socket = /run/other.sock\nmetrics = 127.0.0.1:9477");
  text = edit(text, "max_rate = 100mbit", "max_rate = 5mbit");
  text += kShareB;
  const Config running = parse(base);
  const Config wanted = parse(text);
  ConfigDiff d = diff_configs(running, wanted);
  STRCMP_EQUAL(
      "node.name,node.state_dir,net.bind,net.interface,net.port,net.multicast,control.socket,"
      "control.metrics",
      joined(d.restart).c_str());
  STRCMP_EQUAL("net.max_rate", joined(d.updated).c_str());
  STRCMP_EQUAL("b", joined(d.added).c_str());

  Config next = reloadable_config(running, wanted);
  STRCMP_EQUAL("box-a", next.node_name.c_str());
  STRCMP_EQUAL("/var/lib/shoal", next.state_dir.c_str());
  STRCMP_EQUAL("0.0.0.0", next.bind.c_str());
  STRCMP_EQUAL("", next.interface.c_str());
  LONGS_EQUAL(7788, next.port);
  CHECK_TRUE(next.multicast);
  STRCMP_EQUAL("/run/shoal/shoald.sock", next.control_socket.c_str());
  STRCMP_EQUAL("", next.metrics.host.c_str());
  // The rest comes from the new file.
  LONGS_EQUAL(5000000, next.max_rate_bps);
  LONGS_EQUAL(2, next.shares.size());
  // Once running, the kept values no longer differ; the warning repeats only
  // for keys that still differ from what runs.
  ConfigDiff again = diff_configs(next, wanted);
  LONGS_EQUAL(8, again.restart.size());
  CHECK_TRUE(again.updated.empty() && again.added.empty());
}

TEST(Reload, ReplyListsEveryKind) {
  ConfigDiff d;
  d.added = {"b"};
  d.removed = {"a"};
  d.changed = {"c"};
  d.updated = {"net.max_rate"};
  d.restart = {"net.port"};
  nlohmann::json j = reload_reply("/etc/shoal/shoal.conf", d);
  CHECK_TRUE(j["ok"].get<bool>());
  STRCMP_EQUAL("/etc/shoal/shoal.conf", j["file"].get<std::string>().c_str());
  STRCMP_EQUAL("b", j["added"][0].get<std::string>().c_str());
  STRCMP_EQUAL("a", j["removed"][0].get<std::string>().c_str());
  STRCMP_EQUAL("c", j["changed"][0].get<std::string>().c_str());
  STRCMP_EQUAL("net.max_rate", j["updated"][0].get<std::string>().c_str());
  STRCMP_EQUAL("net.port", j["restart_needed"][0].get<std::string>().c_str());
  STRCMP_EQUAL(
      "shares added: b; shares removed: a; shares changed (restarted): c; updated: net.max_rate; "
      "need a restart (old value kept): net.port",
      reload_summary(d).c_str());
}

// max_rate reloads through RateController::set_limits.
TEST(Reload, RateLimitsMoveTheRateAtOnceDownAndStepwiseUp) {
  constexpr uint64_t kMs = 1000000ULL;
  RateController rc(RateConfig{});
  uint64_t now = 0;
  rc.tick(now);
  LONGS_EQUAL(1000000000ULL, rc.rate_bps());
  rc.set_limits(1000000ULL, 50000000ULL);
  LONGS_EQUAL(50000000ULL, rc.rate_bps());  // lowered: at once
  LONGS_EQUAL(50000000ULL, rc.config().max_rate_bps);
  rc.set_limits(1000000ULL, 200000000ULL);
  LONGS_EQUAL(50000000ULL, rc.rate_bps());  // raised: not in one jump
  for (int i = 0; i < 100; i++) rc.tick(now += 100 * kMs);
  LONGS_EQUAL(200000000ULL, rc.rate_bps());  // ...but it gets there
  rc.set_limits(5000000ULL, 1000000ULL);     // min above max is clamped
  CHECK_TRUE(rc.config().min_rate_bps <= rc.config().max_rate_bps);
  CHECK_TRUE(rc.rate_bps() <= 5000000ULL);
}

TEST(Reload, CtlPrintsTheSummary) {
  ConfigDiff d;
  d.added = {"b"};
  d.removed = {"a"};
  d.restart = {"net.port"};
  CtlRun c;
  LONGS_EQUAL(0, c.run({"reload"}, reload_reply("/etc/shoal/shoal.conf", d)));
  LONGS_EQUAL(1, c.requests.size());
  CHECK_TRUE(c.requests[0] == Json({{"cmd", "reload"}}));
  STRCMP_EQUAL(
      "reloaded /etc/shoal/shoal.conf\n"
      "shares added: b\n"
      "shares removed: a\n"
      "not applied, restart shoald for: net.port\n",
      c.out.str().c_str());
  STRCMP_EQUAL("", c.err.str().c_str());

  CtlRun same;
  LONGS_EQUAL(0, same.run({"reload"}, reload_reply("/x.conf", ConfigDiff{})));
  STRCMP_EQUAL("reloaded /x.conf\nno changes\n", same.out.str().c_str());
}

TEST(Reload, CtlJsonIsTheRawReply) {
  ConfigDiff d;
  d.changed = {"c"};
  CtlRun c;
  LONGS_EQUAL(0, c.run({"reload", "--json"}, reload_reply("/x.conf", d)));
  Json doc = Json::parse(c.out.str());
  STRCMP_EQUAL("c", doc["changed"][0].get<std::string>().c_str());
  CHECK_FALSE(doc.contains("ok"));
}

TEST(Reload, CtlRefusedReloadPrintsEveryErrorAndExitsOne) {
  Json reply = {{"ok", false},
                {"error", "/e/s.conf:3: unknown key 'pth' in [share a]\n/e/s.conf:9: x"},
                {"errors", {"/e/s.conf:3: unknown key 'pth' in [share a]", "/e/s.conf:9: x"}}};
  CtlRun c;
  LONGS_EQUAL(1, c.run({"reload"}, reply));
  STRCMP_EQUAL(
      "/e/s.conf:3: unknown key 'pth' in [share a]\n"
      "/e/s.conf:9: x\n"
      "shoalctl: config not reloaded; shoald keeps running the previous config\n",
      c.err.str().c_str());
  STRCMP_EQUAL("", c.out.str().c_str());

  CtlRun down;  // no daemon: the usual message, exit 1
  LONGS_EQUAL(1, down.run({"reload"}, make_error(Errc::not_found, "shoald is not running")));
  STRCMP_EQUAL("shoalctl: shoald is not running\n", down.err.str().c_str());
}

TEST(Reload, CtlReloadTakesNoArguments) {
  CHECK_TRUE(parse_ctl_args({"reload"}).ok());
  CHECK_FALSE(parse_ctl_args({"reload", "a"}).ok());
  CHECK_TRUE(ctl_usage().find("  reload ") != std::string::npos);
}
