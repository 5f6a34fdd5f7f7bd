#include "reader.h"

#include <CppUTest/TestHarness.h>

#include <string>

using namespace shoal;

TEST_GROUP(Reader){};

TEST(Reader, RoundTripLittleEndian) {
  std::string buf;
  ByteWriter w(buf);
  w.u8(0xab);
  w.u16(0x1234);
  w.u32(0xdeadbeef);
  w.u64(0x0102030405060708ULL);
  w.i64(-2);
  w.bytes("xyz");
  CHECK_EQUAL(1u + 2 + 4 + 8 + 8 + 3, w.size());
  // Little-endian on the wire regardless of host order.
  CHECK_EQUAL(0x34, static_cast<uint8_t>(buf[1]));
  CHECK_EQUAL(0x12, static_cast<uint8_t>(buf[2]));
  CHECK_EQUAL(0xef, static_cast<uint8_t>(buf[3]));
  CHECK_EQUAL(0x08, static_cast<uint8_t>(buf[7]));

  ByteReader r(buf);
  CHECK_EQUAL(0xab, r.u8());
  CHECK_EQUAL(0x1234, r.u16());
  CHECK_EQUAL(0xdeadbeefu, r.u32());
  CHECK_EQUAL(0x0102030405060708ULL, r.u64());
  CHECK_EQUAL(-2, r.i64());
  CHECK_EQUAL(3u, r.remaining());
  CHECK_FALSE(r.done());
  CHECK(r.bytes(3) == "xyz");
  CHECK_TRUE(r.ok());
  CHECK_TRUE(r.done());
  CHECK_EQUAL(0u, r.remaining());
}

TEST(Reader, WriterAppendsToExistingBuffer) {
  std::string buf = "hdr";
  ByteWriter w(buf);
  w.u16(1);
  CHECK_EQUAL(5u, buf.size());
  CHECK(buf.substr(0, 3) == "hdr");
}

TEST(Reader, ShortReadFailsAndSticks) {
  const std::string buf("\x01\x02\x03", 3);
  ByteReader r(buf);
  CHECK_EQUAL(0u, r.u32());  // needs 4, only 3
  CHECK_FALSE(r.ok());
  CHECK_EQUAL(0u, r.remaining());
  CHECK_EQUAL(0, r.u8());  // a byte is there, but the reader stays failed
  CHECK(r.bytes(1).empty());
  CHECK_FALSE(r.done());
}

TEST(Reader, HugeLengthDoesNotOverflow) {
  const std::string buf("abcd", 4);
  ByteReader r(buf);
  r.u8();
  CHECK(r.bytes(SIZE_MAX).empty());
  CHECK_FALSE(r.ok());
}

TEST(Reader, ExactFitAndZeroLength) {
  const std::string buf("\xff\xff", 2);
  ByteReader r(buf);
  CHECK(r.bytes(0).empty());
  CHECK_TRUE(r.ok());
  CHECK_EQUAL(0xffff, r.u16());
  CHECK_TRUE(r.done());
  CHECK(r.bytes(0).empty());
  CHECK_TRUE(r.ok());
}

TEST(Reader, CopyZeroesOnFailure) {
  const std::string buf("\x11\x22\x33", 3);
  ByteReader r(buf);
  uint8_t out[4] = {9, 9, 9, 9};
  r.copy(out, 2);
  CHECK_EQUAL(0x11, out[0]);
  CHECK_EQUAL(0x22, out[1]);
  r.copy(out, 4);
  CHECK_FALSE(r.ok());
  for (uint8_t b : out) CHECK_EQUAL(0, b);
}

TEST(Reader, FailMarksReader) {
  const std::string buf("ab", 2);
  ByteReader r(buf);
  r.fail();
  CHECK_FALSE(r.ok());
  CHECK_EQUAL(0, r.u8());
}
