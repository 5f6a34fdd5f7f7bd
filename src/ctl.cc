#include "ctl.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <ostream>
#include <unistd.h>

#include "config.h"
#include "doctor.h"
#include "parse.h"
#include "progress.h"

namespace shoal {
namespace {

constexpr uint64_t kMaxWaitSeconds = 365ULL * 24 * 3600;
constexpr uint64_t kWaitPollMs = 50;
constexpr uint64_t kDrawMs = 500;  // progress frames, and --watch polls
constexpr uint64_t kCallTimeoutMs = 10000;
// Real replies nest 3 or 4 levels. nlohmann copies and dumps recursively, so
// a hostile reply ("[[[[...", up to kMaxControlResponse bytes) nested deeper
// would overflow the stack.
constexpr size_t kMaxReplyDepth = 64;

const char* const kCommands[] = {"status", "files", "wait", "rescan", "peers", "transfers",
                                 "reload", "doctor"};

bool known_command(const std::string& c) {
  return std::find(std::begin(kCommands), std::end(kCommands), c) != std::end(kCommands);
}

// ---- argument parsing ----

// Matches "--name VALUE", "--name=VALUE" and (when `short_name`) "-x VALUE";
// advances *i past the value. Returns nullopt when args[*i] is not this option.
std::optional<Result<std::string>> take_value(const std::vector<std::string>& args, size_t* i,
                                              const std::string& long_name,
                                              const char* short_name) {
  const std::string& a = args[*i];
  if (a.rfind(long_name + "=", 0) == 0) return Result<std::string>(a.substr(long_name.size() + 1));
  if (a != long_name && (short_name == nullptr || a != short_name)) return std::nullopt;
  if (*i + 1 >= args.size())
    return Result<std::string>(make_error(Errc::invalid, "option " + a + " needs a value"));
  ++*i;
  return Result<std::string>(args[*i]);
}

Status check_positionals(CtlArgs* a, const std::vector<std::string>& pos) {
  if (pos.empty()) return make_error(Errc::invalid, "no command given");
  a->cmd = pos[0];
  if (!known_command(a->cmd)) return make_error(Errc::invalid, "unknown command '" + a->cmd + "'");
  size_t max_extra = (a->cmd == "files" || a->cmd == "rescan") ? 1 : 0;
  if (pos.size() - 1 > max_extra)
    return make_error(Errc::invalid, "too many arguments for '" + a->cmd + "'");
  if (pos.size() == 2) {
    a->share = pos[1];
    if (a->share.empty()) return make_error(Errc::invalid, "empty share name");
  }
  if (a->has_timeout && a->cmd != "wait")
    return make_error(Errc::invalid, "--timeout only applies to 'wait'");
  if (a->watch && a->cmd != "transfers")
    return make_error(Errc::invalid, "--watch only applies to 'transfers'");
  if (a->progress && a->cmd != "wait")
    return make_error(Errc::invalid, "--progress only applies to 'wait'");
  if (a->progress && a->json)
    return make_error(Errc::invalid, "--progress and --json do not mix (--json prints the final status)");
  if (a->config_given && !a->socket.empty())
    return make_error(Errc::invalid, "use either -c or -s, not both");
  return {};
}

// ---- safe access to reply fields (a reply may come from another version) ----

// True if nothing in `j` is nested more than `max` levels deep (a scalar is
// level 1). Iterative, unlike everything else nlohmann does on a whole tree.
bool depth_within(const Json& j, size_t max) {
  std::vector<std::pair<const Json*, size_t>> todo{{&j, 1}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (depth > max) return false;
    if (v->is_structured())
      for (const Json& child : *v) todo.emplace_back(&child, depth + 1);
  }
  return true;
}

const Json* field(const Json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

std::optional<uint64_t> u64_of(const Json& o, const char* key) {
  const Json* v = field(o, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  if (v->is_number_integer() && v->get<int64_t>() >= 0) return static_cast<uint64_t>(v->get<int64_t>());
  return std::nullopt;
}

std::optional<double> num_of(const Json& o, const char* key) {
  const Json* v = field(o, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

// A field as a display cell: strings escaped, numbers as JSON, else "-".
std::string cell(const Json& o, const char* key) {
  const Json* v = field(o, key);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return display_escape(v->get_ref<const std::string&>());
  if (v->is_number() || v->is_boolean()) return v->dump();
  return "-";
}

std::string u64_cell(const Json& o, const char* key) {
  auto v = u64_of(o, key);
  return v ? std::to_string(*v) : "-";
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string percent_cell(const Json& o, const char* key) {
  auto v = num_of(o, key);
  return v ? fmt("%.1f%%", *v * 100.0) : "-";
}

std::string rate_text(double bps) {
  static const char* const kUnits[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
  size_t u = 0;
  while (bps >= 1000.0 && u + 1 < std::size(kUnits)) {
    bps /= 1000.0;
    ++u;
  }
  return fmt(u == 0 ? "%.0f " : "%.1f ", bps) + kUnits[u];
}

const Json& array_of(const Json& r, const char* key) {
  static const Json kEmpty = Json::array();
  const Json* v = field(r, key);
  return v != nullptr && v->is_array() ? *v : kEmpty;
}

// "a 1, b 2" from an object of counters, known keys first in the given order.
std::string counters_line(const Json& o, const std::vector<const char*>& first) {
  std::string out;
  auto add = [&out](const std::string& k, const std::string& v) {
    if (!out.empty()) out += ", ";
    out += display_escape(k) + " " + v;
  };
  for (const char* k : first) add(k, u64_cell(o, k));
  if (o.is_object()) {
    for (auto it = o.begin(); it != o.end(); ++it) {
      if (std::find_if(first.begin(), first.end(), [&](const char* f) { return it.key() == f; }) ==
          first.end())
        add(it.key(), it->is_number() ? it->dump() : "-");
    }
  }
  return out;
}

size_t display_width(const std::string& s) {
  // Counts UTF-8 code points; double-width characters are not considered.
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// ---- commands ----

void print_error(const CtlEnv& env, const std::string& msg) {
  *env.err << "shoalctl: " << msg << "\n";
}

// Calls the daemon; on failure prints the error and returns nullopt.
std::optional<Json> call_ok(const CtlEnv& env, const Json& req, uint64_t timeout_ms) {
  Result<Json> r = env.call(req, static_cast<int>(timeout_ms));
  if (!r) {
    print_error(env, r.error().msg);
    return std::nullopt;
  }
  if (!depth_within(*r, kMaxReplyDepth)) {
    print_error(env, "malformed reply from shoald (nested too deeply)");
    return std::nullopt;
  }
  const Json* ok = field(*r, "ok");
  if (ok == nullptr || !ok->is_boolean()) {
    print_error(env, "malformed reply from shoald (no \"ok\")");
    return std::nullopt;
  }
  if (!ok->get<bool>()) {
    const Json* e = field(*r, "error");
    print_error(env, e != nullptr && e->is_string() ? display_escape(e->get_ref<const std::string&>())
                                                    : std::string("request failed"));
    return std::nullopt;
  }
  return std::move(*r);
}

std::optional<uint64_t> pending_total(const Json& status) {
  const Json* p = field(status, "pending");
  if (p == nullptr) return std::nullopt;
  uint64_t total = 0;
  for (const char* k : {"ingest", "settle", "transfers"}) {
    auto v = u64_of(*p, k);
    if (!v) return std::nullopt;
    total += *v;
  }
  return total;
}

bool stopped(const CtlEnv& env) { return env.stopped && env.stopped(); }

// Progress frames on `env.out`: redrawn in place on a terminal, else only the
// lines that changed.
class ProgressView {
 public:
  explicit ProgressView(const CtlEnv& env) : env_(env) {}
  // Shows a `transfers` reply and `extra` lines below it; false once output
  // fails (e.g. the reading end of a pipe went away).
  bool draw(const Json& transfers, const std::vector<std::string>& extra) {
    progress_update(&state_, transfers, env_.now_ms());
    if (env_.tty) {
      std::vector<std::string> lines = progress_lines(state_, env_.width ? env_.width() : 80);
      lines.insert(lines.end(), extra.begin(), extra.end());
      *env_.out << progress_redraw(lines, drawn_);
      drawn_ = lines.size();
    } else {
      for (const std::string& l : progress_changes(state_, &memo_)) *env_.out << l << "\n";
      if (extra != last_extra_)
        for (const std::string& l : extra) *env_.out << l << "\n";
      last_extra_ = extra;
    }
    env_.out->flush();
    return env_.out->good();
  }

 private:
  const CtlEnv& env_;
  ProgressState state_;
  PlainMemo memo_;
  size_t drawn_ = 0;
  std::vector<std::string> last_extra_;
};

// transfers --watch: a frame every kDrawMs until Ctrl-C or a closed pipe;
// with --json one compact reply per line instead.
int run_watch(const CtlArgs& a, const CtlEnv& env) {
  ProgressView view(env);
  for (;;) {
    std::optional<Json> r = call_ok(env, Json{{"cmd", "transfers"}}, kCallTimeoutMs);
    if (!r) return 1;
    if (a.json) {
      r->erase("ok");
      *env.out << r->dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
      env.out->flush();
    } else {
      view.draw(*r, {});
    }
    if (!env.out->good()) return 0;
    env.sleep_ms(kDrawMs);
    if (stopped(env)) return 0;
  }
}

// wait --progress: the transfers and what else is pending, every kDrawMs.
bool draw_wait(ProgressView* view, const CtlEnv& env, const Json& status) {
  std::optional<Json> t = call_ok(env, Json{{"cmd", "transfers"}}, kCallTimeoutMs);
  if (!t) return false;
  const Json* p = field(status, "pending");
  std::string line = "pending: " + counters_line(p != nullptr ? *p : Json::object(),
                                                 {"ingest", "settle", "transfers"});
  return view->draw(*t, {line});
}

int run_doctor(const CtlArgs& a, const CtlEnv& env) {
  std::optional<Json> r = call_ok(env, Json{{"cmd", "doctor"}}, kCallTimeoutMs);
  if (!r) return 1;
  std::vector<Finding> f = doctor_findings(*r);
  *env.out << (a.json ? format_json(*r) : format_findings(f));
  return findings_need_action(f) ? 1 : 0;
}

int run_wait(const CtlArgs& a, const CtlEnv& env) {
  const uint64_t start = env.now_ms();
  int idle_polls = 0;
  ProgressView view(env);
  std::optional<uint64_t> drawn_at;
  for (;;) {
    uint64_t elapsed = env.now_ms() - start;
    uint64_t call_ms = kCallTimeoutMs;
    if (a.has_timeout) call_ms = std::clamp(a.timeout_ms - std::min(elapsed, a.timeout_ms),
                                            kWaitPollMs, kCallTimeoutMs);
    std::optional<Json> r = call_ok(env, Json{{"cmd", "status"}}, call_ms);
    if (!r) return 1;
    std::optional<uint64_t> pending = pending_total(*r);
    if (!pending) {
      print_error(env, "malformed status reply (no pending counts)");
      return 1;
    }
    // Two idle polls in a row: one could fall between a file settling and
    // its ingest being queued.
    idle_polls = *pending == 0 ? idle_polls + 1 : 0;
    if (a.progress && (!drawn_at || env.now_ms() - *drawn_at >= kDrawMs || idle_polls >= 2)) {
      if (!draw_wait(&view, env, *r)) return 1;
      drawn_at = env.now_ms();
    }
    if (idle_polls >= 2) {
      if (a.json) *env.out << format_json(*r);
      return 0;
    }
    elapsed = env.now_ms() - start;
    if (*pending > 0 && a.has_timeout && elapsed >= a.timeout_ms) {
      print_error(env, "timed out after " + a.timeout_text + " s with " + std::to_string(*pending) +
                           " pending");
      return 1;
    }
    env.sleep_ms(kWaitPollMs);
    if (stopped(env)) return 130;
  }
}

Json build_request(const CtlArgs& a) {
  Json req{{"cmd", a.cmd}};
  if (!a.share.empty()) req["share"] = a.share;
  return req;
}

std::string format_reply(const std::string& cmd, const Json& r) {
  if (cmd == "status") return format_status(r);
  if (cmd == "files") return format_files(r);
  if (cmd == "peers") return format_peers(r);
  if (cmd == "transfers") return format_transfers(r);
  if (cmd == "rescan") return "rescan started\n";
  return "";
}

// A refused reload lists every FILE:LINE error, as `shoald -t` does.
int run_reload(const CtlArgs& a, const CtlEnv& env) {
  Result<Json> r = env.call(Json{{"cmd", "reload"}}, static_cast<int>(kCallTimeoutMs));
  const Json* errors = r && depth_within(*r, kMaxReplyDepth) ? field(*r, "errors") : nullptr;
  if (errors != nullptr && errors->is_array() && !errors->empty()) {
    for (const Json& e : *errors)
      if (e.is_string()) *env.err << display_escape(e.get_ref<const std::string&>()) << "\n";
    print_error(env, "config not reloaded; shoald keeps running the previous config");
    return 1;
  }
  CtlEnv replay = env;  // call_ok's checks, on the reply already in hand
  replay.call = [&r](const Json&, int) { return r; };
  std::optional<Json> ok = call_ok(replay, Json{}, 0);
  if (!ok) return 1;
  *env.out << (a.json ? format_json(*ok) : format_reload(*ok));
  return 0;
}

}  // namespace

// ---- public: parsing ----

Result<uint64_t> parse_seconds(std::string_view s) {
  Error bad = make_error(Errc::invalid, "invalid number of seconds '" + std::string(s) +
                                            "' (expected e.g. 5 or 0.5)");
  size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  if (whole.empty() || (dot != std::string_view::npos && frac.empty()) || frac.size() > 9)
    return bad;
  if (!std::all_of(frac.begin(), frac.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bad;
  Result<uint64_t> secs = parse_uint(whole, 0, kMaxWaitSeconds);
  if (!secs) return bad;
  uint64_t ms = *secs * 1000;
  std::string millis(frac.substr(0, 3));
  millis.resize(3, '0');
  ms += static_cast<uint64_t>((millis[0] - '0') * 100 + (millis[1] - '0') * 10 + (millis[2] - '0'));
  bool nonzero = *secs > 0 || frac.find_first_not_of('0') != std::string_view::npos;
  if (!nonzero) return make_error(Errc::invalid, "the timeout must be more than 0 seconds");
  if (ms > kMaxWaitSeconds * 1000) return bad;
  return std::max<uint64_t>(ms, 1);
}

Result<CtlArgs> parse_ctl_args(const std::vector<std::string>& args) {
  CtlArgs a;
  std::vector<std::string> pos;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    if (options_done || s.empty() || s[0] != '-' || s == "-") {
      pos.push_back(s);
      continue;
    }
    if (s == "--") options_done = true;
    else if (s == "-h" || s == "--help") a.help = true;
    else if (s == "--version") a.version = true;
    else if (s == "--json") a.json = true;
    else if (s == "--watch") a.watch = true;
    else if (s == "--progress") a.progress = true;
    else if (auto v = take_value(args, &i, "--config", "-c")) {
      if (!*v) return v->error();
      a.config = v->value();
      a.config_given = true;
      if (a.config.empty()) return make_error(Errc::invalid, "empty config path");
    } else if (auto v2 = take_value(args, &i, "--socket", "-s")) {
      if (!*v2) return v2->error();
      a.socket = v2->value();
      if (a.socket.empty()) return make_error(Errc::invalid, "empty socket path");
    } else if (auto v3 = take_value(args, &i, "--timeout", nullptr)) {
      if (!*v3) return v3->error();
      Result<uint64_t> ms = parse_seconds(v3->value());
      if (!ms) return make_error(Errc::invalid, "--timeout: " + ms.error().msg);
      a.has_timeout = true;
      a.timeout_ms = *ms;
      a.timeout_text = v3->value();
    } else {
      return make_error(Errc::invalid, "unknown option '" + s + "'");
    }
  }
  if (a.help || a.version) return a;
  if (Status st = check_positionals(&a, pos); !st) return st.error();
  return a;
}

std::string ctl_usage() {
  return "usage: shoalctl [-c CONFIG | -s SOCKET] COMMAND [ARGS] [--json]\n"
         "\n"
         "commands:\n"
         "  status               node, shares, store and pending work\n"
         "  files [SHARE]        stored files (of all shares, or of one)\n"
         "  wait [--timeout S]   wait until nothing is pending; exit 1 on timeout\n"
         "  wait --progress      the same, showing transfers as they go\n"
         "  rescan [SHARE]       rescan share folders for changes\n"
         "  peers                peers heard from\n"
         "  transfers [--watch]  transfers in progress; --watch: live progress bars\n"
         "  reload               re-read the config: shares, max_rate, log_level\n"
         "  doctor               check what usually goes wrong (multicast, inotify,\n"
         "                       disk space, key files, clocks); exit 1 on findings\n"
         "\n"
         "options:\n"
         "  -c, --config FILE    config naming the control socket (default " +
         std::string(kDefaultConfigPath) +
         ")\n"
         "  -s, --socket PATH    control socket to use instead of the config's\n"
         "  --json               print the daemon's reply as JSON (every command)\n"
         "  -h, --help           show this help\n"
         "  --version            show the version\n";
}

Result<std::string> ctl_socket_path(const CtlArgs& a) {
  if (!a.socket.empty()) return a.socket;
  // Without -c and without the default config, the daemon's default socket
  // is the best guess (e.g. a daemon started with a config elsewhere).
  if (!a.config_given && ::access(a.config.c_str(), F_OK) != 0 && errno == ENOENT)
    return Config{}.control_socket;
  ConfigLoad l = load_config(a.config);
  if (!l.ok()) {
    std::string msg;
    for (const ConfigError& e : l.errors) msg += (msg.empty() ? "" : "\n") + e.format();
    return make_error(Errc::invalid, msg);
  }
  return l.config.control_socket;
}

// ---- public: running ----

int run_ctl_command(const CtlArgs& a, const CtlEnv& env) {
  if (a.cmd == "wait") return run_wait(a, env);
  if (a.cmd == "reload") return run_reload(a, env);
  if (a.cmd == "transfers" && a.watch) return run_watch(a, env);
  if (a.cmd == "doctor") return run_doctor(a, env);
  std::optional<Json> r = call_ok(env, build_request(a), kCallTimeoutMs);
  if (!r) return 1;
  *env.out << (a.json ? format_json(*r) : format_reply(a.cmd, *r));
  return 0;
}

// ---- public: formatting ----

std::string display_escape(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  auto esc = [&out](unsigned char c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    unsigned char next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (c < 0x20 || c == 0x7f || c == '\\') {
      esc(c);
    } else if (c == 0xC2 && next >= 0x80 && next <= 0x9F) {  // C1 control (e.g. CSI)
      esc(c);
      esc(next);
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string human_size(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++u;
  }
  return fmt("%.1f ", v) + kUnits[u];
}

std::string human_duration(uint64_t s) {
  char buf[64];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llus", static_cast<unsigned long long>(s));
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%llum%02llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  else if (s < 86400)
    std::snprintf(buf, sizeof buf, "%lluh%02llum%02llus", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60),
                  static_cast<unsigned long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%llud%02lluh%02llum", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s % 86400 / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60));
  return buf;
}

std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::vector<size_t>& right) {
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&width](const std::vector<std::string>& row) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], display_width(row[c]));
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string pad(width[c] - display_width(row[c]), ' ');
      bool is_right = std::find(right.begin(), right.end(), c) != right.end();
      if (c > 0) out += "  ";
      out += is_right ? pad + row[c] : row[c] + pad;
    }
    out.erase(out.find_last_not_of(' ') + 1);
    return out + "\n";
  };
  std::string out = header.empty() ? "" : line(header);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string format_json(const Json& r) {
  if (!depth_within(r, kMaxReplyDepth)) return "{\"error\": \"reply nested too deeply\"}\n";
  Json copy = r;
  if (copy.is_object()) copy.erase("ok");
  return copy.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string format_status(const Json& r) {
  const Json* store = field(r, "store");
  const Json empty = Json::object();
  const Json& st = store != nullptr ? *store : empty;
  std::string store_line = u64_cell(st, "chunks") + " chunks, " + u64_cell(st, "bytes") + " bytes";
  if (auto b = u64_of(st, "bytes")) store_line += " (" + human_size(*b) + ")";
  auto uptime = u64_of(r, "uptime_s");
  std::vector<std::vector<std::string>> kv = {
      {"node", cell(r, "node")},
      {"version", cell(r, "version")},
      {"uptime", uptime ? human_duration(*uptime) : "-"},
      {"peers", u64_cell(r, "peers")},
      {"store", store_line},
  };
  const Json* pending = field(r, "pending");
  kv.push_back({"pending", counters_line(pending != nullptr ? *pending : empty,
                                         {"ingest", "settle", "transfers"})});
  const Json* drops = field(r, "drops");
  if (drops != nullptr && drops->is_object() && !drops->empty())
    kv.push_back({"drops", counters_line(*drops, {})});
  std::string out = format_table({}, kv);
  std::vector<std::vector<std::string>> rows;
  for (const Json& s : array_of(r, "shares"))
    rows.push_back({cell(s, "name"), cell(s, "path"), u64_cell(s, "files"), u64_cell(s, "bytes"),
                    cell(s, "state")});
  out += "\n";
  if (rows.empty()) return out + "no shares\n";
  return out + format_table({"SHARE", "PATH", "FILES", "BYTES", "STATE"}, rows, {2, 3});
}

std::string format_files(const Json& r) {
  std::vector<std::vector<std::string>> rows;
  uint64_t total = 0;
  for (const Json& f : array_of(r, "files")) {
    rows.push_back({cell(f, "share"), cell(f, "path"), u64_cell(f, "size"), u64_cell(f, "chunks"),
                    cell(f, "state")});
    total += u64_of(f, "size").value_or(0);
  }
  if (rows.empty()) return "no files\n";
  return format_table({"SHARE", "PATH", "SIZE", "CHUNKS", "STATE"}, rows, {2, 3}) +
         std::to_string(rows.size()) + (rows.size() == 1 ? " file, " : " files, ") +
         std::to_string(total) + " bytes (" + human_size(total) + ")\n";
}

std::string format_peers(const Json& r) {
  std::vector<std::vector<std::string>> rows;
  for (const Json& p : array_of(r, "peers")) {
    auto heard = num_of(p, "last_heard_ms");
    auto rtt = num_of(p, "rtt_ms");
    rows.push_back({cell(p, "name"), cell(p, "addr"), cell(p, "share"),
                    heard ? fmt("%.1fs ago", *heard / 1000.0) : "-",
                    rtt ? fmt("%.1f ms", *rtt) : "-", percent_cell(p, "loss"),
                    percent_cell(p, "have")});
  }
  if (rows.empty()) return "no peers\n";
  return format_table({"NAME", "ADDR", "SHARE", "LAST HEARD", "RTT", "LOSS", "HAVE"}, rows,
                      {3, 4, 5, 6});
}

std::string format_transfers(const Json& r) {
  std::vector<std::vector<std::string>> rows;
  for (const Json& t : array_of(r, "transfers")) {
    auto done = u64_of(t, "done");
    auto total = u64_of(t, "total");
    auto rate = num_of(t, "rate_bps");
    std::string progress = "-";
    if (done && total && *total > 0)
      progress = fmt("%.1f%%", static_cast<double>(*done) * 100.0 / static_cast<double>(*total));
    std::string sources;
    for (const Json& s : array_of(t, "sources"))
      if (s.is_string()) sources += (sources.empty() ? "" : ",") + display_escape(s.get_ref<const std::string&>());
    rows.push_back({cell(t, "share"), cell(t, "path"), u64_cell(t, "done"), u64_cell(t, "total"),
                    progress, rate ? rate_text(*rate) : "-", sources.empty() ? "-" : sources});
  }
  if (rows.empty()) return "no transfers\n";
  return format_table({"SHARE", "PATH", "DONE", "TOTAL", "PROGRESS", "RATE", "SOURCES"}, rows,
                      {2, 3, 4, 5});
}

std::string format_reload(const Json& r) {
  std::string out = "reloaded " + cell(r, "file") + "\n";
  bool any = false;
  auto list = [&](const char* key, const char* label) {
    std::string names;
    for (const Json& n : array_of(r, key)) {
      if (!n.is_string()) continue;
      names += (names.empty() ? "" : ", ") + display_escape(n.get_ref<const std::string&>());
    }
    if (names.empty()) return;
    out += std::string(label) + ": " + names + "\n";
    any = true;
  };
  list("added", "shares added");
  list("removed", "shares removed");
  list("changed", "shares restarted (settings changed)");
  list("updated", "applied");
  list("restart_needed", "not applied, restart shoald for");
  return any ? out : out + "no changes\n";
}

}  // namespace shoal
