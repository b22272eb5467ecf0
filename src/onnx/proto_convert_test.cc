#include "onnx/proto_convert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "onnx/onnx_pb.h"

namespace hepml {
namespace {

// ONNX TensorProto.DataType numbers newer than the onnx.proto hepml builds with.
constexpr int kFloat8E4M3FN = 17, kFloat8E5M2 = 19, kUInt4 = 21, kInt4 = 22;

onnx::TensorProto RawTensor(int data_type, std::vector<int64_t> dims, const std::string& raw) {
  onnx::TensorProto p;
  p.set_name("t");
  p.set_data_type(data_type);
  for (int64_t d : dims) p.add_dims(d);
  p.set_raw_data(raw);
  return p;
}

std::vector<int> Bytes(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  return std::vector<int>(p, p + t.nbytes());
}
std::vector<int> Int8s(const Tensor& t) {
  const auto* p = t.data<int8_t>();
  return std::vector<int>(p, p + t.size());
}

TEST(ProtoConvertTest, Float8FromRawDataOneBytePerValue) {
  auto t = TensorFromProto(RawTensor(kFloat8E4M3FN, {3}, std::string("\x38\xfe\x7f", 3)), "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kFloat8E4M3FN);
  EXPECT_EQ(t->shape(), Shape({3}));
  const auto* v = t->data<Float8E4M3FN>();
  EXPECT_EQ(static_cast<float>(v[0]), 1.0f);
  EXPECT_EQ(static_cast<float>(v[1]), -448.0f);
  EXPECT_TRUE(std::isnan(static_cast<float>(v[2])));
}

TEST(ProtoConvertTest, Float8FromInt32DataOneCodePerEntry) {
  // onnx.helper.make_tensor stores each float8 value's bits in one int32.
  onnx::TensorProto p;
  p.set_data_type(kFloat8E5M2);
  p.add_dims(2);
  p.add_int32_data(0x3c);  // 1.0
  p.add_int32_data(0xfc);  // -inf
  auto t = TensorFromProto(p, "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(Bytes(*t), std::vector<int>({0x3c, 0xfc}));
  EXPECT_EQ(static_cast<float>(t->data<Float8E5M2>()[1]), -std::numeric_limits<float>::infinity());
}

TEST(ProtoConvertTest, Int4RawDataIsPackedLowNibbleFirstAndSignExtended) {
  // [-8, 7, -1, 3, 5]: nibbles 8 7 | f 3 | 5 (pad)
  auto t = TensorFromProto(RawTensor(kInt4, {5}, std::string("\x78\x3f\x05", 3)), "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kInt4);
  EXPECT_EQ(t->nbytes(), 5u);  // unpacked in memory
  EXPECT_EQ(Int8s(*t), std::vector<int>({-8, 7, -1, 3, 5}));
}

TEST(ProtoConvertTest, UInt4RawDataOddCount) {
  auto t = TensorFromProto(RawTensor(kUInt4, {3, 1}, std::string("\xf1\x09", 2)), "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(Bytes(*t), std::vector<int>({1, 15, 9}));
}

TEST(ProtoConvertTest, Int4FromInt32DataHoldsPackedBytes) {
  // onnx.helper.make_tensor (onnx >= 1.16) writes the packed bytes, one per int32.
  onnx::TensorProto p;
  p.set_data_type(kInt4);
  p.add_dims(2);
  p.add_dims(2);
  p.add_int32_data(0x9e);  // -2, -7
  p.add_int32_data(0x10);  // 0, 1
  auto t = TensorFromProto(p, "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(Int8s(*t), std::vector<int>({-2, -7, 0, 1}));
  p.add_int32_data(0);  // one entry too many
  auto bad = TensorFromProto(p, "");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("int4"), std::string::npos) << bad.status();
}

TEST(ProtoConvertTest, PackedSizeIsChecked) {
  auto t = TensorFromProto(RawTensor(kUInt4, {5}, std::string("\x11\x11", 2)), "");  // needs 3 bytes
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("needs 3"), std::string::npos) << t.status();
  EXPECT_FALSE(TensorFromProto(RawTensor(kFloat8E4M3FN, {2}, std::string("\x01", 1)), "").ok());
  EXPECT_FALSE(TensorFromProto(RawTensor(23, {1}, std::string("\x01", 1)), "").ok());  // float4e2m1
}

// Found by fuzz/fuzz_onnx: a 258-byte model whose initializer declared
// ~2^30 float64 values allocated 8 GB before its data size was checked.
TEST(ProtoConvertTest, ShapeBeyondTheDataIsRefusedBeforeAllocating) {
  onnx::TensorProto p;
  p.set_name("w");
  p.set_data_type(onnx::TensorProto::DOUBLE);
  p.add_dims(int64_t{1} << 30);
  p.add_dims(16);  // 128 GiB of float64
  p.add_double_data(1.0);
  auto t = TensorFromProto(p, "");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("holds data for at most 2"), std::string::npos) << t.status();
  EXPECT_NE(t.status().message().find("'w'"), std::string::npos) << t.status();
  // Same with raw_data, strings, and as a whole model through the importer path.
  EXPECT_FALSE(TensorFromProto(RawTensor(onnx::TensorProto::FLOAT, {int64_t{1} << 40}, "abcd"), "").ok());
  onnx::TensorProto s;
  s.set_data_type(onnx::TensorProto::STRING);
  s.add_dims(int64_t{1} << 40);
  EXPECT_FALSE(TensorFromProto(s, "").ok());
  // A matching tensor still converts.
  auto ok = TensorFromProto(RawTensor(onnx::TensorProto::FLOAT, {1}, std::string(4, '\0')), "");
  ASSERT_TRUE(ok.ok()) << ok.status();
}

TEST(ProtoConvertTest, TensorToProtoPacks4BitTypesAndRoundTrips) {
  Tensor t = Tensor::Empty(DType::kInt4, {5});
  const int8_t values[] = {-8, 7, -1, 3, 5};
  std::memcpy(t.raw_mutable_data(), values, 5);
  onnx::TensorProto p;
  TensorToProto(t, "x", &p);
  EXPECT_EQ(p.data_type(), kInt4);
  EXPECT_EQ(p.raw_data(), std::string("\x78\x3f\x05", 3));
  auto back = TensorFromProto(p, "");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(Int8s(*back), std::vector<int>({-8, 7, -1, 3, 5}));

  Tensor f8 = Tensor::FromVector<Float8E5M2>({2}, {Float8E5M2(1.5), Float8E5M2(-0.25)});
  TensorToProto(f8, "y", &p);
  EXPECT_EQ(p.data_type(), kFloat8E5M2);
  auto f8_back = TensorFromProto(p, "");
  ASSERT_TRUE(f8_back.ok()) << f8_back.status();
  EXPECT_EQ(Bytes(*f8_back), Bytes(f8));
}

}  // namespace
}  // namespace hepml
