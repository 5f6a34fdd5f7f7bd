// udp_probe: a small UDP sender/receiver for shoal's network tests and the
// netns LAN harness (tests/net/lib.sh). Self-contained (no libshoal) so a test
// can build it with one g++ line. Every loop is capped in count and time, and
// it refuses destinations outside loopback and the test LAN (10.77.0.0/16),
// with no override, so a typo cannot spray packets onto a real LAN.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kMaxCount = 10'000'000;
constexpr double kMaxSeconds = 120.0;
constexpr uint64_t kMaxSize = 65507;  // largest IPv4 UDP payload
constexpr int kDefaultRcvBuf = 4 << 20;

const char kUsage[] =
    "usage:\n"
    "  udp_probe send --to ADDR:PORT [--bind IP] [--count N] [--size B]\n"
    "                 [--random] [--truncate] [--ttl T] [--rate PPS]\n"
    "  udp_probe recv (--group G:PORT --bind IP | --listen IP:PORT)\n"
    "                 [--timeout S] [--idle S] [--expect N] [--ready FILE]\n"
    "                 [--rcvbuf BYTES]\n"
    "\n"
    "send: sends N datagrams (default 1) of B bytes (default 64, max 65507) to a\n"
    "  unicast or multicast address. Payload is a counter pattern (8-byte\n"
    "  big-endian sequence number, then bytes (seq+i)&0xff) unless --random.\n"
    "  --truncate picks each length uniformly in 0..B (for fuzzing listeners).\n"
    "  --bind IP binds the source address and, for multicast, sets\n"
    "  IP_MULTICAST_IF; multicast loop is on. --ttl (default 1, max 8) applies to\n"
    "  unicast and multicast so nothing is routed off the segment. --rate paces\n"
    "  to PPS datagrams per second (0 = as fast as the socket allows).\n"
    "  Destinations must be in 127.0.0.0/8, 10.77.0.0/16 or 224.0.0.0/4 (with\n"
    "  --bind in one of the first two); there is no override.\n"
    "  Prints the number of datagrams sent; exits 1 if not all were sent.\n"
    "recv: joins group G on the interface with address IP (IP_ADD_MEMBERSHIP,\n"
    "  IP_MULTICAST_ALL=0, SO_REUSEADDR), or listens on a unicast IP:PORT, and\n"
    "  counts datagrams until --timeout S (default 5, max 120) passes, --expect N\n"
    "  datagrams arrived, no datagram came for --idle S after the first one, or\n"
    "  SIGTERM/SIGINT. Touches --ready FILE once it is listening. Prints the\n"
    "  count on stdout and 'received=N bytes=B span_ms=T' on stderr.\n"
    "Caps: at most 10^7 datagrams and 120 s per run.\n";

volatile sig_atomic_t g_stop = 0;

extern "C" void on_signal(int) { g_stop = 1; }

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

struct Options {
  std::string mode;
  std::string to, bind, group, listen, ready;
  uint64_t count = 1;
  uint64_t size = 64;
  uint64_t rate = 0;
  uint64_t ttl = 1;
  uint64_t expect = 0;
  uint64_t rcvbuf = kDefaultRcvBuf;
  double timeout = 5.0;
  double idle = 0.0;
  bool random = false;
  bool truncate = false;
};

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool parse_u64(const char* s, uint64_t lo, uint64_t hi, uint64_t* out) {
  if (s == nullptr || *s < '0' || *s > '9') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_seconds(const char* s, double lo, double hi, double* out) {
  if (s == nullptr || *s < '0' || *s > '9') return false;
  errno = 0;
  char* end = nullptr;
  double v = strtod(s, &end);
  if (errno != 0 || *end != '\0' || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

bool parse_ip(const std::string& s, in_addr* out) {
  return inet_pton(AF_INET, s.c_str(), out) == 1;
}

// "a.b.c.d:port", port 1..65535.
bool parse_addr(const std::string& s, sockaddr_in* out) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  uint64_t port = 0;
  if (!parse_u64(s.c_str() + colon + 1, 1, 65535, &port)) return false;
  *out = sockaddr_in{};
  out->sin_family = AF_INET;
  out->sin_port = htons(static_cast<uint16_t>(port));
  return parse_ip(s.substr(0, colon), &out->sin_addr);
}

bool is_multicast(in_addr a) { return (ntohl(a.s_addr) >> 28) == 0xe; }

bool is_test_unicast(in_addr a) {
  uint32_t h = ntohl(a.s_addr);
  return (h >> 24) == 127 || (h >> 16) == ((10u << 8) | 77u);
}

int usage_error(const char* what, const char* value) {
  fprintf(stderr, "udp_probe: bad %s%s%s (see udp_probe --help)\n", what,
          value ? ": " : "", value ? value : "");
  return 2;
}

bool take_string(const char* v, std::string* out) {
  if (v == nullptr) return false;
  *out = v;
  return true;
}

// Parses one option that takes a value; false when `a` is not one of them.
bool parse_valued(const std::string& a, const char* v, Options* o, bool* ok) {
  if (a == "--to") *ok = take_string(v, &o->to);
  else if (a == "--bind") *ok = take_string(v, &o->bind);
  else if (a == "--group") *ok = take_string(v, &o->group);
  else if (a == "--listen") *ok = take_string(v, &o->listen);
  else if (a == "--ready") *ok = take_string(v, &o->ready);
  else if (a == "--count") *ok = parse_u64(v, 1, kMaxCount, &o->count);
  else if (a == "--size") *ok = parse_u64(v, 0, kMaxSize, &o->size);
  else if (a == "--rate") *ok = parse_u64(v, 0, 10'000'000, &o->rate);
  else if (a == "--ttl") *ok = parse_u64(v, 1, 8, &o->ttl);
  else if (a == "--expect") *ok = parse_u64(v, 1, kMaxCount, &o->expect);
  else if (a == "--rcvbuf") *ok = parse_u64(v, 4096, 1u << 30, &o->rcvbuf);
  else if (a == "--timeout") *ok = parse_seconds(v, 0.001, kMaxSeconds, &o->timeout);
  else if (a == "--idle") *ok = parse_seconds(v, 0.001, kMaxSeconds, &o->idle);
  else return false;
  return true;
}

enum class ArgsResult { run, help, bad };

ArgsResult parse_args(int argc, char** argv, Options* o) {
  if (argc < 2) return usage_error("command", nullptr), ArgsResult::bad;
  o->mode = argv[1];
  if (o->mode == "--help" || o->mode == "-h") return ArgsResult::help;
  if (o->mode != "send" && o->mode != "recv")
    return usage_error("command", argv[1]), ArgsResult::bad;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = true;
    if (parse_valued(a, v, o, &ok)) {
      if (!ok) return usage_error(a.c_str(), v), ArgsResult::bad;
      ++i;
    } else if (a == "--random") {
      o->random = true;
    } else if (a == "--truncate") {
      o->truncate = true;
    } else if (a == "--help" || a == "-h") {
      return ArgsResult::help;
    } else {
      return usage_error("option", argv[i]), ArgsResult::bad;
    }
  }
  return ArgsResult::run;
}

void fill_payload(const Options& o, uint64_t seq, std::mt19937_64& rng,
                  std::vector<uint8_t>* buf) {
  if (o.random) {
    for (size_t i = 0; i < buf->size(); i += 8) {
      uint64_t r = rng();
      size_t n = buf->size() - i < 8 ? buf->size() - i : 8;
      memcpy(buf->data() + i, &r, n);
    }
    return;
  }
  for (size_t i = 0; i < buf->size(); ++i) {
    (*buf)[i] = i < 8 ? static_cast<uint8_t>(seq >> (56 - 8 * i))
                      : static_cast<uint8_t>((seq + i) & 0xff);
  }
}

bool set_int_opt(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) == 0) return true;
  fprintf(stderr, "udp_probe: setsockopt %s: %s\n", what, strerror(errno));
  return false;
}

// Socket options for sending: TTL caps, multicast interface and loop.
bool setup_sender(int fd, const Options& o, const sockaddr_in& dst) {
  int ttl = static_cast<int>(o.ttl);
  if (!set_int_opt(fd, IPPROTO_IP, IP_TTL, ttl, "IP_TTL")) return false;
  if (!is_multicast(dst.sin_addr)) return true;
  if (!set_int_opt(fd, IPPROTO_IP, IP_MULTICAST_TTL, ttl, "IP_MULTICAST_TTL"))
    return false;
  if (!set_int_opt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1, "IP_MULTICAST_LOOP"))
    return false;
  in_addr ifaddr{};
  if (!parse_ip(o.bind, &ifaddr)) return false;
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof ifaddr) != 0) {
    fprintf(stderr, "udp_probe: IP_MULTICAST_IF %s: %s\n", o.bind.c_str(), strerror(errno));
    return false;
  }
  return true;
}

bool bind_to(int fd, const std::string& ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (!parse_ip(ip, &sa.sin_addr)) {
    fprintf(stderr, "udp_probe: bad address %s\n", ip.c_str());
    return false;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return true;
  fprintf(stderr, "udp_probe: bind %s:%u: %s\n", ip.c_str(), port, strerror(errno));
  return false;
}

// Enforces the "loopback or test LAN only" rule.
bool destination_allowed(const Options& o, const sockaddr_in& dst) {
  in_addr b{};
  bool bind_ok = !o.bind.empty() && parse_ip(o.bind, &b) && is_test_unicast(b);
  if (is_multicast(dst.sin_addr)) return bind_ok;
  return is_test_unicast(dst.sin_addr);
}

// Sleeps until `t` (CLOCK_MONOTONIC seconds), waking early on a signal.
void sleep_until(double t) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t);
  ts.tv_nsec = static_cast<long>((t - static_cast<double>(ts.tv_sec)) * 1e9);
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
}

// One datagram; retries ENOBUFS/EAGAIN (a full qdisc) until `deadline`.
bool send_one(int fd, const std::vector<uint8_t>& buf, size_t len,
              const sockaddr_in& dst, double deadline) {
  for (;;) {
    ssize_t n = sendto(fd, buf.data(), len, 0,
                       reinterpret_cast<const sockaddr*>(&dst), sizeof dst);
    if (n >= 0) return true;
    if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
      fprintf(stderr, "udp_probe: sendto: %s\n", strerror(errno));
      return false;
    }
    if (g_stop || now_s() > deadline) return false;
    usleep(200);
  }
}

int run_send(const Options& o) {
  sockaddr_in dst{};
  if (!parse_addr(o.to, &dst)) return usage_error("--to", o.to.c_str());
  if (is_multicast(dst.sin_addr) && o.bind.empty())
    return usage_error("--bind (required for multicast)", nullptr);
  if (!destination_allowed(o, dst))
    return usage_error("destination (only loopback, 10.77.0.0/16, or multicast "
                       "with --bind on those)", o.to.c_str());
  Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.fd < 0) return perror("udp_probe: socket"), 1;
  if (!o.bind.empty() && !bind_to(sock.fd, o.bind, 0)) return 1;
  if (!setup_sender(sock.fd, o, dst)) return 1;

  std::mt19937_64 rng(std::random_device{}());
  std::vector<uint8_t> buf(o.size);
  double start = now_s();
  double deadline = start + kMaxSeconds;
  uint64_t sent = 0;
  for (uint64_t seq = 0; seq < o.count && !g_stop; ++seq) {
    if (o.rate > 0) sleep_until(start + static_cast<double>(seq) / static_cast<double>(o.rate));
    if (now_s() > deadline) {
      fprintf(stderr, "udp_probe: time cap of %.0f s reached\n", kMaxSeconds);
      break;
    }
    fill_payload(o, seq, rng, &buf);
    size_t len = o.truncate ? static_cast<size_t>(rng() % (o.size + 1)) : buf.size();
    if (!send_one(sock.fd, buf, len, dst, deadline)) break;
    ++sent;
  }
  printf("%llu\n", static_cast<unsigned long long>(sent));
  fprintf(stderr, "sent=%llu span_ms=%.0f\n", static_cast<unsigned long long>(sent),
          (now_s() - start) * 1000.0);
  return sent == o.count ? 0 : 1;
}

// Socket bound to the group (or unicast address) and joined where needed.
int open_receiver(const Options& o) {
  sockaddr_in addr{};
  const std::string& spec = o.group.empty() ? o.listen : o.group;
  if (!parse_addr(spec, &addr)) return usage_error("--group/--listen", spec.c_str()), -1;
  bool mcast = !o.group.empty();
  if (mcast && (!is_multicast(addr.sin_addr) || o.bind.empty()))
    return usage_error("--group (needs a 224.0.0.0/4 address and --bind IP)", spec.c_str()), -1;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return perror("udp_probe: socket"), -1;
  Fd guard(fd);
  int rcvbuf = static_cast<int>(o.rcvbuf);
  // FORCE (root only) so the buffer is not capped by the netns's rmem_max.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (!set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")) return -1;
  if (mcast && !set_int_opt(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL"))
    return -1;
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  if (!bind_to(fd, ip, ntohs(addr.sin_port))) return -1;
  if (mcast) {
    ip_mreq mreq{};
    mreq.imr_multiaddr = addr.sin_addr;
    if (!parse_ip(o.bind, &mreq.imr_interface)) return usage_error("--bind", o.bind.c_str()), -1;
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
      fprintf(stderr, "udp_probe: IP_ADD_MEMBERSHIP %s on %s: %s\n", ip, o.bind.c_str(),
              strerror(errno));
      return -1;
    }
  }
  guard.fd = -1;
  return fd;
}

bool touch_ready(const std::string& path) {
  if (path.empty()) return true;
  Fd f(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (f.fd >= 0) return true;
  fprintf(stderr, "udp_probe: --ready %s: %s\n", path.c_str(), strerror(errno));
  return false;
}

struct RecvStats {
  uint64_t count = 0;
  uint64_t bytes = 0;
  double first = 0, last = 0;
};

// Reads every queued datagram without blocking.
void drain(int fd, uint64_t cap, RecvStats* st) {
  static uint8_t buf[65536];
  while (st->count < cap) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return;
    double t = now_s();
    if (st->count == 0) st->first = t;
    st->last = t;
    ++st->count;
    st->bytes += static_cast<uint64_t>(n);
  }
}

int run_recv(const Options& o) {
  if (o.group.empty() == o.listen.empty())
    return usage_error("arguments (give exactly one of --group and --listen)", nullptr);
  int raw = open_receiver(o);
  if (raw < 0) return 2;
  Fd sock(raw);
  if (!touch_ready(o.ready)) return 1;
  uint64_t cap = o.expect > 0 ? o.expect : kMaxCount;
  double deadline = now_s() + o.timeout;
  RecvStats st;
  while (!g_stop && st.count < cap) {
    double now = now_s();
    double until = deadline;
    if (o.idle > 0 && st.count > 0 && st.last + o.idle < until) until = st.last + o.idle;
    if (now >= until) break;
    pollfd p{sock.fd, POLLIN, 0};
    int ms = static_cast<int>((until - now) * 1000.0) + 1;
    if (poll(&p, 1, ms) > 0) drain(sock.fd, cap, &st);
  }
  printf("%llu\n", static_cast<unsigned long long>(st.count));
  fprintf(stderr, "received=%llu bytes=%llu span_ms=%.0f\n",
          static_cast<unsigned long long>(st.count), static_cast<unsigned long long>(st.bytes),
          (st.last - st.first) * 1000.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  switch (parse_args(argc, argv, &o)) {
    case ArgsResult::help: return fputs(kUsage, stdout), 0;
    case ArgsResult::bad: return 2;
    case ArgsResult::run: break;
  }
  struct sigaction sa{};
  sa.sa_handler = on_signal;  // no SA_RESTART: poll/sleep return early
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  return o.mode == "send" ? run_send(o) : run_recv(o);
}
