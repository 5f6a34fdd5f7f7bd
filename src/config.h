// The typed configuration: one struct, filled by one INI parser (inih), validated
// in one place. Errors carry FILE:LINE so an admin can find the bad line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "log.h"
#include "parse.h"
#include "result.h"

namespace shoal {

enum class ShareMode { sendreceive, sendonly, receiveonly };
const char* share_mode_name(ShareMode m);

// Which missing chunk of a file to ask for first: the lowest offset (files
// fill front to back, so a partial file is useful early) or the one the
// fewest peers announce (spreads copies, so a leaving source hurts less).
enum class ShareOrder { lowest, rarest };
const char* share_order_name(ShareOrder o);

constexpr uint64_t kDefaultMaxFileSize = uint64_t{1} << 40;  // 1 TiB
constexpr uint64_t kDefaultMaxFiles = 1000000;
constexpr uint64_t kMaxMaxFiles = UINT32_MAX;

struct ShareConfig {
  std::string name;            // from "[share NAME]"; local to this box
  std::string path;            // absolute after load (resolved against the config dir)
  HostPort group;              // multicast group: host is an IPv4 in 224.0.0.0/4
  std::string key_file;        // absolute after load; default /etc/shoal/NAME.key
  ShareMode mode = ShareMode::sendreceive;
  std::vector<HostPort> peers; // static unicast peers
  uint32_t settle_ms = 500;    // 0..3600000
  ShareOrder order = ShareOrder::lowest;
  bool delete_propagate = false;  // "delete = propagate": a local delete removes the file on peers
  // Bounds on what the share takes in, from peers and from its own folder
  // (never 0: a 0 would read as "nothing allowed", so it is rejected).
  uint64_t max_file_size = kDefaultMaxFileSize;  // bytes, >= 1
  uint64_t max_files = kDefaultMaxFiles;         // stored files, 1..kMaxMaxFiles
  int line = 0;                // line of the [share] header, for later messages
};

struct Config {
  std::string file;            // the config file as given
  // [node]
  std::string node_name;       // default: gethostname()
  std::string state_dir = "/var/lib/shoal";  // absolute after load
  LogLevel log_level = LogLevel::info;
  // [net]
  std::string bind = "0.0.0.0";  // IPv4 address
  std::string interface;         // empty: kernel's choice
  uint16_t port = 7788;          // 0 = pick one
  uint64_t max_rate_bps = 1000000000ULL;
  bool multicast = true;
  // [control]
  std::string control_socket = "/run/shoal/shoald.sock";  // absolute after load
  HostPort metrics;              // Prometheus endpoint (IPv4:port); empty host: off
  std::vector<ShareConfig> shares;
};

// One problem found in a config file; format() gives "FILE:LINE: message",
// or "FILE: message" when line is 0 (a whole-file problem: unreadable, no
// [share]). load_config() lists errors by line, whole-file ones last.
struct ConfigError {
  std::string file;
  int line = 0;  // 0 when the problem is not on one line (e.g. no [share])
  std::string msg;
  std::string format() const;
};

struct ConfigLoad {
  Config config;
  std::vector<ConfigError> errors;  // empty means the config is valid
  bool ok() const { return errors.empty(); }
};

// Reads and validates `path` (at most 1 MiB, lines at most 198 characters).
// Collects every error it can find (not just the first). Relative paths
// inside resolve against the config file's directory (made absolute, symlinks
// resolved). Does not touch key files or state dirs (that is start-up's job).
// Not thread-safe: inih's options are process-wide globals.
ConfigLoad load_config(const std::string& path);

// Same, from text in memory; `name` is used as FILE in messages and `base_dir`
// resolves relative paths. For tests and the fuzzer.
ConfigLoad parse_config(const std::string& text, const std::string& name,
                        const std::string& base_dir);

// Loads the 256-bit share key from `path` (64 hex digits on one line) and
// returns its 32 raw bytes. When the file does not exist, creates it (mode
// 0600, O_EXCL, random bytes from RAND_bytes, fsynced), sets *created (may be
// null) and returns the new key; the directory must exist. Errc::invalid for
// bad content or a file that group or others may access (mode & 077).
Result<std::string> load_or_create_key(const std::string& path, bool* created);

}  // namespace shoal
