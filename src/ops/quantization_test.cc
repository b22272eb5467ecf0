// Unit tests of the quantization family. Expected values are worked out by
// hand (stated next to each case) or with numpy (int32 arithmetic, float32
// multipliers, np.rint for round-half-to-even), as noted.
#include <gtest/gtest.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

// A rank-0 tensor.
template <typename T>
Tensor Sc(T v) {
  Shape scalar;
  return Tensor::FromVector<T>(scalar, std::vector<T>{v});
}

bool HasMessage(const absl::Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

// ---- QuantizeLinear ---------------------------------------------------------

TEST(QuantizeLinearTest, RoundsHalfToEvenAndSaturatesInt8) {
  // x / 1 rounded half to even: 0.5->0, 1.5->2, 2.5->2, -0.5->0, -1.5->-2;
  // 300 and -300 saturate to 127 and -128.
  auto out = RunOp("QuantizeLinear", 13,
                   {T_<float>({7}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 300.f, -300.f}),
                    Sc<float>(1.0f), Sc<int8_t>(0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt8);
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({0, 2, 2, 0, -2, 127, -128}));
}

TEST(QuantizeLinearTest, DefaultsToUint8WithoutZeroPoint) {
  // 1/0.5=2, -1/0.5=-2 -> saturates to 0, 200/0.5=400 -> 255.
  auto out = RunOp("QuantizeLinear", 10,
                   {T_<float>({3}, {1.f, -1.f, 200.f}), Sc<float>(0.5f), Tensor()});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kUInt8);
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({2, 0, 255}));
}

TEST(QuantizeLinearTest, Int32InputIsQuantized) {
  // 7/2=3.5 -> 4 (half to even), +1 = 5; -9/2=-4.5 -> -4, +1 = -3.
  auto out = RunOp("QuantizeLinear", 13,
                   {T_<int32_t>({2}, {7, -9}), Sc<float>(2.f), Sc<int8_t>(1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({5, -3}));
}

TEST(QuantizeLinearTest, PerAxisWithNegativeAxis) {
  // Column 0: scale 1, zp 0; column 1: scale 2, zp 10. x = [[1, 4], [3, 8]].
  auto out = RunOp("QuantizeLinear", 13,
                   {T_<float>({2, 2}, {1.f, 4.f, 3.f, 8.f}), T_<float>({2}, {1.f, 2.f}),
                    T_<uint8_t>({2}, {0, 10})},
                   {AttrInt("axis", -1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({1, 12, 3, 14}));
}

TEST(QuantizeLinearTest, PerAxisOnOneDimensionalInput) {
  // Rank-1 x: the default axis 1 does not exist; the only axis is used.
  // 4/2 = 2, 9/3 = 3.
  auto out = RunOp("QuantizeLinear", 13, {T_<float>({2}, {4.f, 9.f}), T_<float>({2}, {2.f, 3.f}),
                                          T_<uint8_t>({2}, {0, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({2, 3}));
}

TEST(QuantizeLinearTest, PerAxisNeedsOpset13) {
  auto out = RunOp("QuantizeLinear", 10,
                   {T_<float>({2, 2}, {1.f, 4.f, 3.f, 8.f}), T_<float>({2}, {1.f, 2.f}),
                    T_<uint8_t>({2}, {0, 10})});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(HasMessage(out.status(), "before opset 13")) << out.status();
}

TEST(QuantizeLinearTest, PerAxisLengthMismatchIsAnError) {
  auto out = RunOp("QuantizeLinear", 13,
                   {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({2}, {1.f, 2.f}),
                    T_<uint8_t>({2}, {0, 0})},
                   {AttrInt("axis", 1)});
  ASSERT_FALSE(out.ok());
  out = RunOp("QuantizeLinear", 13,
              {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({2}, {1.f, 2.f}), T_<uint8_t>({2}, {0, 0})},
              {AttrInt("axis", 5)});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(HasMessage(out.status(), "out of range")) << out.status();
}

TEST(QuantizeLinearTest, BlockedQuantizationAtOpset21) {
  // x = [[1,2,3,4],[5,6,7,8]], axis 1, block 2: scale/zp per (row, block).
  // row 0: 1/1, 2/1, 3/2=1.5->2 (+1), 4/2=2 (+1)   -> 1, 2, 3, 3
  // row 1: 5/.5=10 (+2), 12 (+2), 7/4=1.75->2 (+3), 2 (+3) -> 12, 14, 5, 5
  auto out = RunOp("QuantizeLinear", 21,
                   {T_<float>({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), T_<float>({2, 2}, {1.f, 2.f, 0.5f, 4.f}),
                    T_<uint8_t>({2, 2}, {0, 1, 2, 3})},
                   {AttrInt("axis", 1), AttrInt("block_size", 2)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({1, 2, 3, 3, 12, 14, 5, 5}));
}

TEST(QuantizeLinearTest, BlockedWithPartialLastBlock) {
  // 5 elements, block 2 -> 3 blocks; scales 1, 10, 100.
  // 10/1, 20/1 -> 10, 20; 30/10, 40/10 -> 3, 4; 500/100 -> 5.
  auto out = RunOp("QuantizeLinear", 21,
                   {T_<float>({1, 5}, {10, 20, 30, 40, 500}), T_<float>({1, 3}, {1.f, 10.f, 100.f}),
                    T_<int8_t>({1, 3}, {0, 0, 0})},
                   {AttrInt("axis", 1), AttrInt("block_size", 2)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({10, 20, 3, 4, 5}));
}

TEST(QuantizeLinearTest, BlockedScaleShapeMismatchIsAnError) {
  auto out = RunOp("QuantizeLinear", 21,
                   {T_<float>({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), T_<float>({2, 3}, {1, 1, 1, 1, 1, 1}),
                    T_<uint8_t>({2, 3}, {0, 0, 0, 0, 0, 0})},
                   {AttrInt("axis", 1), AttrInt("block_size", 2)});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(HasMessage(out.status(), "block_size")) << out.status();
}

TEST(QuantizeLinearTest, Int16OutputAtOpset21Only) {
  // 1000/0.5 = 2000, -40000/0.5 saturates to -32768.
  std::vector<Tensor> in = {T_<float>({2}, {1000.f, -40000.f}), Sc<float>(0.5f),
                            Sc<int16_t>(0)};
  auto out = RunOp("QuantizeLinear", 21, in);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt16);
  EXPECT_EQ(Values<int16_t>(out->at(0)), std::vector<int16_t>({2000, -32768}));
  auto old = RunOp("QuantizeLinear", 19, in);
  ASSERT_FALSE(old.ok());
}

TEST(QuantizeLinearTest, OutputDtypeAttribute) {
  // output_dtype = 3 (int8) without a zero point: -3/1 = -3 stays signed.
  auto out = RunOp("QuantizeLinear", 21, {T_<float>({1}, {-3.f}), Sc<float>(1.f)},
                   {AttrInt("output_dtype", 3)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt8);
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({-3}));
  // Disagreeing with the zero point's type is an error.
  auto bad = RunOp("QuantizeLinear", 21,
                   {T_<float>({1}, {-3.f}), Sc<float>(1.f), Sc<uint8_t>(0)},
                   {AttrInt("output_dtype", 3)});
  ASSERT_FALSE(bad.ok());
}

// An int4 (is_signed) or uint4 tensor, unpacked one value per byte.
Tensor Int4s(Shape shape, std::vector<int> values, bool is_signed = true) {
  Tensor t = Tensor::Empty(is_signed ? DType::kInt4 : DType::kUInt4, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i) static_cast<int8_t*>(t.raw_mutable_data())[i] = static_cast<int8_t>(values[i]);
  return t;
}
std::vector<int> Nibbles(const Tensor& t) {
  std::vector<int> out;
  for (int64_t i = 0; i < t.size(); ++i) {
    out.push_back(t.dtype() == DType::kInt4 ? t.data<int8_t>()[i] : t.data<uint8_t>()[i]);
  }
  return out;
}
std::vector<int> Codes(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  return std::vector<int>(p, p + t.size());
}

TEST(QuantizeLinearTest, Float8OutputUsesCastRoundingAndSaturate) {
  // x / 2 = [0.5, 1.5, 500, -500, 0.15] in float8e4m3fn: 0.5 = 1.0 * 2^-1 ->
  // exponent 6: 0x30; 1.5 -> 0x3c; +/-500 saturate to +/-448 (0x7e, 0xfe);
  // 0.15 = 9.6 units of 2^-6 -> 10 -> 1.25 * 2^-3: 0x22.
  std::vector<Tensor> in = {T_<float>({5}, {1.f, 3.f, 1000.f, -1000.f, 0.3f}), Sc<float>(2.f),
                            Sc<Float8E4M3FN>(Float8E4M3FN(0.0))};
  auto out = RunOp("QuantizeLinear", 19, in);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat8E4M3FN);
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x30, 0x3c, 0x7e, 0xfe, 0x22}));
  // saturate = 0: out of range gives NaN (0x7f with the sign).
  out = RunOp("QuantizeLinear", 19, in, {AttrInt("saturate", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x30, 0x3c, 0x7f, 0xff, 0x22}));
  // float8 outputs are new in opset 19.
  EXPECT_FALSE(RunOp("QuantizeLinear", 13, {T_<float>({1}, {1.f}), Sc<float>(1.f),
                                            Sc<Float8E4M3FN>(Float8E4M3FN(0.0))}).ok());
  // output_dtype = float8e5m2fnuz (20): 1.0 -> exponent 16: 0x40.
  out = RunOp("QuantizeLinear", 21, {T_<float>({1}, {2.f}), Sc<float>(2.f)}, {AttrInt("output_dtype", 20)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat8E5M2FNUZ);
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x40}));
}

TEST(QuantizeLinearTest, Int4OutputSaturatesToItsRange) {
  // x / 0.5 = [-40, -7, -2.5, 0.8, 10, 40] -> round half to even
  // [-40, -7, -2, 1, 10, 40], + 1 -> [-39, -6, -1, 2, 11, 41] -> [-8, 7] range.
  auto out = RunOp("QuantizeLinear", 21,
                   {T_<float>({6}, {-20.f, -3.5f, -1.25f, 0.4f, 5.f, 20.f}), Sc<float>(0.5f),
                    Int4s({}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt4);
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({-8, -6, -1, 2, 7, 7}));
  // uint4 through output_dtype (21): [-1, 3.2, 7.5, 100] -> [0, 3, 8, 15].
  out = RunOp("QuantizeLinear", 21, {T_<float>({4}, {-1.f, 3.2f, 7.5f, 100.f}), Sc<float>(1.f)},
              {AttrInt("output_dtype", 21)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kUInt4);
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({0, 3, 8, 15}));
  // int4 is new in opset 21.
  EXPECT_FALSE(RunOp("QuantizeLinear", 19, {T_<float>({1}, {1.f}), Sc<float>(1.f), Int4s({}, {0})}).ok());
  // float4e2m1 (23) is not a hepml type.
  auto bad = RunOp("QuantizeLinear", 21, {T_<float>({1}, {1.f}), Sc<float>(1.f)}, {AttrInt("output_dtype", 23)});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(HasMessage(bad.status(), "23")) << bad.status();
}

TEST(QuantizeLinearTest, Uint4Blocked) {
  // Blocks of 2 along axis 1: scales [1, 0.5], zero points [1, 4].
  // [0.4, 20] / 1 + 1 -> [1, 15 (21 saturated)]; [-1.5, 3] / 0.5 + 4 -> [1, 10].
  auto out = RunOp("QuantizeLinear", 21,
                   {T_<float>({1, 4}, {0.4f, 20.f, -1.5f, 3.f}), T_<float>({1, 2}, {1.f, 0.5f}),
                    Int4s({1, 2}, {1, 4}, false)},
                   {AttrInt("axis", 1), AttrInt("block_size", 2)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({1, 15, 1, 10}));
}

TEST(DequantizeLinearTest, Float8AndInt4Inputs) {
  // float8e5m2 [1.5, -0.25] * 2 (opset 19).
  auto out = RunOp("DequantizeLinear", 19,
                   {T_<Float8E5M2>({2}, {Float8E5M2(1.5), Float8E5M2(-0.25)}), Sc<float>(2.f),
                    Sc<Float8E5M2>(Float8E5M2(0.0))});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({3.f, -0.5f}));
  // int4 (opset 21): ([-8, 7, -1] - (-1)) * 0.5 = [-3.5, 4, 0].
  out = RunOp("DequantizeLinear", 21, {Int4s({3}, {-8, 7, -1}), Sc<float>(0.5f), Int4s({}, {-1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-3.5f, 4.f, 0.f}));
  // uint4, blocks of 2 on axis 1: ([0, 15] - 1) * 1, ([3, 4] - 4) * 0.5.
  out = RunOp("DequantizeLinear", 21,
              {Int4s({1, 4}, {0, 15, 3, 4}, false), T_<float>({1, 2}, {1.f, 0.5f}), Int4s({1, 2}, {1, 4}, false)},
              {AttrInt("axis", 1), AttrInt("block_size", 2)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-1.f, 14.f, -0.5f, 0.f}));
  // int4 input before opset 21 is refused.
  EXPECT_FALSE(RunOp("DequantizeLinear", 19, {Int4s({1}, {1}), Sc<float>(1.f)}).ok());
}

TEST(QuantizeLinearTest, Float16InputAtOpset19) {
  // 3/2 = 1.5 -> 2; 5/2 = 2.5 -> 2 (half to even).
  auto out = RunOp("QuantizeLinear", 19,
                   {T_<Float16>({2}, {Float16(3.f), Float16(5.f)}), Sc<Float16>(Float16(2.f)),
                    Sc<uint8_t>(0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({2, 2}));
  // float16 input is not accepted before opset 19.
  auto old = RunOp("QuantizeLinear", 13,
                   {T_<Float16>({1}, {Float16(3.f)}), Sc<float>(2.f), Sc<uint8_t>(0)});
  ASSERT_FALSE(old.ok());
}

TEST(QuantizeLinearTest, EmptyAndScalarInputs) {
  auto empty = RunOp("QuantizeLinear", 13,
                     {T_<float>({0, 3}, {}), Sc<float>(1.f), Sc<uint8_t>(0)});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({0, 3}));
  auto scalar = RunOp("QuantizeLinear", 13,
                      {Sc<float>(6.f), Sc<float>(4.f), Sc<uint8_t>(1)});
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->at(0).shape(), Shape({}));
  EXPECT_EQ(Values<uint8_t>(scalar->at(0)), std::vector<uint8_t>({3}));  // 1.5 -> 2, +1
}

// ---- DequantizeLinear -------------------------------------------------------

TEST(DequantizeLinearTest, Int32InputWithoutZeroPoint) {
  auto out = RunOp("DequantizeLinear", 13, {T_<int32_t>({2}, {-1000000, 7}), Sc<float>(0.5f)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat32);
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-500000.f, 3.5f}));
}

TEST(DequantizeLinearTest, Float16ScaleGivesFloat16OutputAtOpset19) {
  // (10 - 4) * 0.5 = 3, (0 - 4) * 0.5 = -2.
  auto out = RunOp("DequantizeLinear", 19,
                   {T_<uint8_t>({2}, {10, 0}), Sc<Float16>(Float16(0.5f)), Sc<uint8_t>(4)});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).dtype(), DType::kFloat16);
  EXPECT_EQ(static_cast<float>(out->at(0).data<Float16>()[0]), 3.f);
  EXPECT_EQ(static_cast<float>(out->at(0).data<Float16>()[1]), -2.f);
  auto old = RunOp("DequantizeLinear", 13,
                   {T_<uint8_t>({1}, {10}), Sc<Float16>(Float16(0.5f)), Sc<uint8_t>(4)});
  ASSERT_FALSE(old.ok());
}

TEST(DequantizeLinearTest, Uint16AtOpset21) {
  // (65535 - 32768) * 2 = 65534.
  std::vector<Tensor> in = {T_<uint16_t>({1}, {65535}), Sc<float>(2.f), Sc<uint16_t>(32768)};
  auto out = RunOp("DequantizeLinear", 21, in);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({65534.f}));
  ASSERT_FALSE(RunOp("DequantizeLinear", 19, in).ok());
}

TEST(DequantizeLinearTest, BlockedAtOpset21) {
  // Inverse of QuantizeLinearTest.BlockedQuantizationAtOpset21:
  // row 0: (1-0)*1, (2-0)*1, (3-1)*2, (3-1)*2; row 1: (12-2)*.5, (14-2)*.5, (5-3)*4, (5-3)*4.
  auto out = RunOp("DequantizeLinear", 21,
                   {T_<uint8_t>({2, 4}, {1, 2, 3, 3, 12, 14, 5, 5}), T_<float>({2, 2}, {1.f, 2.f, 0.5f, 4.f}),
                    T_<uint8_t>({2, 2}, {0, 1, 2, 3})},
                   {AttrInt("axis", 1), AttrInt("block_size", 2)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1, 2, 4, 4, 5, 6, 8, 8}));
}

TEST(DequantizeLinearTest, PerAxisAxis0) {
  // Rows: scale 1 zp 1, scale 3 zp -2. x = [[3, 4], [-2, 0]].
  auto out = RunOp("DequantizeLinear", 13,
                   {T_<int8_t>({2, 2}, {3, 4, -2, 0}), T_<float>({2}, {1.f, 3.f}), T_<int8_t>({2}, {1, -2})},
                   {AttrInt("axis", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({2, 3, 0, 6}));
}

TEST(DequantizeLinearTest, BadInputsAreErrors) {
  // Zero point type differs from x.
  EXPECT_FALSE(RunOp("DequantizeLinear", 13,
                     {T_<uint8_t>({1}, {1}), Sc<float>(1.f), Sc<int8_t>(0)})
                   .ok());
  // Zero point shape differs from the scale's.
  EXPECT_FALSE(RunOp("DequantizeLinear", 13,
                     {T_<uint8_t>({2, 2}, {1, 2, 3, 4}), T_<float>({2}, {1.f, 1.f}), T_<uint8_t>({3}, {0, 0, 0})})
                   .ok());
  // Float input is not a quantized type.
  EXPECT_FALSE(RunOp("DequantizeLinear", 13, {T_<float>({1}, {1.f}), Sc<float>(1.f)}).ok());
}

// ---- DynamicQuantizeLinear ----------------------------------------------------

TEST(DynamicQuantizeLinearTest, AllZeroInputUsesUnitScale) {
  auto out = RunOp("DynamicQuantizeLinear", 11, {T_<float>({3}, {0.f, 0.f, 0.f})}, {}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({0, 0, 0}));
  EXPECT_EQ(Values<float>(out->at(1)), std::vector<float>({1.f}));
  EXPECT_EQ(Values<uint8_t>(out->at(2)), std::vector<uint8_t>({0}));
}

TEST(DynamicQuantizeLinearTest, PositiveOnlyRangeIncludesZero) {
  // Range [0, 5.1] -> scale 0.02, zero point 0; 5.1/0.02 = 255, 1/0.02 = 50.
  auto out = RunOp("DynamicQuantizeLinear", 11, {T_<float>({2}, {1.f, 5.1f})}, {}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FLOAT_EQ(out->at(1).data<float>()[0], 5.1f / 255.f);
  EXPECT_EQ(Values<uint8_t>(out->at(2)), std::vector<uint8_t>({0}));
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({50, 255}));
}

TEST(DynamicQuantizeLinearTest, EmptyInput) {
  auto out = RunOp("DynamicQuantizeLinear", 11, {T_<float>({0}, {})}, {}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).size(), 0);
  EXPECT_EQ(out->at(1).shape(), Shape({}));
}

// ---- MatMulInteger / QLinearMatMul ------------------------------------------------

TEST(MatMulIntegerTest, BatchedWithPerRowAndPerColumnZeroPoints) {
  // numpy: A = arange(12).reshape(2,2,3) - 4 (int8), B = [[1,2],[3,4],[5,6]]
  // (uint8), azp = [1,-1] per row, bzp = [2,3] per column:
  // ((A - azp[:,None]) @ (B - bzp)).ravel() = [-8,-8,7,7,10,10,25,25].
  std::vector<int8_t> a;
  for (int i = 0; i < 12; ++i) a.push_back(static_cast<int8_t>(i - 4));
  auto out = RunOp("MatMulInteger", 10,
                   {T_<int8_t>({2, 2, 3}, a), T_<uint8_t>({3, 2}, {1, 2, 3, 4, 5, 6}),
                    T_<int8_t>({2}, {1, -1}), T_<uint8_t>({2}, {2, 3})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt32);
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2, 2}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-8, -8, 7, 7, 10, 10, 25, 25}));
}

TEST(MatMulIntegerTest, VectorOperandsAndNoZeroPoints) {
  // [1,2,3] . [[1],[1],[1]] -> [6]; 1-D @ 2-D drops the row dim.
  auto out = RunOp("MatMulInteger", 10, {T_<uint8_t>({3}, {1, 2, 3}), T_<uint8_t>({3, 1}, {1, 1, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({6}));
}

TEST(MatMulIntegerTest, ExtremeValuesAreExact) {
  // (-128 - 127) * (255 - 0) * 3 = -195075: no overflow, no float rounding.
  auto out = RunOp("MatMulInteger", 10,
                   {T_<int8_t>({1, 3}, {-128, -128, -128}), T_<uint8_t>({3, 1}, {255, 255, 255}),
                    Sc<int8_t>(127), Sc<uint8_t>(0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-195075}));
}

TEST(MatMulIntegerTest, BadShapesAreErrors) {
  EXPECT_FALSE(RunOp("MatMulInteger", 10, {T_<uint8_t>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<uint8_t>({2, 1}, {1, 1})}).ok());
  // a zero point with neither per-tensor nor per-row shape.
  EXPECT_FALSE(RunOp("MatMulInteger", 10,
                     {T_<uint8_t>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<uint8_t>({3, 1}, {1, 1, 1}),
                      T_<uint8_t>({3}, {0, 0, 0})})
                   .ok());
  EXPECT_FALSE(RunOp("MatMulInteger", 10, {T_<int32_t>({1, 1}, {1}), T_<uint8_t>({1, 1}, {1})}).ok());
}

TEST(QLinearMatMulTest, PerColumnWeightScale) {
  // numpy: a = [[10,20,30],[40,50,60]] u8, azp 5; b = [[1,-2],[3,4],[-5,6]] i8,
  // bzp = [1,-1]; acc = [[-120,245],[-240,575]]; mult = 0.1*[0.2,0.05]/0.5 =
  // [0.04,0.01] (float32); rint(acc*mult) - 3 = [[-8,-1],[-13,3]].
  auto out = RunOp("QLinearMatMul", 10,
                   {T_<uint8_t>({2, 3}, {10, 20, 30, 40, 50, 60}), Sc<float>(0.1f),
                    Sc<uint8_t>(5), T_<int8_t>({3, 2}, {1, -2, 3, 4, -5, 6}),
                    T_<float>({2}, {0.2f, 0.05f}), T_<int8_t>({2}, {1, -1}), Sc<float>(0.5f),
                    Sc<int8_t>(-3)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt8);
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({-8, -1, -13, 3}));
}

TEST(QLinearMatMulTest, Float16ScalesAtOpset21) {
  // [2,4] . [[3],[1]] = 10 with zero points 0; 10 * (0.5*0.5/0.25) = 10.
  std::vector<Tensor> in = {T_<uint8_t>({1, 2}, {2, 4}), Sc<Float16>(Float16(0.5f)),
                            Sc<uint8_t>(0), T_<uint8_t>({2, 1}, {3, 1}),
                            Sc<Float16>(Float16(0.5f)), Sc<uint8_t>(0),
                            Sc<Float16>(Float16(0.25f)), Sc<uint8_t>(0)};
  auto out = RunOp("QLinearMatMul", 21, in);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({10}));
  EXPECT_FALSE(RunOp("QLinearMatMul", 10, in).ok());
}

TEST(QLinearMatMulTest, MissingInputOrNonScalarOutputScaleIsAnError) {
  EXPECT_FALSE(RunOp("QLinearMatMul", 10,
                     {T_<uint8_t>({1, 1}, {1}), Sc<float>(1.f), Sc<uint8_t>(0),
                      T_<uint8_t>({1, 1}, {1}), Sc<float>(1.f), Sc<uint8_t>(0),
                      T_<float>({2}, {1.f, 1.f}), Sc<uint8_t>(0)})
                   .ok());
  EXPECT_FALSE(RunOp("QLinearMatMul", 10,
                     {T_<uint8_t>({1, 1}, {1}), Sc<float>(1.f), Sc<uint8_t>(0),
                      T_<uint8_t>({1, 1}, {1})})
                   .ok());
}

// ---- ConvInteger / QLinearConv ----------------------------------------------------

// x = arange(18).reshape(1,2,3,3) (uint8), w (M=2, group=2) = [[1,2],[3,4]] and
// [[2,0],[1,1]] (int8), x_zp = 3, w_zp = [1, 0], auto_pad SAME_UPPER (pads
// end by 1). numpy (direct loops over the zero-padded, centred input):
const std::vector<int32_t> kConvIntegerExpected = {1, 7, 4, 19, 25, 10, 4, 5, 0,
                                                   31, 35, 27, 43, 47, 36, 24, 26, 28};

std::vector<Tensor> ConvInputs() {
  std::vector<uint8_t> x;
  for (int i = 0; i < 18; ++i) x.push_back(static_cast<uint8_t>(i));
  return {T_<uint8_t>({1, 2, 3, 3}, x), T_<int8_t>({2, 1, 2, 2}, {1, 2, 3, 4, 2, 0, 1, 1})};
}

TEST(ConvIntegerTest, GroupsPerChannelZeroPointAndSameUpper) {
  auto in = ConvInputs();
  auto out = RunOp("ConvInteger", 10, {in[0], in[1], Sc<uint8_t>(3), T_<int8_t>({2}, {1, 0})},
                   {AttrInt("group", 2), AttrString("auto_pad", "SAME_UPPER")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 2, 3, 3}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), kConvIntegerExpected);
}

TEST(ConvIntegerTest, ExplicitPadsMatchSameUpper) {
  auto in = ConvInputs();
  auto out = RunOp("ConvInteger", 10, {in[0], in[1], Sc<uint8_t>(3), T_<int8_t>({2}, {1, 0})},
                   {AttrInt("group", 2), AttrInts("pads", {0, 0, 1, 1}), AttrInts("kernel_shape", {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), kConvIntegerExpected);
}

TEST(ConvIntegerTest, BadGeometryIsAnError) {
  auto in = ConvInputs();
  // group 1 but w has 1 input channel for 2 in x.
  EXPECT_FALSE(RunOp("ConvInteger", 10, {in[0], in[1]}).ok());
  // kernel larger than the input without padding.
  EXPECT_FALSE(RunOp("ConvInteger", 10,
                     {in[0], T_<int8_t>({1, 2, 4, 4}, std::vector<int8_t>(32, 1))})
                   .ok());
  // w zero point of the wrong length.
  EXPECT_FALSE(RunOp("ConvInteger", 10, {in[0], in[1], Sc<uint8_t>(0), T_<int8_t>({3}, {0, 0, 0})},
                     {AttrInt("group", 2)})
                   .ok());
  // rank-2 input.
  EXPECT_FALSE(RunOp("ConvInteger", 10, {T_<uint8_t>({1, 1}, {1}), T_<int8_t>({1, 1}, {1})}).ok());
}

TEST(QLinearConvTest, PerChannelScalesBiasAndSaturation) {
  // numpy: acc = ConvInteger result + bias [100, -7]; mult = 0.5*[0.25, 2]/1.5
  // (float32) = [0.0833333, 0.6666667]; clip(rint(acc*mult) + 10, -128, 127).
  auto in = ConvInputs();
  auto out = RunOp("QLinearConv", 10,
                   {in[0], Sc<float>(0.5f), Sc<uint8_t>(3), in[1],
                    T_<float>({2}, {0.25f, 2.0f}), T_<int8_t>({2}, {1, 0}), Sc<float>(1.5f),
                    Sc<int8_t>(10), T_<int32_t>({2}, {100, -7})},
                   {AttrInt("group", 2), AttrString("auto_pad", "SAME_UPPER")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt8);
  EXPECT_EQ(Values<int8_t>(out->at(0)),
            std::vector<int8_t>({18, 19, 19, 20, 20, 19, 19, 19, 18, 26, 29, 23, 34, 37, 29, 21, 23, 24}));
}

TEST(QLinearConvTest, SaturatesToUint8) {
  // 1x1 conv of 200 (zp 0) by 100 with unit scales: 20000 -> 255; with
  // weight -1: -200 -> 0.
  auto out = RunOp("QLinearConv", 10,
                   {T_<uint8_t>({1, 1, 1, 1}, {200}), Sc<float>(1.f), Sc<uint8_t>(0),
                    T_<int8_t>({2, 1, 1, 1}, {100, -1}), Sc<float>(1.f), Sc<int8_t>(0),
                    Sc<float>(1.f), Sc<uint8_t>(0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({255, 0}));
}

TEST(QLinearConvTest, BadBiasIsAnError) {
  auto in = ConvInputs();
  auto out = RunOp("QLinearConv", 10,
                   {in[0], Sc<float>(0.5f), Sc<uint8_t>(3), in[1], Sc<float>(1.f),
                    Sc<int8_t>(0), Sc<float>(1.f), Sc<int8_t>(0),
                    T_<int32_t>({3}, {1, 2, 3})},
                   {AttrInt("group", 2)});
  ASSERT_FALSE(out.ok());
}

}  // namespace
}  // namespace hepml::ops::testing
