// netio: non-blocking IPv4 UDP sockets for the replication data path.
//
// No event loop in here: the daemon's loop watches fd() and calls recv_batch()
// when readable and send_batch() when the pacer allows. Every call is
// non-blocking; a full socket shows up as a short count, never as a wait.
//
// Sending uses UDP GSO (one sendmsg with a UDP_SEGMENT cmsg carries up to 64
// equal-size datagrams) and falls back to sendmmsg for good on a socket whose
// path refuses GSO. Receiving uses recvmmsg. Sockets ask for UDP GRO where the
// kernel has it: a NIC (or veth with GRO on) may then hand over up to 64
// datagrams of one flow as one coalesced read, which recv_batch() splits back
// into its datagrams. A coalesced read needs a 64 KiB buffer (a smaller one
// would cut off its tail datagrams), so GRO sockets read into a few 64 KiB
// slots instead of many small ones; see RecvBatch for the memory bound.
//
// Multicast on the loopback device works without routes or sysctls on Linux
// 6.x although lo lacks IFF_MULTICAST: send with IP_MULTICAST_IF 127.0.0.1
// (open_unicast("127.0.0.1", ...)) and join with iface "127.0.0.1" or "lo".
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "result.h"

namespace shoal {

// Counters of one socket; monotonic for its lifetime.
struct UdpStats {
  uint64_t tx_packets = 0;     // datagrams handed to the kernel
  uint64_t tx_bytes = 0;       // their payload bytes
  uint64_t tx_syscalls = 0;    // sendmsg/sendmmsg/sendto calls that sent something
  uint64_t tx_gso_calls = 0;   // of those, sendmsg calls carrying UDP_SEGMENT
  uint64_t tx_would_block = 0; // sends cut short by a full socket (EAGAIN/ENOBUFS)
  uint64_t tx_errors = 0;      // datagrams dropped on a hard send error
  int tx_last_errno = 0;       // errno of the last hard send error
  uint64_t rx_packets = 0;     // datagrams received (truncated ones included)
  uint64_t rx_reads = 0;       // buffers the kernel filled (one per datagram without GRO)
  uint64_t rx_gro_reads = 0;   // of those, coalesced GRO reads split into datagrams
  uint64_t rx_bytes = 0;       // payload bytes stored in buffers
  uint64_t rx_truncated = 0;   // datagrams larger than the slot (MSG_TRUNC)
  uint64_t rx_dropped = 0;     // kernel drops at this socket (SO_RXQ_OVFL, a dropped
                               // GRO read counts once), as last reported; they
                               // include what drop_matching's filter drops
  uint64_t rx_errors = 0;      // recvmmsg failures other than EAGAIN, and datagrams of a
                               // GRO read beyond the batch's room (Linux never sends such)

  // Adds another socket's counts (several sockets shown as one; tx_last_errno
  // is kept as is).
  UdpStats& operator+=(const UdpStats& o) {
    tx_packets += o.tx_packets;
    tx_bytes += o.tx_bytes;
    tx_syscalls += o.tx_syscalls;
    tx_gso_calls += o.tx_gso_calls;
    tx_would_block += o.tx_would_block;
    tx_errors += o.tx_errors;
    rx_packets += o.rx_packets;
    rx_reads += o.rx_reads;
    rx_gro_reads += o.rx_gro_reads;
    rx_bytes += o.rx_bytes;
    rx_truncated += o.rx_truncated;
    rx_dropped += o.rx_dropped;
    rx_errors += o.rx_errors;
    return *this;
  }
};

// One received datagram; data points into the RecvBatch that produced it and
// stays valid until the next recv_batch() on that batch.
struct RecvDatagram {
  const uint8_t* data = nullptr;
  size_t len = 0;           // bytes in data (<= slot size)
  size_t wire_len = 0;      // datagram size on the wire (> len when truncated)
  bool truncated = false;   // caller must drop and count it
  sockaddr_in src{};        // sender
  in_addr dst{};            // header destination (IP_PKTINFO ipi_addr): group or our address
  in_addr local{};          // local address the datagram arrived for (ipi_spec_dst)
  int ifindex = 0;          // arriving interface
  bool multicast = false;   // dst in 224.0.0.0/4
};

// Owns the receive buffers. From a socket without GRO it reads up to `count`
// datagrams of up to `slot_size` bytes each (32 x 2048 by default: MTU-1500
// datagrams in 64 KiB). From a GRO socket it reads into kGroSlots buffers of
// 64 KiB instead, each holding one datagram or one coalesced read of up to 64;
// datagrams longer than slot_size count as truncated in both cases.
//
// Why 4 x 64 KiB: one coalesced read can be 64 KiB, so fewer, larger slots are
// the only layout that never cuts one off. 4 of them take up to ~180 datagrams
// of MTU size per call (the daemon's plain layout: 64) in 256 KiB, 1.6% of
// the daemon's 16 MiB RSS budget; 64 such slots would be 4 MiB, a quarter of
// it. Measured on veth with GRO (~14 datagrams per read), 8 slots saved no
// more CPU than 4.
// Buffers are allocated once, on first use, and not zeroed, so pages become
// resident only when the kernel writes them: without coalescing, one page per
// slot. No allocation per packet.
class RecvBatch {
 public:
  static constexpr size_t kDefaultCount = 32;
  static constexpr size_t kDefaultSlot = 2048;
  static constexpr size_t kGroSlots = 4;
  static constexpr size_t kGroSlotBytes = 65536;
  static constexpr size_t kMaxGroSegments = 64;  // UDP_GRO_CNT_MAX
  // count is clamped to [1, 1024], slot_size to [64, 65535].
  explicit RecvBatch(size_t count = kDefaultCount, size_t slot_size = kDefaultSlot);
  ~RecvBatch();
  RecvBatch(const RecvBatch&) = delete;
  RecvBatch& operator=(const RecvBatch&) = delete;

  // Datagrams filled by the last recv_batch(); with GRO it may exceed capacity().
  size_t size() const { return filled_; }
  const RecvDatagram& operator[](size_t i) const { return out_[i]; }
  // Buffers the last recv_batch() offered the kernel (count before the first
  // call): fewer datagrams than this means the socket was drained.
  size_t capacity() const { return reads_; }
  // Buffers the kernel filled in the last recv_batch() (with GRO, one may
  // hold many datagrams): fewer than capacity() means the socket was drained.
  size_t reads() const { return got_reads_; }
  size_t slot_size() const { return slot_; }

 private:
  friend class UdpSocket;
  // Room for IP_PKTINFO, SO_RXQ_OVFL and UDP_GRO control messages.
  struct alignas(cmsghdr) Ctl {
    uint8_t buf[128];
  };
  // Grows the buffers for the GRO layout (the first time only).
  void ensure_gro();

  size_t count_;
  size_t slot_;
  size_t reads_;
  size_t filled_ = 0;
  size_t got_reads_ = 0;
  size_t data_bytes_ = 0;
  std::unique_ptr<uint8_t[]> data_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_in> names_;
  std::vector<Ctl> ctl_;
  std::vector<mmsghdr> hdrs_;
  std::vector<RecvDatagram> out_;
};

// A non-blocking, close-on-exec IPv4 UDP socket. Move-only; closes its fd.
class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket();
  UdpSocket(UdpSocket&& o) noexcept;
  UdpSocket& operator=(UdpSocket&& o) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Unicast socket bound to bind_ip:port (port 0: kernel picks, see local_port()).
  // Big buffers, SO_RXQ_OVFL, IP_PKTINFO, IP_MULTICAST_ALL 0 (only unicast for
  // it arrives), multicast TTL 1 and loop on. Multicast it sends leaves through
  // iface_name if given, else bind_ip if not 0.0.0.0, else the kernel's choice.
  static Result<UdpSocket> open_unicast(const std::string& bind_ip, uint16_t port,
                                        const std::string& iface_name = "");

  // Receiving socket for group_ip:port, bound to the group so only its traffic
  // arrives, joined on iface_name (if non-empty) or iface_ip ("" or "0.0.0.0":
  // kernel's choice). SO_REUSEADDR without SO_REUSEPORT so every daemon on the
  // host gets its own copy. Errors name group, port and interface.
  static Result<UdpSocket> open_multicast(const std::string& group_ip, uint16_t port,
                                          const std::string& iface_ip,
                                          const std::string& iface_name);

  bool is_open() const { return fd_ >= 0; }
  // The fd for the event loop to watch; still owned by this object.
  int fd() const { return fd_; }
  uint16_t local_port() const { return port_; }
  const UdpStats& stats() const { return stats_; }
  // Effective kernel buffer sizes (as getsockopt reports them, i.e. doubled).
  int rcvbuf() const;
  int sndbuf() const;
  // How full the receive queue is now: memory of the datagrams waiting, in
  // percent of the receive buffer (SO_MEMINFO), 0..100; -1 if unknown.
  int queue_pct() const;

  // Sends one datagram. Errc::busy when the socket buffer is full (retry when writable).
  Status send_to(const sockaddr_in& to, const uint8_t* p, size_t n);

  // Sends pkts[0..n) to `to`, each iovec one datagram. Uses GSO when all but the
  // last have the same size (the last no larger); else sendmmsg. Returns how many
  // were consumed from the front: < n only when the socket is full (caller retries
  // the rest later). A hard error drops the remaining datagrams (counted in
  // stats().tx_errors) since UDP loss is repaired by NACKs anyway.
  size_t send_batch(const sockaddr_in& to, const iovec* pkts, size_t n);

  // Attaches a socket filter: the kernel drops, before queuing, every datagram
  // whose payload bytes at `offset` equal `bytes` (4..32 bytes, a multiple of
  // 4); shorter datagrams pass. Replaces an earlier filter of this call.
  // Used to drop our own multicast, looped back to us, without a wake-up.
  Status drop_matching(size_t offset, std::span<const uint8_t> bytes);

  // Whether the next send_batch() will try GSO (false after the kernel refused it).
  bool gso_enabled() const { return gso_; }
  // Stops using GSO on this socket (tests; paths known to refuse it).
  void disable_gso() { gso_ = false; }

  // Whether this socket takes coalesced GRO reads (the kernel accepted UDP_GRO).
  bool gro_enabled() const { return gro_; }
  // Turns UDP_GRO off (tests; the fallback). Call before datagrams arrive:
  // coalesced reads already queued would be cut to b.slot_size().
  void disable_gro();

  // Reads waiting datagrams into b without blocking: up to b.capacity()
  // buffers, coalesced GRO reads split into their datagrams in order.
  // Returns b.size(); 0 when nothing is waiting.
  size_t recv_batch(RecvBatch& b);

 private:
  explicit UdpSocket(int fd) : fd_(fd) {}
  void close_fd();
  size_t send_gso(const sockaddr_in& to, const iovec* pkts, size_t n);
  size_t send_mmsg(const sockaddr_in& to, const iovec* pkts, size_t n);
  bool send_failed(int err, size_t remaining);
  int read_meta(RecvBatch& b, size_t i, RecvDatagram& d);
  void split_read(RecvBatch& b, size_t i, size_t slot_bytes);

  int fd_ = -1;
  uint16_t port_ = 0;
  bool gso_ = true;
  bool gro_ = false;
  uint32_t ovfl_last_ = 0;
  UdpStats stats_;
};

// "1.2.3.4" or a host name (resolved via getaddrinfo, AF_INET, first result) to
// an address with `port`. Names with characters outside [A-Za-z0-9.-] are
// rejected without a lookup. May block on DNS: call at start-up, not from the loop.
Result<sockaddr_in> resolve_ipv4(const std::string& host, uint16_t port);

// "1.2.3.4:5".
std::string addr_str(const sockaddr_in& a);

}  // namespace shoal
