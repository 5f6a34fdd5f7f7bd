// The control socket: a Unix stream socket speaking newline-delimited JSON.
// One request per line, one response per line. Requests are bounded
// (kMaxControlLine); a malformed or oversized request gets an error response,
// never a crash.
//
// Request:  {"cmd":"status"} | {"cmd":"files","share":"NAME"} | {"cmd":"rescan","share":"NAME"} | ...
// Response: {"ok":true, ...} or {"ok":false,"error":"message"}
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "result.h"

struct event_base;

namespace shoal {

using Json = nlohmann::json;
constexpr size_t kMaxControlLine = 64 * 1024;
// Largest reply line either side accepts; the server answers "response too
// large" instead of sending more.
constexpr size_t kMaxControlResponse = 64 * 1024 * 1024;

// Parses one request line (without its '\n'): at most kMaxControlLine bytes
// of JSON holding an object with a string "cmd". Throws nothing but
// std::bad_alloc. On failure, Errc::invalid whose message is the error the
// server replies with.
Result<Json> parse_control_request(std::string_view line);

class ControlServer {
 public:
  // Handler runs on the loop thread; gets a parsed request object (always a
  // JSON object with a string "cmd") and returns the response object. An
  // exception or a non-object result becomes {"ok":false,"error":"internal
  // error"}. It must not destroy the server it is called from.
  using Handler = std::function<Json(const Json& req)>;
  // Binds `path` (removing a stale socket left by a dead daemon, refusing if a
  // live daemon answers there), chmod 0660, and starts accepting on `base`.
  static Result<std::unique_ptr<ControlServer>> listen(event_base* base, const std::string& path,
                                                       Handler h);
  ~ControlServer();  // closes clients, closes and unlinks the socket

  struct Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Client: connects to `path`, sends `req` as one line, reads one line back and
// returns it parsed (always a JSON object; {"ok":false,...} is returned as is).
// Errors: not_found / io with a clear message ("shoald is not running (no socket at PATH)"),
// io on timeout, corrupt on a reply that is not a JSON object.
Result<Json> control_call(const std::string& path, const Json& req, int timeout_ms = 10000);

}  // namespace shoal
