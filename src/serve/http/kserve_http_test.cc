// ParseInfer, the decoder of POST /v2/models/M/infer bodies: what it
// accepts, and clear errors for what it must refuse.
#include "serve/http/kserve_http.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace hepml::serve {
namespace {

HttpRequest Post(const std::string& body, int header_length = -1) {
  HttpRequest req;
  req.method(boost::beast::http::verb::post);
  req.target("/v2/models/m/infer");
  if (header_length >= 0) req.set("Inference-Header-Content-Length", std::to_string(header_length));
  req.body() = body;
  req.prepare_payload();
  return req;
}

std::string Error(const std::string& body) {
  auto r = ParseInfer(Post(body), "m", "");
  EXPECT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return std::string(r.status().message());
}

TEST(ParseInferTest, JsonAndBinaryInputs) {
  std::string header =
      R"({"id":"7","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}},)"
      R"({"name":"n","shape":[2],"datatype":"INT64","data":[3,-4]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]})";
  float x[2] = {1.5f, -2.0f};
  std::string body = header + std::string(reinterpret_cast<const char*>(x), sizeof(x));
  auto r = ParseInfer(Post(body, static_cast<int>(header.size())), "m", "1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.id, "7");
  EXPECT_EQ(r->request.model_version, "1");
  ASSERT_EQ(r->request.inputs.size(), 2u);
  EXPECT_EQ(r->request.inputs[0].second.shape(), Shape({1, 2}));
  EXPECT_EQ(r->request.inputs[0].second.data<float>()[1], -2.0f);
  EXPECT_EQ(r->request.inputs[1].second.data<int64_t>()[1], -4);
  ASSERT_EQ(r->binary.size(), 1u);
  EXPECT_TRUE(r->binary[0]);
}

TEST(ParseInferTest, ShapeDimensionsMustBeIntegers) {
  // nlohmann would convert these to int64 with an out-of-range cast.
  for (const char* dim : {"1e30", "-1.5", "18446744073709551615", "\"2\""}) {
    std::string m = Error(absl::StrCat(R"({"inputs":[{"name":"x","shape":[)", dim,
                                       R"(],"datatype":"FP32","data":[1]}]})"));
    EXPECT_NE(m.find("is not a 64-bit integer"), std::string::npos) << dim << ": " << m;
    EXPECT_NE(m.find("input 'x'"), std::string::npos) << m;
  }
  EXPECT_NE(Error(R"({"inputs":[{"name":"x","shape":4,"datatype":"FP32","data":[1]}]})").find("must be an array"),
            std::string::npos);
}

TEST(ParseInferTest, BinaryDataSizeMustBeANonNegativeInteger) {
  for (const char* size : {"-8", "8.5", "\"8\"", "1e3"}) {
    std::string m = Error(absl::StrCat(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32",)",
                                       R"("parameters":{"binary_data_size":)", size, "}}]}"));
    EXPECT_NE(m.find("is not a non-negative integer"), std::string::npos) << size << ": " << m;
  }
}

TEST(ParseInferTest, DeeplyNestedDataIsAnError) {
  const int depth = 200000;
  std::string body = R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":)" + std::string(depth, '[') +
                     "1" + std::string(depth, ']') + "}]}";
  EXPECT_NE(Error(body).find("nested deeper than"), std::string::npos);
}

}  // namespace
}  // namespace hepml::serve
