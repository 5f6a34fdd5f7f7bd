#include "netio.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "defer.h"
#include "log.h"

namespace shoal {

namespace {

constexpr int kBufBytes = 8 << 20;
constexpr size_t kMaxSegments = 64;          // UDP_MAX_SEGMENTS on older kernels
constexpr size_t kMaxUdpPayload = 65507;     // 65535 - IPv4 header - UDP header
constexpr size_t kMmsgChunk = 64;

bool is_would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

// Errors the kernel gives when a path cannot do UDP GSO (no checksum offload,
// xfrm, SO_NO_CHECK, segment larger than the device MTU, kernel too old).
bool is_gso_refusal(int err) {
  return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EMSGSIZE;
}

std::string port_str(uint16_t port) { return std::to_string(port); }

Status set_int(int fd, int level, int name, int val, const char* optname, const std::string& ctx) {
  if (setsockopt(fd, level, name, &val, sizeof(val)) != 0) {
    return errno_error(ctx + ": setsockopt(" + optname + ")", errno);
  }
  return {};
}

// Big buffers absorb bursts while the event loop is busy elsewhere. The
// FORCE variants bypass net.core.[rw]mem_max but need CAP_NET_ADMIN; without
// it the plain option silently caps at the sysctl, which is all we can do.
void set_buffers(int fd) {
  int v = kBufBytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
  }
}

// Options shared by unicast and multicast sockets.
Status set_common(int fd, const std::string& ctx) {
  set_buffers(fd);
  // The kernel's drop counter rides along with each datagram: drops become visible.
  if (auto s = set_int(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL", ctx); !s) return s;
  // Destination address per datagram tells multicast from unicast arrivals.
  if (auto s = set_int(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO", ctx); !s) return s;
  // Default 1 would deliver every group joined by anyone on the host for our port.
  if (auto s = set_int(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL", ctx); !s) return s;
  // A LAN tool: never let group traffic past the first router.
  if (auto s = set_int(fd, IPPROTO_IP, IP_MULTICAST_TTL, 1, "IP_MULTICAST_TTL", ctx); !s) return s;
  // Several daemons may share a host and must hear each other.
  return set_int(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1, "IP_MULTICAST_LOOP", ctx);
}

// Parses an interface address; "" means any.
Result<in_addr> parse_ip(const std::string& ip, const char* what) {
  in_addr a{};
  a.s_addr = htonl(INADDR_ANY);
  if (ip.empty()) return a;
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) {
    return make_error(Errc::invalid, std::string(what) + " '" + log_escape(ip, 64) +
                                         "' is not an IPv4 address");
  }
  return a;
}

// Asks the kernel to hand over coalesced GRO reads (Linux >= 5.0). Refusal
// (older kernel) leaves the socket as it was: one datagram per read.
bool try_enable_gro(int fd, uint16_t port) {
  int on = 1;
  if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0) return true;
  LOG_DEBUG("udp port %u: no UDP_GRO (%s), reading datagrams one by one", port,
            std::strerror(errno));
  return false;
}

Result<int> new_socket(const std::string& ctx) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error(ctx + ": socket", errno);
  return fd;
}

sockaddr_in make_addr(in_addr ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr = ip;
  a.sin_port = htons(port);
  return a;
}

Result<uint16_t> bound_port(int fd, const std::string& ctx) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return errno_error(ctx + ": getsockname", errno);
  }
  return ntohs(a.sin_port);
}

// Interface by name (if given) wins over the address, as for ip_mreqn itself.
Result<int> iface_index(const std::string& name, const std::string& ctx) {
  if (name.empty()) return 0;
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) return make_error(Errc::invalid, ctx + ": " + std::strerror(errno));
  return static_cast<int>(idx);
}

Status set_mcast_if(int fd, const ip_mreqn& m, const std::string& ctx) {
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof(m)) != 0) {
    return errno_error(ctx + ": setsockopt(IP_MULTICAST_IF)", errno);
  }
  return {};
}

bool valid_hostname(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
  });
}

}  // namespace

// ---- RecvBatch ----

RecvBatch::RecvBatch(size_t count, size_t slot_size)
    : count_(std::clamp<size_t>(count, 1, 1024)),
      slot_(std::clamp<size_t>(slot_size, 64, 65535)),
      reads_(count_),
      data_bytes_(count_ * slot_),
      data_(std::make_unique_for_overwrite<uint8_t[]>(data_bytes_)),
      iov_(count_),
      names_(count_),
      ctl_(count_),
      hdrs_(count_),
      out_(count_) {}

RecvBatch::~RecvBatch() = default;

void RecvBatch::ensure_gro() {
  constexpr size_t kBytes = kGroSlots * kGroSlotBytes;
  if (data_bytes_ >= kBytes && out_.size() >= kGroSlots * kMaxGroSegments) return;
  // One-time growth; the plain layout then uses the front of the same buffer.
  // Not zeroed, so pages the kernel never writes stay out of RSS.
  data_ = std::make_unique_for_overwrite<uint8_t[]>(std::max(kBytes, data_bytes_));
  data_bytes_ = std::max(kBytes, data_bytes_);
  const size_t slots = std::max(kGroSlots, count_);
  iov_.resize(slots);
  names_.resize(slots);
  ctl_.resize(slots);
  hdrs_.resize(slots);
  out_.resize(std::max(count_, kGroSlots * kMaxGroSegments));
}

// ---- UdpSocket: lifetime ----

UdpSocket::~UdpSocket() { close_fd(); }

UdpSocket::UdpSocket(UdpSocket&& o) noexcept
    : fd_(o.fd_),
      port_(o.port_),
      gso_(o.gso_),
      gro_(o.gro_),
      ovfl_last_(o.ovfl_last_),
      stats_(o.stats_) {
  o.fd_ = -1;
}

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
  if (this != &o) {
    close_fd();
    fd_ = o.fd_;
    port_ = o.port_;
    gso_ = o.gso_;
    gro_ = o.gro_;
    ovfl_last_ = o.ovfl_last_;
    stats_ = o.stats_;
    o.fd_ = -1;
  }
  return *this;
}

void UdpSocket::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int UdpSocket::rcvbuf() const {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0) return -1;
  return v;
}

int UdpSocket::queue_pct() const {
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof(mem);
  if (getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len <= SK_MEMINFO_RCVBUF * sizeof(uint32_t) ||
      mem[SK_MEMINFO_RCVBUF] == 0)
    return -1;
  uint64_t pct = uint64_t{mem[SK_MEMINFO_RMEM_ALLOC]} * 100 / mem[SK_MEMINFO_RCVBUF];
  return static_cast<int>(std::min<uint64_t>(pct, 100));
}

int UdpSocket::sndbuf() const {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &v, &len) != 0) return -1;
  return v;
}

// ---- UdpSocket: factories ----

Result<UdpSocket> UdpSocket::open_unicast(const std::string& bind_ip, uint16_t port,
                                          const std::string& iface_name) {
  const std::string ctx = "udp " + (bind_ip.empty() ? std::string("0.0.0.0") : bind_ip) + ":" +
                          port_str(port);
  auto ip = parse_ip(bind_ip, "bind address");
  if (!ip) return ip.error();
  auto ifindex = iface_index(iface_name, ctx + ": interface " + log_escape(iface_name, 64));
  if (!ifindex) return ifindex.error();
  auto fd = new_socket(ctx);
  if (!fd) return fd.error();
  UdpSocket s(*fd);

  // Lets this socket share the port with multicast sockets bound to a group on
  // the same port. Caveat: a second daemon on the same unicast port is not
  // refused either; Linux then delivers unicast to only one of them.
  if (auto st = set_int(s.fd_, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", ctx); !st) {
    return st.error();
  }
  if (auto st = set_common(s.fd_, ctx); !st) return st.error();
  sockaddr_in a = make_addr(*ip, port);
  if (bind(s.fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return errno_error("cannot bind " + ctx.substr(4), errno);
  }
  if (*ifindex != 0 || ip->s_addr != htonl(INADDR_ANY)) {
    ip_mreqn m{};
    m.imr_address = *ip;
    m.imr_ifindex = *ifindex;
    if (auto st = set_mcast_if(s.fd_, m, ctx); !st) return st.error();
  }
  auto p = bound_port(s.fd_, ctx);
  if (!p) return p.error();
  s.port_ = *p;
  s.gro_ = try_enable_gro(s.fd_, s.port_);
  return s;
}

Result<UdpSocket> UdpSocket::open_multicast(const std::string& group_ip, uint16_t port,
                                            const std::string& iface_ip,
                                            const std::string& iface_name) {
  const std::string group = log_escape(group_ip, 64) + ":" + port_str(port);
  const bool any_if = iface_ip.empty() || iface_ip == "0.0.0.0";
  const std::string ifdesc = !iface_name.empty() ? log_escape(iface_name, 64)
                             : !any_if          ? log_escape(iface_ip, 64)
                                                : std::string("default interface");
  in_addr g{};
  if (inet_pton(AF_INET, group_ip.c_str(), &g) != 1 || !IN_MULTICAST(ntohl(g.s_addr))) {
    return make_error(Errc::invalid, "multicast group " + group +
                                         ": not an IPv4 multicast address (224.0.0.0/4)");
  }
  const std::string join_ctx = "cannot join " + group + " on " + ifdesc;
  auto ifip = parse_ip(any_if ? std::string() : iface_ip, "interface address");
  if (!ifip) return make_error(Errc::invalid, join_ctx + ": " + ifip.error().msg);
  auto ifindex = iface_index(iface_name, join_ctx);
  if (!ifindex) return ifindex.error();

  const std::string ctx = "multicast " + group + " on " + ifdesc;
  auto fd = new_socket(ctx);
  if (!fd) return fd.error();
  UdpSocket s(*fd);
  // Every socket bound to the group with SO_REUSEADDR gets its own copy of each
  // datagram; SO_REUSEPORT would instead spread them, so it stays off.
  if (auto st = set_int(s.fd_, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", ctx); !st) {
    return st.error();
  }
  if (auto st = set_common(s.fd_, ctx); !st) return st.error();
  // Bound to the group address, not INADDR_ANY: only this group's datagrams arrive.
  sockaddr_in a = make_addr(g, port);
  if (bind(s.fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return errno_error("cannot bind " + group + " (interface " + ifdesc + ")", errno);
  }
  ip_mreqn m{};
  m.imr_multiaddr = g;
  m.imr_address = *ifip;
  m.imr_ifindex = *ifindex;
  if (setsockopt(s.fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) != 0) {
    int err = errno;
    return make_error(err == ENODEV ? Errc::invalid : Errc::io,
                      join_ctx + ": " + std::strerror(err));
  }
  if (auto st = set_mcast_if(s.fd_, m, ctx); !st) return st.error();
  auto p = bound_port(s.fd_, ctx);
  if (!p) return p.error();
  s.port_ = *p;
  s.gro_ = try_enable_gro(s.fd_, s.port_);
  return s;
}

// ---- UdpSocket: sending ----

Status UdpSocket::send_to(const sockaddr_in& to, const uint8_t* p, size_t n) {
  ssize_t r;
  do {
    r = ::sendto(fd_, p, n, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    if (is_would_block(err)) {
      ++stats_.tx_would_block;
      return make_error(Errc::busy, "send to " + addr_str(to) + ": socket buffer full");
    }
    ++stats_.tx_errors;
    stats_.tx_last_errno = err;
    return errno_error("send to " + addr_str(to), err);
  }
  ++stats_.tx_packets;
  stats_.tx_bytes += n;
  ++stats_.tx_syscalls;
  return {};
}

// ---- UdpSocket: filter ----

// Classic BPF on a UDP socket sees the UDP header at offset 0 and the
// payload from offset 8; word loads are big-endian.
Status UdpSocket::drop_matching(size_t offset, std::span<const uint8_t> bytes) {
  constexpr uint32_t kUdpHdr = 8;
  const size_t words = bytes.size() / 4;
  if (bytes.empty() || bytes.size() % 4 != 0 || words > 8 || offset > 60000)
    return make_error(Errc::invalid, "drop_matching: 4 to 32 bytes (whole words) at a small offset");
  const auto end = static_cast<uint32_t>(kUdpHdr + offset + bytes.size());
  // Program: too short -> accept; any word differs -> accept; else drop.
  std::vector<sock_filter> prog;
  const auto accept_at = static_cast<uint8_t>(2 * words + 1);  // jumps are relative
  prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0));
  prog.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, end, 0, static_cast<uint8_t>(accept_at)));
  for (size_t w = 0; w < words; ++w) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | bytes[w * 4 + i];
    const auto at = static_cast<uint32_t>(kUdpHdr + offset + w * 4);
    prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, at));
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, v, 0,
                            static_cast<uint8_t>(accept_at - 2 * w - 2)));
  }
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0));       // all equal: drop
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0xffffffffu));  // accept (whole datagram)
  sock_fprog fp{static_cast<unsigned short>(prog.size()), prog.data()};
  if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) != 0)
    return errno_error("udp port " + port_str(port_) + ": SO_ATTACH_FILTER", errno);
  return {};
}

// GSO needs every segment but the last to be exactly gso_size bytes.
static bool gso_shape_ok(const iovec* pkts, size_t n) {
  if (n < 2) return false;
  const size_t seg = pkts[0].iov_len;
  if (seg == 0 || seg > kMaxUdpPayload / 2) return false;
  for (size_t i = 1; i + 1 < n; ++i) {
    if (pkts[i].iov_len != seg) return false;
  }
  return pkts[n - 1].iov_len > 0 && pkts[n - 1].iov_len <= seg;
}

size_t UdpSocket::send_batch(const sockaddr_in& to, const iovec* pkts, size_t n) {
  size_t done = 0;
  if (gso_ && gso_shape_ok(pkts, n)) {
    done = send_gso(to, pkts, n);
    // Stopped early with GSO still on: the socket is full, the caller retries.
    if (done == n || gso_) return done;
  }
  return done + send_mmsg(to, pkts + done, n - done);
}

bool UdpSocket::send_failed(int err, size_t remaining) {
  if (is_would_block(err)) {
    ++stats_.tx_would_block;
    return true;
  }
  stats_.tx_errors += remaining;
  stats_.tx_last_errno = err;
  LOG_DEBUG("udp port %u: send failed (%s), dropped %zu datagrams", port_, std::strerror(err),
            remaining);
  return false;
}

size_t UdpSocket::send_gso(const sockaddr_in& to, const iovec* pkts, size_t n) {
  const size_t seg = pkts[0].iov_len;
  const size_t per_call = std::min(kMaxSegments, kMaxUdpPayload / seg);
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(uint16_t))];
  size_t done = 0;
  while (done < n) {
    const size_t k = std::min(per_call, n - done);
    msghdr m{};
    m.msg_name = const_cast<sockaddr_in*>(&to);
    m.msg_namelen = sizeof(to);
    m.msg_iov = const_cast<iovec*>(pkts + done);
    m.msg_iovlen = k;
    if (k > 1) {
      std::memset(ctl, 0, sizeof(ctl));
      m.msg_control = ctl;
      m.msg_controllen = sizeof(ctl);
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const auto gso_size = static_cast<uint16_t>(seg);
      std::memcpy(CMSG_DATA(c), &gso_size, sizeof(gso_size));
    }
    ssize_t r;
    do {
      r = ::sendmsg(fd_, &m, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      int err = errno;
      if (k > 1 && is_gso_refusal(err)) {
        gso_ = false;
        LOG_INFO("udp port %u: kernel refused UDP GSO (%s), using sendmmsg", port_,
                 std::strerror(err));
        return done;
      }
      return send_failed(err, n - done) ? done : n;
    }
    stats_.tx_packets += k;
    stats_.tx_bytes += static_cast<uint64_t>(r);
    ++stats_.tx_syscalls;
    if (k > 1) ++stats_.tx_gso_calls;
    done += k;
  }
  return done;
}

size_t UdpSocket::send_mmsg(const sockaddr_in& to, const iovec* pkts, size_t n) {
  mmsghdr hs[kMmsgChunk];
  size_t done = 0;
  while (done < n) {
    const size_t k = std::min(kMmsgChunk, n - done);
    std::memset(hs, 0, sizeof(hs[0]) * k);
    for (size_t i = 0; i < k; ++i) {
      hs[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(&to);
      hs[i].msg_hdr.msg_namelen = sizeof(to);
      hs[i].msg_hdr.msg_iov = const_cast<iovec*>(pkts + done + i);
      hs[i].msg_hdr.msg_iovlen = 1;
    }
    int r;
    do {
      r = ::sendmmsg(fd_, hs, static_cast<unsigned>(k), MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return send_failed(errno, n - done) ? done : n;
    for (int i = 0; i < r; ++i) stats_.tx_bytes += hs[i].msg_len;
    stats_.tx_packets += static_cast<uint64_t>(r);
    ++stats_.tx_syscalls;
    // A short count means message r failed; the next call reports why.
    done += static_cast<size_t>(r);
  }
  return done;
}

// ---- UdpSocket: receiving ----

void UdpSocket::disable_gro() {
  int off = 0;
  if (gro_) (void)setsockopt(fd_, SOL_UDP, UDP_GRO, &off, sizeof(off));
  gro_ = false;
}

size_t UdpSocket::recv_batch(RecvBatch& b) {
  b.filled_ = 0;
  b.got_reads_ = 0;
  const bool gro = gro_;
  if (gro) b.ensure_gro();
  const size_t slots = gro ? RecvBatch::kGroSlots : b.count_;
  const size_t slot_bytes = gro ? RecvBatch::kGroSlotBytes : b.slot_;
  b.reads_ = slots;
  for (size_t i = 0; i < slots; ++i) {
    b.iov_[i].iov_base = b.data_.get() + i * slot_bytes;
    b.iov_[i].iov_len = slot_bytes;
    msghdr& h = b.hdrs_[i].msg_hdr;
    h.msg_name = &b.names_[i];
    h.msg_namelen = sizeof(sockaddr_in);
    h.msg_iov = &b.iov_[i];
    h.msg_iovlen = 1;
    h.msg_control = b.ctl_[i].buf;
    h.msg_controllen = sizeof(b.ctl_[i].buf);
    h.msg_flags = 0;
    b.hdrs_[i].msg_len = 0;
  }
  int r;
  do {
    // MSG_TRUNC as an input flag makes msg_len the datagram's full size.
    r = ::recvmmsg(fd_, b.hdrs_.data(), static_cast<unsigned>(slots), MSG_DONTWAIT | MSG_TRUNC,
                   nullptr);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) ++stats_.rx_errors;
    return 0;
  }
  b.got_reads_ = static_cast<size_t>(r);
  for (size_t i = 0; i < static_cast<size_t>(r); ++i) split_read(b, i, slot_bytes);
  return b.filled_;
}

// Parses read i's control messages into d's addresses; returns the GRO
// segment size (0: a single datagram).
int UdpSocket::read_meta(RecvBatch& b, size_t i, RecvDatagram& d) {
  msghdr& h = b.hdrs_[i].msg_hdr;
  int gso_size = 0;
  d.src = b.names_[i];
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
        c->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
      in_pktinfo pi{};
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      d.dst = pi.ipi_addr;
      d.local = pi.ipi_spec_dst;
      d.ifindex = pi.ipi_ifindex;
      d.multicast = IN_MULTICAST(ntohl(pi.ipi_addr.s_addr));
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
               c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
      // The kernel reports its running drop count; add what is new since last time.
      uint32_t v = 0;
      std::memcpy(&v, CMSG_DATA(c), sizeof(v));
      stats_.rx_dropped += static_cast<uint32_t>(v - ovfl_last_);
      ovfl_last_ = v;
    } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
               c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      std::memcpy(&gso_size, CMSG_DATA(c), sizeof(gso_size));
    }
  }
  return gso_size;
}

// Read i holds one datagram, or with a GRO segment size, back-to-back
// datagrams of that size (the last may be shorter), all from one sender.
void UdpSocket::split_read(RecvBatch& b, size_t i, size_t slot_bytes) {
  RecvDatagram meta{};
  const int gso = read_meta(b, i, meta);
  const auto* base = static_cast<const uint8_t*>(b.iov_[i].iov_base);
  const size_t wire = b.hdrs_[i].msg_len;  // whole read, even if cut off
  const size_t stored = std::min(wire, slot_bytes);
  const size_t seg = gso > 0 && static_cast<size_t>(gso) < wire ? static_cast<size_t>(gso) : wire;
  ++stats_.rx_reads;
  if (seg < wire) ++stats_.rx_gro_reads;
  size_t off = 0;
  do {
    if (b.filled_ == b.out_.size()) {
      stats_.rx_errors += (wire - off + seg - 1) / seg;
      return;
    }
    RecvDatagram& d = b.out_[b.filled_++];
    d = meta;
    d.data = base + off;
    d.wire_len = std::min(seg, wire - off);
    const size_t have = off < stored ? std::min(d.wire_len, stored - off) : 0;
    d.truncated = have < d.wire_len || d.wire_len > b.slot_;
    d.len = std::min(have, b.slot_);
    ++stats_.rx_packets;
    stats_.rx_bytes += d.len;
    if (d.truncated) ++stats_.rx_truncated;
    off += seg;
  } while (off < wire);
}

// ---- helpers ----

Result<sockaddr_in> resolve_ipv4(const std::string& host, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) == 1) return a;
  if (!valid_hostname(host)) {
    return make_error(Errc::invalid, "bad host name '" + log_escape(host, 64) + "'");
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    const char* why = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
    return make_error(Errc::not_found, "cannot resolve " + host + ": " + why);
  }
  auto cleanup = defer([res] { freeaddrinfo(res); });
  a.sin_addr = reinterpret_cast<const sockaddr_in*>(res->ai_addr)->sin_addr;
  return a;
}

std::string addr_str(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {0};
  if (inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf)) == nullptr) return "?";
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

}  // namespace shoal
