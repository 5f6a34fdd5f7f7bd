#include "reload.h"

#include <algorithm>

namespace shoal {
namespace {

bool same_hostport(const HostPort& a, const HostPort& b) {
  return a.host == b.host && a.port == b.port;
}

bool same_peers(const std::vector<HostPort>& a, const std::vector<HostPort>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), same_hostport);
}

const ShareConfig* find_share(const Config& c, const std::string& name) {
  for (const auto& s : c.shares)
    if (s.name == name) return &s;
  return nullptr;
}

// Keys that only take effect when shoald starts (sockets, the store, the
// name peers know it by).
struct RestartKey {
  const char* name;
  bool (*differs)(const Config&, const Config&);
  void (*keep)(Config& out, const Config& running);  // running value into out
};

template <auto Field>
RestartKey restart_key(const char* name) {
  return {name, [](const Config& a, const Config& b) { return a.*Field != b.*Field; },
          [](Config& out, const Config& running) { out.*Field = running.*Field; }};
}

const RestartKey kRestartKeys[] = {
    restart_key<&Config::node_name>("node.name"),
    restart_key<&Config::state_dir>("node.state_dir"),
    restart_key<&Config::bind>("net.bind"),
    restart_key<&Config::interface>("net.interface"),
    restart_key<&Config::port>("net.port"),
    restart_key<&Config::multicast>("net.multicast"),
    restart_key<&Config::control_socket>("control.socket"),
    {"control.metrics",
     [](const Config& a, const Config& b) { return !same_hostport(a.metrics, b.metrics); },
     [](Config& out, const Config& running) { out.metrics = running.metrics; }},
};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

bool ConfigDiff::empty() const {
  return added.empty() && removed.empty() && changed.empty() && updated.empty() && restart.empty();
}

bool same_share_settings(const ShareConfig& a, const ShareConfig& b) {
  return a.name == b.name && a.path == b.path && same_hostport(a.group, b.group) &&
         a.key_file == b.key_file && a.mode == b.mode && same_peers(a.peers, b.peers) &&
         a.settle_ms == b.settle_ms && a.order == b.order &&
         a.delete_propagate == b.delete_propagate && a.max_file_size == b.max_file_size &&
         a.max_files == b.max_files;
}

ConfigDiff diff_configs(const Config& running, const Config& next) {
  ConfigDiff d;
  for (const auto& s : running.shares)
    if (find_share(next, s.name) == nullptr) d.removed.push_back(s.name);
  for (const auto& s : next.shares) {
    const ShareConfig* old = find_share(running, s.name);
    if (old == nullptr) {
      d.added.push_back(s.name);
    } else if (!same_share_settings(*old, s)) {
      d.changed.push_back(s.name);
    }
  }
  if (running.log_level != next.log_level) d.updated.push_back("node.log_level");
  if (running.max_rate_bps != next.max_rate_bps) d.updated.push_back("net.max_rate");
  for (const auto& k : kRestartKeys)
    if (k.differs(running, next)) d.restart.push_back(k.name);
  return d;
}

Config reloadable_config(const Config& running, const Config& next) {
  Config out = next;
  for (const auto& k : kRestartKeys) k.keep(out, running);
  return out;
}

nlohmann::json reload_reply(const std::string& file, const ConfigDiff& d) {
  return {{"ok", true},
          {"file", file},
          {"added", d.added},
          {"removed", d.removed},
          {"changed", d.changed},
          {"updated", d.updated},
          {"restart_needed", d.restart}};
}

std::string reload_summary(const ConfigDiff& d) {
  if (d.empty()) return "no changes";
  std::string out;
  auto part = [&out](const char* label, const std::vector<std::string>& v) {
    if (v.empty()) return;
    out += (out.empty() ? "" : "; ") + std::string(label) + ": " + join(v);
  };
  part("shares added", d.added);
  part("shares removed", d.removed);
  part("shares changed (restarted)", d.changed);
  part("updated", d.updated);
  part("need a restart (old value kept)", d.restart);
  return out;
}

}  // namespace shoal
