// Writes the fuzzers' binary seed inputs: one encoded body of every packet
// type (prefixed with its type byte, as wire_fuzz dispatches), a few whole
// datagrams (prefixed with 0) and plaintexts to seal (prefixed with
// kMaxPacketType + 1), and a few manifests. Run by `make fuzz-corpus`;
// its output is checked in under tests/fuzz/corpus/.
#include <cstdio>
#include <string>
#include <vector>

#include "manifest.h"
#include "wire.h"

using namespace shoal;

namespace {

bool write_file(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

Hash filled(uint8_t v) {
  Hash h;
  h.fill(v);
  return h;
}

struct Writer {
  std::string dir;
  bool ok = true;
  // Writes `sel` then the n bytes of buf; fails loudly on an encoder refusal.
  void put(const char* name, uint8_t sel, const std::vector<uint8_t>& buf, size_t n) {
    if (n == 0) {
      std::fprintf(stderr, "gen_corpus: %s did not encode\n", name);
      ok = false;
      return;
    }
    std::string bytes(1, static_cast<char>(sel));
    bytes.append(reinterpret_cast<const char*>(buf.data()), n);
    ok = write_file(dir + "/" + name, bytes) && ok;
  }
};

void datagram(Writer& w, const char* name, PacketType t, const std::vector<uint8_t>& body,
              size_t n) {
  std::vector<uint8_t> d(datagram_len(n), 0xa5);  // the tag bytes stay filler
  Header h{t, 0x01020304, 0x1122334455667788ull, 7, 42};
  encode_header(h, d);
  std::copy(body.begin(), body.begin() + static_cast<long>(n), d.begin() + kHeaderLen);
  w.put(name, 0, d, d.size());
}

// wire_fuzz's sealed path: selector kMaxPacketType + 1, then (type - 1), then the plaintext body.
void sealed(Writer& w, const char* name, PacketType t, const std::vector<uint8_t>& body, size_t n) {
  std::vector<uint8_t> b(n + 1);
  b[0] = static_cast<uint8_t>(static_cast<uint8_t>(t) - 1);
  std::copy(body.begin(), body.begin() + static_cast<long>(n), b.begin() + 1);
  w.put(name, kMaxPacketType + 1, b, b.size());
}

void wire_seeds(Writer& w) {
  std::vector<uint8_t> b(2048);
  Announce a{7788, kCapMcast | kCapSend | kCapRecv, 5000, 3, 1200, 99, 0xdeadbeef, "box-a"};
  size_t n = encode_announce(a, b);
  w.put("announce", 1, b, n);
  datagram(w, "dgram_announce", PacketType::announce, b, n);
  sealed(w, "sealed_announce", PacketType::announce, b, n);
  w.put("catalog_req", 2, b, encode_catalog_req(CatalogReq{10, 64}, b));
  Catalog c{10, 20, kCatalogLast, {{11, filled(1), 4096, 120, 0}, {15, filled(2), 0, 80, 1}}};
  w.put("catalog", 3, b, encode_catalog(c, b));
  w.put("catalog_empty", 3, b, encode_catalog(Catalog{30, 20, kCatalogLast, {}}, b));
  Want wt{filled(3), 100000, 0x55, kWantMore, {{0, 1000}, {5000, 2000}}};
  n = encode_want(wt, b);
  w.put("want", 4, b, n);
  datagram(w, "dgram_want", PacketType::want, b, n);
  w.put("want_whole", 4, b, encode_want(Want{filled(4), 300, 0, kWantManifest, {}}, b));
  const uint8_t payload[] = "chunk bytes";
  Data d{id_prefix(filled(5)), 4096, 1024, true, 17, payload};
  n = encode_data(d, b);
  w.put("data", 5, b, n);
  datagram(w, "dgram_data", PacketType::data, b, n);
  sealed(w, "sealed_data", PacketType::data, b, n);
  w.put("have", 6, b, encode_have(Have{filled(6), 50, 0, {{0, 10}, {20, 5}}}, b));
  w.put("have_complete", 6, b, encode_have(Have{filled(7), 50, kHaveComplete, {}}, b));
  w.put("report", 7, b, encode_report(Report{1000, 7, 500, 480, 20, 250, Flow::unicast}, b));
  w.put("ping", 8, b, encode_ping(Ping{0x0102030405060708ull}, b));
  w.put("pong", 9, b, encode_pong(Pong{0x0807060504030201ull, 0}, b));
  w.put("pong_clock", 9, b, encode_pong(Pong{0x0807060504030201ull, 1700000000000000ull}, b));
  Wants ws{0x66, {Want{filled(8), 5000, 0, 0, {{0, 100}}}, Want{filled(9), 70, 0, kWantManifest, {}}}};
  n = encode_wants(ws, b);
  w.put("wants", 10, b, n);
  datagram(w, "dgram_wants", PacketType::wants, b, n);
  sealed(w, "sealed_wants", PacketType::wants, b, n);
  Stream st{0x77, 1ull << 32, (1ull << 32) - 332144, 40, "media/big.iso",  // ends at file_size
            {{filled(10), 65536}, {filled(11), 4464}, {filled(12), 262144}}};
  n = encode_stream(st, b);
  w.put("stream", 11, b, n);
  datagram(w, "dgram_stream", PacketType::stream, b, n);
  sealed(w, "sealed_stream", PacketType::stream, b, n);
}

void manifest_seeds(const std::string& dir, bool* ok) {
  Manifest m;
  m.path = "docs/report.txt";
  m.size = 300;
  m.mtime_ns = 1700000000123456789;
  m.mode = 0640;
  m.origin = "box-a";
  m.chunks = {{filled(1), 100}, {filled(2), 200}};
  *ok = write_file(dir + "/file", encode_manifest(m)) && *ok;
  m.parent = filled(3);
  m.path = "a/b/c/d/e";
  *ok = write_file(dir + "/with_parent", encode_manifest(m)) && *ok;
  Manifest t;
  t.path = "gone.bin";
  t.flags = kManifestDeleted;
  t.origin = "box-b";
  *ok = write_file(dir + "/tombstone", encode_manifest(t)) && *ok;
  Manifest e;
  e.path = "empty";
  *ok = write_file(dir + "/empty_file", encode_manifest(e)) && *ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gen_corpus CORPUS_DIR (with wire/ and manifest/ inside)\n");
    return 2;
  }
  std::string root = argv[1];
  Writer w{root + "/wire"};
  wire_seeds(w);
  bool ok = w.ok;
  manifest_seeds(root + "/manifest", &ok);
  return ok ? 0 : 1;
}
