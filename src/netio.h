// netio: non-blocking IPv4 UDP sockets for the replication data path.
//
// No event loop in here: the daemon's loop watches fd() and calls recv_batch()
// when readable and send_batch() when the pacer allows. Every call is
// non-blocking; a full socket shows up as a short count, never as a wait.
//
// Sending uses UDP GSO (one sendmsg with a UDP_SEGMENT cmsg carries up to 64
// equal-size datagrams) and falls back to sendmmsg for good on a socket whose
// path refuses GSO. Receiving uses recvmmsg into small fixed buffers (no
// UDP_GRO: a coalesced GRO datagram needs up to 64 KiB per slot, which would
// cost 2 MiB for 32 slots against the daemon's 16 MiB RSS budget; per-packet
// receive cost is acceptable at LAN rates with recvmmsg).
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
  uint64_t rx_bytes = 0;       // payload bytes stored in buffers
  uint64_t rx_truncated = 0;   // datagrams larger than the slot (MSG_TRUNC)
  uint64_t rx_dropped = 0;     // kernel drops at this socket (SO_RXQ_OVFL), as last reported
  uint64_t rx_errors = 0;      // recvmmsg failures other than EAGAIN
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

// Owns the receive buffers for up to `count` datagrams of `slot_size` bytes.
// Defaults (32 x 2048) fit MTU-1500 datagrams in 64 KiB of memory.
class RecvBatch {
 public:
  static constexpr size_t kDefaultCount = 32;
  static constexpr size_t kDefaultSlot = 2048;
  // count is clamped to [1, 1024], slot_size to [64, 65535].
  explicit RecvBatch(size_t count = kDefaultCount, size_t slot_size = kDefaultSlot);
  ~RecvBatch();
  RecvBatch(const RecvBatch&) = delete;
  RecvBatch& operator=(const RecvBatch&) = delete;

  // Datagrams filled by the last recv_batch().
  size_t size() const { return filled_; }
  const RecvDatagram& operator[](size_t i) const { return out_[i]; }
  size_t capacity() const { return count_; }
  size_t slot_size() const { return slot_; }

 private:
  friend class UdpSocket;
  // Room for IP_PKTINFO and SO_RXQ_OVFL control messages.
  struct alignas(cmsghdr) Ctl {
    uint8_t buf[64];
  };
  size_t count_;
  size_t slot_;
  size_t filled_ = 0;
  std::vector<uint8_t> data_;
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

  // Reads up to b.capacity() waiting datagrams into b without blocking.
  // Returns b.size(); 0 when nothing is waiting.
  size_t recv_batch(RecvBatch& b);

 private:
  explicit UdpSocket(int fd) : fd_(fd) {}
  void close_fd();
  size_t send_gso(const sockaddr_in& to, const iovec* pkts, size_t n);
  size_t send_mmsg(const sockaddr_in& to, const iovec* pkts, size_t n);
  bool send_failed(int err, size_t remaining);
  void fill_datagram(RecvBatch& b, size_t i);

  int fd_ = -1;
  uint16_t port_ = 0;
  bool gso_ = true;
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
