#include "doctor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>

#include "ctl.h"

namespace shoal {
namespace {

using Level = Finding::Level;

// ---- tolerant access: the facts may come from another version ----

const Json* get(const Json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

std::optional<uint64_t> u64(const Json& o, const char* key) {
  const Json* v = get(o, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  if (v->is_number_integer() && v->get<int64_t>() >= 0) return static_cast<uint64_t>(v->get<int64_t>());
  return std::nullopt;
}

std::optional<double> num(const Json& o, const char* key) {
  const Json* v = get(o, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

bool flag(const Json& o, const char* key) {
  const Json* v = get(o, key);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

std::optional<std::string> str(const Json& o, const char* key) {
  const Json* v = get(o, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return display_escape(v->get_ref<const std::string&>());
}

const Json& arr(const Json& o, const char* key) {
  static const Json kEmpty = Json::array();
  const Json* v = get(o, key);
  return v != nullptr && v->is_array() ? *v : kEmpty;
}

const Json& obj(const Json& o, const char* key) {
  static const Json kEmpty = Json::object();
  const Json* v = get(o, key);
  return v != nullptr && v->is_object() ? *v : kEmpty;
}

std::string printf_str(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string seconds_text(uint64_t ms) { return human_duration(ms / 1000); }

// "239.1.2.3:7700" -> "group 239.1.2.3 port 7700".
std::string group_text(const std::string& g) {
  size_t colon = g.rfind(':');
  if (colon == std::string::npos) return "group " + g;
  return "group " + g.substr(0, colon) + " port " + g.substr(colon + 1);
}

// ---- the checks ----

void daemon_checks(const Json& f, std::vector<Finding>* out) {
  auto store = str(f, "store");
  if (store && *store != "ok")
    out->push_back({Level::fail, "store: " + *store,
                    "see shoald's log; a damaged database can be moved away (shoald starts afresh)"});
  auto net = str(f, "network");
  if (net && *net != "ok")
    out->push_back({Level::fail, "network: " + *net,
                    "check [net] bind, port and interface in the config"});
}

void inotify_checks(const Json& f, std::vector<Finding>* out) {
  const Json& ino = obj(f, "inotify");
  auto max = u64(ino, "max_user_watches");
  if (max && *max > 0) {
    uint64_t need = std::max(u64(ino, "watches").value_or(0), u64(ino, "dirs").value_or(0));
    double share = static_cast<double>(need) / static_cast<double>(*max);
    std::string what = "inotify: " + std::string(flag(ino, "dirs_complete") ? "" : "at least ") +
                       std::to_string(need) + (need == 1 ? " watch" : " watches") + " needed, limit " + std::to_string(*max) +
                       printf_str(" (%.0f%%)", share * 100.0);
    if (share > kInotifyWarnShare) {
      uint64_t raise = 65536;
      while (raise < need * 2) raise *= 2;
      out->push_back({Level::warn, what,
                      "raise it: sysctl -w fs.inotify.max_user_watches=" + std::to_string(raise) +
                          " and persist it in /etc/sysctl.d/"});
    } else {
      out->push_back({Level::ok, what, ""});
    }
  }
  if (auto errors = u64(ino, "errors"); errors && *errors > 0)
    out->push_back({Level::warn, "watcher: " + std::to_string(*errors) +
                                     " directories could not be watched or read",
                    "see shoald's log (lines \"watcher: ... cannot watch directory\")"});
}

std::string octal_mode(uint64_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04llo", static_cast<unsigned long long>(mode & 07777));
  return buf;
}

void key_checks(const Json& s, const std::string& share, std::vector<Finding>* out) {
  std::string key = str(s, "key_file").value_or("?");
  if (auto err = str(s, "key_error")) {
    out->push_back({Level::fail, share + ": key file: " + *err,
                    "copy the share's key file from another box (64 hex digits, mode 600)"});
    return;
  }
  auto mode = u64(s, "key_mode");
  if (!mode) return;
  std::string what = share + ": key file " + key;
  if ((*mode & 077) != 0)
    out->push_back({Level::fail, what + " is open to group or others (mode " + octal_mode(*mode) + ")",
                    "chmod 600 " + key});
  else
    out->push_back({Level::ok, what + " is private (mode " + octal_mode(*mode) + ")", ""});
}

// The share's folder must hold the pending bytes, and the store (state_dir)
// too: received chunks are stored first, then published into the folder.
void disk_checks(const Json& f, const Json& s, const std::string& share, std::vector<Finding>* out) {
  const Json& disk = obj(s, "disk");
  const Json& state = obj(f, "state_disk");
  std::string path = str(s, "path").value_or("?");
  if (auto err = str(disk, "error")) {
    out->push_back({Level::warn, share + ": cannot check free space: " + *err,
                    "check that " + path + " exists and shoald can read it"});
    return;
  }
  auto free = u64(disk, "free_bytes");
  if (!free) return;
  uint64_t pending = u64(s, "pending_bytes").value_or(0);
  auto state_free = u64(state, "free_bytes");
  bool same_fs = state_free && u64(state, "dev") == u64(disk, "dev");
  uint64_t need = same_fs ? 2 * pending : pending;
  const std::string fix = "free space there; transfers pause while a disk is full and resume by themselves";
  if (*free < need)
    out->push_back({Level::warn, share + ": " + human_size(*free) + " free on " + path +
                                     ", pending transfers need " + human_size(need),
                    fix});
  else
    out->push_back({Level::ok, share + ": " + human_size(*free) + " free on " + path + ", " +
                                   human_size(pending) + " pending",
                    ""});
  if (!same_fs && state_free && *state_free < pending)
    out->push_back({Level::warn, share + ": " + human_size(*state_free) + " free for the store in " +
                                     str(state, "path").value_or("?") + ", pending transfers need " +
                                     human_size(pending),
                    fix});
}

// How one active peer is heard: by multicast, or by unicast only.
Finding heard_check(const Json& net, const Json& p, const std::string& share) {
  std::string name = str(p, "name").value_or("?");
  if (!flag(net, "multicast"))
    return {Level::ok, share + ": " + name + " is heard by unicast (multicast is off here)", ""};
  if (!flag(p, "peer_multicast"))
    return {Level::ok, share + ": " + name + " has multicast off; unicast is used", ""};
  std::string group = str(net, "group").value_or("?");
  uint64_t limit = std::max<uint64_t>(5000, 3 * u64(p, "interval_ms").value_or(1000));
  auto mcast = u64(p, "multicast_ms");
  if (mcast && *mcast <= limit)
    return {Level::ok, share + ": multicast from " + name + " is heard (" + group_text(group) + ")", ""};
  if (u64(p, "known_ms").value_or(0) < limit)
    return {Level::ok, share + ": " + name + " heard for only " + seconds_text(u64(p, "known_ms").value_or(0)) +
                           "; multicast not judged yet",
            ""};
  return {Level::warn, share + ": multicast from " + name +
                           " is not heard; replicating by unicast (peers =)",
          "check IGMP snooping / firewall for " + group_text(group)};
}

void peer_checks(const Json& s, const std::string& share, std::vector<Finding>* out) {
  const Json* net = get(s, "net");
  if (net == nullptr || !net->is_object()) return;  // not on the network: reported above
  std::string port = std::to_string(u64(*net, "port").value_or(0));
  size_t active = 0;
  for (const Json& p : arr(*net, "peers")) {
    if (!p.is_object()) continue;
    if (!flag(p, "active")) {
      out->push_back({Level::warn, share + ": peer " + str(p, "name").value_or("?") + " (" +
                                       str(p, "addr").value_or("?") + ") not heard for " +
                                       seconds_text(u64(p, "last_heard_ms").value_or(0)),
                      "check that shoald runs there and that UDP port " + port + " is open"});
      continue;
    }
    ++active;
    out->push_back(heard_check(*net, p, share));
  }
  if (active > 0) return;
  std::string fix = flag(*net, "multicast")
                        ? "check that the other boxes run shoald with this share's key and that UDP port " +
                              port + " and " + group_text(str(*net, "group").value_or("?")) +
                              " pass firewalls; or list the boxes in peers ="
                        : "multicast is off: list the other boxes in peers = and check that UDP port " +
                              port + " is open";
  out->push_back({Level::warn, share + ": no peers heard", fix});
}

// Clocks, once per peer name over all shares.
void clock_checks(const Json& s, std::set<std::string>* seen, std::vector<Finding>* out) {
  for (const Json& p : arr(obj(s, "net"), "peers")) {
    auto off = num(p, "clock_offset_ms");
    std::string name = str(p, "name").value_or("?");
    if (!off || !flag(p, "active") || !seen->insert(name).second) continue;
    if (std::fabs(*off) > kClockWarnMs)
      out->push_back({Level::warn, "clock of " + name + " is off by " + printf_str("%+.1f s", *off / 1000.0),
                      "sync the clocks (NTP: chrony or systemd-timesyncd); replication does not need "
                      "it, but conflict copy names and file times do"});
    else
      out->push_back({Level::ok, "clock of " + name + " is within 1 s (" + printf_str("%+.0f ms", *off) + ")",
                      ""});
  }
}

}  // namespace

std::vector<Finding> doctor_findings(const Json& facts) {
  std::vector<Finding> out;
  daemon_checks(facts, &out);
  inotify_checks(facts, &out);
  std::set<std::string> clocks;
  for (const Json& s : arr(facts, "shares")) {
    if (!s.is_object()) continue;
    std::string share = "share " + str(s, "name").value_or("?");
    auto state = str(s, "state");
    if (state && *state != "ok") out.push_back({Level::fail, share + ": " + *state, "see shoald's log"});
    key_checks(s, share, &out);
    disk_checks(facts, s, share, &out);
    peer_checks(s, share, &out);
  }
  for (const Json& s : arr(facts, "shares")) clock_checks(s, &clocks, &out);
  return out;
}

std::string format_findings(const std::vector<Finding>& f) {
  std::string out;
  for (const Finding& x : f) {
    out += x.level == Level::ok ? "ok: " : x.level == Level::warn ? "warn: " : "fail: ";
    out += x.what;
    if (!x.fix.empty() && x.level != Level::ok) out += " -> " + x.fix;
    out += "\n";
  }
  return out;
}

bool findings_need_action(const std::vector<Finding>& f) {
  return std::any_of(f.begin(), f.end(), [](const Finding& x) { return x.level != Level::ok; });
}

}  // namespace shoal
