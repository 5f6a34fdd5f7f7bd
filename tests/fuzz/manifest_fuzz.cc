// libFuzzer target for decode_manifest: a manifest arrives from peers, so
// any bytes must either be refused or decode to a manifest that re-encodes to
// exactly those bytes and carries a safe relative path.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "manifest.h"

using namespace shoal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Result<Manifest> m = decode_manifest(in);
  if (!m) return 0;
  if (encode_manifest(*m) != in) {
    std::fprintf(stderr, "manifest_fuzz: decoded manifest does not re-encode to its input\n");
    std::abort();
  }
  if (!valid_rel_path(m->path)) {
    std::fprintf(stderr, "manifest_fuzz: decoded an unsafe path\n");
    std::abort();
  }
  if (!validate_manifest(*m)) {
    std::fprintf(stderr, "manifest_fuzz: decoded manifest fails validate_manifest\n");
    std::abort();
  }
  return 0;
}
