// The body of an HTTP infer request (KServe v2 JSON, Triton's binary tensor
// extension) through ParseInfer, the function the server calls.
//
// Input layout: two bytes, little-endian, give the Inference-Header-Content-
// Length (0xffff: no such header, the whole body is JSON); the rest is the
// body. A length past the body exercises the header check.
#include <string>

#include "serve/http/kserve_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  unsigned header_length = data[0] | (unsigned{data[1]} << 8);
  hepml::serve::HttpRequest req;
  req.method(boost::beast::http::verb::post);
  req.target("/v2/models/m/infer");
  if (header_length != 0xffff) req.set("Inference-Header-Content-Length", std::to_string(header_length));
  req.body().assign(reinterpret_cast<const char*>(data) + 2, size - 2);
  req.prepare_payload();
  auto parsed = hepml::serve::ParseInfer(req, "m", "");
  if (parsed.ok()) {
    // What the server then reads of every input.
    for (const auto& [name, t] : parsed->request.inputs) (void)t.nbytes();
  }
  return 0;
}
