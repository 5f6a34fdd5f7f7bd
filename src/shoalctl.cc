// shoalctl: talks to a running shoald over its control socket. The logic is in
// ctl.cc; this file wires it to argv, the clock and the socket.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <exception>
#include <iostream>

#include "control.h"
#include "ctl.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int) { g_stop = 1; }

// Live modes end on Ctrl-C between frames (sleep is cut short, not
// restarted) and on a closed pipe (a failed write, not SIGPIPE's kill).
void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: nanosleep returns at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

void sleep_unless_stopped(uint64_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
  while (g_stop == 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

size_t terminal_width() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shoal;
  Result<CtlArgs> args = parse_ctl_args(std::vector<std::string>(argv + 1, argv + argc));
  if (!args) {
    std::cerr << "shoalctl: " << args.error().msg << "\n" << ctl_usage();
    return 2;
  }
  if (args->help) {
    std::cout << ctl_usage();
    return 0;
  }
  if (args->version) {
    std::cout << "shoalctl " << SHOAL_VERSION << "\n";
    return 0;
  }
  Result<std::string> sock = ctl_socket_path(*args);
  if (!sock) {
    std::cerr << sock.error().msg << "\n";
    // shoald would refuse this config too (exit 1 like a refused reload).
    if (args->cmd == "reload") {
      std::cerr << "shoalctl: config not reloaded; shoald keeps running the previous config\n";
      return 1;
    }
    return 2;
  }
  CtlEnv env;
  env.call = [path = *sock](const Json& req, int timeout_ms) {
    return control_call(path, req, timeout_ms);
  };
  env.now_ms = [] {
    auto d = std::chrono::steady_clock::now().time_since_epoch();
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  env.sleep_ms = sleep_unless_stopped;
  env.out = &std::cout;
  env.err = &std::cerr;
  if (args->watch || args->progress) {
    catch_stop_signals();
    env.tty = isatty(STDOUT_FILENO) == 1;
    env.width = terminal_width;
    env.stopped = [] { return g_stop != 0; };
  }
  try {
    return run_ctl_command(*args, env);
  } catch (const std::exception& e) {
    std::cerr << "shoalctl: internal error: " << e.what() << "\n";
    return 1;
  }
}
