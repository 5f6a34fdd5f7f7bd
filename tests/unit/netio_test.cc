// netio tests: loopback only (127.0.0.1 and multicast joined on lo, TTL 1).
#include "netio.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <CppUTest/TestHarness.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace shoal;

namespace {

const char* const kGroup = "239.255.77.1";
const char* const kOtherGroup = "239.255.77.2";

UdpSocket open_lo() {
  auto s = UdpSocket::open_unicast("127.0.0.1", 0);
  if (!s) FAIL(s.error().msg.c_str());
  return std::move(s).value();
}

sockaddr_in lo_addr(uint16_t port) { return resolve_ipv4("127.0.0.1", port).value(); }

bool readable(const UdpSocket& s, int ms) {
  pollfd p{s.fd(), POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

// Collects copies of datagrams until `want` arrived or 1 s passed without any.
std::vector<std::string> recv_n(UdpSocket& s, size_t want, RecvBatch& b) {
  std::vector<std::string> got;
  while (got.size() < want && readable(s, 1000)) {
    size_t n = s.recv_batch(b);
    for (size_t i = 0; i < n; ++i) {
      got.emplace_back(reinterpret_cast<const char*>(b[i].data), b[i].len);
    }
  }
  return got;
}

// n packets of `size` bytes (the last one `last` bytes), each starting with its index.
struct Packets {
  std::vector<std::string> bufs;
  std::vector<iovec> iov;
  Packets(size_t n, size_t size, size_t last) {
    for (size_t i = 0; i < n; ++i) {
      std::string p(i + 1 == n ? last : size, static_cast<char>('a' + i % 26));
      std::string tag = std::to_string(i) + ":";
      p.replace(0, std::min(tag.size(), p.size()), tag.substr(0, p.size()));
      bufs.push_back(std::move(p));
    }
    for (auto& b : bufs) iov.push_back(iovec{b.data(), b.size()});
  }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_GROUP(NetIo){};

TEST(NetIo, UnicastRoundTrip) {
  UdpSocket a = open_lo();
  UdpSocket b = open_lo();
  CHECK(a.local_port() != 0);
  CHECK(a.local_port() != b.local_port());
  const uint8_t msg[] = "hello";
  CHECK_TRUE(a.send_to(lo_addr(b.local_port()), msg, 5).ok());
  RecvBatch batch;
  CHECK_TRUE(readable(b, 1000));
  CHECK_EQUAL(1u, b.recv_batch(batch));
  const RecvDatagram& d = batch[0];
  CHECK_EQUAL(5u, d.len);
  MEMCMP_EQUAL("hello", d.data, 5);
  CHECK_FALSE(d.truncated);
  CHECK_FALSE(d.multicast);
  STRCMP_EQUAL(("127.0.0.1:" + std::to_string(a.local_port())).c_str(),
               addr_str(d.src).c_str());
  CHECK_EQUAL(htonl(INADDR_LOOPBACK), d.dst.s_addr);
  CHECK(d.ifindex > 0);
  CHECK_EQUAL(1u, a.stats().tx_packets);
  CHECK_EQUAL(1u, b.stats().rx_packets);
  CHECK_EQUAL(0u, b.recv_batch(batch));  // nothing more: returns at once, no blocking
}

// Several sockets shown as one (status net.socket): every count adds up.
TEST(NetIo, StatsOfSocketsAddUp) {
  UdpStats a, b;
  a.rx_reads = 10;
  a.rx_gro_reads = 4;
  a.rx_dropped = 1;
  a.tx_syscalls = 7;
  a.tx_gso_calls = 5;
  a.tx_last_errno = 11;
  b.rx_reads = 3;
  b.rx_gro_reads = 2;
  b.rx_dropped = 6;
  b.tx_syscalls = 1;
  b.tx_bytes = 1400;
  b.tx_last_errno = 22;
  a += b;
  CHECK_EQUAL(13u, a.rx_reads);
  CHECK_EQUAL(6u, a.rx_gro_reads);
  CHECK_EQUAL(7u, a.rx_dropped);
  CHECK_EQUAL(8u, a.tx_syscalls);
  CHECK_EQUAL(5u, a.tx_gso_calls);
  CHECK_EQUAL(1400u, a.tx_bytes);
  CHECK_EQUAL(11, a.tx_last_errno);
}

TEST(NetIo, BuffersAreLarge) {
  UdpSocket a = open_lo();
  // Root gets the full 8 MiB (reported doubled); others get the sysctl cap.
  if (geteuid() == 0) {
    CHECK(a.rcvbuf() >= 8 << 20);
    CHECK(a.sndbuf() >= 8 << 20);
  }
  CHECK((fcntl(a.fd(), F_GETFL) & O_NONBLOCK) != 0);
  CHECK((fcntl(a.fd(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST(NetIo, BatchOf100Arrives) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  Packets p(100, 1400, 1400);
  CHECK_EQUAL(100u, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), 100));
  RecvBatch b;
  auto got = recv_n(rx, 100, b);
  CHECK_EQUAL(100u, got.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == p.bufs[i]);
  CHECK_EQUAL(100u, tx.stats().tx_packets);
  CHECK_EQUAL(140000u, tx.stats().tx_bytes);
  CHECK_EQUAL(0u, tx.stats().tx_errors);
  // 100 x 1400 B fits 46 segments per GSO call: 3 calls; sendmmsg: 2 calls.
  std::fprintf(stderr, "\n  [netio] batch path: %s (%llu syscalls, %llu GSO)\n",
               tx.stats().tx_gso_calls > 0 ? "UDP GSO" : "sendmmsg fallback",
               static_cast<unsigned long long>(tx.stats().tx_syscalls),
               static_cast<unsigned long long>(tx.stats().tx_gso_calls));
  if (tx.gso_enabled()) {
    CHECK_EQUAL(3u, tx.stats().tx_gso_calls);
  } else {
    CHECK_EQUAL(2u, tx.stats().tx_syscalls);
  }
}

TEST(NetIo, BatchWithShortLastPacket) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  Packets p(11, 1400, 300);
  CHECK_EQUAL(11u, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), 11));
  RecvBatch b;
  auto got = recv_n(rx, 11, b);
  CHECK_EQUAL(11u, got.size());
  CHECK_EQUAL(300u, got.back().size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == p.bufs[i]);
}

TEST(NetIo, MixedSizesUseSendmmsg) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  Packets p(5, 1000, 1000);
  p.iov[2].iov_len = 500;  // breaks the equal-size rule
  p.bufs[2].resize(500);
  CHECK_EQUAL(5u, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), 5));
  RecvBatch b;
  auto got = recv_n(rx, 5, b);
  CHECK_EQUAL(5u, got.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == p.bufs[i]);
  CHECK_EQUAL(0u, tx.stats().tx_gso_calls);
  CHECK_TRUE(tx.gso_enabled());  // not a refusal: GSO stays available
}

TEST(NetIo, ForcedFallbackSendsEverything) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  tx.disable_gso();
  Packets p(100, 1400, 1400);
  CHECK_EQUAL(100u, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), 100));
  RecvBatch b;
  CHECK_EQUAL(100u, recv_n(rx, 100, b).size());
  CHECK_EQUAL(0u, tx.stats().tx_gso_calls);
  CHECK_EQUAL(2u, tx.stats().tx_syscalls);  // 64 + 36 per sendmmsg
}

TEST(NetIo, KernelRefusalFallsBackAndRemembers) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  // Without UDP checksums the kernel refuses GSO (EINVAL): a real refusal.
  int one = 1;
  CHECK_EQUAL(0, setsockopt(tx.fd(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)));
  Packets p(20, 1200, 700);
  CHECK_EQUAL(20u, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), 20));
  CHECK_FALSE(tx.gso_enabled());
  CHECK_EQUAL(20u, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), 20));
  RecvBatch b;
  auto got = recv_n(rx, 40, b);
  CHECK_EQUAL(40u, got.size());
  CHECK(got[19] == p.bufs[19]);
  CHECK_EQUAL(0u, tx.stats().tx_gso_calls);
  CHECK_EQUAL(0u, tx.stats().tx_errors);
}

TEST(NetIo, TruncatedDatagramFlagged) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  std::vector<uint8_t> big(3000, 0x5a);
  const uint8_t small[] = {1, 2, 3};
  CHECK_TRUE(tx.send_to(lo_addr(rx.local_port()), big.data(), big.size()).ok());
  CHECK_TRUE(tx.send_to(lo_addr(rx.local_port()), small, sizeof(small)).ok());
  RecvBatch b;  // 2048-byte slots
  CHECK_TRUE(readable(rx, 1000));
  CHECK_EQUAL(2u, rx.recv_batch(b));
  CHECK_TRUE(b[0].truncated);
  CHECK_EQUAL(2048u, b[0].len);
  CHECK_EQUAL(3000u, b[0].wire_len);
  CHECK_FALSE(b[1].truncated);
  CHECK_EQUAL(3u, b[1].len);
  CHECK_EQUAL(1u, rx.stats().rx_truncated);
}

TEST(NetIo, SocketDropsAreCounted) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  int tiny = 1;  // the kernel raises it to its minimum, a few KiB
  CHECK_EQUAL(0, setsockopt(rx.fd(), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny)));
  std::vector<uint8_t> pkt(1400, 7);
  const sockaddr_in to = lo_addr(rx.local_port());
  for (int i = 0; i < 50; ++i) CHECK_TRUE(tx.send_to(to, pkt.data(), pkt.size()).ok());
  RecvBatch b;
  size_t got = 0;
  while (size_t n = rx.recv_batch(b)) got += n;
  // The drop count rides on the next datagram that gets in.
  CHECK_TRUE(tx.send_to(to, pkt.data(), pkt.size()).ok());
  CHECK_TRUE(readable(rx, 1000));
  got += rx.recv_batch(b);
  CHECK(got < 50);
  CHECK_EQUAL(51u, got + rx.stats().rx_dropped);
}

TEST(NetIo, MulticastOnLoopback) {
  // Bound to 0.0.0.0:P without joining: must not see group traffic for port P
  // (IP_MULTICAST_ALL 0), although it shares the port with the group sockets.
  auto plain = UdpSocket::open_unicast("0.0.0.0", 0);
  CHECK_TRUE(plain.ok());
  const uint16_t port = plain->local_port();
  auto m1 = UdpSocket::open_multicast(kGroup, port, "127.0.0.1", "");
  auto m2 = UdpSocket::open_multicast(kGroup, port, "", "lo");  // join by interface name
  auto other = UdpSocket::open_multicast(kOtherGroup, port, "127.0.0.1", "");
  if (!m1) FAIL(m1.error().msg.c_str());
  if (!m2) FAIL(m2.error().msg.c_str());
  if (!other) FAIL(other.error().msg.c_str());

  UdpSocket tx = open_lo();  // IP_MULTICAST_IF 127.0.0.1: the datagram stays on lo
  const uint8_t msg[] = "to the group";
  CHECK_TRUE(tx.send_to(resolve_ipv4(kGroup, port).value(), msg, sizeof(msg)).ok());

  RecvBatch b;
  for (UdpSocket* s : {&m1.value(), &m2.value()}) {
    CHECK_TRUE(readable(*s, 1000));
    CHECK_EQUAL(1u, s->recv_batch(b));
    CHECK_EQUAL(sizeof(msg), b[0].len);
    CHECK_TRUE(b[0].multicast);
    STRCMP_EQUAL(kGroup, inet_ntoa(b[0].dst));
    CHECK_EQUAL(tx.local_port(), ntohs(b[0].src.sin_port));
  }
  // Loopback delivery is synchronous: had they been meant to get it, they would have it now.
  CHECK_FALSE(readable(other.value(), 20));
  CHECK_FALSE(readable(plain.value(), 0));
}

TEST(NetIo, MulticastBatchOnLoopback) {
  auto plain = UdpSocket::open_unicast("127.0.0.1", 0, "lo");  // IP_MULTICAST_IF by name
  CHECK_TRUE(plain.ok());
  auto m = UdpSocket::open_multicast(kGroup, plain->local_port(), "127.0.0.1", "");
  CHECK_TRUE(m.ok());
  Packets p(30, 1200, 100);
  auto to = resolve_ipv4(kGroup, plain->local_port()).value();
  CHECK_EQUAL(30u, plain->send_batch(to, p.iov.data(), 30));
  RecvBatch b;
  auto got = recv_n(m.value(), 30, b);
  CHECK_EQUAL(30u, got.size());
  CHECK(got[29] == p.bufs[29]);
}

TEST(NetIo, BadGroupIsClearError) {
  auto r = UdpSocket::open_multicast("10.1.2.3", 7788, "", "");
  CHECK_FALSE(r.ok());
  CHECK_TRUE(r.error().code == Errc::invalid);
  CHECK_TRUE(contains(r.error().msg, "10.1.2.3:7788"));
  CHECK_TRUE(contains(r.error().msg, "multicast"));
  CHECK_FALSE(UdpSocket::open_multicast("239.1.2", 7788, "", "").ok());
  CHECK_FALSE(UdpSocket::open_multicast("", 7788, "", "").ok());
}

TEST(NetIo, BadInterfaceIsClearError) {
  auto byname = UdpSocket::open_multicast("239.1.2.3", 7788, "", "shoalnoif9");
  CHECK_FALSE(byname.ok());
  STRCMP_EQUAL("cannot join 239.1.2.3:7788 on shoalnoif9: No such device",
               byname.error().msg.c_str());
  // TEST-NET-3 address: not on any interface here.
  auto byaddr = UdpSocket::open_multicast("239.1.2.3", 7788, "203.0.113.77", "");
  CHECK_FALSE(byaddr.ok());
  STRCMP_EQUAL("cannot join 239.1.2.3:7788 on 203.0.113.77: No such device",
               byaddr.error().msg.c_str());
  auto junk = UdpSocket::open_multicast("239.1.2.3", 7788, "1.2.3", "");
  CHECK_FALSE(junk.ok());
  CHECK_TRUE(contains(junk.error().msg, "cannot join 239.1.2.3:7788 on 1.2.3"));
  auto uni = UdpSocket::open_unicast("127.0.0.1", 0, "shoalnoif9");
  CHECK_FALSE(uni.ok());
  CHECK_TRUE(contains(uni.error().msg, "shoalnoif9"));
}

TEST(NetIo, BadBindAddress) {
  auto junk = UdpSocket::open_unicast("1.2.3", 0);
  CHECK_FALSE(junk.ok());
  CHECK_TRUE(junk.error().code == Errc::invalid);
  auto foreign = UdpSocket::open_unicast("203.0.113.77", 4000);
  CHECK_FALSE(foreign.ok());
  CHECK_TRUE(contains(foreign.error().msg, "cannot bind 203.0.113.77:4000"));
}

TEST(NetIo, MoveOnlyOwnsFd) {
  int fd;
  {
    UdpSocket a = open_lo();
    fd = a.fd();
    UdpSocket b(std::move(a));
    CHECK_FALSE(a.is_open());
    CHECK_EQUAL(fd, b.fd());
    UdpSocket c;
    c = std::move(b);
    CHECK_EQUAL(fd, c.fd());
    CHECK(fcntl(fd, F_GETFD) >= 0);
  }
  CHECK_EQUAL(-1, fcntl(fd, F_GETFD));  // closed exactly once, by the last owner
}

TEST(NetIo, ResolveAndFormat) {
  auto a = resolve_ipv4("127.0.0.1", 5);
  CHECK_TRUE(a.ok());
  STRCMP_EQUAL("127.0.0.1:5", addr_str(*a).c_str());
  auto l = resolve_ipv4("localhost", 7788);  // /etc/hosts, no DNS traffic
  CHECK_TRUE(l.ok());
  STRCMP_EQUAL("127.0.0.1:7788", addr_str(*l).c_str());
  CHECK_TRUE(resolve_ipv4("bad host!", 1).error().code == Errc::invalid);
  CHECK_FALSE(resolve_ipv4("", 1).ok());
}

TEST(NetIo, DropMatchingFiltersInTheKernel) {
  auto tx = UdpSocket::open_unicast("127.0.0.1", 0, "lo");
  CHECK_TRUE(tx.ok());
  auto m = UdpSocket::open_multicast(kGroup, tx->local_port(), "127.0.0.1", "");
  CHECK_TRUE(m.ok());
  const uint8_t mine[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK_TRUE(m->drop_matching(4, mine).ok());
  CHECK_FALSE(m->drop_matching(4, std::span<const uint8_t>(mine, 6)).ok());
  auto to = resolve_ipv4(kGroup, tx->local_port()).value();
  // [0] ours: dropped; [1] differs in the last byte; [2] in the first; [3] too short to tell.
  std::vector<std::vector<uint8_t>> pkts(4, std::vector<uint8_t>(20, 9));
  std::memcpy(pkts[0].data() + 4, mine, 8);
  std::memcpy(pkts[1].data() + 4, mine, 8);
  pkts[1][11] = 0;
  std::memcpy(pkts[2].data() + 4, mine, 8);
  pkts[2][4] = 0;
  pkts[3].resize(10);
  std::memcpy(pkts[3].data() + 4, mine, 6);
  for (auto& p : pkts) CHECK_TRUE(tx->send_to(to, p.data(), p.size()).ok());
  RecvBatch b;
  auto got = recv_n(m.value(), 3, b);
  CHECK_EQUAL(3u, got.size());
  CHECK_EQUAL(20u, got[0].size());
  CHECK_EQUAL(0, got[0][11]);
  CHECK_EQUAL(0, got[1][4]);
  CHECK_EQUAL(10u, got[2].size());
  CHECK_FALSE(readable(m.value(), 20));
  // The kernel counts what the filter dropped among its drops (SO_RXQ_OVFL).
  CHECK_EQUAL(1u, m->stats().rx_dropped);
}

// ---- UDP GRO on receive ----
// On loopback a UDP GSO send stays one packet up to the receiving socket, so a
// GRO socket gets it as one coalesced read (with the UDP_GRO segment size), a
// socket without GRO gets it cut into its datagrams by the kernel.

namespace {

// Sends p as one batch and checks that rx hands back exactly its datagrams.
void expect_same_datagrams(UdpSocket& tx, UdpSocket& rx, Packets& p, RecvBatch& b) {
  const size_t n = p.bufs.size();
  CHECK_EQUAL(n, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), n));
  auto got = recv_n(rx, n, b);
  CHECK_EQUAL(n, got.size());
  for (size_t i = 0; i < got.size() && i < n; ++i) CHECK(got[i] == p.bufs[i]);
}

}  // namespace

TEST(NetIo, GroReadSplitsIntoTheSentDatagrams) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  if (!rx.gro_enabled()) {
    std::fprintf(stderr, "\n  [netio] kernel refused UDP_GRO: checking the fallback only\n");
  }
  Packets p(40, 1200, 333);  // the last datagram is shorter
  RecvBatch b;
  CHECK_EQUAL(40u, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), 40));
  CHECK_TRUE(readable(rx, 1000));
  const size_t n = rx.recv_batch(b);
  if (!rx.gro_enabled() || !tx.gso_enabled()) {
    CHECK_EQUAL(32u, n);  // plain layout: one datagram per slot
    return;
  }
  // One GSO send of 40 x 1200 B (48 KB) arrives as one read.
  CHECK_EQUAL(40u, n);
  CHECK_EQUAL(RecvBatch::kGroSlots, b.capacity());
  CHECK_EQUAL(1u, rx.stats().rx_reads);
  CHECK_EQUAL(1u, rx.stats().rx_gro_reads);
  CHECK_EQUAL(40u, rx.stats().rx_packets);
  CHECK_EQUAL(39u * 1200 + 333, rx.stats().rx_bytes);
  for (size_t i = 0; i < n; ++i) {
    const RecvDatagram& d = b[i];
    CHECK_EQUAL(p.bufs[i].size(), d.len);
    CHECK_EQUAL(p.bufs[i].size(), d.wire_len);
    CHECK_FALSE(d.truncated);
    MEMCMP_EQUAL(p.bufs[i].data(), d.data, d.len);
    CHECK_EQUAL(tx.local_port(), ntohs(d.src.sin_port));
    CHECK_EQUAL(htonl(INADDR_LOOPBACK), d.dst.s_addr);
    CHECK_FALSE(d.multicast);
  }
  CHECK_EQUAL(0u, rx.recv_batch(b));
}

TEST(NetIo, GroMixedSizesKeepOrder) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  Packets a(10, 1000, 1000), c(5, 1300, 50);
  const uint8_t odd[77] = {42};
  const sockaddr_in to = lo_addr(rx.local_port());
  CHECK_EQUAL(10u, tx.send_batch(to, a.iov.data(), 10));
  CHECK_TRUE(tx.send_to(to, odd, sizeof(odd)).ok());
  CHECK_EQUAL(5u, tx.send_batch(to, c.iov.data(), 5));
  RecvBatch b;
  auto got = recv_n(rx, 16, b);
  CHECK_EQUAL(16u, got.size());
  for (size_t i = 0; i < 10; ++i) CHECK(got[i] == a.bufs[i]);
  CHECK(got[10] == std::string(reinterpret_cast<const char*>(odd), sizeof(odd)));
  for (size_t i = 0; i < 5; ++i) CHECK(got[11 + i] == c.bufs[i]);
  if (rx.gro_enabled() && tx.gso_enabled()) CHECK_EQUAL(3u, rx.stats().rx_reads);
}

TEST(NetIo, WithoutGroTheKernelSplits) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  rx.disable_gro();
  CHECK_FALSE(rx.gro_enabled());
  Packets p(100, 1400, 900);
  RecvBatch b;
  expect_same_datagrams(tx, rx, p, b);
  CHECK_EQUAL(100u, rx.stats().rx_reads);
  CHECK_EQUAL(0u, rx.stats().rx_gro_reads);
  CHECK_EQUAL(RecvBatch::kDefaultCount, b.capacity());
}

TEST(NetIo, GroManyBatchesFillSeveralSlots) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  // 300 x 1400 B: 7 GSO sends of up to 46, read back in one or two calls.
  Packets p(300, 1400, 1400);
  RecvBatch b(64, 2048);
  expect_same_datagrams(tx, rx, p, b);
  CHECK_EQUAL(300u, rx.stats().rx_packets);
  if (rx.gro_enabled() && tx.gso_enabled()) CHECK_EQUAL(7u, rx.stats().rx_gro_reads);
}

TEST(NetIo, GroDatagramsLongerThanTheSlotAreTruncated) {
  UdpSocket tx = open_lo();
  UdpSocket rx = open_lo();
  Packets p(4, 1000, 1000);
  RecvBatch b(8, 512);
  CHECK_EQUAL(4u, tx.send_batch(lo_addr(rx.local_port()), p.iov.data(), 4));
  CHECK_TRUE(readable(rx, 1000));
  size_t n = 0;
  while (n < 4 && readable(rx, 1000)) {
    const size_t k = rx.recv_batch(b);
    for (size_t i = 0; i < k; ++i) {
      CHECK_TRUE(b[i].truncated);
      CHECK_EQUAL(512u, b[i].len);
      CHECK_EQUAL(1000u, b[i].wire_len);
      MEMCMP_EQUAL(p.bufs[n + i].data(), b[i].data, 512);
    }
    n += k;
  }
  CHECK_EQUAL(4u, n);
  CHECK_EQUAL(4u, rx.stats().rx_truncated);
}

TEST(NetIo, GroMulticastAndOwnBatchFilter) {
  auto tx = UdpSocket::open_unicast("127.0.0.1", 0, "lo");
  CHECK_TRUE(tx.ok());
  auto m = UdpSocket::open_multicast(kGroup, tx->local_port(), "127.0.0.1", "");
  CHECK_TRUE(m.ok());
  const uint8_t mine[4] = {0xde, 0xad, 0xbe, 0xef};
  CHECK_TRUE(m->drop_matching(0, mine).ok());
  auto to = resolve_ipv4(kGroup, tx->local_port()).value();
  // A batch starting with our marker is dropped whole, another one arrives whole.
  Packets own(20, 1100, 600), other(20, 1100, 600);
  for (auto& s : own.bufs) std::memcpy(s.data(), mine, sizeof(mine));
  CHECK_EQUAL(20u, tx->send_batch(to, own.iov.data(), 20));
  CHECK_EQUAL(20u, tx->send_batch(to, other.iov.data(), 20));
  RecvBatch b;
  auto got = recv_n(m.value(), 20, b);
  CHECK_EQUAL(20u, got.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == other.bufs[i]);
  CHECK_TRUE(b[0].multicast);
  STRCMP_EQUAL(kGroup, inet_ntoa(b[b.size() - 1].dst));
  CHECK_FALSE(readable(m.value(), 20));
  // Dropped by the filter, counted as kernel drops: the GSO send as one
  // when it reached the socket whole (GRO), else each of its datagrams.
  const bool whole = m->gro_enabled() && tx->gso_enabled();
  CHECK_EQUAL(whole ? 1u : 20u, m->stats().rx_dropped);
}
