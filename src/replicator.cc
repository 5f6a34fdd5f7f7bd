// The replication engine. See docs/PROTOCOL.md for the packets and timers;
// the "Implementation status" section there says which parts of the
// protocol this code implements.
#include "replicator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>
#include <event2/event.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <array>
#include <cmath>
#include <cstring>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "crypto.h"
#include "hash.h"
#include "ingest.h"
#include "log.h"
#include "manifest.h"
#include "netio.h"
#include "pacer.h"
#include "fec.h"
#include "fileio.h"
#include "publish.h"
#include "rangeset.h"
#include "store.h"
#include "wire.h"

namespace shoal {
namespace {

// Timers and bounds (PROTOCOL.md section 10 gives the reasons).
constexpr uint64_t kAnnounceBudgetBps = 25000;  // announce traffic of the whole group
// Periodic announces of small groups: liveness only (a catalog change is
// announced at once), so every 2 s is enough; the wire allows 1 s.
constexpr uint64_t kAnnounceFloorMs = 2000;
// RTT probes per peer: every 2 s in small groups, stretched with the group so
// that a node's PINGs (and the PONGs they draw) stay near 5 per second.
constexpr uint64_t kPingMinUs = 2000000;
constexpr uint64_t kPingPerPeerUs = 200000;
constexpr uint64_t kPingMaxUs = 60000000;

constexpr uint64_t kPeerExpiryMin = 5000;      // ms
// A peer not heard by multicast for max(this, 3 announce intervals) is reached
// by unicast. Below kPeerExpiryMin, so peers learned by multicast switch to
// unicast ANNOUNCEs before they expire each other.
constexpr uint64_t kMcastStaleMinMs = 3000;
constexpr uint64_t kMcastStallUs = 1000000;   // no group DATA from a provider asked by multicast
// A catalog request without reply is asked again after 100 ms, doubling up to
// 2 s (and never before 4 RTTs of that peer): a lost CATALOG costs a late
// joiner little.
constexpr uint64_t kPullFirstMs = 100;
constexpr uint64_t kPullMaxMs = 2000;
// A grown catalog is announced at once, then again after each of these gaps
// (40 and 200 ms after the first): a box that missed the first would
// otherwise learn of the file only at the next periodic announce, seconds
// later, and ask the group for all of it again.
constexpr std::array<uint64_t, 2> kAnnounceRepeatMs = {40, 160};
constexpr uint16_t kPullEntries = 256;
constexpr uint64_t kQuietMs = 10;              // an object quiet this long has lost packets
constexpr uint64_t kRetryMs = 60;              // a WANT with no answer is repeated
constexpr uint64_t kMaxRetryMs = 2000;
constexpr int kTriesPerProvider = 4;
constexpr uint64_t kGrttMs = 2;                // LAN default until measured
constexpr size_t kWindowObjects = 128;         // objects we request ahead, per transfer
// ...and for a version written straight into its part file, which holds no
// reassembly memory: at 2% loss most objects wait for a repair, and the
// window must cover that wait at line rate.
constexpr size_t kDirectWindowObjects = 512;
constexpr size_t kMaxActiveTransfers = 4;
// Reassembly memory of the node: the bytes of every object it asked for (or
// took unasked) and has not stored yet. Requests stay within it, so data
// that was asked for always has room (RSS budget: 16 MiB per daemon).
constexpr size_t kMaxInflightBytes = 3u << 20;
constexpr size_t kMaxSendJobs = 4096;          // ids only: data is loaded when sent
constexpr uint64_t kPublishRetryMs = 5000;
// Versions of at least kHeldInFileMin are written into their temp file as
// their chunks arrive (PartFile), at most kMaxParts at once per share (each
// holds two descriptors); smaller ones are assembled from the store at the end.
constexpr size_t kMaxParts = 16;
constexpr uint64_t kHeardWantTtlMs = 50;
constexpr uint64_t kWantIntervalUs = 5000;   // WANTS rounds of a transfer at most this often
constexpr uint64_t kProviderIdleMs = 20;      // provider sent nothing this long: its pass is over
constexpr uint64_t kMaxNackDelayMs = 1000;    // a gap waits at most this long for a NACK round
constexpr double kFeedbackShare = 0.01;       // WANTS of the group / DATA packets, about
constexpr uint64_t kMaxWantIntervalUs = 2000000;
constexpr uint64_t kReportIntervalUs = 250000;  // REPORT to a sender we receive DATA from
constexpr size_t kMaxHeardWants = 4096;
// A first request (the whole object) that reaches a provider this soon after
// it sent the object to the group crossed the DATA on the way: the asker
// has it or NACKs what it lost. A request that says how far its asker has
// read our multicast flow is judged by that instead, for at most
// kCrossedMaxMs (PROTOCOL.md 8.2).
constexpr uint64_t kCrossedWantMs = 20;
constexpr uint64_t kCrossedMaxMs = 1000;
constexpr size_t kMaxParityBatch = 16;          // parity fragments made and sent in one batch
// A NACK touching more cells than this is answered with DATA: its asker
// lost most of the object (a burst), and others are unlikely to lack as many.
constexpr size_t kMaxParityAnswer = 16;
constexpr size_t kMaxParityHeld = 2 * kMaxParityAnswer;  // per object: a NACK's worth, twice
// Parity held in memory per share (ParityBuf): the fragments that could not
// be parked in a missing cell, until used (and riding in rebuilds the store
// worker has not done yet). A fragment waits parked; one that finds no cell
// to park in (the only one left is a short last cell) completes its object
// at once, so this bounds what waits for the worker. Before parking, every
// fragment counted here, and 512 KiB still dropped 2k-7k fragments per run
// with 3 receivers at 2% loss, asked for again (docs/BENCHMARKS.md).
constexpr size_t kMaxParityBytes = 256 * 1024;
constexpr size_t kMaxRepairsKept = 64;  // per object: a few rounds of NACKs from many receivers
constexpr uint64_t kEvictQuietMs = 1000;       // a partial object quiet this long may be evicted
constexpr uint64_t kEvictScanMs = 10;          // under pressure, look for one at most this often
constexpr size_t kSentTags = 1024;             // own datagrams remembered, for clone detection
constexpr int kSpillSlots = 128;               // objects that may wait in the spill file
// Streams (PROTOCOL.md 8.7): files listed while they are ingested.
constexpr size_t kMaxOutStreams = 4;           // local files whose chunks wait to be pushed
constexpr size_t kMaxInStreams = 2;            // peers' files taken early, per share
constexpr size_t kMaxStreamChunks = 8192;      // chunks listed / taken per stream (~512 MiB)
constexpr uint64_t kStreamIdleMs = 5000;       // a stream heard nothing of this long is dropped
constexpr uint64_t kPushSkipMs = 10000;        // a chunk sent to the group this recently is not pushed

// The persisted epoch + 1 (and at least after `floor`), stored.
Result<uint32_t> bump_epoch(Store& store, uint32_t floor);

uint64_t now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000ULL + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}
uint64_t now_ms() { return now_us() / 1000; }
uint64_t wall_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000ULL + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

std::mt19937_64& rng() {
  static std::mt19937_64 r([] {
    auto v = random_u64();
    return v ? *v : static_cast<uint64_t>(now_us());
  }());
  return r;
}
double urand() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng()); }

uint64_t prefix64(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t prefix64(const Hash& h) { return prefix64(h.data()); }


struct EvFree {
  void operator()(event* e) const { event_free(e); }
};
using EvPtr = std::unique_ptr<event, EvFree>;

bool same_addr(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

// NORM's truncated exponential back-off (RFC 5740 5.3): few receivers fire early.
uint64_t backoff_us(size_t group, uint64_t grtt_ms) {
  double lambda = std::log(static_cast<double>(std::max<size_t>(group, 2))) + 1.0;
  double t = 4.0 * static_cast<double>(grtt_ms) * 1000.0;
  double x = (t / lambda) * std::log(urand() * (std::exp(lambda) - 1.0) + 1.0);
  return static_cast<uint64_t>(x);
}

}  // namespace

// ---------------------------------------------------------------------------
// Counters shared by the node and its shares.
struct NetCounters {
  uint64_t drops[kDropCount] = {};
  uint64_t pkts_in = 0, bytes_in = 0, pkts_out = 0, bytes_out = 0;
  uint64_t data_pkts_out = 0, data_bytes_out = 0, repair_pkts_out = 0;
  uint64_t data_pkts_in = 0, data_bytes_in = 0, data_unwanted = 0, data_dup = 0;
  uint64_t ctrl_pkts_out = 0, ctrl_pkts_in = 0, want_out = 0, want_in = 0, want_suppressed = 0;
  uint64_t objects_bad = 0, objects_ok = 0, reassembly_full = 0;
  uint64_t paths_refused = 0, send_errors = 0;
  // Versions and requests refused by the share's limits and boundaries
  // (shown among the drops: file_too_large, too_many_files, not_in_share).
  uint64_t file_too_large = 0, too_many_files = 0, not_in_share = 0;
  uint64_t partials_evicted = 0, rekeys = 0, clones = 0;
  uint64_t objects_unavailable = 0;  // asked for, ours, but its file no longer holds it
  uint64_t wants_crossed = 0;        // first requests for what we had just sent to the group
  uint64_t repair_bytes_crossed = 0; // NACKed bytes we had just resent to the group (not resent)
  // Repair by parity (PROTOCOL.md 8.2): fragments sent; received; held or
  // used; received and of no use (a duplicate, the object done, no room);
  // objects completed by them and the cells they rebuilt.
  uint64_t parity_pkts_out = 0, parity_pkts_in = 0, parity_unused = 0;
  uint64_t parity_objects = 0, parity_cells = 0;
  uint64_t parity_dropped = 0;  // fragments refused for lack of memory (kMaxParityBytes): NACKed again
  // Streams (PROTOCOL.md 8.7): chunks pushed to the group before their
  // version existed; chunks taken from peers' streams, verified; streams
  // that became a fetched version's part file; streams dropped unused.
  uint64_t stream_pushed = 0, stream_taken = 0, streams_adopted = 0, streams_dropped = 0;
  // Complete objects the worker's queue could not take (fetched again).
  uint64_t worker_full = 0;
  // Socket reads begun because the socket became readable, and by the
  // polling timer (kRxTrickle).
  uint64_t rx_wakeups = 0, rx_polls = 0;
  uint64_t in_by_type[kMaxPacketType + 1] = {};
  uint64_t round_first = 0, round_idle = 0, round_passed = 0, round_pressed = 0, round_old = 0, want_items = 0;
  // Datagrams and their UDP payload bytes by kind, sent ([0]) and received
  // after authentication ([1]). A received DATA is "repair" when we had asked
  // for its object more than once: the receiver's estimate of the sender's view.
  enum Dir { kSent, kReceived };
  enum Kind { kData, kRepair, kControl };
  uint64_t kind_pkts[2][3] = {}, kind_bytes[2][3] = {};
  void drop(Drop d) { drops[static_cast<size_t>(d)]++; }
  void count(Dir d, Kind k, size_t bytes) {
    kind_pkts[d][k]++;
    kind_bytes[d][k] += bytes;
  }
};

// Partial objects that do not fit the reassembly memory go to slots of an
// unlinked file in the state dir (page cache, not the heap): data that
// arrives while memory is full is kept instead of dropped and sent again,
// and objects waiting for repairs do not hold up the window. The worker reads
// a completed slot back, verifies and stores it. Loop thread only, except
// that the worker reads slots it was handed.
class Spill {
 public:
  explicit Spill(std::string dir) : dir_(std::move(dir)) {}
  ~Spill() {
    if (fd_ >= 0) ::close(fd_);
  }
  Spill(const Spill&) = delete;
  Spill& operator=(const Spill&) = delete;
  // A free slot, or -1 (all taken, or no spill file could be made).
  int take() {
    if (!tried_) open();
    if (free_.empty()) return -1;
    int s = free_.back();
    free_.pop_back();
    taken++;
    return s;
  }
  uint64_t taken = 0;  // slots handed out, ever
  void give(int slot) {
    if (slot >= 0) free_.push_back(slot);
  }

  bool write(int slot, uint32_t off, const uint8_t* p, size_t n) {
    return pwrite_all(fd_, p, n, offset(slot) + off).ok();
  }
  int fd() const { return fd_; }
  static uint64_t offset(int slot) { return static_cast<uint64_t>(slot) * kMaxChunkLen; }

 private:
  void open() {
    tried_ = true;
    if (dir_.empty()) return;
    fd_ = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      LOG_WARN("cannot make a spill file in %s (%s): data that does not fit in memory is dropped and asked for again",
               log_escape(dir_).c_str(), std::strerror(errno));
      return;
    }
    for (int i = kSpillSlots - 1; i >= 0; i--) free_.push_back(i);
  }

  std::string dir_;
  int fd_ = -1;
  bool tried_ = false;
  std::vector<int> free_;
};

struct SocketEntry;

// DATA for objects written straight into part files: consecutive fragments
// (a GRO read brings dozens of one object in order) are gathered and
// written with one pwrite. flush() runs at the end of every socket read and
// before anything reads or closes the file.
class DirectWriter {
 public:
  static constexpr size_t kCap = 64 * 1024;
  // False if a write failed (the data is then not on disk).
  bool add(int fd, uint64_t off, const uint8_t* p, size_t n) {
    if (fd != fd_ || off != off_ + len_ || len_ + n > kCap)
      if (!flush()) return false;
    if (len_ == 0) {
      fd_ = fd;
      off_ = off;
    }
    if (n > kCap) return pwrite_all(fd, p, n, off).ok();
    std::memcpy(buf_.get() + len_, p, n);
    len_ += n;
    return true;
  }
  bool flush() {
    if (len_ == 0) return true;
    bool ok = pwrite_all(fd_, buf_.get(), len_, off_).ok();
    if (!ok) failed_++;
    len_ = 0;
    return ok;
  }
  uint64_t failed() const { return failed_; }

 private:
  std::unique_ptr<uint8_t[]> buf_ = std::make_unique_for_overwrite<uint8_t[]>(kCap);
  int fd_ = -1;
  uint64_t off_ = 0;
  size_t len_ = 0;
  uint64_t failed_ = 0;
};

struct Node::Impl {
  event_base* base = nullptr;
  NodeOptions opt;
  Store* reader = nullptr;
  Ingester* worker = nullptr;
  std::unique_ptr<SocketEntry> ucast;
  std::vector<std::unique_ptr<Replicator>> shares;
  std::unordered_map<uint32_t, Replicator*> by_share_id;
  RecvBatch batch{64, 2048};
  // When the datagrams of `batch` were read: their handlers take this as
  // "now" (a clock read per datagram cost ~2% of a receiver's CPU).
  uint64_t rx_us = 0;
  NetCounters c;
  size_t inflight_bytes = 0;  // objects admitted for reassembly, all shares (kMaxInflightBytes)
  std::unique_ptr<Spill> spill;
  DirectWriter direct;
  // Flushes the part and stream files as they fill (their owners, on the
  // worker, hold it too).
  std::shared_ptr<Flusher> flusher = std::make_shared<Flusher>();
  // Epochs and identity (PROTOCOL.md 4.4, 11.3): the highest epoch persisted,
  // and the shares waiting for a new one.
  uint32_t epoch_hi = 0;
  bool epoch_pending = false, identity_pending = false;
  uint64_t epoch_retry_ms = 0;
  std::vector<Replicator*> epoch_waiting;
  // Config reload: shares removed but maybe still owed worker results, and
  // the share ids whose keys were used in the current epoch by such shares.
  std::vector<std::unique_ptr<Replicator>> retired;
  std::unordered_set<uint32_t> spent_ids;

  void request_epoch(Replicator* r);
  void epoch_persisted(uint32_t e, const Error& err);
  bool stored_epoch_is(uint32_t e);
  void new_identity(const std::string& share, const sockaddr_in& from);
  void on_readable(SocketEntry& s);
  void handle(const RecvDatagram& d);
  bool send(const sockaddr_in& to, const uint8_t* p, size_t n);
  size_t send_batch(const sockaddr_in& to, const iovec* v, size_t n);
};

// Reading a socket that trickles costs a wake-up, epoll_wait and two
// reads per handful of datagrams: at a shaped line rate the kernel hands the
// loop a few at a time. A wake-up that finds fewer than kRxTrickle
// datagrams switches the socket to polling: it is read every kRxPollUs on a
// timer for as long as each poll finds something, and watched again once
// one finds nothing or more than one read can take. The receive buffer
// (8 MiB) holds far more than kRxPollUs of traffic at any LAN rate, and the
// added delay is below the 1 ms floor of the RTT estimates (section 9.3).
constexpr size_t kRxTrickle = 32;
constexpr uint64_t kRxPollUs = 500;

struct SocketEntry {
  Node::Impl* node = nullptr;
  UdpSocket sock;
  EvPtr ev;
  EvPtr poll_ev;         // the timer of polling; null: always watched
  bool polling = false;  // read by poll_ev (ev is not armed)
  // After a read of `got` datagrams (`more`: the socket still had some):
  // watch the socket or poll it (kRxTrickle).
  // Whichever it picks, if libevent refuses, it tries the other way: the
  // socket is never left unread.
  void pace_reads(size_t got, bool more) {
    if (!poll_ev) return;
    const bool poll = polling ? got > 0 && !more : got > 0 && got < kRxTrickle;
    timeval tv{0, static_cast<suseconds_t>(kRxPollUs)};
    if (poll && evtimer_add(poll_ev.get(), &tv) == 0) {
      if (!polling) event_del(ev.get());
      polling = true;
    } else if (polling) {
      if (event_add(ev.get(), nullptr) == 0) polling = false;
      else (void)evtimer_add(poll_ev.get(), &tv);  // cannot watch: keep polling
    }
  }
  // The fullest its receive queue was when the loop came to read it, in
  // this and the previous 250 ms (REPORTs carry it, PROTOCOL.md 5.7).
  uint8_t fill_max = 0, fill_prev = 0;
  uint64_t fill_since_us = 0;
  void note_fill(uint64_t now) {
    if (now - fill_since_us >= 250000) {
      fill_prev = now - fill_since_us >= 500000 ? 0 : fill_max;
      fill_max = 0;
      fill_since_us = now;
    }
    int pct = sock.queue_pct();
    if (pct > fill_max) fill_max = static_cast<uint8_t>(pct);
  }
  uint8_t fill(uint64_t now) const {
    if (now - fill_since_us >= 500000) return 0;
    return now - fill_since_us >= 250000 ? fill_max : std::max(fill_max, fill_prev);
  }
};

static void on_socket(evutil_socket_t, short, void* arg) {
  auto* s = static_cast<SocketEntry*>(arg);
  s->node->on_readable(*s);
}

static Result<std::unique_ptr<SocketEntry>> watch_socket(Node::Impl* n, UdpSocket sock) {
  auto e = std::make_unique<SocketEntry>();
  e->node = n;
  e->sock = std::move(sock);
  e->ev.reset(event_new(n->base, e->sock.fd(), EV_READ | EV_PERSIST, &on_socket, e.get()));
  if (!e->ev || event_add(e->ev.get(), nullptr) != 0)
    return make_error(Errc::internal, "cannot watch a UDP socket");
  e->poll_ev.reset(evtimer_new(n->base, &on_socket, e.get()));  // none: watched only
  return e;
}

// ---------------------------------------------------------------------------
struct Peer {
  uint64_t id = 0;
  std::string name;
  sockaddr_in addr{};
  bool have_addr = false;
  uint16_t caps = 0;
  uint64_t last_heard = 0;   // ms
  uint32_t interval_ms = 1000;
  uint64_t head = 0;         // catalog head it announced
  uint64_t cursor = 0;       // how far we pulled its catalog
  uint64_t pull_sent = 0;    // ms of the outstanding catalog request, 0: none
  uint32_t pull_tries = 0;   // requests sent since its last reply
  uint64_t data_bytes = 0;   // object bytes received from it
  uint64_t bad_objects = 0;
  double rtt_ms = -1;         // smoothed (RFC 6298 style); -1: not measured
  uint64_t ping_sent_us = 0;
  double loss = -1;          // loss of its DATA here, last REPORT interval
  double reported_loss = -1; // loss of our DATA there, from its last REPORT
  uint64_t data_pkts = 0;
  uint64_t last_data = 0;    // ms of its last DATA
  // Its DATA flows as we see them (PROTOCOL.md 9.1): for REPORTs.
  struct FlowRx {
    bool seen = false;
    uint32_t highest = 0, reported = 0;  // highest flow seq, and at the last REPORT
    uint32_t received = 0;               // DATA of the flow since the last REPORT
    uint64_t last_report_us = 0, last_data_us = 0;
  } flows[2];                            // [0] multicast, [1] unicast to us
  // For `shoalctl doctor`: when it was first heard and last heard by each
  // path (ms, 0: never), and its wall clock minus ours from its last PONG.
  uint64_t first_heard = 0, last_mcast = 0, last_ucast = 0;
  double clock_offset_ms = 0;
  bool clock_known = false;
  PeerReplay replay;  // per path: [0] multicast, [1] unicast, as flows[]
  std::unordered_set<Hash, HashHasher> has;  // versions in its catalog
  bool active(uint64_t now) const {
    return now - last_heard <= std::max<uint64_t>(kPeerExpiryMin, 5ULL * interval_ms);
  }
};

// One object being fetched: the manifest of a version or one of its chunks.
// A byte vector whose resize() does not zero what it adds: reassembly
// buffers are overwritten by DATA before they are read (256 MiB of memset
// per 256 MiB received otherwise).
template <class T>
struct NoInitAlloc : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInitAlloc<U>;
  };
  NoInitAlloc() = default;
  template <class U>
  NoInitAlloc(const NoInitAlloc<U>&) noexcept {}
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    if constexpr (sizeof...(A) == 0) ::new (static_cast<void*>(p)) U;
    else ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};
using Bytes = std::vector<uint8_t, NoInitAlloc<uint8_t>>;

// Bytes [first, second) of cell i of an object of `len` bytes cut in cells
// of `cell` bytes (the last one may be short).
static std::pair<uint32_t, uint32_t> cell_span(size_t i, size_t cell, uint32_t len) {
  const uint32_t b = static_cast<uint32_t>(i * cell);
  return {b, static_cast<uint32_t>(std::min<size_t>(len, b + cell))};
}

// One parity fragment held for an object. Parked (the usual case): its
// bytes were written where one of the object's missing cells goes (part
// file, spill slot or reassembly buffer), so it costs no memory; the cell is
// rebuilt over it. Otherwise its bytes, counted in its share's parity memory
// for as long as they live: held by an object, or in a worker job that
// rebuilds with them (so the count is atomic).
class ParityBuf {
 public:
  ParityBuf(uint8_t index, std::span<const uint8_t> b, std::shared_ptr<std::atomic<size_t>> held)
      : index_(index), bytes_(b.begin(), b.end()), held_(std::move(held)) {
    *held_ += bytes_.size();
  }
  ParityBuf(uint8_t index, uint32_t cell) : index_(index), cell_(static_cast<int64_t>(cell)) {}
  ParityBuf(ParityBuf&& o) noexcept = default;  // the moved-from one counts nothing
  ParityBuf& operator=(ParityBuf&& o) noexcept {
    if (this != &o) {
      release();
      index_ = o.index_;
      cell_ = o.cell_;
      bytes_ = std::move(o.bytes_);
      held_ = std::move(o.held_);
    }
    return *this;
  }
  ParityBuf(const ParityBuf&) = delete;
  ParityBuf& operator=(const ParityBuf&) = delete;
  ~ParityBuf() { release(); }
  uint8_t index() const { return index_; }
  bool parked() const { return cell_ >= 0; }
  uint32_t cell() const { return static_cast<uint32_t>(cell_); }  // where it is parked
  const uint8_t* data() const { return bytes_.data(); }           // not parked

 private:
  void release() {
    if (held_) *held_ -= bytes_.size();
    held_.reset();
  }
  uint8_t index_ = 0;
  int64_t cell_ = -1;
  Bytes bytes_;
  std::shared_ptr<std::atomic<size_t>> held_;
};

// Parity fragments that rebuild an object's missing cells, for whoever
// rebuilds them (the loop, or the worker for a part file).
struct CellRepair {
  size_t cell = 0;
  std::vector<uint32_t> missing;
  std::vector<ParityBuf> par;
  // Rebuilds `missing` in the object's k cells (fec.h's recover_cells),
  // over the fragments parked there (copied out first).
  bool rebuild(uint8_t* const* cells, size_t k) const {
    std::vector<uint8_t> idx;
    std::vector<const uint8_t*> ptr;
    Bytes parked(par.size() * cell);
    for (size_t i = 0; i < par.size(); i++) {
      const ParityBuf& b = par[i];
      if (b.parked() && b.cell() >= k) return false;
      idx.push_back(b.index());
      ptr.push_back(b.parked() ? static_cast<const uint8_t*>(std::memcpy(parked.data() + i * cell, cells[b.cell()], cell))
                               : b.data());
    }
    return recover_cells(cells, k, cell, missing, idx, ptr.data()).ok();
  }
};

struct Transfer;

struct Obj {
  Hash id{};
  Transfer* owner = nullptr;  // the transfer whose objs hold it (set_wake)
  uint32_t len = 0;
  bool manifest = false;
  RangeSet got;
  Bytes buf;
  uint64_t last_data = 0;   // ms
  uint64_t wake_us = 0;     // when to consider (re)sending a WANT; 0: not scheduled (set_wake)
  uint64_t sent_us = 0;     // our last WANT for it
  int tries = 0;
  bool asked = false;       // someone (us or another box) has asked for it
  // Its last byte arrived since our last WANT: the provider's pass over it
  // (in offset order) is over, so its gaps are losses, to be asked for now.
  bool ended = false;
  bool storing = false;     // verified, handed to the worker
  bool admitted = false;    // len counted in the node's inflight_bytes
  bool unicast = false;     // we dropped its multicast DATA (memory full): ask by unicast
  int slot = -1;            // its data is in this spill slot, not in buf
  // Written straight into the version's part file as it arrives (no
  // reassembly memory), its first copy at this offset there.
  bool direct = false;
  uint64_t base = 0;
  // Checked already at `base` in the stream's file that became the part file.
  bool stream_checked = false;
  // Parity fragments (PARITY) held until there are as many as missing cells
  // of `parity_cell` bytes.
  std::vector<ParityBuf> parity;
  uint16_t parity_cell = 0;
  // A part-file object complete once the worker rebuilds these cells
  // (use_parity), kept while it waits for room in the worker's queue.
  std::shared_ptr<const CellRepair> rebuild;
  // Complete, and waiting for room in the worker's queue (storing is set).
  bool check_waiting = false;
};


// Chunks only (a manifest is verified and decoded from memory), and no
// longer than a slot.
bool spillable(const Obj& o) { return !o.manifest && o.len > 0 && o.len <= kMaxChunkLen; }

struct Transfer {
  uint64_t key = 0;          // order of discovery (lowest first)
  Hash mid{};
  uint32_t mlen = 0;
  uint64_t size = 0;
  enum class St { want_manifest, want_chunks, publishing, paused, done } st = St::want_manifest;
  Manifest m;
  std::string enc;
  std::string rel;           // where it will be published
  std::string aside;         // conflict copy for the local file, if any
  std::vector<uint32_t> todo;  // manifest chunk indexes to fetch (one per distinct hash)
  size_t next = 0;           // todo[next] is the next to request
  size_t stored = 0;         // todo entries stored
  std::unordered_set<uint64_t> done;  // prefixes of todo chunks already stored
  uint64_t provider = 0;
  int provider_tries = 0;
  std::map<uint64_t, Obj> objs;  // id prefix -> object in flight
  uint64_t bytes_done = 0;
  uint64_t started = 0, resume_at = 0;
  uint64_t last_want_us = 0;  // WANTS rounds of this transfer are rate-limited (next_round_us)
  bool replan = false;        // paused before fetching (disk full): plan again
  bool ucast_only = false;    // multicast requests went unanswered: ask by unicast
  bool adds_file = false;     // holds one of the share's max_files while in flight
  std::shared_ptr<PartFile> part;  // the temp file written as chunks arrive
  bool part_opening = false;  // requests wait until it says what it holds
  Fd part_fd;                 // the loop's descriptor onto the part file (direct writes)
  bool superseded = false;    // a newer version of the path replaces it: finish
  // Chunks the store claimed but could not give at publish: fetched again.
  std::unordered_set<Hash, HashHasher> lost;
  // The stream this version took over (open_part): it takes the DATA
  // until the part file is open, then what it holds becomes objects here.
  uint64_t stream = 0;
  std::string error;
  // No object of this transfer is due before this (a lower bound, kept by
  // set_wake): the tick walks its objects only once one may be due.
  uint64_t wake_us = 0;
};

// Sets when `o` wants a look and keeps its transfer's lower bound of its
// objects' wake-ups (the tick walks a transfer's objects only once one is due).
void set_wake(Obj& o, uint64_t at) {
  o.wake_us = at;
  if (o.owner != nullptr && at < o.owner->wake_us) o.owner->wake_us = at;
}

// A file of `need` bytes may be written with `avail` free: a sixteenth more
// is left for the store, the directory and whatever else writes there.
bool room_for(uint64_t need, uint64_t avail) { return avail >= need + (need >> 4); }

// What was received of `o` no longer counts: it is asked for again, whole,
// after `after_ms` (not at once: a liar must not be hammered).
void fetch_again(Obj& o, uint64_t after_ms = kRetryMs) {
  o.storing = false;
  o.ended = false;
  o.got.clear();
  o.parity.clear();
  o.rebuild.reset();
  o.check_waiting = false;
  set_wake(o, now_us() + after_ms * 1000);
}

struct SendJob {
  Hash id{};
  uint32_t len = 0;
  bool mcast = true;
  sockaddr_in dest{};
  bool manifest = false;
  std::string data;  // loaded when the job reaches the front, freed when done
  RangeSet todo;
  bool repair = false;    // created by a NACK: everything it sends was sent before
  uint32_t sent_end = 0;  // end of the first pass; bytes below it go out again as repairs
  size_t parity = 0;      // parity fragments to send to the group (NACKs answered by parity)
};

// A large local file whose chunks go to the group while it is being
// ingested, before its version exists (PROTOCOL.md 8.7): the origin's side.
struct OutStream {
  uint64_t id = 0;
  std::string rel;
  Fd fd;
  // The file as the ingest read it: bytes read while it is unchanged are
  // what was hashed; otherwise they are checked against the chunk's hash.
  struct stat st {};
  struct Chunk {
    Hash id{};
    uint32_t len = 0;
    uint64_t off = 0;
  };
  std::deque<Chunk> todo;  // listed, not yet pushed, in file order
  // Prefixes in todo that have not gone whole to the group since they were
  // listed (pushed, or asked for): each chunk goes to the group once, even
  // when requests hold the push back for longer than kPushSkipMs.
  std::unordered_set<uint64_t> unsent;
  size_t listed = 0;
  bool ended = false;      // the ingest listed its last chunk
};

// A peer's file listed to us while it is ingested: its chunks are written
// into a StreamFile as they arrive (PROTOCOL.md 8.7). The receiver's side.
struct InStream {
  uint64_t key = 0, peer = 0, id = 0;
  std::string rel;
  uint64_t size = 0;
  std::shared_ptr<StreamFile> file;
  Fd fd;                   // the loop's descriptor, once the worker made the file
  uint64_t last_ms = 0;
  uint64_t listed_ms = 0;  // when its first STREAM came
  struct Chunk {
    Hash id{};
    uint32_t len = 0;
    uint64_t off = 0;
    RangeSet got;
    bool checking = false, done = false;
  };
  std::unordered_map<uint64_t, Chunk> chunks;  // by id prefix
  size_t done = 0;
  uint64_t adopted_by = 0;  // the transfer whose part file it is becoming
};

// ---------------------------------------------------------------------------
class Replicator {
 public:
  Replicator(Node::Impl* node, const ShareConfig& cfg) : n_(node), cfg_(cfg) {}
  Status start(const std::string& key);
  uint32_t share_id() const { return share_id_; }
  const std::string& name() const { return cfg_.name; }
  void on_datagram(const Header& h, std::span<uint8_t> dgram, const sockaddr_in& src, bool mcast);
  void local_version();
  size_t transfers_pending() const;
  size_t active_peers() const;
  void peers_json(nlohmann::json& out) const;
  void transfers_json(nlohmann::json& out) const;
  nlohmann::json doctor_json() const;
  uint64_t rate_bps() const { return rate_ ? rate_->rate_bps() : 0; }
  RateController::Counts rate_counts() const { return rate_ ? rate_->counts() : RateController::Counts{}; }
  // The share's multicast socket, if it has one (for the socket counters).
  const UdpSocket* mcast_socket() const;
  // The node persisted epoch `e` for us (after request_epoch): seal under it.
  void take_epoch(uint32_t e);
  // The node took a new sender id (a clone was seen): seal under it.
  void take_identity(uint64_t sender_id, uint32_t epoch);
  void stop();
  void set_max_rate(uint64_t bps);
  void stream_batch(StreamBatch& b);

 private:
  // sending
  bool seal_send(PacketType t, std::span<const uint8_t> body, const sockaddr_in* to,
                 std::span<const uint8_t> extra = {});
  void drop_own_multicast();
  size_t seal_into(PacketType t, std::span<uint8_t> out, std::span<const uint8_t> body,
                   std::span<const uint8_t> extra);
  void announce();
  void schedule_announce(uint64_t delay_ms);
  static void on_announce_timer(evutil_socket_t, short, void* arg);
  static void on_tick(evutil_socket_t, short, void* arg);
  void tick();
  void arm_tick(uint64_t us);
  size_t group_size() const { return active_peers() + 1; }
  bool use_mcast() const { return n_->opt.multicast; }
  // True when traffic for `p` may go to the group: it has MCAST and was heard
  // by multicast lately. Else it is sent by unicast (multicast off, blocked,
  // or lost later: IGMP snooping, a switch reboot, a firewall).
  bool mcast_reachable(const Peer& p, uint64_t now) const;
  // handlers
  void on_announce(Peer& p, const Announce& a, const sockaddr_in& src);
  void on_catalog_req(Peer& p, const CatalogReq& r, const sockaddr_in& src);
  void on_catalog(Peer& p, const Catalog& c);
  void on_want(Peer& p, const Want& w, const sockaddr_in& src, bool mcast);
  void on_data(Peer& p, const Data& d);
  bool asked_again(uint64_t pre);
  // streams (PROTOCOL.md 8.7)
  bool mcast_listener(uint64_t now) const;
  void send_stream_list(OutStream& s, const StreamBatch& b);
  bool push_next(uint64_t now_us_);
  bool read_pushed(const OutStream& s, const OutStream::Chunk& c, std::string* out);
  void on_stream(Peer& p, const Stream& m);
  void stream_opened(uint64_t key, Fd fd);
  bool stream_data(Peer& p, const Data& d, uint64_t prefix);
  void stream_checked(uint64_t key, uint64_t prefix, bool good);
  void drop_in_stream(uint64_t key, bool unused);
  InStream* stream_of(const Transfer& t);
  void carry_stream(Transfer& t);
  void expire_streams(uint64_t now_ms_);
  void on_ping(const Peer& p, const Ping& pg, const sockaddr_in& src);
  void on_pong(Peer& p, const Pong& pg);
  // receiver
  void pull(Peer& p);
  uint64_t pull_timeout(const Peer& p) const;
  void consider(Peer& p, const CatalogItem& e);
  // Returns when the earliest object wants another look (UINT64_MAX: none).
  uint64_t run_transfers(uint64_t now_us_);
  void fill_window(Transfer& t, uint64_t now);
  Want want_for(const Obj& o) const;
  void send_wants(Transfer& t, std::vector<Obj*>& due, uint64_t now);
  void send_wants_to(Peer& p, const std::vector<Obj*>& due, bool mc, uint64_t now);
  void overheard(const Peer& asker, const Want& w);
  void serve(Peer& p, const Want& w, const sockaddr_in& src, bool mcast);
  void object_done(Transfer& t, uint64_t prefix, Peer* from);
  void spilled_done(Transfer& t, uint64_t prefix, Peer* from);
  void spilled_checked(uint64_t tkey, uint64_t prefix, int slot, bool good, bool stored, uint32_t len,
                       uint64_t from);
  void direct_done(Transfer& t, uint64_t prefix, Peer* from);
  // The worker's queue is full: `o` (complete) waits for room, not fetched again.
  void wait_check(Transfer& t, uint64_t prefix, Obj& o, Peer* from);
  void retry_checks();
  struct CheckWaiting {
    uint64_t tkey = 0, prefix = 0, from = 0;
  };
  std::deque<CheckWaiting> checks_waiting_;
  void direct_checked(uint64_t tkey, uint64_t prefix, bool good, bool usable, bool stored, uint32_t len,
                      uint64_t from);
  void direct_lost(Transfer& t);
  void refetch_bad(Transfer* t, Obj* o, uint64_t prefix, uint64_t from);
  std::vector<std::shared_ptr<PartFile>> parts_wanting(uint64_t prefix, bool* all);
  void part_opened(uint64_t tkey, const std::shared_ptr<PartFile>& part, Fd fd, const std::vector<uint32_t>& held);
  void manifest_done(Transfer& t, Obj& o);
  void plan_version(Transfer& t);
  void chunk_stored(uint64_t tkey, uint64_t prefix, bool ok, uint32_t len);
  void publish(Transfer& t);
  void open_part(Transfer& t);
  void drop_part(Transfer& t, bool discard);
  void apply_deletion(Transfer& t, const std::optional<FileRecord>& cur);
  void finish(Transfer& t, const std::string& why);
  void drop_superseded(const std::string& path, const Hash& parent);
  void pick_provider(Transfer& t);
  Transfer* transfer(uint64_t key);
  void forget_objects(Transfer& t);
  bool admit(Obj& o);
  bool make_room(Obj& o);
  void release(Obj& o);
  // sender
  void pump(uint64_t now_us_);
  bool send_data_batch(SendJob& j, uint64_t now_us_);
  bool send_parity_batch(SendJob& j, uint64_t now_us_);
  bool answer_by_parity(const Peer& p, const Want& w, RangeSet& ask, uint64_t pre);
  // receiver side of DATA and PARITY
  void note_flow_rx(Peer& p, bool mcast, uint32_t flow_seq);
  bool put_bytes(Transfer& t, Obj& o, uint32_t b, const uint8_t* p, size_t n);
  void on_parity(Peer& p, const Parity& pp);
  bool use_parity(Transfer& t, uint64_t pre, Obj& o, Peer* from);
  void unpark(Obj& o, uint32_t b, uint32_t e);
  bool rebuild_here(Transfer& t, Obj& o, const CellRepair& rep);
  // security (limits, share boundaries, key usage, clones)
  void note_sealed(std::span<const uint8_t> dgram);
  void on_self(const Header& h, std::span<uint8_t> dgram, const sockaddr_in& src);
  bool refuse_by_limits(Transfer& t, bool adds_file);
  uint64_t share_files();
  bool evict_stale_partial(uint64_t now_ms_);

  Node::Impl* n_;
  ShareConfig cfg_;
  uint32_t share_id_ = 0;
  uint64_t self_ = 0;
  Sealer sealer_;
  Opener opener_;
  std::unordered_map<uint64_t, Peer> peers_;
  std::vector<sockaddr_in> statics_;
  sockaddr_in group_{};
  std::unique_ptr<SocketEntry> mcast_;
  EvPtr announce_ev_, tick_ev_;
  uint64_t tick_at_us_ = 0;
  uint64_t next_pull_check_ = 0;
  size_t announce_repeats_ = kAnnounceRepeatMs.size();  // repeats of the last growth sent
  // receiver
  std::map<uint64_t, Transfer> transfers_;
  std::unordered_map<Hash, uint64_t, HashHasher> transfer_of_;
  // object prefix -> transfers that need it (two versions may share chunks)
  std::unordered_map<uint64_t, std::vector<uint64_t>> owners_;
  void own(uint64_t pre, uint64_t key);
  void disown(uint64_t pre, uint64_t key);
  Transfer* owner_with_obj(uint64_t pre);
  std::unordered_map<uint64_t, uint64_t> heard_want_;   // object prefix -> ms another node asked
  struct GroupSent {
    uint64_t ms = 0;         // when we last sent the object whole to the group
    uint32_t last_seq = 0;   // the multicast flow seq of its last datagram
  };
  std::unordered_map<uint64_t, GroupSent> group_sent_;  // by object prefix
  // Repairs sent to the group in the last kCrossedMaxMs, by object prefix,
  // oldest first, at most kMaxRepairsKept per object.
  std::unordered_map<uint64_t, std::vector<RepairSent>> repairs_sent_;
  void note_repair(uint64_t pre, uint32_t b, uint32_t e, uint32_t seq, uint64_t ms, bool parity = false);
  // The next parity index of each object we repaired by parity, so that
  // every fragment of one object is a new one (at most kMaxHeardWants).
  std::unordered_map<uint64_t, size_t> parity_next_;
  std::vector<uint8_t> parity_buf_;  // made fragments, kMaxParityBatch cells (senders of parity only)
  // Parity bytes held (ParityBuf), kept under kMaxParityBytes.
  std::shared_ptr<std::atomic<size_t>> parity_held_ = std::make_shared<std::atomic<size_t>>(0);
  std::unordered_set<Hash, HashHasher> settled_;        // versions looked at and not wanted
  std::unordered_set<uint64_t> dropped_;  // objects whose DATA we dropped for lack of memory
  // DATA packets per second seen on this share, for the feedback budget.
  uint64_t rate_pkts_ = 0, rate_since_us_ = 0;
  double data_pps_ = 0;
  uint64_t want_interval_us() const;
  uint64_t next_round_us(const Transfer& t) const;
  uint64_t grtt_ms() const;
  uint64_t report_interval_us() const;
  uint64_t next_key_ = 1;
  // streams
  std::deque<OutStream> out_streams_;
  std::map<uint64_t, InStream> in_streams_;
  std::unordered_map<uint64_t, uint64_t> in_stream_of_;  // chunk prefix -> in_streams_ key
  uint64_t next_in_stream_ = 1;
  // sender
  std::list<SendJob> jobs_;
  TokenBucket bucket_{1000000000ULL, 256 * 1024};
  std::unique_ptr<RateController> rate_;
  uint32_t mcast_seq_ = 0;
  std::unordered_map<uint64_t, uint32_t> ucast_seq_;  // per destination
  uint64_t last_rate_tick_us_ = 0;
  void on_report(Peer& p, const Report& r);
  void send_reports(uint64_t now);
  std::vector<uint8_t> pkt_;
  // DATA leaves in batches of up to kTxBatch datagrams, sealed into one
  // buffer allocated at start: one sendmsg (UDP GSO) or sendmmsg per batch.
  static constexpr size_t kTxBatch = 64;
  std::vector<uint8_t> tx_buf_;
  std::array<iovec, kTxBatch> tx_iov_{};
  // max_files: the share's stored files, counted now and then, and the
  // transfers in flight that will add one.
  uint64_t files_ = 0, files_at_ = 0;
  size_t adding_ = 0;
  size_t parts_ = 0;  // transfers holding a PartFile
  uint64_t evict_scan_ms_ = 0;
  // Our last kSentTags datagrams, by counter: a datagram with our sender id
  // that is none of them comes from a clone (PROTOCOL.md 11.3).
  struct SentTag {
    uint32_t epoch = 0;
    uint64_t counter = 0;
    uint64_t tag = 0;
  };
  std::vector<SentTag> sent_ = std::vector<SentTag>(kSentTags);
  uint32_t start_epoch_ = 0;  // the epoch this process started with
  // Our sender id before a clone made us change it: our own datagrams under
  // it may still be in flight for a moment; after that it is the clone's.
  uint64_t old_self_ = 0, old_self_until_ = 0;
};

// ---------------------------------------------------------------------------
Status Replicator::start(const std::string& key) {
  auto sid = derive_share_id(key);
  if (!sid) return sid.error();
  share_id_ = *sid;
  self_ = n_->opt.sender_id;
  if (auto st = sealer_.init(key, n_->opt.sender_id, n_->opt.epoch); !st) return st;
  if (n_->opt.rekey_after != 0) sealer_.set_rekey_counter(n_->opt.rekey_after);
  start_epoch_ = n_->opt.epoch;
  if (auto st = opener_.init(key); !st) return st;
  bucket_ = TokenBucket(n_->opt.max_rate_bps,
                        std::max<uint64_t>(256 * 1024, n_->opt.max_rate_bps / 8 / 250));
  RateConfig rc;
  rc.max_rate_bps = n_->opt.max_rate_bps;
  rc.min_rate_bps = std::min<uint64_t>(rc.min_rate_bps, n_->opt.max_rate_bps);
  rate_ = std::make_unique<RateController>(rc);
  pkt_.resize(n_->opt.mtu);
  auto g = resolve_ipv4(cfg_.group.host, cfg_.group.port);
  if (!g) return g.error();
  group_ = *g;
  for (const auto& hp : cfg_.peers) {
    auto a = resolve_ipv4(hp.host, hp.port);
    if (!a) {
      LOG_WARN("share %s: peer %s:%u: %s", cfg_.name.c_str(), log_escape(hp.host).c_str(), hp.port,
               a.error().msg.c_str());
      continue;
    }
    statics_.push_back(*a);
  }
  if (use_mcast()) {
    auto s = UdpSocket::open_multicast(cfg_.group.host, cfg_.group.port, n_->opt.bind, n_->opt.interface);
    if (!s) return s.error();
    auto e = watch_socket(n_, std::move(s.value()));
    if (!e) return e.error();
    mcast_ = std::move(e.value());
    drop_own_multicast();
  }
  if (cfg_.order == ShareOrder::rarest)
    LOG_WARN("share %s: order = rarest is not implemented yet; fetching lowest-first", cfg_.name.c_str());
  announce_ev_.reset(evtimer_new(n_->base, &Replicator::on_announce_timer, this));
  tick_ev_.reset(evtimer_new(n_->base, &Replicator::on_tick, this));
  schedule_announce(static_cast<uint64_t>(urand() * 300));
  arm_tick(100000);
  return {};
}

// Header, body and extra (encrypted after body) sealed into `out`; returns
// the datagram's length, 0 if it does not fit or the sealer refuses.
size_t Replicator::seal_into(PacketType t, std::span<uint8_t> out, std::span<const uint8_t> body,
                             std::span<const uint8_t> extra) {
  Header h;
  h.type = t;
  h.share_id = share_id_;
  h.sender_id = self_;
  h.epoch = sealer_.epoch();
  h.counter = sealer_.next_counter();
  if (kHeaderLen + body.size() + extra.size() + kTagLen > out.size()) return 0;
  encode_header(h, out);
  std::memcpy(out.data() + kHeaderLen, body.data(), body.size());
  auto len = sealer_.seal(out, body.size(), extra);
  if (!len) {
    LOG_ERROR("share %s: cannot seal: %s", cfg_.name.c_str(), len.error().msg.c_str());
    return 0;
  }
  note_sealed(out.subspan(0, *len));
  return *len;
}

// Our own multicast DATA comes back to us (IP_MULTICAST_LOOP, for boxes that
// share a host): the kernel drops it before it wakes us, matched on the
// whole header up to the counter (type DATA, share, sender_id, epoch),
// instead of every datagram being read and dropped as `self`. Everything
// else of ours still arrives, so a clone of ours (PROTOCOL.md 11.3) is still
// found by its ANNOUNCEs. Set again whenever the sender id or epoch changes.
void Replicator::drop_own_multicast() {
  if (!mcast_) return;
  Header h;
  h.type = PacketType::data;
  h.share_id = share_id_;
  h.sender_id = self_;
  h.epoch = sealer_.epoch();
  uint8_t hdr[kHeaderLen];
  if (encode_header(h, hdr) != kHeaderLen) return;
  if (auto st = mcast_->sock.drop_matching(0, {hdr, kHeaderCounterOff}); !st)
    LOG_WARN("share %s: %s; own multicast is dropped after reading it", cfg_.name.c_str(),
             st.error().msg.c_str());
}

bool Replicator::seal_send(PacketType t, std::span<const uint8_t> body, const sockaddr_in* to,
                           std::span<const uint8_t> extra) {
  size_t len = seal_into(t, pkt_, body, extra);
  if (len == 0) return false;
  const sockaddr_in& dest = to != nullptr ? *to : group_;
  bool ok = n_->send(dest, pkt_.data(), len);
  if (t != PacketType::data) n_->c.ctrl_pkts_out++;
  if (ok && t != PacketType::data) n_->c.count(NetCounters::kSent, NetCounters::kControl, len);
  return ok;
}

// --- peers and announce ------------------------------------------------------
void Replicator::schedule_announce(uint64_t delay_ms) {
  if (!announce_ev_) return;  // stopped
  timeval tv{static_cast<time_t>(delay_ms / 1000), static_cast<suseconds_t>((delay_ms % 1000) * 1000)};
  evtimer_add(announce_ev_.get(), &tv);
}

void Replicator::on_announce_timer(evutil_socket_t, short, void* arg) {
  auto* r = static_cast<Replicator*>(arg);
  r->announce();
  if (r->announce_repeats_ < kAnnounceRepeatMs.size()) {
    r->schedule_announce(kAnnounceRepeatMs[r->announce_repeats_++]);
    return;
  }
  // RTCP-like: the group's announces together stay near the budget.
  double nominal = std::max<double>(static_cast<double>(kAnnounceFloorMs), static_cast<double>(r->group_size()) * 130.0 * 8.0 *
                                                        1000.0 / kAnnounceBudgetBps);
  r->schedule_announce(static_cast<uint64_t>(nominal * (0.5 + urand())));
}

void Replicator::announce() {
  Announce a;
  a.port = n_->ucast->sock.local_port();
  a.caps = static_cast<uint16_t>((use_mcast() ? kCapMcast : 0) |
                                 (cfg_.mode != ShareMode::receiveonly ? kCapSend : 0) |
                                 (cfg_.mode != ShareMode::sendonly ? kCapRecv : 0) | kCapClock | kCapParity | kCapQueue);
  a.interval_ms = static_cast<uint32_t>(std::max<double>(
      static_cast<double>(kAnnounceFloorMs), static_cast<double>(group_size()) * 130.0 * 8.0 * 1000.0 / kAnnounceBudgetBps));
  a.peers = static_cast<uint32_t>(group_size());
  a.grtt_us = static_cast<uint32_t>(grtt_ms() * 1000);
  auto head = n_->reader->catalog_head(cfg_.name);
  a.catalog_head = head ? *head : 0;
  a.name = n_->opt.node_name;
  uint8_t body[256];
  size_t len = encode_announce(a, body);
  if (len == 0) return;
  if (use_mcast()) seal_send(PacketType::announce, {body, len}, nullptr);
  uint64_t now = now_ms();
  for (const auto& s : statics_) seal_send(PacketType::announce, {body, len}, &s);
  for (auto& [id, p] : peers_) {
    if (!p.active(now) || !p.have_addr) continue;
    bool is_static = std::any_of(statics_.begin(), statics_.end(),
                                 [&](const sockaddr_in& s) { return same_addr(s, p.addr); });
    if (!is_static && !mcast_reachable(p, now))
      seal_send(PacketType::announce, {body, len}, &p.addr);
  }
}

void Replicator::local_version() {
  // Tell peers at once that the catalog grew (a short jitter merges bursts).
  announce_repeats_ = 0;
  if (announce_ev_) schedule_announce(5 + static_cast<uint64_t>(urand() * 20));
}

// Heard within a few of its announce intervals (jittered up to 1.5x each).
static bool heard_lately(uint64_t last, const Peer& p, uint64_t now) {
  return last != 0 && now - last <= std::max<uint64_t>(kMcastStaleMinMs, 3ULL * p.interval_ms);
}

bool Replicator::mcast_reachable(const Peer& p, uint64_t now) const {
  return use_mcast() && (p.caps & kCapMcast) && heard_lately(p.last_mcast, p, now);
}

size_t Replicator::active_peers() const {
  uint64_t now = now_ms();
  size_t n = 0;
  for (const auto& [id, p] : peers_) n += p.active(now) ? 1 : 0;
  return n;
}

void Replicator::on_datagram(const Header& h, std::span<uint8_t> dgram, const sockaddr_in& src,
                             bool mcast) {
  auto& c = n_->c;
  if (h.sender_id == self_) return on_self(h, dgram, src);
  const uint64_t rnow = n_->rx_us / 1000;
  if (h.sender_id == old_self_ && rnow < old_self_until_) return c.drop(Drop::self);
  const PeerReplay::Path path = mcast ? PeerReplay::kMulticast : PeerReplay::kUnicast;
  auto it = peers_.find(h.sender_id);
  if (it != peers_.end()) {
    Drop d = it->second.replay.check(path, h.epoch, h.counter, rnow);
    if (d != Drop::none) return c.drop(d);
  }
  Drop d = opener_.open(h, dgram);
  if (d != Drop::none) return c.drop(d);
  if (it == peers_.end()) {
    if (peers_.size() >= 65536) return c.drop(Drop::rate_limited);
    it = peers_.emplace(h.sender_id, Peer{}).first;
    it->second.id = h.sender_id;
  }
  Peer& p = it->second;
  if (Drop ad = p.replay.accept(path, h.epoch, h.counter, rnow); ad != Drop::none) return c.drop(ad);
  p.last_heard = rnow;
  if (p.first_heard == 0) p.first_heard = p.last_heard;
  (mcast ? p.last_mcast : p.last_ucast) = p.last_heard;
  c.in_by_type[static_cast<size_t>(h.type)]++;
  if (h.type != PacketType::data) c.count(NetCounters::kReceived, NetCounters::kControl, dgram.size());
  auto body = body_of(std::span<const uint8_t>(dgram.data(), dgram.size()));
  switch (h.type) {
    case PacketType::announce: {
      Announce a;
      if (decode_announce(body, &a) != Drop::none) return c.drop(Drop::malformed);
      return on_announce(p, a, src);
    }
    case PacketType::catalog_req: {
      CatalogReq r;
      if (decode_catalog_req(body, &r) != Drop::none) return c.drop(Drop::malformed);
      return on_catalog_req(p, r, src);
    }
    case PacketType::catalog: {
      Catalog cat;
      if (decode_catalog(body, &cat) != Drop::none) return c.drop(Drop::malformed);
      return on_catalog(p, cat);
    }
    case PacketType::want: {
      Want w;
      if (decode_want(body, &w) != Drop::none) return c.drop(Drop::malformed);
      return on_want(p, w, src, mcast);
    }
    case PacketType::wants: {
      Wants ws;
      if (decode_wants(body, &ws) != Drop::none) return c.drop(Drop::malformed);
      n_->c.want_in++;
      for (const Want& w : ws.items) {
        if (ws.target == self_) serve(p, w, src, mcast);
        else overheard(p, w);
      }
      return;
    }
    case PacketType::data: {
      Data dd;
      if (decode_data(body, &dd) != Drop::none) return c.drop(Drop::malformed);
      c.count(NetCounters::kReceived,
              asked_again(prefix64(dd.prefix.data())) ? NetCounters::kRepair : NetCounters::kData,
              dgram.size());
      return on_data(p, dd);
    }
    case PacketType::parity: {
      Parity pp;
      if (decode_parity(body, &pp) != Drop::none) return c.drop(Drop::malformed);
      c.count(NetCounters::kReceived, NetCounters::kRepair, dgram.size());
      return on_parity(p, pp);
    }
    case PacketType::ping: {
      Ping pg;
      if (decode_ping(body, &pg) != Drop::none) return c.drop(Drop::malformed);
      return on_ping(p, pg, src);
    }
    case PacketType::pong: {
      Pong pg;
      if (decode_pong(body, &pg) != Drop::none) return c.drop(Drop::malformed);
      return on_pong(p, pg);
    }
    case PacketType::report: {
      Report r;
      if (decode_report(body, &r) != Drop::none) return c.drop(Drop::malformed);
      return on_report(p, r);
    }
    case PacketType::stream: {
      Stream m;
      if (decode_stream(body, &m) != Drop::none) return c.drop(Drop::malformed);
      return on_stream(p, m);
    }
    default:
      return;  // HAVE: accepted, not acted on yet
  }
}

void Replicator::on_announce(Peer& p, const Announce& a, const sockaddr_in& src) {
  bool fresh = p.name.empty();
  p.name = a.name;
  p.caps = a.caps;
  p.interval_ms = a.interval_ms;
  p.addr = src;
  p.addr.sin_port = htons(a.port);
  p.have_addr = true;
  if (fresh)
    LOG_INFO("share %s: peer %s at %s", cfg_.name.c_str(), log_escape(p.name).c_str(),
             addr_str(p.addr).c_str());
  if (a.catalog_head < p.cursor) p.cursor = 0;  // it lost its store: start over
  p.head = a.catalog_head;
  if (p.head > p.cursor && cfg_.mode != ShareMode::sendonly) pull(p);
}

// The reply comes from `p`: its own RTT (O(1); the group RTT would scan
// every peer for every outstanding request).
uint64_t Replicator::pull_timeout(const Peer& p) const {
  uint64_t backoff = kPullFirstMs << std::min<uint32_t>(p.pull_tries > 0 ? p.pull_tries - 1 : 0, 5);
  uint64_t rtt = p.rtt_ms > 0 ? static_cast<uint64_t>(std::ceil(p.rtt_ms)) : kGrttMs;
  return std::max<uint64_t>(std::min(backoff, kPullMaxMs), 4 * rtt);
}

void Replicator::pull(Peer& p) {
  uint64_t now = now_ms();
  if (p.pull_sent != 0 && now - p.pull_sent < pull_timeout(p)) return;
  if (!p.have_addr) return;
  CatalogReq r{p.cursor, kPullEntries};
  uint8_t body[kCatalogReqLen];
  size_t len = encode_catalog_req(r, body);
  if (len == 0) return;
  p.pull_sent = now;
  p.pull_tries++;
  seal_send(PacketType::catalog_req, {body, len}, &p.addr);
}

void Replicator::on_catalog_req(Peer& p, const CatalogReq& r, const sockaddr_in& src) {
  (void)p;
  size_t want = std::min<size_t>(r.max_entries, kPullEntries);
  // The head first, then the entries: the worker commits new entries
  // meanwhile on its own connection. Read the other way round, a head taken
  // after an entry was committed past the list would let the requester
  // (after LAST) move its cursor over entries it never saw, and never fetch
  // those files. This way every entry up to the head is in the list (or
  // the list is full and LAST is not set).
  auto head = n_->reader->catalog_head(cfg_.name);
  auto list = n_->reader->catalog_since(cfg_.name, r.after_seq, want);
  if (!list) return;
  size_t per = max_catalog_entries(n_->opt.mtu);
  Catalog c;
  c.after_seq = r.after_seq;
  c.head = head ? std::max(*head, r.after_seq) : r.after_seq;
  if (!list->empty()) c.head = std::max(c.head, list->back().seq);
  bool more = !list->empty() && list->back().seq < c.head && list->size() == want;
  std::vector<uint8_t> body(n_->opt.mtu);
  std::string enc;
  size_t i = 0;
  do {
    c.entries.clear();
    c.flags = 0;
    for (; i < list->size() && c.entries.size() < per; i++) {
      const CatalogEntry& e = (*list)[i];
      if (!n_->reader->get_manifest(e.manifest, &enc)) continue;
      auto m = decode_manifest(enc);
      if (!m) continue;
      CatalogItem it;
      it.seq = e.seq;
      it.manifest = e.manifest;
      it.file_size = m->size;
      it.manifest_len = static_cast<uint32_t>(enc.size());
      it.flags = e.flags;
      c.entries.push_back(it);
    }
    if (i >= list->size() && !more) c.flags |= kCatalogLast;
    if (c.entries.empty() && !(c.flags & kCatalogLast)) c.flags |= kCatalogLast;
    size_t len = encode_catalog(c, body);
    if (len == 0) return;
    seal_send(PacketType::catalog, {body.data(), len}, &src);
    if (!c.entries.empty()) c.after_seq = c.entries.back().seq;
  } while (i < list->size());
}

void Replicator::on_catalog(Peer& p, const Catalog& c) {
  if (c.after_seq > p.cursor) return;  // an earlier packet was lost; the pull repeats
  p.pull_tries = 0;
  for (const CatalogItem& e : c.entries) {
    if (e.seq <= p.cursor) continue;
    p.cursor = e.seq;
    p.has.insert(e.manifest);
    consider(p, e);
  }
  p.pull_sent = now_ms();
  if (c.flags & kCatalogLast) {
    // Nothing more up to the head: entries past our cursor were collected.
    p.pull_sent = 0;
    p.cursor = std::max(p.cursor, c.head);
    p.head = std::max(p.head, c.head);
  } else if (c.entries.size() < max_catalog_entries(n_->opt.mtu)) {
    p.pull_sent = 0;  // the last packet of a partial reply: ask for the rest now
  }
  if (p.head > p.cursor) pull(p);
}

void Replicator::consider(Peer& p, const CatalogItem& e) {
  if (cfg_.mode == ShareMode::sendonly) return;
  if ((e.flags & kManifestDeleted) && !cfg_.delete_propagate) return;  // delete = keep
  auto it = transfer_of_.find(e.manifest);
  if (it != transfer_of_.end()) return;
  if (settled_.count(e.manifest) != 0) return;
  std::string enc;
  if (n_->reader->get_manifest(e.manifest, &enc)) {
    // Known version: nothing to fetch. (Re-published only if it is the current
    // one of its path and the file went missing, which the watcher handles.)
    settled_.insert(e.manifest);
    return;
  }
  Transfer t;
  t.key = next_key_++;
  t.mid = e.manifest;
  t.mlen = e.manifest_len;
  t.size = e.file_size;
  t.provider = p.id;
  t.started = now_ms();
  transfer_of_[t.mid] = t.key;
  LOG_DEBUG("share %s: new version %s (%llu bytes) from %s", cfg_.name.c_str(),
            hash_hex(t.mid).substr(0, 16).c_str(), static_cast<unsigned long long>(t.size),
            log_escape(p.name).c_str());
  transfers_.emplace(t.key, std::move(t));
  arm_tick(0);
}

Transfer* Replicator::transfer(uint64_t key) {
  auto it = transfers_.find(key);
  return it == transfers_.end() ? nullptr : &it->second;
}

// --- receiver: requests ------------------------------------------------------
// Another holder of the version. A peer that sent objects failing their
// hash 3 times is not chosen again while an honest-looking one exists.
void Replicator::pick_provider(Transfer& t) {
  uint64_t now = now_ms();
  std::vector<uint64_t> good, all;
  for (const auto& [id, p] : peers_) {
    if (!p.active(now) || !p.have_addr || p.has.count(t.mid) == 0) continue;
    all.push_back(id);
    if (p.bad_objects < 3) good.push_back(id);
  }
  std::vector<uint64_t>& cands = good.empty() ? all : good;
  if (cands.empty()) return;
  std::sort(cands.begin(), cands.end());
  auto cur = std::find(cands.begin(), cands.end(), t.provider);
  if (cur == cands.end() || ++cur == cands.end()) cur = cands.begin();
  if (*cur != t.provider)
    LOG_INFO("share %s: %s: asking another box", cfg_.name.c_str(),
             t.rel.empty() ? hash_hex(t.mid).substr(0, 16).c_str() : log_escape(t.rel).c_str());
  t.provider = *cur;
  t.provider_tries = 0;
}

Want Replicator::want_for(const Obj& o) const {
  Want w;
  w.id = o.id;
  w.object_len = o.len;
  w.flags = o.manifest ? kWantManifest : 0;
  if (!o.got.empty()) {
    size_t maxr = 16;  // keep several objects per packet; the rest next round
    if (!o.parity.empty()) {
      // Each parity fragment held rebuilds one missing cell: ask for the
      // others only, whether the answer is DATA or more parity (not for the
      // cells fragments are parked in, which DATA would overwrite).
      std::vector<uint32_t> miss = missing_cells(o.got, o.len, o.parity_cell);
      size_t loose = 0;
      for (const ParityBuf& h : o.parity) {
        if (!h.parked()) loose++;
        else std::erase(miss, h.cell());
      }
      miss.resize(miss.size() > loose ? miss.size() - loose : 0);
      if (miss.empty()) miss = missing_cells(o.got, o.len, o.parity_cell);  // never "the whole object"
      RangeSet ask;
      for (uint32_t i : miss) {
        auto [b, e] = cell_span(i, o.parity_cell, o.len);
        ask.add(b, e);
      }
      for (const auto& [b, e] : ask.ranges()) w.ranges.push_back({b, e - b});
      if (w.ranges.size() > maxr) {
        w.ranges.resize(maxr);
        w.flags |= kWantMore;
      }
      return w;
    }
    for (auto& [b, e] : o.got.gaps(0, o.len, maxr + 1)) w.ranges.push_back({b, e - b});
    if (w.ranges.size() > maxr) {
      w.ranges.resize(maxr);
      w.flags |= kWantMore;
    }
  }
  return w;
}

// One WANTS datagram (up to 4) for every object of `t` that is due: first
// requests and NACKs together, so feedback grows with rounds, not with
// objects or losses.
void Replicator::send_wants(Transfer& t, std::vector<Obj*>& due, uint64_t now) {
  auto pit = peers_.find(t.provider);
  if (pit == peers_.end() || !pit->second.have_addr) return;
  Peer& p = pit->second;
  uint64_t ms = now / 1000;
  // Requests by multicast that got nothing back for a few rounds, no DATA
  // from the provider on the group at all (busy serving others is not a
  // stall), yet it is heard by unicast: our group membership may be gone.
  if (!t.ucast_only && t.provider_tries >= kTriesPerProvider && mcast_reachable(p, ms) &&
      now - p.flows[0].last_data_us >= kMcastStallUs && heard_lately(p.last_ucast, p, ms)) {
    t.ucast_only = true;
    LOG_INFO("share %s: %s: no answer by multicast from %s; asking by unicast", cfg_.name.c_str(),
             t.rel.empty() ? hash_hex(t.mid).substr(0, 16).c_str() : log_escape(t.rel).c_str(),
             log_escape(p.name).c_str());
  }
  bool mc = !t.ucast_only && mcast_reachable(p, ms);
  // Objects whose multicast DATA we had to drop are asked for by unicast:
  // the other boxes have them, and a multicast resend would reach every one
  // of them only to be dropped as unwanted.
  auto uc = std::stable_partition(due.begin(), due.end(), [](const Obj* o) { return !o->unicast; });
  std::vector<Obj*> ucast(uc, due.end());
  due.erase(uc, due.end());
  send_wants_to(p, due, mc, now);
  send_wants_to(p, ucast, false, now);
  t.provider_tries++;
  t.last_want_us = now;
}

void Replicator::send_wants_to(Peer& p, const std::vector<Obj*>& due, bool mc, uint64_t now) {
  std::vector<uint8_t> body(n_->opt.mtu);
  const size_t room = max_body(n_->opt.mtu);
  size_t i = 0;
  for (int pkt = 0; pkt < 4 && i < due.size(); pkt++) {
    Wants ws;
    ws.target = p.id;
    // How far we have read its multicast flow: a request for what is still
    // in our socket can be told from one for what we lost.
    if (p.flows[0].seen) ws.heard = kHeardValid | p.flows[0].highest;
    size_t len = kWantsFixedLen;
    for (; i < due.size() && ws.items.size() < kMaxListCount; i++) {
      Want w = want_for(*due[i]);
      if (len + wants_item_len(w) > room) break;
      len += wants_item_len(w);
      ws.items.push_back(std::move(w));
      Obj& o = *due[i];
      o.sent_us = now;
      o.asked = true;
      o.ended = false;
      o.tries++;
      uint64_t retry = std::min<uint64_t>(kMaxRetryMs, kRetryMs << std::min(o.tries - 1, 5));
      set_wake(o, now + retry * 1000);
    }
    size_t n = encode_wants(ws, body);
    if (n == 0) break;
    seal_send(PacketType::wants, {body.data(), n}, mc ? nullptr : &p.addr);
    n_->c.want_out++;
  }
}

void Replicator::fill_window(Transfer& t, uint64_t now) {
  if (t.part_opening) return;
  const bool direct = t.part_fd.get() >= 0;
  const size_t window = direct ? kDirectWindowObjects : kWindowObjects;
  // Refill in halves so first requests go out in batches, not one by one.
  if (t.next > 0 && (t.objs.size() > window / 2 || (!direct && n_->inflight_bytes > kMaxInflightBytes / 2)))
    return;
  while (t.next < t.todo.size() && t.objs.size() < window) {
    const ChunkRef& c = t.m.chunks[t.todo[t.next]];
    uint64_t pre = prefix64(c.hash);
    if (t.objs.count(pre) != 0 || t.done.count(pre) != 0) {
      t.next++;
      continue;
    }
    Obj o;
    o.id = c.hash;
    o.len = c.len;
    if (direct) {
      o.base = t.part->first_offset(c.hash);
      o.direct = o.base != UINT64_MAX;
    }
    if (!o.direct && !admit(o)) break;
    t.next++;
    o.unicast = dropped_.erase(pre) != 0;
    auto hw = heard_want_.find(pre);
    bool asked = !o.unicast && hw != heard_want_.end() && now_ms() - hw->second < kHeardWantTtlMs;
    o.asked = asked;
    o.sent_us = now;
    o.owner = &t;
    set_wake(o, now + (asked ? kRetryMs * 1000 : backoff_us(group_size(), grtt_ms())));
    own(pre, t.key);
    t.objs.emplace(pre, std::move(o));
  }
}

uint64_t Replicator::run_transfers(uint64_t now) {
  uint64_t earliest = UINT64_MAX;
  size_t active = 0;
  for (auto it = transfers_.begin(); it != transfers_.end() && active < kMaxActiveTransfers;) {
    Transfer& t = it->second;
    ++it;
    if (t.st == Transfer::St::done) continue;
    if (t.superseded && t.st != Transfer::St::publishing) {
      finish(t, "replaced by a newer version");
      continue;
    }
    if (t.st == Transfer::St::paused) {
      if (now / 1000 >= t.resume_at) {
        if (t.replan) {
          t.replan = false;
          plan_version(t);
        } else {
          publish(t);
        }
      }
      continue;
    }
    active++;
    if (t.st == Transfer::St::publishing) continue;
    if (t.st == Transfer::St::want_manifest && t.objs.empty()) {
      Obj o;
      o.id = t.mid;
      o.len = t.mlen;
      o.manifest = true;
      o.owner = &t;
      set_wake(o, now + backoff_us(group_size(), grtt_ms()));
      if (admit(o)) {
        own(prefix64(t.mid), t.key);
        t.objs.emplace(prefix64(t.mid), std::move(o));
      }
    }
    if (t.st == Transfer::St::want_chunks) fill_window(t, now);
    if (t.provider_tries >= kTriesPerProvider * 2) pick_provider(t);
    if (now < t.wake_us) {  // none of its objects is due yet
      earliest = std::min(earliest, t.wake_us);
      continue;
    }
    std::vector<Obj*> due;
    const Peer* prov = nullptr;
    if (auto pit = peers_.find(t.provider); pit != peers_.end()) prov = &pit->second;
    // NACKs are lazy: gaps wait until the provider's pass is over (it went
    // quiet), memory runs short, or a gap is old. One round then asks for
    // everything at once, so feedback grows with rounds, not with losses.
    bool idle = prov == nullptr || now / 1000 - prov->last_data >= kProviderIdleMs;
    // Memory is full: gaps in objects whose data stopped are asked for now,
    // not when the provider's pass is over, since they hold up the window.
    bool pressed = n_->inflight_bytes + kMaxChunkLen > kMaxInflightBytes;
    bool any_passed = false;
    // Whether `o` is due for a WANT now; if not, its wake_us says when.
    auto consider = [&](Obj& o) -> bool {
      if (o.storing || o.wake_us == 0 || now < o.wake_us) return false;
      if (!o.direct && o.slot < 0 && !admit(o)) return false;  // evicted (evict_stale_partial): asked for when it fits again
      if (!o.asked && o.got.empty()) return true;  // first request, after its suppression back-off
      uint64_t quiet_until = (o.last_data + kQuietMs) * 1000;
      if (o.last_data != 0 && now < quiet_until && !o.ended) {
        set_wake(o, quiet_until);  // data still flowing
        return false;
      }
      bool old = now - o.sent_us >= kMaxNackDelayMs * 1000;
      // The provider sends an object's ranges in one go, in offset order:
      // once this object's last byte came, or its DATA for something else
      // came after this object's last, these gaps are losses, and waiting
      // for the end of its pass would stall the window.
      bool passed = o.ended || (prov != nullptr && o.last_data != 0 && prov->last_data > o.last_data);
      if (!(idle || passed || (pressed && o.last_data != 0) || old)) {
        set_wake(o, now + kProviderIdleMs * 1000);
        return false;
      }
      any_passed = any_passed || passed;
      return true;
    };
    // The earliest wake-up, in the same pass (the objects are many: a
    // second walk over them on every tick was a few % of a receiver's
    // CPU). First requests go at their time; NACKs also wait for the round
    // interval, and max(min(w), R) = min(max(w, R)).
    uint64_t first_at = UINT64_MAX, nack_at = UINT64_MAX;
    auto note = [&](const Obj& o) {
      if (o.storing || o.wake_us == 0) return;
      uint64_t& at = !o.asked && o.got.empty() ? first_at : nack_at;
      at = std::min(at, o.wake_us);
    };
    for (auto& [pre, o] : t.objs) {
      if (consider(o)) due.push_back(&o);
      else note(o);
    }
    bool first = std::any_of(due.begin(), due.end(), [](Obj* o) { return !o->asked; });
    // First requests are sent at once (each object is asked for once per
    // group thanks to suppression); the round interval bounds NACK rounds.
    if (!due.empty() && (first || now >= next_round_us(t))) {
      auto& c = n_->c;
      (first ? c.round_first : idle ? c.round_idle : any_passed ? c.round_passed
                                    : pressed ? c.round_pressed : c.round_old)++;
      c.want_items += due.size();
      send_wants(t, due, now);
    }
    for (Obj* o : due) note(*o);
    // Every object was noted: the next walk is due at the earliest first
    // request, or NACK once the round interval allows it (set_wake lowers
    // this when anything changes before then).
    t.wake_us = first_at;
    if (nack_at != UINT64_MAX) t.wake_us = std::min(t.wake_us, std::max(nack_at, next_round_us(t)));
    earliest = std::min(earliest, t.wake_us);
  }
  return earliest;
}

// --- receiver: data ----------------------------------------------------------
// Like RTCP's 5% rule: all receivers' WANTS together stay near
// kFeedbackShare of the DATA packets, so one receiver waits longer between
// rounds the more receivers there are and the slower data flows.
uint64_t Replicator::want_interval_us() const {
  double pps = std::max(data_pps_, 1000.0);
  double us = static_cast<double>(group_size()) / (kFeedbackShare * pps) * 1e6;
  return static_cast<uint64_t>(std::clamp(us, static_cast<double>(kWantIntervalUs),
                                          static_cast<double>(kMaxWantIntervalUs)));
}

// Group RTT: the largest smoothed RTT to an active peer, in [1 ms, 1 s].
uint64_t Replicator::grtt_ms() const {
  double worst = -1;
  uint64_t now = now_ms();
  for (const auto& [id, p] : peers_)
    if (p.active(now) && p.rtt_ms > worst) worst = p.rtt_ms;
  if (worst < 0) return kGrttMs;
  return static_cast<uint64_t>(std::clamp(std::ceil(worst), 1.0, 1000.0));
}

// REPORTs get half the WANTS' share of the feedback budget.
uint64_t Replicator::report_interval_us() const {
  double pps = std::max(data_pps_, 1000.0);
  double us = static_cast<double>(group_size()) / (kFeedbackShare / 2 * pps) * 1e6;
  return static_cast<uint64_t>(std::clamp(us, static_cast<double>(kReportIntervalUs), 5e6));
}

// When the next NACK round of `t` may go. The interval follows the DATA rate
// heard now, not when the last round went: a round sent before the data began
// (the manifest's first request) would otherwise hold the next one for the
// longest interval. The manifest's own rounds only follow its retry backoff:
// one small object per version, and nothing else of the version moves until
// it is here.
uint64_t Replicator::next_round_us(const Transfer& t) const {
  if (t.st == Transfer::St::want_manifest) return 0;
  return t.last_want_us + want_interval_us();
}

bool Replicator::asked_again(uint64_t pre) {
  Transfer* t = owner_with_obj(pre);
  if (t == nullptr) return false;
  auto it = t->objs.find(pre);
  return it != t->objs.end() && it->second.tries > 1;
}

// A DATA or PARITY datagram of `p`'s flow: loss accounting for REPORTs,
// how far we have read its multicast flow (heard), the share's packet rate.
void Replicator::note_flow_rx(Peer& p, bool mcast, uint32_t flow_seq) {
  rate_pkts_++;
  const uint64_t tnow = n_->rx_us;
  Peer::FlowRx& f = p.flows[mcast ? 0 : 1];
  if (!f.seen) {
    f.seen = true;
    f.highest = f.reported = flow_seq;
    f.last_report_us = tnow;
  } else if (flow_seq > f.highest || f.highest - flow_seq > (kMaxFlowSeq >> 1)) {
    f.highest = flow_seq;
  }
  f.received++;
  f.last_data_us = tnow;
  if (rate_since_us_ == 0) rate_since_us_ = tnow;
  if (tnow - rate_since_us_ >= 200000) {
    double pps = static_cast<double>(rate_pkts_) * 1e6 / static_cast<double>(tnow - rate_since_us_);
    data_pps_ = data_pps_ == 0 ? pps : 0.7 * data_pps_ + 0.3 * pps;
    rate_pkts_ = 0;
    rate_since_us_ = tnow;
  }
}

// Writes bytes [b, b + n) of `o` where its data lives: its part file, its
// spill slot or its memory (room made first). False, counted, when they
// could not be kept.
bool Replicator::put_bytes(Transfer& t, Obj& o, uint32_t b, const uint8_t* p, size_t n) {
  auto& c = n_->c;
  if (!o.direct && o.slot < 0 && !o.admitted && !make_room(o) &&
      (!spillable(o) || (o.slot = n_->spill->take()) < 0)) {
    c.reassembly_full++;  // evicted earlier; no room yet
    return false;
  }
  if (o.direct) {
    if (!n_->direct.add(t.part_fd.get(), o.base + b, p, n)) {
      c.reassembly_full++;
      return false;
    }
  } else if (o.slot >= 0) {
    if (!n_->spill->write(o.slot, b, p, n)) {
      c.reassembly_full++;
      return false;
    }
  } else {
    if (o.buf.empty()) o.buf.resize(o.len);
    std::memcpy(o.buf.data() + b, p, n);
  }
  return true;
}

void Replicator::on_data(Peer& p, const Data& d) {
  auto& c = n_->c;
  c.data_pkts_in++;
  const uint64_t tnow = n_->rx_us;
  note_flow_rx(p, d.mcast, d.flow_seq);
  c.data_bytes_in += d.payload.size();
  p.data_pkts++;
  uint64_t pre = prefix64(d.prefix.data());
  Transfer* t = owner_with_obj(pre);
  // A version taking over a stream: the stream's file takes the DATA until
  // the version's part file (the same file) is open.
  if (t == nullptr || (t->stream != 0 && t->part_opening && t->objs.count(pre) == 0)) {
    if (stream_data(p, d, pre)) return;
    if (t == nullptr) {
      c.data_unwanted++;
      return;
    }
  }
  auto oit = t->objs.find(pre);
  if (oit == t->objs.end()) {
    if (t->st != Transfer::St::want_chunks || t->done.count(pre) != 0) {
      c.data_unwanted++;
      return;
    }
    // Room first (the length it claims is checked against the chunk's
    // below): the search is linear, and a full node drops many of these.
    // A version with a part file takes it straight into the file.
    Obj no;
    no.len = d.object_len;
    no.direct = t->part_fd.get() >= 0;
    if (!no.direct && !make_room(no) && (!spillable(no) || (no.slot = n_->spill->take()) < 0)) {
      // Asked for again (by unicast) when it fits.
      c.reassembly_full++;
      if (dropped_.size() >= kMaxHeardWants) dropped_.clear();
      dropped_.insert(pre);
      return;
    }
    const ChunkRef* ref = nullptr;
    for (size_t k = t->next; k < t->todo.size() && ref == nullptr; k++)
      if (prefix64(t->m.chunks[t->todo[k]].hash) == pre) ref = &t->m.chunks[t->todo[k]];
    if (ref == nullptr || ref->len != d.object_len) {
      release(no);
      n_->spill->give(no.slot);
      c.data_unwanted++;
      return;
    }
    no.id = ref->hash;
    if (no.direct) {
      no.base = t->part->first_offset(no.id);
      no.direct = no.base != UINT64_MAX;
      if (!no.direct && !make_room(no)) {
        c.data_unwanted++;
        return;
      }
    }
    no.asked = true;  // its data is flowing: someone asked
    no.sent_us = tnow;
    no.owner = t;
    set_wake(no, no.sent_us + kRetryMs * 1000);  // never left without a timer
    oit = t->objs.emplace(pre, std::move(no)).first;
  }
  Obj& o = oit->second;
  if (o.storing || d.object_len != o.len) {
    c.data_dup++;
    return;
  }
  uint32_t b = d.offset, e = d.offset + static_cast<uint32_t>(d.payload.size());
  if (o.got.covers(b, e)) {
    c.data_dup++;
    return;
  }
  if (!o.parity.empty()) unpark(o, b, e);
  if (!put_bytes(*t, o, b, d.payload.data(), d.payload.size())) return;
  o.got.add(b, e);
  o.last_data = tnow / 1000;
  p.last_data = o.last_data;
  p.data_bytes += d.payload.size();
  if (p.id == t->provider) t->provider_tries = 0;
  if (o.got.covers(0, o.len)) return object_done(*t, pre, &p);
  // A repair by DATA may leave as few cells missing as we hold parity.
  if (!o.parity.empty() && use_parity(*t, pre, o, &p)) return;
  // The sender reached the end of the object and we miss some: ask soon.
  if (e == o.len) {
    o.ended = true;
    set_wake(o, tnow + backoff_us(group_size(), grtt_ms()));
  }
  else if (o.wake_us == 0 || o.wake_us < tnow) set_wake(o, tnow + kRetryMs * 1000);
}

std::vector<uint32_t> missing_cells(const RangeSet& got, uint32_t len, size_t cell) {
  std::vector<uint32_t> out;
  const size_t k = parity_cells(len, cell);
  for (size_t i = 0; i < k; i++) {
    auto [b, e] = cell_span(i, cell, len);
    if (!got.covers(b, e)) out.push_back(static_cast<uint32_t>(i));
  }
  return out;
}

// Where a parity fragment for `o` may be parked: the last of its `missing`
// cells that is whole (a short last cell cannot take a fragment) and holds
// no fragment yet; the NACKs ask for the others first (want_for). -1: none.
static int64_t park_spot(const Obj& o, const std::vector<uint32_t>& missing, size_t cell) {
  for (auto i = missing.rbegin(); i != missing.rend(); ++i) {
    auto [b, e] = cell_span(*i, cell, o.len);
    if (e - b != cell) continue;
    if (std::none_of(o.parity.begin(), o.parity.end(),
                     [&](const ParityBuf& h) { return h.parked() && h.cell() == *i; }))
      return *i;
  }
  return -1;
}

// A parity fragment of an object we are fetching (PROTOCOL.md 8.2): held
// until we hold as many as the object has missing cells, then those cells
// are rebuilt and written like DATA. It waits parked in one of those cells
// (written where the object's bytes go), in memory only if none is free.
void Replicator::on_parity(Peer& p, const Parity& pp) {
  auto& c = n_->c;
  c.parity_pkts_in++;
  const uint64_t tnow = n_->rx_us;
  note_flow_rx(p, pp.mcast, pp.flow_seq);
  uint64_t pre = prefix64(pp.prefix.data());
  Transfer* t = owner_with_obj(pre);
  auto oit = t != nullptr ? t->objs.find(pre) : decltype(t->objs.end()){};
  if (t == nullptr || oit == t->objs.end() || oit->second.storing || oit->second.len != pp.object_len ||
      oit->second.got.empty()) {
    c.parity_unused++;  // nothing of it here to rebuild from (a whole lost object is asked for whole)
    return;
  }
  Obj& o = oit->second;
  if (o.parity_cell != pp.cell) {
    o.parity.clear();
    o.parity_cell = pp.cell;
  }
  std::vector<uint32_t> missing = missing_cells(o.got, o.len, pp.cell);
  bool dup = std::any_of(o.parity.begin(), o.parity.end(),
                         [&](const ParityBuf& h) { return h.index() == pp.index; });
  if (dup || missing.empty() || missing.size() > kMaxParityHeld) {
    c.parity_unused++;
    return;
  }
  if (int64_t spot = park_spot(o, missing, pp.cell);
      spot >= 0 && pp.payload.size() == pp.cell &&
      put_bytes(*t, o, static_cast<uint32_t>(spot) * pp.cell, pp.payload.data(), pp.cell)) {
    o.parity.emplace_back(pp.index, static_cast<uint32_t>(spot));
  } else if (*parity_held_ + pp.cell <= kMaxParityBytes) {
    o.parity.emplace_back(pp.index, pp.payload, parity_held_);
  } else {
    c.parity_unused++;
    c.parity_dropped++;  // NACKed again
    return;
  }
  o.last_data = tnow / 1000;
  p.last_data = o.last_data;
  if (o.parity.size() < missing.size()) {
    // More are on their way (a round sends as many as an asker lacks), or
    // we NACK again for what this one does not cover.
    o.ended = true;
    set_wake(o, tnow + backoff_us(group_size(), grtt_ms()));
    return;
  }
  if (p.id == t->provider) t->provider_tries = 0;
  use_parity(*t, pre, o, &p);
}

// DATA for bytes [b, e) of `o` overwrites the fragments parked in the cells
// it touches: they are given up (counted unused).
void Replicator::unpark(Obj& o, uint32_t b, uint32_t e) {
  n_->c.parity_unused += std::erase_if(o.parity, [&](const ParityBuf& h) {
    if (!h.parked()) return false;
    auto [cb, ce] = cell_span(h.cell(), o.parity_cell, o.len);
    return cb < e && b < ce;
  });
}

// Once `o` holds as many parity fragments as it has missing cells, rebuilds
// them and completes it. True when it did: `o` is then being stored, or was
// fetched again. A part-file object is rebuilt by the worker, which reads it
// back for its check anyway; others here, in place.
bool Replicator::use_parity(Transfer& t, uint64_t pre, Obj& o, Peer* from) {
  if (o.parity.empty()) return false;
  std::vector<uint32_t> missing = missing_cells(o.got, o.len, o.parity_cell);
  if (o.parity.size() < missing.size() || missing.empty()) return false;
  auto rep = std::make_shared<CellRepair>();
  rep->cell = o.parity_cell;
  for (auto& h : o.parity) rep->par.push_back(std::move(h));
  rep->missing = std::move(missing);
  o.parity.clear();
  if (!o.direct && !rebuild_here(t, o, *rep)) {
    n_->c.parity_unused += rep->par.size();
    return false;
  }
  n_->c.parity_objects++;
  n_->c.parity_cells += rep->missing.size();
  for (uint32_t i : rep->missing) {  // rebuilt (by the worker, for a part file, before its check)
    auto [b, e] = cell_span(i, rep->cell, o.len);
    o.got.add(b, e);
  }
  if (o.direct) {
    o.rebuild = std::move(rep);
    direct_done(t, pre, from);
  } else {
    object_done(t, pre, from);
  }
  return true;
}

// Cell j of an object of `len` bytes held in `base` (k * cell bytes
// readable, or exactly len with the last cell in `last`).
static std::vector<uint8_t*> cell_ptrs(uint8_t* base, uint32_t len, size_t cell, uint8_t* last) {
  const size_t k = parity_cells(len, cell);
  std::vector<uint8_t*> c(k);
  for (size_t j = 0; j < k; j++) c[j] = base + j * cell;
  if (last != nullptr) {
    const size_t tail = len - (k - 1) * cell;
    std::memcpy(last, c[k - 1], tail);
    std::memset(last + tail, 0, cell - tail);
    c[k - 1] = last;
  }
  return c;
}

// Rebuilds `rep`'s cells of an object held in memory (in place) or in a
// spill slot (read, rebuilt, written back).
bool Replicator::rebuild_here(Transfer& t, Obj& o, const CellRepair& rep) {
  const size_t cell = rep.cell, k = parity_cells(o.len, cell);
  if (o.slot < 0) {
    if (o.buf.size() != o.len) return false;
    Bytes last(cell);
    auto cells = cell_ptrs(o.buf.data(), o.len, cell, last.data());
    if (!rep.rebuild(cells.data(), k)) return false;
    std::memcpy(o.buf.data() + (k - 1) * cell, last.data(), o.len - (k - 1) * cell);
    return true;
  }
  Bytes img(k * cell);
  std::memset(img.data() + o.len, 0, img.size() - o.len);
  if (!pread_all(n_->spill->fd(), img.data(), o.len, Spill::offset(o.slot)).ok()) return false;
  auto cells = cell_ptrs(img.data(), static_cast<uint32_t>(img.size()), cell, nullptr);
  if (!rep.rebuild(cells.data(), k)) return false;
  for (uint32_t i : rep.missing) {
    auto [b, e] = cell_span(i, cell, o.len);
    if (!put_bytes(t, o, b, img.data() + b, e - b)) return false;
  }
  return true;
}

// Worker: reads chunk `id` (len bytes) back from the part file into buf
// (room for its cells, padded), rebuilds `rep`'s cells, writes them there
// and checks the chunk.
static bool rebuild_in_part(PartFile& part, const Hash& id, uint8_t* buf, uint32_t len, const CellRepair& rep) {
  const size_t cell = rep.cell, k = parity_cells(len, cell);
  if (!part.read_first(id, buf, len)) return false;
  std::memset(buf + len, 0, k * cell - len);
  auto cells = cell_ptrs(buf, static_cast<uint32_t>(k * cell), cell, nullptr);
  if (!rep.rebuild(cells.data(), k)) return false;
  for (uint32_t i : rep.missing) {
    auto [b, e] = cell_span(i, cell, len);
    if (!part.write_first(id, buf + b, e - b, b)) return false;
  }
  return part.check_buffer(id, buf, len);
}

// Worker: a verified chunk goes to the temp files of the versions waiting
// for it, and into the store only if one of them has none (`all` false) or
// its file could not take it: the store keeps no second copy of a large
// file's data.
bool keep_chunk(Store& s, const Hash& id, const uint8_t* p, size_t len,
                const std::vector<std::shared_ptr<PartFile>>& parts, bool all) {
  bool in_parts = all;
  for (const auto& part : parts) in_parts = part->put(id, p, len) && in_parts;
  if (in_parts) return true;
  auto r = s.put_chunk(id, p, len);
  if (!r) LOG_ERROR("store: cannot store a received chunk: %s", r.error().msg.c_str());
  return r.ok();
}

void Replicator::object_done(Transfer& t, uint64_t pre, Peer* from) {
  Obj& o = t.objs.at(pre);
  if (o.slot >= 0) return spilled_done(t, pre, from);
  if (o.direct) return direct_done(t, pre, from);
  Hash got = sha256(o.buf.data(), o.buf.size());
  if (got != o.id) {
    n_->c.objects_bad++;
    if (from != nullptr) from->bad_objects++;
    LOG_WARN("share %s: object %s from %s failed its hash; fetching it again", cfg_.name.c_str(),
             hash_hex(o.id).substr(0, 16).c_str(), from ? log_escape(from->name).c_str() : "?");
    fetch_again(o);
    if (from != nullptr && from->id == t.provider) pick_provider(t);
    return;
  }
  if (o.manifest) {
    n_->c.objects_ok++;
    return manifest_done(t, o);
  }
  o.storing = true;
  auto data = std::make_shared<Bytes>(std::move(o.buf));
  o.buf.clear();
  Hash id = o.id;
  uint64_t tkey = t.key;
  uint32_t len = o.len;
  bool all = false;
  std::vector<std::shared_ptr<PartFile>> parts = parts_wanting(pre, &all);
  bool queued = n_->worker->post([this, data, id, tkey, pre, len, all, parts = std::move(parts)](Store& s) -> std::function<void()> {
    bool ok = keep_chunk(s, id, data->data(), data->size(), parts, all);
    return [this, tkey, pre, ok, len] { chunk_stored(tkey, pre, ok, len); };
  });
  if (!queued) {  // its bytes go back where they were, for the next try
    o.buf = std::move(*data);
    return wait_check(t, pre, o, from);
  }
  n_->c.objects_ok++;
}

// The temp files of the versions waiting for a chunk; *all: every one of
// those versions has one (so the store need not keep the chunk).
std::vector<std::shared_ptr<PartFile>> Replicator::parts_wanting(uint64_t pre, bool* all) {
  std::vector<std::shared_ptr<PartFile>> parts;
  *all = true;
  if (auto ow = owners_.find(pre); ow != owners_.end()) {
    for (uint64_t k : ow->second) {
      Transfer* w = transfer(k);
      if (w == nullptr) continue;
      if (w->part) parts.push_back(w->part);
      else *all = false;
    }
  }
  *all = *all && !parts.empty();
  return parts;
}

// A spilled object is complete: the worker reads it back, verifies and
// stores it; its slot stays taken until then.
void Replicator::spilled_done(Transfer& t, uint64_t pre, Peer* from) {
  Obj& o = t.objs.at(pre);
  o.storing = true;
  int fd = n_->spill->fd(), slot = o.slot;
  Hash id = o.id;
  uint64_t tkey = t.key, from_id = from != nullptr ? from->id : 0;
  uint32_t len = o.len;
  bool all = false;
  auto parts = parts_wanting(pre, &all);
  bool queued = n_->worker->post([=, this, parts = std::move(parts)](Store& s) -> std::function<void()> {
    Bytes buf(len);  // pread fills it: no zero-fill
    bool good = pread_all(fd, buf.data(), len, Spill::offset(slot)).ok() && sha256(buf.data(), len) == id;
    bool stored = good && keep_chunk(s, id, buf.data(), len, parts, all);
    return [=, this] { spilled_checked(tkey, pre, slot, good, stored, len, from_id); };
  });
  if (!queued) wait_check(t, pre, o, from);  // its bytes stay in the slot
}

// An object written straight into the part file is complete: the worker
// reads it back from there and checks it, then it goes wherever else it is
// wanted, like any verified chunk.
void Replicator::direct_done(Transfer& t, uint64_t pre, Peer* from) {
  Obj& o = t.objs.at(pre);
  if (!n_->direct.flush()) return direct_lost(t);
  o.storing = true;
  Hash id = o.id;
  uint64_t tkey = t.key, from_id = from != nullptr ? from->id : 0;
  uint32_t len = o.len;
  std::shared_ptr<PartFile> part = t.part;
  const bool checked = o.stream_checked;
  const uint64_t off = o.base;
  std::shared_ptr<const CellRepair> rep = o.rebuild;
  bool all = false;
  auto parts = parts_wanting(pre, &all);
  bool queued = n_->worker->post([=, this, parts = std::move(parts)](Store& s) -> std::function<void()> {
    Bytes buf(rep ? parity_cells(len, rep->cell) * rep->cell : len);  // pread fills it: no zero-fill
    bool good = rep ? rebuild_in_part(*part, id, buf.data(), len, *rep)
                    : (checked && part->keep_stream_checked(id, off, buf.data(), len)) ||
                          part->check_written(id, buf.data(), len);
    bool usable = part->usable();
    bool stored = good && keep_chunk(s, id, buf.data(), len, parts, all);
    return [=, this] { direct_checked(tkey, pre, good, usable, stored, len, from_id); };
  });
  if (!queued) return wait_check(t, pre, o, from);  // its bytes stay in the file
  o.rebuild.reset();
}

void Replicator::wait_check(Transfer& t, uint64_t pre, Obj& o, Peer* from) {
  n_->c.worker_full++;
  o.storing = true;  // complete: takes no DATA, asks for nothing
  o.check_waiting = true;
  checks_waiting_.push_back({t.key, pre, from != nullptr ? from->id : 0});
  arm_tick(2000);
}

// Objects that found the worker's queue full try again, oldest first, while
// it takes them.
void Replicator::retry_checks() {
  for (size_t n = checks_waiting_.size(); n > 0 && !checks_waiting_.empty(); n--) {
    if (n_->worker->posts_waiting() >= Ingester::kMaxPosts) return;
    CheckWaiting w = checks_waiting_.front();
    checks_waiting_.pop_front();
    Transfer* t = transfer(w.tkey);
    if (t == nullptr) continue;
    auto it = t->objs.find(w.prefix);
    if (it == t->objs.end() || !it->second.check_waiting) continue;
    it->second.check_waiting = false;
    it->second.storing = false;
    auto p = peers_.find(w.from);
    object_done(*t, w.prefix, p != peers_.end() ? &p->second : nullptr);
  }
}

void Replicator::direct_checked(uint64_t tkey, uint64_t pre, bool good, bool usable, bool stored,
                                uint32_t len, uint64_t from) {
  Transfer* t = transfer(tkey);
  if (good) {
    n_->c.objects_ok++;
    return chunk_stored(tkey, pre, stored, len);
  }
  if (t != nullptr && !usable) return direct_lost(*t);  // the part file failed: memory from now on
  Obj* o = nullptr;
  if (t != nullptr)
    if (auto it = t->objs.find(pre); it != t->objs.end()) o = &it->second;
  refetch_bad(t, o, pre, from);
}

// A chunk assembled off the loop (spill slot, part file) failed its hash:
// counted against the peer that sent it, and fetched again.
void Replicator::refetch_bad(Transfer* t, Obj* o, uint64_t pre, uint64_t from) {
  n_->c.objects_bad++;
  auto pit = peers_.find(from);
  if (pit != peers_.end()) pit->second.bad_objects++;
  LOG_WARN("share %s: object %016llx from %s failed its hash; fetching it again", cfg_.name.c_str(),
           static_cast<unsigned long long>(pre), pit != peers_.end() ? log_escape(pit->second.name).c_str() : "?");
  if (o == nullptr) return;
  fetch_again(*o);
  if (pit != peers_.end() && from == t->provider) pick_provider(*t);
}

// Direct writes into the part file failed: what they held is fetched again
// into memory.
void Replicator::direct_lost(Transfer& t) {
  t.part_fd.reset();
  for (auto& [pre, o] : t.objs) {
    if (!o.direct || o.storing) continue;
    o.direct = false;
    fetch_again(o);
  }
}

void Replicator::spilled_checked(uint64_t tkey, uint64_t pre, int slot, bool good, bool stored,
                                 uint32_t len, uint64_t from) {
  n_->spill->give(slot);
  Transfer* t = transfer(tkey);
  Obj* o = nullptr;
  if (t != nullptr) {
    auto it = t->objs.find(pre);
    if (it != t->objs.end() && it->second.slot == slot) o = &it->second;
  }
  if (o != nullptr) o->slot = -1;
  if (good) {
    n_->c.objects_ok++;
    return chunk_stored(tkey, pre, stored, len);
  }
  refetch_bad(t, o, pre, from);
}

void Replicator::chunk_stored(uint64_t tkey, uint64_t pre, bool ok, uint32_t len) {
  if (!ok) {
    Transfer* t = transfer(tkey);
    if (t == nullptr) return;
    auto it = t->objs.find(pre);
    if (it == t->objs.end()) return;
    fetch_again(it->second, kPublishRetryMs);
    return;
  }
  // Every version that needs this chunk has it now.
  auto ow = owners_.find(pre);
  if (ow == owners_.end()) return;
  std::vector<uint64_t> keys = ow->second;
  for (uint64_t k : keys) {
    Transfer* t = transfer(k);
    if (t == nullptr || t->st != Transfer::St::want_chunks || t->done.count(pre) != 0) continue;
    auto it = t->objs.find(pre);
    if (it != t->objs.end()) {
      release(it->second);
      t->objs.erase(it);
    }
    t->done.insert(pre);
    t->stored++;
    t->bytes_done += len;
    if (t->stored == t->todo.size()) publish(*t);
  }
  arm_tick(0);
}

void Replicator::own(uint64_t pre, uint64_t key) {
  auto& v = owners_[pre];
  if (std::find(v.begin(), v.end(), key) == v.end()) v.push_back(key);
}

void Replicator::disown(uint64_t pre, uint64_t key) {
  auto it = owners_.find(pre);
  if (it == owners_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), key), v.end());
  if (v.empty()) owners_.erase(it);
}

// The transfer that should take data for `pre`: one with the object in
// flight, else the first that still lacks it.
Transfer* Replicator::owner_with_obj(uint64_t pre) {
  auto it = owners_.find(pre);
  if (it == owners_.end()) return nullptr;
  Transfer* fallback = nullptr;
  for (uint64_t k : it->second) {
    Transfer* t = transfer(k);
    if (t == nullptr) continue;
    if (t->objs.count(pre) != 0) return t;
    if (fallback == nullptr && t->done.count(pre) == 0) fallback = t;
  }
  return fallback;
}

void Replicator::manifest_done(Transfer& t, Obj& o) {
  std::string enc(reinterpret_cast<const char*>(o.buf.data()), o.buf.size());
  forget_objects(t);  // frees o (and its reassembly budget)
  auto m = decode_manifest(enc);
  if (!m) {
    n_->c.paths_refused++;
    LOG_WARN("share %s: refusing version %s: %s", cfg_.name.c_str(),
             hash_hex(t.mid).substr(0, 16).c_str(), log_escape(m.error().msg).c_str());
    return finish(t, "refused");
  }
  t.m = std::move(m.value());
  t.enc = std::move(enc);
  plan_version(t);
}

// Decides what a new version means here: a new file, an update, an old
// version, or a conflict (both sides changed): the later mtime wins, ties by
// origin name, and the loser is kept beside it.
void Replicator::plan_version(Transfer& t) {
  const Manifest& m = t.m;
  t.rel = m.path;
  drop_superseded(m.path, m.parent);
  auto cur = n_->reader->get_file(cfg_.name, m.path);
  if (m.flags & kManifestDeleted) return apply_deletion(t, cur ? *cur : std::nullopt);
  if (cur && cur->has_value() && (**cur).state == "stored") {
    const FileRecord& f = **cur;
    if (f.manifest == t.mid) return finish(t, "already here");
    std::string lenc;
    Manifest local;
    bool have_local = n_->reader->get_manifest(f.manifest, &lenc).ok();
    if (have_local) {
      auto lm = decode_manifest(lenc);
      if (lm) local = std::move(lm.value());
    }
    if (have_local && local.parent == t.mid) return finish(t, "older than ours");
    if (m.parent != f.manifest) {
      bool remote_wins = std::tie(m.mtime_ns, m.origin) > std::tie(local.mtime_ns, local.origin);
      if (local.chunks == m.chunks && local.mtime_ns == m.mtime_ns) return finish(t, "same content");
      if (remote_wins) {
        t.aside = conflict_name(m.path, local.origin, local.mtime_ns);
      } else {
        t.rel = conflict_name(m.path, m.origin, m.mtime_ns);
      }
      LOG_WARN("share %s: concurrent changes to %s; keeping %s as %s", cfg_.name.c_str(),
               log_escape(m.path).c_str(), remote_wins ? "ours" : "theirs",
               log_escape(remote_wins ? t.aside : t.rel).c_str());
    }
  }
  // A conflict keeps both versions: one file more, like a new path.
  bool here = cur && cur->has_value() && (**cur).state == "stored";
  if (refuse_by_limits(t, !here || !t.aside.empty() || t.rel != m.path)) return;
  std::unordered_set<Hash, HashHasher> seen;
  for (uint32_t i = 0; i < m.chunks.size(); i++) {
    const Hash& h = m.chunks[i].hash;
    if (!seen.insert(h).second) continue;
    auto has = n_->reader->has_chunk(h);
    if (has && *has && t.lost.count(h) == 0) continue;
    t.todo.push_back(i);
  }
  uint64_t have_bytes = m.size;
  for (uint32_t i : t.todo) have_bytes -= std::min<uint64_t>(have_bytes, m.chunks[i].len);
  t.bytes_done = have_bytes;
  // A file that cannot fit is not started: it waits (visible in `transfers`).
  struct statvfs vfs {};
  if (::statvfs(cfg_.path.c_str(), &vfs) == 0) {
    // A part file an earlier run left holds its space already.
    uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (!t.part && m.size >= kHeldInFileMin) avail += part_file_bytes(cfg_.path, t.rel, t.mid);
    uint64_t need = m.size - std::min(m.size, t.bytes_done);
    if (!room_for(need, avail)) {
      t.error = "not enough free space: " + std::to_string(need) + " bytes needed, " +
                std::to_string(avail) + " free";
      if (t.resume_at == 0)
        LOG_WARN("share %s: %s waits: %s", cfg_.name.c_str(), log_escape(t.rel).c_str(), t.error.c_str());
      t.todo.clear();
      t.st = Transfer::St::paused;
      t.replan = true;
      t.resume_at = now_ms() + kPublishRetryMs;
      return;
    }
  }
  t.error.clear();
  t.st = Transfer::St::want_chunks;
  // Data for any chunk we lack is taken, even before we ask for it: other
  // boxes' requests fill our store too (that is the point of multicast).
  for (uint32_t i : t.todo) own(prefix64(m.chunks[i].hash), t.key);
  LOG_INFO("share %s: fetching %s (%llu bytes, %zu of %zu chunks needed)", cfg_.name.c_str(),
           log_escape(t.rel).c_str(), static_cast<unsigned long long>(m.size), t.todo.size(),
           m.chunks.size());
  if (t.todo.empty()) return publish(t);
  open_part(t);
  arm_tick(0);
}

// Starts the temp file of a large version on the worker, ahead of any of
// its chunks (the worker runs posts in order). If it cannot be opened, the
// publish assembles the file from the store as for small versions.
void Replicator::open_part(Transfer& t) {
  if (t.part && t.part->rel() != t.rel) drop_part(t, true);  // planned again under another name
  if (t.part || t.m.size < kHeldInFileMin || parts_ >= kMaxParts) return;
  auto part = std::make_shared<PartFile>(cfg_.path, t.rel, t.m, t.mid, n_->flusher);
  std::string share = cfg_.name;
  uint64_t tkey = t.key;
  // A stream of this file becomes the part file, if there is one: its file
  // is renamed to the part's name, and the chunks checked there are kept
  // without being read again. Until the part file is open, the stream goes
  // on taking the DATA (carry_stream then hands over the rest).
  // (The stream's checks queued before this job are done when it runs.)
  InStream* in = stream_of(t);
  std::shared_ptr<StreamFile> stream;
  if (in != nullptr) {
    n_->direct.flush();
    stream = in->file;
  }
  bool queued = n_->worker->post([this, part, share, tkey, stream, mid = t.mid](Store& s) -> std::function<void()> {
    if (stream) (void)stream->hand_over(*part, mid);
    if (auto st = part->open(s); !st)
      LOG_DEBUG("share %s: %s is assembled at the end: %s", share.c_str(), log_escape(part->rel()).c_str(),
                log_escape(st.error().msg).c_str());
    int fd = part->dup_fd();
    return [this, part, tkey, fd, held = part->resumed()] { part_opened(tkey, part, Fd(fd), held); };
  });
  if (!queued) return;
  if (in != nullptr) {
    in->adopted_by = t.key;
    t.stream = in->key;
    n_->c.streams_adopted++;
  }
  t.part = std::move(part);
  t.part_opening = true;
  parts_++;
}

// What the temp file held already (left by an earlier run) is not fetched.
void Replicator::part_opened(uint64_t tkey, const std::shared_ptr<PartFile>& part, Fd fd,
                             const std::vector<uint32_t>& held) {
  Transfer* t = transfer(tkey);
  if (t == nullptr || t->part != part) return;
  t->part_opening = false;
  t->part_fd = std::move(fd);
  arm_tick(0);
  if (held.empty() || t->st != Transfer::St::want_chunks) return carry_stream(*t);
  std::unordered_set<uint64_t> have;
  for (uint32_t i : held) have.insert(prefix64(t->m.chunks[i].hash));
  uint64_t bytes = 0;
  size_t n = 0;
  for (uint32_t i : t->todo) {
    uint64_t pre = prefix64(t->m.chunks[i].hash);
    if (have.count(pre) == 0 || !t->done.insert(pre).second) continue;
    if (auto it = t->objs.find(pre); it != t->objs.end()) {
      if (it->second.storing) {  // its result counts it
        t->done.erase(pre);
        continue;
      }
      release(it->second);
      n_->spill->give(it->second.slot);
      t->objs.erase(it);
    }
    t->stored++;
    n++;
    bytes += t->m.chunks[i].len;
  }
  t->bytes_done += bytes;
  if (t->stream == 0)
    LOG_INFO("share %s: resuming %s: %zu chunks (%llu bytes) were here already", cfg_.name.c_str(),
             log_escape(t->rel).c_str(), n, static_cast<unsigned long long>(bytes));
  if (t->stored == t->todo.size()) return publish(*t);
  carry_stream(*t);
}

void Replicator::drop_part(Transfer& t, bool discard) {
  if (!t.part) return;
  if (discard) t.part->discard();
  n_->direct.flush();  // nothing pending for a descriptor about to close
  t.part_fd.reset();
  t.part.reset();  // the file goes when the worker's last use of it ends
  t.part_opening = false;
  parts_--;
}

// A tombstone deletes the local file only if it is the very version that
// was deleted: a change made meanwhile wins over a deletion.
void Replicator::apply_deletion(Transfer& t, const std::optional<FileRecord>& cur) {
  if (!cur || cur->state != "stored" || cur->manifest != t.m.parent)
    return finish(t, "deletion does not apply here");
  t.st = Transfer::St::publishing;
  auto enc = std::make_shared<std::string>(t.enc);
  std::string share = cfg_.name, root = cfg_.path, rel = t.m.path;
  Hash id = t.mid;
  int64_t mtime = t.m.mtime_ns;
  uint64_t key = t.key;
  bool queued = n_->worker->post([=, this](Store& s) -> std::function<void()> {
    Status st = unpublish_file(root, rel);
    if (st) {
      FileRecord rec;
      rec.share = share;
      rec.path = rel;
      rec.manifest = id;
      rec.mtime_ns = mtime;
      rec.state = "deleted";
      st = s.commit_file(rec, *enc, {}, kManifestDeleted);
    }
    Error err = st ? Error{Errc::ok, ""} : st.error();
    return [this, key, err, rel] {
      Transfer* tt = transfer(key);
      if (tt == nullptr) return;
      if (err.code != Errc::ok)
        LOG_ERROR("share %s: cannot delete %s: %s", cfg_.name.c_str(), log_escape(rel).c_str(),
                  log_escape(err.msg).c_str());
      else
        LOG_INFO("share %s: deleted %s (deleted on %s)", cfg_.name.c_str(), log_escape(rel).c_str(),
                 log_escape(tt->m.origin).c_str());
      finish(*tt, "deleted");
    };
  });
  if (!queued) {
    t.st = Transfer::St::paused;
    t.replan = true;
    t.resume_at = now_ms() + 100;
  }
}

void Replicator::publish(Transfer& t) {
  t.st = Transfer::St::publishing;
  auto req = std::make_shared<PublishRequest>();
  req->share = cfg_.name;
  req->root = cfg_.path;
  req->rel = t.rel;
  req->manifest = t.m;
  req->encoded = t.enc;
  req->move_aside_rel = t.aside;
  req->part = t.part;
  uint64_t key = t.key;
  bool queued = n_->worker->post([this, req, key](Store& s) -> std::function<void()> {
    auto r = publish_file(s, *req);
    Error err = r ? Error{Errc::ok, ""} : r.error();
    return [this, key, err, req] {
      Transfer* tt = transfer(key);
      if (tt == nullptr) return;
      if (err.code == Errc::ok) {
        std::string path = tt->m.path;
        Hash parent = tt->m.parent;
        finish(*tt, "published");
        return drop_superseded(path, parent);
      }
      tt->error = err.msg;
      if (!req->lost.empty()) {  // held in a file that changed: fetch those again
        LOG_WARN("share %s: %s: %s", cfg_.name.c_str(), log_escape(tt->rel).c_str(), log_escape(err.msg).c_str());
        tt->lost.insert(req->lost.begin(), req->lost.end());
        forget_objects(*tt);
        drop_part(*tt, false);  // planned again, the file is reopened: what it holds is kept
        tt->todo.clear();
        tt->done.clear();
        tt->next = tt->stored = 0;
        tt->st = Transfer::St::paused;
        tt->replan = true;
        tt->resume_at = now_ms() + 100;
        return;
      }
      LOG_ERROR("share %s: cannot write %s: %s%s", cfg_.name.c_str(), log_escape(tt->rel).c_str(),
                log_escape(err.msg).c_str(), err.code == Errc::no_space ? " (paused; retrying)" : "");
      if (err.code == Errc::invalid) {
        n_->c.paths_refused++;
        return finish(*tt, "refused");
      }
      tt->st = Transfer::St::paused;
      tt->resume_at = now_ms() + kPublishRetryMs;
    };
  });
  if (!queued) {
    t.st = Transfer::St::paused;
    t.resume_at = now_ms() + 100;
  }
}

// Counts `o` against the reassembly memory if it fits (anything fits an
// empty node: a manifest may be larger than the whole budget).
bool Replicator::admit(Obj& o) {
  if (o.admitted) return true;
  if (n_->inflight_bytes > 0 && n_->inflight_bytes + o.len > kMaxInflightBytes) return false;
  n_->inflight_bytes += o.len;
  o.admitted = true;
  return true;
}

// admit(), or failing that after evicting partial objects that went stale.
bool Replicator::make_room(Obj& o) {
  return admit(o) || (evict_stale_partial(now_ms()) && admit(o));
}

void Replicator::release(Obj& o) {
  if (!o.admitted) return;
  n_->inflight_bytes -= o.len;
  o.admitted = false;
}

void Replicator::forget_objects(Transfer& t) {
  for (auto& [pre, o] : t.objs) {
    release(o);
    // A stored one's slot comes back with its result; a waiting one has none.
    if (!o.storing || o.check_waiting) n_->spill->give(o.slot);
    disown(pre, t.key);
  }
  t.objs.clear();
  for (uint32_t i : t.todo) disown(prefix64(t.m.chunks[i].hash), t.key);
}

// Versions of `path` that a newer one replaces (its parent, and theirs)
// are no longer fetched: nobody may hold their data any more (large files
// are kept only as files), and their objects would hold reassembly memory
// the newer one needs. run_transfers() finishes them.
void Replicator::drop_superseded(const std::string& path, const Hash& parent) {
  std::unordered_set<Hash, HashHasher> older{parent};
  for (bool more = true; more;) {
    more = false;
    for (auto& [k, o] : transfers_) {
      if (o.superseded || o.st == Transfer::St::want_manifest || o.st == Transfer::St::publishing ||
          o.m.path != path || older.count(o.mid) == 0)
        continue;
      older.insert(o.m.parent);
      o.superseded = true;
      more = true;
    }
  }
  arm_tick(0);
}

void Replicator::finish(Transfer& t, const std::string& why) {
  if (t.adds_file) {
    adding_--;
    if (why == "published") files_++;
  }
  forget_objects(t);
  drop_part(t, true);
  settled_.insert(t.mid);
  transfer_of_.erase(t.mid);
  if (why == "published") {
    // Our catalog grew: say so soon (jittered, so a group does not answer at once).
    schedule_announce(100 + static_cast<uint64_t>(urand() * 900));
    uint64_t ms = now_ms() - t.started;
    LOG_INFO("share %s: received %s (%llu bytes in %llu ms)", cfg_.name.c_str(),
             log_escape(t.rel).c_str(), static_cast<unsigned long long>(t.m.size),
             static_cast<unsigned long long>(ms));
  } else {
    LOG_DEBUG("share %s: version %s: %s", cfg_.name.c_str(), hash_hex(t.mid).substr(0, 16).c_str(),
              why.c_str());
  }
  transfers_.erase(t.key);
}

// --- sender --------------------------------------------------------------------

// kCrossedMaxMs bounds the wait of a whole object lost at the end of a
// pass, and of a request whose flow seq is from before a rekey.
// Whether an asker that has read our multicast flow up to `heard` has still
// to read the datagram with flow seq `seq` (the seq wraps at 31 bits).
static bool unread(uint32_t seq, uint32_t heard) {
  uint32_t behind = (seq - heard) & kMaxFlowSeq;  // 0: it read this one (or lost it)
  return behind != 0 && behind < (kMaxFlowSeq >> 1);
}

bool want_crossed(const Want& w, uint64_t sent_ms, uint32_t last_seq, uint64_t now_ms) {
  uint64_t age = now_ms - sent_ms;
  if ((w.heard & kHeardValid) == 0) return age < kCrossedWantMs;
  return age < kCrossedMaxMs && unread(last_seq, w.heard);
}

uint64_t drop_crossed_repairs(RangeSet& ask, const std::vector<RepairSent>& sent, uint32_t heard,
                              uint64_t now_ms) {
  if ((heard & kHeardValid) == 0) return 0;
  const uint64_t before = ask.bytes();
  for (const RepairSent& r : sent)
    if (now_ms - r.ms < kCrossedMaxMs && unread(r.seq, heard)) ask.remove(r.begin, r.end);
  return before - ask.bytes();
}

size_t unread_parity(const std::vector<RepairSent>& sent, uint32_t heard, uint64_t now_ms) {
  if ((heard & kHeardValid) == 0) return 0;
  size_t n = 0;
  for (const RepairSent& r : sent)
    if (r.parity && now_ms - r.ms < kCrossedMaxMs && unread(r.seq, heard)) n++;
  return n;
}

size_t cells_touched(const RangeSet& ask, size_t cell) {
  size_t n = 0;
  uint64_t last = UINT64_MAX;  // the last cell counted (ranges are sorted)
  for (const auto& [b, e] : ask.ranges()) {
    if (e <= b) continue;
    uint64_t first = b / cell, end = (e - 1) / cell;
    if (first == last) first++;
    if (end >= first) n += end - first + 1;
    last = end;
  }
  return n;
}

void Replicator::note_repair(uint64_t pre, uint32_t b, uint32_t e, uint32_t seq, uint64_t ms, bool parity) {
  if (repairs_sent_.size() >= kMaxHeardWants && repairs_sent_.count(pre) == 0) {
    std::erase_if(repairs_sent_, [ms](const auto& kv) { return ms - kv.second.back().ms >= kCrossedMaxMs; });
    if (repairs_sent_.size() >= kMaxHeardWants) repairs_sent_.clear();
  }
  auto& v = repairs_sent_[pre];
  auto old = std::find_if(v.begin(), v.end(), [ms](const RepairSent& r) { return ms - r.ms < kCrossedMaxMs; });
  v.erase(v.begin(), old);
  if (v.size() >= kMaxRepairsKept) v.erase(v.begin());
  v.push_back({b, e, seq, ms, parity});
}

void Replicator::on_want(Peer& p, const Want& w, const sockaddr_in& src, bool mcast) {
  n_->c.want_in++;
  if (w.target == self_) serve(p, w, src, mcast);
  else overheard(p, w);
}

// Someone else's request: hold our own for the same object (NACK suppression).
void Replicator::overheard(const Peer& asker, const Want& w) {
  uint64_t pre = prefix64(w.id);
  if (heard_want_.size() >= kMaxHeardWants) heard_want_.clear();
  heard_want_[pre] = now_ms();
  Transfer* t = owner_with_obj(pre);
  if (t == nullptr) return;
  auto oit = t->objs.find(pre);
  if (oit == t->objs.end() || oit->second.storing) return;
  Obj& o = oit->second;
  bool covers = w.ranges.empty();
  if (!covers) {
    RangeSet asked;
    for (const Range& r : w.ranges) asked.add(r.start, r.start + r.len);
    covers = true;
    for (auto& [b, e] : o.got.gaps(0, o.len, 64)) covers = covers && asked.covers(b, e);
    // A provider answers a NACK to the group with as many parity fragments
    // as its asker lacks cells (answer_by_parity), whichever cells they
    // are: they repair ours too if we lack no more cells than that.
    auto tp = peers_.find(w.target);
    const size_t cell = max_data_payload(n_->opt.mtu);
    if (!covers && (asker.caps & kCapParity) && tp != peers_.end() && (tp->second.caps & kCapParity) &&
        (w.flags & (kWantManifest | kWantMore)) == 0 && parity_indexes(parity_cells(o.len, cell)) > 0 &&
        !o.got.empty())
      covers = missing_cells(o.got, o.len, cell).size() <= std::min(cells_touched(asked, cell), kMaxParityAnswer);
  }
  if (covers && !o.asked) {
    o.asked = true;
    o.sent_us = now_us();
    n_->c.want_suppressed++;
  }
  if (covers && o.wake_us != 0 && o.wake_us <= now_us() + kRetryMs * 1000) {
    set_wake(o, now_us() + kRetryMs * 1000);
    n_->c.want_suppressed++;
  }
}

// A request for us. Only what we hold (verified when stored) is served.
void Replicator::serve(Peer& p, const Want& w, const sockaddr_in& src, bool mcast) {
  uint64_t pre = prefix64(w.id);
  bool to_group = mcast && use_mcast();
  sockaddr_in dest = src;
  if (!to_group && p.have_addr) dest = p.addr;
  if (to_group && w.ranges.empty()) {
    auto gs = group_sent_.find(pre);
    if (gs != group_sent_.end() && want_crossed(w, gs->second.ms, gs->second.last_seq, now_ms())) {
      n_->c.wants_crossed++;
      return;
    }
  }
  RangeSet ask;
  for (const Range& r : w.ranges) ask.add(r.start, std::min(w.object_len, r.start + r.len));
  if (to_group && !ask.empty()) {
    // A NACK for what we resent to the group after the point its asker had
    // read to: the repair is on its way to it.
    if (auto rs = repairs_sent_.find(pre); rs != repairs_sent_.end()) {
      n_->c.repair_bytes_crossed += drop_crossed_repairs(ask, rs->second, w.heard, now_ms());
      if (ask.empty()) return;
    }
    if (answer_by_parity(p, w, ask, pre)) return;
  }
  for (auto& j : jobs_) {
    if (prefix64(j.id) == pre && j.mcast == to_group && (to_group || same_addr(j.dest, dest))) {
      // The group is getting this object already: a first request takes
      // what is left of this pass (what it missed before, it NACKs).
      if (w.ranges.empty() && !to_group) j.todo.add(0, j.len);
      for (const auto& [b, e] : ask.ranges()) j.todo.add(b, std::min(j.len, e));
      arm_tick(0);
      return;
    }
  }
  if (jobs_.size() >= kMaxSendJobs) return;
  SendJob j;
  j.id = w.id;
  j.mcast = to_group;
  j.dest = dest;
  j.manifest = (w.flags & kWantManifest) != 0;
  // Only objects of this share's versions: a member of this share must not
  // read what the store holds for another one.
  auto mine = n_->reader->in_share(cfg_.name, w.id, j.manifest);
  if (!mine || !*mine) {
    n_->c.not_in_share++;
    return;
  }
  if (j.manifest) {
    std::string probe;
    if (!n_->reader->get_manifest(w.id, &probe) || probe.size() != w.object_len) return;
  }
  j.len = w.object_len;
  if (w.ranges.empty()) j.todo.add(0, j.len);
  for (const auto& [b, e] : ask.ranges()) j.todo.add(b, e);
  j.repair = !w.ranges.empty();
  // A manifest goes next: a box without it cannot take any of the DATA that
  // would go before it, and would ask the group for all of it again.
  // Repairs go before first sends: the receivers hold the rest of those
  // objects in memory until the gaps are filled.
  if (j.manifest && jobs_.size() > 1) {
    jobs_.insert(std::next(jobs_.begin()), std::move(j));
  } else if (j.repair && jobs_.size() > 1) {
    auto at = std::find_if(std::next(jobs_.begin()), jobs_.end(), [](const SendJob& q) { return !q.repair; });
    jobs_.insert(at, std::move(j));
  } else {
    jobs_.push_back(std::move(j));
  }
  arm_tick(0);
}

// A NACK from `p` to the group, for `ask` (what is left once crossed
// repairs are out): answered with as many new parity fragments as it lacks
// cells, less those already on their way to it. Each one repairs a lost
// cell at every receiver that lacks one, whichever cell it lost, where a
// resent range repairs only the receivers that lost that range. False when
// it must be answered with DATA: the asker does not take parity, the
// object is a manifest or has too many cells, the NACK lists only part of
// what is missing (MORE), or the object has used up its parity indexes.
bool Replicator::answer_by_parity(const Peer& p, const Want& w, RangeSet& ask, uint64_t pre) {
  const size_t cell = max_data_payload(n_->opt.mtu);
  const size_t k = parity_cells(w.object_len, cell);
  if ((p.caps & kCapParity) == 0 || (w.flags & (kWantManifest | kWantMore)) != 0 || parity_indexes(k) == 0)
    return false;
  size_t need = cells_touched(ask, cell);
  if (need > kMaxParityAnswer) return false;
  if (auto rs = repairs_sent_.find(pre); rs != repairs_sent_.end()) {
    size_t coming = unread_parity(rs->second, w.heard, now_ms());
    if (coming >= need) {
      n_->c.repair_bytes_crossed += ask.bytes();
      return true;
    }
    need -= coming;
  }
  auto nx = parity_next_.find(pre);
  size_t next = nx == parity_next_.end() ? 0 : nx->second;
  auto queued = std::find_if(jobs_.begin(), jobs_.end(),
                             [pre](const SendJob& j) { return j.mcast && prefix64(j.id) == pre; });
  if (queued != jobs_.end()) next += queued->parity;  // indexes taken already
  if (next + need > parity_indexes(k)) return false;
  if (queued != jobs_.end()) {
    // Queued and not sent: it serves this asker too if it is as large.
    queued->parity = std::max(queued->parity, need);
    arm_tick(0);
    return true;
  }
  if (jobs_.size() >= kMaxSendJobs) return true;
  auto mine = n_->reader->in_share(cfg_.name, w.id, false);
  if (!mine || !*mine) {
    n_->c.not_in_share++;
    return true;
  }
  SendJob j;
  j.id = w.id;
  j.len = w.object_len;
  j.mcast = true;
  j.dest = group_;
  j.repair = true;
  j.parity = need;
  // Repairs go before first sends (see serve).
  auto at = jobs_.empty() ? jobs_.end()
                          : std::find_if(std::next(jobs_.begin()), jobs_.end(), [](const SendJob& q) { return !q.repair; });
  jobs_.insert(at, std::move(j));
  arm_tick(0);
  return true;
}

void Replicator::pump(uint64_t now) {
  while (!jobs_.empty() || push_next(now)) {
    SendJob& j = jobs_.front();
    if (j.todo.empty() && j.parity == 0) {
      if (j.mcast && !j.repair) {
        if (group_sent_.size() >= kMaxHeardWants) group_sent_.clear();
        group_sent_[prefix64(j.id)] = {now / 1000, (mcast_seq_ - 1) & kMaxFlowSeq};
        for (OutStream& s : out_streams_) s.unsent.erase(prefix64(j.id));
      }
      jobs_.pop_front();
      continue;
    }
    if (j.data.empty()) {
      Status st = j.manifest ? n_->reader->get_manifest(j.id, &j.data) : n_->reader->get_chunk(j.id, &j.data);
      if (!st || j.data.size() != j.len) {
        n_->c.objects_unavailable++;
        jobs_.pop_front();
        continue;
      }
    }
    if (!(j.parity > 0 ? send_parity_batch(j, now) : send_data_batch(j, now))) return;
  }
}

// Makes, seals and sends up to kMaxParityBatch of `j`'s parity fragments,
// each with a new index, when the bucket has credit for them. False when
// the caller must stop (as send_data_batch).
bool Replicator::send_parity_batch(SendJob& j, uint64_t now) {
  const size_t cell = max_data_payload(n_->opt.mtu);
  const size_t mtu = n_->opt.mtu;
  const uint64_t pre = prefix64(j.id);
  const size_t k = parity_cells(j.len, cell);
  if (parity_next_.size() >= kMaxHeardWants && parity_next_.count(pre) == 0) parity_next_.clear();
  size_t& next = parity_next_[pre];
  const size_t n = std::min({j.parity, kMaxParityBatch, parity_indexes(k) - std::min(next, parity_indexes(k))});
  if (n == 0) {  // indexes used up: the askers NACK again, and get DATA
    j.parity = 0;
    return true;
  }
  const size_t wire = n * (kIpUdpOverhead + datagram_len(kParityFixedLen + cell));
  if (!bucket_.take(wire, now * 1000)) {
    arm_tick(std::max<uint64_t>(bucket_.wait_ns(wire, now * 1000) / 1000, 200));
    return false;
  }
  if (tx_buf_.empty()) tx_buf_.resize(kTxBatch * mtu);
  if (parity_buf_.empty()) parity_buf_.resize(kMaxParityBatch * cell);
  std::array<uint8_t, kMaxParityBatch> idx{};
  std::array<uint8_t*, kMaxParityBatch> out{};
  for (size_t i = 0; i < n; i++) {
    idx[i] = static_cast<uint8_t>(next + i);
    out[i] = parity_buf_.data() + i * cell;
  }
  if (!make_parity(reinterpret_cast<const uint8_t*>(j.data.data()), j.len, cell, {idx.data(), n}, out.data()).ok()) {
    j.parity = 0;
    return true;
  }
  uint8_t fields[kParityFixedLen];
  size_t sealed = 0;
  for (; sealed < n; sealed++) {
    Parity pp;
    std::memcpy(pp.prefix.data(), j.id.data(), kIdPrefixLen);
    pp.object_len = j.len;
    pp.mcast = true;
    pp.flow_seq = (mcast_seq_ + static_cast<uint32_t>(sealed)) & kMaxFlowSeq;
    pp.cell = static_cast<uint16_t>(cell);
    pp.index = idx[sealed];
    pp.payload = {out[sealed], cell};
    if (encode_parity_fields(pp, fields) == 0) break;
    std::span<uint8_t> slot(tx_buf_.data() + sealed * mtu, mtu);
    size_t len = seal_into(PacketType::parity, slot, {fields, kParityFixedLen}, pp.payload);
    if (len == 0) break;
    tx_iov_[sealed] = {slot.data(), len};
  }
  if (sealed == 0) {
    j.parity = 0;
    return true;
  }
  size_t sent = n_->send_batch(group_, tx_iov_.data(), sealed);
  for (size_t i = 0; i < sent; i++) {
    n_->c.count(NetCounters::kSent, NetCounters::kRepair, tx_iov_[i].iov_len);
    n_->c.parity_pkts_out++;
    n_->c.repair_pkts_out++;
    note_repair(pre, 0, 0, (mcast_seq_ + static_cast<uint32_t>(i)) & kMaxFlowSeq, now / 1000, true);
  }
  mcast_seq_ += static_cast<uint32_t>(sent);
  next += sent;
  j.parity -= sent;
  if (sent < sealed) {
    arm_tick(1000);
    return false;
  }
  return true;
}

// The next fragments of `j` in offset order, at most kTxBatch, ending after
// the first short one: all but the last of a batch have the same size, so
// the kernel can take the batch as one UDP GSO send.
static size_t next_fragments(const SendJob& j, size_t maxp,
                             std::span<std::pair<uint32_t, uint32_t>> out) {
  size_t k = 0;
  for (const auto& [begin, e] : j.todo.ranges()) {
    uint32_t b = begin;
    while (b < e && k < out.size()) {
      uint32_t n = static_cast<uint32_t>(std::min<size_t>(e - b, maxp));
      out[k++] = {b, n};
      b += n;
      if (n < maxp) return k;
    }
    if (k == out.size()) break;
  }
  return k;
}

// Seals and sends one batch of `j`'s DATA when the bucket has credit for all
// of it. False when the caller must stop: no credit (the tick is armed for
// when there is) or a full socket buffer (retried on a later tick).
bool Replicator::send_data_batch(SendJob& j, uint64_t now) {
  const size_t maxp = max_data_payload(n_->opt.mtu);
  const size_t mtu = n_->opt.mtu;
  if (tx_buf_.empty()) tx_buf_.resize(kTxBatch * mtu);  // only boxes that serve pay for it
  std::array<std::pair<uint32_t, uint32_t>, kTxBatch> frags;
  size_t k = next_fragments(j, maxp, frags);
  size_t wire = 0;
  for (size_t i = 0; i < k; i++) wire += kIpUdpOverhead + datagram_len(kDataFixedLen + frags[i].second);
  if (!bucket_.take(wire, now * 1000)) {
    arm_tick(std::max<uint64_t>(bucket_.wait_ns(wire, now * 1000) / 1000, 200));
    return false;
  }
  uint32_t& seq = j.mcast ? mcast_seq_
                          : ucast_seq_[(uint64_t{j.dest.sin_addr.s_addr} << 16) | j.dest.sin_port];
  uint8_t fields[kDataFixedLen];
  size_t sealed = 0;
  for (; sealed < k; sealed++) {
    auto [b, n] = frags[sealed];
    Data d;
    std::memcpy(d.prefix.data(), j.id.data(), kIdPrefixLen);
    d.object_len = j.len;
    d.offset = b;
    d.mcast = j.mcast;
    d.flow_seq = (seq + static_cast<uint32_t>(sealed)) & kMaxFlowSeq;
    d.payload = {reinterpret_cast<const uint8_t*>(j.data.data()) + b, n};
    if (encode_data_fields(d, fields) == 0) break;
    std::span<uint8_t> slot(tx_buf_.data() + sealed * mtu, mtu);
    size_t len = seal_into(PacketType::data, slot, {fields, kDataFixedLen}, d.payload);
    if (len == 0) break;
    tx_iov_[sealed] = {slot.data(), len};
  }
  if (sealed == 0) {  // cannot seal (key limits): drop the job, the log says why
    j.todo.clear();
    return true;
  }
  size_t sent = n_->send_batch(j.mcast ? group_ : j.dest, tx_iov_.data(), sealed);
  const uint32_t first_seq = seq;
  seq += static_cast<uint32_t>(sent);  // unsent fragments take these numbers next time
  for (size_t i = 0; i < sent; i++) {
    auto [b, n] = frags[i];
    bool repair = j.repair || b < j.sent_end;
    n_->c.count(NetCounters::kSent, repair ? NetCounters::kRepair : NetCounters::kData,
                tx_iov_[i].iov_len);
    n_->c.data_pkts_out++;
    n_->c.data_bytes_out += n;
    if (repair) n_->c.repair_pkts_out++;
    if (repair && j.mcast)
      note_repair(prefix64(j.id), b, b + n, (first_seq + static_cast<uint32_t>(i)) & kMaxFlowSeq, now / 1000);
    j.sent_end = std::max(j.sent_end, b + n);
    j.todo.remove(b, b + n);
  }
  if (sent < sealed) {
    arm_tick(1000);
    return false;
  }
  return true;
}

// Loss reports drive the sending rate: the worst receiver limits the group.
void Replicator::on_report(Peer& p, const Report& r) {
  if (r.sender_epoch != sealer_.epoch()) return;
  uint64_t n = uint64_t{r.received} + r.lost;
  if (n == 0) return;
  double loss = static_cast<double>(r.lost) / static_cast<double>(n);
  p.reported_loss = loss;
  rate_->on_report(p.id, loss, now_us() * 1000, n, r.has_queue ? r.queue_pct / 100.0 : 0.0);
  bucket_.set_rate(rate_->rate_bps());
}

// Every 250 ms, each sender we got DATA from hears how much of it arrived.
void Replicator::send_reports(uint64_t now) {
  for (auto& [id, p] : peers_) {
    if (!p.have_addr) continue;
    for (int k = 0; k < 2; k++) {
      Peer::FlowRx& f = p.flows[k];
      if (!f.seen || now - f.last_report_us < report_interval_us()) continue;
      if (now - f.last_data_us > 1000000) {  // the flow stopped: forget it
        f.seen = false;
        continue;
      }
      uint32_t expected = f.highest - f.reported;
      Report r;
      const SenderReplay& seen = p.replay.path(k == 0 ? PeerReplay::kMulticast : PeerReplay::kUnicast);
      r.highest_counter = seen.window().highest();
      r.sender_epoch = seen.epoch();
      r.highest_seq = f.highest;
      r.received = f.received;
      r.lost = expected > f.received ? expected - f.received : 0;
      if (expected > 0) p.loss = static_cast<double>(r.lost) / static_cast<double>(r.lost + f.received);
      r.interval_ms = static_cast<uint16_t>(std::clamp<uint64_t>((now - f.last_report_us) / 1000, 1, 65535));
      r.flow = k == 0 ? Flow::multicast : Flow::unicast;
      const SocketEntry* sock = k == 0 ? mcast_.get() : n_->ucast.get();
      if ((p.caps & kCapQueue) && sock) {
        r.has_queue = true;
        r.queue_pct = sock->fill(now);
      }
      uint8_t body[kReportQueueLen];
      size_t len = encode_report(r, body);
      if (len != 0) seal_send(PacketType::report, {body, len}, &p.addr);
      f.reported = f.highest;
      f.received = 0;
      f.last_report_us = now;
    }
  }
}

void Replicator::on_ping(const Peer& p, const Ping& pg, const sockaddr_in& src) {
  Pong pong{pg.token, 0};
  if (p.caps & kCapClock) pong.wall_us = wall_us();  // older pingers drop a longer PONG
  uint8_t body[kPongClockLen];
  size_t len = encode_pong(pong, body);
  if (len != 0) seal_send(PacketType::pong, {body, len}, &src);
}

// --- security: limits, share boundaries, key usage, clones --------------------
// The share's stored files, recounted at most every second (less often for
// big shares) and only while no new file is in flight, so a count never
// sees a file that finish() then adds again.
uint64_t Replicator::share_files() {
  uint64_t now = now_ms();
  uint64_t every = 1000 + files_ / 100;
  bool stale = files_at_ == 0 || now - files_at_ >= every;
  if (stale && (adding_ == 0 || now - files_at_ >= 10 * every)) {
    auto n = n_->reader->count_files(cfg_.name);
    if (n) {
      files_ = *n;
      files_at_ = now;
    }
  }
  return files_;
}

// max_file_size and max_files (config): a version beyond them is refused
// before any chunk is asked for, counted, and logged once (the version is
// settled; a restart looks at it again). Returns true if `t` was finished.
bool Replicator::refuse_by_limits(Transfer& t, bool adds_file) {
  const Manifest& m = t.m;
  auto& c = n_->c;
  if (m.size > cfg_.max_file_size) {
    c.file_too_large++;
    LOG_WARN("share %s: refusing %s from %s: %llu bytes, over max_file_size (%llu)", cfg_.name.c_str(),
             log_escape(m.path).c_str(), log_escape(m.origin).c_str(),
             static_cast<unsigned long long>(m.size), static_cast<unsigned long long>(cfg_.max_file_size));
    finish(t, "refused");
    return true;
  }
  if (!adds_file || t.adds_file) return false;
  uint64_t held = share_files() + adding_;
  if (held >= cfg_.max_files) {
    c.too_many_files++;
    LOG_WARN("share %s: refusing new file %s from %s: the share holds %llu files, max_files is %llu",
             cfg_.name.c_str(), log_escape(t.rel).c_str(), log_escape(m.origin).c_str(),
             static_cast<unsigned long long>(held), static_cast<unsigned long long>(cfg_.max_files));
    finish(t, "refused");
    return true;
  }
  t.adds_file = true;
  adding_++;
  return false;
}

// Reassembly memory is short: drop the partial objects that have been quiet
// longest (at least kEvictQuietMs, so two live objects never take turns),
// oldest first, until the node is under its bound again. They are asked for
// again in a later round. A peer that starts many objects and never ends
// them cannot hold the memory. Returns whether anything was dropped.
bool Replicator::evict_stale_partial(uint64_t now) {
  if (now - evict_scan_ms_ < kEvictScanMs) return false;
  evict_scan_ms_ = now;
  std::vector<std::pair<uint64_t, Obj*>> stale;
  for (auto& [k, t] : transfers_)
    for (auto& [pre, o] : t.objs)
      if (!o.storing && !o.buf.empty() && now - o.last_data >= kEvictQuietMs)
        stale.emplace_back(o.last_data, &o);
  std::sort(stale.begin(), stale.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t dropped = 0;
  for (auto& [at, o] : stale) {
    if (n_->inflight_bytes <= kMaxInflightBytes / 2) break;
    release(*o);  // admitted again before it takes data or is asked for
    // What it has is kept in the spill file if there is room.
    int slot = spillable(*o) ? n_->spill->take() : -1;
    if (slot >= 0 && n_->spill->write(slot, 0, o->buf.data(), o->buf.size())) o->slot = slot;
    else n_->spill->give(slot);
    Bytes().swap(o->buf);
    if (o->slot < 0) o->got.clear();
    set_wake(*o, now_us() + kRetryMs * 1000);
    n_->c.partials_evicted++;
    dropped++;
  }
  return dropped > 0;
}

// Every datagram we seal: remembered for clone detection, and the key usage
// limit checked (the node persists a new epoch, then take_epoch()).
void Replicator::note_sealed(std::span<const uint8_t> dgram) {
  uint64_t counter = sealer_.next_counter() - 1;
  SentTag& st = sent_[counter % kSentTags];
  st.epoch = sealer_.epoch();
  st.counter = counter;
  st.tag = prefix64(dgram.data() + dgram.size() - kTagLen);
  if (sealer_.needs_rekey()) n_->request_epoch(this);
}

void Replicator::take_epoch(uint32_t e) {
  if (e <= sealer_.epoch()) return;
  if (Status st = sealer_.rekey(e); !st) {
    LOG_ERROR("share %s: cannot move to epoch %u: %s", cfg_.name.c_str(), e, st.error().msg.c_str());
    return;
  }
  n_->c.rekeys++;
  drop_own_multicast();
  LOG_INFO("share %s: key usage limit reached: now sending under epoch %u", cfg_.name.c_str(), e);
}

void Replicator::take_identity(uint64_t sender_id, uint32_t epoch) {
  if (Status st = sealer_.new_identity(sender_id, epoch); !st) {
    LOG_ERROR("share %s: cannot take the new sender id: %s", cfg_.name.c_str(), st.error().msg.c_str());
    return;
  }
  old_self_ = self_;
  old_self_until_ = now_ms() + kEpochGraceMs;
  self_ = sender_id;
  start_epoch_ = epoch;
  sent_.assign(kSentTags, SentTag{});
  drop_own_multicast();
}

// A datagram with our own sender id: our own multicast looped back, or a
// clone (PROTOCOL.md 11.3). Ours are the ones we remember sealing, tag and
// all; one from an epoch or counter we have not reached, or from before
// this process started, or a remembered counter with another tag, is not
// ours: if it authenticates, another box shares our identity, and nonces
// repeat under the same key. Too old to tell: let it go.
void Replicator::on_self(const Header& h, std::span<uint8_t> dgram, const sockaddr_in& src) {
  n_->c.drop(Drop::self);
  if (n_->identity_pending) return;
  const SentTag& st = sent_[h.counter % kSentTags];
  bool slot = st.epoch == h.epoch && st.counter == h.counter;
  if (slot && st.tag == prefix64(dgram.data() + dgram.size() - kTagLen)) return;
  bool ahead = h.epoch > sealer_.epoch() || (h.epoch == sealer_.epoch() && h.counter >= sealer_.next_counter());
  bool before = h.epoch < start_epoch_;
  if (!slot && !ahead && !before) return;
  if (opener_.open(h, dgram) != Drop::none) return;  // forged: changes nothing
  n_->new_identity(cfg_.name, src);
}

void Node::Impl::request_epoch(Replicator* r) {
  if (std::find(epoch_waiting.begin(), epoch_waiting.end(), r) == epoch_waiting.end())
    epoch_waiting.push_back(r);
  uint64_t now = now_ms();
  if (epoch_pending || identity_pending || now < epoch_retry_ms) return;
  epoch_pending = true;
  // Persisted before the first datagram under it is sealed, as at start-up;
  // above every epoch this node used (rekeys, reloads), never lower.
  uint32_t floor = std::max(epoch_hi, opt.epoch);
  bool queued = worker->post([this, floor](Store& s) -> std::function<void()> {
    Result<uint32_t> e = bump_epoch(s, floor);
    return [this, e] {
      if (!e) return epoch_persisted(0, e.error());
      epoch_persisted(e.value(), stored_epoch_is(e.value()) ? Error{Errc::ok, ""}
                                                             : Error{Errc::io, "the new epoch was not stored"});
    };
  });
  if (!queued) {
    epoch_pending = false;
    epoch_retry_ms = now + 10;
  }
}

// A post's transaction may fail to commit after its work succeeded: only an
// epoch the store really holds may be used (a restart must not reuse it).
bool Node::Impl::stored_epoch_is(uint32_t e) {
  auto stored = reader->get_meta("epoch");
  return stored && stored->has_value() && **stored == std::to_string(e);
}

void Node::Impl::epoch_persisted(uint32_t e, const Error& err) {
  epoch_pending = false;
  if (err.code != Errc::ok) {
    LOG_ERROR("cannot persist a new epoch: %s (sending under the old one until its hard limit)",
              log_escape(err.msg).c_str());
    epoch_retry_ms = now_ms() + 1000;
    return;
  }
  epoch_hi = std::max(epoch_hi, e);
  std::vector<Replicator*> waiting;
  waiting.swap(epoch_waiting);
  for (Replicator* r : waiting) r->take_epoch(e);
}

// A clone: the safe way out is automatic. This node draws a new sender id
// and epoch, persists both, then seals under them; the clone does the same
// when it sees this node's datagrams, and the two never share keys again.
void Node::Impl::new_identity(const std::string& share, const sockaddr_in& from) {
  if (identity_pending || epoch_pending) return;
  auto id = new_sender_id();
  if (!id) return;
  uint64_t nid = *id;
  LOG_ERROR("share %s: %s sends with this node's sender id: another box runs with a copy of this "
            "node's state_dir (shoal.db). Taking a new sender id; never copy state_dir between boxes",
            share.c_str(), addr_str(from).c_str());
  identity_pending = true;
  uint32_t floor = std::max(epoch_hi, opt.epoch);
  bool queued = worker->post([this, nid, floor](Store& s) -> std::function<void()> {
    Status st = s.set_meta("sender_id", std::to_string(nid));
    Result<uint32_t> e = st ? bump_epoch(s, floor) : Result<uint32_t>(st.error());
    return [this, nid, e] {
      identity_pending = false;
      auto sid = reader->get_meta("sender_id");
      bool stored = e && stored_epoch_is(e.value()) && sid && sid->has_value() &&
                    **sid == std::to_string(nid);
      if (!stored) {
        LOG_ERROR("cannot persist a new sender id: %s",
                  e ? "the store did not keep it" : log_escape(e.error().msg).c_str());
        return;
      }
      c.clones++;
      opt.sender_id = nid;
      opt.epoch = e.value();
      epoch_hi = std::max(epoch_hi, e.value());
      for (auto& r : shares) r->take_identity(nid, e.value());
      LOG_WARN("new sender id %016llx, epoch %u", static_cast<unsigned long long>(nid), e.value());
    };
  });
  if (!queued) identity_pending = false;
}

void Replicator::on_pong(Peer& p, const Pong& pg) {
  uint64_t t = now_us();
  if (pg.token != p.ping_sent_us || t < pg.token || t - pg.token > 5000000) return;
  uint64_t rtt_us = t - pg.token;
  double sample = static_cast<double>(rtt_us) / 1000.0;
  p.rtt_ms = p.rtt_ms < 0 ? sample : 0.875 * p.rtt_ms + 0.125 * sample;
  if (pg.wall_us == 0) return;
  // It read its clock about half a round trip before the PONG reached us.
  double ours_then = static_cast<double>(wall_us()) - static_cast<double>(rtt_us) / 2.0;
  p.clock_offset_ms = (static_cast<double>(pg.wall_us) - ours_then) / 1000.0;
  p.clock_known = true;
}

// --- timer ------------------------------------------------------------------------
void Replicator::arm_tick(uint64_t us) {
  if (!tick_ev_) return;  // stopped
  uint64_t at = now_us() + us;
  if (tick_at_us_ != 0 && tick_at_us_ <= at && evtimer_pending(tick_ev_.get(), nullptr)) return;
  tick_at_us_ = at;
  timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
  evtimer_add(tick_ev_.get(), &tv);
}

void Replicator::on_tick(evutil_socket_t, short, void* arg) {
  auto* r = static_cast<Replicator*>(arg);
  r->tick_at_us_ = 0;
  r->tick();
}

void Replicator::tick() {
  uint64_t now = now_us();
  if (now - last_rate_tick_us_ >= 50000) {
    last_rate_tick_us_ = now;
    rate_->tick(now * 1000);
    bucket_.set_rate(rate_->rate_bps());
    send_reports(now);
    n_->reader->close_idle_files();
  }
  pump(now);
  if (!checks_waiting_.empty()) retry_checks();
  const uint64_t wake_at = run_transfers(now);
  uint64_t ms = now / 1000;
  if (!in_streams_.empty()) expire_streams(ms);
  if (ms >= next_pull_check_) {
    // Every 250 ms; every 50 ms while a catalog request waits for its reply.
    next_pull_check_ = ms + 250;
    for (auto& [id, p] : peers_) {
      if (!p.active(ms)) {
        p.pull_sent = 0;
        p.pull_tries = 0;
        continue;
      }
      if (p.head > p.cursor && cfg_.mode != ShareMode::sendonly) pull(p);
      if (p.pull_sent != 0) next_pull_check_ = std::min(next_pull_check_, ms + 50);
      // RTT probe (PROTOCOL.md 9.3); the token is our clock.
      uint64_t ping_us = std::clamp<uint64_t>(group_size() * kPingPerPeerUs, kPingMinUs, kPingMaxUs);
      if (p.have_addr && (p.ping_sent_us == 0 || now - p.ping_sent_us > ping_us)) {
        Ping pg{now};
        uint8_t body[kPingLen];
        if (encode_ping(pg, body) != 0 && seal_send(PacketType::ping, {body, kPingLen}, &p.addr))
          p.ping_sent_us = now;
      }
    }
    for (auto it = heard_want_.begin(); it != heard_want_.end();)
      it = ms - it->second > 1000 ? heard_want_.erase(it) : std::next(it);
  }
  // Next wake-up: soon while there is work, rarely when idle.
  uint64_t next = 100000;
  if (!jobs_.empty() || (!out_streams_.empty() && !out_streams_.front().todo.empty())) next = 1000;
  if (!transfers_.empty()) next = std::min<uint64_t>(next, 50000);
  if (!checks_waiting_.empty()) next = std::min<uint64_t>(next, 2000);
  if (wake_at != UINT64_MAX) next = std::min(next, wake_at > now ? wake_at - now : 0);
  for (auto& [k, t] : transfers_)
    if (t.st == Transfer::St::want_chunks && t.next < t.todo.size()) next = std::min<uint64_t>(next, 2000);
  // Timers are precise to the microsecond (the pacer's sleeps need it);
  // the rest of the bookkeeping runs at most every millisecond.
  arm_tick(std::max<uint64_t>(next, 1000));
}

size_t Replicator::transfers_pending() const {
  size_t n = 0;
  for (const auto& [k, t] : transfers_) n += t.st != Transfer::St::done ? 1 : 0;
  return n;
}

void Replicator::peers_json(nlohmann::json& out) const {
  uint64_t now = now_ms();
  size_t mine = 0;
  if (auto c = n_->reader->share_stats(); c)
    for (auto& s : *c)
      if (s.share == cfg_.name) mine = s.files;
  for (const auto& [id, p] : peers_) {
    if (p.name.empty()) continue;
    double have = mine == 0 ? 1.0 : std::min(1.0, static_cast<double>(p.has.size()) / static_cast<double>(mine));
    out.push_back({{"name", p.name},
                   {"addr", p.have_addr ? addr_str(p.addr) : std::string("?")},
                   {"share", cfg_.name},
                   {"active", p.active(now)},
                   {"last_heard_ms", now - p.last_heard},
                   {"rtt_ms", p.rtt_ms < 0 ? nlohmann::json(nullptr) : nlohmann::json(p.rtt_ms)},
                   {"loss", p.loss < 0 ? nlohmann::json(nullptr) : nlohmann::json(p.loss)},
                   {"reported_loss", p.reported_loss < 0 ? nlohmann::json(nullptr) : nlohmann::json(p.reported_loss)},
                   {"multicast", mcast_reachable(p, now)},
                   {"have", have},
                   {"bad_objects", p.bad_objects},
                   {"bytes_from", p.data_bytes}});
  }
}

// The objects in flight of a transfer (a few), for `shoalctl transfers --json`.
static nlohmann::json objs_json(const Transfer& t, uint64_t now_ms_) {
  auto a = nlohmann::json::array();
  uint64_t nu = now_ms_ * 1000;
  for (const auto& [pre, o] : t.objs) {
    if (a.size() >= 8) break;
    a.push_back({{"id", hash_hex(o.id).substr(0, 16)}, {"len", o.len}, {"got", o.got.bytes()},
                 {"asked", o.asked}, {"tries", o.tries}, {"storing", o.storing}, {"parity", o.parity.size()},
                 {"wake_in_ms", o.wake_us > nu ? static_cast<int64_t>((o.wake_us - nu) / 1000) : -1}});
  }
  return {{"count", t.objs.size()}, {"next", t.next}, {"todo", t.todo.size()}, {"stored", t.stored},
          {"first", a}};
}

void Replicator::transfers_json(nlohmann::json& out) const {
  uint64_t now = now_ms();
  for (const auto& [k, t] : transfers_) {
    uint64_t ms = std::max<uint64_t>(1, now - t.started);
    auto pit = peers_.find(t.provider);
    std::string src = pit != peers_.end() ? pit->second.name : std::string("?");
    const char* st = t.st == Transfer::St::want_manifest ? "manifest"
                     : t.st == Transfer::St::want_chunks  ? "chunks"
                     : t.st == Transfer::St::publishing   ? "publishing"
                     : t.st == Transfer::St::paused       ? "paused"
                                                          : "done";
    out.push_back({{"share", cfg_.name},
                   {"path", t.rel.empty() ? "(" + hash_hex(t.mid).substr(0, 16) + ")" : t.rel},
                   {"done", t.bytes_done},
                   {"total", t.size},
                   {"rate_bps", t.bytes_done * 8000 / ms},
                   {"state", st},
                   {"error", t.error},
                   {"objects", objs_json(t, now)},
                   {"sources", nlohmann::json::array({src})}});
  }
}

// Facts for `shoalctl doctor`: how each peer is heard and its clock offset.
nlohmann::json Replicator::doctor_json() const {
  uint64_t now = now_ms();
  auto ago = [now](uint64_t t) { return t == 0 ? nlohmann::json(nullptr) : nlohmann::json(now - t); };
  auto peers = nlohmann::json::array();
  for (const auto& [id, p] : peers_) {
    peers.push_back({{"name", p.name.empty() ? std::string("?") : p.name},
                     {"addr", p.have_addr ? addr_str(p.addr) : std::string("?")},
                     {"active", p.active(now)},
                     {"last_heard_ms", now - p.last_heard},
                     {"known_ms", now - p.first_heard},
                     {"multicast_ms", ago(p.last_mcast)},
                     {"unicast_ms", ago(p.last_ucast)},
                     {"interval_ms", p.interval_ms},
                     {"peer_multicast", (p.caps & kCapMcast) != 0},
                     {"clock_offset_ms", p.clock_known ? nlohmann::json(p.clock_offset_ms)
                                                       : nlohmann::json(nullptr)}});
  }
  auto statics = nlohmann::json::array();
  for (const auto& s : statics_) statics.push_back(addr_str(s));
  return {{"share", cfg_.name},
          {"multicast", use_mcast()},
          {"group", addr_str(group_)},
          {"port", n_->ucast->sock.local_port()},
          {"static_peers", statics},
          {"peers", peers}};
}

// ---------------------------------------------------------------------------
void Node::Impl::on_readable(SocketEntry& s) {
  (s.polling ? c.rx_polls : c.rx_wakeups)++;
  s.note_fill(now_us());
  size_t got = 0;
  bool more = true;
  for (int round = 0; round < 16 && more; round++) {
    size_t n = s.sock.recv_batch(batch);
    if (n == 0) {
      more = false;
      break;
    }
    got += n;
    rx_us = now_us();
    for (size_t i = 0; i < n; i++) handle(batch[i]);
    direct.flush();
    more = batch.reads() == batch.capacity();
  }
  s.pace_reads(got, more);
}

void Node::Impl::handle(const RecvDatagram& d) {
  c.pkts_in++;
  c.bytes_in += d.len;
  if (d.truncated) return c.drop(Drop::oversize);
  std::span<uint8_t> dg(const_cast<uint8_t*>(d.data), d.len);
  Header h;
  Drop r = decode_header(dg, &h);
  if (r != Drop::none) return c.drop(r);
  auto it = by_share_id.find(h.share_id);
  if (it == by_share_id.end()) return c.drop(Drop::unknown_share);
  it->second->on_datagram(h, dg, d.src, d.multicast);
}

bool Node::Impl::send(const sockaddr_in& to, const uint8_t* p, size_t n) {
  auto st = ucast->sock.send_to(to, p, n);
  if (!st) {
    c.send_errors++;
    return false;
  }
  c.pkts_out++;
  c.bytes_out += n;
  return true;
}

size_t Node::Impl::send_batch(const sockaddr_in& to, const iovec* v, size_t n) {
  uint64_t errors = ucast->sock.stats().tx_errors;
  size_t done = ucast->sock.send_batch(to, v, n);
  uint64_t failed = ucast->sock.stats().tx_errors - errors;
  c.send_errors += failed;
  for (size_t i = 0; i < done; i++) c.bytes_out += v[i].iov_len;
  c.pkts_out += done - std::min<uint64_t>(done, failed);
  return done;
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;

Result<std::unique_ptr<Node>> Node::create(event_base* base, const NodeOptions& opt, Store* reader,
                                           Ingester* worker) {
  auto impl = std::make_unique<Impl>();
  impl->base = base;
  impl->opt = opt;
  impl->reader = reader;
  impl->worker = worker;
  impl->epoch_hi = opt.epoch;
  const std::string& db = reader->path();
  impl->spill = std::make_unique<Spill>(db.find('/') == std::string::npos ? "" : db.substr(0, db.rfind('/')));
  auto s = UdpSocket::open_unicast(opt.bind, opt.port, opt.interface);
  if (!s) return s.error();
  auto e = watch_socket(impl.get(), std::move(s.value()));
  if (!e) return e.error();
  impl->ucast = std::move(e.value());
  LOG_INFO("udp %s:%u, multicast %s", opt.bind.c_str(), impl->ucast->sock.local_port(),
           opt.multicast ? "on" : "off");
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Status Node::add_share(const ShareConfig& cfg, const std::string& key) {
  if (auto sid = derive_share_id(key); sid && impl_->spent_ids.count(*sid) != 0)
    return make_error(Errc::busy, "its key was in use before the reload; waiting for a new epoch");
  auto r = std::make_unique<Replicator>(impl_.get(), cfg);
  if (auto st = r->start(key); !st) return st;
  if (impl_->by_share_id.count(r->share_id()) != 0)
    return make_error(Errc::invalid, "share " + cfg.name + " has the same key as another share");
  impl_->by_share_id[r->share_id()] = r.get();
  impl_->shares.push_back(std::move(r));
  return {};
}

void Node::local_version(const std::string& share) {
  for (auto& r : impl_->shares)
    if (r->name() == share) r->local_version();
}

void Node::stream_batch(StreamBatch& b) {
  for (auto& r : impl_->shares)
    if (r->name() == b.share) r->stream_batch(b);
}

uint16_t Node::port() const { return impl_->ucast->sock.local_port(); }

size_t Node::peer_count() const {
  size_t n = 0;
  for (auto& r : impl_->shares) n += r->active_peers();
  return n;
}

size_t Node::transfers_pending() const {
  size_t n = 0;
  for (auto& r : impl_->shares) n += r->transfers_pending();
  return n;
}

nlohmann::json Node::peers_json() const {
  auto out = nlohmann::json::array();
  for (auto& r : impl_->shares) r->peers_json(out);
  return out;
}

nlohmann::json Node::transfers_json() const {
  auto out = nlohmann::json::array();
  for (auto& r : impl_->shares) r->transfers_json(out);
  return out;
}

nlohmann::json Node::doctor_json() const {
  auto out = nlohmann::json::array();
  for (auto& r : impl_->shares) out.push_back(r->doctor_json());
  return out;
}

// {"sent": {"data": {"packets": N, "bytes": N}, "repair": ..., "control": ...}, "received": ...}
const UdpSocket* Replicator::mcast_socket() const { return mcast_ ? &mcast_->sock : nullptr; }

// What the kernel did with the node's sockets (unicast and every share's
// group socket together): receive drops (buffer full), GRO reads, GSO sends.
static nlohmann::json socket_json(const Node::Impl& n) {
  UdpStats t;
  if (n.ucast) t += n.ucast->sock.stats();
  for (const auto& r : n.shares)
    if (const UdpSocket* m = r->mcast_socket()) t += m->stats();
  return {{"rx_datagrams", t.rx_packets},     {"rx_reads", t.rx_reads},
          {"rx_gro_reads", t.rx_gro_reads},   {"rx_kernel_drops", t.rx_dropped},
          {"rx_truncated", t.rx_truncated},   {"rx_errors", t.rx_errors},
          {"tx_datagrams", t.tx_packets},     {"tx_calls", t.tx_syscalls},
          {"tx_gso_calls", t.tx_gso_calls},   {"tx_would_block", t.tx_would_block},
          {"tx_errors", t.tx_errors},       {"rx_wakeups", n.c.rx_wakeups},
          {"rx_polls", n.c.rx_polls}};
}

static nlohmann::json by_kind_json(const NetCounters& c) {
  nlohmann::json out = nlohmann::json::object();
  const char* dirs[] = {"sent", "received"};
  const char* kinds[] = {"data", "repair", "control"};
  for (size_t d = 0; d < 2; d++)
    for (size_t k = 0; k < 3; k++)
      out[dirs[d]][kinds[k]] = {{"packets", c.kind_pkts[d][k]}, {"bytes", c.kind_bytes[d][k]}};
  return out;
}

nlohmann::json Node::stats_json() const {
  const NetCounters& c = impl_->c;
  nlohmann::json drops = nlohmann::json::object();
  for (size_t i = 1; i < kDropCount; i++) drops[drop_name(static_cast<Drop>(i))] = c.drops[i];
  drops["file_too_large"] = c.file_too_large;
  drops["too_many_files"] = c.too_many_files;
  drops["not_in_share"] = c.not_in_share;
  uint64_t rate = 0;
  RateController::Counts rc;
  for (auto& r : impl_->shares) {
    rate = std::max(rate, r->rate_bps());
    RateController::Counts k = r->rate_counts();
    rc.decreases += k.decreases;
    rc.loss_reports += k.loss_reports;
    rc.queue_reports += k.queue_reports;
  }
  nlohmann::json by_type = nlohmann::json::object();
  for (size_t i = 1; i <= kMaxPacketType; i++)
    by_type[packet_type_name(static_cast<PacketType>(i))] = c.in_by_type[i];
  return {{"inflight_bytes", impl_->inflight_bytes},
          {"packets_in_by_type", by_type},
          {"send_rate_bps", rate},
          {"rate_decreases", {{"applied", rc.decreases},
                              {"loss_reports", rc.loss_reports},
                              {"queue_reports", rc.queue_reports}}},
          {"packets_in", c.pkts_in},
          {"bytes_in", c.bytes_in},
          {"packets_out", c.pkts_out},
          {"bytes_out", c.bytes_out},
          {"data_packets_out", c.data_pkts_out},
          {"data_bytes_out", c.data_bytes_out},
          {"repair_packets_out", c.repair_pkts_out},
          {"control_packets_out", c.ctrl_pkts_out},
          {"data_packets_in", c.data_pkts_in},
          {"data_bytes_in", c.data_bytes_in},
          {"data_unwanted", c.data_unwanted},
          {"data_duplicate", c.data_dup},
          {"wants_out", c.want_out},
          {"wants_in", c.want_in},
          {"wants_suppressed", c.want_suppressed},
          {"want_rounds", {{"first", c.round_first}, {"idle", c.round_idle}, {"passed", c.round_passed}, {"pressed", c.round_pressed}, {"old", c.round_old}, {"items", c.want_items}}},
          {"objects_ok", c.objects_ok},
          {"objects_bad", c.objects_bad},
          {"reassembly_full", c.reassembly_full},
          {"partials_evicted", c.partials_evicted},
          {"objects_unavailable", c.objects_unavailable},
          {"wants_crossed", c.wants_crossed},
          {"repair_bytes_crossed", c.repair_bytes_crossed},
          {"parity", {{"sent", c.parity_pkts_out}, {"received", c.parity_pkts_in}, {"unused", c.parity_unused},
                      {"dropped", c.parity_dropped},
                      {"objects", c.parity_objects}, {"cells", c.parity_cells}}},
          {"stream_pushed", c.stream_pushed},
          {"stream_taken", c.stream_taken},
          {"streams_adopted", c.streams_adopted},
          {"streams_dropped", c.streams_dropped},
          {"worker_full", c.worker_full},
          {"objects_spilled", impl_->spill->taken},
          {"epoch", impl_->epoch_hi},
          {"rekeys", c.rekeys},
          {"clones_detected", c.clones},
          {"paths_refused", c.paths_refused},
          {"send_errors", c.send_errors},
          {"drops", drops},
          {"by_kind", by_kind_json(c)},
          {"socket", socket_json(*impl_)}};
}

Status load_identity(Store& store, uint64_t* sender_id, uint32_t* epoch) {
  auto sid = store.get_meta("sender_id");
  if (!sid) return sid.error();
  uint64_t id = 0;
  if (sid->has_value()) {
    auto v = parse_uint(**sid, 1, UINT64_MAX);
    if (v) id = *v;
  }
  if (id == 0) {
    auto n = new_sender_id();
    if (!n) return n.error();
    id = *n;
    if (auto st = store.set_meta("sender_id", std::to_string(id)); !st) return st;
  }
  auto ep = store.get_meta("epoch");
  if (!ep) return ep.error();
  uint64_t e = 0;
  if (ep->has_value()) {
    auto v = parse_uint(**ep, 0, UINT32_MAX - 1);
    if (v) e = *v;
  }
  e++;
  // Persisted before the first datagram of the epoch is sealed: nonces never repeat.
  if (auto st = store.set_meta("epoch", std::to_string(e)); !st) return st;
  *sender_id = id;
  *epoch = static_cast<uint32_t>(e);
  return {};
}

// --- config reload ----------------------------------------------------------------

// Leaves the network and drops all work. Worker results still due find no
// transfer and do nothing but settle the in-flight byte count.
// --- streams (PROTOCOL.md 8.7) ------------------------------------------------
// A large local file is listed to the group while the ingest cuts and
// hashes it, and its chunks are pushed by multicast when nothing else waits
// to be sent: receivers write them into a temp file that becomes the
// version's part file once the version is fetched. Everything here is a
// hint: the version's manifest decides, and receivers check every chunk.

// Someone takes our multicast: a receiving peer heard by multicast lately.
bool Replicator::mcast_listener(uint64_t now) const {
  if (!use_mcast() || !mcast_) return false;
  for (const auto& [id, p] : peers_)
    if (p.active(now) && (p.caps & kCapRecv) != 0 && mcast_reachable(p, now)) return true;
  return false;
}

void Replicator::stream_batch(StreamBatch& b) {
  auto it = std::find_if(out_streams_.begin(), out_streams_.end(),
                         [&](const OutStream& s) { return s.id == b.stream; });
  if (it == out_streams_.end()) {
    if (b.end || b.first_index != 0 || !mcast_listener(now_ms()) ||
        max_stream_entries(n_->opt.mtu, b.rel.size()) == 0)
      return;
    OutStream s;
    s.id = b.stream;
    s.rel = b.rel;
    s.st = b.st;
    s.fd.reset(::open((cfg_.path + "/" + b.rel).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
    if (s.fd.get() < 0) return;
    if (out_streams_.size() >= kMaxOutStreams) out_streams_.pop_front();
    out_streams_.push_back(std::move(s));
    it = std::prev(out_streams_.end());
  }
  OutStream& s = *it;
  if (b.end && !b.whole) {  // the file changed while it was read: no version of these chunks
    out_streams_.erase(it);
    return;
  }
  send_stream_list(s, b);
  s.ended = b.end;
  if (s.ended && s.todo.empty()) {
    out_streams_.erase(it);
    return;
  }
  arm_tick(0);
}

// STREAM datagrams for b's chunks, and the chunks queued for pushing.
void Replicator::send_stream_list(OutStream& s, const StreamBatch& b) {
  const size_t per = max_stream_entries(n_->opt.mtu, s.rel.size());
  std::vector<uint8_t> body(max_body(n_->opt.mtu));
  uint64_t off = b.first_offset;
  size_t i = 0;
  while (i < b.chunks.size() && s.listed < kMaxStreamChunks) {
    Stream m;
    m.stream = s.id;
    m.file_size = static_cast<uint64_t>(s.st.st_size);
    m.first_offset = off;
    m.first_index = b.first_index + static_cast<uint32_t>(i);
    m.path = s.rel;
    for (; i < b.chunks.size() && m.chunks.size() < per && s.listed < kMaxStreamChunks; i++, s.listed++) {
      const ChunkRef& c = b.chunks[i];
      m.chunks.push_back({c.hash, c.len});
      s.todo.push_back({c.hash, c.len, off});
      s.unsent.insert(prefix64(c.hash));
      off += c.len;
    }
    // Twice: a receiver that loses a list cannot take those chunks, and
    // asks for them whole later (the group gets them again).
    size_t n = encode_stream(m, body);
    if (n == 0 || !seal_send(PacketType::stream, {body.data(), n}, nullptr) ||
        !seal_send(PacketType::stream, {body.data(), n}, nullptr))
      break;
  }
}

// Queues the next chunk of the oldest stream; false when there is none now.
bool Replicator::push_next(uint64_t now) {
  const uint64_t ms = now / 1000;
  while (!out_streams_.empty()) {
    OutStream& s = out_streams_.front();
    if (s.todo.empty()) {
      if (!s.ended) return false;
      out_streams_.pop_front();
      continue;
    }
    OutStream::Chunk c = s.todo.front();
    s.todo.pop_front();
    // Sent to the group already (someone asked for it): not again.
    if (s.unsent.erase(prefix64(c.id)) == 0) continue;
    if (auto gs = group_sent_.find(prefix64(c.id)); gs != group_sent_.end() && ms - gs->second.ms < kPushSkipMs)
      continue;
    SendJob j;
    j.id = c.id;
    j.len = c.len;
    j.mcast = true;
    j.dest = group_;
    if (!read_pushed(s, c, &j.data)) {  // the file is no longer what was listed
      n_->c.objects_unavailable++;
      s.todo.clear();
      s.ended = true;
      continue;
    }
    j.todo.add(0, j.len);
    n_->c.stream_pushed++;
    jobs_.push_back(std::move(j));
    return true;
  }
  return false;
}

// The chunk's bytes from the stream's file: used as read while the file is
// as the ingest found it, otherwise only if they match the chunk's hash.
bool Replicator::read_pushed(const OutStream& s, const OutStream::Chunk& c, std::string* out) {
  out->resize(c.len);
  if (!pread_all(s.fd.get(), out->data(), c.len, c.off)) return false;
  struct stat now {};
  if (::fstat(s.fd.get(), &now) == 0 && unchanged_between(now, s.st)) return true;
  return sha256(out->data(), out->size()) == c.id;
}

// A peer lists a file it is ingesting: take its chunks early if we could
// want the version (a receiving share, a safe path, within the limits, and
// not, by its first chunk, a file we hold already).
void Replicator::on_stream(Peer& p, const Stream& m) {
  if (cfg_.mode == ShareMode::sendonly) return;
  const uint64_t ms = now_ms();
  InStream* in = nullptr;
  for (auto& [k, x] : in_streams_)
    if (x.peer == p.id && x.id == m.stream) in = &x;
  if (in == nullptr) {
    if (m.chunks.empty() || !valid_rel_path(m.path) || m.file_size < kHeldInFileMin ||
        (cfg_.max_file_size != 0 && m.file_size > cfg_.max_file_size) || in_streams_.size() >= kMaxInStreams ||
        parts_ + in_streams_.size() >= kMaxParts)
      return;
    auto held = n_->reader->has_chunk(m.chunks.front().id);
    if (!held || *held) return;
    // Room for it, with the margin a version's fetch asks for (8.1).
    struct statvfs vfs {};
    if (::statvfs(cfg_.path.c_str(), &vfs) != 0 ||
        !room_for(m.file_size, static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize))
      return;
    uint64_t key = next_in_stream_++;
    InStream& x = in_streams_[key];
    x.key = key;
    x.peer = p.id;
    x.id = m.stream;
    x.rel = m.path;
    x.size = m.file_size;
    x.listed_ms = ms;
    x.file = std::make_shared<StreamFile>(cfg_.path, m.path, m.file_size, n_->flusher);
    std::string share = cfg_.name;
    bool queued = n_->worker->post([this, key, share, file = x.file](Store&) -> std::function<void()> {
      int fd = -1;
      if (auto st = file->open(); !st)
        LOG_DEBUG("share %s: not taking a stream early: %s", share.c_str(), log_escape(st.error().msg).c_str());
      else
        fd = file->dup_fd();
      return [this, key, fd] { stream_opened(key, Fd(fd)); };
    });
    if (!queued) {
      in_streams_.erase(key);
      return;
    }
    in = &x;
    LOG_DEBUG("share %s: %s is listed by %s while it is ingested (%llu bytes)", cfg_.name.c_str(),
              log_escape(m.path).c_str(), log_escape(p.name).c_str(), static_cast<unsigned long long>(m.file_size));
  }
  if (in->rel != m.path || in->size != m.file_size) return;
  in->last_ms = ms;
  uint64_t off = m.first_offset;
  for (const StreamChunk& c : m.chunks) {
    if (in->chunks.size() >= kMaxStreamChunks) break;
    uint64_t pre = prefix64(c.id);
    if (in_stream_of_.emplace(pre, in->key).second) {
      InStream::Chunk& e = in->chunks[pre];
      e.id = c.id;
      e.len = c.len;
      e.off = off;
    }
    off += c.len;
  }
}

void Replicator::stream_opened(uint64_t key, Fd fd) {
  auto it = in_streams_.find(key);
  if (it == in_streams_.end()) return;
  if (fd.get() < 0) return drop_in_stream(key, true);
  it->second.fd = std::move(fd);
  LOG_DEBUG("share %s: %s: stream file open after %llu ms", cfg_.name.c_str(), log_escape(it->second.rel).c_str(),
            static_cast<unsigned long long>(now_ms() - it->second.listed_ms));
}

// DATA that no version wants: written into a stream's file if one lists it.
bool Replicator::stream_data(Peer& p, const Data& d, uint64_t pre) {
  auto sit = in_stream_of_.find(pre);
  if (sit == in_stream_of_.end()) return false;
  auto iit = in_streams_.find(sit->second);
  if (iit == in_streams_.end() || iit->second.fd.get() < 0) return false;
  InStream& in = iit->second;
  auto cit = in.chunks.find(pre);
  if (cit == in.chunks.end() || cit->second.len != d.object_len) return false;
  InStream::Chunk& c = cit->second;
  in.last_ms = n_->rx_us / 1000;
  uint32_t b = d.offset, e = d.offset + static_cast<uint32_t>(d.payload.size());
  if (c.done || c.checking || c.got.covers(b, e)) {
    n_->c.data_dup++;
    return true;
  }
  if (!n_->direct.add(in.fd.get(), c.off + b, d.payload.data(), d.payload.size())) {
    drop_in_stream(in.key, true);  // the file cannot take it (disk full): the version's fetch will
    return true;
  }
  c.got.add(b, e);
  p.data_bytes += d.payload.size();
  if (!c.got.covers(0, c.len)) return true;
  // Whole: the worker reads it back and checks it.
  if (!n_->direct.flush()) {
    drop_in_stream(in.key, true);
    return true;
  }
  c.checking = true;
  uint64_t key = in.key;
  bool queued = n_->worker->post([this, key, pre, file = in.file, id = c.id, off = c.off,
                                  len = c.len](Store&) -> std::function<void()> {
    Bytes buf(len);
    bool good = file->check(id, off, buf.data(), len);
    return [this, key, pre, good] { stream_checked(key, pre, good); };
  });
  if (!queued) {
    n_->c.worker_full++;
    c.checking = false;
    c.got.clear();
  }
  return true;
}

void Replicator::stream_checked(uint64_t key, uint64_t pre, bool good) {
  auto it = in_streams_.find(key);
  if (it == in_streams_.end()) return;
  auto cit = it->second.chunks.find(pre);
  if (cit == it->second.chunks.end()) return;
  InStream::Chunk& c = cit->second;
  c.checking = false;
  if (!good) {
    n_->c.objects_bad++;
    c.got.clear();
    return;
  }
  c.done = true;
  it->second.done++;
  n_->c.stream_taken++;
}

// `unused`: no version took it over (counted); its file goes with the last
// reference, on the worker when it can take it.
void Replicator::drop_in_stream(uint64_t key, bool unused) {
  auto it = in_streams_.find(key);
  if (it == in_streams_.end()) return;
  n_->direct.flush();  // nothing pending for a descriptor about to close
  for (const auto& [pre, c] : it->second.chunks) {
    auto s = in_stream_of_.find(pre);
    if (s != in_stream_of_.end() && s->second == key) in_stream_of_.erase(s);
  }
  if (unused) n_->c.streams_dropped++;
  std::shared_ptr<StreamFile> file = std::move(it->second.file);
  in_streams_.erase(it);
  if (file && n_->worker != nullptr)
    (void)n_->worker->post([file = std::move(file)](Store&) mutable -> std::function<void()> {
      file.reset();
      return nullptr;
    });
}

// A version being fetched whose file a peer listed to us (same path and
// size): that stream, which open_part makes its part file. Null if none.
InStream* Replicator::stream_of(const Transfer& t) {
  if (t.rel != t.m.path) return nullptr;  // a conflict copy: no stream of that name
  for (auto& [key, in] : in_streams_)
    if (in.adopted_by == 0 && in.rel == t.rel && in.size == t.m.size && in.fd.get() >= 0) return &in;
  return nullptr;
}

// The part file `t` took over from its stream is open: what the stream
// holds of chunks the part's opening did not keep (complete ones are
// checked in the part file unless the stream checked them since, partial
// ones go on arriving at the same place, their gaps NACKed) becomes `t`'s
// objects, and the stream goes.
void Replicator::carry_stream(Transfer& t) {
  if (t.stream == 0) return;
  auto it = in_streams_.find(t.stream);
  t.stream = 0;
  if (it == in_streams_.end()) return;
  InStream& in = it->second;
  const uint64_t now = now_us();
  std::vector<uint64_t> whole;
  size_t partial = 0;
  if (t.st == Transfer::St::want_chunks && t.part_fd.get() >= 0) {
    for (auto& [pre, c] : in.chunks) {
      if (c.got.empty() || t.done.count(pre) != 0 || t.objs.count(pre) != 0) continue;
      auto ow = owners_.find(pre);
      if (ow == owners_.end() || std::find(ow->second.begin(), ow->second.end(), t.key) == ow->second.end() ||
          t.part->first_offset(c.id) != c.off)
        continue;
      Obj o;
      o.id = c.id;
      o.len = c.len;
      o.got = std::move(c.got);
      o.direct = true;
      o.base = c.off;
      o.asked = true;  // the origin pushed it: what is missing was lost
      o.ended = true;
      o.sent_us = now;
      o.owner = &t;
      o.stream_checked = c.done;
      set_wake(o, now + backoff_us(group_size(), grtt_ms()));
      if (o.got.covers(0, o.len)) whole.push_back(pre);
      else partial++;
      t.objs.emplace(pre, std::move(o));
    }
  }
  LOG_DEBUG("share %s: %s: took over its stream (%zu chunks checked there, %zu whole since, %zu partial)",
            cfg_.name.c_str(), log_escape(t.rel).c_str(), in.done, whole.size(), partial);
  drop_in_stream(in.key, false);
  for (uint64_t pre : whole) direct_done(t, pre, nullptr);
}

// Streams whose origin went quiet and that no version took over.
void Replicator::expire_streams(uint64_t ms) {
  for (auto it = in_streams_.begin(); it != in_streams_.end();) {
    auto next = std::next(it);
    const InStream& in = it->second;
    if (in.adopted_by != 0 ? transfer(in.adopted_by) == nullptr
                           : ms - in.last_ms > kStreamIdleMs && in.fd.get() >= 0)
      drop_in_stream(it->first, in.adopted_by == 0);
    it = next;
  }
}

void Replicator::stop() {
  if (!transfers_.empty())
    LOG_INFO("share %s: %zu transfer(s) abandoned", cfg_.name.c_str(), transfers_.size());
  n_->direct.flush();  // before their part descriptors close
  for (auto& [k, t] : transfers_) forget_objects(t);
  transfers_.clear();
  parts_ = 0;
  transfer_of_.clear();
  owners_.clear();
  jobs_.clear();
  out_streams_.clear();
  while (!in_streams_.empty()) drop_in_stream(in_streams_.begin()->first, false);
  peers_.clear();
  announce_ev_.reset();
  tick_ev_.reset();  // the tick that closes idle files: close them now
  n_->reader->close_files();
  mcast_.reset();  // closing the socket leaves the group
}

void Replicator::set_max_rate(uint64_t bps) {
  if (!rate_) return;
  rate_->set_limits(std::min<uint64_t>(RateConfig{}.min_rate_bps, bps), bps);
  bucket_ = TokenBucket(rate_->rate_bps(), std::max<uint64_t>(256 * 1024, bps / 8 / 250));
}

bool Node::remove_share(const std::string& share) {
  Impl* n = impl_.get();
  auto it = std::find_if(n->shares.begin(), n->shares.end(),
                         [&](const auto& r) { return r->name() == share; });
  if (it == n->shares.end()) return false;
  std::unique_ptr<Replicator> r = std::move(*it);
  n->shares.erase(it);
  n->by_share_id.erase(r->share_id());
  n->spent_ids.insert(r->share_id());
  r->stop();
  Replicator* raw = r.get();
  std::erase(n->epoch_waiting, raw);
  n->retired.push_back(std::move(r));
  // Posts complete in order: when this one is back, every result the
  // replicator was owed has been delivered, and it can go.
  bool queued = n->worker->post([n, raw](Store&) -> std::function<void()> {
    return [n, raw] {
      std::erase_if(n->retired, [raw](const auto& x) { return x.get() == raw; });
    };
  });
  if (!queued)
    LOG_DEBUG("share %s: worker busy; the stopped share is freed at exit", share.c_str());
  return true;
}

void Node::set_max_rate(uint64_t bps) {
  impl_->opt.max_rate_bps = bps;
  for (auto& r : impl_->shares) r->set_max_rate(bps);
}

bool Node::epoch_spent() const { return !impl_->spent_ids.empty(); }

namespace {

// The persisted epoch + 1 (and at least after `floor`), stored.
Result<uint32_t> bump_epoch(Store& store, uint32_t floor) {
  auto ep = store.get_meta("epoch");
  if (!ep) return ep.error();
  uint64_t e = floor;
  if (ep->has_value()) {
    auto v = parse_uint(**ep, 0, UINT32_MAX - 1);
    if (!v) return make_error(Errc::corrupt, "stored epoch: " + v.error().msg);
    e = std::max<uint64_t>(e, *v);
  }
  if (e >= UINT32_MAX) return make_error(Errc::internal, "epochs exhausted");
  e++;
  if (auto st = store.set_meta("epoch", std::to_string(e)); !st) return st.error();
  return static_cast<uint32_t>(e);
}

}  // namespace

bool Node::renew_epoch(std::function<void(Status)> done) {
  Impl* n = impl_.get();
  uint32_t floor = n->opt.epoch;
  return n->worker->post([n, floor, done](Store& s) -> std::function<void()> {
    Result<uint32_t> e = bump_epoch(s, floor);
    return [n, e, done] {
      if (!e) return done(e.error());
      // The post's transaction may have failed to commit: only an epoch the
      // store really holds may be used (a restart must not reuse it).
      auto stored = n->reader->get_meta("epoch");
      if (!stored || !stored->has_value() || **stored != std::to_string(e.value()))
        return done(make_error(Errc::io, "the new epoch was not stored"));
      n->opt.epoch = e.value();
      n->epoch_hi = std::max(n->epoch_hi, e.value());
      n->spent_ids.clear();
      LOG_INFO("new epoch %u for shares started from now on", e.value());
      done({});
    };
  });
}

}  // namespace shoal
