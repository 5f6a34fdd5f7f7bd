#include "metrics.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>

#include "defer.h"
#include "log.h"

namespace shoal {

using nlohmann::json;

namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0
// for a stray byte, an overlong form, a surrogate or a truncated sequence.
size_t utf8_len(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1Fu, min = 0x80;
  else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0Fu, min = 0x800;
  else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07u, min = 0x10000;
  else return 0;
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; k++) {
    auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

const char* type_name(MetricType t) { return t == MetricType::counter ? "counter" : "gauge"; }

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size();) {
    size_t n = utf8_len(v, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD: Prometheus takes UTF-8 only
      i++;
      continue;
    }
    char c = v[i];
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.append(v.substr(i, n));
    i += n;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0)  // 2^53: exact as an integer
    return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string render_metrics(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const MetricFamily& f : families) {
    out += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + f.name + " " + type_name(f.type) + "\n";
    for (const MetricSample& s : f.samples) {
      out += f.name;
      if (!s.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < s.labels.size(); i++) {
          if (i > 0) out += ',';
          out += s.labels[i].first + "=\"" + escape_label_value(s.labels[i].second) + "\"";
        }
        out += '}';
      }
      out += ' ' + format_metric_value(s.value) + '\n';
    }
  }
  return out;
}

// ---- from the status JSON ------------------------------------------------------

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

const json& field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

// `j` if it is an array, else an empty one (both lvalues: no copy is made).
const json& items(const json& j) {
  static const json kEmpty = json::array();
  return j.is_array() ? j : kEmpty;
}

double num(const json& j, const char* key) {
  const json& v = field(j, key);
  return v.is_number() ? v.get<double>() : 0.0;
}

std::string str(const json& j, const char* key) {
  const json& v = field(j, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// Families are filled right after they are added: the reference is used
// before the next add() can move the vector.
MetricFamily& add(std::vector<MetricFamily>& out, const char* name, MetricType t, const char* help) {
  out.push_back(MetricFamily{name, help, t, {}});
  return out.back();
}

void put(MetricFamily& f, double v, Labels labels = {}) {
  f.samples.push_back(MetricSample{std::move(labels), v});
}

constexpr const char* kKinds[] = {"data", "repair", "control"};

void add_node(std::vector<MetricFamily>& out, const json& st) {
  put(add(out, "shoal_build_info", MetricType::gauge, "Always 1; the labels name the version and the node."),
      1, {{"version", str(st, "version")}, {"node", str(st, "node")}});
  put(add(out, "shoal_uptime_seconds", MetricType::gauge, "Seconds since shoald started."),
      num(st, "uptime_s"));
}

// Datagrams by kind in one direction: `dir` is "sent" or "received".
void add_kinds(std::vector<MetricFamily>& out, const json& by_kind, const char* dir) {
  const json& d = field(by_kind, dir);
  std::string pk = std::string("shoal_") + dir + "_packets_total";
  std::string by = std::string("shoal_") + dir + "_bytes_total";
  std::string what = dir == std::string("sent") ? "sent" : "received and authenticated";
  MetricFamily& p = add(out, pk.c_str(), MetricType::counter,
                        ("Datagrams " + what + ", by kind (data, repair, control).").c_str());
  for (const char* k : kKinds) put(p, num(field(d, k), "packets"), {{"kind", k}});
  MetricFamily& b = add(out, by.c_str(), MetricType::counter,
                        ("UDP payload bytes of the datagrams " + what +
                         " (shoal header, body and tag), by kind.").c_str());
  for (const char* k : kKinds) put(b, num(field(d, k), "bytes"), {{"kind", k}});
}

void add_net(std::vector<MetricFamily>& out, const json& net) {
  add_kinds(out, field(net, "by_kind"), "sent");
  add_kinds(out, field(net, "by_kind"), "received");
  put(add(out, "shoal_sent_payload_bytes_total", MetricType::counter,
          "Object bytes (file chunks and manifests) carried by the DATA datagrams sent."),
      num(net, "data_bytes_out"));
  put(add(out, "shoal_received_payload_bytes_total", MetricType::counter,
          "Object bytes carried by the DATA datagrams received, duplicates included."),
      num(net, "data_bytes_in"));
  MetricFamily& d = add(out, "shoal_dropped_packets_total", MetricType::counter,
                        "Datagrams received and dropped, by reason.");
  const json& drops = field(net, "drops");
  if (drops.is_object())
    for (auto it = drops.begin(); it != drops.end(); ++it)
      put(d, it->is_number() ? it->get<double>() : 0.0, {{"reason", it.key()}});
  put(add(out, "shoal_send_errors_total", MetricType::counter, "Datagrams the kernel refused to send."),
      num(net, "send_errors"));
  MetricFamily& o = add(out, "shoal_received_objects_total", MetricType::counter,
                        "Objects received whole, by whether they matched their SHA-256.");
  put(o, num(net, "objects_ok"), {{"result", "ok"}});
  put(o, num(net, "objects_bad"), {{"result", "bad"}});
  put(add(out, "shoal_send_rate_bytes_per_second", MetricType::gauge,
          "Current DATA sending rate of the rate controller (the fastest share)."),
      num(net, "send_rate_bps") / 8.0);
  MetricFamily& r = add(out, "shoal_reassembly_events_total", MetricType::counter,
                        "Chunks of small files that did not fit reassembly memory: kept in the spill file "
                        "(spilled), dropped and asked for again (full), or moved out as stale (evicted); "
                        "complete chunks the store worker's queue could not take, asked for again "
                        "(worker_full).");
  put(r, num(net, "objects_spilled"), {{"event", "spilled"}});
  put(r, num(net, "reassembly_full"), {{"event", "full"}});
  put(r, num(net, "partials_evicted"), {{"event", "evicted"}});
  put(r, num(net, "worker_full"), {{"event", "worker_full"}});
  put(add(out, "shoal_objects_unavailable_total", MetricType::counter,
          "Requests for chunks this box held in a file that no longer has them (changed since)."),
      num(net, "objects_unavailable"));
  put(add(out, "shoal_wants_crossed_total", MetricType::counter,
          "First requests ignored because the object had just been sent to the group."),
      num(net, "wants_crossed"));
  put(add(out, "shoal_repair_bytes_crossed_total", MetricType::counter,
          "NACKed bytes not resent because they had just been resent to the group."),
      num(net, "repair_bytes_crossed"));
  const json& par = field(net, "parity");
  MetricFamily& pk = add(out, "shoal_parity_packets_total", MetricType::counter,
                 "Parity fragments (repairs by parity): sent, received, and received of no use "
                 "(a duplicate, the object complete, no room).");
  put(pk, num(par, "sent"), {{"event", "sent"}});
  put(pk, num(par, "received"), {{"event", "received"}});
  put(pk, num(par, "unused"), {{"event", "unused"}});
  put(add(out, "shoal_parity_cells_rebuilt_total", MetricType::counter,
          "Lost fragments of received objects rebuilt from parity fragments."),
      num(par, "cells"));
  const json& sock = field(net, "socket");
  put(add(out, "shoal_socket_kernel_drops_total", MetricType::counter,
          "Datagrams the kernel dropped at shoal's sockets: receive buffer full, and on a box sending to the "
          "group its own DATA looped back and discarded by the socket filter (about one per send call)."),
      num(sock, "rx_kernel_drops"));
  // A total and the part of it with a property, as label=yes / label=no.
  auto split = [&](const char* name, const char* help, const char* label, const char* all, const char* part) {
    MetricFamily& f = add(out, name, MetricType::counter, help);
    put(f, num(sock, part), {{label, "yes"}});
    put(f, std::max(0.0, num(sock, all) - num(sock, part)), {{label, "no"}});
  };
  split("shoal_socket_reads_total",
        "Receive buffers the kernel filled, by whether it coalesced several datagrams (GRO).", "gro",
        "rx_reads", "rx_gro_reads");
  split("shoal_socket_send_calls_total",
        "Send system calls that sent something, by whether they carried UDP GSO segments.", "gso",
        "tx_calls", "tx_gso_calls");
}

// What the peers array says about one peer name in one share. A box that
// lost its store comes back with a new id under the same name: its entries
// are merged (counters add up, gauges come from an active entry).
struct PeerAgg {
  bool active = false;
  const json* gauges = nullptr;
  double bytes = 0;
};

void add_peer_gauges(std::vector<MetricFamily>& out,
                     const std::map<std::pair<std::string, std::string>, PeerAgg>& agg) {
  MetricFamily& r = add(out, "shoal_peer_rtt_seconds", MetricType::gauge,
                        "Smoothed round-trip time to an active peer (PING/PONG every 2 s).");
  for (const auto& [k, a] : agg)
    if (a.active && field(*a.gauges, "rtt_ms").is_number())
      put(r, num(*a.gauges, "rtt_ms") / 1000.0, {{"share", k.first}, {"peer", k.second}});
  MetricFamily& l = add(out, "shoal_peer_loss_ratio", MetricType::gauge,
                        "DATA loss between this box and an active peer over the last report interval: "
                        "direction=\"in\" is measured here from flow sequence gaps, "
                        "direction=\"out\" is the peer's REPORT about our DATA.");
  for (const auto& [k, a] : agg) {
    if (!a.active) continue;
    if (field(*a.gauges, "loss").is_number())
      put(l, num(*a.gauges, "loss"), {{"share", k.first}, {"peer", k.second}, {"direction", "in"}});
    if (field(*a.gauges, "reported_loss").is_number())
      put(l, num(*a.gauges, "reported_loss"),
          {{"share", k.first}, {"peer", k.second}, {"direction", "out"}});
  }
}

void add_peers(std::vector<MetricFamily>& out, const json& st, const json& peers) {
  std::map<std::string, double> active;
  for (const json& s : items(field(st, "shares")))
    active[str(s, "name")] = 0;
  std::map<std::pair<std::string, std::string>, PeerAgg> agg;
  for (const json& p : items(peers)) {
    std::string name = str(p, "name"), share = str(p, "share");
    if (name.empty()) continue;
    bool on = field(p, "active").is_boolean() && field(p, "active").get<bool>();
    PeerAgg& a = agg[{share, name}];
    a.bytes += num(p, "bytes_from");
    if (a.gauges == nullptr || (on && !a.active)) a.gauges = &p;
    a.active = a.active || on;
    if (on) active[share] += 1;
  }
  MetricFamily& n = add(out, "shoal_peers", MetricType::gauge, "Active peers, by share.");
  for (const auto& [share, count] : active) put(n, count, {{"share", share}});
  add_peer_gauges(out, agg);
  MetricFamily& b = add(out, "shoal_peer_received_payload_bytes_total", MetricType::counter,
                        "Object bytes received in DATA from a peer.");
  for (const auto& [k, a] : agg) put(b, a.bytes, {{"share", k.first}, {"peer", k.second}});
}

void add_pending(std::vector<MetricFamily>& out, const json& st, const json& transfers) {
  const json& p = field(st, "pending");
  MetricFamily& f = add(out, "shoal_pending_files", MetricType::gauge,
                        "Files waiting: to settle (still changing), to be ingested, to be received.");
  put(f, num(p, "settle"), {{"stage", "settle"}});
  put(f, num(p, "ingest"), {{"stage", "ingest"}});
  put(f, num(p, "transfers"), {{"stage", "transfer"}});
  double left = 0;
  for (const json& t : items(transfers))
    left += std::max(0.0, num(t, "total") - num(t, "done"));
  put(add(out, "shoal_pending_transfer_bytes", MetricType::gauge,
          "Bytes of the files being received that are not stored here yet."),
      left);
}

void add_store(std::vector<MetricFamily>& out, const json& st) {
  const json& s = field(st, "store");
  put(add(out, "shoal_store_chunks", MetricType::gauge, "Distinct chunks in the store."), num(s, "chunks"));
  put(add(out, "shoal_store_bytes", MetricType::gauge, "Total length of the chunks in the store."),
      num(s, "bytes"));
  const json& shares = items(field(st, "shares"));
  MetricFamily& f = add(out, "shoal_share_files", MetricType::gauge, "Files stored, by share.");
  for (const json& sh : shares) put(f, num(sh, "files"), {{"share", str(sh, "name")}});
  MetricFamily& b = add(out, "shoal_share_bytes", MetricType::gauge, "Size of the files stored, by share.");
  for (const json& sh : shares) put(b, num(sh, "bytes"), {{"share", str(sh, "name")}});
}

void add_ingest(std::vector<MetricFamily>& out, const json& st) {
  const json& in = field(st, "ingest");
  put(add(out, "shoal_ingest_read_bytes_total", MetricType::counter,
          "Bytes read from local files by the ingest worker (its rate is the ingest rate)."),
      num(in, "bytes_read"));
  MetricFamily& f = add(out, "shoal_ingest_files_total", MetricType::counter,
                        "Local files looked at by the ingest worker, by result.");
  put(f, num(in, "files_stored"), {{"result", "stored"}});
  put(f, num(in, "files_unchanged"), {{"result", "unchanged"}});
  put(f, num(in, "files_failed"), {{"result", "failed"}});
  put(add(out, "shoal_ingest_new_chunks_total", MetricType::counter,
          "Chunks the ingest worker added to the store (not already there)."),
      num(in, "chunks_new"));
}

}  // namespace

std::vector<MetricFamily> metrics_from_status(const json& status, const json& peers,
                                              const json& transfers) {
  std::vector<MetricFamily> out;
  add_node(out, status);
  add_net(out, field(status, "net"));
  add_peers(out, status, peers);
  add_pending(out, status, transfers);
  add_store(out, status);
  add_ingest(out, status);
  return out;
}

// ---- the HTTP endpoint ------------------------------------------------------------

namespace {

void reply(evhttp_request* req, int code, const char* reason, const std::string& body) {
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Content-Type",
                    code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8");
  evbuffer* buf = evbuffer_new();
  if (buf == nullptr) return evhttp_send_error(req, 500, nullptr);
  evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, code, reason, buf);
  evbuffer_free(buf);
}

}  // namespace

void MetricsServer::on_request(evhttp_request* req, void* arg) {
  auto* self = static_cast<MetricsServer*>(arg);
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
  if (path == nullptr || std::strcmp(path, "/metrics") != 0)
    return reply(req, 404, "Not Found", "not found: the metrics are at /metrics\n");
  if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
    return reply(req, 405, "Method Not Allowed", "only GET is allowed\n");
  }
  reply(req, 200, "OK", self->render_());
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(event_base* base, const HostPort& at,
                                                            Render render) {
  const std::string where = at.host + ":" + std::to_string(at.port);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(at.port);
  if (inet_pton(AF_INET, at.host.c_str(), &sa.sin_addr) != 1)
    return make_error(Errc::invalid, "metrics address " + where + " is not an IPv4 address");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("metrics: socket", errno);
  auto close_fd = defer([&fd] {
    if (fd >= 0) ::close(fd);
  });
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // restart while old conns linger
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0)
    return errno_error("cannot listen on " + where, errno);
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return errno_error("metrics: getsockname", errno);
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->render_ = std::move(render);
  s->port_ = ntohs(sa.sin_port);
  s->http_ = evhttp_new(base);
  if (s->http_ == nullptr) return make_error(Errc::internal, "metrics: evhttp_new failed");
  // Every method reaches on_request, which answers 405, rather than libevent's 501.
  evhttp_set_allowed_methods(s->http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                           EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_max_headers_size(s->http_, 8192);  // a scrape is one short request
  evhttp_set_max_body_size(s->http_, 4096);
  evhttp_set_timeout(s->http_, 10);
  evhttp_set_gencb(s->http_, &MetricsServer::on_request, s.get());
  if (evhttp_accept_socket(s->http_, fd) != 0)
    return make_error(Errc::internal, "metrics: cannot accept on " + where);
  fd = -1;  // the listener closes it with the evhttp
  return s;
}

MetricsServer::~MetricsServer() {
  if (http_ != nullptr) evhttp_free(http_);
}

}  // namespace shoal
