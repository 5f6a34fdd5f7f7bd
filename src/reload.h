// Config reload (SIGHUP, `shoalctl reload`): what differs between the running
// config and a re-read one, and which of it can change without a restart.
// Pure functions; the daemon applies the result.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"

namespace shoal {

struct ConfigDiff {
  std::vector<std::string> added;    // share names only in the new config (its order)
  std::vector<std::string> removed;  // share names only in the running config
  std::vector<std::string> changed;  // in both with some setting different: restarted
  std::vector<std::string> updated;  // keys applied in place: "node.log_level", "net.max_rate"
  std::vector<std::string> restart;  // keys that differ but need a restart, e.g. "net.port"
  bool empty() const;
};

// True when the two shares are configured alike (name and path, group,
// key_file, mode, peers, settle_ms, order, delete; not the line number).
bool same_share_settings(const ShareConfig& a, const ShareConfig& b);

// Compares two valid configs. Lists are in config order, keys as
// "section.key".
ConfigDiff diff_configs(const Config& running, const Config& next);

// The config to run after a reload: `next`, with every key that needs a
// restart (node.name, node.state_dir, net.bind/interface/port/multicast,
// control.socket, control.metrics) kept at its value in `running`.
Config reloadable_config(const Config& running, const Config& next);

// The reply to a reload request: {"ok":true,"file":..., "added":[...],
// "removed":[...], "changed":[...], "updated":[...], "restart_needed":[...]}.
nlohmann::json reload_reply(const std::string& file, const ConfigDiff& d);

// One line for the log, e.g. "shares added: b; removed: a; updated: net.max_rate",
// or "no changes".
std::string reload_summary(const ConfigDiff& d);

}  // namespace shoal
