#include "control.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "fileio.h"
#include "log.h"

namespace shoal {
namespace {

constexpr size_t kMaxClients = 64;
// A client is not sent more requests' worth of replies while this much output
// is still queued for it: pipelined requests from a client that does not read
// cannot grow our memory beyond this plus one reply.
constexpr size_t kOutputHighWater = 1024 * 1024;
constexpr int kWriteTimeoutS = 30;  // a client that stops reading its replies is dropped
constexpr int kAcceptPauseMs = 1000;

// Owns a file descriptor; closes it on scope exit unless released.

Json error_reply(const std::string& msg) { return Json{{"ok", false}, {"error", msg}}; }

// Serializes without throwing: invalid UTF-8 in a string (e.g. a raw file
// name) becomes U+FFFD instead of an exception.
std::string to_line(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

Status make_sockaddr(const std::string& path, sockaddr_un* sa) {
  std::memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa->sun_path)
    return make_error(Errc::invalid, "control socket path too long or empty: " + log_escape(path));
  std::memcpy(sa->sun_path, path.data(), path.size());
  return {};
}

// mkdir -p with mode 0755 for every directory it creates.
Status make_parent_dirs(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return {};
  std::string dir = path.substr(0, slash);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0755) == 0) {
      // Not left to the umask: clients need to traverse it to reach the socket.
      if (::chmod(part.c_str(), 0755) != 0) return errno_error("cannot chmod " + part, errno);
    } else if (errno != EEXIST) {
      return errno_error("cannot create directory " + part, errno);
    }
  }
  return {};
}

// Connects a blocking probe socket; returns 0 or the connect errno.
int probe_connect(const sockaddr_un& sa) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return errno;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return errno;
  return 0;
}

// Removes a socket file left by a dead daemon; refuses when one answers or
// when the path is something other than a socket.
Status clear_stale_socket(const std::string& path, const sockaddr_un& sa) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return errno_error("cannot stat " + path, errno);
  }
  if (!S_ISSOCK(st.st_mode))
    return make_error(Errc::invalid, path + " exists and is not a socket; not removing it");
  int err = probe_connect(sa);
  if (err == 0) return make_error(Errc::busy, "another shoald is running at " + path);
  if (err != ECONNREFUSED) return errno_error("cannot probe existing socket " + path, err);
  LOG_INFO("removing stale control socket %s", log_escape(path).c_str());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return errno_error("cannot remove stale socket " + path, errno);
  return {};
}

// Creates, binds, restricts and listens: the chmod comes before listen() so
// nobody can connect while the file still has umask-derived permissions.
Result<int> bind_socket(const std::string& path, const sockaddr_un& sa) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return errno_error("socket", errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
    return errno_error("cannot bind control socket " + path, errno);
  if (::chmod(path.c_str(), 0660) != 0) {
    Error e = errno_error("cannot chmod control socket " + path, errno);
    ::unlink(path.c_str());
    return e;
  }
  if (::listen(fd.get(), 16) != 0) {
    Error e = errno_error("cannot listen on control socket " + path, errno);
    ::unlink(path.c_str());
    return e;
  }
  return fd.release();
}

}  // namespace

Result<Json> parse_control_request(std::string_view line) {
  if (line.size() > kMaxControlLine) return make_error(Errc::invalid, "request too large");
  Json req = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) return make_error(Errc::invalid, "invalid JSON");
  if (!req.is_object()) return make_error(Errc::invalid, "request must be a JSON object");
  auto cmd = req.find("cmd");
  if (cmd == req.end() || !cmd->is_string())
    return make_error(Errc::invalid, "request lacks a string \"cmd\"");
  return req;
}

struct ControlServer::Impl {
  struct Client {
    Impl* server = nullptr;
    bufferevent* bev = nullptr;
    bool closing = false;  // error reply queued; close once it is flushed
  };

  event_base* base = nullptr;
  std::string path;
  Handler handler;
  evconnlistener* listener = nullptr;
  event* resume_accept = nullptr;
  dev_t sock_dev = 0;
  ino_t sock_ino = 0;
  std::map<Client*, std::unique_ptr<Client>> clients;

  ~Impl();
  Status start(int fd);
  void accept_client(int fd);
  void drop(Client* c);
  void on_read(Client* c);
  void on_write(Client* c);
  void on_event(Client* c, short what);
  void send(Client* c, const Json& reply);
  void handle_line(Client* c, const std::string& line);
  Json dispatch(const Json& req);
  void on_accept_error();
};

ControlServer::Impl::~Impl() {
  for (auto& kv : clients) bufferevent_free(kv.second->bev);
  clients.clear();
  if (resume_accept != nullptr) event_free(resume_accept);
  if (listener != nullptr) evconnlistener_free(listener);
  // Only remove the file we created: a newer daemon may own the path now.
  struct stat st{};
  if (!path.empty() && ::lstat(path.c_str(), &st) == 0 && st.st_dev == sock_dev &&
      st.st_ino == sock_ino)
    ::unlink(path.c_str());
}

Status ControlServer::Impl::start(int fd) {
  auto accept_cb = [](evconnlistener*, evutil_socket_t cfd, sockaddr*, int, void* arg) {
    static_cast<Impl*>(arg)->accept_client(cfd);
  };
  auto error_cb = [](evconnlistener*, void* arg) { static_cast<Impl*>(arg)->on_accept_error(); };
  listener = evconnlistener_new(base, accept_cb, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                0, fd);
  if (listener == nullptr) {
    ::close(fd);
    return make_error(Errc::internal, "evconnlistener_new failed");
  }
  evconnlistener_set_error_cb(listener, error_cb);
  auto resume_cb = [](evutil_socket_t, short, void* arg) {
    evconnlistener_enable(static_cast<Impl*>(arg)->listener);
  };
  resume_accept = evtimer_new(base, resume_cb, this);
  if (resume_accept == nullptr) return make_error(Errc::internal, "evtimer_new failed");
  return {};
}

// Out of descriptors (EMFILE) would make the listener spin: pause accepting
// for a moment instead.
void ControlServer::Impl::on_accept_error() {
  int err = EVUTIL_SOCKET_ERROR();
  LOG_WARN("control socket accept failed: %s; pausing accepts", std::strerror(err));
  evconnlistener_disable(listener);
  timeval tv{kAcceptPauseMs / 1000, (kAcceptPauseMs % 1000) * 1000};
  evtimer_add(resume_accept, &tv);
}

void ControlServer::Impl::accept_client(int fd) {
  if (clients.size() >= kMaxClients) {
    static const char kBusy[] = "{\"ok\":false,\"error\":\"too many control clients\"}\n";
    ssize_t w = ::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;  // best effort: the socket is closed either way
    ::close(fd);
    LOG_WARN("control socket: too many clients (%zu), refusing one", clients.size());
    return;
  }
  bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (bev == nullptr) {
    ::close(fd);
    LOG_ERROR("control socket: bufferevent_socket_new failed");
    return;
  }
  auto c = std::make_unique<Client>();
  c->server = this;
  c->bev = bev;
  auto read_cb = [](bufferevent*, void* arg) {
    auto* cl = static_cast<Client*>(arg);
    try {
      cl->server->on_read(cl);
    } catch (...) {  // e.g. bad_alloc; never unwind into libevent
      LOG_ERROR("control socket: exception while reading a request; dropping the client");
      cl->server->drop(cl);
    }
  };
  auto write_cb = [](bufferevent*, void* arg) {
    auto* cl = static_cast<Client*>(arg);
    try {
      cl->server->on_write(cl);
    } catch (...) {
      LOG_ERROR("control socket: exception while serving a client; dropping it");
      cl->server->drop(cl);
    }
  };
  auto event_cb = [](bufferevent*, short what, void* arg) {
    auto* cl = static_cast<Client*>(arg);
    cl->server->on_event(cl, what);
  };
  bufferevent_setcb(bev, read_cb, write_cb, event_cb, c.get());
  timeval wt{kWriteTimeoutS, 0};
  bufferevent_set_timeouts(bev, nullptr, &wt);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
  clients.emplace(c.get(), std::move(c));
  LOG_DEBUG("control client connected (%zu open)", clients.size());
}

void ControlServer::Impl::drop(Client* c) {
  bufferevent_free(c->bev);
  clients.erase(c);
}

void ControlServer::Impl::on_event(Client* c, short what) {
  if (what & BEV_EVENT_TIMEOUT) LOG_WARN("control client not reading its replies; dropping it");
  else if (what & BEV_EVENT_ERROR)
    LOG_DEBUG("control client error: %s", std::strerror(EVUTIL_SOCKET_ERROR()));
  drop(c);  // EOF, error or timeout: nothing more to do for this client
}

void ControlServer::Impl::on_write(Client* c) {
  // Called once the output buffer is empty.
  if (c->closing) {
    drop(c);
    return;
  }
  if ((bufferevent_get_enabled(c->bev) & EV_READ) == 0) {
    bufferevent_enable(c->bev, EV_READ);
    on_read(c);  // lines may already be waiting in the input buffer
  }
}

void ControlServer::Impl::send(Client* c, const Json& reply) {
  std::string line = to_line(reply);
  if (line.size() > kMaxControlResponse) {
    LOG_WARN("control reply of %zu bytes exceeds the limit", line.size());
    line = to_line(error_reply("response too large"));
  }
  bufferevent_write(c->bev, line.data(), line.size());
}

void ControlServer::Impl::on_read(Client* c) {
  evbuffer* in = bufferevent_get_input(c->bev);
  while (!c->closing) {
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > kOutputHighWater) {
      bufferevent_disable(c->bev, EV_READ);  // resumed by on_write
      return;
    }
    size_t eol_len = 0;
    evbuffer_ptr eol = evbuffer_search_eol(in, nullptr, &eol_len, EVBUFFER_EOL_LF);
    size_t avail = evbuffer_get_length(in);
    bool too_long = eol.pos < 0 ? avail > kMaxControlLine
                                : static_cast<size_t>(eol.pos) > kMaxControlLine;
    if (too_long) {
      LOG_WARN("control request longer than %zu bytes; closing the connection", kMaxControlLine);
      send(c, error_reply("request too large"));
      c->closing = true;
      bufferevent_disable(c->bev, EV_READ);
      evbuffer_drain(in, avail);
      return;
    }
    if (eol.pos < 0) return;  // wait for the rest of the line
    size_t n = 0;
    char* raw = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
    if (raw == nullptr) return;
    std::string line(raw, n);
    std::free(raw);
    handle_line(c, line);
  }
}

void ControlServer::Impl::handle_line(Client* c, const std::string& line) {
  Result<Json> req = parse_control_request(line);
  if (!req) {
    send(c, error_reply(req.error().msg));
    return;
  }
  send(c, dispatch(*req));
}

// The handler is the daemon's code; whatever it throws stops here, never
// inside libevent.
Json ControlServer::Impl::dispatch(const Json& req) {
  const std::string& cmd = req.find("cmd")->get_ref<const std::string&>();  // checked by caller
  try {
    Json reply = handler(req);
    if (reply.is_object()) return reply;
    LOG_ERROR("control handler returned a non-object for cmd %s", log_escape(cmd).c_str());
  } catch (const std::exception& e) {
    LOG_ERROR("control handler failed for cmd %s: %s", log_escape(cmd).c_str(),
              log_escape(e.what()).c_str());
  } catch (...) {
    LOG_ERROR("control handler failed for cmd %s: unknown exception", log_escape(cmd).c_str());
  }
  return error_reply("internal error");
}

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() = default;

Result<std::unique_ptr<ControlServer>> ControlServer::listen(event_base* base,
                                                             const std::string& path, Handler h) {
  sockaddr_un sa{};
  if (Status s = make_sockaddr(path, &sa); !s) return s.error();
  if (Status s = make_parent_dirs(path); !s) return s.error();
  if (Status s = clear_stale_socket(path, sa); !s) return s.error();
  Result<int> fd = bind_socket(path, sa);
  if (!fd) return fd.error();
  auto impl = std::make_unique<Impl>();
  impl->base = base;
  impl->handler = std::move(h);
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    impl->path = path;  // from here on the destructor unlinks it
    impl->sock_dev = st.st_dev;
    impl->sock_ino = st.st_ino;
  }
  if (Status s = impl->start(*fd); !s) return s.error();
  LOG_INFO("control socket listening at %s", log_escape(path).c_str());
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

// ---- client ----

namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

Error timeout_error(const std::string& path, const char* what) {
  return make_error(Errc::io, std::string("timed out ") + what + " shoald at " + path);
}

Error connect_error(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return make_error(Errc::not_found, "shoald is not running (no socket at " + path + ")");
    case ECONNREFUSED:
      return make_error(Errc::not_found,
                        "shoald is not running (nothing listening at " + path + ")");
    case EACCES:
    case EPERM:
      return make_error(Errc::io, "permission denied connecting to " + path +
                                      " (need write access to the socket: run as root or as a "
                                      "member of its group)");
    default:
      return errno_error("cannot connect to shoald at " + path, err);
  }
}

// Non-blocking connect; a Unix socket whose backlog is full answers EAGAIN,
// which is retried until the deadline.
Result<int> connect_socket(const std::string& path, Clock::time_point deadline) {
  sockaddr_un sa{};
  if (Status s = make_sockaddr(path, &sa); !s) return s.error();
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return errno_error("socket", errno);
  while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return connect_error(path, errno);
    if (ms_left(deadline) == 0) return timeout_error(path, "connecting to");
    ::poll(nullptr, 0, 10);
  }
  return fd.release();
}

// Waits for `events` on fd; false on timeout.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms_left(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return true;  // let the following read/write report the error
  }
}

Status send_all(int fd, const std::string& data, const std::string& path,
                Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) return errno_error("cannot send request to shoald", errno);
    if (!wait_fd(fd, POLLOUT, deadline)) return timeout_error(path, "sending to");
  }
  return {};
}

Result<std::string> recv_line(int fd, const std::string& path, Clock::time_point deadline) {
  std::string buf;
  char chunk[16384];
  for (;;) {
    ssize_t r = ::recv(fd, chunk, sizeof chunk, 0);
    if (r > 0) {
      size_t old = buf.size();
      buf.append(chunk, static_cast<size_t>(r));
      size_t nl = buf.find('\n', old);
      if (nl != std::string::npos) return buf.substr(0, nl);
      if (buf.size() > kMaxControlResponse)
        return make_error(Errc::corrupt, "response from shoald too large");
      continue;
    }
    if (r == 0) return make_error(Errc::io, "shoald closed the connection without a reply");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return errno_error("cannot read reply from shoald", errno);
    if (!wait_fd(fd, POLLIN, deadline)) return timeout_error(path, "waiting for");
  }
}

}  // namespace

Result<Json> control_call(const std::string& path, const Json& req, int timeout_ms) {
  std::string line = to_line(req);
  if (line.size() > kMaxControlLine)
    return make_error(Errc::invalid, "request too large for the control socket");
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Result<int> fdr = connect_socket(path, deadline);
  if (!fdr) return fdr.error();
  Fd fd(*fdr);
  if (Status s = send_all(fd.get(), line, path, deadline); !s) return s.error();
  Result<std::string> reply = recv_line(fd.get(), path, deadline);
  if (!reply) return reply.error();
  Json j = Json::parse(*reply, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return make_error(Errc::corrupt, "invalid reply from shoald (not a JSON object)");
  return j;
}

}  // namespace shoal
