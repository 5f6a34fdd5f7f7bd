// The daemon: owns the libevent loop and wires the modules together
// (config -> store, watcher -> ingest worker -> store, control socket).
// Nothing else runs a loop; modules get the event_base and callbacks.
#pragma once

#include <memory>
#include <string>

#include "config.h"

namespace shoal {

// Runs shoald in the foreground with a validated config until SIGTERM/SIGINT.
// Returns the process exit status (0 on a clean stop).
int run_daemon(const Config& cfg);

}  // namespace shoal
