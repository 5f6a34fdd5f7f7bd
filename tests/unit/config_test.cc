#include "config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CppUTest/TestHarness.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace shoal;

namespace {

const char* kShare = "[share media]\npath = /srv/media\ngroup = 239.255.77.1:7700\n";

ConfigLoad parse(const std::string& text) { return parse_config(text, "t.conf", "/etc/shoal"); }

// All errors, formatted, one per line: what `shoald -t` would print.
std::string errors_of(const ConfigLoad& l) {
  std::string out;
  for (const auto& e : l.errors) out += e.format() + "\n";
  return out;
}

// Expects exactly one error, at `line`, with message `msg`.
void check_one_error(const std::string& text, int line, const std::string& msg) {
  ConfigLoad l = parse(text);
  STRCMP_EQUAL(("t.conf:" + std::to_string(line) + ": " + msg + "\n").c_str(), errors_of(l).c_str());
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& data, mode_t mode) {
  std::ofstream(path, std::ios::binary) << data;
  chmod(path.c_str(), mode);
}

}  // namespace

TEST_GROUP(Config) {
  std::string dir;
  void setup() override {
    char tmpl[] = "/tmp/shoal-config-test.XXXXXX";
    CHECK_TRUE(mkdtemp(tmpl) != nullptr);
    char real[PATH_MAX];
    CHECK_TRUE(realpath(tmpl, real) != nullptr);
    dir = real;
  }
  void teardown() override { std::filesystem::remove_all(dir); }
};

TEST(Config, DefaultsWithOnlyOneShare) {
  ConfigLoad l = parse(kShare);
  CHECK_TRUE(l.ok());
  const Config& c = l.config;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  STRCMP_EQUAL(host, c.node_name.c_str());
  STRCMP_EQUAL("t.conf", c.file.c_str());
  STRCMP_EQUAL("/var/lib/shoal", c.state_dir.c_str());
  CHECK_TRUE(c.log_level == LogLevel::info);
  STRCMP_EQUAL("0.0.0.0", c.bind.c_str());
  STRCMP_EQUAL("", c.interface.c_str());
  CHECK_EQUAL(7788, c.port);
  CHECK_EQUAL(1000000000ULL, c.max_rate_bps);
  CHECK_TRUE(c.multicast);
  STRCMP_EQUAL("/run/shoal/shoald.sock", c.control_socket.c_str());
  CHECK_EQUAL(1u, c.shares.size());
  const ShareConfig& s = c.shares[0];
  STRCMP_EQUAL("media", s.name.c_str());
  STRCMP_EQUAL("/srv/media", s.path.c_str());
  STRCMP_EQUAL("239.255.77.1", s.group.host.c_str());
  CHECK_EQUAL(7700, s.group.port);
  STRCMP_EQUAL("/etc/shoal/media.key", s.key_file.c_str());
  CHECK_TRUE(s.mode == ShareMode::sendreceive);
  CHECK_TRUE(s.peers.empty());
  CHECK_EQUAL(500u, s.settle_ms);
  CHECK_TRUE(s.order == ShareOrder::lowest);
  CHECK_FALSE(s.delete_propagate);
  CHECK_EQUAL(uint64_t{1} << 40, s.max_file_size);
  CHECK_EQUAL(1000000u, s.max_files);
  CHECK_EQUAL(1, s.line);
}

TEST(Config, ShareLimits) {
  ConfigLoad l = parse(std::string(kShare) + "max_file_size = 512m\nmax_files = 3\n");
  STRCMP_EQUAL("", errors_of(l).c_str());
  CHECK_EQUAL(512ULL << 20, l.config.shares[0].max_file_size);
  CHECK_EQUAL(3u, l.config.shares[0].max_files);
  l = parse(std::string(kShare) + "max_file_size = 1\nmax_files = 4294967295\n");
  STRCMP_EQUAL("", errors_of(l).c_str());
  CHECK_EQUAL(1u, l.config.shares[0].max_file_size);
  CHECK_EQUAL(4294967295ULL, l.config.shares[0].max_files);
  check_one_error(std::string(kShare) + "max_file_size = 0\n", 4,
                  "bad value for max_file_size: must be at least 1 byte (there is no 'unlimited'; use e.g. 16t)");
  check_one_error(std::string(kShare) + "max_file_size = 2q\n", 4,
                  "bad value for max_file_size: bad size unit in '2q' (use k, m, g or t)");
  check_one_error(std::string(kShare) + "max_files = 0\n", 4,
                  "bad value for max_files: must be at least 1 (there is no 'unlimited'; use a large number)");
  check_one_error(std::string(kShare) + "max_files = 4294967296\n", 4,
                  "bad value for max_files: value 4294967296 out of range [1, 4294967295]");
  check_one_error(std::string(kShare) + "max_files = 1k\n", 4,
                  "bad value for max_files: not a number: '1k'");
}

TEST(Config, EveryKeyIsApplied) {
  ConfigLoad l = parse(
      "[node]\n"
      "name = box-a                ; default: hostname\n"
      "state_dir = /var/lib/x\n"
      "log_level = debug\n"
      "[net]\n"
      "bind = 10.1.2.3\n"
      "interface = eth0\n"
      "port = 0\n"
      "max_rate = 250mbit\n"
      "multicast = off\n"
      "[control]\n"
      "socket = /run/x.sock\n"
      "[share a]\n"
      "path = /srv/a\n"
      "group = 224.0.0.251:1\n"
      "key_file = /k/a.key\n"
      "mode = receiveonly\n"
      "peers = 10.0.0.2:7788 , host-b:9\n"
      "settle_ms = 3600000\n"
      "order = rarest\n"
      "delete = propagate\n"
      "[share b]\n"
      "group = 239.255.77.1:7701\n"
      "path = /srv/b\n"
      "mode = sendonly\n"
      "order = lowest\n"
      "delete = keep\n");
  STRCMP_EQUAL("", errors_of(l).c_str());
  const Config& c = l.config;
  STRCMP_EQUAL("box-a", c.node_name.c_str());
  STRCMP_EQUAL("/var/lib/x", c.state_dir.c_str());
  CHECK_TRUE(c.log_level == LogLevel::debug);
  STRCMP_EQUAL("10.1.2.3", c.bind.c_str());
  STRCMP_EQUAL("eth0", c.interface.c_str());
  CHECK_EQUAL(0, c.port);
  CHECK_EQUAL(250000000ULL, c.max_rate_bps);
  CHECK_FALSE(c.multicast);
  STRCMP_EQUAL("/run/x.sock", c.control_socket.c_str());
  CHECK_EQUAL(2u, c.shares.size());
  const ShareConfig& a = c.shares[0];
  STRCMP_EQUAL("/k/a.key", a.key_file.c_str());
  CHECK_TRUE(a.mode == ShareMode::receiveonly);
  CHECK_EQUAL(2u, a.peers.size());
  STRCMP_EQUAL("10.0.0.2", a.peers[0].host.c_str());
  CHECK_EQUAL(7788, a.peers[0].port);
  STRCMP_EQUAL("host-b", a.peers[1].host.c_str());
  CHECK_EQUAL(9, a.peers[1].port);
  CHECK_EQUAL(3600000u, a.settle_ms);
  CHECK_TRUE(a.order == ShareOrder::rarest);
  CHECK_TRUE(a.delete_propagate);
  CHECK_EQUAL(13, a.line);
  const ShareConfig& b = c.shares[1];
  CHECK_TRUE(b.mode == ShareMode::sendonly);
  CHECK_TRUE(b.order == ShareOrder::lowest);
  CHECK_FALSE(b.delete_propagate);
  CHECK_EQUAL(7701, b.group.port);
  CHECK_EQUAL(22, b.line);
}

TEST(Config, RelativePathsResolveAgainstBaseDir) {
  ConfigLoad l = parse(
      "[node]\nstate_dir = ../var\n"
      "[control]\nsocket = run/./s.sock\n"
      "[share d]\npath = ./drop/\ngroup = 239.1.1.1:1\nkey_file = keys/../d.key\n");
  STRCMP_EQUAL("", errors_of(l).c_str());
  STRCMP_EQUAL("/etc/var", l.config.state_dir.c_str());
  STRCMP_EQUAL("/etc/shoal/run/s.sock", l.config.control_socket.c_str());
  STRCMP_EQUAL("/etc/shoal/drop", l.config.shares[0].path.c_str());
  // ".." after a named part may cross a symlink, so it is left to the kernel.
  STRCMP_EQUAL("/etc/shoal/keys/../d.key", l.config.shares[0].key_file.c_str());
  ConfigLoad up = parse_config("[node]\nstate_dir = ../../../x\n" + std::string(kShare), "t", "/a");
  STRCMP_EQUAL("/x", up.config.state_dir.c_str());
}

TEST(Config, LoadConfigUsesTheFilesDirectory) {
  std::filesystem::create_directory(dir + "/etc");
  spit(dir + "/etc/s.conf", "[node]\nstate_dir = ../var\n[share d]\npath = drop\ngroup = 239.1.1.1:1\n", 0644);
  std::string rel = std::filesystem::relative(dir + "/etc/s.conf").string();
  ConfigLoad l = load_config(rel);
  STRCMP_EQUAL("", errors_of(l).c_str());
  STRCMP_EQUAL(rel.c_str(), l.config.file.c_str());
  STRCMP_EQUAL((dir + "/var").c_str(), l.config.state_dir.c_str());
  STRCMP_EQUAL((dir + "/etc/drop").c_str(), l.config.shares[0].path.c_str());
}

TEST(Config, UnreadableFileIsALineZeroError) {
  ConfigLoad l = load_config(dir + "/missing.conf");
  CHECK_FALSE(l.ok());
  STRCMP_EQUAL((dir + "/missing.conf: cannot read: No such file or directory\n").c_str(), errors_of(l).c_str());
  ConfigLoad d = load_config(dir);
  STRCMP_EQUAL((dir + ": not a regular file\n").c_str(), errors_of(d).c_str());
}

TEST(Config, FormatWithAndWithoutLine) {
  STRCMP_EQUAL("a.conf:7: boom", (ConfigError{"a.conf", 7, "boom"}).format().c_str());
  STRCMP_EQUAL("a.conf: boom", (ConfigError{"a.conf", 0, "boom"}).format().c_str());
}

TEST(Config, KeyErrors) {
  check_one_error(std::string(kShare) + "[net]\nmax_rat = 1gbit\n", 5, "unknown key 'max_rat' in [net]");
  check_one_error("[net]\nport = 70000\n" + std::string(kShare), 2,
                  "bad value for port: value 70000 out of range [0, 65535]");
  check_one_error(std::string(kShare) + "bogus = 1\n", 4, "unknown key 'bogus' in [share media]");
  check_one_error("port = 1\n" + std::string(kShare), 1, "key 'port' is outside any section");
  check_one_error("[net]\nport = 1\nport = 2\n" + std::string(kShare), 3,
                  "duplicate key 'port' in [net] (first set at line 2)");
  check_one_error("[node]\nstate_dir =\n" + std::string(kShare), 2, "bad value for state_dir: no value given");
}

TEST(Config, ValueErrors) {
  check_one_error("[node]\nlog_level = loud\n" + std::string(kShare), 2,
                  "bad value for log_level: 'loud' is not one of error, warn, info, debug");
  check_one_error("[node]\nname = a/b\n" + std::string(kShare), 2,
                  "bad value for name: 'a/b' is not 1-64 characters of A-Z a-z 0-9 . _ -");
  check_one_error("[net]\nbind = host.lan\n" + std::string(kShare), 2,
                  "bad value for bind: 'host.lan' is not an IPv4 address");
  check_one_error("[net]\ninterface = 0123456789abcdef\n" + std::string(kShare), 2,
                  "bad value for interface: '0123456789abcdef' is not an interface name "
                  "(1-15 characters, no '/', ':' or spaces)");
  check_one_error("[net]\nmax_rate = 1gb\n" + std::string(kShare), 2,
                  "bad value for max_rate: bad rate unit 'gb' (use kbit, mbit or gbit)");
  check_one_error("[net]\nmulticast = maybe\n" + std::string(kShare), 2,
                  "bad value for multicast: 'maybe' is not on or off");
  check_one_error(std::string(kShare) + "mode = both\n", 4,
                  "bad value for mode: 'both' is not one of sendreceive, sendonly, receiveonly");
  check_one_error(std::string(kShare) + "order = random\n", 4,
                  "bad value for order: 'random' is not one of lowest, rarest");
  check_one_error(std::string(kShare) + "order = Rarest\n", 4,
                  "bad value for order: 'Rarest' is not one of lowest, rarest");
  check_one_error(std::string(kShare) + "delete = yes\n", 4,
                  "bad value for delete: 'yes' is not one of keep, propagate");
  check_one_error(std::string(kShare) + "delete =\n", 4, "bad value for delete: no value given");
  check_one_error(std::string(kShare) + "settle_ms = 3600001\n", 4,
                  "bad value for settle_ms: value 3600001 out of range [0, 3600000]");
  check_one_error(std::string(kShare) + "peers = a:1,,b:2\n", 4, "bad value for peers: empty entry in the peer list");
  check_one_error("[share m]\npath = /m\ngroup = 10.0.0.1:7700\n", 3,
                  "bad value for group: '10.0.0.1' is not an IPv4 multicast address (224.0.0.0 to 239.255.255.255)");
  check_one_error("[share m]\npath = /m\ngroup = 239.0.0.1:0\n", 3,
                  "bad value for group: bad port in '239.0.0.1:0': value 0 out of range [1, 65535]");
  std::string long_sock = "[control]\nsocket = /" + std::string(107, 's') + "\n" + kShare;
  check_one_error(long_sock, 2, "bad value for socket: '/" + std::string(107, 's') +
                                    "' is longer than 107 bytes, the limit for a unix socket path");
}

TEST(Config, SectionErrors) {
  check_one_error("[network]\nport = 1\n" + std::string(kShare), 1, "unknown section [network]");
  check_one_error("[share media]\ngroup = 239.255.77.1:7700\n", 1, "[share media] is missing required key 'path'");
  check_one_error("[share media]\npath = /x\n", 1, "[share media] is missing required key 'group'");
  check_one_error("[share]\npath = /x\n" + std::string(kShare), 1, "[share] needs a name, e.g. [share media]");
  check_one_error("[share a:b]\npath = /x\ngroup = 239.1.1.1:1\n", 1,
                  "bad share name 'a:b': use 1-64 characters of A-Z a-z 0-9 . _ -");
  check_one_error("[share " + std::string(65, 'n') + "]\npath = /x\ngroup = 239.1.1.1:1\n", 1,
                  "bad share name '" + std::string(65, 'n') + "': use 1-64 characters of A-Z a-z 0-9 . _ -");
  check_one_error("[node]\n[node]\n" + std::string(kShare), 2, "duplicate section [node] (first at line 1)");
  check_one_error(std::string(kShare) + "[share media]\npath = /y\ngroup = 239.1.1.1:1\n", 4,
                  "duplicate share name 'media' (first at line 1)");
  check_one_error(std::string(kShare) + "[share b]\npath = /y\ngroup = 239.255.77.1:7700\n", 6,
                  "group 239.255.77.1:7700 is already used by [share media] (line 3)");
  ConfigLoad none = parse("[node]\nname = a\n");
  STRCMP_EQUAL("t.conf: no [share NAME] section\n", errors_of(none).c_str());
}

TEST(Config, LongShareNamesAreNotTruncated) {
  // inih truncates section names to 49 bytes; the parser must not.
  std::string name(64, 'x');
  ConfigLoad l = parse("[share " + name + "]\npath = /x\ngroup = 239.1.1.1:1\n");
  STRCMP_EQUAL("", errors_of(l).c_str());
  STRCMP_EQUAL(name.c_str(), l.config.shares[0].name.c_str());
}

TEST(Config, EmptyShareSectionReportsAtItsHeader) {
  ConfigLoad l = parse("[node]\nname = a\n\n[share empty]\n[net]\nport = 1\n");
  STRCMP_EQUAL(
      "t.conf:4: [share empty] is missing required key 'path'\n"
      "t.conf:4: [share empty] is missing required key 'group'\n",
      errors_of(l).c_str());
}

TEST(Config, EverySyntaxErrorIsReported) {
  ConfigLoad l = parse(
      "[net\n"                 // 1
      "port = 1\n"             // 2: belongs to no known section, ignored
      "[share a]\n"            // 3
      "path /x\n"              // 4
      "group = 239.1.1.1:1\n"  // 5
      "path = /x\n"            // 6
      "  indented = 1\n"       // 7: not a continuation (multiline is off)
      "[net] port = 2\n");     // 8
  STRCMP_EQUAL(
      "t.conf:1: syntax error: '[' without a closing ']'\n"
      "t.conf:4: syntax error: expected 'key = value'\n"
      "t.conf:7: unknown key 'indented' in [share a]\n"
      "t.conf:8: syntax error: unexpected text after ']'\n",
      errors_of(l).c_str());
}

TEST(Config, OverlongLinesAndControlBytes) {
  std::string text = "[node]\nstate_dir = /" + std::string(190, 'd') + "\n" + kShare + "mode = send\001\n";
  ConfigLoad l = parse(text);
  STRCMP_EQUAL(
      "t.conf:2: line is too long (the limit is 198 characters)\n"
      "t.conf:6: line contains a control character (byte 0x01)\n",
      errors_of(l).c_str());
  // A lone \r inside a line is not a line end.
  STRCMP_EQUAL("t.conf:4: line contains a control character (byte 0x0d)\n",
               errors_of(parse(std::string(kShare) + "mode = send\rreceive\r\n")).c_str());
  std::string fits = "[node]\nstate_dir = /" + std::string(185, 'd') + "\n" + kShare;
  CHECK_TRUE(parse(fits).ok());
}

TEST(Config, CommentsCrlfAndBom) {
  ConfigLoad l = parse(
      "\xEF\xBB\xBF# comment\r\n"
      "[share a] ; trailing comment\r\n"
      "path = /srv/a;b   ; only ';' after a space starts a comment\r\n"
      "group = 239.1.1.1:1\r\n"
      "[net]\r\n"
      "interface =   ; kernel's choice\r\n");
  STRCMP_EQUAL("", errors_of(l).c_str());
  STRCMP_EQUAL("/srv/a;b", l.config.shares[0].path.c_str());
  STRCMP_EQUAL("", l.config.interface.c_str());
}

TEST(Config, AllErrorsAreCollectedInLineOrder) {
  ConfigLoad l = parse(
      "[node]\n"                   // 1
      "log_level = loud\n"         // 2
      "[net]\n"                    // 3
      "port = -1\n"                // 4
      "bogus = 1\n"                // 5
      "[share one]\n"              // 6
      "group = 239.1.1.1:1\n"      // 7
      "[share two]\n"              // 8
      "path = /two\n"              // 9
      "group = 239.1.1.1:1\n");    // 10
  CHECK_EQUAL(5u, l.errors.size());
  int lines[] = {2, 4, 5, 6, 10};
  for (size_t i = 0; i < 5; i++) CHECK_EQUAL(lines[i], l.errors[i].line);
  STRCMP_EQUAL("bad value for port: not a number: '-1'", l.errors[1].msg.c_str());
}

TEST(Config, KeyFileIsCreatedOnceAndReloaded) {
  std::string path = dir + "/k.key";
  bool created = false;
  auto k1 = load_or_create_key(path, &created);
  CHECK_TRUE(k1.ok());
  CHECK_TRUE(created);
  CHECK_EQUAL(32u, k1->size());
  struct stat st {};
  CHECK_EQUAL(0, stat(path.c_str(), &st));
  CHECK_EQUAL(0600u, st.st_mode & 07777u);
  std::string text = slurp(path);
  CHECK_EQUAL(65u, text.size());
  CHECK_EQUAL('\n', text.back());
  STRCMP_EQUAL(text.substr(0, 64).c_str(),
               hex_encode(reinterpret_cast<const uint8_t*>(k1->data()), k1->size()).c_str());
  auto k2 = load_or_create_key(path, &created);
  CHECK_TRUE(k2.ok());
  CHECK_FALSE(created);
  CHECK_TRUE(*k1 == *k2);
  auto k3 = load_or_create_key(dir + "/other.key", nullptr);
  CHECK_TRUE(k3.ok());
  CHECK_FALSE(*k1 == *k3);
}

TEST(Config, KeyFileWithTrailingSpaceIsAccepted) {
  std::string path = dir + "/k.key";
  spit(path, std::string(62, '0') + "aF  \r\n", 0600);
  auto k = load_or_create_key(path, nullptr);
  CHECK_TRUE(k.ok());
  CHECK_EQUAL(0xaf, static_cast<uint8_t>((*k)[31]));
}

TEST(Config, KeyFileOpenToOthersIsRefused) {
  std::string path = dir + "/k.key";
  spit(path, std::string(64, 'a') + "\n", 0644);
  auto k = load_or_create_key(path, nullptr);
  CHECK_FALSE(k.ok());
  CHECK_TRUE(k.error().code == Errc::invalid);
  CHECK_TRUE(k.error().msg.find("chmod 600 " + path) != std::string::npos);
  CHECK_TRUE(k.error().msg.find("0644") != std::string::npos);
  chmod(path.c_str(), 0602);  // others alone are enough to refuse
  CHECK_FALSE(load_or_create_key(path, nullptr).ok());
  chmod(path.c_str(), 0400);
  CHECK_TRUE(load_or_create_key(path, nullptr).ok());
}

TEST(Config, BadKeyContentIsInvalid) {
  std::string path = dir + "/k.key";
  std::string cases[] = {std::string(), std::string(63, 'a') + "\n", std::string(64, 'g') + "\n",
                         std::string(32, 'a') + "\n" + std::string(32, 'a') + "\n", " " + std::string(64, 'a'),
                         std::string(66, 'a') + "\n", std::string(500, 'a')};
  for (const std::string& c : cases) {
    spit(path, c, 0600);
    bool created = true;
    auto k = load_or_create_key(path, &created);
    CHECK_FALSE(k.ok());
    CHECK_FALSE(created);
    CHECK_TRUE(k.error().code == Errc::invalid);
    CHECK_TRUE(k.error().msg.find(path) != std::string::npos);
  }
}

TEST(Config, KeyFileInMissingDirectoryFails) {
  bool created = true;
  auto k = load_or_create_key(dir + "/no/such/k.key", &created);
  CHECK_FALSE(k.ok());
  CHECK_FALSE(created);
  CHECK_TRUE(k.error().msg.find("cannot create key file") != std::string::npos);
}

TEST(Config, MetricsAddressIsOffByDefaultAndChecked) {
  ConfigLoad def = parse(kShare);
  CHECK_TRUE(def.ok());
  CHECK_TRUE(def.config.metrics.host.empty());
  ConfigLoad on = parse("[control]\nmetrics = 127.0.0.1:9477\n" + std::string(kShare));
  STRCMP_EQUAL("", errors_of(on).c_str());
  STRCMP_EQUAL("127.0.0.1", on.config.metrics.host.c_str());
  CHECK_EQUAL(9477, on.config.metrics.port);
  ConfigLoad off = parse("[control]\nmetrics =\n" + std::string(kShare));
  STRCMP_EQUAL("", errors_of(off).c_str());
  CHECK_TRUE(off.config.metrics.host.empty());
  check_one_error("[control]\nmetrics = localhost:9477\n" + std::string(kShare), 2,
                  "bad value for metrics: 'localhost' is not an IPv4 address");
  check_one_error("[control]\nmetrics = 127.0.0.1:0\n" + std::string(kShare), 2,
                  "bad value for metrics: bad port in '127.0.0.1:0': value 0 out of range [1, 65535]");
  check_one_error("[control]\nmetrics = 9477\n" + std::string(kShare), 2,
                  "bad value for metrics: bad address '9477' (want host:port)");
}
