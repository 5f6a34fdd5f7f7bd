// libFuzzer target for the config parser: any text must give a config or a
// list of errors, never a crash. inih's options are process-wide, which is
// fine here: libFuzzer calls this from one thread.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config.h"

using namespace shoal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  ConfigLoad l = parse_config(text, "fuzz.conf", "/tmp");
  for (const ConfigError& e : l.errors) {
    if (e.format().rfind("fuzz.conf", 0) != 0) {
      std::fprintf(stderr, "config_fuzz: error not prefixed with the file name\n");
      std::abort();
    }
  }
  return 0;
}
