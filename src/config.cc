#include "config.h"

#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <utility>

#include "defer.h"
#include "fileio.h"

namespace shoal {

const char* share_mode_name(ShareMode m) {
  switch (m) {
    case ShareMode::sendreceive: return "sendreceive";
    case ShareMode::sendonly: return "sendonly";
    case ShareMode::receiveonly: return "receiveonly";
  }
  return "unknown";
}

const char* share_order_name(ShareOrder o) {
  switch (o) {
    case ShareOrder::lowest: return "lowest";
    case ShareOrder::rarest: return "rarest";
  }
  return "unknown";
}

std::string ConfigError::format() const {
  if (line > 0) return file + ":" + std::to_string(line) + ": " + msg;
  return file + ": " + msg;
}

namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr size_t kMaxNameLen = 64;
constexpr size_t kMaxIfNameLen = 15;  // IFNAMSIZ - 1
constexpr size_t kKeyBytes = 32;

// Owns one file descriptor.

std::string current_dir() {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == nullptr) return "/";
  return buf;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "shoal";
  return std::string(buf).substr(0, kMaxNameLen);
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

bool valid_name(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameLen && std::all_of(s.begin(), s.end(), is_name_char);
}

// Joins a relative `value` onto the absolute, symlink-free `base`. Leading
// ".." components may be folded into base because base is canonical; a ".."
// after a named component is left for the kernel, as it may follow a symlink.
std::string resolve_path(const std::string& base, std::string_view value) {
  if (!value.empty() && value.front() == '/') return std::string(value);
  std::string out = base;
  bool leading = true;
  while (!value.empty()) {
    size_t slash = value.find('/');
    std::string_view part = value.substr(0, slash);
    value = slash == std::string_view::npos ? std::string_view() : value.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == ".." && leading) {
      size_t cut = out.rfind('/');
      out.resize(cut == 0 ? 1 : cut);
      continue;
    }
    leading = false;
    if (out.back() != '/') out += '/';
    out += part;
  }
  return out;
}

// inih trims with isspace(); the mirror below must agree with it exactly.
std::string_view trim_space(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Mirror of inih's find_chars_or_comment(): the index of the first char in
// `chars`, or of a ';' that follows whitespace (inline comment), or npos.
size_t find_or_comment(std::string_view s, std::string_view chars) {
  bool was_space = false;
  for (size_t i = 0; i < s.size(); i++) {
    if (chars.find(s[i]) != std::string_view::npos) return i;
    if (was_space && s[i] == ';') return std::string_view::npos;
    was_space = std::isspace(static_cast<unsigned char>(s[i])) != 0;
  }
  return std::string_view::npos;
}

// ---- per-key setters -------------------------------------------------------

struct Target {
  Config* config;
  ShareConfig* share;  // set in a [share] section
  const std::string* base;
};

using Setter = Status (*)(const Target&, std::string_view);

struct KeyDef {
  const char* name;
  Setter set;
  bool allow_empty;
};

Error bad(std::string msg) { return make_error(Errc::invalid, std::move(msg)); }

std::string path_value(const Target& t, std::string_view v) { return resolve_path(*t.base, v); }

Status set_node_name(const Target& t, std::string_view v) {
  if (!valid_name(v)) return bad("'" + std::string(v) + "' is not 1-64 characters of A-Z a-z 0-9 . _ -");
  t.config->node_name = v;
  return {};
}

Status set_state_dir(const Target& t, std::string_view v) {
  t.config->state_dir = path_value(t, v);
  return {};
}

Status set_log_level(const Target& t, std::string_view v) {
  if (!log_parse_level(v, &t.config->log_level))
    return bad("'" + std::string(v) + "' is not one of error, warn, info, debug");
  return {};
}

Status set_bind(const Target& t, std::string_view v) {
  if (!is_ipv4(v)) return bad("'" + std::string(v) + "' is not an IPv4 address");
  t.config->bind = v;
  return {};
}

// Linux's dev_valid_name(): at most 15 bytes, no '/', ':' or whitespace.
Status set_interface(const Target& t, std::string_view v) {
  bool ok = v.size() <= kMaxIfNameLen && v != "." && v != ".." &&
            std::none_of(v.begin(), v.end(), [](char c) {
              return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c));
            });
  if (!ok) return bad("'" + std::string(v) + "' is not an interface name (1-15 characters, no '/', ':' or spaces)");
  t.config->interface = v;
  return {};
}

Status set_port(const Target& t, std::string_view v) {
  auto n = parse_uint(v, 0, 65535);
  if (!n) return n.error();
  t.config->port = static_cast<uint16_t>(*n);
  return {};
}

Status set_max_rate(const Target& t, std::string_view v) {
  auto r = parse_rate(v);
  if (!r) return r.error();
  t.config->max_rate_bps = *r;
  return {};
}

Status set_multicast(const Target& t, std::string_view v) {
  auto b = parse_bool(v);
  if (!b) return bad("'" + std::string(v) + "' is not on or off");
  t.config->multicast = *b;
  return {};
}

Status set_socket(const Target& t, std::string_view v) {
  std::string p = path_value(t, v);
  if (p.size() >= sizeof(sockaddr_un{}.sun_path))
    return bad("'" + p + "' is longer than " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
               " bytes, the limit for a unix socket path");
  t.config->control_socket = p;
  return {};
}

// Bound without name resolution, so only an address will do; empty is off.
Status set_metrics(const Target& t, std::string_view v) {
  if (v.empty()) {
    t.config->metrics = HostPort{};
    return {};
  }
  auto hp = parse_hostport(v);
  if (!hp) return hp.error();
  if (!is_ipv4(hp->host)) return bad("'" + hp->host + "' is not an IPv4 address");
  t.config->metrics = *hp;
  return {};
}

Status set_share_path(const Target& t, std::string_view v) {
  t.share->path = path_value(t, v);
  return {};
}

Status set_group(const Target& t, std::string_view v) {
  auto hp = parse_hostport(v);
  if (!hp) return hp.error();
  if (!is_ipv4_multicast(hp->host))
    return bad("'" + hp->host + "' is not an IPv4 multicast address (224.0.0.0 to 239.255.255.255)");
  t.share->group = *hp;
  return {};
}

Status set_key_file(const Target& t, std::string_view v) {
  t.share->key_file = path_value(t, v);
  return {};
}

Status set_mode(const Target& t, std::string_view v) {
  for (ShareMode m : {ShareMode::sendreceive, ShareMode::sendonly, ShareMode::receiveonly}) {
    if (v == share_mode_name(m)) {
      t.share->mode = m;
      return {};
    }
  }
  return bad("'" + std::string(v) + "' is not one of sendreceive, sendonly, receiveonly");
}

Status set_order(const Target& t, std::string_view v) {
  for (ShareOrder o : {ShareOrder::lowest, ShareOrder::rarest}) {
    if (v == share_order_name(o)) {
      t.share->order = o;
      return {};
    }
  }
  return bad("'" + std::string(v) + "' is not one of lowest, rarest");
}

Status set_delete(const Target& t, std::string_view v) {
  if (v == "keep") {
    t.share->delete_propagate = false;
  } else if (v == "propagate") {
    t.share->delete_propagate = true;
  } else {
    return bad("'" + std::string(v) + "' is not one of keep, propagate");
  }
  return {};
}

Status set_peers(const Target& t, std::string_view v) {
  t.share->peers.clear();
  if (v.empty()) return {};
  while (true) {
    size_t comma = v.find(',');
    std::string_view item = trim(v.substr(0, comma));
    if (item.empty()) return bad("empty entry in the peer list");
    auto hp = parse_hostport(item);
    if (!hp) return hp.error();
    t.share->peers.push_back(*hp);
    if (comma == std::string_view::npos) return {};
    v = v.substr(comma + 1);
  }
}

Status set_settle_ms(const Target& t, std::string_view v) {
  auto n = parse_uint(v, 0, 3600000);
  if (!n) return n.error();
  t.share->settle_ms = static_cast<uint32_t>(*n);
  return {};
}

// A limit of 0 would mean "nothing allowed", which no one wants: refused.
Status set_max_file_size(const Target& t, std::string_view v) {
  if (auto z = parse_uint(v, 0, 0); z)
    return bad("must be at least 1 byte (there is no 'unlimited'; use e.g. 16t)");
  auto n = parse_size(v);
  if (!n) return n.error();
  t.share->max_file_size = *n;
  return {};
}

Status set_max_files(const Target& t, std::string_view v) {
  if (auto z = parse_uint(v, 0, 0); z)
    return bad("must be at least 1 (there is no 'unlimited'; use a large number)");
  auto n = parse_uint(v, 1, kMaxMaxFiles);
  if (!n) return n.error();
  t.share->max_files = *n;
  return {};
}

constexpr KeyDef kNodeKeys[] = {
    {"name", set_node_name, false},
    {"state_dir", set_state_dir, false},
    {"log_level", set_log_level, false},
};
constexpr KeyDef kNetKeys[] = {
    {"bind", set_bind, false},
    {"interface", set_interface, true},
    {"port", set_port, false},
    {"max_rate", set_max_rate, false},
    {"multicast", set_multicast, false},
};
constexpr KeyDef kControlKeys[] = {
    {"socket", set_socket, false},
    {"metrics", set_metrics, true},
};
constexpr KeyDef kShareKeys[] = {
    {"path", set_share_path, false},
    {"group", set_group, false},
    {"key_file", set_key_file, false},
    {"mode", set_mode, false},
    {"peers", set_peers, true},
    {"settle_ms", set_settle_ms, false},
    {"order", set_order, false},
    {"delete", set_delete, false},
    {"max_file_size", set_max_file_size, false},
    {"max_files", set_max_files, false},
};
constexpr const char* kShareRequired[] = {"path", "group"};

// ---- the parser -------------------------------------------------------------

enum class Sect { none, node, net, control, share, skip };

// What one section instance has seen; keys map to the line that set them.
struct SectionState {
  std::string label;  // "[net]", "[share media]"
  int line = 0;
  std::map<std::string, int, std::less<>> keys;
};

// Feeds inih through a line reader so every callback knows its line number,
// and tracks sections itself: inih reports neither empty sections nor names
// longer than 49 bytes, and stops reporting syntax errors after the first.
class Parser {
 public:
  Parser(const std::string& text, const std::string& file, const std::string& base)
      : text_(text), base_(base) {
    out_.config.file = file;
  }

  ConfigLoad run() {
    configure_inih();
    int r = ini_parse_stream(&Parser::read_line, this, &Parser::on_pair, this);
    if (r > 0 && !syntax_lines_.count(r)) error(r, "syntax error");
    if (r < 0) error(0, "cannot parse (inih error " + std::to_string(r) + ")");
    finish();
    return std::move(out_);
  }

 private:
  // The Debian build makes inih's options process-wide globals; pin the ones
  // the line mirror in scan_line() depends on.
  static void configure_inih() {
    static char start_comments[] = ";#";
    static char inline_comments[] = ";";
    ini_allow_multiline = false;
    ini_allow_bom = true;
    ini_allow_inline_comments = true;
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    ini_start_comment_prefixes = start_comments;
    ini_inline_comment_prefixes = inline_comments;
  }

  static char* read_line(char* buf, int num, void* self) {
    return static_cast<Parser*>(self)->next_line(buf, static_cast<size_t>(num));
  }

  static int on_pair(void* self, const char* /*section*/, const char* name, const char* value) {
    static_cast<Parser*>(self)->pair(name, value ? value : "");
    return 1;  // errors are collected here, not counted by inih
  }

  void error(int line, std::string msg) {
    out_.errors.push_back(ConfigError{out_.config.file, line, std::move(msg)});
  }

  void syntax_error(std::string msg) {
    syntax_lines_.insert(line_);
    error(line_, std::move(msg));
  }

  // Hands inih one line; a line it cannot take whole (too long, control
  // bytes) is reported here and replaced by an empty one.
  char* next_line(char* buf, size_t num) {
    if (pos_ >= text_.size() || num < 2) return nullptr;
    size_t nl = text_.find('\n', pos_);
    size_t len = (nl == std::string::npos ? text_.size() : nl + 1) - pos_;
    std::string_view l(text_.data() + pos_, len);
    pos_ += len;
    line_++;
    std::string_view body = l;  // without the line end, where \r and \n belong
    if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
    if (!body.empty() && body.back() == '\r') body.remove_suffix(1);
    auto ctl = std::find_if(body.begin(), body.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return (u < 0x20 && c != '\t') || u == 0x7f;
    });
    if (ctl != body.end()) {
      char hex[8];
      snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(*ctl));
      syntax_error(std::string("line contains a control character (byte ") + hex + ")");
      l = "\n";
    } else if (len > num - 1) {
      syntax_error("line is too long (the limit is " + std::to_string(num - 2) + " characters)");
      l = "\n";
    } else {
      scan_line(l);
    }
    std::memcpy(buf, l.data(), l.size());
    buf[l.size()] = '\0';
    return buf;
  }

  // Classifies a line the way inih will, to learn section headers and to
  // report every syntax error rather than only the first.
  void scan_line(std::string_view l) {
    if (line_ == 1 && l.substr(0, 3) == "\xEF\xBB\xBF") l.remove_prefix(3);
    l = trim_space(l);
    if (l.empty() || l.front() == ';' || l.front() == '#') return;
    if (l.front() == '[') {
      size_t end = find_or_comment(l.substr(1), "]");
      if (end == std::string_view::npos) {
        syntax_error("syntax error: '[' without a closing ']'");
        sect_ = Sect::skip;  // its keys would land in the previous section
        return;
      }
      std::string_view rest = trim_space(l.substr(end + 2));
      if (!rest.empty() && rest.front() != ';') syntax_error("syntax error: unexpected text after ']'");
      open_section(trim_space(l.substr(1, end)));
      return;
    }
    if (find_or_comment(l, "=:") == std::string_view::npos)
      syntax_error("syntax error: expected 'key = value'");
  }

  void open_section(std::string_view head) {
    size_t sp = head.find_first_of(" \t");
    std::string_view word = head.substr(0, sp);
    std::string_view arg = sp == std::string_view::npos ? std::string_view() : trim_space(head.substr(sp));
    if (word == "share") return open_share(arg);
    if (!arg.empty() || (word != "node" && word != "net" && word != "control")) {
      error(line_, "unknown section [" + std::string(head) + "]");
      sect_ = Sect::skip;
      return;
    }
    sect_ = word == "node" ? Sect::node : word == "net" ? Sect::net : Sect::control;
    auto [it, fresh] = singles_.try_emplace(std::string(word));
    if (!fresh) {
      error(line_, "duplicate section [" + std::string(word) + "] (first at line " + std::to_string(it->second.line) + ")");
    } else {
      it->second.label = "[" + std::string(word) + "]";
      it->second.line = line_;
    }
    cur_ = &it->second;
  }

  void open_share(std::string_view name) {
    if (name.empty()) {
      error(line_, "[share] needs a name, e.g. [share media]");
      sect_ = Sect::skip;
      return;
    }
    std::string n(name);
    if (!valid_name(n))
      error(line_, "bad share name '" + n + "': use 1-64 characters of A-Z a-z 0-9 . _ -");
    auto [first, fresh] = share_lines_.try_emplace(n, line_);
    if (!fresh) error(line_, "duplicate share name '" + n + "' (first at line " + std::to_string(first->second) + ")");
    ShareConfig s;
    s.name = n;
    s.line = line_;
    out_.config.shares.push_back(std::move(s));
    share_state_.push_back(SectionState{"[share " + n + "]", line_, {}});
    sect_ = Sect::share;
    cur_ = &share_state_.back();
  }

  static const KeyDef* find_key(Sect s, std::string_view key) {
    auto look = [key](const auto& table) -> const KeyDef* {
      for (const KeyDef& d : table)
        if (key == d.name) return &d;
      return nullptr;
    };
    switch (s) {
      case Sect::node: return look(kNodeKeys);
      case Sect::net: return look(kNetKeys);
      case Sect::control: return look(kControlKeys);
      case Sect::share: return look(kShareKeys);
      default: return nullptr;
    }
  }

  void pair(std::string_view key, std::string_view value) {
    if (sect_ == Sect::skip) return;
    if (sect_ == Sect::none) return error(line_, "key '" + std::string(key) + "' is outside any section");
    const KeyDef* def = find_key(sect_, key);
    if (!def) return error(line_, "unknown key '" + std::string(key) + "' in " + cur_->label);
    auto [it, fresh] = cur_->keys.try_emplace(std::string(key), line_);
    if (!fresh) {
      return error(line_, "duplicate key '" + std::string(key) + "' in " + cur_->label +
                              " (first set at line " + std::to_string(it->second) + ")");
    }
    value = trim(value);
    Status st = (value.empty() && !def->allow_empty) ? Status(bad("no value given"))
                                                     : def->set(target(), value);
    if (!st) error(line_, "bad value for " + std::string(key) + ": " + st.error().msg);
  }

  Target target() {
    ShareConfig* s = sect_ == Sect::share ? &out_.config.shares.back() : nullptr;
    return Target{&out_.config, s, &base_};
  }

  void finish() {
    Config& c = out_.config;
    if (c.node_name.empty()) c.node_name = host_name();
    std::map<std::string, size_t> groups;
    for (size_t i = 0; i < c.shares.size(); i++) {
      ShareConfig& s = c.shares[i];
      const SectionState& st = share_state_[i];
      if (s.key_file.empty()) s.key_file = "/etc/shoal/" + s.name + ".key";
      for (const char* req : kShareRequired) {
        if (!st.keys.count(req)) error(s.line, st.label + " is missing required key '" + req + "'");
      }
      auto g = st.keys.find("group");
      if (g == st.keys.end() || s.group.host.empty()) continue;
      std::string addr = s.group.host + ":" + std::to_string(s.group.port);
      auto [it, fresh] = groups.try_emplace(addr, i);
      if (!fresh) {
        error(g->second, "group " + addr + " is already used by " + share_state_[it->second].label +
                             " (line " + std::to_string(share_state_[it->second].keys.at("group")) + ")");
      }
    }
    if (c.shares.empty()) error(0, "no [share NAME] section");
    std::stable_sort(out_.errors.begin(), out_.errors.end(), [](const ConfigError& a, const ConfigError& b) {
      return (a.line == 0 ? INT_MAX : a.line) < (b.line == 0 ? INT_MAX : b.line);
    });
  }

  const std::string& text_;
  const std::string base_;
  size_t pos_ = 0;
  int line_ = 0;
  ConfigLoad out_;
  Sect sect_ = Sect::none;
  SectionState* cur_ = nullptr;
  std::map<std::string, SectionState> singles_;  // [node], [net], [control]
  std::deque<SectionState> share_state_;  // parallel to config.shares; deque keeps cur_ valid
  std::map<std::string, int> share_lines_;      // share name -> header line
  std::set<int> syntax_lines_;
};

// ---- files ------------------------------------------------------------------

// Reads at most `max` bytes; more than that is an error (bounded input).
Result<std::string> read_bounded(int fd, size_t max) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read", errno);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max) return bad("larger than " + std::to_string(max) + " bytes");
  }
}

Result<std::string> read_config_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("cannot read", errno);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return errno_error("cannot read", errno);
  if (!S_ISREG(st.st_mode)) return bad("not a regular file");
  auto text = read_bounded(fd.get(), kMaxConfigBytes);
  if (!text) return bad("cannot read: " + text.error().msg);
  return text;
}

// The config file's directory, absolute and without symlinks when it exists.
std::string config_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  char real[PATH_MAX];
  if (realpath(dir.c_str(), real) != nullptr) return real;
  return resolve_path(current_dir(), dir);
}

// Makes a new directory entry durable.
void sync_parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) fsync(fd.get());
}

Result<std::string> read_key(int fd, const std::string& path) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return errno_error("key file " + path, errno);
  if (!S_ISREG(st.st_mode)) return bad("key file " + path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return bad("key file " + path + " is readable or writable by group or others (mode " + mode +
               "); run: chmod 600 " + path);
  }
  auto text = read_bounded(fd, 2 * kKeyBytes + 64);
  if (!text) return bad("key file " + path + ": " + text.error().msg);
  std::string_view hex = *text;
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
  Result<std::string> key = hex.size() == 2 * kKeyBytes ? hex_decode(hex) : Result<std::string>(bad(""));
  OPENSSL_cleanse(text->data(), text->size());
  if (!key) return bad("key file " + path + " must hold 64 hex digits on one line");
  return key;
}

// Sets *raced when the file appeared since the caller looked.
Result<std::string> create_key(const std::string& path, bool* raced) {
  unsigned char raw[kKeyBytes];
  if (RAND_bytes(raw, sizeof raw) != 1) return make_error(Errc::internal, "RAND_bytes failed");
  std::string key(reinterpret_cast<const char*>(raw), sizeof raw);
  std::string hex = hex_encode(raw, sizeof raw) + "\n";
  OPENSSL_cleanse(raw, sizeof raw);
  auto wipe = defer([&] { OPENSSL_cleanse(hex.data(), hex.size()); });
  Fd fd(::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) {
    *raced = errno == EEXIST;
    return errno_error("cannot create key file " + path, errno);
  }
  auto unlink_partial = defer([&] { ::unlink(path.c_str()); });
  if (fchmod(fd.get(), 0600) != 0) return errno_error("chmod key file " + path, errno);
  Status w = write_all(fd.get(), hex.data(), hex.size());
  if (!w) return make_error(w.error().code, "key file " + path + ": " + w.error().msg);
  if (fsync(fd.get()) != 0 || fd.close() != 0) return errno_error("key file " + path, errno);
  sync_parent_dir(path);
  unlink_partial.cancel();
  return key;
}

}  // namespace

ConfigLoad load_config(const std::string& path) {
  auto text = read_config_file(path);
  if (!text) {
    ConfigLoad l;
    l.config.file = path;
    l.errors.push_back(ConfigError{path, 0, text.error().msg});
    return l;
  }
  return parse_config(*text, path, config_dir(path));
}

Result<std::string> load_or_create_key(const std::string& path, bool* created) {
  if (created) *created = false;
  // Two rounds: another process may create the file between our open and our O_EXCL.
  for (int round = 0; round < 2; round++) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() >= 0) return read_key(fd.get(), path);
    if (errno != ENOENT) return errno_error("cannot open key file " + path, errno);
    bool raced = false;
    auto key = create_key(path, &raced);
    if (key.ok() && created) *created = true;
    if (!raced) return key;
  }
  return make_error(Errc::io, "cannot open key file " + path);
}

ConfigLoad parse_config(const std::string& text, const std::string& name, const std::string& base_dir) {
  std::string base = base_dir;
  if (base.empty() || base.front() != '/') base = resolve_path(current_dir(), base);
  return Parser(text, name, base).run();
}

}  // namespace shoal
