#include "log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unistd.h>


namespace shoal {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
std::atomic<int> g_prefix{-1};  // -1: decide from JOURNAL_STREAM on first use

bool use_prefix() {
  int p = g_prefix.load();
  if (p < 0) {
    p = std::getenv("JOURNAL_STREAM") != nullptr ? 1 : 0;
    g_prefix.store(p);
  }
  return p == 1;
}
}  // namespace

void log_set_level(LogLevel l) { g_level.store(static_cast<int>(l)); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }
void log_set_prefix(bool on) { g_prefix.store(on ? 1 : 0); }

bool log_parse_level(std::string_view s, LogLevel* out) {
  static const struct { const char* name; LogLevel l; } kLevels[] = {
      {"error", LogLevel::error}, {"warn", LogLevel::warn},
      {"info", LogLevel::info},   {"debug", LogLevel::debug}};
  for (const auto& e : kLevels) {
    if (s == e.name) {
      *out = e.l;
      return true;
    }
  }
  return false;
}

void log_msg(LogLevel l, const char* fmt, ...) {
  if (static_cast<int>(l) > g_level.load()) return;
  static const char* kNames[] = {"error", "warn", "info", "debug"};
  static const int kPrio[] = {3, 4, 6, 7};
  char buf[2048];
  int n = 0;
  int li = static_cast<int>(l);
  if (use_prefix()) {
    n = std::snprintf(buf, sizeof buf, "<%d>%s: ", kPrio[li], kNames[li]);
  } else {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm tmv{};
    localtime_r(&ts.tv_sec, &tmv);
    n = static_cast<int>(std::strftime(buf, sizeof buf, "%H:%M:%S", &tmv));
    n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), ".%03ld %s: ",
                       ts.tv_nsec / 1000000, kNames[li]);
  }
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n), fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m > 0 ? static_cast<size_t>(m) : 0);
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  ssize_t w = ::write(2, buf, len);
  (void)w;
}

std::string log_escape(std::string_view s, size_t max) {
  std::string out;
  out.reserve(s.size() < max ? s.size() : max);
  static const char* kHex = "0123456789abcdef";
  for (unsigned char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f || c == '\\' || c == '"' || c >= 0x80) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace shoal
