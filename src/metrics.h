// Prometheus metrics: a pure renderer of the text exposition format 0.0.4,
// the mapping from the daemon's status JSON (what `shoalctl status --json`,
// `peers --json` and `transfers --json` show) to metric families, and a
// small HTTP server (libevent evhttp on the daemon's loop) for GET /metrics.
// docs/OPERATIONS.md lists the metrics and what each one counts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "parse.h"
#include "result.h"

struct event_base;
struct evhttp;
struct evhttp_request;

namespace shoal {

enum class MetricType { counter, gauge };

struct MetricSample {
  std::vector<std::pair<std::string, std::string>> labels;  // name (valid), value (any text)
  double value = 0;
};

// One family: every sample shares its name, help and type. Counters are
// named ..._total by the caller; the renderer does not rename.
struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::gauge;
  std::vector<MetricSample> samples;
};

// A label value as the exposition format wants it inside quotes: \ " and
// newline escaped; each byte that is not part of valid UTF-8 becomes U+FFFD.
std::string escape_label_value(std::string_view v);
// HELP text: \ and newline escaped (quotes stay as they are).
std::string escape_help(std::string_view v);
// A sample value: integers exactly (below 2^53), others in the shortest form
// that reads back the same; NaN, +Inf, -Inf as the format spells them.
std::string format_metric_value(double v);

// The text exposition (version 0.0.4) of `families`, in the given order:
// HELP and TYPE once per family, then its samples. A family without
// samples still gets its HELP and TYPE lines.
std::string render_metrics(const std::vector<MetricFamily>& families);

// The families shoald exports, from its status object and its peers and
// transfers arrays (the control socket's replies). Missing fields read as
// zero or are left out; never fails.
std::vector<MetricFamily> metrics_from_status(const nlohmann::json& status,
                                              const nlohmann::json& peers,
                                              const nlohmann::json& transfers);

// Serves GET /metrics on one TCP address with the text `render` returns
// (called on the loop thread at every scrape). Other paths get 404, other
// methods 405. Lives on the caller's event_base; destroy it before the base.
class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  // Listens on `at` (IPv4 host, port; port 0 picks one). Errors name the
  // address and the reason (address in use, not local, ...).
  static Result<std::unique_ptr<MetricsServer>> start(event_base* base, const HostPort& at,
                                                      Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  uint16_t port() const { return port_; }  // the bound port

 private:
  MetricsServer() = default;
  static void on_request(evhttp_request* req, void* arg);
  evhttp* http_ = nullptr;
  Render render_;
  uint16_t port_ = 0;
};

}  // namespace shoal
