// InferenceClient over HTTP/REST: one keep-alive connection, Boost.Beast
// operations run on a private io_context so that each one has a deadline.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <optional>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "serve/client/client_impl.h"

namespace hepml::serve::client::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using Response = http::response<http::string_body>;

// Largest response accepted (a large batch of outputs).
constexpr uint64_t kMaxResponseBytes = uint64_t{1} << 30;

// Path segment with every byte outside RFC 3986's unreserved set escaped.
std::string EscapeSegment(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ModelPath(const std::string& model, const std::string& version) {
  std::string path = absl::StrCat("/v2/models/", EscapeSegment(model));
  if (!version.empty()) absl::StrAppend(&path, "/versions/", EscapeSegment(version));
  return path;
}

// The server's error message of a non-200 answer ({"error": "..."}), or the
// body itself.
std::string ErrorText(const Response& res) {
  json body = json::parse(res.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) return body["error"].get<std::string>();
  if (res.body().empty()) return std::string(res.reason());
  return res.body().substr(0, 200);
}

uint64_t U64(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number_unsigned()) return 0;
  return j[key].get<uint64_t>();
}

void AddDuration(const json& stats, const char* key, uint64_t* count, uint64_t* ns) {
  if (!stats.is_object() || !stats.contains(key)) return;
  *count += U64(stats[key], "count");
  *ns += U64(stats[key], "ns");
}

class HttpClient final : public InferenceClient {
 public:
  HttpClient(const std::string& address, std::string host, std::string port, const ClientOptions& options)
      : InferenceClient(address), host_(std::move(host)), port_(std::move(port)), options_(options), stream_(io_) {}

  ~HttpClient() override { Close(); }

  Protocol protocol() const override { return Protocol::kHttp; }

  absl::Status ServerLive() override {
    http::request<http::string_body> req{http::verb::get, "/v2/health/live", 11};
    HEPML_ASSIGN_OR_RETURN(Response res, Exchange(req));
    if (res.result_int() != 200)
      return FromHttpStatus(res.result_int(), absl::StrCat("server at ", address(), " is not live: ", ErrorText(res)));
    return absl::OkStatus();
  }

  absl::StatusOr<ModelMetadata> GetModelMetadata(const std::string& model, const std::string& version) override {
    http::request<http::string_body> req{http::verb::get, ModelPath(model, version), 11};
    HEPML_ASSIGN_OR_RETURN(json body, GetJson(req));
    ModelMetadata meta;
    meta.name = body.value("name", "");
    meta.platform = body.value("platform", "");
    if (body.contains("versions") && body["versions"].is_array())
      for (const auto& v : body["versions"])
        if (v.is_string()) meta.versions.push_back(v.get<std::string>());
    for (const char* which : {"inputs", "outputs"}) {
      if (!body.contains(which) || !body[which].is_array()) continue;
      for (const auto& t : body[which]) {
        if (!t.is_object()) continue;
        TensorMetadata tm;
        tm.name = t.value("name", "");
        tm.datatype = t.value("datatype", "");
        if (t.contains("shape") && t["shape"].is_array())
          for (const auto& d : t["shape"])
            if (d.is_number_integer()) tm.shape.push_back(d.get<int64_t>());
        (std::string(which) == "inputs" ? meta.inputs : meta.outputs).push_back(std::move(tm));
      }
    }
    return meta;
  }

  absl::StatusOr<ModelStatistics> GetModelStatistics(const std::string& model, const std::string& version) override {
    http::request<http::string_body> req{http::verb::get, absl::StrCat(ModelPath(model, version), "/stats"), 11};
    HEPML_ASSIGN_OR_RETURN(json body, GetJson(req));
    ModelStatistics s;
    if (!body.contains("model_stats") || !body["model_stats"].is_array())
      return absl::InternalError(absl::StrCat("statistics of model '", model, "' from ", address(), ": no model_stats"));
    for (const auto& m : body["model_stats"]) {
      s.inference_count += U64(m, "inference_count");
      s.execution_count += U64(m, "execution_count");
      if (!m.is_object() || !m.contains("inference_stats")) continue;
      const json& is = m["inference_stats"];
      AddDuration(is, "success", &s.success_count, &s.success_ns);
      AddDuration(is, "fail", &s.fail_count, &s.fail_ns);
      AddDuration(is, "queue", &s.queue_count, &s.queue_ns);
      AddDuration(is, "compute_input", &s.compute_input_count, &s.compute_input_ns);
      AddDuration(is, "compute_infer", &s.compute_infer_count, &s.compute_infer_ns);
      AddDuration(is, "compute_output", &s.compute_output_count, &s.compute_output_ns);
    }
    return s;
  }

  absl::Status SetInferRequest(const InferRequest& request) override {
    json header;
    header["inputs"] = json::array();
    size_t raw_bytes = 0;
    for (const InferInput& in : request.inputs) {
      header["inputs"].push_back({{"name", in.name},
                                  {"shape", in.shape},
                                  {"datatype", in.datatype},
                                  {"parameters", {{"binary_data_size", in.raw.size()}}}});
      raw_bytes += in.raw.size();
    }
    header["parameters"] = {{"binary_data_output", true}};
    std::string head = header.dump();
    infer_ = http::request<http::string_body>{http::verb::post,
                                              absl::StrCat(ModelPath(request.model, request.version), "/infer"), 11};
    infer_->set(http::field::host, host_);
    infer_->set(http::field::content_type, "application/octet-stream");
    infer_->set("Inference-Header-Content-Length", std::to_string(head.size()));
    std::string& body = infer_->body();
    body.reserve(head.size() + raw_bytes);
    body = head;
    for (const InferInput& in : request.inputs) body += in.raw;
    infer_->prepare_payload();
    infer_model_ = request.model;
    return absl::OkStatus();
  }

  absl::Status Infer() override {
    if (!infer_) return absl::FailedPreconditionError("Infer before SetInferRequest");
    HEPML_ASSIGN_OR_RETURN(Response res, Exchange(*infer_));
    if (res.result_int() != 200)
      return FromHttpStatus(res.result_int(),
                            absl::StrCat("inference of model '", infer_model_, "' failed: ", ErrorText(res)));
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<json> GetJson(http::request<http::string_body>& req) {
    HEPML_ASSIGN_OR_RETURN(Response res, Exchange(req));
    if (res.result_int() != 200)
      return FromHttpStatus(res.result_int(), ErrorText(res));
    json body = json::parse(res.body(), nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object())
      return absl::InternalError(absl::StrCat(std::string(req.target()), " from ", address(), ": the answer is not a JSON object"));
    return body;
  }

  void RunIo() {
    io_.restart();
    io_.run();
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  absl::Status Connect() {
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot resolve '", host_, "': ", ec.message()));
    stream_.expires_after(options_.timeout);
    stream_.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    RunIo();
    if (ec) {
      Close();
      if (ec == beast::error::timeout)
        return absl::DeadlineExceededError(absl::StrCat("cannot connect to HTTP server at ", address(), ": timed out"));
      return absl::UnavailableError(absl::StrCat("cannot connect to HTTP server at ", address(), ": ", ec.message()));
    }
    stream_.socket().set_option(tcp::no_delay(true), ec);
    return absl::OkStatus();
  }

  // Sends `req` on the open connection (opening one if needed) and reads the
  // answer. A failure on a connection used before is retried once on a new
  // one: the server may have closed an idle keep-alive connection.
  absl::StatusOr<Response> Exchange(http::request<http::string_body>& req) {
    req.set(http::field::host, host_);
    req.keep_alive(true);
    for (int attempt = 0;; ++attempt) {
      bool fresh = !stream_.socket().is_open();
      if (fresh) HEPML_RETURN_IF_ERROR(Connect());
      beast::error_code ec;
      stream_.expires_after(options_.timeout);
      http::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
      RunIo();
      http::response_parser<http::string_body> parser;
      parser.body_limit(kMaxResponseBytes);
      if (!ec) {
        http::async_read(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
        RunIo();
      }
      if (!ec) {
        Response res = parser.release();
        if (!res.keep_alive()) Close();
        return res;
      }
      Close();
      buffer_.clear();
      if (ec == beast::error::timeout)
        return absl::DeadlineExceededError(absl::StrCat(std::string(req.target()), " on ", address(), ": no answer within ",
                                                        options_.timeout.count(), " ms"));
      if (fresh || attempt > 0)
        return absl::UnavailableError(absl::StrCat(std::string(req.target()), " on ", address(), ": ", ec.message()));
    }
  }

  std::string host_, port_;
  ClientOptions options_;
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request<http::string_body>> infer_;
  std::string infer_model_;
};

}  // namespace

std::unique_ptr<InferenceClient> NewHttpClient(const std::string& address, const std::string& host,
                                               const std::string& port, const ClientOptions& options) {
  return std::make_unique<HttpClient>(address, host, port, options);
}

}  // namespace hepml::serve::client::internal
