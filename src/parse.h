// Checked parsers for numbers and values that come from text (config, CLI, JSON).
// Every one range-checks and returns a message naming what was wrong; no atoi.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "result.h"

namespace shoal {

// Decimal unsigned integer in [lo, hi]; no sign, no spaces, no trailing bytes.
Result<uint64_t> parse_uint(std::string_view s, uint64_t lo, uint64_t hi);

// Bit rate: a decimal number with a unit kbit|mbit|gbit (or plain bit/s),
// decimal multipliers (1gbit = 10^9). Returns bits per second, > 0.
Result<uint64_t> parse_rate(std::string_view s);

// Byte size: number with optional unit k|m|g|t (binary: KiB...), e.g. "4g".
Result<uint64_t> parse_size(std::string_view s);

// on|off|yes|no|true|false|1|0
Result<bool> parse_bool(std::string_view s);

struct HostPort {
  std::string host;  // dotted IPv4 (validated with inet_pton) or a host name
  uint16_t port = 0;
};
// "a.b.c.d:port" or "name:port"; port 1..65535 unless allow_zero.
Result<HostPort> parse_hostport(std::string_view s, bool allow_zero = false);

// Dotted-quad IPv4 check (inet_pton).
bool is_ipv4(std::string_view s);
// True for 224.0.0.0/4.
bool is_ipv4_multicast(std::string_view s);

// Lower-case hex encode / strict decode (even length, [0-9a-fA-F] only).
std::string hex_encode(const uint8_t* p, size_t n);
Result<std::string> hex_decode(std::string_view s);

// Trims ASCII spaces and tabs at both ends.
std::string_view trim(std::string_view s);

}  // namespace shoal
