#include "control.h"
#include "log.h"

#include "testutil.h"

#include <CppUTest/TestHarness.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include <event2/event.h>

using namespace shoal;

namespace {


// A plain blocking client for speaking the raw line protocol.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t w = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    return true;
  }
  // Next line without '\n'; "<eof>" on EOF or error, "<timeout>" after 3 s.
  std::string line() {
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 3000) <= 0) return "<timeout>";
      char chunk[65536];
      ssize_t r = ::recv(fd_, chunk, sizeof chunk, 0);
      if (r <= 0) return "<eof>";
      buf_.append(chunk, static_cast<size_t>(r));
    }
  }
  Json reply() {
    std::string l = line();
    Json j = Json::parse(l, nullptr, false);
    return j.is_discarded() ? Json{{"raw", l}} : j;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

Json echo_handler(const Json& req) {
  Json r{{"ok", true}, {"cmd", req["cmd"]}};
  if (req.contains("seq")) r["seq"] = req["seq"];
  if (req.contains("share")) r["share"] = req.at("share").get<std::string>();  // throws on non-string
  if (req.contains("big")) r["data"] = std::string(req.at("big").get<size_t>(), 'x');
  if (req["cmd"] == "boom") throw std::runtime_error("boom");
  if (req["cmd"] == "array") return Json::array();
  return r;
}

// Leaves a socket file with nobody listening, as a killed daemon would.
void make_stale_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  CHECK_EQUAL(0, ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
  ::close(fd);
}

std::string error_of(const Json& j) {
  return j.value("ok", true) == false && j.contains("error") && j["error"].is_string()
             ? j["error"].get<std::string>()
             : "<no error>: " + j.dump();
}

}  // namespace

TEST_GROUP(Control) {
  std::string dir;
  std::string sock;
  event_base* base = nullptr;
  LogLevel saved_level = LogLevel::info;

  void setup() override {
    char tmpl[] = "/tmp/shoal-control-test.XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    sock = dir + "/run/shoald.sock";  // parent does not exist yet
    base = event_base_new();
    saved_level = log_level();
    log_set_level(LogLevel::error);  // keep the expected warnings out of the test output
  }
  void teardown() override {
    log_set_level(saved_level);
    event_base_free(base);
    std::filesystem::remove_all(dir);
  }
  std::unique_ptr<ControlServer> start(ControlServer::Handler h = echo_handler) {
    auto r = ControlServer::listen(base, sock, std::move(h));
    if (!r) FAIL(r.error().msg.c_str());
    return std::move(r).value();
  }
};

TEST(Control, StatusRoundTrip) {
  std::string seen;
  auto srv = start([&seen](const Json& req) {
    seen = req["cmd"].get<std::string>();
    return Json{{"ok", true}, {"node", "box-a"}, {"uptime_s", 12}};
  });
  Result<Json> r = make_error(Errc::internal, "not run");
  test::serve_while(base, [&] { r = control_call(sock, Json{{"cmd", "status"}}, 3000); });
  CHECK_TRUE(r.ok());
  STRCMP_EQUAL("status", seen.c_str());
  CHECK_TRUE(r->at("ok").get<bool>());
  STRCMP_EQUAL("box-a", r->at("node").get<std::string>().c_str());
  LONGS_EQUAL(12, r->at("uptime_s").get<int>());
}

TEST(Control, InvalidJsonGetsErrorAndConnectionStaysUsable) {
  auto srv = start();
  Json bad, good;
  test::serve_while(base, [&] {
    RawClient c(sock);
    c.send("{not json\n");
    bad = c.reply();
    c.send("{\"cmd\":\"status\"}\n");
    good = c.reply();
  });
  STRCMP_EQUAL("invalid JSON", error_of(bad).c_str());
  CHECK_TRUE(good.value("ok", false));
  STRCMP_EQUAL("status", good.value("cmd", "").c_str());
}

TEST(Control, MissingOrNonStringCmdIsAnError) {
  auto srv = start();
  Json missing, numeric, good;
  test::serve_while(base, [&] {
    RawClient c(sock);
    c.send("{\"share\":\"x\"}\n{\"cmd\":5}\n{\"cmd\":\"files\"}\n");
    missing = c.reply();
    numeric = c.reply();
    good = c.reply();
  });
  STRCMP_CONTAINS("cmd", error_of(missing).c_str());
  STRCMP_CONTAINS("cmd", error_of(numeric).c_str());
  STRCMP_EQUAL("files", good.value("cmd", "").c_str());
}

TEST(Control, NonObjectJsonIsAnError) {
  auto srv = start();
  Json arr, str, num;
  test::serve_while(base, [&] {
    RawClient c(sock);
    c.send("[1,2]\n\"status\"\n42\n");
    arr = c.reply();
    str = c.reply();
    num = c.reply();
  });
  STRCMP_EQUAL("request must be a JSON object", error_of(arr).c_str());
  STRCMP_EQUAL("request must be a JSON object", error_of(str).c_str());
  STRCMP_EQUAL("request must be a JSON object", error_of(num).c_str());
}

TEST(Control, OversizedLineClosesOnlyThatClient) {
  auto srv = start();
  Json big_reply, other_reply;
  std::string after;
  Result<Json> fresh = make_error(Errc::internal, "not run");
  test::serve_while(base, [&] {
    RawClient other(sock);
    RawClient c(sock);
    c.send(std::string(kMaxControlLine + 4096, 'a') + "\n");
    big_reply = c.reply();
    after = c.line();
    other.send("{\"cmd\":\"status\"}\n");
    other_reply = other.reply();
    fresh = control_call(sock, Json{{"cmd", "status"}}, 3000);
  });
  STRCMP_EQUAL("request too large", error_of(big_reply).c_str());
  STRCMP_EQUAL("<eof>", after.c_str());
  CHECK_TRUE(other_reply.value("ok", false));
  CHECK_TRUE(fresh.ok());
  CHECK_TRUE(fresh->value("ok", false));
}

TEST(Control, OversizedLineWithoutNewlineIsRejected) {
  auto srv = start();
  Json reply;
  test::serve_while(base, [&] {
    RawClient c(sock);
    c.send(std::string(kMaxControlLine + 20000, '{'));
    reply = c.reply();
  });
  STRCMP_EQUAL("request too large", error_of(reply).c_str());
}

TEST(Control, LineOfExactlyTheLimitIsServed) {
  auto srv = start();
  std::string head = "{\"cmd\":\"status\",\"pad\":\"";
  std::string line = head + std::string(kMaxControlLine - head.size() - 2, 'p') + "\"}";
  CHECK_EQUAL(kMaxControlLine, line.size());
  Json reply;
  test::serve_while(base, [&] {
    RawClient c(sock);
    c.send(line + "\n");
    reply = c.reply();
  });
  CHECK_TRUE(reply.value("ok", false));
}

TEST(Control, PipelinedRequestsAreAnsweredInOrder) {
  auto srv = start();
  std::vector<Json> replies;
  test::serve_while(base, [&] {
    RawClient c(sock);
    c.send("{\"cmd\":\"a\",\"seq\":1}\n{\"cmd\":\"b\",\"seq\":2}\n{\"cmd\":\"c\",\"seq\":3}\n");
    for (int i = 0; i < 3; ++i) replies.push_back(c.reply());
  });
  for (int i = 0; i < 3; ++i) LONGS_EQUAL(i + 1, replies[i].value("seq", 0));
}

TEST(Control, HandlerExceptionBecomesInternalError) {
  auto srv = start();
  Json wrong_type, thrown, non_object, good;
  test::serve_while(base, [&] {
    RawClient c(sock);
    c.send("{\"cmd\":\"files\",\"share\":7}\n{\"cmd\":\"boom\"}\n{\"cmd\":\"array\"}\n"
           "{\"cmd\":\"files\",\"share\":\"docs\"}\n");
    wrong_type = c.reply();
    thrown = c.reply();
    non_object = c.reply();
    good = c.reply();
  });
  STRCMP_EQUAL("internal error", error_of(wrong_type).c_str());
  STRCMP_EQUAL("internal error", error_of(thrown).c_str());
  STRCMP_EQUAL("internal error", error_of(non_object).c_str());
  STRCMP_EQUAL("docs", good.value("share", "").c_str());
}

TEST(Control, LargeRepliesToAClientThatReadsLateAllArrive) {
  auto srv = start();
  const size_t kBig = 1100 * 1024;  // above the per-client output high-water mark
  std::vector<size_t> sizes;
  Result<Json> single = make_error(Errc::internal, "not run");
  test::serve_while(base, [&] {
    RawClient c(sock);
    std::string reqs;
    for (int i = 0; i < 3; ++i) reqs += "{\"cmd\":\"get\",\"big\":" + std::to_string(kBig) + "}\n";
    c.send(reqs);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (int i = 0; i < 3; ++i) sizes.push_back(c.reply().value("data", "").size());
    single = control_call(sock, Json{{"cmd", "get"}, {"big", 2 * kBig}}, 3000);
  });
  LONGS_EQUAL(3, sizes.size());
  for (size_t s : sizes) LONGS_EQUAL(kBig, s);
  CHECK_TRUE(single.ok());
  LONGS_EQUAL(2 * kBig, single->value("data", "").size());
}

TEST(Control, ClientsBeyondTheCapAreTurnedAway) {
  auto srv = start();
  int served = 0;
  Json refused;
  std::string refused_after;
  Result<Json> later = make_error(Errc::internal, "not run");
  test::serve_while(base, [&] {
    std::vector<std::unique_ptr<RawClient>> held;
    for (int i = 0; i < 64; ++i) {
      held.push_back(std::make_unique<RawClient>(sock));
      held.back()->send("{\"cmd\":\"status\"}\n");
      if (held.back()->reply().value("ok", false)) ++served;
    }
    RawClient extra(sock);
    refused = extra.reply();
    refused_after = extra.line();
    held.pop_back();  // frees a slot once the server sees the EOF
    for (int i = 0; i < 50; ++i) {
      later = control_call(sock, Json{{"cmd", "status"}}, 1000);
      if (later.ok() && later->value("ok", false)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  LONGS_EQUAL(64, served);
  STRCMP_CONTAINS("too many", error_of(refused).c_str());
  STRCMP_EQUAL("<eof>", refused_after.c_str());
  CHECK_TRUE(later.ok());
  CHECK_TRUE(later->value("ok", false));
}

TEST(Control, SocketIsMode0660AndParentIsCreated) {
  auto srv = start();
  struct stat st{};
  CHECK_EQUAL(0, ::stat(sock.c_str(), &st));
  CHECK_TRUE(S_ISSOCK(st.st_mode));
  LONGS_EQUAL(0660, st.st_mode & 07777);
  CHECK_EQUAL(0, ::stat((dir + "/run").c_str(), &st));
  LONGS_EQUAL(0755, st.st_mode & 07777);
}

TEST(Control, DestructorRemovesTheSocket) {
  auto srv = start();
  CHECK_EQUAL(0, ::access(sock.c_str(), F_OK));
  srv.reset();
  CHECK_EQUAL(-1, ::access(sock.c_str(), F_OK));
}

TEST(Control, StaleSocketIsReplaced) {
  std::filesystem::create_directory(dir + "/run");
  make_stale_socket(sock);
  auto srv = start();
  Result<Json> r = make_error(Errc::internal, "not run");
  test::serve_while(base, [&] { r = control_call(sock, Json{{"cmd", "status"}}, 3000); });
  CHECK_TRUE(r.ok());
  CHECK_TRUE(r->value("ok", false));
}

TEST(Control, NonSocketFileIsLeftAlone) {
  std::filesystem::create_directory(dir + "/run");
  std::ofstream(sock) << "precious";
  auto r = ControlServer::listen(base, sock, echo_handler);
  CHECK_FALSE(r.ok());
  STRCMP_CONTAINS("not a socket", r.error().msg.c_str());
  std::ifstream in(sock);
  std::string content;
  in >> content;
  STRCMP_EQUAL("precious", content.c_str());
}

TEST(Control, LiveServerRefusesASecondListen) {
  auto srv = start();
  auto second = ControlServer::listen(base, sock, echo_handler);
  CHECK_FALSE(second.ok());
  STRCMP_EQUAL(("another shoald is running at " + sock).c_str(), second.error().msg.c_str());
  // The first server still works and still owns the path.
  Result<Json> r = make_error(Errc::internal, "not run");
  test::serve_while(base, [&] { r = control_call(sock, Json{{"cmd", "status"}}, 3000); });
  CHECK_TRUE(r.ok());
}

TEST(Control, TooLongPathIsRejected) {
  auto r = ControlServer::listen(base, dir + "/" + std::string(120, 's'), echo_handler);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(r.error().code == Errc::invalid);
}

TEST(Control, CallOnMissingSocketSaysNotRunning) {
  std::string path = dir + "/none.sock";
  Result<Json> r = control_call(path, Json{{"cmd", "status"}}, 1000);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(r.error().code == Errc::not_found);
  STRCMP_EQUAL(("shoald is not running (no socket at " + path + ")").c_str(),
               r.error().msg.c_str());
}

TEST(Control, CallOnStaleSocketSaysNotRunning) {
  std::string path = dir + "/stale.sock";
  make_stale_socket(path);
  Result<Json> r = control_call(path, Json{{"cmd", "status"}}, 1000);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(r.error().code == Errc::not_found);
  STRCMP_CONTAINS("shoald is not running", r.error().msg.c_str());
}

TEST(Control, CallTimesOutWhenNobodyAnswers) {
  // Listening but never accepting: connect succeeds, no reply ever comes.
  std::string path = dir + "/mute.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  CHECK_EQUAL(0, ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
  CHECK_EQUAL(0, ::listen(fd, 4));
  auto t0 = std::chrono::steady_clock::now();
  Result<Json> r = control_call(path, Json{{"cmd", "status"}}, 150);
  auto took = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  CHECK_FALSE(r.ok());
  STRCMP_CONTAINS("timed out", r.error().msg.c_str());
  CHECK_TRUE(took >= std::chrono::milliseconds(140));
  CHECK_TRUE(took < std::chrono::seconds(2));
}

TEST(Control, CallRefusesAnOversizedRequest) {
  Result<Json> r = control_call(dir + "/x.sock",
                                Json{{"cmd", "status"}, {"pad", std::string(kMaxControlLine, 'p')}});
  CHECK_FALSE(r.ok());
  CHECK_TRUE(r.error().code == Errc::invalid);
}

TEST_GROUP(ControlParse){};

TEST(ControlParse, AcceptsAnObjectWithAStringCmd) {
  Result<Json> r = parse_control_request(R"({"cmd":"files","share":"docs"})");
  CHECK_TRUE(r.ok());
  STRCMP_EQUAL("files", r.value()["cmd"].get<std::string>().c_str());
  STRCMP_EQUAL("docs", r.value()["share"].get<std::string>().c_str());
}

TEST(ControlParse, RejectsWithTheServersMessages) {
  const std::pair<std::string, const char*> cases[] = {
      {"{\"cmd\":", "invalid JSON"},
      {"", "invalid JSON"},
      {"{\"cmd\":\"a\"} {}", "invalid JSON"},
      {"\"\xff\"", "invalid JSON"},
      {"[\"cmd\"]", "request must be a JSON object"},
      {"42", "request must be a JSON object"},
      {"{}", "request lacks a string \"cmd\""},
      {"{\"cmd\":7}", "request lacks a string \"cmd\""},
      {"{\"cmd\":null}", "request lacks a string \"cmd\""},
  };
  for (const auto& [line, msg] : cases) {
    Result<Json> r = parse_control_request(line);
    CHECK_FALSE_TEXT(r.ok(), line.c_str());
    CHECK_TRUE(r.error().code == Errc::invalid);
    STRCMP_EQUAL_TEXT(msg, r.error().msg.c_str(), line.c_str());
  }
}

TEST(ControlParse, BoundsTheLine) {
  std::string pad(kMaxControlLine, ' ');
  std::string fits = R"({"cmd":"status"})";
  fits += pad.substr(fits.size());
  CHECK_EQUAL(kMaxControlLine, fits.size());
  CHECK_TRUE(parse_control_request(fits).ok());
  Result<Json> r = parse_control_request(fits + " ");
  CHECK_FALSE(r.ok());
  STRCMP_EQUAL("request too large", r.error().msg.c_str());
}
