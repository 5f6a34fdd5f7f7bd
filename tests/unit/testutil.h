// Small helpers shared by unit tests. Include before CppUTest's headers (its
// new/delete macros break standard headers included after it).
#pragma once

#include <event2/event.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace test {

inline std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << data;
}

// Deterministic, incompressible pseudo-random bytes (xorshift64): distinct
// (seed, salt) pairs give distinct content, so the chunker cuts by content.
inline std::string pseudo_bytes(uint32_t seed, size_t len, uint64_t salt) {
  std::string s(len, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + salt;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

// Runs `client` on a thread while this thread drives `base` in 5 ms slices,
// so libevent is only ever touched from the thread that owns the loop.
template <typename F>
void serve_while(event_base* base, F client) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    client();
    done = true;
  });
  while (!done) {
    timeval tv{0, 5000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  t.join();
}

}  // namespace test
