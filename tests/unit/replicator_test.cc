// The replicator's security behaviour, against a scripted peer on loopback:
// key usage limits (epoch roll-over, both directions) and share boundaries
// (a member of one share cannot fetch another share's objects).
#include "replicator.h"
#include "publish.h"

#include "testutil.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "crypto.h"
#include "fec.h"
#include "ingest.h"
#include "log.h"
#include "manifest.h"
#include "netio.h"
#include "rangeset.h"
#include "store.h"
#include "wire.h"

// CppUTest last: its operator-new macro breaks standard headers included after it.
#include <CppUTest/TestHarness.h>

using namespace shoal;

namespace {

std::string key_of(char c) { return std::string(kShareKeyLen, c); }

std::string make_tmp_dir() {
  for (const char* base : {"/dev/shm", "/tmp"}) {
    std::string tmpl = std::string(base) + "/shoal-rep-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) return tmpl;
  }
  return "";
}

// A peer of one share, driven by the test: seals what it sends, opens what
// it receives (every datagram the node sends it, with epoch and counter).
struct TestPeer {
  UdpSocket sock;
  Sealer sealer;
  Opener opener;
  uint64_t id = 0x5eed;
  uint32_t share_id = 0;
  sockaddr_in node{};
  struct Got {
    Header h;
    std::vector<uint8_t> body;
  };
  std::vector<Got> got;

  void init(const std::string& key, uint16_t node_port) {
    auto s = UdpSocket::open_unicast("127.0.0.1", 0);
    CHECK_TRUE(s.ok());
    sock = std::move(s.value());
    CHECK_TRUE(sealer.init(key, id, 1).ok());
    CHECK_TRUE(opener.init(key).ok());
    share_id = derive_share_id(key).value();
    node = resolve_ipv4("127.0.0.1", node_port).value();
  }
  uint16_t port() const { return sock.local_port(); }

  // A sealed datagram, not sent yet.
  std::vector<uint8_t> seal(PacketType t, const std::vector<uint8_t>& body) {
    std::vector<uint8_t> d(datagram_len(body.size()));
    Header h;
    h.type = t;
    h.share_id = share_id;
    h.sender_id = id;
    h.epoch = sealer.epoch();
    CHECK_TRUE(encode_header(h, d) > 0);
    std::copy(body.begin(), body.end(), d.begin() + kHeaderLen);
    CHECK_TRUE(sealer.seal(d, body.size()).ok());
    return d;
  }
  void send(const std::vector<uint8_t>& d) { CHECK_TRUE(sock.send_to(node, d.data(), d.size()).ok()); }
  std::vector<uint8_t> ping(uint64_t token) {
    std::vector<uint8_t> b(kPingLen);
    CHECK_EQUAL(kPingLen, encode_ping(Ping{token}, b));
    return seal(PacketType::ping, b);
  }
  void announce() {
    Announce a;
    a.port = port();
    a.interval_ms = 1000;
    a.peers = 2;
    a.name = "peer";
    std::vector<uint8_t> b(kAnnounceFixedLen + a.name.size());
    CHECK_TRUE(encode_announce(a, b) > 0);
    send(seal(PacketType::announce, b));
  }
  void want(uint64_t target, const Hash& id_, uint32_t len, bool manifest) {
    Wants ws;
    ws.target = target;
    Want w;
    w.id = id_;
    w.object_len = len;
    w.flags = manifest ? kWantManifest : 0;
    ws.items.push_back(w);
    std::vector<uint8_t> b(1400);
    size_t n = encode_wants(ws, b);
    CHECK_TRUE(n > 0);
    b.resize(n);
    send(seal(PacketType::wants, b));
  }
  // Reads everything queued on the socket; keeps what authenticates.
  void drain() {
    RecvBatch batch(64, 2048);
    while (sock.recv_batch(batch) > 0) {
      for (size_t i = 0; i < batch.size(); i++) {
        const RecvDatagram& r = batch[i];
        std::vector<uint8_t> d(r.data, r.data + r.len);
        Header h;
        if (decode_header(d, &h) != Drop::none || opener.open(h, d) != Drop::none) continue;
        auto body = body_of(std::span<const uint8_t>(d.data(), d.size()));
        got.push_back({h, std::vector<uint8_t>(body.begin(), body.end())});
      }
    }
  }
  size_t count(PacketType t) const {
    size_t n = 0;
    for (const Got& g : got) n += g.h.type == t ? 1 : 0;
    return n;
  }
};

}  // namespace

TEST_GROUP(Replicator) {
  // A receive-only share named `k` (key of `k`, group port `port`) with `p`
  // as its static peer; `p` gets the share's key.
  template <class Peer>
  void add_receiving_share(Peer& p, char k, uint16_t port) {
    p.init(key_of(k), node->port());
    ShareConfig c;
    c.name = std::string(1, k);
    c.path = dir + "/" + c.name;
    ::mkdir(c.path.c_str(), 0755);
    c.group = HostPort{"239.77.1.1", port};
    c.mode = ShareMode::receiveonly;
    c.peers.push_back(HostPort{"127.0.0.1", p.port()});
    CHECK_TRUE(node->add_share(c, key_of(k)).ok());
  }
  // The provider announces and begins (one fragment each) every chunk the
  // node asks for, until nothing new begins: memory full of partial chunks.
  template <class Prov>
  void begin_partials(Prov& prov) {
    prov.breathe = [this] { run_ms(1); };
    prov.partial = true;
    prov.announce();
    for (int i = 0, still = 0; i < 200 && still < 10; i++) {
      size_t before = prov.started.size();
      run_ms(5);
      prov.answer();
      still = prov.started.size() == before && before > 0 ? still + 1 : 0;
    }
  }

  // A directory where the version's part file would go: the part cannot be
  // created, so its chunks take the reassembly-memory path (as versions do
  // when a share has 16 part files open).
  template <class Prov>
  void block_part_file(const std::string& share_dir, Prov& prov) {
    ::mkdir((share_dir + "/" + kPartsDir).c_str(), 0700);
    CHECK_EQUAL(0, ::mkdir((share_dir + "/" + kPartsDir + "/" + PartFile::name_of(prov.mid)).c_str(), 0700));
  }

  // The provider answers (at most `rounds` times 5 ms) until `out` exists;
  // then it must hold the provider's bytes and no reassembly memory is left.
  template <class Prov>
  void answer_until_whole(Prov& prov, const std::string& out, int rounds) {
    for (int i = 0; i < rounds && !std::filesystem::exists(out); i++) {
      run_ms(5);
      prov.answer();
    }
    CHECK_TRUE(std::filesystem::exists(out));
    CHECK_TRUE(test::read_file(out) == prov.content);
    CHECK_EQUAL(0u, stats()["inflight_bytes"].get<uint64_t>());
  }

  std::string dir;
  event_base* base = nullptr;
  std::unique_ptr<Store> reader;
  std::unique_ptr<Ingester> worker;
  std::unique_ptr<Node> node;
  uint64_t sender_id = 0;
  uint32_t epoch = 0;
  LogLevel saved = LogLevel::info;

  void setup() override {
    saved = log_level();
    log_set_level(LogLevel::error);
    dir = make_tmp_dir();
    CHECK_FALSE(dir.empty());
    evthread_use_pthreads();
    base = event_base_new();
    auto w = Store::open(dir + "/shoal.db");
    CHECK_TRUE(w.ok());
    auto r = Store::open(dir + "/shoal.db");
    CHECK_TRUE(r.ok());
    reader = std::move(r.value());
    CHECK_TRUE(load_identity(*w.value(), &sender_id, &epoch).ok());
    auto in = Ingester::start(base, std::move(w.value()), "nodeA", [](const IngestResult&) {});
    CHECK_TRUE(in.ok());
    worker = std::move(in.value());
  }
  void teardown() override {
    worker.reset();  // before the node: no worker reply reaches a dead node
    node.reset();
    reader.reset();
    event_base_free(base);
    std::filesystem::remove_all(dir);
    log_set_level(saved);
  }

  void start_node(uint64_t rekey_after = 0) {
    NodeOptions o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.multicast = false;
    o.node_name = "nodeA";
    o.sender_id = sender_id;
    o.epoch = epoch;
    o.rekey_after = rekey_after;
    auto n = Node::create(base, o, reader.get(), worker.get());
    CHECK_TRUE(n.ok());
    node = std::move(n.value());
  }
  void add_share(const std::string& name, const std::string& key, uint16_t peer_port, uint16_t group_port) {
    ShareConfig c;
    c.name = name;
    c.path = dir + "/" + name;
    ::mkdir(c.path.c_str(), 0755);
    c.group = HostPort{"239.77.1.1", group_port};
    c.mode = ShareMode::sendonly;  // these tests look at serving, not fetching
    c.peers.push_back(HostPort{"127.0.0.1", peer_port});
    CHECK_TRUE(node->add_share(c, key).ok());
  }
  void run_ms(int ms) {
    timeval tv{0, ms * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  nlohmann::json stats() { return node->stats_json(); }
  uint64_t drops(const char* reason) { return stats()["drops"][reason].get<uint64_t>(); }

  // Ingests `content` as share/rel through the worker, as the daemon would.
  void ingest(const std::string& share, const std::string& rel, const std::string& content) {
    test::write_file(dir + "/" + share + "/" + rel, content);
    worker->submit(IngestJob{IngestJob::Kind::file, share, dir + "/" + share, rel});
    for (int i = 0; i < 200 && worker->pending() > 0; i++) run_ms(10);
    CHECK_EQUAL(0u, worker->pending());
  }
  Manifest manifest_of(const std::string& share, const std::string& rel, Hash* id, uint32_t* len) {
    auto f = reader->get_file(share, rel);
    CHECK_TRUE(f.ok() && f->has_value());
    *id = (**f).manifest;
    std::string enc;
    CHECK_TRUE(reader->get_manifest(*id, &enc).ok());
    *len = static_cast<uint32_t>(enc.size());
    return decode_manifest(enc).value();
  }
};

// The node rolls to a new epoch every `rekey_after` datagrams, persisting
// each before use, and every reply still arrives and authenticates.
TEST(Replicator, SenderMovesToNewEpochsAtTheLimitAndKeepsSending) {
  start_node(16);
  TestPeer p;
  p.init(key_of('s'), node->port());
  add_share("s", key_of('s'), p.port(), 7701);
  const int kPings = 120;
  for (int i = 0; i < kPings; i += 4) {
    for (int k = 0; k < 4; k++) p.send(p.ping(static_cast<uint64_t>(1000 + i + k)));
    run_ms(4);
    p.drain();
  }
  run_ms(20);
  p.drain();
  CHECK_EQUAL(static_cast<size_t>(kPings), p.count(PacketType::pong));
  std::map<uint32_t, uint64_t> top;  // epoch -> highest counter seen
  std::set<uint64_t> tokens;
  uint32_t last_epoch = 0;
  for (const auto& g : p.got) {
    CHECK_EQUAL(sender_id, g.h.sender_id);
    CHECK_TRUE(g.h.epoch >= last_epoch);  // never back to an old epoch
    last_epoch = g.h.epoch;
    top[g.h.epoch] = std::max(top[g.h.epoch], g.h.counter);
    Pong pg;
    if (g.h.type == PacketType::pong && decode_pong(g.body, &pg) == Drop::none) tokens.insert(pg.token);
  }
  CHECK_EQUAL(static_cast<size_t>(kPings), tokens.size());
  CHECK_TRUE(top.size() >= 5);  // 120+ datagrams at 16 per epoch
  CHECK_EQUAL(epoch, top.begin()->first);
  for (auto& [e, c] : top) CHECK_TRUE(c < 32);  // the hard limit (2 x 16) was never reached
  auto persisted = reader->get_meta("epoch");
  CHECK_TRUE(persisted.ok() && persisted->has_value());
  CHECK_EQUAL(std::to_string(top.rbegin()->first), **persisted);
  CHECK_EQUAL(top.size() - 1, stats()["rekeys"].get<size_t>());
}

// A peer that moves to a new epoch is heard at once; its old epoch's
// datagrams pass only once and only within the grace; older ones are stale.
TEST(Replicator, ReceiverTakesNewEpochAndDropsOldReplays) {
  start_node();
  TestPeer p;
  p.init(key_of('s'), node->port());
  add_share("s", key_of('s'), p.port(), 7702);
  std::vector<std::vector<uint8_t>> sent1;
  for (int i = 0; i < 5; i++) sent1.push_back(p.ping(static_cast<uint64_t>(i + 1)));
  std::vector<uint8_t> late1 = p.ping(99);  // sealed in epoch 1, sent after the switch
  std::vector<uint8_t> later1 = p.ping(98);
  for (auto& d : sent1) p.send(d);
  run_ms(10);
  CHECK_TRUE(p.sealer.rekey(2).ok());
  for (int i = 0; i < 5; i++) p.send(p.ping(static_cast<uint64_t>(10 + i)));
  run_ms(10);
  p.drain();
  CHECK_EQUAL(10u, p.count(PacketType::pong));

  p.send(sent1[2]);  // a replay of the old epoch
  p.send(late1);     // in flight across the switch: taken once
  p.send(late1);
  run_ms(10);
  p.drain();
  CHECK_EQUAL(11u, p.count(PacketType::pong));
  CHECK_EQUAL(2u, drops("replay"));

  CHECK_TRUE(p.sealer.rekey(3).ok());
  p.send(p.ping(20));
  p.send(later1);  // two epochs back: stale, whatever the grace
  run_ms(10);
  p.drain();
  CHECK_EQUAL(12u, p.count(PacketType::pong));
  CHECK_EQUAL(1u, drops("stale_epoch"));
}

// A member of share S (with S's key) asks for objects that only share T
// holds: nothing is sent, and the refusals are counted. S's own objects
// are served (so the test can tell a refusal from a deaf node).
TEST(Replicator, ServesOnlyObjectsOfTheAskingShare) {
  start_node();
  TestPeer p;
  p.init(key_of('s'), node->port());
  add_share("s", key_of('s'), p.port(), 7703);
  add_share("t", key_of('t'), p.port(), 7704);
  ingest("s", "public.bin", test::pseudo_bytes(1, 100000, 5));
  ingest("t", "secret.bin", test::pseudo_bytes(2, 100000, 5));
  Hash sid{}, tid{};
  uint32_t slen = 0, tlen = 0;
  Manifest sm = manifest_of("s", "public.bin", &sid, &slen);
  Manifest tm = manifest_of("t", "secret.bin", &tid, &tlen);
  CHECK_TRUE(reader->has_chunk(tm.chunks[0].hash).value());  // the store holds it

  p.announce();
  run_ms(20);
  p.want(sender_id, tm.chunks[0].hash, tm.chunks[0].len, false);
  p.want(sender_id, tid, tlen, true);
  run_ms(50);
  p.drain();
  CHECK_EQUAL(0u, p.count(PacketType::data));
  CHECK_EQUAL(2u, drops("not_in_share"));

  p.want(sender_id, sm.chunks[0].hash, sm.chunks[0].len, false);
  p.want(sender_id, sid, slen, true);
  run_ms(50);
  p.drain();
  size_t want_pkts = (sm.chunks[0].len + max_data_payload(1500) - 1) / max_data_payload(1500) +
                     (slen + max_data_payload(1500) - 1) / max_data_payload(1500);
  CHECK_EQUAL(want_pkts, p.count(PacketType::data));
  CHECK_EQUAL(2u, drops("not_in_share"));
}

// Catalog pulls while files are being stored (the worker commits on its own
// connection): a requester that follows the protocol (take entries past its
// cursor, jump to the head after LAST) must see every entry. A reply whose
// head was read after an entry committed past its list made it skip files.
TEST(Replicator, CatalogPullsDuringIngestSkipNoEntry) {
  start_node();
  TestPeer p;
  p.init(key_of('s'), node->port());
  add_share("s", key_of('s'), p.port(), 7706);
  p.announce();
  run_ms(20);
  const int files = 600;
  for (int i = 0; i < files; i++)
    test::write_file(dir + "/s/f" + std::to_string(i), test::pseudo_bytes(static_cast<uint32_t>(i), 100, 5));
  uint64_t cursor = 0;
  std::set<uint64_t> seen;
  size_t handled = 0;
  // Many requests at once: the node answers them back to back, so commits
  // often fall between its reads of one reply.
  auto pull = [&] {
    std::vector<uint8_t> b(kCatalogReqLen);
    CHECK_EQUAL(kCatalogReqLen, encode_catalog_req(CatalogReq{cursor, 256}, b));
    for (int k = 0; k < 16; k++) p.send(p.seal(PacketType::catalog_req, b));
    run_ms(1);
    p.drain();
    for (; handled < p.got.size(); handled++) {
      const TestPeer::Got& g = p.got[handled];
      if (g.h.type != PacketType::catalog) continue;
      Catalog c;
      CHECK_TRUE(decode_catalog(g.body, &c) == Drop::none);
      if (c.after_seq > cursor) continue;
      for (const CatalogItem& e : c.entries) {
        if (e.seq <= cursor) continue;
        cursor = e.seq;
        seen.insert(e.seq);
      }
      if (c.flags & kCatalogLast) cursor = std::max(cursor, c.head);
    }
  };
  // Files come one at a time, so the worker commits each on its own while
  // the node answers.
  for (int i = 0; i < files; i++) {
    worker->submit(IngestJob{IngestJob::Kind::file, "s", dir + "/s", "f" + std::to_string(i)});
    pull();
  }
  for (int i = 0; i < 500 && worker->pending() > 0; i++) pull();
  CHECK_EQUAL(0u, worker->pending());
  for (int i = 0; i < 500 && cursor < static_cast<uint64_t>(files); i++) pull();
  CHECK_EQUAL(static_cast<uint64_t>(files), cursor);
  CHECK_EQUAL(static_cast<size_t>(files), seen.size());  // none jumped over
}

// A manifest asked for while the chunks of a file are queued goes out next,
// not after them: a box that learned of the file late must not wait for the
// whole pass (and then ask the group for all of it again).
TEST(Replicator, ManifestRequestGoesBeforeQueuedChunks) {
  start_node();
  TestPeer p;
  p.init(key_of('s'), node->port());
  add_share("s", key_of('s'), p.port(), 7705);
  ingest("s", "big.bin", test::pseudo_bytes(3, 1000000, 5));  // in the store: under kHeldInFileMin
  Hash mid{};
  uint32_t mlen = 0;
  Manifest m = manifest_of("s", "big.bin", &mid, &mlen);
  CHECK_TRUE(m.chunks.size() >= 8);
  p.announce();
  run_ms(20);
  for (const ChunkRef& c : m.chunks) p.want(sender_id, c.hash, c.len, false);
  p.want(sender_id, mid, mlen, true);
  // Small steps, so the peer's socket buffer never overflows.
  for (int i = 0; i < 200 && p.count(PacketType::data) < 64; i++) {
    run_ms(1);
    p.drain();
  }
  size_t seen = 0, manifest_at = SIZE_MAX;
  std::set<uint64_t> chunks_begun;  // before the manifest
  for (const TestPeer::Got& g : p.got) {
    if (g.h.type != PacketType::data) continue;
    Data d;
    CHECK_TRUE(decode_data(g.body, &d) == Drop::none);
    if (std::memcmp(d.prefix.data(), mid.data(), kIdPrefixLen) == 0) {
      manifest_at = std::min(manifest_at, seen);
    } else if (manifest_at == SIZE_MAX) {
      uint64_t pre = 0;
      std::memcpy(&pre, d.prefix.data(), sizeof pre);
      chunks_begun.insert(pre);
    }
    seen++;
  }
  CHECK_TRUE(manifest_at != SIZE_MAX);
  // At most the chunk being sent when the request came goes before it.
  CHECK_TRUE(manifest_at <= (m.chunks[0].len + max_data_payload(1500) - 1) / max_data_payload(1500));
  CHECK_TRUE(chunks_begun.size() <= 2);
}

namespace {

// A provider of one version, scripted: answers catalog requests, and WANTs
// either with the first fragment of each chunk only (`partial`) or in full.
struct Provider {
  TestPeer& p;
  std::string content;
  std::string enc;
  Hash mid{};
  std::map<uint64_t, std::pair<uint32_t, uint32_t>> objs;  // prefix -> (offset in content, len); manifest: offset UINT32_MAX
  std::set<uint64_t> started;
  std::vector<Hash> order;  // chunks in the order they were begun
  bool partial = false;
  bool corrupt = false;  // flip a byte in every DATA payload (a liar)
  bool mcast_flow = false;  // DATA marked as of our multicast flow, numbered from 0
  uint32_t seq = 0;         // next flow seq
  std::vector<std::pair<uint32_t, uint32_t>> heard;  // per WANTS: its heard, and `seq` then
  size_t burst = 0;
  std::function<void()> breathe;  // lets the node read its socket
  // Losses and repair by parity: the first pass over each chunk leaves out
  // every lose_every-th fragment; NACKs are answered with as many parity
  // fragments (new indexes) as cells they touch, never with DATA.
  size_t lose_every = 0;
  bool answer_parity = false;
  size_t parity_cap = 0;  // at most this many parity fragments per NACK (0: as many as it asks for)
  // When this many parity fragments of an object have gone, the object's
  // last lost fragment is sent again as DATA too (0: never).
  size_t stray_after = 0;
  size_t parity_sent = 0, data_resent = 0, data_sent = 0;
  std::map<uint64_t, size_t> next_index;

  Provider(TestPeer& peer, size_t chunks, uint32_t chunk_len) : p(peer) {
    content = test::pseudo_bytes(7, chunks * chunk_len, 9);
    Manifest m;
    m.path = "big.bin";
    m.size = content.size();
    m.mtime_ns = 1700000000000000000LL;
    m.mode = 0644;
    m.origin = "peer";
    for (size_t i = 0; i < chunks; i++) {
      ChunkRef c{sha256(content.data() + i * chunk_len, chunk_len), chunk_len};
      m.chunks.push_back(c);
      objs[prefix(c.hash)] = {static_cast<uint32_t>(i * chunk_len), chunk_len};
    }
    enc = encode_manifest(m);
    mid = manifest_id(enc);
    objs[prefix(mid)] = {UINT32_MAX, static_cast<uint32_t>(enc.size())};
  }
  static uint64_t prefix(const Hash& h) {
    uint64_t v = 0;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
  void announce() {
    Announce a;
    a.port = p.port();
    a.caps = kCapSend | kCapRecv;
    a.interval_ms = 1000;
    a.peers = 2;
    a.catalog_head = 1;
    a.name = "peer";
    std::vector<uint8_t> b(kAnnounceFixedLen + a.name.size());
    CHECK_TRUE(encode_announce(a, b) > 0);
    p.send(p.seal(PacketType::announce, b));
  }
  void fragment(const Hash& id, uint32_t len, uint32_t off, const uint8_t* obj) {
    Data d;
    d.prefix = id_prefix(id);
    d.object_len = len;
    d.offset = off;
    d.mcast = mcast_flow;
    d.flow_seq = mcast_flow ? seq++ : 0;
    uint32_t n = std::min<uint32_t>(len - off, static_cast<uint32_t>(max_data_payload(1500)));
    std::vector<uint8_t> bad;
    d.payload = {obj + off, n};
    if (corrupt) {
      bad.assign(obj + off, obj + off + n);
      bad[0] ^= 0x5a;
      d.payload = {bad.data(), n};
    }
    std::vector<uint8_t> b(kDataFixedLen + n);
    CHECK_TRUE(encode_data(d, b) > 0);
    p.send(p.seal(PacketType::data, b));
    data_sent++;
    if (++burst % 32 == 0 && breathe) breathe();
  }
  void serve(const Want& w) {
    auto it = objs.find(prefix(w.id));
    if (it == objs.end()) return;
    auto [off, len] = it->second;
    const auto* obj = reinterpret_cast<const uint8_t*>(off == UINT32_MAX ? enc.data() : content.data() + off);
    if (partial && off != UINT32_MAX) {
      if (started.insert(it->first).second) {
        order.push_back(w.id);
        fragment(w.id, len, 0, obj);
      }
      return;
    }
    const uint32_t cell = static_cast<uint32_t>(max_data_payload(1500));
    if (!w.ranges.empty() && answer_parity) return send_parity(w, len, obj);
    std::vector<Range> rs = w.ranges;
    if (rs.empty()) rs.push_back({0, len});
    for (const Range& r : rs)
      for (uint32_t o = r.start; o < r.start + r.len; o += cell) {
        if (w.ranges.empty() && lose_every != 0 && (o / cell) % lose_every == lose_every - 1) continue;
        if (!w.ranges.empty()) data_resent++;
        fragment(w.id, len, o, obj);
      }
  }
  void send_parity(const Want& w, uint32_t len, const uint8_t* obj) {
    const size_t cell = max_data_payload(1500);
    RangeSet ask;
    for (const Range& r : w.ranges) ask.add(r.start, r.start + r.len);
    size_t n = cells_touched(ask, cell);
    if (parity_cap != 0) n = std::min(n, parity_cap);
    size_t& next = next_index[prefix(w.id)];
    if (stray_after != 0 && next == stray_after && lose_every != 0) {
      uint32_t last = 0;
      for (uint32_t o = 0; o < len; o += static_cast<uint32_t>(cell))
        if ((o / cell) % lose_every == lose_every - 1) last = o;
      data_resent++;
      fragment(w.id, len, last, obj);
    }
    std::vector<uint8_t> idx;
    for (size_t i = 0; i < n; i++) idx.push_back(static_cast<uint8_t>(next++));
    std::vector<std::vector<uint8_t>> frags(n, std::vector<uint8_t>(cell));
    std::vector<uint8_t*> out;
    for (auto& f : frags) out.push_back(f.data());
    CHECK_TRUE(make_parity(obj, len, cell, idx, out.data()).ok());
    for (size_t i = 0; i < n; i++) {
      Parity pp;
      pp.prefix = id_prefix(w.id);
      pp.object_len = len;
      pp.mcast = mcast_flow;
      pp.flow_seq = mcast_flow ? seq++ : 0;
      pp.cell = static_cast<uint16_t>(cell);
      pp.index = idx[i];
      pp.payload = {frags[i].data(), cell};
      std::vector<uint8_t> b(kParityFixedLen + cell);
      CHECK_TRUE(encode_parity(pp, b) > 0);
      p.send(p.seal(PacketType::parity, b));
      parity_sent++;
    }
  }
  // Answers what the node sent since the last call.
  void answer() {
    p.drain();
    std::vector<TestPeer::Got> got;
    got.swap(p.got);
    for (const auto& g : got) {
      if (g.h.type == PacketType::catalog_req) {
        CatalogReq r;
        CHECK_TRUE(decode_catalog_req(g.body, &r) == Drop::none);
        Catalog c;
        c.after_seq = r.after_seq;
        c.head = 1;
        c.flags = kCatalogLast;
        if (r.after_seq == 0) c.entries.push_back({1, mid, content.size(), static_cast<uint32_t>(enc.size()), 0});
        std::vector<uint8_t> b(1400);
        size_t n = encode_catalog(c, b);
        CHECK_TRUE(n > 0);
        b.resize(n);
        p.send(p.seal(PacketType::catalog, b));
      } else if (g.h.type == PacketType::wants) {
        Wants ws;
        CHECK_TRUE(decode_wants(g.body, &ws) == Drop::none);
        if (ws.target != p.id) continue;
        heard.push_back({ws.heard, seq});
        for (const Want& w : ws.items) serve(w);
      }
    }
  }
};

}  // namespace

// A provider starts many chunks and finishes none: the node asks for no
// more than its reassembly bound (3 MiB) holds, and DATA begun unasked goes
// to the spill file rather than being dropped; once those partial chunks
// have been quiet a while, new DATA moves the oldest of them out of memory
// too (evicted, what they hold kept in the spill file), and the file arrives
// whole and identical.
TEST(Replicator, StalePartialChunksAreEvictedAndFetchedAgain) {
  start_node();
  TestPeer p;
  add_receiving_share(p, 'r', 7705);
  Provider prov(p, 36, 256 * 1024);  // 9 MiB in chunks of 256 KiB: three times the bound
  block_part_file(dir + "/r", prov);
  auto began = std::chrono::steady_clock::now();
  begin_partials(prov);
  // Asked for and begun: what fits the bound, not every chunk.
  CHECK_TRUE(prov.started.size() >= 8 && prov.started.size() <= 12);
  CHECK_TRUE(stats()["inflight_bytes"].get<uint64_t>() <= 3u << 20);
  CHECK_TRUE(stats()["inflight_bytes"].get<uint64_t>() >= 2u << 20);
  // A chunk nobody asked for yet, sent unasked: no room.
  auto unasked = [&](size_t i) {
    Manifest m = decode_manifest(prov.enc).value();
    Want w;
    w.id = m.chunks[i].hash;
    bool was = prov.partial;
    prov.partial = false;
    prov.serve(w);
    prov.partial = was;
  };
  unasked(35);
  run_ms(5);
  // Kept in the spill file, not refused (unless a loaded machine made the
  // partial chunks stale already, which evicts one instead).
  CHECK_EQUAL(0u, stats()["reassembly_full"].get<uint64_t>());
  if (std::chrono::steady_clock::now() - began < std::chrono::milliseconds(900)) {
    CHECK_TRUE(stats()["objects_spilled"].get<uint64_t>() > 0);
    CHECK_EQUAL(0u, stats()["partials_evicted"].get<uint64_t>());
  }

  for (int i = 0; i < 23; i++) {  // quiet for longer than kEvictQuietMs; requests ignored
    run_ms(50);
    p.drain();
    p.got.clear();
  }
  unasked(34);  // needs room that only evicting stale partial chunks gives
  run_ms(5);
  CHECK_TRUE(stats()["partials_evicted"].get<uint64_t>() > 0);
  prov.partial = false;
  answer_until_whole(prov, dir + "/r/big.bin", 600);
}

// Memory full of partial chunks: a whole chunk sent unasked goes to the
// spill file; sent with wrong bytes it fails its hash there (counted, not
// stored), is fetched again and the file arrives identical.
TEST(Replicator, SpilledChunkWithWrongBytesIsRefusedAndFetchedAgain) {
  start_node();
  TestPeer p;
  add_receiving_share(p, 'q', 7706);
  Provider prov(p, 36, 256 * 1024);
  block_part_file(dir + "/q", prov);
  begin_partials(prov);
  CHECK_TRUE(stats()["inflight_bytes"].get<uint64_t>() >= 2u << 20);
  Manifest m = decode_manifest(prov.enc).value();
  Want w;
  w.id = m.chunks[35].hash;
  prov.partial = false;
  prov.corrupt = true;
  prov.serve(w);
  for (int i = 0; i < 100 && stats()["objects_bad"].get<uint64_t>() == 0; i++) run_ms(5);
  CHECK_TRUE(stats()["objects_spilled"].get<uint64_t>() > 0);
  CHECK_EQUAL(1u, stats()["objects_bad"].get<uint64_t>());
  CHECK_EQUAL(0u, stats()["reassembly_full"].get<uint64_t>());
  prov.corrupt = false;
  answer_until_whole(prov, dir + "/q/big.bin", 800);
}

// A large version is written straight into its part file as DATA arrives:
// many more chunks are begun than reassembly memory could hold, none of it
// is held in memory, and wrong bytes written there fail their check, are
// fetched again, and the file arrives identical.
TEST(Replicator, LargeVersionIsWrittenStraightIntoItsPartFile) {
  start_node();
  TestPeer p;
  add_receiving_share(p, 'd', 7707);
  Provider prov(p, 36, 256 * 1024);
  begin_partials(prov);
  CHECK_TRUE(prov.started.size() >= 30);  // 7.5 MiB begun: beyond the 3 MiB bound
  CHECK_EQUAL(0u, stats()["inflight_bytes"].get<uint64_t>());
  CHECK_EQUAL(0u, stats()["objects_spilled"].get<uint64_t>());
  prov.partial = false;
  prov.corrupt = true;
  for (int i = 0; i < 200 && stats()["objects_bad"].get<uint64_t>() == 0; i++) {
    run_ms(5);
    prov.answer();
  }
  CHECK_TRUE(stats()["objects_bad"].get<uint64_t>() > 0);
  prov.corrupt = false;
  answer_until_whole(prov, dir + "/d/big.bin", 800);
  // Nothing but the file: the part was renamed into place.
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/d")) {
    (void)e;
    n++;
  }
  CHECK_EQUAL(1u, n);
}

// A receiver's WANTS say how far it has read the provider's multicast flow:
// nothing before the first DATA, then a seq the provider has sent, never
// going back, and at the end the last one sent.
TEST(Replicator, WantsCarryTheHighestMulticastSeqRead) {
  start_node();
  TestPeer p;
  add_receiving_share(p, 'h', 7708);
  Provider prov(p, 24, 64 * 1024);
  prov.mcast_flow = true;
  prov.announce();
  answer_until_whole(prov, dir + "/h/big.bin", 800);
  CHECK_TRUE(prov.heard.size() >= 2);
  CHECK_EQUAL(0u, prov.heard.front().first);  // asked before any DATA
  uint32_t last = 0;
  size_t valid = 0;
  for (auto [h, sent] : prov.heard) {
    if (h == 0) {
      CHECK_EQUAL(0u, valid);  // once valid, always valid
      continue;
    }
    valid++;
    CHECK_TRUE((h & kHeardValid) != 0);
    uint32_t s = h & kMaxFlowSeq;
    CHECK_TRUE(s < sent);  // read, so sent before
    CHECK_TRUE(s >= last);
    last = s;
  }
  CHECK_TRUE(valid > 0);
}

// The provider's side: a first request crossed the object's DATA when its
// asker had not read the object's last datagram; one that had, or that came
// too late to be a crossing, is a loss and is served.
TEST(Replicator, CrossedRequestRule) {
  Want w;  // sent at 1000 ms, the object's last datagram was seq 500
  w.heard = 0;  // no seq: by time alone, 20 ms
  CHECK_TRUE(want_crossed(w, 1000, 500, 1019));
  CHECK_FALSE(want_crossed(w, 1000, 500, 1020));
  w.heard = kHeardValid | 400;  // 100 datagrams behind: still in its socket
  CHECK_TRUE(want_crossed(w, 1000, 500, 1000));
  CHECK_TRUE(want_crossed(w, 1000, 500, 1999));
  CHECK_FALSE(want_crossed(w, 1000, 500, 2000));  // bounded wait
  w.heard = kHeardValid | 500;  // read the last datagram: lost, not crossed
  CHECK_FALSE(want_crossed(w, 1000, 500, 1001));
  w.heard = kHeardValid | 501;  // read past it
  CHECK_FALSE(want_crossed(w, 1000, 500, 1001));
  // Across the flow seq's wrap (31 bits).
  w.heard = kHeardValid | (kMaxFlowSeq - 5);
  CHECK_TRUE(want_crossed(w, 1000, 3, 1001));
  w.heard = kHeardValid | 4;
  CHECK_FALSE(want_crossed(w, 1000, 3, 1001));
  w.heard = kHeardValid | 2;
  CHECK_TRUE(want_crossed(w, 1000, 3, 1001));
}

// A NACK loses the ranges resent to the group after the point its asker
// had read to, and keeps the rest.
TEST(Replicator, CrossedRepairRule) {
  // Resent at 1000 ms: [0, 1408) as seq 100, [2816, 4224) as seq 101.
  const std::vector<RepairSent> sent{{0, 1408, 100, 1000}, {2816, 4224, 101, 1000}};
  auto ask_all = [] {
    RangeSet a;
    a.add(0, 5000);
    return a;
  };
  RangeSet a = ask_all();
  CHECK_EQUAL(0u, drop_crossed_repairs(a, sent, 99, 1001));  // no heard: kept whole
  CHECK_EQUAL(5000u, a.bytes());
  a = ask_all();  // read up to 99: both are still in its socket
  CHECK_EQUAL(2816u, drop_crossed_repairs(a, sent, kHeardValid | 99, 1001));
  CHECK_TRUE(a.covers(1408, 2816));
  CHECK_TRUE(a.covers(4224, 5000));
  CHECK_FALSE(a.covers(0, 1));
  CHECK_FALSE(a.covers(2816, 2817));
  a = ask_all();  // read seq 100 (and lost it): only the second is on its way
  CHECK_EQUAL(1408u, drop_crossed_repairs(a, sent, kHeardValid | 100, 1001));
  CHECK_TRUE(a.covers(0, 2816));
  a = ask_all();  // read past both
  CHECK_EQUAL(0u, drop_crossed_repairs(a, sent, kHeardValid | 101, 1001));
  a = ask_all();  // a repair 1 s old no longer counts
  CHECK_EQUAL(0u, drop_crossed_repairs(a, sent, kHeardValid | 99, 2000));
  // Across the flow seq's wrap (31 bits).
  const std::vector<RepairSent> wrapped{{0, 1408, 2, 1000}};
  a = ask_all();
  CHECK_EQUAL(1408u, drop_crossed_repairs(a, wrapped, kHeardValid | (kMaxFlowSeq - 3), 1001));
  a = ask_all();
  CHECK_EQUAL(0u, drop_crossed_repairs(a, wrapped, kHeardValid | 3, 1001));
  // Nothing to take: an ask that does not overlap.
  RangeSet b;
  b.add(1408, 2816);
  CHECK_EQUAL(0u, drop_crossed_repairs(b, sent, kHeardValid | 50, 1001));
  CHECK_EQUAL(1408u, b.bytes());
}

TEST(Replicator, ParityRules) {
  // Parity fragments sent at 1000 ms as seqs 200 and 201, between two ranges.
  const std::vector<RepairSent> sent{{0, 1408, 199, 1000},
                                     {0, 0, 200, 1000, true},
                                     {0, 0, 201, 1000, true}};
  CHECK_EQUAL(0u, unread_parity(sent, 150, 1001));                 // no heard
  CHECK_EQUAL(2u, unread_parity(sent, kHeardValid | 150, 1001));   // both still in its socket
  CHECK_EQUAL(1u, unread_parity(sent, kHeardValid | 200, 1001));
  CHECK_EQUAL(0u, unread_parity(sent, kHeardValid | 201, 1001));
  CHECK_EQUAL(0u, unread_parity(sent, kHeardValid | 150, 2000));   // 1 s old
  RangeSet a;  // a parity entry takes no range out of a NACK
  a.add(1408, 4000);
  CHECK_EQUAL(0u, drop_crossed_repairs(a, sent, kHeardValid | 150, 1001));

  RangeSet ask;
  CHECK_EQUAL(0u, cells_touched(ask, 1000));
  ask.add(0, 1);
  CHECK_EQUAL(1u, cells_touched(ask, 1000));
  ask.add(999, 1001);  // cells 0 and 1
  CHECK_EQUAL(2u, cells_touched(ask, 1000));
  ask.add(1500, 1600);  // cell 1 again
  CHECK_EQUAL(2u, cells_touched(ask, 1000));
  ask.add(5000, 7000);  // cells 5 and 6
  CHECK_EQUAL(4u, cells_touched(ask, 1000));

  RangeSet got;
  got.add(0, 1000);
  got.add(1000, 2500);  // cell 2 only half
  got.add(3100, 4500);  // cell 3 short of its first 100 bytes; the last (short) cell 4 whole
  std::vector<uint32_t> miss = missing_cells(got, 4500, 1000);
  CHECK_EQUAL(2u, miss.size());
  CHECK_EQUAL(2u, miss[0]);
  CHECK_EQUAL(3u, miss[1]);
  got.add(2500, 3100);
  CHECK_TRUE(missing_cells(got, 4500, 1000).empty());
}

// Fragments lost in the first pass are repaired by parity fragments alone:
// the node rebuilds the cells it lacks, for a small version (reassembly
// memory) and a large one (its part file, rebuilt by the store worker), and
// both files arrive identical, every chunk checked.
TEST(Replicator, LostFragmentsAreRebuiltFromParity) {
  start_node();
  TestPeer p1, p2;
  add_receiving_share(p1, 'f', 7709);
  add_receiving_share(p2, 'g', 7710);
  uint64_t cells = 0;  // rebuilt so far
  for (auto [peer, share, chunks] : {std::tuple<TestPeer*, const char*, size_t>{&p1, "f", 4},  // 256 KiB: memory
                                     {&p2, "g", 24}}) {                                       // 1.5 MiB: part file
    Provider prov(*peer, chunks, 64 * 1024);
    prov.lose_every = 10;  // 4 of each chunk's 47 fragments
    prov.answer_parity = true;
    prov.announce();
    answer_until_whole(prov, dir + "/" + share + "/big.bin", 800);
    CHECK_EQUAL(0u, prov.data_resent);
    // Each parity fragment rebuilt one lost cell; 4 lost in each chunk
    // fetched (the large file's first 4 chunks are the small one's: stored).
    CHECK_EQUAL(4 * (chunks == 4 ? 4u : 20u), prov.parity_sent);
    CHECK_EQUAL(prov.parity_sent, stats()["parity"]["cells"].get<uint64_t>() - cells);
    cells += prov.parity_sent;
    CHECK_EQUAL(0u, stats()["objects_bad"].get<uint64_t>());
  }
}

// NACKs answered one parity fragment at a time: each chunk holds what came
// until it has as many fragments as it lacks cells, parked in those cells
// (reassembly memory for a small version, the part file for a large one).
// The chunks lacking 15 cells each hold up to 14 fragments: 15 chunks (or
// the 17 the large file adds) hold more than the share's parity memory
// (256 KiB) would. None is dropped, every fragment sent rebuilds a cell, and
// the files arrive identical.
TEST(Replicator, ParityWaitsParkedInTheCellsItRebuilds) {
  start_node();
  TestPeer p1, p2;
  add_receiving_share(p1, 'h', 7712);
  add_receiving_share(p2, 'i', 7713);
  uint64_t cells_before = 0;
  for (auto [peer, share, chunks] : {std::tuple<TestPeer*, const char*, size_t>{&p1, "h", 15},  // 960 KiB: memory
                                     {&p2, "i", 32}}) {                                        // 2 MiB: part file
    Provider prov(*peer, chunks, 64 * 1024);
    prov.lose_every = 3;  // cells 2, 5, ..., 44: 15 of each chunk's 47
    prov.answer_parity = true;
    prov.parity_cap = 1;
    prov.announce();
    answer_until_whole(prov, dir + "/" + share + "/big.bin", 3000);
    CHECK_EQUAL(0u, prov.data_resent);
    const uint64_t lost = (chunks == 15 ? 15 : 17) * 15;  // the large file's first 15 chunks are stored
    auto par = stats()["parity"];
    const uint64_t cells = par["cells"].get<uint64_t>() - cells_before;  // a DATA lost on loopback is rebuilt too
    cells_before += cells;
    CHECK_TRUE(cells >= lost && cells < lost + 8);
    CHECK_EQUAL(0u, par["dropped"].get<uint64_t>());
    CHECK_EQUAL(0u, par["unused"].get<uint64_t>());
    CHECK_EQUAL(prov.parity_sent, cells);
    CHECK_EQUAL(0u, stats()["objects_bad"].get<uint64_t>());
  }
}

// A DATA repair over a cell where a parity fragment is parked takes that
// cell, and the fragment is given up: the rebuild uses only the fragments
// still parked, every chunk checks, and the file arrives identical.
TEST(Replicator, DataOverAParkedFragmentTakesItsCell) {
  start_node();
  TestPeer p;
  add_receiving_share(p, 'j', 7714);
  Provider prov(p, 24, 64 * 1024);  // 1.5 MiB: part file
  prov.lose_every = 3;
  prov.answer_parity = true;
  prov.parity_cap = 1;
  prov.stray_after = 3;  // cell 44, where the first fragment parked, comes as DATA after the third
  prov.announce();
  answer_until_whole(prov, dir + "/j/big.bin", 3000);
  CHECK_EQUAL(0u, stats()["objects_bad"].get<uint64_t>());  // no chunk was rebuilt over the DATA
  CHECK_EQUAL(24u, prov.data_resent);
  auto par = stats()["parity"];
  CHECK_TRUE(par["unused"].get<uint64_t>() >= 24);  // each chunk's first fragment
  CHECK_EQUAL(prov.parity_sent, par["cells"].get<uint64_t>() + par["unused"].get<uint64_t>());
}

// Complete chunks that find the store worker's queue full wait where they
// are and are handed over once it has room: none is asked for again, the
// provider sends the file's fragments once, and the file arrives identical.
TEST(Replicator, ChunksWaitForTheWorkerInsteadOfBeingFetchedAgain) {
  start_node();
  TestPeer p;
  add_receiving_share(p, 'w', 7711);
  Provider prov(p, 4, 64 * 1024);  // 256 KiB: reassembled in memory
  prov.announce();
  // The version's manifest first, with the worker free.
  for (int i = 0; i < 200 && prov.data_sent == 0; i++) {
    run_ms(5);
    prov.answer();
  }
  std::atomic<bool> go{false};
  auto block = [&go](Store&) -> std::function<void()> {
    while (!go) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return [] {};
  };
  CHECK_TRUE(worker->post(block));
  for (int i = 0; i < 100 && worker->posts_waiting() > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  while (worker->post(block)) {
  }
  const uint64_t full_before = stats()["worker_full"].get<uint64_t>();
  for (int i = 0; i < 60; i++) {  // the chunks arrive and wait
    run_ms(5);
    prov.answer();
  }
  CHECK_TRUE(stats()["worker_full"].get<uint64_t>() > full_before);
  go = true;
  answer_until_whole(prov, dir + "/w/big.bin", 800);
  size_t cells = 0;
  for (const auto& [pre, ol] : prov.objs) cells += (ol.second + max_data_payload(1500) - 1) / max_data_payload(1500);
  CHECK_EQUAL(cells, prov.data_sent);  // every fragment once: nothing fetched again
  CHECK_EQUAL(0u, stats()["objects_bad"].get<uint64_t>());
}

// Another box with this node's sender id (a copied state_dir): a forged
// datagram under that id changes nothing; an authentic one makes the node
// take a new sender id and epoch, persisted, and seal under them.
TEST(Replicator, CloneOfOurSenderIdMakesUsTakeANewOne) {
  start_node();
  TestPeer clone, forger, watcher;
  clone.id = forger.id = sender_id;
  clone.init(key_of('s'), node->port());
  forger.init(key_of('x'), node->port());  // right id, wrong key
  forger.share_id = clone.share_id;
  watcher.init(key_of('s'), node->port());
  add_share("s", key_of('s'), watcher.port(), 7706);
  CHECK_TRUE(clone.sealer.rekey(epoch + 3).ok());  // the clone restarted more often
  CHECK_TRUE(forger.sealer.rekey(epoch + 3).ok());
  forger.send(forger.ping(1));
  run_ms(20);
  CHECK_EQUAL(1u, drops("self"));
  CHECK_EQUAL(0u, stats()["clones_detected"].get<uint64_t>());
  CHECK_EQUAL(std::to_string(sender_id), reader->get_meta("sender_id").value().value());

  clone.send(clone.ping(2));
  run_ms(30);
  CHECK_EQUAL(2u, drops("self"));
  CHECK_EQUAL(1u, stats()["clones_detected"].get<uint64_t>());
  auto id = reader->get_meta("sender_id");
  CHECK_TRUE(id.ok() && id->has_value());
  CHECK_TRUE(**id != std::to_string(sender_id));
  uint64_t fresh = std::stoull(**id);
  // What the node sends from now on carries the new id.
  watcher.send(watcher.ping(3));
  run_ms(20);
  watcher.drain();
  bool pong = false;
  for (const auto& g : watcher.got)
    if (g.h.type == PacketType::pong) {
      pong = true;
      CHECK_EQUAL(fresh, g.h.sender_id);
      CHECK_EQUAL(std::to_string(g.h.epoch), reader->get_meta("epoch").value().value());
    }
  CHECK_TRUE(pong);
}

// A trickle (a datagram every 50 us, as a shaped line brings them) is read
// by polling the socket every kRxPollUs, not with a wake-up per datagram;
// every datagram is read, and a quiet socket is watched again.
TEST(Replicator, ATrickleIsPolledNotReadPerDatagram) {
  start_node();
  auto tx = UdpSocket::open_unicast("127.0.0.1", 0);
  CHECK_TRUE(tx.ok());
  const sockaddr_in to = resolve_ipv4("127.0.0.1", node->port()).value();
  constexpr int kCount = 400;
  std::atomic<int> sent{0};
  std::thread feeder([&] {
    const uint8_t junk[64] = {};  // not a shoal datagram: read, counted, dropped
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kCount; i++) {
      // On a schedule: a late thread sends a bunch, never a slower trickle.
      std::this_thread::sleep_until(t0 + std::chrono::microseconds(50 * i));
      if (tx->send_to(to, junk, sizeof(junk)).ok()) sent++;
    }
  });
  for (int i = 0; i < 100 && stats()["packets_in"].get<uint64_t>() < kCount; i++) run_ms(5);
  feeder.join();
  run_ms(5);
  auto st = stats();
  CHECK_EQUAL(kCount, sent.load());
  CHECK_EQUAL(uint64_t{kCount}, st["packets_in"].get<uint64_t>());
  const uint64_t wakeups = st["socket"]["rx_wakeups"].get<uint64_t>();
  const uint64_t polls = st["socket"]["rx_polls"].get<uint64_t>();
  // 20 ms of trickle: about 40 polls. A read per datagram would be 400.
  CHECK_TRUE(polls > 0);
  CHECK_TRUE(wakeups + polls < kCount / 4);
  // Quiet now: the socket is watched again, a lone datagram is read at once
  // and the timer does not go on polling an idle socket.
  run_ms(20);
  const uint64_t idle_polls = stats()["socket"]["rx_polls"].get<uint64_t>();
  run_ms(20);
  CHECK_EQUAL(idle_polls, stats()["socket"]["rx_polls"].get<uint64_t>());
}
