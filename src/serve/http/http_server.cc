#include "serve/http/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/file_body.hpp>

#include "absl/strings/str_cat.h"

namespace hepml::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using Clock = std::chrono::steady_clock;

// What a connection waits for (the watchdog's view of it).
enum Phase { kIdle, kReading, kHandling, kWriting };

}  // namespace

struct HttpServer::Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  bool busy = false;  // a request is being handled; guarded by mu_
  // Guarded by mu_: the phase, when the watchdog ends it, and whether it did.
  int phase = kIdle;
  Clock::time_point deadline = Clock::time_point::max();
  bool timed_out = false;
  std::thread thread;
};

namespace {

// Closing a socket with unread bytes sends a reset, which can destroy the
// answer before the client reads it: stop sending, then read and drop what
// the client still sends, for at most 2 s and 64 MiB.
// Writes `res` piece by piece, calling `arm` before each piece (the
// watchdog's deadline is for progress, so a large file may take long).
template <class Body>
void WriteAll(tcp::socket& socket, http::response<Body>& res, boost::system::error_code& ec,
              const std::function<void()>& arm) {
  http::serializer<false, Body> sr{res};
  do {
    arm();
    http::write_some(socket, sr, ec);
  } while (!ec && !sr.is_done());
}

void DrainBeforeClose(tcp::socket& socket) {
  boost::system::error_code ec;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  const int fd = socket.native_handle();
  char buf[65536];
  uint64_t total = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (total < (uint64_t{64} << 20)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    total += static_cast<uint64_t>(n);
  }
}

}  // namespace

HttpServer::HttpServer(HttpFileHandler handler, const HttpServerOptions& options)
    : handler_(std::move(handler)),
      max_connections_(options.max_connections),
      max_body_bytes_(options.max_body_bytes),
      request_timeout_ms_(options.request_timeout_ms),
      idle_timeout_ms_(options.idle_timeout_ms),
      acceptor_(io_) {}

HttpServer::~HttpServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host, int port, HttpHandler handler,
                                                              size_t max_connections) {
  HttpServerOptions options;
  options.max_connections = max_connections;
  return Start(
      host, port,
      [handler = std::move(handler)](const HttpRequest& req, HttpResponse& res, HttpFileReply*) { handler(req, res); },
      options);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host, int port,
                                                              HttpFileHandler handler,
                                                              const HttpServerOptions& options) {
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(handler), options));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("host '", host, "' is not an IP address"));
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  server->acceptor_.open(endpoint.protocol(), ec);
  if (!ec) server->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) server->acceptor_.bind(endpoint, ec);
  if (!ec) server->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port, ": ", ec.message()));
  server->port_ = server->acceptor_.local_endpoint().port();
  server->Accept();
  HttpServer* self = server.get();
  server->accept_thread_ = std::thread([self] { self->io_.run(); });
  if (options.request_timeout_ms > 0 || options.idle_timeout_ms > 0)
    server->watch_thread_ = std::thread([self] { self->Watch(); });
  return server;
}

void HttpServer::SetPhase(Connection& conn, int phase, int64_t timeout_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  conn.phase = phase;
  conn.deadline = timeout_ms > 0 ? Clock::now() + std::chrono::milliseconds(timeout_ms) : Clock::time_point::max();
}

void HttpServer::Watch() {
  int64_t shortest = INT64_MAX;
  for (int64_t t : {request_timeout_ms_, idle_timeout_ms_})
    if (t > 0) shortest = std::min(shortest, t);
  auto tick = std::chrono::milliseconds(std::clamp<int64_t>(shortest / 10, 5, 200));
  std::unique_lock<std::mutex> lock(mu_);
  while (!watch_stop_) {
    watch_cv_.wait_for(lock, tick);
    auto now = Clock::now();
    for (auto& conn : connections_) {
      if (now < conn->deadline) continue;
      conn->deadline = Clock::time_point::max();
      conn->timed_out = true;
      // Ends the blocked read (the request is answered 408) or write.
      ::shutdown(conn->socket.native_handle(), conn->phase == kWriting ? SHUT_RDWR : SHUT_RD);
    }
  }
}

void HttpServer::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) return;  // closed by Shutdown
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      if (connections_.size() >= max_connections_) {
        // Over the limit: a short answer (fits the socket buffer) and close.
        HttpResponse res{http::status::service_unavailable, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = absl::StrCat("{\"error\":\"too many open connections (", max_connections_, ")\"}");
        res.keep_alive(false);
        res.prepare_payload();
        boost::system::error_code wec;
        http::write(socket, res, wec);
        socket.shutdown(tcp::socket::shutdown_both, wec);
        socket.close(wec);
        Accept();
        return;
      }
      auto conn = std::make_shared<Connection>(std::move(socket));
      connections_.push_back(conn);
      conn->thread = std::thread([this, conn] { Serve(conn); });
    }
    Accept();
  });
}

void HttpServer::Serve(std::shared_ptr<Connection> conn) {
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  conn->socket.set_option(tcp::no_delay(true), ec);
  const int fd = conn->socket.native_handle();
  const std::function<void()> arm_write = [this, &conn] { SetPhase(*conn, kWriting, request_timeout_ms_); };
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      conn->busy = false;
    }
    if (buffer.size() == 0) {
      // Between requests: wait for the next one's first byte (or the end of
      // the connection: the client's, Shutdown's or the idle timeout's).
      SetPhase(*conn, kIdle, idle_timeout_ms_);
      pollfd p{fd, POLLIN, 0};
      while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
    }
    // The header must arrive within the request timeout of its first byte;
    // then each read of the body re-arms it (a large upload may take long,
    // but not pause that long).
    SetPhase(*conn, kReading, request_timeout_ms_);
    http::request_parser<http::string_body> parser;
    parser.body_limit(max_body_bytes_);
    http::read_header(conn->socket, buffer, parser, ec);
    while (!ec && !parser.is_done()) {
      SetPhase(*conn, kReading, request_timeout_ms_);
      http::read_some(conn->socket, buffer, parser, ec);
    }
    bool timed_out = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      conn->busy = true;
      // A request read whole as its deadline passed is still answered (its
      // socket no longer reads, so the connection ends after the answer).
      timed_out = conn->timed_out && conn->phase == kReading;
      conn->phase = kHandling;
      conn->deadline = Clock::time_point::max();
    }
    if (timed_out && ec == http::error::partial_message) {
      // Stalled mid-request: say so (the client may still read) and close.
      HttpResponse res{http::status::request_timeout, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = absl::StrCat("{\"error\":\"the request was not received within ", request_timeout_ms_, " ms\"}");
      res.keep_alive(false);
      res.prepare_payload();
      WriteAll(conn->socket, res, ec, arm_write);
      break;
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == http::error::partial_message || (timed_out && ec))
      break;
    if (ec == http::error::body_limit) {
      // The rest of the body is unread: answer 413 and close.
      HttpResponse res{http::status::payload_too_large, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = absl::StrCat("{\"error_code\":\"PAYLOAD_TOO_LARGE\",\"error\":\"request body larger than ",
                                max_body_bytes_, " bytes\",\"message\":\"request body larger than ",
                                max_body_bytes_, " bytes\"}");
      res.keep_alive(false);
      res.prepare_payload();
      WriteAll(conn->socket, res, ec, arm_write);
      DrainBeforeClose(conn->socket);
      break;
    }
    if (ec) {
      // Malformed HTTP: answer 400 and close (the stream cannot be resynced).
      HttpResponse res{http::status::bad_request, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = absl::StrCat("{\"error\":\"malformed HTTP request: ", ec.message(), "\"}");
      res.keep_alive(false);
      res.prepare_payload();
      WriteAll(conn->socket, res, ec, arm_write);
      break;
    }
    HttpRequest req = parser.release();
    HttpResponse res{http::status::ok, req.version()};
    res.set(http::field::server, "hepml");
    HttpFileReply file;
    try {
      handler_(req, res, &file);
    } catch (const std::exception& e) {
      if (file.done) file.done();
      file = HttpFileReply{};
      // Handlers return errors as responses; this is a last guard so that no
      // request can take the server down.
      res = HttpResponse{http::status::internal_server_error, req.version()};
      res.set(http::field::content_type, "application/json");
      res.body() = absl::StrCat("{\"error\":\"internal error\"}");
    }
    bool keep_alive = req.keep_alive();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) keep_alive = false;
    }
    if (!file.path.empty()) {
      // Streamed from disk in chunks by file_body, never read whole.
      http::response<http::file_body> fres{res.result(), res.version()};
      for (const auto& field : res) fres.set(field.name_string(), field.value());
      fres.body().open(file.path.c_str(), beast::file_mode::scan, ec);
      if (ec) {
        res = HttpResponse{http::status::internal_server_error, req.version()};
        res.set(http::field::content_type, "application/json");
        res.body() = absl::StrCat("{\"error\":\"cannot read the file to send\"}");
      } else {
        fres.keep_alive(keep_alive);
        fres.prepare_payload();
        WriteAll(conn->socket, fres, ec, arm_write);
        fres.body().close();
        if (file.done) file.done();
        if (ec || !keep_alive) break;
        continue;
      }
      if (file.done) file.done();
    }
    res.keep_alive(keep_alive);
    res.prepare_payload();
    WriteAll(conn->socket, res, ec, arm_write);
    if (ec || !keep_alive) break;
  }
  conn->socket.shutdown(tcp::socket::shutdown_both, ec);
  conn->socket.close(ec);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = connections_.begin(); it != connections_.end(); ++it)
    if (*it == conn) {
      it->get()->thread.detach();
      connections_.erase(it);
      break;
    }
  done_cv_.notify_all();
}

void HttpServer::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    stopping_ = true;
  }
  asio::post(io_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  if (accept_thread_.joinable()) accept_thread_.join();
  std::unique_lock<std::mutex> lock(mu_);
  // Idle connections wait in read: end their reads. Busy ones finish their
  // request and close.
  for (auto& conn : connections_)
    if (!conn->busy) ::shutdown(conn->socket.native_handle(), SHUT_RD);
  done_cv_.wait(lock, [&] { return connections_.empty(); });
  watch_stop_ = true;
  watch_cv_.notify_all();
  lock.unlock();
  if (watch_thread_.joinable()) watch_thread_.join();
}

}  // namespace hepml::serve
