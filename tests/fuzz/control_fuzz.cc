// libFuzzer target for both ends of the control socket: the daemon's request
// parser (parse_control_request) on the whole input as a line, and shoalctl's
// reply formatting on whatever JSON the input holds (a hostile process may
// sit on the socket instead of shoald). Neither may throw or crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <utility>

#include "control.h"
#include "ctl.h"
#include "doctor.h"
#include "progress.h"

using namespace shoal;

namespace {

void format_all(const Json& r) {
  (void)format_status(r);
  (void)format_files(r);
  (void)format_peers(r);
  (void)format_transfers(r);
  (void)format_json(r);
  (void)format_findings(doctor_findings(r));
  ProgressState st;
  PlainMemo memo;
  for (uint64_t t : {0, 0, 500}) {  // new, same instant, later: every rate path
    progress_update(&st, r, t);
    (void)progress_lines(st, t == 0 ? 20 : 200);
    (void)progress_changes(st, &memo);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  try {
    Result<Json> req = parse_control_request(line);
    if (req && (!req->is_object() || !(*req)["cmd"].is_string())) {
      std::fprintf(stderr, "control_fuzz: accepted a request without a string cmd\n");
      std::abort();
    }
    Json reply = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (reply.is_discarded()) return 0;
    format_all(reply);
    // Replies nest the interesting parts one level down; put the input there
    // too so arbitrary shapes reach every field accessor.
    // Moved, not copied: nlohmann copies recursively, and a deep input
    // (run with a large -max_len) would overflow the stack here, not in ctl.
    for (const char* key : {"store", "pending", "drops", "shares", "files", "peers", "transfers",
                            "inotify", "state_disk", "net", "disk"}) {
      Json wrapped = Json::object();
      wrapped["ok"] = true;
      wrapped[key] = std::move(reply);
      format_all(wrapped);
      reply = std::move(wrapped[key]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "control_fuzz: exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
