// shoalctl's logic: argument parsing, the commands (over an injectable
// transport so tests need no daemon) and the human/JSON output formatting.
// src/shoalctl.cc only wires these to argv, the config file and control_call.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "control.h"
#include "result.h"

namespace shoal {

constexpr const char* kDefaultConfigPath = "/etc/shoal/shoal.conf";

struct CtlArgs {
  bool help = false;
  bool version = false;
  std::string config = kDefaultConfigPath;
  bool config_given = false;  // -c was used
  std::string socket;         // -s; empty: take it from the config
  bool json = false;
  std::string cmd;            // status | files | wait | rescan | peers | transfers | reload | doctor
  std::string share;          // files / rescan; empty = all shares
  bool has_timeout = false;   // wait --timeout
  uint64_t timeout_ms = 0;
  std::string timeout_text;   // as typed, for the timeout message
  bool watch = false;         // transfers --watch
  bool progress = false;      // wait --progress
};

// Parses the arguments after argv[0]. Errors are usage errors (exit 2) with a
// one-line message naming the bad argument.
Result<CtlArgs> parse_ctl_args(const std::vector<std::string>& args);

// The usage text (ends with a newline).
std::string ctl_usage();

// Seconds as typed by a user ("5", "0.5", "1.25"): digits with an optional
// fraction, > 0, at most one year; returns milliseconds (fraction beyond ms
// is truncated, but the result is at least 1).
Result<uint64_t> parse_seconds(std::string_view s);

// The control socket to talk to: -s, else the config's [control] socket.
// Without -c and with no file at the default config path, the built-in
// default socket. Config errors come back as one "FILE:LINE: msg" per line.
Result<std::string> ctl_socket_path(const CtlArgs& a);

// What the commands need from the outside world; tests inject fakes.
struct CtlEnv {
  // One request, one reply (control_call on the socket in shoalctl).
  std::function<Result<Json>(const Json& req, int timeout_ms)> call;
  std::function<uint64_t()> now_ms;                   // monotonic
  std::function<void(uint64_t ms)> sleep_ms;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  bool tty = false;                    // `out` is a terminal: redraw progress in place
  std::function<size_t()> width;       // terminal columns; unset: 80
  std::function<bool()> stopped;       // Ctrl-C seen; unset: never
};

// Runs the command in `a` (not help/version); returns the exit status:
// 0 success, 1 daemon error / unreachable / wait timed out / doctor found
// something to fix, 130 wait interrupted. `transfers --watch` runs until
// stopped() or until `out` fails (a closed pipe) and then returns 0.
int run_ctl_command(const CtlArgs& a, const CtlEnv& env);

// Human output of each reply (whole reply object as received, "ok" included).
std::string format_status(const Json& r);
std::string format_files(const Json& r);
std::string format_peers(const Json& r);
std::string format_transfers(const Json& r);
// A reload's summary: shares added, removed, restarted; keys applied and
// keys that need a restart.
std::string format_reload(const Json& r);
// --json output: the reply without "ok", one JSON document plus a newline.
// A reply nested deeper than run_ctl_command accepts (64 levels) prints as
// {"error": "reply nested too deeply"} instead.
std::string format_json(const Json& r);

// Aligned columns: every column as wide as its widest cell, separated by two
// spaces; columns whose index is in `right` are right-aligned. No trailing spaces.
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::vector<size_t>& right = {});

// For a terminal: control characters (C0, DEL, C1) and backslash become \xNN;
// other UTF-8 passes through.
std::string display_escape(std::string_view s);
// 1536 -> "1.5 KiB"; below 1024 -> "N B".
std::string human_size(uint64_t bytes);
// 12 -> "12s", 185 -> "3m05s", 7384 -> "2h03m04s", 2 days -> "2d00h00m".
std::string human_duration(uint64_t seconds);

}  // namespace shoal
