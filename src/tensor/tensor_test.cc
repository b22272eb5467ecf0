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

TEST(CompareTest, InfinityMustMatchSign) {
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(AllClose(Tensor::Scalar<float>(inf), Tensor::Scalar<float>(inf)).ok());
  EXPECT_FALSE(AllClose(Tensor::Scalar<float>(-inf), Tensor::Scalar<float>(inf)).ok());
}

}  // namespace
}  // namespace hepml
