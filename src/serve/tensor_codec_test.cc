#include "serve/tensor_codec.h"

#include "gtest/gtest.h"

namespace hepml::serve {
namespace {

TEST(TensorCodecTest, RawRoundTrip) {
  Tensor t = Tensor::FromVector<float>({2, 2}, {1, 2, 3, 4});
  std::string raw = TensorToRaw(t);
  EXPECT_EQ(raw.size(), 16u);
  auto back = TensorFromRaw("x", DType::kFloat32, {2, 2}, raw);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->data<float>()[3], 4.0f);
}

TEST(TensorCodecTest, RawSizeMismatchNamesTheTensor) {
  auto t = TensorFromRaw("input 'x'", DType::kFloat32, {2, 2}, std::string(15, '\0'));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("input 'x'"), std::string::npos);
  EXPECT_NE(t.status().message().find("15 bytes"), std::string::npos);
}

TEST(TensorCodecTest, BytesRoundTripAndTruncation) {
  Tensor t = Tensor::FromVector<std::string>({3}, {"ab", "", "xyz"});
  std::string raw = TensorToRaw(t);
  EXPECT_EQ(raw.size(), 3 * 4 + 5u);
  auto back = TensorFromRaw("s", DType::kString, {3}, raw);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->data<std::string>()[2], "xyz");
  EXPECT_FALSE(TensorFromRaw("s", DType::kString, {3}, raw.substr(0, raw.size() - 1)).ok());
  EXPECT_FALSE(TensorFromRaw("s", DType::kString, {3}, raw + "z").ok());
  // A huge element count with little data fails before allocating.
  EXPECT_FALSE(TensorFromRaw("s", DType::kString, {int64_t{1} << 40}, raw).ok());
}

TEST(TensorCodecTest, BoolBytesAreNormalised) {
  auto t = TensorFromRaw("b", DType::kBool, {2}, std::string("\x00\x07", 2));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->data<bool>()[0], false);
  EXPECT_EQ(t->data<bool>()[1], true);
}

TEST(TensorCodecTest, JsonNestedAndFlat) {
  auto nested = TensorFromJson("x", DType::kInt32, {2, 2}, nlohmann::json::parse("[[1, 2], [3, 4]]"));
  ASSERT_TRUE(nested.ok()) << nested.status();
  EXPECT_EQ(nested->data<int32_t>()[2], 3);
  auto flat = TensorFromJson("x", DType::kFloat64, {3}, nlohmann::json::parse("[1, 2.5, -3]"));
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->data<double>()[1], 2.5);
  EXPECT_EQ(TensorToJson(*nested), nlohmann::json::parse("[1, 2, 3, 4]"));
}

TEST(TensorCodecTest, JsonTypeAndRangeErrors) {
  using nlohmann::json;
  EXPECT_FALSE(TensorFromJson("x", DType::kInt8, {1}, json::parse("[300]")).ok());
  EXPECT_FALSE(TensorFromJson("x", DType::kUInt8, {1}, json::parse("[-1]")).ok());
  EXPECT_FALSE(TensorFromJson("x", DType::kInt32, {1}, json::parse("[1.5]")).ok());
  EXPECT_FALSE(TensorFromJson("x", DType::kBool, {1}, json::parse("[1]")).ok());
  EXPECT_FALSE(TensorFromJson("x", DType::kFloat32, {1}, json::parse("[\"a\"]")).ok());
  EXPECT_FALSE(TensorFromJson("x", DType::kString, {1}, json::parse("[1]")).ok());
  EXPECT_FALSE(TensorFromJson("x", DType::kFloat32, {2}, json::parse("[1]")).ok());
  EXPECT_FALSE(TensorFromJson("x", DType::kInt64, {1}, json::parse("[18446744073709551615]")).ok());
  auto u = TensorFromJson("x", DType::kUInt64, {1}, json::parse("[18446744073709551615]"));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->data<uint64_t>()[0], 18446744073709551615ull);
}

// A request body of a million nested arrays (2 MB, far under the body
// limit) must be an error, not a stack overflow in the server.
TEST(TensorCodecTest, DeeplyNestedJsonDataIsRefused) {
  const int depth = 1000000;
  std::string text = std::string(depth, '[') + "1" + std::string(depth, ']');
  nlohmann::json data = nlohmann::json::parse(text);
  auto t = TensorFromJson("input 'x'", DType::kFloat32, {1}, data);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("nested deeper than 64"), std::string::npos) << t.status();
  EXPECT_NE(t.status().message().find("input 'x'"), std::string::npos) << t.status();
  // Nesting as deep as a tensor's rank is still fine.
  auto ok = TensorFromJson("x", DType::kFloat32, {1, 1, 1}, nlohmann::json::parse("[[[2.5]]]"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->data<float>()[0], 2.5f);
}

TEST(TensorCodecTest, CheckedShape) {
  EXPECT_TRUE(CheckedShape("x", {2, 3}).ok());
  EXPECT_TRUE(CheckedShape("x", {0, int64_t{1} << 50}).ok());  // zero elements
  EXPECT_FALSE(CheckedShape("x", {-1, 3}).ok());
  EXPECT_FALSE(CheckedShape("x", {int64_t{1} << 30, int64_t{1} << 30}).ok());
}

}  // namespace
}  // namespace hepml::serve
