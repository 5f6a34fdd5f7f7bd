// shoald: the shoal daemon. Thin main: arguments, config, then run_daemon().
#include <cstdio>
#include <cstring>
#include <string>

#include "config.h"
#include "crypto.h"
#include "daemon.h"
#include "log.h"
#include "memtune.h"

namespace {

void usage(FILE* f) {
  std::fprintf(f,
               "usage: shoald [-c CONFIG] [-t] [--gen-key FILE] [--version]\n"
               "  -c CONFIG       config file (default /etc/shoal/shoal.conf)\n"
               "  -t              check the config and exit (0 ok, 1 errors)\n"
               "  --gen-key FILE  create a new random share key file (mode 0600) and exit\n"
               "  --version       print the version and exit\n");
}

int gen_key(const std::string& path) {
  bool created = false;
  auto k = shoal::load_or_create_key(path, &created);
  if (!k) {
    std::fprintf(stderr, "shoald: %s\n", k.error().msg.c_str());
    return 1;
  }
  if (!created) {
    std::fprintf(stderr, "shoald: %s already exists; not overwritten\n", path.c_str());
    return 1;
  }
  std::printf("%s: new share key; copy it to every box of the share\n", path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = "/etc/shoal/shoal.conf";
  bool check = false;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (std::strcmp(a, "-c") == 0 && i + 1 < argc) {
      config = argv[++i];
    } else if (std::strcmp(a, "-t") == 0) {
      check = true;
    } else if (std::strcmp(a, "--gen-key") == 0 && i + 1 < argc) {
      return gen_key(argv[++i]);
    } else if (std::strcmp(a, "--version") == 0) {
      std::printf("shoald %s\n", SHOAL_VERSION);
      return 0;
    } else if (std::strcmp(a, "-h") == 0 || std::strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "shoald: unknown argument '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  shoal::ConfigLoad load = shoal::load_config(config);
  if (!load.ok()) {
    // -t reports on stdout (it is the command's output); a failed start on stderr.
    FILE* out = check ? stdout : stderr;
    for (const auto& e : load.errors) std::fprintf(out, "%s\n", e.format().c_str());
    std::fflush(out);
    return 1;
  }
  if (check) {
    std::printf("%s: ok\n", config.c_str());
    return 0;
  }
  shoal::log_set_level(load.config.log_level);
  if (!shoal::tune_malloc()) LOG_WARN("malloc settings refused; running with the defaults");
  if (auto st = shoal::check_aead_build(); !st) {
    std::fprintf(stderr, "shoald: %s\n", st.error().msg.c_str());
    return 1;
  }
  return shoal::run_daemon(load.config);
}
