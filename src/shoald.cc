// Temporary main: only `shoald -t -c FILE` (check a config and exit), so the
// config golden tests can run. The daemon proper replaces this.
#include <cstdio>
#include <cstring>
#include <string>

#include "config.h"

namespace {

int usage() {
  std::fprintf(stderr, "usage: shoald -t -c FILE\n");
  return 2;
}

// Prints every problem as FILE:LINE: message (stdout, for golden tests).
int check_config(const std::string& file) {
  shoal::ConfigLoad load = shoal::load_config(file);
  for (const auto& e : load.errors) std::printf("%s\n", e.format().c_str());
  if (!load.ok()) return 1;
  std::printf("%s: ok\n", file.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool test = false;
  std::string file;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "-t") == 0) {
      test = true;
    } else if (std::strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
      file = argv[++i];
    } else {
      return usage();
    }
  }
  if (!test || file.empty()) return usage();
  return check_config(file);
}
