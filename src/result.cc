#include "result.h"

#include <cerrno>
#include <cstring>

namespace shoal {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::ok: return "ok";
    case Errc::invalid: return "invalid";
    case Errc::not_found: return "not_found";
    case Errc::io: return "io";
    case Errc::no_space: return "no_space";
    case Errc::corrupt: return "corrupt";
    case Errc::busy: return "busy";
    case Errc::unsupported: return "unsupported";
    case Errc::internal: return "internal";
  }
  return "unknown";
}

Error errno_error(const std::string& what, int err) {
  Errc c = (err == ENOSPC || err == EDQUOT) ? Errc::no_space
           : (err == ENOENT)                ? Errc::not_found
                                            : Errc::io;
  return Error{c, what + ": " + std::strerror(err)};
}

}  // namespace shoal
