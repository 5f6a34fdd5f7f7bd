#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <event2/event.h>

#include "testutil.h"

#include <CppUTest/TestHarness.h>

using namespace shoal;
using nlohmann::json;

namespace {

// Every line of `text` that starts with `prefix`.
std::vector<std::string> lines_with(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l.compare(0, prefix.size(), prefix) == 0) out.push_back(l);
  return out;
}

// The value of the one sample line that starts with `series` + " ", or NaN.
double sample(const std::string& text, const std::string& series) {
  auto l = lines_with(text, series + " ");
  if (l.size() != 1) return std::nan("");
  return std::stod(l[0].substr(series.size() + 1));
}

std::string render_status(const json& st, const json& peers, const json& transfers) {
  return render_metrics(metrics_from_status(st, peers, transfers));
}

json a_status() {
  json by_kind;
  by_kind["sent"]["data"] = {{"packets", 10}, {"bytes", 14000}};
  by_kind["sent"]["repair"] = {{"packets", 2}, {"bytes", 2800}};
  by_kind["sent"]["control"] = {{"packets", 7}, {"bytes", 700}};
  by_kind["received"]["data"] = {{"packets", 9}, {"bytes", 12600}};
  return {{"ok", true},
          {"node", "box-a"},
          {"version", "0.1.0"},
          {"uptime_s", 42},
          {"shares", json::array({{{"name", "media"}, {"files", 3}, {"bytes", 3000}},
                                  {{"name", "docs"}, {"files", 0}, {"bytes", 0}}})},
          {"store", {{"chunks", 5}, {"bytes", 123456789012}}},
          {"pending", {{"ingest", 2}, {"settle", 1}, {"transfers", 4}}},
          {"net",
           {{"by_kind", by_kind},
            {"data_bytes_out", 13000},
            {"data_bytes_in", 12000},
            {"drops", {{"auth", 3}, {"self", 8}}},
            {"send_rate_bps", 8000000},
            {"objects_ok", 6},
            {"objects_bad", 1},
            {"objects_spilled", 4},
            {"reassembly_full", 2},
            {"partials_evicted", 1},
            {"worker_full", 3},
            {"objects_unavailable", 3},
            {"wants_crossed", 5},
            {"repair_bytes_crossed", 2816},
            {"parity", {{"sent", 9}, {"received", 8}, {"unused", 2}, {"objects", 3}, {"cells", 5}}},
            {"socket", {{"rx_reads", 40}, {"rx_gro_reads", 30}, {"rx_kernel_drops", 6},
                        {"tx_calls", 20}, {"tx_gso_calls", 17}}}}},
          {"ingest", {{"bytes_read", 4096}, {"files_stored", 3}, {"files_unchanged", 1}}}};
}


// One HTTP/1.0 exchange with 127.0.0.1:port: the whole response, or "" when
// the connection fails.
std::string http(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

TEST_GROUP(Metrics){};

TEST(Metrics, LabelValuesAreEscaped) {
  STRCMP_EQUAL("plain-name_1.x", escape_label_value("plain-name_1.x").c_str());
  STRCMP_EQUAL("a\\\\b\\\"c\\nd", escape_label_value("a\\b\"c\nd").c_str());
  STRCMP_EQUAL("caf\xC3\xA9 \xE2\x82\xAC", escape_label_value("caf\xC3\xA9 \xE2\x82\xAC").c_str());
  // A stray byte, a truncated sequence and an overlong '/' are replaced.
  STRCMP_EQUAL("a\xEF\xBF\xBD" "b", escape_label_value("a\xFF" "b").c_str());
  STRCMP_EQUAL("x\xEF\xBF\xBD\xEF\xBF\xBD", escape_label_value("x\xE2\x82").c_str());
  STRCMP_EQUAL("\xEF\xBF\xBD\xEF\xBF\xBD", escape_label_value("\xC0\xAF").c_str());
  STRCMP_EQUAL("a\\\\b\\nc \"q\"", escape_help("a\\b\nc \"q\"").c_str());
}

TEST(Metrics, ValuesAreFormattedExactly) {
  STRCMP_EQUAL("0", format_metric_value(0).c_str());
  STRCMP_EQUAL("123456789012", format_metric_value(123456789012.0).c_str());
  STRCMP_EQUAL("9007199254740991", format_metric_value(9007199254740991.0).c_str());
  STRCMP_EQUAL("-3", format_metric_value(-3).c_str());
  STRCMP_EQUAL("0.25", format_metric_value(0.25).c_str());
  STRCMP_EQUAL("0.001", format_metric_value(0.001).c_str());
  STRCMP_EQUAL("NaN", format_metric_value(std::nan("")).c_str());
  STRCMP_EQUAL("+Inf", format_metric_value(std::numeric_limits<double>::infinity()).c_str());
  STRCMP_EQUAL("-Inf", format_metric_value(-std::numeric_limits<double>::infinity()).c_str());
}

TEST(Metrics, RenderWritesHelpTypeAndSamples) {
  std::vector<MetricFamily> f;
  f.push_back({"x_sent_bytes_total", "Bytes sent.\nSecond line \\ end", MetricType::counter,
               {{{{"kind", "data"}, {"peer", "b\"1"}}, 1400}, {{{"kind", "control"}}, 7}}});
  f.push_back({"x_peers", "Peers.", MetricType::gauge, {{{}, 2}}});
  f.push_back({"x_empty", "Nothing yet.", MetricType::gauge, {}});
  STRCMP_EQUAL(
      "# HELP x_sent_bytes_total Bytes sent.\\nSecond line \\\\ end\n"
      "# TYPE x_sent_bytes_total counter\n"
      "x_sent_bytes_total{kind=\"data\",peer=\"b\\\"1\"} 1400\n"
      "x_sent_bytes_total{kind=\"control\"} 7\n"
      "# HELP x_peers Peers.\n"
      "# TYPE x_peers gauge\n"
      "x_peers 2\n"
      "# HELP x_empty Nothing yet.\n"
      "# TYPE x_empty gauge\n",
      render_metrics(f).c_str());
}

TEST(Metrics, EveryFamilyOnceAndNamedByConvention) {
  json peers = json::array({{{"name", "b"}, {"share", "media"}, {"active", true}, {"rtt_ms", 1.5}}});
  auto fams = metrics_from_status(a_status(), peers, json::array());
  std::string text = render_metrics(fams);
  std::set<std::string> names;
  for (const MetricFamily& f : fams) {
    CHECK_TRUE_TEXT(names.insert(f.name).second, f.name.c_str());
    CHECK_TRUE_TEXT(f.name.rfind("shoal_", 0) == 0, f.name.c_str());
    bool total = f.name.size() > 6 && f.name.compare(f.name.size() - 6, 6, "_total") == 0;
    CHECK_EQUAL_TEXT(f.type == MetricType::counter, total, f.name.c_str());
    CHECK_FALSE(f.help.empty());
    LONGS_EQUAL(1, lines_with(text, "# HELP " + f.name + " ").size());
    LONGS_EQUAL(1, lines_with(text, "# TYPE " + f.name + " ").size());
  }
  CHECK_TRUE(names.count("shoal_sent_bytes_total") == 1);
  CHECK_TRUE(names.count("shoal_peer_rtt_seconds") == 1);
  CHECK_TRUE(names.count("shoal_store_bytes") == 1);
}

TEST(Metrics, StatusValuesReachTheirSeries) {
  std::string t = render_status(a_status(), json::array(), json::array());
  DOUBLES_EQUAL(1, sample(t, "shoal_build_info{version=\"0.1.0\",node=\"box-a\"}"), 0);
  DOUBLES_EQUAL(42, sample(t, "shoal_uptime_seconds"), 0);
  DOUBLES_EQUAL(10, sample(t, "shoal_sent_packets_total{kind=\"data\"}"), 0);
  DOUBLES_EQUAL(2800, sample(t, "shoal_sent_bytes_total{kind=\"repair\"}"), 0);
  DOUBLES_EQUAL(700, sample(t, "shoal_sent_bytes_total{kind=\"control\"}"), 0);
  DOUBLES_EQUAL(12600, sample(t, "shoal_received_bytes_total{kind=\"data\"}"), 0);
  DOUBLES_EQUAL(0, sample(t, "shoal_received_bytes_total{kind=\"control\"}"), 0);  // missing: 0
  DOUBLES_EQUAL(13000, sample(t, "shoal_sent_payload_bytes_total"), 0);
  DOUBLES_EQUAL(12000, sample(t, "shoal_received_payload_bytes_total"), 0);
  DOUBLES_EQUAL(3, sample(t, "shoal_dropped_packets_total{reason=\"auth\"}"), 0);
  DOUBLES_EQUAL(8, sample(t, "shoal_dropped_packets_total{reason=\"self\"}"), 0);
  DOUBLES_EQUAL(1, sample(t, "shoal_received_objects_total{result=\"bad\"}"), 0);
  DOUBLES_EQUAL(1000000, sample(t, "shoal_send_rate_bytes_per_second"), 0);
  DOUBLES_EQUAL(4, sample(t, "shoal_reassembly_events_total{event=\"spilled\"}"), 0);
  DOUBLES_EQUAL(2, sample(t, "shoal_reassembly_events_total{event=\"full\"}"), 0);
  DOUBLES_EQUAL(1, sample(t, "shoal_reassembly_events_total{event=\"evicted\"}"), 0);
  DOUBLES_EQUAL(3, sample(t, "shoal_reassembly_events_total{event=\"worker_full\"}"), 0);
  DOUBLES_EQUAL(3, sample(t, "shoal_objects_unavailable_total"), 0);
  DOUBLES_EQUAL(5, sample(t, "shoal_wants_crossed_total"), 0);
  DOUBLES_EQUAL(2816, sample(t, "shoal_repair_bytes_crossed_total"), 0);
  DOUBLES_EQUAL(9, sample(t, "shoal_parity_packets_total{event=\"sent\"}"), 0);
  DOUBLES_EQUAL(8, sample(t, "shoal_parity_packets_total{event=\"received\"}"), 0);
  DOUBLES_EQUAL(2, sample(t, "shoal_parity_packets_total{event=\"unused\"}"), 0);
  DOUBLES_EQUAL(5, sample(t, "shoal_parity_cells_rebuilt_total"), 0);
  DOUBLES_EQUAL(6, sample(t, "shoal_socket_kernel_drops_total"), 0);
  DOUBLES_EQUAL(30, sample(t, "shoal_socket_reads_total{gro=\"yes\"}"), 0);
  DOUBLES_EQUAL(10, sample(t, "shoal_socket_reads_total{gro=\"no\"}"), 0);
  DOUBLES_EQUAL(17, sample(t, "shoal_socket_send_calls_total{gso=\"yes\"}"), 0);
  DOUBLES_EQUAL(3, sample(t, "shoal_socket_send_calls_total{gso=\"no\"}"), 0);
  DOUBLES_EQUAL(1, sample(t, "shoal_pending_files{stage=\"settle\"}"), 0);
  DOUBLES_EQUAL(2, sample(t, "shoal_pending_files{stage=\"ingest\"}"), 0);
  DOUBLES_EQUAL(4, sample(t, "shoal_pending_files{stage=\"transfer\"}"), 0);
  DOUBLES_EQUAL(5, sample(t, "shoal_store_chunks"), 0);
  DOUBLES_EQUAL(123456789012.0, sample(t, "shoal_store_bytes"), 0);
  DOUBLES_EQUAL(3000, sample(t, "shoal_share_bytes{share=\"media\"}"), 0);
  DOUBLES_EQUAL(0, sample(t, "shoal_share_files{share=\"docs\"}"), 0);
  DOUBLES_EQUAL(4096, sample(t, "shoal_ingest_read_bytes_total"), 0);
  DOUBLES_EQUAL(1, sample(t, "shoal_ingest_files_total{result=\"unchanged\"}"), 0);
  DOUBLES_EQUAL(0, sample(t, "shoal_ingest_files_total{result=\"failed\"}"), 0);
}

TEST(Metrics, PeersAndTransfers) {
  json peers = json::array({
      // b restarted with a new store: the old entry is inactive, bytes add up.
      {{"name", "b"}, {"share", "media"}, {"active", false}, {"rtt_ms", 9.0}, {"bytes_from", 100}},
      {{"name", "b"}, {"share", "media"}, {"active", true}, {"rtt_ms", 2.5}, {"loss", 0.02},
       {"reported_loss", 0.125}, {"bytes_from", 50}},
      {{"name", "c"}, {"share", "media"}, {"active", true}, {"rtt_ms", nullptr}, {"loss", nullptr}},
      {{"name", "gone"}, {"share", "docs"}, {"active", false}, {"rtt_ms", 1.0}},
      {{"name", ""}, {"share", "docs"}, {"active", true}},  // not announced yet
  });
  json transfers = json::array({{{"total", 1000}, {"done", 400}}, {{"total", 10}, {"done", 10}}});
  std::string t = render_status(a_status(), peers, transfers);
  DOUBLES_EQUAL(2, sample(t, "shoal_peers{share=\"media\"}"), 0);
  DOUBLES_EQUAL(0, sample(t, "shoal_peers{share=\"docs\"}"), 0);
  DOUBLES_EQUAL(0.0025, sample(t, "shoal_peer_rtt_seconds{share=\"media\",peer=\"b\"}"), 1e-12);
  DOUBLES_EQUAL(0.02, sample(t, "shoal_peer_loss_ratio{share=\"media\",peer=\"b\",direction=\"in\"}"), 1e-12);
  DOUBLES_EQUAL(0.125, sample(t, "shoal_peer_loss_ratio{share=\"media\",peer=\"b\",direction=\"out\"}"), 0);
  DOUBLES_EQUAL(150, sample(t, "shoal_peer_received_payload_bytes_total{share=\"media\",peer=\"b\"}"), 0);
  DOUBLES_EQUAL(0, sample(t, "shoal_peer_received_payload_bytes_total{share=\"docs\",peer=\"gone\"}"), 0);
  // Not measured, or no longer active: no gauge at all rather than a stale one.
  LONGS_EQUAL(0, lines_with(t, "shoal_peer_rtt_seconds{share=\"media\",peer=\"c\"}").size());
  LONGS_EQUAL(0, lines_with(t, "shoal_peer_loss_ratio{share=\"media\",peer=\"c\"").size());
  LONGS_EQUAL(0, lines_with(t, "shoal_peer_rtt_seconds{share=\"docs\"").size());
  LONGS_EQUAL(1, lines_with(t, "shoal_peer_rtt_seconds{").size());
  DOUBLES_EQUAL(600, sample(t, "shoal_pending_transfer_bytes"), 0);
}

TEST(Metrics, NetworkDownStillRendersEveryFamily) {
  json st = a_status();
  st["net"] = {{"state", "error: cannot bind"}};
  std::string t = render_status(st, json::array(), json::array());
  DOUBLES_EQUAL(0, sample(t, "shoal_sent_bytes_total{kind=\"data\"}"), 0);
  LONGS_EQUAL(1, lines_with(t, "# TYPE shoal_dropped_packets_total counter").size());
  std::string none = render_status(json(), json(), json());
  DOUBLES_EQUAL(0, sample(none, "shoal_store_chunks"), 0);
}

TEST_GROUP(MetricsServer) {
  event_base* base = nullptr;
  void setup() override { base = event_base_new(); }
  void teardown() override { event_base_free(base); }
  std::unique_ptr<MetricsServer> start(uint16_t port = 0) {
    auto r = MetricsServer::start(base, HostPort{"127.0.0.1", port}, [] { return std::string("m_total 7\n"); });
    if (!r) FAIL(r.error().msg.c_str());
    return std::move(r).value();
  }
};

TEST(MetricsServer, GetMetricsServesTheText) {
  auto srv = start();
  CHECK(srv->port() != 0);
  std::string r;
  test::serve_while(base, [&] { r = http(srv->port(), "GET /metrics HTTP/1.0\r\n\r\n"); });
  STRCMP_CONTAINS("HTTP/1.0 200", r.c_str());
  STRCMP_CONTAINS("Content-Type: text/plain; version=0.0.4", r.c_str());
  CHECK_TRUE(r.size() >= 10 && r.compare(r.size() - 10, 10, "m_total 7\n") == 0);
  test::serve_while(base, [&] { r = http(srv->port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n"); });
  STRCMP_CONTAINS("HTTP/1.0 200", r.c_str());
}

TEST(MetricsServer, OtherPathsAndMethodsAreRefused) {
  auto srv = start();
  std::string root, other, post, del;
  test::serve_while(base, [&] {
    root = http(srv->port(), "GET / HTTP/1.0\r\n\r\n");
    other = http(srv->port(), "GET /metricsx HTTP/1.0\r\n\r\n");
    post = http(srv->port(), "POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nab");
    del = http(srv->port(), "DELETE /metrics HTTP/1.0\r\n\r\n");
  });
  STRCMP_CONTAINS("HTTP/1.0 404", root.c_str());
  STRCMP_CONTAINS("HTTP/1.0 404", other.c_str());
  STRCMP_CONTAINS("HTTP/1.0 405", post.c_str());
  STRCMP_CONTAINS("Allow: GET", post.c_str());
  STRCMP_CONTAINS("HTTP/1.0 405", del.c_str());
  CHECK_TRUE(post.find("m_total") == std::string::npos);
}

TEST(MetricsServer, BusyPortIsAnErrorNamingTheAddress) {
  auto first = start();
  auto r = MetricsServer::start(base, HostPort{"127.0.0.1", first->port()}, [] { return std::string(); });
  CHECK_FALSE(r.ok());
  std::string want = "cannot listen on 127.0.0.1:" + std::to_string(first->port()) + ": Address already in use";
  STRCMP_EQUAL(want.c_str(), r.error().msg.c_str());
  auto bad = MetricsServer::start(base, HostPort{"no-such-host", 9477}, [] { return std::string(); });
  CHECK_FALSE(bad.ok());
  STRCMP_CONTAINS("not an IPv4 address", bad.error().msg.c_str());
}
