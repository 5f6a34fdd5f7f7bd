// Times Ingester::ingest_file on one file into a fresh store, outside the
// daemon: ingest_bench STATE_DIR FILE [checkpoint]
#include <sys/time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <chrono>

#include "ingest.h"
#include "store.h"
#include <sqlite3.h>

namespace {
double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: ingest_bench STATE_DIR FILE [checkpoint]\n");
    return 2;
  }
  std::string dir = argv[1];
  std::string file = argv[2];
  auto store = shoal::Store::open(dir + "/bench.db");
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().msg.c_str());
    return 1;
  }
  if (const char* ac = std::getenv("AUTOCKPT")) {
    std::string q = std::string("PRAGMA wal_autocheckpoint = ") + ac;
    sqlite3_exec((*store)->db(), q.c_str(), nullptr, nullptr, nullptr);
  }
  size_t slash = file.rfind('/');
  shoal::IngestJob job;
  job.share = "bench";
  job.root = file.substr(0, slash);
  job.rel = file.substr(slash + 1);
  std::atomic<bool> stop{false};
  std::atomic<bool> ck_stop{false};
  std::thread ck;
  int nck = 0;
  if (const char* ckenv = std::getenv("CKTHREAD"); ckenv && *ckenv) {
    ck = std::thread([&] {
      auto c = shoal::Store::open(dir + "/bench.db");
      while (!ck_stop.load()) {
        int log = 0, done = 0;
        sqlite3_wal_checkpoint_v2((*c)->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        nck++;
        if (log - done < 2048) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  double t0 = now_s();
  shoal::IngestResult r = shoal::Ingester::ingest_file(**store, job, "bench", stop);
  double t1 = now_s();
  ck_stop = true;
  if (ck.joinable()) ck.join();
  std::printf("checkpoints %d\n", nck);
  std::printf("ingest %s: %.2f s (%s)\n", shoal::ingest_kind_name(r.kind), t1 - t0, r.error.msg.c_str());
  if (argc > 3) {
    auto st = (*store)->checkpoint();
    double t2 = now_s();
    std::printf("checkpoint: %.2f s %s\n", t2 - t1, st ? "ok" : st.error().msg.c_str());
  }
  store->reset();
  std::printf("close: %.2f s\n", now_s() - t1);
  return r.kind == shoal::IngestResult::Kind::stored ? 0 : 1;
}
