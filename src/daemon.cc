#include "daemon.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <map>
#include <vector>

#include "control.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "probe.h"
#include "replicator.h"
#include "store.h"
#include "watcher.h"

namespace shoal {
namespace {

constexpr int kShareRetrySec = 5;
constexpr int kGcDelaySec = 10;
constexpr int kGcGraceSec = 60;
// The loop's connection looks up single rows and reads chunks once each to
// serve them: a page cache that could hold them saves nothing, only B-tree
// interior pages are worth keeping (the writer keeps its 512 KiB).
constexpr int kReaderCacheKib = 256;

struct ShareState {
  ShareConfig cfg;
  std::string state = "starting";  // "ok" or "error: ..."
  bool watching = false;
  bool joined = false;             // replicating on the network
};

Status make_dirs(const std::string& path, mode_t mode) {
  std::string cur;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    cur = path.substr(0, j);
    i = j + 1;
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return errno_error("mkdir " + cur, errno);
  }
  return {};
}

struct EventDeleter {
  void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;
struct BaseDeleter {
  void operator()(event_base* b) const { event_base_free(b); }
};

class Daemon {
 public:
  explicit Daemon(const Config& cfg) : cfg_(cfg) {}
  int run();

 private:
  Status setup();
  void open_store();
  void start_share(ShareState& s);
  void on_watch(const WatchEvent& ev);
  void on_ingested(const IngestResult& r);
  void schedule_gc();
  Json handle(const Json& req);
  Json status_json();
  void start_metrics();
  Json files_json(const std::string& share);
  Json doctor_json();
  Json share_doctor_json(const ShareState& s, const std::map<std::string, uint64_t>& pending,
                         uint64_t* dirs_total, bool* dirs_complete);
  ShareState* find_share(const std::string& name);
  size_t pending_settle() const { return watcher_ ? watcher_->pending() : 0; }
  size_t pending_ingest() const { return ingester_ ? ingester_->pending() : 0; }
  void notify_status();
  // config reload
  Json reload(const char* why);
  void apply_shares(const ConfigDiff& d, const Config& next);
  void stop_share(ShareState& s);
  void renew_epoch();
  void on_epoch(const Status& st);

  static void on_signal(evutil_socket_t, short, void* arg);
  static void on_retry(evutil_socket_t, short, void* arg);
  static void on_gc(evutil_socket_t, short, void* arg);
  static void on_watchdog(evutil_socket_t, short, void* arg);

  Config cfg_;                             // replaced by a reload
  std::unique_ptr<event_base, BaseDeleter> base_;
  std::unique_ptr<Store> reader_;          // loop-thread connection for queries
  // Share roots, for chunks held in published files (both connections).
  std::shared_ptr<ShareRoots> roots_ = std::make_shared<ShareRoots>();
  std::string store_error_;                // non-empty: the store could not be opened
  std::unique_ptr<Watcher> watcher_;
  std::unique_ptr<Ingester> ingester_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<Node> node_;
  std::string net_error_;
  std::vector<ShareState> shares_;
  std::vector<EventPtr> signals_;
  EventPtr retry_, gc_, watchdog_;
  time_t started_ = time(nullptr);
  int exit_code_ = 0;
  bool renewing_ = false;                  // a new epoch is being stored (after a reload)
};

ShareState* Daemon::find_share(const std::string& name) {
  for (auto& s : shares_)
    if (s.cfg.name == name) return &s;
  return nullptr;
}

void Daemon::open_store() {
  const std::string db = cfg_.state_dir + "/shoal.db";
  auto writer = Store::open(db);
  if (!writer) {
    store_error_ = writer.error().msg;
    LOG_ERROR("store unusable: %s (move the file away to start afresh; shoald keeps running "
              "without it)", log_escape(store_error_).c_str());
    return;
  }
  auto reader = Store::open(db);
  if (!reader) {
    store_error_ = reader.error().msg;
    LOG_ERROR("store unusable: %s", log_escape(store_error_).c_str());
    return;
  }
  reader_ = std::move(reader.value());
  reader_->set_roots(roots_);
  reader_->keep_files_open(true);  // closed when idle by the replicator
  writer.value()->set_roots(roots_);
  if (auto st = reader_->set_cache_kib(kReaderCacheKib); !st)
    LOG_WARN("store: %s", log_escape(st.error().msg).c_str());
  uint64_t sender_id = 0;
  uint32_t epoch = 0;
  if (auto st = load_identity(*writer.value(), &sender_id, &epoch); !st) {
    store_error_ = st.error().msg;
    LOG_ERROR("store: %s", log_escape(store_error_).c_str());
    return;
  }
  auto in = Ingester::start(base_.get(), std::move(writer.value()), cfg_.node_name,
                            [this](const IngestResult& r) { on_ingested(r); });
  if (!in) {
    store_error_ = in.error().msg;
    return;
  }
  ingester_ = std::move(in.value());
  NodeOptions no;
  no.bind = cfg_.bind;
  no.interface = cfg_.interface;
  no.port = cfg_.port;
  no.multicast = cfg_.multicast;
  no.max_rate_bps = cfg_.max_rate_bps;
  no.node_name = cfg_.node_name;
  no.sender_id = sender_id;
  no.epoch = epoch;
  auto node = Node::create(base_.get(), no, reader_.get(), ingester_.get());
  if (!node) {
    net_error_ = node.error().msg;
    LOG_ERROR("network: %s", log_escape(net_error_).c_str());
  } else {
    node_ = std::move(node.value());
    ingester_->set_stream_sink([this](StreamBatch& b) {
      if (node_) node_->stream_batch(b);
    });
  }
  // Orphan chunks (an ingest or a transfer cut short by a crash) are
  // collected once transfers have had time to resume and claim theirs.
  schedule_gc();
}

void Daemon::start_share(ShareState& s) {
  bool created = false;
  auto key = load_or_create_key(s.cfg.key_file, &created);
  if (!key) {
    s.state = "error: " + key.error().msg;
    LOG_ERROR("share %s: %s", s.cfg.name.c_str(), log_escape(key.error().msg).c_str());
    return;
  }
  if (created)
    LOG_INFO("share %s: created key file %s; copy it to every box of this share",
             s.cfg.name.c_str(), log_escape(s.cfg.key_file).c_str());
  if (!watcher_ || !ingester_) {
    s.state = "error: store unusable";
    return;
  }
  roots_->set(s.cfg.name, s.cfg.path);
  if (node_ && !s.joined) {
    if (auto st = node_->add_share(s.cfg, *key); !st) {
      s.state = "error: " + st.error().msg;
      LOG_ERROR("share %s: %s", s.cfg.name.c_str(), log_escape(st.error().msg).c_str());
      return;
    }
    s.joined = true;
  }
  if (auto st = watcher_->add_share(s.cfg.name, s.cfg.path, s.cfg.settle_ms); !st) {
    s.state = "error: " + st.error().msg;
    LOG_WARN("share %s: %s (retrying every %d s)", s.cfg.name.c_str(),
             log_escape(st.error().msg).c_str(), kShareRetrySec);
    return;
  }
  s.watching = true;
  s.state = "ok";
  LOG_INFO("share %s: watching %s", s.cfg.name.c_str(), log_escape(s.cfg.path).c_str());
}

void Daemon::on_watch(const WatchEvent& ev) {
  ShareState* s = find_share(ev.share);
  if (s == nullptr || !ingester_) return;
  // receiveonly never turns local changes into versions.
  if (s->cfg.mode == ShareMode::receiveonly) return;
  if (ev.kind == WatchEvent::Kind::removed && ev.dir) {
    // A directory went away: every file recorded beneath it is a removal.
    if (!reader_) return;
    auto files = reader_->list_files(ev.share);
    if (!files) return;
    const std::string prefix = ev.rel + "/";
    for (const auto& f : *files) {
      if (f.path.compare(0, prefix.size(), prefix) == 0)
        ingester_->submit(IngestJob{IngestJob::Kind::removed, ev.share, s->cfg.path, f.path,
                                    s->cfg.delete_propagate});
    }
    return;
  }
  IngestJob job;
  job.kind = ev.kind == WatchEvent::Kind::ready ? IngestJob::Kind::file : IngestJob::Kind::removed;
  job.share = ev.share;
  job.root = s->cfg.path;
  job.rel = ev.rel;
  job.propagate_delete = s->cfg.delete_propagate;
  job.max_file_size = s->cfg.max_file_size;
  job.max_files = s->cfg.max_files;
  job.stream = node_ != nullptr && s->cfg.mode != ShareMode::receiveonly;
  LOG_DEBUG("share %s: %s %s", ev.share.c_str(),
            ev.kind == WatchEvent::Kind::ready ? "ready" : "removed", log_escape(ev.rel).c_str());
  ingester_->submit(std::move(job));
}

void Daemon::on_ingested(const IngestResult& r) {
  using K = IngestResult::Kind;
  if (r.share.empty() && r.kind != K::failed) return;  // housekeeping (gc) done
  switch (r.kind) {
    case K::stored:
      LOG_INFO("share %s: stored %s (%llu bytes, %u chunks, %u new)", r.share.c_str(),
               log_escape(r.rel).c_str(), static_cast<unsigned long long>(r.bytes),
               r.record.chunks, r.new_chunks);
      if (node_) node_->local_version(r.share);
      schedule_gc();
      break;
    case K::unchanged:
      LOG_DEBUG("share %s: unchanged %s", r.share.c_str(), log_escape(r.rel).c_str());
      break;
    case K::removed:
      LOG_INFO("share %s: removed %s", r.share.c_str(), log_escape(r.rel).c_str());
      if (node_) node_->local_version(r.share);
      schedule_gc();
      break;
    case K::skipped:
      LOG_DEBUG("share %s: skipped %s: %s", r.share.c_str(), log_escape(r.rel).c_str(),
                log_escape(r.error.msg).c_str());
      if (r.error.code == Errc::busy && watcher_) watcher_->rescan(r.share);
      break;
    case K::failed:
      if (r.share.empty()) {
        LOG_ERROR("store: %s", log_escape(r.error.msg).c_str());
      } else {
        LOG_ERROR("share %s: cannot ingest %s: %s", r.share.c_str(), log_escape(r.rel).c_str(),
                  log_escape(r.error.msg).c_str());
      }
      break;
  }
  notify_status();
}

void Daemon::schedule_gc() {
  if (!gc_ || evtimer_pending(gc_.get(), nullptr)) return;
  timeval tv{kGcDelaySec, 0};
  evtimer_add(gc_.get(), &tv);
}

void Daemon::notify_status() {
  size_t p = pending_settle() + pending_ingest();
  std::string line = "STATUS=" + std::to_string(shares_.size()) + " shares, " + std::to_string(p) +
                     " files pending";
  sd_notify(0, line.c_str());
}

Json Daemon::status_json() {
  Json j;
  j["ok"] = true;
  j["node"] = cfg_.node_name;
  j["version"] = SHOAL_VERSION;
  j["uptime_s"] = static_cast<int64_t>(time(nullptr) - started_);
  std::map<std::string, ShareStats> per;
  StoreStats ss;
  if (reader_) {
    if (auto r = reader_->share_stats(); r)
      for (auto& x : *r) per[x.share] = x;
    if (auto r = reader_->stats(); r) ss = *r;
  }
  Json shares = Json::array();
  for (auto& s : shares_) {
    const ShareStats& st = per[s.cfg.name];
    shares.push_back({{"name", s.cfg.name},
                      {"path", s.cfg.path},
                      {"mode", share_mode_name(s.cfg.mode)},
                      {"files", st.files},
                      {"bytes", st.bytes},
                      {"state", s.state}});
  }
  j["shares"] = shares;
  j["store"] = {{"chunks", ss.chunks},
                {"bytes", ss.chunk_bytes},
                {"state", store_error_.empty() ? std::string("ok") : "error: " + store_error_}};
  size_t transfers = node_ ? node_->transfers_pending() : 0;
  j["pending"] = {{"ingest", pending_ingest()}, {"settle", pending_settle()}, {"transfers", transfers}};
  j["peers"] = node_ ? node_->peer_count() : 0;
  if (node_) {
    j["net"] = node_->stats_json();
    j["net"]["port"] = node_->port();
    j["drops"] = j["net"]["drops"];  // also at the top, where `shoalctl status` shows them
  } else {
    j["net"] = {{"state", "error: " + net_error_}};
  }
  if (watcher_) {
    auto w = watcher_->stats();
    j["watcher"] = {{"watches", w.watches}, {"overflows", w.overflows},
                    {"skipped", w.skipped}, {"errors", w.errors}};
  }
  if (ingester_) {
    auto i = ingester_->stats();
    j["ingest"] = {{"files_stored", i.files_stored}, {"files_unchanged", i.files_unchanged},
                   {"files_failed", i.files_failed}, {"bytes_read", i.bytes_read},
                   {"chunks_new", i.chunks_new}};
  }
  return j;
}

// A metrics endpoint that cannot listen is logged, not fatal: replication matters more.
void Daemon::start_metrics() {
  if (cfg_.metrics.host.empty()) return;
  auto m = MetricsServer::start(base_.get(), cfg_.metrics, [this] {
    return render_metrics(metrics_from_status(status_json(), node_ ? node_->peers_json() : Json::array(),
                                              node_ ? node_->transfers_json() : Json::array()));
  });
  if (!m) {
    LOG_ERROR("metrics: %s; running without metrics", log_escape(m.error().msg).c_str());
    return;
  }
  metrics_ = std::move(m.value());
  LOG_INFO("metrics at http://%s:%u/metrics", cfg_.metrics.host.c_str(), metrics_->port());
}

Json Daemon::files_json(const std::string& share) {
  if (!reader_) return {{"ok", false}, {"error", "store unusable: " + store_error_}};
  if (!share.empty() && find_share(share) == nullptr)
    return {{"ok", false}, {"error", "no share named '" + share + "'"}};
  auto list = reader_->list_files(share);
  if (!list) return {{"ok", false}, {"error", list.error().msg}};
  Json arr = Json::array();
  for (auto& f : *list) {
    arr.push_back({{"share", f.share},
                   {"path", f.path},
                   {"size", f.size},
                   {"chunks", f.chunks},
                   {"state", f.state},
                   {"manifest", hash_hex(f.manifest)}});
  }
  return {{"ok", true}, {"files", arr}};
}

// A probe's outcome as JSON: its value, or {"error": msg}.
template <typename T, typename F>
Json probe_json(const Result<T>& r, F to_json) {
  if (!r) return {{"error", r.error().msg}};
  return to_json(r.value());
}

Json disk_json(const std::string& path) {
  return probe_json(probe_disk(path), [&path](const DiskFacts& f) {
    return Json{{"path", path}, {"free_bytes", f.free_bytes}, {"total_bytes", f.total_bytes},
                {"dev", f.dev}};
  });
}

// Facts about one share for `doctor`; adds its directory count to the totals.
Json Daemon::share_doctor_json(const ShareState& s, const std::map<std::string, uint64_t>& pending,
                               uint64_t* dirs_total, bool* dirs_complete) {
  constexpr uint64_t kCountMs = 500, kMaxDirs = 10000000;
  Json j{{"name", s.cfg.name}, {"path", s.cfg.path}, {"state", s.state},
         {"key_file", s.cfg.key_file}};
  Result<uint32_t> mode = probe_mode(s.cfg.key_file);
  if (mode) j["key_mode"] = *mode;
  else j["key_error"] = mode.error().msg;
  j["disk"] = disk_json(s.cfg.path);
  auto it = pending.find(s.cfg.name);
  j["pending_bytes"] = it == pending.end() ? 0 : it->second;
  Result<DirCount> dc = count_dirs(s.cfg.path, kCountMs, kMaxDirs);
  if (dc) {
    j["dirs"] = dc->dirs;
    j["dirs_complete"] = dc->complete;
    *dirs_total += dc->dirs;
    *dirs_complete = *dirs_complete && dc->complete;
  }
  return j;
}

// Everything `shoalctl doctor` judges (the judging is in doctor.cc, client side).
Json Daemon::doctor_json() {
  std::map<std::string, uint64_t> pending;
  Json net = node_ ? node_->doctor_json() : Json::array();
  if (node_) {
    for (const Json& t : node_->transfers_json()) {
      uint64_t done = t.value("done", uint64_t{0}), total = t.value("total", uint64_t{0});
      pending[t.value("share", std::string())] += total - std::min(done, total);
    }
  }
  uint64_t dirs = 0;
  bool complete = true;
  Json shares = Json::array();
  for (const auto& s : shares_) {
    Json j = share_doctor_json(s, pending, &dirs, &complete);
    for (const Json& n : net)
      if (n.value("share", std::string()) == s.cfg.name) j["net"] = n;
    shares.push_back(std::move(j));
  }
  Json j{{"ok", true}, {"node", cfg_.node_name}, {"multicast", cfg_.multicast}, {"shares", shares}};
  j["store"] = store_error_.empty() ? std::string("ok") : "error: " + store_error_;
  j["network"] = node_ ? std::string("ok") : "error: " + net_error_;
  j["state_disk"] = disk_json(cfg_.state_dir);
  Json ino{{"dirs", dirs}, {"dirs_complete", complete}};
  if (auto max = read_uint_file("/proc/sys/fs/inotify/max_user_watches")) ino["max_user_watches"] = *max;
  if (watcher_) {
    ino["watches"] = watcher_->stats().watches;
    ino["errors"] = watcher_->stats().errors;
  }
  j["inotify"] = ino;
  return j;
}

Json Daemon::handle(const Json& req) {
  const std::string cmd = req["cmd"].get<std::string>();
  std::string share;
  if (req.contains("share")) {
    if (!req["share"].is_string()) return {{"ok", false}, {"error", "'share' must be a string"}};
    share = req["share"].get<std::string>();
  }
  if (cmd == "status") return status_json();
  if (cmd == "files") return files_json(share);
  if (cmd == "doctor") return doctor_json();
  if (cmd == "rescan") {
    if (!share.empty() && find_share(share) == nullptr)
      return {{"ok", false}, {"error", "no share named '" + share + "'"}};
    if (watcher_) watcher_->rescan(share);
    return {{"ok", true}};
  }
  if (cmd == "peers") return {{"ok", true}, {"peers", node_ ? node_->peers_json() : Json::array()}};
  if (cmd == "transfers")
    return {{"ok", true}, {"transfers", node_ ? node_->transfers_json() : Json::array()}};
  if (cmd == "reload") return reload("shoalctl reload");
  return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

void Daemon::on_signal(evutil_socket_t sig, short, void* arg) {
  auto* d = static_cast<Daemon*>(arg);
  if (sig == SIGHUP) {
    d->reload("SIGHUP");
    return;
  }
  LOG_INFO("signal %d: stopping", static_cast<int>(sig));
  sd_notify(0, "STOPPING=1");
  event_base_loopexit(d->base_.get(), nullptr);
}

void Daemon::on_retry(evutil_socket_t, short, void* arg) {
  auto* d = static_cast<Daemon*>(arg);
  d->renew_epoch();
  if (d->renewing_) return;  // on_epoch starts the shares waiting for it
  for (auto& s : d->shares_)
    if (!s.watching) d->start_share(s);
}

void Daemon::on_gc(evutil_socket_t, short, void* arg) {
  auto* d = static_cast<Daemon*>(arg);
  // Chunks of a version being fetched are not referenced by any manifest
  // until it is published: never collect while a transfer is pending, nor
  // before interrupted transfers have had time to resume after a start.
  bool busy = (d->node_ && d->node_->transfers_pending() > 0) ||
              time(nullptr) - d->started_ < kGcGraceSec;
  if (busy) {
    timeval tv{kGcDelaySec, 0};
    evtimer_add(d->gc_.get(), &tv);
    return;
  }
  if (d->ingester_) d->ingester_->submit(IngestJob{IngestJob::Kind::gc, "", "", ""});
}

void Daemon::on_watchdog(evutil_socket_t, short, void*) { sd_notify(0, "WATCHDOG=1"); }

Status Daemon::setup() {
  evthread_use_pthreads();
  // Timers to the microsecond (timerfd) rather than epoll's millisecond: the
  // pacer sleeps a fraction of a millisecond between DATA batches; rounded
  // up to whole milliseconds, a sender at max_rate=1gbit averaged ~890 Mbit/s.
  {
    std::unique_ptr<event_config, decltype(&event_config_free)> ec(event_config_new(), &event_config_free);
    if (ec) event_config_set_flag(ec.get(), EVENT_BASE_FLAG_PRECISE_TIMER);
    base_.reset(ec ? event_base_new_with_config(ec.get()) : nullptr);
    if (!base_) base_.reset(event_base_new());
  }
  if (!base_) return make_error(Errc::internal, "event_base_new failed");
  if (auto st = make_dirs(cfg_.state_dir, 0700); !st) return st;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    signals_.emplace_back(evsignal_new(base_.get(), sig, &Daemon::on_signal, this));
    evsignal_add(signals_.back().get(), nullptr);
  }
  retry_.reset(event_new(base_.get(), -1, EV_PERSIST, &Daemon::on_retry, this));
  gc_.reset(evtimer_new(base_.get(), &Daemon::on_gc, this));
  timeval rt{kShareRetrySec, 0};
  evtimer_add(retry_.get(), &rt);

  open_store();
  auto w = Watcher::create(base_.get(), [this](const WatchEvent& ev) { on_watch(ev); });
  if (!w) return w.error();
  watcher_ = std::move(w.value());
  for (auto& sc : cfg_.shares) shares_.push_back(ShareState{sc, "starting", false});
  for (auto& s : shares_) start_share(s);

  auto cs = ControlServer::listen(base_.get(), cfg_.control_socket,
                                  [this](const Json& req) { return handle(req); });
  if (!cs) return cs.error();
  control_ = std::move(cs.value());
  start_metrics();

  uint64_t wd_usec = 0;
  if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
    watchdog_.reset(event_new(base_.get(), -1, EV_PERSIST, &Daemon::on_watchdog, this));
    timeval tv{static_cast<time_t>(wd_usec / 2000000), static_cast<suseconds_t>((wd_usec / 2) % 1000000)};
    evtimer_add(watchdog_.get(), &tv);
  }
  return {};
}

int Daemon::run() {
  std::signal(SIGPIPE, SIG_IGN);
  if (auto st = setup(); !st) {
    LOG_ERROR("%s", log_escape(st.error().msg).c_str());
    return 1;
  }
  LOG_INFO("shoald %s started: node %s, %zu share(s), control %s", SHOAL_VERSION,
           log_escape(cfg_.node_name).c_str(), shares_.size(), log_escape(cfg_.control_socket).c_str());
  sd_notify(0, "READY=1");
  notify_status();
  event_base_dispatch(base_.get());
  // Order matters: the control socket goes first so no request sees a
  // half-torn-down daemon; the worker stops before the store it owns closes.
  control_.reset();
  metrics_.reset();
  watcher_.reset();
  ingester_.reset();  // joins the worker: no post completes after this
  node_.reset();
  reader_.reset();
  signals_.clear();
  retry_.reset();
  gc_.reset();
  watchdog_.reset();
  LOG_INFO("stopped");
  return exit_code_;
}

// ---- config reload ----------------------------------------------------------

// Re-reads cfg_.file. A config with errors changes nothing; otherwise shares
// are added, removed or restarted and log level and max_rate change in place
// (docs/OPERATIONS.md, "Changing the config").
Json Daemon::reload(const char* why) {
  LOG_INFO("%s: reloading %s", why, log_escape(cfg_.file).c_str());
  sd_notify(0, "RELOADING=1");
  ConfigLoad load = load_config(cfg_.file);
  if (!load.ok()) {
    Json errors = Json::array();
    std::string all;
    for (const ConfigError& e : load.errors) {
      LOG_ERROR("%s", log_escape(e.format()).c_str());
      errors.push_back(e.format());
      all += (all.empty() ? "" : "\n") + e.format();
    }
    LOG_ERROR("config not reloaded: %zu error(s); still running the previous config",
              load.errors.size());
    sd_notify(0, "READY=1");
    return {{"ok", false}, {"error", all}, {"errors", errors}};
  }
  ConfigDiff d = diff_configs(cfg_, load.config);
  for (const std::string& k : d.restart) LOG_WARN("%s changed: restart shoald to apply", k.c_str());
  Config next = reloadable_config(cfg_, load.config);
  if (next.log_level != cfg_.log_level) log_set_level(next.log_level);
  if (node_ && next.max_rate_bps != cfg_.max_rate_bps) node_->set_max_rate(next.max_rate_bps);
  apply_shares(d, next);
  cfg_ = std::move(next);
  LOG_INFO("config reloaded: %s", log_escape(reload_summary(d)).c_str());
  sd_notify(0, "READY=1");
  notify_status();
  return reload_reply(cfg_.file, d);
}

// Removed and changed shares stop; added and changed ones start as at
// start-up. Untouched shares keep running, transfers and all.
void Daemon::apply_shares(const ConfigDiff& d, const Config& next) {
  auto listed = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  for (auto& s : shares_)
    if (listed(d.removed, s.cfg.name) || listed(d.changed, s.cfg.name)) stop_share(s);
  std::vector<ShareState> states;  // in config order, as status lists them
  for (const ShareConfig& sc : next.shares) {
    ShareState* cur = find_share(sc.name);
    if (cur != nullptr && !listed(d.changed, sc.name)) {
      states.push_back(std::move(*cur));
    } else {
      states.push_back(ShareState{sc, "starting", false});
    }
  }
  shares_ = std::move(states);
  // A restarted share's key needs a new epoch first; on_epoch starts it.
  renew_epoch();
  if (renewing_) return;
  for (auto& s : shares_)
    if (!s.watching && s.state == "starting") start_share(s);
}

void Daemon::stop_share(ShareState& s) {
  if (watcher_) watcher_->remove_share(s.cfg.name);
  if (node_ && s.joined) node_->remove_share(s.cfg.name);
  s.watching = false;
  s.joined = false;
  LOG_INFO("share %s: stopped", s.cfg.name.c_str());
}

void Daemon::renew_epoch() {
  if (!node_ || renewing_ || !node_->epoch_spent()) return;
  renewing_ = node_->renew_epoch([this](const Status& st) { on_epoch(st); });
}

void Daemon::on_epoch(const Status& st) {
  renewing_ = false;
  if (!st)
    LOG_ERROR("cannot store a new epoch: %s (shares waiting for it are retried every %d s)",
              log_escape(st.error().msg).c_str(), kShareRetrySec);
  for (auto& s : shares_)
    if (!s.watching) start_share(s);
}

}  // namespace

int run_daemon(const Config& cfg) {
  Daemon d(cfg);
  return d.run();
}

}  // namespace shoal
