#include "hepml/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tensor/compare.h"

namespace hepml {
namespace {

TEST(TensorTest, EmptyAllocatesAlignedStorage) {
  Tensor t = Tensor::Empty(DType::kFloat32, {3, 5});
  EXPECT_EQ(t.size(), 15);
  EXPECT_EQ(t.nbytes(), 60u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
}

TEST(TensorTest, ScalarHasRankZeroAndOneElement) {
  Tensor t = Tensor::Scalar<int64_t>(42);
  EXPECT_EQ(t.rank(), 0);
  EXPECT_EQ(t.size(), 1);
  EXPECT_EQ(t.data<int64_t>()[0], 42);
}

TEST(TensorTest, ReshapedSharesTheBufferCloneDoesNot) {
  Tensor t = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = t.Reshaped({3, 2});
  EXPECT_TRUE(r.SharesBufferWith(t));
  EXPECT_EQ(r.shape(), Shape({3, 2}));
  Tensor c = t.Clone();
  EXPECT_FALSE(c.SharesBufferWith(t));
  c.mutable_data<float>()[0] = 100;
  EXPECT_EQ(t.data<float>()[0], 1);
}

TEST(TensorTest, StringTensorsHoldStrings) {
  Tensor t = Tensor::FromVector<std::string>({2}, {"jet", "muon"});
  Tensor c = t.Clone();
  EXPECT_EQ(c.data<std::string>()[1], "muon");
}

TEST(TensorTest, WrapKeepsExternalMemoryAlive) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3});
  Tensor t = Tensor::Wrap(DType::kFloat32, {3}, owner->data(), owner);
  std::weak_ptr<std::vector<float>> weak = owner;
  owner.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(t.data<float>()[2], 3);
}

TEST(Float16Test, RoundTripsAndRoundsToNearestEven) {
  EXPECT_EQ(static_cast<float>(Float16(1.0f)), 1.0f);
  EXPECT_EQ(Float16(1.0f).bits, 0x3c00);
  EXPECT_EQ(Float16(65504.0f).bits, 0x7bff);           // largest finite
  EXPECT_EQ(Float16(1e6f).bits, 0x7c00);               // overflow to +inf
  EXPECT_EQ(Float16(-0.0f).bits, 0x8000);
  EXPECT_EQ(static_cast<float>(Float16(5.960464477539063e-08f)), 5.960464477539063e-08f);  // smallest subnormal
  EXPECT_EQ(Float16(1.0f + 1.0f / 2048).bits, 0x3c00);  // halfway: rounds to even (down)
  EXPECT_EQ(Float16(1.0f + 3.0f / 2048).bits, 0x3c02);  // halfway: rounds to even (up)
  EXPECT_TRUE(std::isnan(static_cast<float>(Float16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(BFloat16Test, KeepsTheUpperHalfWithRounding) {
  EXPECT_EQ(BFloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(static_cast<float>(BFloat16(3.0f)), 3.0f);
  EXPECT_EQ(static_cast<float>(BFloat16(1.00390625f)), 1.0f);  // halfway, rounds to even
  EXPECT_TRUE(std::isnan(static_cast<float>(BFloat16(std::numeric_limits<float>::quiet_NaN()))));
}

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(DTypeTest, Float8AndInt4AreOneByteTypesWithOnnxNumbers) {
  EXPECT_EQ(static_cast<int>(DType::kFloat8E4M3FN), 17);
  EXPECT_EQ(static_cast<int>(DType::kFloat8E5M2FNUZ), 20);
  EXPECT_EQ(static_cast<int>(DType::kUInt4), 21);
  EXPECT_EQ(static_cast<int>(DType::kInt4), 22);
  for (int d = 17; d <= 22; ++d) {
    EXPECT_TRUE(IsKnownDType(d));
    EXPECT_EQ(DTypeSize(static_cast<DType>(d)), 1u);
    EXPECT_STREQ(DTypeNumpyDescr(static_cast<DType>(d)), "");
    EXPECT_FALSE(IsFloatingPoint(static_cast<DType>(d)));
    EXPECT_FALSE(IsInteger(static_cast<DType>(d)));
  }
  EXPECT_FALSE(IsKnownDType(23));
  EXPECT_STREQ(DTypeName(DType::kFloat8E4M3FNUZ), "float8e4m3fnuz");
  EXPECT_STREQ(DTypeName(DType::kInt4), "int4");
  EXPECT_TRUE(IsFloat8(DType::kFloat8E5M2));
  EXPECT_TRUE(Is4BitInt(DType::kUInt4));
  EXPECT_FALSE(Is4BitInt(DType::kInt8));
}

TEST(Float8Test, E4M3FNEncodesNormalsSubnormalsAndLimits) {
  EXPECT_EQ(Float8E4M3FN(1.0).bits, 0x38);    // exponent 7 (bias 7), mantissa 0
  EXPECT_EQ(Float8E4M3FN(-2.5).bits, 0xc2);   // -1.25 * 2^1: mantissa 2/8
  EXPECT_EQ(Float8E4M3FN(448.0).bits, 0x7e);  // S.1111.110: the largest finite
  EXPECT_EQ(static_cast<float>(Float8E4M3FN::FromBits(0x7e)), 448.0f);
  EXPECT_EQ(static_cast<float>(Float8E4M3FN::FromBits(0x01)), 0.001953125f);  // 2^-9
  EXPECT_EQ(static_cast<float>(Float8E4M3FN::FromBits(0x08)), 0.015625f);     // 2^-6, smallest normal
  EXPECT_EQ(Float8E4M3FN(0.001953125).bits, 0x01);
  EXPECT_EQ(Float8E4M3FN(-0.0).bits, 0x80);  // negative zero kept
  EXPECT_TRUE(std::signbit(static_cast<float>(Float8E4M3FN::FromBits(0x80))));
  EXPECT_TRUE(Float8E4M3FN::FromBits(0x7f).IsNaN());
  EXPECT_TRUE(Float8E4M3FN::FromBits(0xff).IsNaN());
  EXPECT_FALSE(Float8E4M3FN::FromBits(0x7e).IsNaN());
  EXPECT_TRUE(std::isnan(static_cast<float>(Float8E4M3FN::FromBits(0x7f))));
  EXPECT_EQ(Float8E4M3FN(kNaN).bits & 0x7f, 0x7f);
}

TEST(Float8Test, E4M3FNRoundsToNearestEven) {
  EXPECT_EQ(Float8E4M3FN(1.0 + 1.0 / 16).bits, 0x38);             // tie between 1 and 1.125: even (1)
  EXPECT_EQ(Float8E4M3FN(1.0 + 3.0 / 16).bits, 0x3a);             // tie between 1.125 and 1.25: even (1.25)
  EXPECT_EQ(Float8E4M3FN(1.0 + 1.0 / 16 + 1e-6).bits, 0x39);      // just above the tie
  EXPECT_EQ(Float8E4M3FN(0.0009765625).bits, 0x00);               // 2^-10: tie between 0 and 2^-9
  EXPECT_EQ(Float8E4M3FN(0.0029296875).bits, 0x02);               // 3 * 2^-10: tie, even (2 * 2^-9)
  EXPECT_EQ(Float8E4M3FN(-0.0001).bits, 0x80);                    // underflows to -0
  EXPECT_EQ(Float8E4M3FN(0.015625 - 0.0009765625).bits, 0x08);    // 7.5 * 2^-9: rounds up to the smallest normal
  EXPECT_EQ(Float8E4M3FN(464.0).bits, 0x7e);                      // tie between 448 and (480): even, 448
  EXPECT_EQ(Float8E4M3FN(449.0, /*saturate=*/false).bits, 0x7e);  // rounds to 448: in range
}

TEST(Float8Test, E4M3FNOutOfRangeSaturatesOrGivesNaN) {
  EXPECT_EQ(Float8E4M3FN(480.0).bits, 0x7e);  // [x] = 480 > 448
  EXPECT_EQ(Float8E4M3FN(-1e6).bits, 0xfe);
  EXPECT_EQ(Float8E4M3FN(kInf).bits, 0x7e);
  EXPECT_EQ(Float8E4M3FN(-kInf).bits, 0xfe);
  EXPECT_EQ(Float8E4M3FN(480.0, false).bits, 0x7f);
  EXPECT_EQ(Float8E4M3FN(-1e6, false).bits, 0xff);
  EXPECT_EQ(Float8E4M3FN(kInf, false).bits, 0x7f);
  EXPECT_EQ(Float8E4M3FN(-kInf, false).bits, 0xff);
}

TEST(Float8Test, E4M3FNUZHasOneZeroAndOneNaN) {
  EXPECT_EQ(Float8E4M3FNUZ(1.0).bits, 0x40);  // bias 8
  EXPECT_EQ(Float8E4M3FNUZ(240.0).bits, 0x7f);
  EXPECT_EQ(static_cast<float>(Float8E4M3FNUZ::FromBits(0xff)), -240.0f);
  EXPECT_EQ(static_cast<float>(Float8E4M3FNUZ::FromBits(0x01)), 0.0009765625f);  // 2^-10
  EXPECT_EQ(Float8E4M3FNUZ(-0.0).bits, 0x00);
  EXPECT_EQ(Float8E4M3FNUZ(-1e-5).bits, 0x00);  // no negative zero
  EXPECT_TRUE(Float8E4M3FNUZ::FromBits(0x80).IsNaN());
  EXPECT_FALSE(Float8E4M3FNUZ::FromBits(0x7f).IsNaN());
  EXPECT_EQ(Float8E4M3FNUZ(kNaN).bits, 0x80);
  EXPECT_EQ(Float8E4M3FNUZ(-kNaN).bits, 0x80);
  EXPECT_EQ(Float8E4M3FNUZ(248.0).bits, 0x7f);  // tie between 240 and (256): even is 256, beyond: saturates
  EXPECT_EQ(Float8E4M3FNUZ(kInf).bits, 0x7f);
  EXPECT_EQ(Float8E4M3FNUZ(-kInf).bits, 0xff);
  EXPECT_EQ(Float8E4M3FNUZ(248.0, false).bits, 0x80);
  EXPECT_EQ(Float8E4M3FNUZ(-kInf, false).bits, 0x80);
}

TEST(Float8Test, E5M2HasInfinities) {
  EXPECT_EQ(Float8E5M2(1.0).bits, 0x3c);  // bias 15
  EXPECT_EQ(Float8E5M2(57344.0).bits, 0x7b);
  EXPECT_EQ(static_cast<float>(Float8E5M2::FromBits(0x7b)), 57344.0f);
  EXPECT_EQ(static_cast<float>(Float8E5M2::FromBits(0x01)), 1.52587890625e-05f);  // 2^-16
  EXPECT_EQ(static_cast<float>(Float8E5M2::FromBits(0x7c)), kInf);
  EXPECT_EQ(static_cast<float>(Float8E5M2::FromBits(0xfc)), -kInf);
  EXPECT_TRUE(Float8E5M2::FromBits(0x7c).IsInf());
  for (int c : {0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff}) EXPECT_TRUE(Float8E5M2::FromBits(c).IsNaN()) << c;
  EXPECT_EQ(Float8E5M2(1.125).bits, 0x3c);  // tie between 1 and 1.25: even (1)
  EXPECT_EQ(Float8E5M2(1.375).bits, 0x3e);  // tie between 1.25 and 1.5: even (1.5)
  EXPECT_EQ(Float8E5M2(-0.0).bits, 0x80);
  // Saturation.
  EXPECT_EQ(Float8E5M2(kInf).bits, 0x7b);
  EXPECT_EQ(Float8E5M2(-1e5).bits, 0xfb);
  EXPECT_EQ(Float8E5M2(61440.0).bits, 0x7b);  // tie between 57344 and (65536)
  // Without saturation: infinity, not NaN.
  EXPECT_EQ(Float8E5M2(kInf, false).bits, 0x7c);
  EXPECT_EQ(Float8E5M2(-kInf, false).bits, 0xfc);
  EXPECT_EQ(Float8E5M2(1e5, false).bits, 0x7c);
  EXPECT_EQ(Float8E5M2(61440.0, false).bits, 0x7c);  // rounds (to even) to 65536 > max
  EXPECT_EQ(Float8E5M2(60000.0, false).bits, 0x7b);  // rounds to 57344
  EXPECT_EQ(Float8E5M2(kNaN, false).bits & 0x7f, 0x7f);
}

TEST(Float8Test, E5M2FNUZ) {
  EXPECT_EQ(Float8E5M2FNUZ(1.0).bits, 0x40);  // bias 16
  EXPECT_EQ(Float8E5M2FNUZ(57344.0).bits, 0x7f);
  EXPECT_EQ(static_cast<float>(Float8E5M2FNUZ::FromBits(0x01)), 7.62939453125e-06f);  // 2^-17
  EXPECT_EQ(Float8E5M2FNUZ(-0.0).bits, 0x00);
  EXPECT_TRUE(Float8E5M2FNUZ::FromBits(0x80).IsNaN());
  EXPECT_FALSE(Float8E5M2FNUZ::FromBits(0xff).IsNaN());
  EXPECT_EQ(Float8E5M2FNUZ(kInf).bits, 0x7f);
  EXPECT_EQ(Float8E5M2FNUZ(kInf, false).bits, 0x80);
  EXPECT_EQ(Float8E5M2FNUZ(61440.0, false).bits, 0x80);
}

TEST(Float8Test, EveryFiniteCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    const auto b = static_cast<uint8_t>(c);
    if (!Float8E4M3FN::FromBits(b).IsNaN()) {
      EXPECT_EQ(Float8E4M3FN(static_cast<float>(Float8E4M3FN::FromBits(b))).bits, b) << c;
    }
    if (!Float8E4M3FNUZ::FromBits(b).IsNaN()) {
      EXPECT_EQ(Float8E4M3FNUZ(static_cast<float>(Float8E4M3FNUZ::FromBits(b))).bits, b) << c;
    }
    if (!Float8E5M2::FromBits(b).IsNaN()) {
      EXPECT_EQ(Float8E5M2(static_cast<float>(Float8E5M2::FromBits(b)), false).bits, b) << c;
    }
    if (!Float8E5M2FNUZ::FromBits(b).IsNaN()) {
      EXPECT_EQ(Float8E5M2FNUZ(static_cast<float>(Float8E5M2FNUZ::FromBits(b))).bits, b) << c;
    }
  }
}

TEST(Float8Test, DebugStringShowsValues) {
  Tensor t = Tensor::FromVector<Float8E4M3FN>({2}, {Float8E4M3FN(1.5), Float8E4M3FN(-448.0)});
  EXPECT_EQ(t.DebugString(), "float8e4m3fn[2] {1.5, -448}");
  Tensor i4 = Tensor::Empty(DType::kInt4, {2});
  i4.mutable_data<int8_t>()[0] = -8;
  i4.mutable_data<int8_t>()[1] = 7;
  EXPECT_EQ(i4.DebugString(), "int4[2] {-8, 7}");
}

TEST(CompareTest, AllCloseUsesNumpyRule) {
  Tensor a = Tensor::FromVector<float>({3}, {1.0f, 2.0f, std::nanf("")});
  Tensor b = Tensor::FromVector<float>({3}, {1.0005f, 2.0f, std::nanf("")});
  EXPECT_TRUE(AllClose(a, b, {1e-3, 0}).ok());
  EXPECT_FALSE(AllClose(a, b, {1e-4, 0}).ok());
}

TEST(CompareTest, ReportsShapeAndDtypeMismatches) {
  Tensor a = Tensor::Zeros(DType::kFloat32, {2, 2});
  EXPECT_FALSE(AllClose(a, Tensor::Zeros(DType::kFloat32, {4})).ok());
  EXPECT_FALSE(AllClose(a, Tensor::Zeros(DType::kFloat64, {2, 2})).ok());
  Tensor i = Tensor::FromVector<int32_t>({2}, {1, 2});
  EXPECT_FALSE(AllClose(i, Tensor::FromVector<int32_t>({2}, {1, 3})).ok());
}

TEST(CompareTest, Float8AndInt4) {
  Tensor a = Tensor::FromVector<Float8E5M2>({3}, {Float8E5M2(1.5), Float8E5M2(kInf), Float8E5M2::FromBits(0x7f)});
  Tensor b = Tensor::FromVector<Float8E5M2>({3}, {Float8E5M2(1.5), Float8E5M2(kInf), Float8E5M2::FromBits(0x7e)});
  EXPECT_TRUE(AllClose(a, b).ok());  // both NaN codes are NaN
  b.mutable_data<Float8E5M2>()[0] = Float8E5M2(1.75);
  EXPECT_FALSE(AllClose(a, b).ok());
  Tensor i = Tensor::Zeros(DType::kInt4, {2});
  Tensor j = Tensor::Zeros(DType::kInt4, {2});
  EXPECT_TRUE(AllClose(i, j).ok());
  j.mutable_data<int8_t>()[1] = -8;
  absl::Status st = AllClose(i, j);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("-8"), std::string::npos) << st;
}

TEST(CompareTest, InfinityMustMatchSign) {
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(AllClose(Tensor::Scalar<float>(inf), Tensor::Scalar<float>(inf)).ok());
  EXPECT_FALSE(AllClose(Tensor::Scalar<float>(-inf), Tensor::Scalar<float>(inf)).ok());
}

}  // namespace
}  // namespace hepml
