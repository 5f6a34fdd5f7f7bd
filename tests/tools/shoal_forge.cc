// shoal_forge: a hostile peer for shoal's security tests. It speaks the
// replication protocol (docs/PROTOCOL.md) well enough to be asked for files,
// and serves what a real node never would: manifests with unsafe paths
// (encoded here without validation), chunks with a flipped byte, and bounded
// garbage datagrams. It can seal with a wrong key while putting the right
// share_id in the header, so its packets reach the receivers' AEAD check.
//
// Everything is bounded (duration, garbage count, file size) and traffic goes
// only to loopback, 10.77.0.0/16 or a multicast group joined on such an
// address, with no override: a typo cannot spray a real LAN.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "chunker.h"
#include "crypto.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "netio.h"
#include "parse.h"
#include "reader.h"
#include "wire.h"

namespace shoal {
namespace {

constexpr double kMaxDuration = 120.0;
constexpr uint64_t kMaxGarbage = 100000;
constexpr size_t kMaxFiles = 64;
constexpr size_t kMaxFileBytes = 64u << 20;
constexpr uint32_t kEpoch = 1;  // a fresh process, as after a first start
constexpr size_t kBurst = 32;   // datagrams sent before a short pause

const char kUsage[] =
    "usage: shoal_forge --key-file F --bind IP --port P --group G:PORT --duration S\n"
    "                   [--mcast on|off] [--peer IP:PORT]... [--name NAME]\n"
    "                   [--file REL=LOCALPATH]... [--origin NAME] [--corrupt]\n"
    "                   [--garbage N] [--id-key-file F] [--mtu M]\n"
    "                   [--want-file REL=LOCALPATH]...\n"
    "\n"
    "A hostile shoal peer for tests. Announces (catalog_head = number of --file\n"
    "versions) every second to the group and to each --peer, answers CATALOG_REQ\n"
    "and WANT/WANTS naming it (by multicast if the request came so and --mcast on,\n"
    "else unicast to the requester), for S seconds (max 120), then prints counters\n"
    "as one JSON line and exits 0.\n"
    "  --file REL=LOCALPATH  serve LOCALPATH's bytes as a version whose manifest\n"
    "                        path is REL, any bytes (encoded without validation);\n"
    "                        mtime and mode come from LOCALPATH\n"
    "  --origin NAME         the manifests' origin (default: --name)\n"
    "  --corrupt             chunk data goes out with one byte flipped\n"
    "  --garbage N           also send N (max 100000) malformed, truncated, forged\n"
    "                        or oversized datagrams to the group and each --peer\n"
    "  --id-key-file F       put F's share_id in headers but seal with --key-file\n"
    "                        (a wrong key that still reaches the AEAD check)\n"
    "  --mcast on|off        join the group and announce MCAST (default on)\n"
    "  --want-file REL=LOCALPATH  ask every peer heard announcing for the objects\n"
    "                        (manifest and chunks) of that version, as --file\n"
    "                        builds it but without offering it; counts the DATA\n"
    "                        that comes back per file (wanted_data)\n"
    "Destinations must be 127.0.0.0/8 or 10.77.0.0/16 (the group: 224.0.0.0/4\n"
    "with --bind in those).\n";

volatile sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) { g_stop = 1; }

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool is_test_unicast(in_addr a) {
  uint32_t h = ntohl(a.s_addr);
  return (h >> 24) == 127 || (h >> 16) == ((10u << 8) | 77u);
}
bool is_multicast(in_addr a) { return (ntohl(a.s_addr) >> 28) == 0xe; }

struct FileSpec {
  std::string rel, local;
};

struct Options {
  std::string key_file, id_key_file, bind, name = "forge", origin;
  uint16_t port = 0;
  std::string group;
  bool mcast = true;
  std::vector<std::string> peers;
  double duration = 0;
  std::vector<FileSpec> files;
  std::vector<FileSpec> wants;
  bool corrupt = false;
  uint64_t garbage = 0;
  size_t mtu = kDefaultMtu;
};

// --- manifest ---------------------------------------------------------------
// The layout of src/manifest.cc, without its checks, so hostile paths and
// origins can be encoded. Mirrors encode_manifest byte for byte.
std::string encode_raw_manifest(const Manifest& m) {
  std::string out;
  ByteWriter w(out);
  w.bytes("SHMF");
  w.u8(1);
  w.u32(m.flags);
  w.u64(m.size);
  w.i64(m.mtime_ns);
  w.u32(m.mode);
  w.bytes(m.parent.data(), m.parent.size());
  w.u8(static_cast<uint8_t>(m.origin.size()));
  w.bytes(m.origin);
  w.u16(static_cast<uint16_t>(m.path.size()));
  w.bytes(m.path);
  w.u32(static_cast<uint32_t>(m.chunks.size()));
  for (const ChunkRef& c : m.chunks) {
    w.bytes(c.hash.data(), c.hash.size());
    w.u32(c.len);
  }
  return out;
}

struct Object {
  std::string bytes;
  bool manifest = false;
};

struct Version {
  std::string rel;
  Hash id{};
  uint32_t len = 0;
  uint64_t size = 0;
};

Result<std::string> read_file(const std::string& path, struct stat* st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path, errno);
  std::string out;
  bool ok = ::fstat(fd, st) == 0 && S_ISREG(st->st_mode) &&
            static_cast<uint64_t>(st->st_size) <= kMaxFileBytes;
  if (ok) {
    out.resize(static_cast<size_t>(st->st_size));
    size_t got = 0;
    while (got < out.size()) {
      ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    ok = got == out.size();
  }
  ::close(fd);
  if (!ok) return make_error(Errc::invalid, path + ": not a readable regular file of <= 64 MiB");
  return out;
}

// Chunks `content` like the daemon, stores the chunks and the manifest in
// `objs`, and returns the version. An empty file has no chunks.
Version add_version(const FileSpec& f, const std::string& content, const struct stat& st,
                    const std::string& origin, std::unordered_map<std::string, Object>* objs) {
  Manifest m;
  m.path = f.rel;
  m.size = content.size();
  m.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  m.mode = static_cast<uint32_t>(st.st_mode & 07777);
  m.origin = origin;
  const auto* p = reinterpret_cast<const uint8_t*>(content.data());
  for (size_t off = 0; off < content.size();) {
    size_t n = chunk_cut(p + off, content.size() - off);
    ChunkRef c;
    c.hash = sha256(p + off, n);
    c.len = static_cast<uint32_t>(n);
    m.chunks.push_back(c);
    std::string key(reinterpret_cast<const char*>(c.hash.data()), c.hash.size());
    (*objs)[key] = Object{content.substr(off, n), false};
    off += n;
  }
  std::string enc = encode_raw_manifest(m);
  Version v;
  v.rel = f.rel;
  v.id = manifest_id(enc);
  v.len = static_cast<uint32_t>(enc.size());
  v.size = m.size;
  std::string key(reinterpret_cast<const char*>(v.id.data()), v.id.size());
  (*objs)[key] = Object{std::move(enc), true};
  return v;
}

// --- counters ---------------------------------------------------------------
struct Counters {
  uint64_t announces_sent = 0, catalog_reqs_in = 0, catalog_packets_sent = 0;
  uint64_t wants_in = 0, requests_served = 0, requests_unknown = 0;
  uint64_t data_packets_sent = 0, data_bytes_sent = 0, garbage_sent = 0;
  uint64_t datagrams_sent = 0, bytes_sent = 0, send_errors = 0;
  // Received datagrams not our own: on the unicast socket (replies to us,
  // or requests), on the group socket; and what became of them.
  uint64_t unicast_in = 0, group_in = 0, authentic_in = 0, auth_failed_in = 0;
  uint64_t foreign_share_in = 0, undecodable_in = 0, replayed_in = 0;
  uint64_t wants_sent = 0;
};

// The name for a JSON string: quotes, backslashes and control bytes become '?'.
std::string json_safe(std::string s) {
  for (char& ch : s)
    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) ch = '?';
  return s;
}

// --- the forge ----------------------------------------------------------------
class Forge {
 public:
  explicit Forge(Options o) : o_(std::move(o)), rng_(std::random_device{}()) {}
  int run();

 private:
  Status setup();
  Status load_files();
  void announce();
  void send_garbage(uint64_t n);
  void garbage_one(const sockaddr_in& to);
  void on_datagram(const RecvDatagram& d, bool from_group);
  void on_catalog_req(const CatalogReq& r, const sockaddr_in& src);
  void on_want(const Want& w, bool mcast, const sockaddr_in& src);
  void on_announce(const Header& h, const Announce& a, const sockaddr_in& src);
  void on_data(const Data& d);
  void send_wants();
  void serve(const Object& obj, const Want& w, bool to_group, const sockaddr_in& src);
  bool seal_send(PacketType t, std::span<const uint8_t> body, const sockaddr_in& to,
                 std::span<const uint8_t> extra = {});
  bool raw_send(const sockaddr_in& to, const uint8_t* p, size_t n);
  bool allowed(const sockaddr_in& to) const;
  void pace();
  void print_counters() const;

  Options o_;
  std::mt19937_64 rng_;
  std::string key_;
  uint32_t share_id_ = 0;
  uint64_t self_ = 0;
  Sealer sealer_;
  Opener opener_;
  std::unordered_map<uint64_t, SenderReplay> replay_;
  UdpSocket ucast_, group_sock_;
  sockaddr_in group_{};
  std::vector<sockaddr_in> peers_;
  std::unordered_map<std::string, Object> objs_;
  std::vector<Version> versions_;
  // --want-file: what we ask for, which file each object belongs to, the
  // DATA received per file, and the peers (sender id -> address) to ask.
  std::vector<Want> wanted_;
  std::unordered_map<uint64_t, size_t> wanted_file_;  // id prefix -> --want-file index
  std::vector<uint64_t> wanted_data_;
  std::map<uint64_t, sockaddr_in> targets_;
  uint64_t digest_ = 0;
  uint32_t mflow_ = 0, uflow_ = 0;
  size_t burst_ = 0;
  std::vector<uint8_t> pkt_;
  std::vector<uint8_t> last_sealed_;  // a real datagram, for truncated garbage
  Counters c_;
};

Result<std::string> load_key(const std::string& path) {
  struct stat st {};
  auto text = read_file(path, &st);
  if (!text) return text.error();
  std::string_view hex = trim(*text);
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.remove_suffix(1);
  if (hex.size() != 2 * kShareKeyLen) return make_error(Errc::invalid, path + ": need 64 hex digits");
  return hex_decode(hex);
}

Result<sockaddr_in> parse_addr(const std::string& s) {
  auto hp = parse_hostport(s);
  if (!hp) return hp.error();
  if (!is_ipv4(hp->host)) return make_error(Errc::invalid, s + ": need a dotted IPv4 address");
  return resolve_ipv4(hp->host, hp->port);
}

bool Forge::allowed(const sockaddr_in& to) const {
  if (is_multicast(to.sin_addr)) return true;  // the group: --bind was checked
  return is_test_unicast(to.sin_addr);
}

Status Forge::setup() {
  auto key = load_key(o_.key_file);
  if (!key) return key.error();
  key_ = *key;
  auto idkey = o_.id_key_file.empty() ? key : load_key(o_.id_key_file);
  if (!idkey) return idkey.error();
  auto sid = derive_share_id(*idkey);
  if (!sid) return sid.error();
  share_id_ = *sid;
  auto self = new_sender_id();
  if (!self) return self.error();
  self_ = *self;
  if (auto st = sealer_.init(key_, self_, kEpoch); !st) return st;
  if (auto st = opener_.init(key_); !st) return st;
  in_addr b{};
  if (inet_pton(AF_INET, o_.bind.c_str(), &b) != 1 || !is_test_unicast(b))
    return make_error(Errc::invalid, "--bind must be in 127.0.0.0/8 or 10.77.0.0/16");
  auto g = parse_addr(o_.group);
  if (!g || !is_multicast(g->sin_addr)) return make_error(Errc::invalid, "--group must be a multicast G:PORT");
  group_ = *g;
  for (const auto& p : o_.peers) {
    auto a = parse_addr(p);
    if (!a || !is_test_unicast(a->sin_addr))
      return make_error(Errc::invalid, "--peer " + p + ": only 127.0.0.0/8 or 10.77.0.0/16");
    peers_.push_back(*a);
  }
  auto u = UdpSocket::open_unicast(o_.bind, o_.port);
  if (!u) return u.error();
  ucast_ = std::move(u.value());
  if (o_.mcast) {
    auto m = UdpSocket::open_multicast(inet_ntoa(group_.sin_addr), ntohs(group_.sin_port), o_.bind, "");
    if (!m) return m.error();
    group_sock_ = std::move(m.value());
  }
  pkt_.resize(kMaxDatagram);
  return load_files();
}

Status Forge::load_files() {
  std::string origin = o_.origin.empty() ? o_.name : o_.origin;
  for (const FileSpec& f : o_.files) {
    struct stat st {};
    auto content = read_file(f.local, &st);
    if (!content) return content.error();
    Version v = add_version(f, *content, st, origin, &objs_);
    uint64_t pre = 0;
    std::memcpy(&pre, v.id.data(), sizeof pre);
    digest_ ^= pre;
    fprintf(stderr, "shoal_forge: version %zu %s len %u path '%s'\n", versions_.size() + 1,
            hash_hex(v.id).c_str(), v.len, log_escape(v.rel).c_str());
    versions_.push_back(std::move(v));
  }
  for (size_t k = 0; k < o_.wants.size(); k++) {
    const FileSpec& f = o_.wants[k];
    struct stat st {};
    auto content = read_file(f.local, &st);
    if (!content) return content.error();
    std::unordered_map<std::string, Object> objs;
    Version v = add_version(f, *content, st, origin, &objs);
    fprintf(stderr, "shoal_forge: wanted %zu %s len %u path '%s'\n", k + 1, hash_hex(v.id).c_str(),
            v.len, log_escape(v.rel).c_str());
    for (const auto& [key, obj] : objs) {
      Want w;
      std::memcpy(w.id.data(), key.data(), w.id.size());
      w.object_len = static_cast<uint32_t>(obj.bytes.size());
      w.flags = obj.manifest ? kWantManifest : 0;
      uint64_t pre = 0;
      std::memcpy(&pre, w.id.data(), sizeof pre);
      wanted_file_[pre] = k;
      wanted_.push_back(w);
    }
  }
  wanted_data_.assign(o_.wants.size(), 0);
  return {};
}

// --- sending --------------------------------------------------------------------
bool Forge::raw_send(const sockaddr_in& to, const uint8_t* p, size_t n) {
  if (!allowed(to)) return false;
  double deadline = now_s() + 1.0;
  for (;;) {
    Status st = ucast_.send_to(to, p, n);
    if (st) break;
    if (st.error().code != Errc::busy || now_s() > deadline) {
      c_.send_errors++;
      return false;
    }
    usleep(200);
  }
  c_.datagrams_sent++;
  c_.bytes_sent += n;
  pace();
  return true;
}

// Small pauses keep a burst of DATA within the receivers' socket buffers.
void Forge::pace() {
  if (++burst_ < kBurst) return;
  burst_ = 0;
  usleep(300);
}

bool Forge::seal_send(PacketType t, std::span<const uint8_t> body, const sockaddr_in& to,
                      std::span<const uint8_t> extra) {
  Header h;
  h.type = t;
  h.share_id = share_id_;
  h.sender_id = self_;
  h.epoch = kEpoch;
  if (encode_header(h, pkt_) == 0) return false;
  std::memcpy(pkt_.data() + kHeaderLen, body.data(), body.size());
  auto n = sealer_.seal(pkt_, body.size(), extra);
  if (!n) return false;
  if (last_sealed_.empty() || t == PacketType::announce)
    last_sealed_.assign(pkt_.begin(), pkt_.begin() + static_cast<long>(*n));
  return raw_send(to, pkt_.data(), *n);
}

void Forge::announce() {
  Announce a;
  a.port = ucast_.local_port();
  a.caps = static_cast<uint16_t>((o_.mcast ? kCapMcast : 0) | kCapSend | kCapRecv);
  a.interval_ms = 1000;
  a.peers = 1;
  a.catalog_head = versions_.size();
  a.catalog_digest = digest_;
  a.name = o_.name;
  uint8_t body[kAnnounceFixedLen + kMaxNodeNameLen];
  size_t len = encode_announce(a, body);
  if (len == 0) return;
  if (seal_send(PacketType::announce, {body, len}, group_)) c_.announces_sent++;
  for (const auto& p : peers_)
    if (seal_send(PacketType::announce, {body, len}, p)) c_.announces_sent++;
}

void Forge::on_catalog_req(const CatalogReq& r, const sockaddr_in& src) {
  c_.catalog_reqs_in++;
  Catalog c;
  c.after_seq = r.after_seq;
  c.head = versions_.size();
  size_t per = max_catalog_entries(o_.mtu);
  size_t limit = std::min<size_t>(r.max_entries, 256);
  std::vector<uint8_t> body(o_.mtu);
  size_t sent = 0;
  uint64_t seq = r.after_seq;
  do {
    c.entries.clear();
    for (; seq < versions_.size() && c.entries.size() < per && sent < limit; seq++, sent++) {
      const Version& v = versions_[seq];
      c.entries.push_back({seq + 1, v.id, v.size, v.len, 0});
    }
    bool last = seq >= versions_.size() || sent >= limit;
    c.flags = last ? kCatalogLast : 0;
    size_t len = encode_catalog(c, body);
    if (len == 0) return;
    if (seal_send(PacketType::catalog, {body.data(), len}, src)) c_.catalog_packets_sent++;
    if (last) return;
    c.after_seq = seq;
  } while (true);
}

void Forge::on_want(const Want& w, bool mcast, const sockaddr_in& src) {
  std::string key(reinterpret_cast<const char*>(w.id.data()), w.id.size());
  auto it = objs_.find(key);
  if (it == objs_.end() || it->second.bytes.size() != w.object_len) {
    c_.requests_unknown++;
    return;
  }
  c_.requests_served++;
  serve(it->second, w, mcast && o_.mcast, src);
}

void Forge::serve(const Object& obj, const Want& w, bool to_group, const sockaddr_in& src) {
  std::string bytes = obj.bytes;
  if (o_.corrupt && !obj.manifest && !bytes.empty()) bytes[bytes.size() / 2] ^= 0x5a;
  std::vector<Range> ranges = w.ranges;
  if (ranges.empty()) ranges.push_back({0, w.object_len});
  const size_t maxp = max_data_payload(o_.mtu);
  uint8_t fields[kDataFixedLen];
  for (const Range& r : ranges) {
    for (uint32_t off = r.start; off < r.start + r.len;) {
      uint32_t n = static_cast<uint32_t>(std::min<size_t>(r.start + r.len - off, maxp));
      Data d;
      std::memcpy(d.prefix.data(), w.id.data(), kIdPrefixLen);
      d.object_len = w.object_len;
      d.offset = off;
      d.mcast = to_group;
      d.flow_seq = (to_group ? mflow_++ : uflow_++) & kMaxFlowSeq;
      d.payload = {reinterpret_cast<const uint8_t*>(bytes.data()) + off, n};
      size_t flen = encode_data_fields(d, fields);
      if (flen == 0) return;
      if (seal_send(PacketType::data, {fields, flen}, to_group ? group_ : src, d.payload)) {
        c_.data_packets_sent++;
        c_.data_bytes_sent += n;
      }
      off += n;
    }
  }
}

// --- asking (--want-file) ------------------------------------------------------
void Forge::on_announce(const Header& h, const Announce& a, const sockaddr_in& src) {
  if (wanted_.empty() || targets_.size() >= 64) return;
  sockaddr_in to = src;
  to.sin_port = htons(a.port);
  if (allowed(to)) targets_[h.sender_id] = to;
}

// Every wanted object of every file, to every peer heard, by unicast.
void Forge::send_wants() {
  std::vector<uint8_t> body(o_.mtu);
  for (const auto& [id, to] : targets_) {
    for (size_t i = 0; i < wanted_.size();) {
      Wants ws;
      ws.target = id;
      size_t len = kWantsFixedLen;
      for (; i < wanted_.size() && len + wants_item_len(wanted_[i]) <= max_body(o_.mtu) &&
             ws.items.size() < kMaxListCount;
           i++) {
        len += wants_item_len(wanted_[i]);
        ws.items.push_back(wanted_[i]);
      }
      size_t n = encode_wants(ws, body);
      if (n == 0) return;
      if (seal_send(PacketType::wants, {body.data(), n}, to)) c_.wants_sent++;
    }
  }
}

void Forge::on_data(const Data& d) {
  uint64_t pre = 0;
  std::memcpy(&pre, d.prefix.data(), sizeof pre);
  auto it = wanted_file_.find(pre);
  if (it != wanted_file_.end()) wanted_data_[it->second]++;
}

// --- garbage --------------------------------------------------------------------
void Forge::garbage_one(const sockaddr_in& to) {
  std::uniform_int_distribution<size_t> len_of(0, o_.mtu - kIpUdpOverhead);
  size_t len = len_of(rng_);
  for (size_t i = 0; i < len; i++) pkt_[i] = static_cast<uint8_t>(rng_());
  Header h;
  h.share_id = share_id_;
  h.sender_id = rng_() | 1;
  h.epoch = static_cast<uint32_t>(rng_() % 5 + 1);
  h.counter = rng_() % 1000;
  switch (rng_() % 6) {
    case 0:  // random bytes
      break;
    case 1:  // a plausible header of any type, random body and tag
      len = std::max(len, kMinDatagram);
      h.type = static_cast<PacketType>(rng_() % kMaxPacketType + 1);
      (void)encode_header(h, pkt_);
      break;
    case 2:  // a real datagram of ours, cut short
      if (!last_sealed_.empty()) {
        len = rng_() % last_sealed_.size();
        std::memcpy(pkt_.data(), last_sealed_.data(), len);
      }
      break;
    case 3: {  // header rules broken one at a time
      len = std::max(len, kMinDatagram);
      h.type = PacketType::announce;
      (void)encode_header(h, pkt_);
      uint64_t which = rng_() % 5;
      if (which == 0) pkt_[0] ^= 0xff;             // magic
      if (which == 1) pkt_[2] = 2;                 // version
      if (which == 2) pkt_[3] = static_cast<uint8_t>(kMaxPacketType + 1 + rng_() % 200);
      if (which == 3) std::memset(pkt_.data() + kHeaderSenderOff, 0, 8);
      if (which == 4) std::memset(pkt_.data() + kHeaderEpochOff, 0, 4);
      break;
    }
    case 4: {  // sealed with our key, a random body: decoders see junk
      uint8_t body[256];
      size_t blen = rng_() % sizeof body;
      for (size_t i = 0; i < blen; i++) body[i] = static_cast<uint8_t>(rng_());
      auto t = static_cast<PacketType>(rng_() % kMaxPacketType + 1);
      if (seal_send(t, {body, blen}, to)) c_.garbage_sent++;
      return;
    }
    default:  // larger than any receive slot (IP fragments on the wire)
      len = 2048 + rng_() % 6000;
      for (size_t i = 0; i < len; i++) pkt_[i] = static_cast<uint8_t>(rng_());
      (void)encode_header(h, pkt_);
      break;
  }
  if (raw_send(to, pkt_.data(), len)) c_.garbage_sent++;
}

void Forge::send_garbage(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    size_t k = rng_() % (peers_.size() + 1);
    garbage_one(k == peers_.size() ? group_ : peers_[k]);
  }
}

// --- receiving --------------------------------------------------------------------
void Forge::on_datagram(const RecvDatagram& d, bool from_group) {
  std::span<uint8_t> dg(const_cast<uint8_t*>(d.data), d.len);
  Header h;
  bool header_ok = !d.truncated && decode_header(dg, &h) == Drop::none;
  if (header_ok && h.sender_id == self_) return;  // our own multicast, looped back
  (from_group ? c_.group_in : c_.unicast_in)++;
  if (!header_ok) return void(c_.undecodable_in++);
  if (h.share_id != share_id_) return void(c_.foreign_share_in++);
  SenderReplay& rp = replay_[h.sender_id];
  if (rp.check(h.epoch, h.counter) != Drop::none) return void(c_.replayed_in++);
  if (opener_.open(h, dg) != Drop::none) return void(c_.auth_failed_in++);
  (void)rp.accept(h.epoch, h.counter);
  c_.authentic_in++;
  auto body = body_of(std::span<const uint8_t>(dg.data(), dg.size()));
  if (h.type == PacketType::announce) {
    Announce a;
    if (decode_announce(body, &a) == Drop::none) on_announce(h, a, d.src);
  } else if (h.type == PacketType::data) {
    Data dd;
    if (decode_data(body, &dd) == Drop::none) on_data(dd);
  } else if (h.type == PacketType::catalog_req) {
    CatalogReq r;
    if (decode_catalog_req(body, &r) == Drop::none && !from_group) on_catalog_req(r, d.src);
  } else if (h.type == PacketType::want) {
    Want w;
    if (decode_want(body, &w) != Drop::none) return;
    if (w.target == self_ || (w.target == 0 && !from_group)) {
      c_.wants_in++;
      on_want(w, from_group, d.src);
    }
  } else if (h.type == PacketType::wants) {
    Wants ws;
    if (decode_wants(body, &ws) != Drop::none || ws.target != self_) return;
    c_.wants_in++;
    for (const Want& w : ws.items) on_want(w, from_group, d.src);
  }
}

void Forge::print_counters() const {
  printf("{\"name\":\"%s\",\"sender_id\":%llu,\"versions\":%zu,", json_safe(o_.name).c_str(),
         static_cast<unsigned long long>(self_), versions_.size());
  const std::pair<const char*, uint64_t> kv[] = {
      {"announces_sent", c_.announces_sent},   {"catalog_reqs_in", c_.catalog_reqs_in},
      {"catalog_packets_sent", c_.catalog_packets_sent}, {"wants_in", c_.wants_in},
      {"requests_served", c_.requests_served}, {"requests_unknown", c_.requests_unknown},
      {"data_packets_sent", c_.data_packets_sent}, {"data_bytes_sent", c_.data_bytes_sent},
      {"garbage_sent", c_.garbage_sent},       {"datagrams_sent", c_.datagrams_sent},
      {"bytes_sent", c_.bytes_sent},           {"send_errors", c_.send_errors},
      {"unicast_in", c_.unicast_in},           {"group_in", c_.group_in},
      {"authentic_in", c_.authentic_in},       {"auth_failed_in", c_.auth_failed_in},
      {"foreign_share_in", c_.foreign_share_in}, {"undecodable_in", c_.undecodable_in},
      {"replayed_in", c_.replayed_in},         {"wants_sent", c_.wants_sent}};
  for (const auto& [name, v] : kv) printf("\"%s\":%llu,", name, static_cast<unsigned long long>(v));
  printf("\"wanted_data\":[");
  for (size_t i = 0; i < wanted_data_.size(); i++)
    printf("%s%llu", i ? "," : "", static_cast<unsigned long long>(wanted_data_[i]));
  printf("]}\n");
  fflush(stdout);
}

int Forge::run() {
  if (Status st = setup(); !st) {
    fprintf(stderr, "shoal_forge: %s\n", st.error().msg.c_str());
    return 2;
  }
  RecvBatch batch(32, 2048);
  const double start = now_s(), end = start + o_.duration;
  // Garbage goes out over the first half of the run, in small batches.
  const double garbage_span = std::max(0.1, o_.duration / 2);
  double next_announce = start;
  uint64_t garbage_left = o_.garbage;
  while (!g_stop && now_s() < end) {
    double now = now_s();
    if (now >= next_announce) {
      announce();
      send_wants();
      next_announce = now + 1.0;
    }
    if (garbage_left > 0) {
      double due = static_cast<double>(o_.garbage) * std::min(1.0, (now - start) / garbage_span);
      uint64_t sent = o_.garbage - garbage_left;
      uint64_t n = due > static_cast<double>(sent) ? static_cast<uint64_t>(due) - sent : 0;
      n = std::min(std::max<uint64_t>(n, 1), garbage_left);
      send_garbage(n);
      garbage_left -= n;
    }
    pollfd p[2] = {{ucast_.fd(), POLLIN, 0}, {group_sock_.is_open() ? group_sock_.fd() : -1, POLLIN, 0}};
    double wake = std::min(end, next_announce);
    if (garbage_left > 0) wake = std::min(wake, now + 0.01);
    int ms = static_cast<int>(std::max(0.0, wake - now) * 1000.0) + 1;
    if (poll(p, 2, ms) <= 0) continue;
    for (int k = 0; k < 2; k++) {
      if (!(p[k].revents & POLLIN)) continue;
      UdpSocket& s = k == 0 ? ucast_ : group_sock_;
      for (int round = 0; round < 16 && s.recv_batch(batch) > 0; round++)
        for (size_t i = 0; i < batch.size(); i++) on_datagram(batch[i], k == 1);
    }
  }
  print_counters();
  return 0;
}

// --- arguments --------------------------------------------------------------------
bool take(const char* v, std::string* out) {
  if (v == nullptr) return false;
  *out = v;
  return true;
}

bool parse_valued(const std::string& a, const char* v, Options* o, bool* ok) {
  auto num = [&](uint64_t lo, uint64_t hi) -> std::optional<uint64_t> {
    if (v == nullptr) return std::nullopt;
    auto r = parse_uint(v, lo, hi);
    return r ? std::optional<uint64_t>(*r) : std::nullopt;
  };
  if (a == "--key-file") *ok = take(v, &o->key_file);
  else if (a == "--id-key-file") *ok = take(v, &o->id_key_file);
  else if (a == "--bind") *ok = take(v, &o->bind);
  else if (a == "--group") *ok = take(v, &o->group);
  else if (a == "--name") *ok = take(v, &o->name) && !o->name.empty() && o->name.size() <= kMaxNodeNameLen;
  else if (a == "--origin") *ok = take(v, &o->origin) && o->origin.size() <= 255;
  else if (a == "--port") {
    auto n = num(0, 65535);
    *ok = n.has_value();
    o->port = static_cast<uint16_t>(n.value_or(0));
  } else if (a == "--duration") {
    auto n = num(1, static_cast<uint64_t>(kMaxDuration));
    *ok = n.has_value();
    o->duration = static_cast<double>(n.value_or(0));
  } else if (a == "--garbage") {
    auto n = num(0, kMaxGarbage);
    *ok = n.has_value();
    o->garbage = n.value_or(0);
  } else if (a == "--mtu") {
    auto n = num(kMinMtu, kMaxMtu);
    *ok = n.has_value();
    o->mtu = n.value_or(kDefaultMtu);
  } else if (a == "--mcast") {
    auto b = v ? parse_bool(v) : Result<bool>(make_error(Errc::invalid, ""));
    *ok = b.ok();
    o->mcast = b.ok() && *b;
  } else if (a == "--peer") {
    *ok = v != nullptr;
    if (*ok) o->peers.push_back(v);
  } else if (a == "--file") {
    std::string s = v ? v : "";
    size_t eq = s.rfind('=');
    *ok = eq != std::string::npos && eq > 0 && eq + 1 < s.size() && o->files.size() < kMaxFiles;
    if (*ok) o->files.push_back({s.substr(0, eq), s.substr(eq + 1)});
  } else if (a == "--want-file") {
    std::string s = v ? v : "";
    size_t eq = s.rfind('=');
    *ok = eq != std::string::npos && eq > 0 && eq + 1 < s.size() && o->wants.size() < kMaxFiles;
    if (*ok) o->wants.push_back({s.substr(0, eq), s.substr(eq + 1)});
  } else {
    return false;
  }
  return true;
}

int usage_error(const std::string& what) {
  fprintf(stderr, "shoal_forge: %s (see --help)\n", what.c_str());
  return 2;
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) {
  using namespace shoal;
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = true;
    if (a == "--help" || a == "-h") return fputs(kUsage, stdout), 0;
    if (a == "--corrupt") {
      o.corrupt = true;
    } else if (parse_valued(a, v, &o, &ok)) {
      if (!ok) return usage_error("bad " + a + (v ? std::string(" ") + v : std::string()));
      i++;
    } else {
      return usage_error("unknown option " + a);
    }
  }
  if (o.key_file.empty() || o.bind.empty() || o.group.empty() || o.duration <= 0)
    return usage_error("--key-file, --bind, --group and --duration are required");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  Forge f(std::move(o));
  return f.run();
}
