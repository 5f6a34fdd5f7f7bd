// ByteReader / ByteWriter: the one bounds-checked cursor for every binary
// format that arrives from disk or a peer (manifests, network packets), and its
// writing twin. Integers are little-endian.
//
// ByteReader fails sticky: a read that does not fit marks the reader failed,
// returns zero / an empty view, and every later read does the same. So a parser
// can read a whole record and check ok() once, and never reads past the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace shoal {

class ByteReader {
 public:
  explicit ByteReader(std::string_view buf) : buf_(buf) {}

  uint8_t u8() { return static_cast<uint8_t>(le(1)); }
  uint16_t u16() { return static_cast<uint16_t>(le(2)); }
  uint32_t u32() { return static_cast<uint32_t>(le(4)); }
  uint64_t u64() { return le(8); }
  int64_t i64() { return static_cast<int64_t>(le(8)); }  // two's complement

  // The next n bytes as a view into the input (no copy), or empty on failure.
  std::string_view bytes(size_t n) {
    if (!take(n)) return {};
    return buf_.substr(pos_ - n, n);
  }
  // Copies the next n bytes into dst; on failure dst is zeroed.
  void copy(void* dst, size_t n);

  // False once any read did not fit (or fail() was called); stays false.
  bool ok() const { return ok_; }
  // Bytes left unread (0 after a failure).
  size_t remaining() const { return ok_ ? buf_.size() - pos_ : 0; }
  // True if no read failed and every byte was consumed.
  bool done() const { return ok_ && pos_ == buf_.size(); }
  // Marks the reader failed, for a parser that found a bad value.
  void fail() { ok_ = false; }

 private:
  bool take(size_t n) {
    if (!ok_ || n > buf_.size() - pos_) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  uint64_t le(size_t n) {
    if (!take(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
      v |= uint64_t{static_cast<uint8_t>(buf_[pos_ - n + i])} << (8 * i);
    return v;
  }

  std::string_view buf_;
  size_t pos_ = 0;
  bool ok_ = true;
};

inline void ByteReader::copy(void* dst, size_t n) {
  std::string_view v = bytes(n);
  if (n == 0) return;
  if (ok_)
    std::memcpy(dst, v.data(), n);
  else
    std::memset(dst, 0, n);
}

// Appends little-endian fields to a caller-owned string (which it never
// clears, so several writers can build one buffer in turn).
class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  void u8(uint8_t v) { le(v, 1); }
  void u16(uint16_t v) { le(v, 2); }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void i64(int64_t v) { le(static_cast<uint64_t>(v), 8); }
  void bytes(std::string_view b) { out_.append(b); }
  void bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }

  size_t size() const { return out_.size(); }

 private:
  void le(uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }

  std::string& out_;
};

}  // namespace shoal
