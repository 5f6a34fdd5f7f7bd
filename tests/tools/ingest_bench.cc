// Times Ingester::ingest_file of one file into the store in STATE_DIR
// (bench.db, created if needed), outside the daemon, so the worker's code
// path can be measured and profiled (perf record) on its own:
//   ingest_bench STATE_DIR FILE
#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>

#include "ingest.h"
#include "store.h"

namespace {
double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: ingest_bench STATE_DIR FILE\n");
    return 2;
  }
  const std::string file = argv[2];
  auto store = shoal::Store::open(std::string(argv[1]) + "/bench.db");
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().msg.c_str());
    return 1;
  }
  const size_t slash = file.rfind('/');
  shoal::IngestJob job;
  job.share = "bench";
  job.root = slash == std::string::npos ? "." : file.substr(0, slash);
  job.rel = slash == std::string::npos ? file : file.substr(slash + 1);
  std::atomic<bool> stop{false};
  const double t0 = now_s();
  shoal::IngestResult r = shoal::Ingester::ingest_file(**store, job, "bench", stop);
  const double t1 = now_s();
  std::printf("ingest %s: %.2f s, %llu bytes, %u chunks (%u new)%s%s\n",
              shoal::ingest_kind_name(r.kind), t1 - t0, static_cast<unsigned long long>(r.bytes),
              r.record.chunks, r.new_chunks, r.error.msg.empty() ? "" : ": ",
              r.error.msg.c_str());
  store->reset();
  std::printf("close: %.2f s\n", now_s() - t1);
  return r.kind == shoal::IngestResult::Kind::stored ? 0 : 1;
}
