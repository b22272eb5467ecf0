// Unit tests of the reduction family beyond the ONNX backend suite: opset
// 18-21 versions, empty reductions, dtypes other than float32, bad input.
// Expected values are worked out by hand or with numpy (noted per test).
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor Arange(Shape shape) {
  std::vector<float> v(NumElements(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return T_<float>(shape, v);
}

std::vector<float> RunFloat(const std::string& op, int opset, std::vector<Tensor> in,
                            std::vector<Attribute> attrs = {}, Shape* shape = nullptr) {
  auto out = RunOp(op, opset, std::move(in), std::move(attrs));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  if (shape != nullptr) *shape = out->at(0).shape();
  return Values<float>(out->at(0));
}

TEST(ReduceTest, AxesInputFromOpset18) {
  // numpy: np.arange(6).reshape(2,3).mean(axis=1) = [1, 4]
  Shape shape;
  EXPECT_EQ(RunFloat("ReduceMean", 18, {Arange({2, 3}), T_<int64_t>({1}, {1})}, {AttrInt("keepdims", 0)}, &shape),
            std::vector<float>({1, 4}));
  EXPECT_EQ(shape, Shape({2}));
  // Before 18 the axes are an attribute.
  EXPECT_EQ(RunFloat("ReduceMean", 13, {Arange({2, 3})}, {AttrInts("axes", {0})}, &shape),
            std::vector<float>({1.5f, 2.5f, 3.5f}));
  EXPECT_EQ(shape, Shape({1, 3}));
  // ReduceSum takes the axes as input from 13.
  EXPECT_EQ(RunFloat("ReduceSum", 13, {Arange({2, 3}), T_<int64_t>({1}, {-1})}, {}, &shape),
            std::vector<float>({3, 12}));
  EXPECT_EQ(shape, Shape({2, 1}));
}

TEST(ReduceTest, NonContiguousAxes) {
  // numpy: np.arange(12).reshape(2,3,2).sum(axis=1) = [[6, 9], [24, 27]]
  Shape shape;
  EXPECT_EQ(RunFloat("ReduceSum", 21, {Arange({2, 3, 2}), T_<int64_t>({1}, {1})}, {AttrInt("keepdims", 0)}, &shape),
            std::vector<float>({6, 9, 24, 27}));
  EXPECT_EQ(shape, Shape({2, 2}));
  // numpy: .sum(axis=(0, 2)) = [14, 22, 30]
  EXPECT_EQ(RunFloat("ReduceSum", 21, {Arange({2, 3, 2}), T_<int64_t>({2}, {0, 2})}, {}, &shape),
            std::vector<float>({14, 22, 30}));
  EXPECT_EQ(shape, Shape({1, 3, 1}));
  // numpy: .max(axis=(0, 2)) = [7, 9, 11]
  EXPECT_EQ(RunFloat("ReduceMax", 20, {Arange({2, 3, 2}), T_<int64_t>({2}, {0, 2})}, {AttrInt("keepdims", 0)}),
            std::vector<float>({7, 9, 11}));
}

TEST(ReduceTest, MissingAxesReduceEverything) {
  Shape shape;
  EXPECT_EQ(RunFloat("ReduceSumSquare", 18, {Arange({2, 2})}, {}, &shape), std::vector<float>({14}));
  EXPECT_EQ(shape, Shape({1, 1}));
  // An empty axes input also means all axes unless noop_with_empty_axes.
  EXPECT_EQ(RunFloat("ReduceProd", 18, {T_<float>({3}, {2, 3, 4}), T_<int64_t>({0}, {})}, {AttrInt("keepdims", 0)},
                     &shape),
            std::vector<float>({24}));
  EXPECT_EQ(shape, Shape({}));
}

TEST(ReduceTest, NoopWithEmptyAxes) {
  Tensor x = T_<float>({2}, {-3, 4});
  auto out = RunOp("ReduceSum", 13, {x, T_<int64_t>({0}, {})}, {AttrInt("noop_with_empty_axes", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-3, 4}));
  EXPECT_TRUE(out->at(0).SharesBufferWith(x));  // a view, not a copy
  // The other reductions reduce each element alone (ONNX reference): x^2, |x|.
  EXPECT_EQ(RunFloat("ReduceSumSquare", 18, {x}, {AttrInt("noop_with_empty_axes", 1)}), std::vector<float>({9, 16}));
  EXPECT_EQ(RunFloat("ReduceL2", 18, {x}, {AttrInt("noop_with_empty_axes", 1)}), std::vector<float>({3, 4}));
  EXPECT_EQ(RunFloat("ReduceMax", 18, {x}, {AttrInt("noop_with_empty_axes", 1)}), std::vector<float>({-3, 4}));
}

TEST(ReduceTest, EmptyReductionGivesIdentity) {
  Tensor empty = T_<float>({2, 0}, {});
  Tensor axes = T_<int64_t>({1}, {1});
  Shape shape;
  EXPECT_EQ(RunFloat("ReduceSum", 18, {empty, axes}, {}, &shape), std::vector<float>({0, 0}));
  EXPECT_EQ(shape, Shape({2, 1}));
  EXPECT_EQ(RunFloat("ReduceProd", 18, {empty, axes}), std::vector<float>({1, 1}));
  EXPECT_EQ(RunFloat("ReduceMax", 18, {empty, axes}), std::vector<float>({-kInf, -kInf}));
  EXPECT_EQ(RunFloat("ReduceMin", 18, {empty, axes}), std::vector<float>({kInf, kInf}));
  EXPECT_EQ(RunFloat("ReduceL1", 18, {empty, axes}), std::vector<float>({0, 0}));
  EXPECT_EQ(RunFloat("ReduceL2", 18, {empty, axes}), std::vector<float>({0, 0}));
  EXPECT_EQ(RunFloat("ReduceSumSquare", 18, {empty, axes}), std::vector<float>({0, 0}));
  EXPECT_EQ(RunFloat("ReduceLogSum", 18, {empty, axes}), std::vector<float>({-kInf, -kInf}));
  EXPECT_EQ(RunFloat("ReduceLogSumExp", 18, {empty, axes}), std::vector<float>({-kInf, -kInf}));
  std::vector<float> mean = RunFloat("ReduceMean", 18, {empty, axes});
  ASSERT_EQ(mean.size(), 2u);
  EXPECT_TRUE(std::isnan(mean[0]));  // 0 / 0
  // Integers have no infinity: the lowest / highest value instead.
  auto imax = RunOp("ReduceMax", 18, {T_<int32_t>({0}, {})}, {AttrInt("keepdims", 0)});
  ASSERT_TRUE(imax.ok()) << imax.status();
  EXPECT_EQ(Values<int32_t>(imax->at(0)), std::vector<int32_t>({std::numeric_limits<int32_t>::min()}));
  auto imin = RunOp("ReduceMin", 18, {T_<uint8_t>({0}, {})}, {AttrInt("keepdims", 0)});
  ASSERT_TRUE(imin.ok()) << imin.status();
  EXPECT_EQ(Values<uint8_t>(imin->at(0)), std::vector<uint8_t>({255}));
  // Empty output: nothing to do.
  EXPECT_EQ(RunFloat("ReduceSum", 18, {T_<float>({0, 3}, {}), axes}, {}, &shape), std::vector<float>());
  EXPECT_EQ(shape, Shape({0, 1}));
}

TEST(ReduceTest, BoolMaxMinFromOpset20) {
  Tensor b = T_<bool>({2, 2}, {true, false, false, false});
  auto out = RunOp("ReduceMax", 20, {b, T_<int64_t>({1}, {1})}, {AttrInt("keepdims", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<bool>(out->at(0)), std::vector<bool>({true, false}));
  out = RunOp("ReduceMin", 20, {b, T_<int64_t>({1}, {0})}, {AttrInt("keepdims", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<bool>(out->at(0)), std::vector<bool>({false, false}));
  EXPECT_FALSE(RunOp("ReduceMax", 18, {b}).ok());  // bool only from 20
  EXPECT_FALSE(RunOp("ReduceSum", 21, {b}).ok());
}

TEST(ReduceTest, IntegerAndHalfTypes) {
  auto l1 = RunOp("ReduceL1", 18, {T_<int32_t>({3}, {-3, 4, -5})}, {AttrInt("keepdims", 0)});
  ASSERT_TRUE(l1.ok()) << l1.status();
  EXPECT_EQ(Values<int32_t>(l1->at(0)), std::vector<int32_t>({12}));
  // numpy: np.mean([1, 2, -4, 0]) = -0.25, cast to int64 -> 0; np.mean([1, 2]) -> 1.
  auto mean = RunOp("ReduceMean", 18, {T_<int64_t>({2, 2}, {1, 2, -4, 0}), T_<int64_t>({1}, {1})},
                    {AttrInt("keepdims", 0)});
  ASSERT_TRUE(mean.ok()) << mean.status();
  EXPECT_EQ(Values<int64_t>(mean->at(0)), std::vector<int64_t>({1, -2}));
  auto prod = RunOp("ReduceProd", 13, {T_<uint64_t>({3}, {2, 3, 4})}, {AttrInt("keepdims", 0)});
  ASSERT_TRUE(prod.ok()) << prod.status();
  EXPECT_EQ(Values<uint64_t>(prod->at(0)), std::vector<uint64_t>({24}));
  auto half = RunOp("ReduceSum", 13, {T_<Float16>({2}, {Float16(1.5f), Float16(2.5f)})});
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(static_cast<float>(half->at(0).data<Float16>()[0]), 4.0f);
  auto dbl = RunOp("ReduceLogSum", 18, {T_<double>({2}, {1, std::exp(1.0) - 1})});
  ASSERT_TRUE(dbl.ok()) << dbl.status();
  EXPECT_NEAR(dbl->at(0).data<double>()[0], 1.0, 1e-12);
}

TEST(ReduceTest, LogSumExpDoesNotOverflow) {
  // log(e^1000 + e^1000) = 1000 + log 2
  std::vector<float> v = RunFloat("ReduceLogSumExp", 18, {T_<float>({2}, {1000, 1000})});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NEAR(v[0], 1000.0f + std::log(2.0f), 1e-3);
}

TEST(ReduceTest, MaxPropagatesNaN) {
  std::vector<float> v = RunFloat("ReduceMax", 13, {T_<float>({3}, {1, NAN, 3})});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(std::isnan(v[0]));
}

TEST(ReduceTest, ScalarInput) {
  Shape shape{9};
  EXPECT_EQ(RunFloat("ReduceSum", 13, {T_<float>({}, {5})}, {}, &shape), std::vector<float>({5}));
  EXPECT_EQ(shape, Shape({}));
}

TEST(ReduceTest, BadAxesAreErrors) {
  EXPECT_FALSE(RunOp("ReduceSum", 13, {Arange({2, 3}), T_<int64_t>({1}, {2})}).ok());
  EXPECT_FALSE(RunOp("ReduceSum", 13, {Arange({2, 3}), T_<int64_t>({2}, {1, -1})}).ok());
  EXPECT_FALSE(RunOp("ReduceMean", 11, {Arange({2, 3})}, {AttrInts("axes", {-3})}).ok());
  EXPECT_FALSE(RunOp("ReduceMax", 18, {Arange({2, 3}), T_<float>({1}, {0})}).ok());  // float axes
  EXPECT_FALSE(RunOp("ReduceL2", 18, {Arange({2, 3}), T_<int64_t>({1, 1}, {0})}).ok());  // 2-D axes
}

TEST(ArgTest, KeepdimsAndSelectLastIndex) {
  Tensor x = T_<float>({2, 3}, {1, 3, 3, 2, 2, 1});
  auto out = RunOp("ArgMax", 13, {x}, {AttrInt("axis", 1), AttrInt("keepdims", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2}));
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({1, 0}));
  out = RunOp("ArgMax", 13, {x}, {AttrInt("axis", 1), AttrInt("select_last_index", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 1}));
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({2, 1}));
  // select_last_index does not exist before opset 12.
  out = RunOp("ArgMax", 11, {x}, {AttrInt("axis", 1), AttrInt("select_last_index", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({1, 0}));
  // numpy: np.argmin([[1,3,3],[2,2,1]], axis=0) = [0, 1, 1]
  out = RunOp("ArgMin", 13, {T_<int8_t>({2, 3}, {1, 3, 3, 2, 2, 1})}, {AttrInt("axis", -2), AttrInt("keepdims", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({0, 1, 1}));
}

TEST(ArgTest, NaNWinsLikeNumpy) {
  auto out = RunOp("ArgMax", 13, {T_<float>({4}, {1, NAN, 3, NAN})}, {AttrInt("keepdims", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({1}));
}

TEST(ArgTest, BadInputIsAnError) {
  EXPECT_FALSE(RunOp("ArgMax", 13, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6})}, {AttrInt("axis", 2)}).ok());
  EXPECT_FALSE(RunOp("ArgMin", 13, {T_<float>({2, 0}, {})}, {AttrInt("axis", 1)}).ok());
  EXPECT_FALSE(RunOp("ArgMax", 13, {T_<bool>({2}, {true, false})}).ok());
  // An empty output over an empty axis is fine.
  auto out = RunOp("ArgMax", 13, {T_<float>({0, 3}, {})}, {AttrInt("axis", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({0, 1}));
}

TEST(CumSumTest, ExclusiveAndReverse) {
  Tensor x = T_<float>({3}, {1, 2, 3});
  Tensor axis = T_<int32_t>({}, {0});
  EXPECT_EQ(RunFloat("CumSum", 14, {x, axis}), std::vector<float>({1, 3, 6}));
  EXPECT_EQ(RunFloat("CumSum", 14, {x, axis}, {AttrInt("exclusive", 1)}), std::vector<float>({0, 1, 3}));
  EXPECT_EQ(RunFloat("CumSum", 14, {x, axis}, {AttrInt("reverse", 1)}), std::vector<float>({6, 5, 3}));
  EXPECT_EQ(RunFloat("CumSum", 14, {x, axis}, {AttrInt("exclusive", 1), AttrInt("reverse", 1)}),
            std::vector<float>({5, 3, 0}));
}

TEST(CumSumTest, IntegerAlongAxis0) {
  // numpy: np.cumsum([[1,2,3],[4,5,6]], axis=0) = [[1,2,3],[5,7,9]]
  auto out = RunOp("CumSum", 11, {T_<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<int64_t>({1}, {-2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({1, 2, 3, 5, 7, 9}));
  auto u = RunOp("CumSum", 14, {T_<uint64_t>({2, 2}, {1, 2, 3, 4}), T_<int64_t>({}, {1})});
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(Values<uint64_t>(u->at(0)), std::vector<uint64_t>({1, 3, 3, 7}));
}

TEST(CumSumTest, BadInputIsAnError) {
  Tensor x = T_<float>({3}, {1, 2, 3});
  EXPECT_FALSE(RunOp("CumSum", 14, {x, T_<int64_t>({}, {1})}).ok());
  EXPECT_FALSE(RunOp("CumSum", 14, {x, T_<int64_t>({2}, {0, 0})}).ok());
  EXPECT_FALSE(RunOp("CumSum", 14, {x, T_<float>({}, {0})}).ok());
  EXPECT_FALSE(RunOp("CumSum", 14, {T_<float>({}, {1}), T_<int64_t>({}, {0})}).ok());
  EXPECT_FALSE(RunOp("CumSum", 14, {T_<int8_t>({1}, {1}), T_<int64_t>({}, {0})}).ok());  // type
}

}  // namespace
}  // namespace hepml::ops::testing
