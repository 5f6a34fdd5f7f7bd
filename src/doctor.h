// `shoalctl doctor`: turns the facts the daemon reports ({"cmd":"doctor"},
// built in daemon.cc from probe.h and Node::doctor_json) into findings a
// person can act on. Pure: the facts come in as JSON, lines go out.
#pragma once

#include <string>
#include <vector>

#include "control.h"

namespace shoal {

struct Finding {
  enum class Level { ok, warn, fail };
  Level level = Level::ok;
  std::string what;  // what was found
  std::string fix;   // what to do about it; empty for ok
};

// Clock offsets beyond this are reported (conflict names and mtimes use clocks).
constexpr double kClockWarnMs = 1000.0;
// inotify watches needed beyond this share of the limit are reported.
constexpr double kInotifyWarnShare = 0.8;

// Findings in a stable order: daemon, inotify, then per share key, disk,
// peers/multicast, and clocks once per peer. Tolerates missing or odd fields
// (a reply from another version): what cannot be judged is left out.
std::vector<Finding> doctor_findings(const Json& facts);

// One line each: "ok: WHAT", "warn: WHAT -> FIX", "fail: WHAT -> FIX".
std::string format_findings(const std::vector<Finding>& f);

// True if any finding is a warning or a failure (shoalctl exits 1).
bool findings_need_action(const std::vector<Finding>& f);

}  // namespace shoal
