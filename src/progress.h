// Live progress of transfers, for `shoalctl transfers --watch` and
// `shoalctl wait --progress`: rates from successive `transfers` replies and
// the lines to show (bars on a terminal, plain lines otherwise). Pure: no
// I/O and no clock; the caller passes the time of each reply.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "control.h"

namespace shoal {

struct ProgressTrack {
  std::string name;      // the path, escaped for a terminal
  std::string state;     // the daemon's transfer state ("chunks", "paused", ...)
  uint64_t done = 0;     // bytes
  uint64_t total = 0;
  double rate = -1;      // bytes per second, smoothed; < 0: unknown
  bool measured = false; // rate comes from our own samples, not the daemon's average
  uint64_t at_ms = 0;    // when `done` was seen
};

struct ProgressState {
  // Transfers of the last reply, by share + '\0' + path.
  std::map<std::string, ProgressTrack> tracks;
};

// Folds a `transfers` reply taken at `now_ms` (monotonic) into `st`.
// Transfers missing from it are dropped; a new one starts at the daemon's
// average rate (rate_bps), replaced by the first byte delta over time delta
// seen here, later deltas smoothed with a 2 s time constant.
void progress_update(ProgressState* st, const Json& reply, uint64_t now_ms);

// "0:07", "12:34", "1:02:03"; "--:--" when unknown (< 0) or 100 h and more.
std::string format_eta(double seconds);

// A frame for a terminal `width` columns wide: one line per transfer and a
// total line, each `NAME [#####.....]  42%   12.3 MiB/s ETA 0:07` and at most
// width - 1 columns; {"no transfers"} when there are none.
std::vector<std::string> progress_lines(const ProgressState& st, size_t width);

// What plain (non-terminal) output has printed so far.
struct PlainMemo {
  std::map<std::string, int> percent;  // by track key
  bool any = false;                    // the last call had transfers
};
// Plain lines (no bars, no escapes) for the transfers whose whole percent
// changed since the last call, plus a total line when there are several;
// "no transfers" once when the last one is gone. Updates *memo.
std::vector<std::string> progress_changes(const ProgressState& st, PlainMemo* memo);

// Bytes that replace the previous frame of `prev_lines` lines (the cursor
// on the line below it) with `lines` on an ANSI terminal.
std::string progress_redraw(const std::vector<std::string>& lines, size_t prev_lines);

}  // namespace shoal
