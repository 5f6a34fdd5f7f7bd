#include "parse.h"

#include <CppUTest/TestHarness.h>

using namespace shoal;

TEST_GROUP(Parse){};

TEST(Parse, UintRangeAndJunk) {
  CHECK_EQUAL(42u, parse_uint("42", 0, 100).value());
  CHECK_FALSE(parse_uint("101", 0, 100).ok());
  CHECK_FALSE(parse_uint("-1", 0, 100).ok());
  CHECK_FALSE(parse_uint("4x", 0, 100).ok());
  CHECK_FALSE(parse_uint("", 0, 100).ok());
  CHECK_FALSE(parse_uint("99999999999999999999999", 0, UINT64_MAX).ok());
  CHECK_EQUAL(UINT64_MAX, parse_uint("18446744073709551615", 0, UINT64_MAX).value());
  CHECK_FALSE(parse_uint("18446744073709551616", 0, UINT64_MAX).ok());
}

TEST(Parse, RatesAreDecimal) {
  CHECK_EQUAL(1000000000ULL, parse_rate("1gbit").value());
  CHECK_EQUAL(250000000ULL, parse_rate("250mbit").value());
  CHECK_EQUAL(64000ULL, parse_rate("64kbit").value());
  CHECK_EQUAL(5ULL, parse_rate("5").value());
  CHECK_FALSE(parse_rate("1gb").ok());
  CHECK_FALSE(parse_rate("gbit").ok());
  CHECK_FALSE(parse_rate("0mbit").ok());
  CHECK_FALSE(parse_rate("99999999999gbit").ok());
}

TEST(Parse, Sizes) {
  CHECK_EQUAL(4ULL << 30, parse_size("4g").value());
  CHECK_EQUAL(512ULL << 20, parse_size("512MiB").value());
  CHECK_FALSE(parse_size("4q").ok());
}

TEST(Parse, HostPort) {
  auto hp = parse_hostport("239.255.77.1:7700");
  CHECK_TRUE(hp.ok());
  STRCMP_EQUAL("239.255.77.1", hp->host.c_str());
  CHECK_EQUAL(7700, hp->port);
  CHECK_FALSE(parse_hostport("1.2.3.4").ok());
  CHECK_FALSE(parse_hostport("1.2.3.4:0").ok());
  CHECK_TRUE(parse_hostport("1.2.3.4:0", true).ok());
  CHECK_FALSE(parse_hostport("1.2.3.4:70000").ok());
  CHECK_FALSE(parse_hostport("a b:1").ok());
  CHECK_TRUE(is_ipv4_multicast("239.1.2.3"));
  CHECK_FALSE(is_ipv4_multicast("10.1.2.3"));
  CHECK_FALSE(is_ipv4("1.2.3"));
}

TEST(Parse, Hex) {
  const uint8_t b[] = {0x00, 0xab, 0xff};
  STRCMP_EQUAL("00abff", hex_encode(b, 3).c_str());
  auto d = hex_decode("00ABff");
  CHECK_TRUE(d.ok());
  CHECK_EQUAL(3u, d->size());
  CHECK_EQUAL(0xab, static_cast<uint8_t>((*d)[1]));
  CHECK_FALSE(hex_decode("0g").ok());
  CHECK_FALSE(hex_decode("abc").ok());
}
