#include "serve/http/http_server.h"

#include <boost/asio/connect.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <atomic>
#include <cstdio>
#include <future>
#include <thread>
#include <chrono>
#include <boost/asio/write.hpp>

#include "gtest/gtest.h"

namespace hepml::serve {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct Client {
  asio::io_context io;
  tcp::socket socket{io};
  boost::beast::flat_buffer buffer;
  explicit Client(int port) { socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)); }
  HttpResponse Get(const std::string& target, boost::system::error_code* ec = nullptr) {
    HttpRequest req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    boost::system::error_code e;
    http::write(socket, req, e);
    HttpResponse res;
    if (!e) http::read(socket, buffer, res, e);
    if (ec) *ec = e;
    return res;
  }
  HttpResponse Read() {
    HttpResponse res;
    boost::system::error_code e;
    http::read(socket, buffer, res, e);
    return res;
  }
};

HttpHandler Echo() {
  return [](const HttpRequest& req, HttpResponse& res) {
    res.body() = std::string(req.target());
  };
}

TEST(HttpServerTest, AnswersOnKeepAliveConnections) {
  auto server = HttpServer::Start("127.0.0.1", 0, Echo());
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  EXPECT_EQ(c.Get("/a").body(), "/a");
  EXPECT_EQ(c.Get("/b").body(), "/b");  // same connection
}

TEST(HttpServerTest, RefusesConnectionsBeyondTheLimit) {
  auto server = HttpServer::Start("127.0.0.1", 0, Echo(), 2);
  ASSERT_TRUE(server.ok()) << server.status();
  Client a((*server)->port()), b((*server)->port());
  EXPECT_EQ(a.Get("/a").result(), http::status::ok);
  EXPECT_EQ(b.Get("/b").result(), http::status::ok);
  Client c((*server)->port());
  EXPECT_EQ(c.Read().result(), http::status::service_unavailable);
  EXPECT_EQ(a.Get("/a").result(), http::status::ok);  // the others carry on
}

TEST(HttpServerTest, ShutdownClosesIdleConnectionsAndFinishesBusyOnes) {
  std::promise<void> entered, release;
  auto release_future = release.get_future().share();
  auto server = HttpServer::Start("127.0.0.1", 0, [&](const HttpRequest& req, HttpResponse& res) {
    if (req.target() == "/slow") {
      entered.set_value();
      release_future.wait();
    }
    res.body() = "done";
  });
  ASSERT_TRUE(server.ok()) << server.status();
  Client idle((*server)->port()), busy((*server)->port());
  EXPECT_EQ(idle.Get("/x").body(), "done");
  auto answer = std::async(std::launch::async, [&] { return busy.Get("/slow"); });
  entered.get_future().wait();
  auto shutdown = std::async(std::launch::async, [&] { (*server)->Shutdown(); });
  EXPECT_EQ(shutdown.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);  // waits for /slow
  release.set_value();
  HttpResponse res = answer.get();
  EXPECT_EQ(res.body(), "done");
  EXPECT_FALSE(res.keep_alive());
  shutdown.get();
  boost::system::error_code ec;
  idle.Get("/x", &ec);
  EXPECT_TRUE(ec) << "the idle connection is closed";
}

TEST(HttpServerTest, MalformedRequestGets400) {
  auto server = HttpServer::Start("127.0.0.1", 0, Echo());
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  asio::write(c.socket, asio::buffer(std::string("NOT HTTP\r\n\r\n")));
  EXPECT_EQ(c.Read().result(), http::status::bad_request);
  Client d((*server)->port());
  EXPECT_EQ(d.Get("/still").body(), "/still");
}

TEST(HttpServerTest, BodyOverTheLimitGets413AndTheServerCarriesOn) {
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  auto server = HttpServer::Start(
      "127.0.0.1", 0,
      [](const HttpRequest& req, HttpResponse& res, HttpFileReply*) { res.body() = std::to_string(req.body().size()); },
      options);
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  HttpRequest req{http::verb::post, "/big", 11};
  req.set(http::field::host, "127.0.0.1");
  req.body() = std::string(200000, 'x');
  req.prepare_payload();
  http::write(c.socket, req);
  HttpResponse res = c.Read();
  EXPECT_EQ(res.result(), http::status::payload_too_large);
  EXPECT_NE(res.body().find("larger than 1000 bytes"), std::string::npos) << res.body();
  Client d((*server)->port());
  HttpRequest small{http::verb::post, "/small", 11};
  small.set(http::field::host, "127.0.0.1");
  small.body() = std::string(1000, 'x');
  small.prepare_payload();
  http::write(d.socket, small);
  EXPECT_EQ(d.Read().body(), "1000");
}

TEST(HttpServerTest, FileRepliesAreStreamedAndReleased) {
  std::string path = ::testing::TempDir() + "/http_server_test_file.bin";
  std::string content(3 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7 + i / 4096);
  {
    FILE* f = fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
  }
  std::atomic<int> released{0};
  auto server = HttpServer::Start(
      "127.0.0.1", 0,
      [&](const HttpRequest& req, HttpResponse& res, HttpFileReply* file) {
        res.set(http::field::content_type, "application/octet-stream");
        if (req.target() == "/file") {
          file->path = path;
          file->done = [&] { released++; };
        } else if (req.target() == "/missing") {
          file->path = path + ".missing";
          file->done = [&] { released++; };
        } else {
          res.body() = "plain";
        }
      },
      HttpServerOptions{});
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  HttpResponse res = c.Get("/file");
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res[http::field::content_type], "application/octet-stream");
  EXPECT_TRUE(res.body() == content) << "got " << res.body().size() << " bytes";
  EXPECT_EQ(c.Get("/other").body(), "plain");  // the connection carries on
  EXPECT_EQ(c.Get("/missing").result(), http::status::internal_server_error);
  EXPECT_EQ(c.Get("/other").body(), "plain");
  EXPECT_EQ(released.load(), 2);
  std::remove(path.c_str());
}

TEST(HttpServerTest, PortInUseIsAnError) {
  auto first = HttpServer::Start("127.0.0.1", 0, Echo());
  ASSERT_TRUE(first.ok());
  auto second = HttpServer::Start("127.0.0.1", (*first)->port(), Echo());
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(std::to_string((*first)->port())), std::string::npos);
  EXPECT_FALSE(HttpServer::Start("not-an-ip", 0, Echo()).ok());
}

HttpFileHandler EchoBodySize() {
  return [](const HttpRequest& req, HttpResponse& res, HttpFileReply*) { res.body() = std::to_string(req.body().size()); };
}

TEST(HttpServerTest, RequestStalledMidBodyGets408AndIsClosed) {
  HttpServerOptions options;
  options.request_timeout_ms = 300;
  auto server = HttpServer::Start("127.0.0.1", 0, EchoBodySize(), options);
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  asio::write(c.socket, asio::buffer(std::string("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")));
  HttpResponse res = c.Read();  // the watchdog ends the wait
  EXPECT_EQ(res.result(), http::status::request_timeout);
  EXPECT_NE(res.body().find("not received within 300 ms"), std::string::npos) << res.body();
  boost::system::error_code ec;
  char byte;
  c.socket.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);  // and closed
  // Others are served.
  Client d((*server)->port());
  EXPECT_EQ(d.Get("/y").result(), http::status::ok);
}

TEST(HttpServerTest, BodyThatKeepsComingIsNotCutByTheRequestTimeout) {
  HttpServerOptions options;
  options.request_timeout_ms = 400;
  auto server = HttpServer::Start("127.0.0.1", 0, EchoBodySize(), options);
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  asio::write(c.socket, asio::buffer(std::string("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n")));
  // Eight pieces, 100 ms apart: 800 ms in all, twice the timeout, but it
  // never pauses for the timeout.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    asio::write(c.socket, asio::buffer(std::string("x")));
  }
  HttpResponse res = c.Read();
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "8");
}

TEST(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  HttpServerOptions options;
  options.idle_timeout_ms = 200;
  auto server = HttpServer::Start("127.0.0.1", 0, EchoBodySize(), options);
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  EXPECT_EQ(c.Get("/a").result(), http::status::ok);
  boost::system::error_code ec;
  char byte;
  c.socket.read_some(asio::buffer(&byte, 1), ec);  // returns when the server closes
  EXPECT_EQ(ec, asio::error::eof);
}

}  // namespace
}  // namespace hepml::serve
