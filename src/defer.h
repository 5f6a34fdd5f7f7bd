// defer: run a callable at scope exit (for the few cleanups that have no RAII owner).
#pragma once

#include <utility>

namespace shoal {

template <typename F>
class [[nodiscard]] Defer {
 public:
  explicit Defer(F f) : f_(std::move(f)) {}
  Defer(const Defer&) = delete;
  Defer& operator=(const Defer&) = delete;
  ~Defer() {
    if (armed_) f_();
  }
  void cancel() { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

template <typename F>
Defer<F> defer(F f) {
  return Defer<F>(std::move(f));
}

}  // namespace shoal
