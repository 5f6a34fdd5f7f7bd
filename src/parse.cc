#include "parse.h"

#include <arpa/inet.h>

#include <cctype>
#include <limits>

namespace shoal {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Result<uint64_t> parse_uint(std::string_view s, uint64_t lo, uint64_t hi) {
  if (s.empty()) return make_error(Errc::invalid, "empty number");
  if (s.size() > 20) return make_error(Errc::invalid, "number too long: '" + std::string(s.substr(0, 24)) + "'");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return make_error(Errc::invalid, "not a number: '" + std::string(s) + "'");
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10)
      return make_error(Errc::invalid, "number out of range: '" + std::string(s) + "'");
    v = v * 10 + d;
  }
  if (v < lo || v > hi)
    return make_error(Errc::invalid, "value " + std::string(s) + " out of range [" +
                                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

namespace {
// Splits "123unit" into digits and a lower-cased unit.
bool split_unit(std::string_view s, std::string_view* num, std::string* unit) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
  if (i == 0) return false;
  *num = s.substr(0, i);
  unit->clear();
  for (char c : trim(s.substr(i))) unit->push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return true;
}

Result<uint64_t> scaled(std::string_view num, uint64_t mult, const char* what, std::string_view orig) {
  auto n = parse_uint(num, 1, std::numeric_limits<uint64_t>::max());
  if (!n) return make_error(Errc::invalid, std::string("bad ") + what + " '" + std::string(orig) + "'");
  if (*n > std::numeric_limits<uint64_t>::max() / mult)
    return make_error(Errc::invalid, std::string(what) + " too large: '" + std::string(orig) + "'");
  return *n * mult;
}
}  // namespace

Result<uint64_t> parse_rate(std::string_view s) {
  s = trim(s);
  std::string_view num;
  std::string unit;
  if (!split_unit(s, &num, &unit))
    return make_error(Errc::invalid, "bad rate '" + std::string(s) + "' (want e.g. 100mbit, 1gbit)");
  uint64_t mult = 0;
  if (unit.empty() || unit == "bit") mult = 1;
  else if (unit == "kbit") mult = 1000ULL;
  else if (unit == "mbit") mult = 1000ULL * 1000;
  else if (unit == "gbit") mult = 1000ULL * 1000 * 1000;
  else return make_error(Errc::invalid, "bad rate unit '" + unit + "' (use kbit, mbit or gbit)");
  return scaled(num, mult, "rate", s);
}

Result<uint64_t> parse_size(std::string_view s) {
  s = trim(s);
  std::string_view num;
  std::string unit;
  if (!split_unit(s, &num, &unit))
    return make_error(Errc::invalid, "bad size '" + std::string(s) + "' (want e.g. 512m, 4g)");
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  if (!unit.empty() && unit.back() == 'i') unit.pop_back();
  uint64_t mult = 0;
  if (unit.empty()) mult = 1;
  else if (unit == "k") mult = 1ULL << 10;
  else if (unit == "m") mult = 1ULL << 20;
  else if (unit == "g") mult = 1ULL << 30;
  else if (unit == "t") mult = 1ULL << 40;
  else return make_error(Errc::invalid, "bad size unit in '" + std::string(s) + "' (use k, m, g or t)");
  return scaled(num, mult, "size", s);
}

Result<bool> parse_bool(std::string_view s) {
  s = trim(s);
  if (s == "on" || s == "yes" || s == "true" || s == "1") return true;
  if (s == "off" || s == "no" || s == "false" || s == "0") return false;
  return make_error(Errc::invalid, "bad boolean '" + std::string(s) + "' (use on or off)");
}

bool is_ipv4(std::string_view s) {
  if (s.size() > 15) return false;
  std::string z(s);
  in_addr a{};
  return inet_pton(AF_INET, z.c_str(), &a) == 1;
}

bool is_ipv4_multicast(std::string_view s) {
  if (!is_ipv4(s)) return false;
  std::string z(s);
  in_addr a{};
  inet_pton(AF_INET, z.c_str(), &a);
  return (ntohl(a.s_addr) >> 28) == 0xE;
}

Result<HostPort> parse_hostport(std::string_view s, bool allow_zero) {
  s = trim(s);
  size_t c = s.rfind(':');
  if (c == std::string_view::npos || c == 0)
    return make_error(Errc::invalid, "bad address '" + std::string(s) + "' (want host:port)");
  HostPort hp;
  hp.host = std::string(s.substr(0, c));
  if (hp.host.size() > 253) return make_error(Errc::invalid, "host name too long");
  for (char ch : hp.host) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-'))
      return make_error(Errc::invalid, "bad host '" + hp.host + "'");
  }
  auto p = parse_uint(s.substr(c + 1), allow_zero ? 0 : 1, 65535);
  if (!p) return make_error(Errc::invalid, "bad port in '" + std::string(s) + "': " + p.error().msg);
  hp.port = static_cast<uint16_t>(*p);
  return hp;
}

std::string hex_encode(const uint8_t* p, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 15];
  }
  return out;
}

Result<std::string> hex_decode(std::string_view s) {
  if (s.size() % 2 != 0) return make_error(Errc::invalid, "odd number of hex digits");
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(s.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); i++) {
    int hi = nib(s[2 * i]), lo = nib(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error(Errc::invalid, "not a hex digit");
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

}  // namespace shoal
