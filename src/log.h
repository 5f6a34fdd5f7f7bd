// Leveled logging to stderr. Under systemd (JOURNAL_STREAM set) each line gets a
// syslog priority prefix (<3> <4> <6> <7>) so journald keeps the level.
#pragma once

#include <string>
#include <string_view>

namespace shoal {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

// Sets the most verbose level that is printed. Thread-safe.
void log_set_level(LogLevel l);
LogLevel log_level();
// Parses "error|warn|info|debug"; returns false on anything else.
bool log_parse_level(std::string_view s, LogLevel* out);
// Forces (or disables) syslog prefixes; default: on when JOURNAL_STREAM is set.
void log_set_prefix(bool on);

// printf-style; one line per call, written with a single write(2).
void log_msg(LogLevel l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Escapes a string from outside (paths, peer names) for a log line:
// control bytes, backslash, quotes and all bytes >= 0x80 become \xNN; at most `max` bytes kept.
std::string log_escape(std::string_view s, size_t max = 512);

}  // namespace shoal

#define LOG_ERROR(...) ::shoal::log_msg(::shoal::LogLevel::error, __VA_ARGS__)
#define LOG_WARN(...) ::shoal::log_msg(::shoal::LogLevel::warn, __VA_ARGS__)
#define LOG_INFO(...) ::shoal::log_msg(::shoal::LogLevel::info, __VA_ARGS__)
#define LOG_DEBUG(...)                                                          \
  do {                                                                          \
    if (::shoal::log_level() >= ::shoal::LogLevel::debug)                       \
      ::shoal::log_msg(::shoal::LogLevel::debug, __VA_ARGS__);                  \
  } while (0)
