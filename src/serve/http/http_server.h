// A small HTTP/1.1 server on Boost.Beast: one thread accepts, one thread per
// open connection reads requests (keep-alive) and calls the handler. A
// watchdog thread closes connections whose client is too slow: a request
// whose header is not received within `request_timeout_ms` of its first
// byte, or whose body pauses that long (answered 408), a response the client
// stops taking for that long, a keep-alive connection idle for
// `idle_timeout_ms`.
//
// Thread safety: the handler runs on many connection threads at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include "hepml/status.h"

namespace hepml::serve {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

// A file to answer with instead of the response's string body: the server
// streams it from disk with the response's status and headers, then calls
// `done` (e.g. to remove a temporary copy), sent or not.
struct HttpFileReply {
  std::string path;
  std::function<void()> done;
};
// A handler that may answer with a file: it sets `file->path`.
using HttpFileHandler = std::function<void(const HttpRequest&, HttpResponse&, HttpFileReply* file)>;

struct HttpServerOptions {
  // Beyond this many open connections, a new one is answered 503 and closed.
  size_t max_connections = 1024;
  // A request whose body is larger is answered 413 and its connection closed.
  uint64_t max_body_bytes = uint64_t{1} << 30;
  // From a request's first byte to the end of its header, and the longest
  // pause within its body (a client stalled mid-request is answered 408 and
  // closed) or within the writing of the response (a client that stops
  // reading it is dropped). 0: no limit.
  int64_t request_timeout_ms = 60000;
  // A keep-alive connection waiting this long for its next request is
  // closed. 0: no limit.
  int64_t idle_timeout_ms = 300000;
};

class HttpServer {
 public:
  // Binds host:port (0: any free port) and starts accepting. Beyond
  // `max_connections` open connections, a new one is answered 503 and closed.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& host, int port, HttpHandler handler,
                                                           size_t max_connections = 1024);
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& host, int port, HttpFileHandler handler,
                                                           const HttpServerOptions& options);
  ~HttpServer();  // Shutdown()

  int port() const { return port_; }

  // Stops accepting, closes idle connections, waits for requests being
  // handled to be answered. Idempotent.
  void Shutdown();

 private:
  struct Connection;
  HttpServer(HttpFileHandler handler, const HttpServerOptions& options);
  void Accept();
  void Serve(std::shared_ptr<Connection> conn);
  // Sets what `conn` waits for and until when (REQUIRES: mu_ not held).
  void SetPhase(Connection& conn, int phase, int64_t timeout_ms);
  void Watch();

  HttpFileHandler handler_;
  const size_t max_connections_;
  const uint64_t max_body_bytes_;
  const int64_t request_timeout_ms_;
  const int64_t idle_timeout_ms_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::thread accept_thread_;

  std::mutex mu_;
  std::condition_variable done_cv_;
  std::list<std::shared_ptr<Connection>> connections_;
  bool stopping_ = false;
  bool shut_down_ = false;
  std::condition_variable watch_cv_;
  bool watch_stop_ = false;
  std::thread watch_thread_;
};

}  // namespace hepml::serve
