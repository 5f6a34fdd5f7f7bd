// Result<T>: the error-or-value type every module returns across its boundary.
// No exceptions cross module boundaries or libevent callbacks.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace shoal {

enum class Errc {
  ok = 0,
  invalid,      // bad input from a user, a file or a peer
  not_found,
  io,           // read/write/open failed (see message for errno text)
  no_space,     // ENOSPC / disk full
  corrupt,      // data failed a check (hash, integrity, format)
  busy,         // try again later (queue full, resource locked)
  unsupported,  // version or feature we do not speak
  internal,
};

// Short stable name of an error code, for logs and JSON.
const char* errc_name(Errc c);

struct Error {
  Errc code = Errc::internal;
  std::string msg;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}                  // NOLINT: implicit on purpose
  Result(Error e) : v_(std::move(e)) {}              // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_{};
  bool ok_ = true;
};

using Status = Result<void>;

inline Error make_error(Errc c, std::string msg) { return Error{c, std::move(msg)}; }

// Error from errno: "<what>: <strerror(err)>", code no_space for ENOSPC/EDQUOT, io otherwise.
Error errno_error(const std::string& what, int err);

}  // namespace shoal
