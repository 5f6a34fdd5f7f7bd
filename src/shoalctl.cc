// shoalctl: talks to a running shoald over its control socket. The logic is in
// ctl.cc; this file wires it to argv, the clock and the socket.
#include <chrono>
#include <exception>
#include <iostream>
#include <thread>

#include "control.h"
#include "ctl.h"

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
  env.sleep_ms = [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  env.out = &std::cout;
  env.err = &std::cerr;
  try {
    return run_ctl_command(*args, env);
  } catch (const std::exception& e) {
    std::cerr << "shoalctl: internal error: " << e.what() << "\n";
    return 1;
  }
}
