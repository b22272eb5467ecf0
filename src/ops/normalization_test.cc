// Unit tests of the normalization operators. Expected values are worked
// out by hand in the comments (epsilon set to 0 where that keeps them exact).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;

// ---- BatchNormalization ----

TEST(BatchNormTest, InferenceUsesRunningStatistics) {
  // ch0: (x - 1) / 2 * 1 + 0 on [1,2] -> [0, 0.5]; ch1: (x - 3) / 1 * 2 + 1 on [3,4] -> [1, 3].
  auto out = RunOp("BatchNormalization", 15,
                   {T_<float>({1, 2, 1, 2}, {1, 2, 3, 4}), T_<float>({2}, {1, 2}), T_<float>({2}, {0, 1}),
                    T_<float>({2}, {1, 3}), T_<float>({2}, {4, 1})},
                   {AttrFloat("epsilon", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(0, 0.5, 1, 3));
}

TEST(BatchNormTest, TrainingModeAtOpset14Outputs) {
  // x = [1,3] in one channel: batch mean 2, biased var 1 -> y = [-1, 1];
  // running mean = 0 * 0.9 + 2 * 0.1 = 0.2, running var = 1 * 0.9 + 1 * 0.1 = 1.
  auto out = RunOp("BatchNormalization", 14,
                   {T_<float>({2, 1, 1, 1}, {1, 3}), T_<float>({1}, {1}), T_<float>({1}, {0}),
                    T_<float>({1}, {0}), T_<float>({1}, {1})},
                   {AttrFloat("epsilon", 0), AttrInt("training_mode", 1)}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(-1, 1));
  EXPECT_THAT(Values<float>(out->at(1)), ElementsAre(FloatNear(0.2, 1e-6)));
  EXPECT_THAT(Values<float>(out->at(2)), ElementsAre(FloatNear(1.0, 1e-6)));
}

TEST(BatchNormTest, Opset15AllowsOtherParameterTypes) {
  // float16 X with float32 parameters: (x - 3) / 1 on [2,4] -> [-1, 1].
  auto out = RunOp("BatchNormalization", 15,
                   {T_<Float16>({1, 1, 2}, {Float16(2.0f), Float16(4.0f)}), T_<float>({1}, {1}),
                    T_<float>({1}, {0}), T_<float>({1}, {3}), T_<float>({1}, {1})},
                   {AttrFloat("epsilon", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat16);
  EXPECT_EQ(static_cast<float>(out->at(0).data<Float16>()[0]), -1.0f);
  EXPECT_EQ(static_cast<float>(out->at(0).data<Float16>()[1]), 1.0f);
}

TEST(BatchNormTest, NonSpatialBeforeOpset9) {
  // spatial = 0: one parameter per (channel, position): scale [1,2,3,4],
  // mean [1,1,1,1], var 1, B 0 on x = [2,2,2,2] -> [1,2,3,4].
  auto out = RunOp("BatchNormalization", 7,
                   {T_<float>({1, 2, 2}, {2, 2, 2, 2}), T_<float>({2, 2}, {1, 2, 3, 4}),
                    T_<float>({2, 2}, {0, 0, 0, 0}), T_<float>({2, 2}, {1, 1, 1, 1}),
                    T_<float>({2, 2}, {1, 1, 1, 1})},
                   {AttrFloat("epsilon", 0), AttrInt("spatial", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(1, 2, 3, 4));
}

TEST(BatchNormTest, BadParametersAreErrors) {
  const auto x = T_<float>({1, 2, 2}, {1, 2, 3, 4});
  const auto p2 = T_<float>({2}, {1, 1});
  auto bad = RunOp("BatchNormalization", 15, {x, T_<float>({3}, {1, 1, 1}), p2, p2, p2});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("scale"));
  EXPECT_FALSE(RunOp("BatchNormalization", 15, {x, p2, p2, p2}).ok());
  EXPECT_FALSE(RunOp("BatchNormalization", 15, {T_<float>({2}, {1, 2}), p2, p2, p2, p2}).ok());
}

// ---- InstanceNormalization ----

TEST(InstanceNormTest, PerInstancePerChannel) {
  // ch0 [1,3]: mean 2, var 1 -> +-1 * scale 2 -> [-2, 2] (+B 0);
  // ch1 [2,2]: var 0 -> 0 * 1 + B 5 -> [5, 5]. eps 1e-5 shifts ch0 by ~1e-5.
  auto out = RunOp("InstanceNormalization", 6,
                   {T_<float>({1, 2, 2}, {1, 3, 2, 2}), T_<float>({2}, {2, 1}), T_<float>({2}, {0, 5})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)),
              ElementsAre(FloatNear(-2, 1e-4), FloatNear(2, 1e-4), FloatNear(5, 1e-6), FloatNear(5, 1e-6)));
  EXPECT_FALSE(RunOp("InstanceNormalization", 6,
                     {T_<float>({1, 2, 2}, {1, 3, 2, 2}), T_<float>({1}, {2}), T_<float>({2}, {0, 5})}).ok());
}

// ---- LayerNormalization ----

TEST(LayerNormTest, LastAxisWithMeanAndInvStdDev) {
  // rows [1,3] (mean 2, var 1) and [2,6] (mean 4, var 4) both normalise to
  // [-1,1]; scale [1,2], B [0,1] -> [-1,3]. InvStdDev = 1/sqrt(var) = [1, 0.5].
  auto out = RunOp("LayerNormalization", 17,
                   {T_<float>({2, 2}, {1, 3, 2, 6}), T_<float>({2}, {1, 2}), T_<float>({2}, {0, 1})},
                   {AttrFloat("epsilon", 0)}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(-1, 3, -1, 3));
  EXPECT_EQ(out->at(1).shape(), Shape({2, 1}));
  EXPECT_THAT(Values<float>(out->at(1)), ElementsAre(2, 4));
  EXPECT_THAT(Values<float>(out->at(2)), ElementsAre(1, 0.5));
}

TEST(LayerNormTest, AxisZeroWithoutBiasInDouble) {
  // Whole tensor [1,3,2,6]: mean 3, var (4+0+1+9)/4 = 3.5.
  auto out = RunOp("LayerNormalization", 17,
                   {T_<double>({2, 2}, {1, 3, 2, 6}), T_<double>({2, 2}, {1, 1, 1, 1})},
                   {AttrInt("axis", 0), AttrFloat("epsilon", 0)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  const double s = std::sqrt(3.5);
  const auto y = Values<double>(out->at(0));
  EXPECT_NEAR(y[0], -2 / s, 1e-12);
  EXPECT_NEAR(y[1], 0, 1e-12);
  EXPECT_NEAR(y[2], -1 / s, 1e-12);
  EXPECT_NEAR(y[3], 3 / s, 1e-12);
  // stash_type 1: Mean is float32 with shape [1,1].
  EXPECT_EQ(out->at(1).dtype(), DType::kFloat32);
  EXPECT_EQ(out->at(1).shape(), Shape({1, 1}));
  EXPECT_THAT(Values<float>(out->at(1)), ElementsAre(3));
}

TEST(LayerNormTest, BadScaleOrAxisIsAnError) {
  const auto x = T_<float>({2, 2}, {1, 3, 2, 6});
  EXPECT_FALSE(RunOp("LayerNormalization", 17, {x, T_<float>({3}, {1, 1, 1})}).ok());
  EXPECT_FALSE(RunOp("LayerNormalization", 17, {x, T_<float>({2}, {1, 1})}, {AttrInt("axis", 2)}).ok());
  EXPECT_FALSE(RunOp("LayerNormalization", 17, {x}).ok());
}

// ---- GroupNormalization ----

TEST(GroupNormTest, Opset18ScalesPerGroup) {
  // Groups {1,3} (mean 2, var 1) and {5,9} (mean 7, var 4) -> [-1,1,-1,1];
  // group scales [1,2], biases [0,10] -> [-1, 1, 8, 12].
  auto out = RunOp("GroupNormalization", 18,
                   {T_<float>({1, 4, 1}, {1, 3, 5, 9}), T_<float>({2}, {1, 2}), T_<float>({2}, {0, 10})},
                   {AttrInt("num_groups", 2), AttrFloat("epsilon", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(-1, 1, 8, 12));
}

TEST(GroupNormTest, Opset21ScalesPerChannel) {
  // Same statistics; channel scales [1,2,3,4], biases [0,0,0,1] -> [-1, 2, -3, 5].
  auto out = RunOp("GroupNormalization", 21,
                   {T_<float>({1, 4, 1}, {1, 3, 5, 9}), T_<float>({4}, {1, 2, 3, 4}),
                    T_<float>({4}, {0, 0, 0, 1})},
                   {AttrInt("num_groups", 2), AttrFloat("epsilon", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(-1, 2, -3, 5));
  // Per-group parameters are wrong at 21.
  EXPECT_FALSE(RunOp("GroupNormalization", 21,
                     {T_<float>({1, 4, 1}, {1, 3, 5, 9}), T_<float>({2}, {1, 2}), T_<float>({2}, {0, 10})},
                     {AttrInt("num_groups", 2)}).ok());
  EXPECT_FALSE(RunOp("GroupNormalization", 21,
                     {T_<float>({1, 4, 1}, {1, 3, 5, 9}), T_<float>({4}, {1, 2, 3, 4}),
                      T_<float>({4}, {0, 0, 0, 1})},
                     {AttrInt("num_groups", 3)}).ok());
}

// Opset 21's stash_type (default 1, float32) sets the precision of stage one
// even for float64 X. X = [0, 1 + 2^-40, 2], epsilon 0, scale 1, bias 0:
// cast to float32, X is [0, 1, 2], so the mean is 1, the variance 2/3 and
// y = [-n, 0, n] with n = 1 / sqrt(2/3) in float32 arithmetic. With
// stash_type 11 (double), y[1] = (2^-40 * 2/3) / sqrt(2/3) = 2^-40 * sqrt(2/3).
TEST(GroupNormTest, Opset21StashTypeSetsStageOnePrecision) {
  const double tiny = std::ldexp(1.0, -40);
  const auto inputs = [&] {
    return std::vector<Tensor>{T_<double>({1, 1, 3}, {0, 1 + tiny, 2}), T_<double>({1}, {1}), T_<double>({1}, {0})};
  };
  auto f32 = RunOp("GroupNormalization", 21, inputs(), {AttrInt("num_groups", 1), AttrFloat("epsilon", 0)});
  ASSERT_TRUE(f32.ok()) << f32.status();
  const float var = 2.0f / 3.0f;
  const float sd = std::sqrt(var);
  const double n = static_cast<double>(1.0f / sd);
  EXPECT_THAT(Values<double>(f32->at(0)), ElementsAre(-n, 0.0, n));
  EXPECT_NE(n, std::sqrt(1.5));  // float32 precision, not double's

  auto f64 = RunOp("GroupNormalization", 21, inputs(),
                   {AttrInt("num_groups", 1), AttrFloat("epsilon", 0), AttrInt("stash_type", 11)});
  ASSERT_TRUE(f64.ok()) << f64.status();
  const std::vector<double> y = Values<double>(f64->at(0));
  EXPECT_NEAR(y[0], -std::sqrt(1.5), 1e-12);
  EXPECT_NEAR(y[1], tiny * std::sqrt(2.0 / 3.0), 1e-3 * tiny);  // the mean is rounded at 2^-53
  EXPECT_NEAR(y[2], std::sqrt(1.5), 1e-12);

  // stash_type must name a float type.
  EXPECT_FALSE(RunOp("GroupNormalization", 21, inputs(),
                     {AttrInt("num_groups", 1), AttrInt("stash_type", 7)}).ok());
}

// ---- LRN ----

TEST(LrnTest, AcrossChannels) {
  // size 3, alpha/size = 1, beta 1, bias 1 on channels [1,2,3]:
  // 1/(1+1+4) = 1/6, 2/(1+1+4+9) = 2/15, 3/(1+4+9) = 3/14.
  auto out = RunOp("LRN", 13, {T_<float>({1, 3, 1, 1}, {1, 2, 3})},
                   {AttrInt("size", 3), AttrFloat("alpha", 3), AttrFloat("beta", 1), AttrFloat("bias", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)),
              ElementsAre(FloatNear(1.0 / 6, 1e-6), FloatNear(2.0 / 15, 1e-6), FloatNear(3.0 / 14, 1e-6)));
  EXPECT_FALSE(RunOp("LRN", 13, {T_<float>({1, 3, 1, 1}, {1, 2, 3})}).ok());  // size is required
}

// ---- MeanVarianceNormalization ----

TEST(MvnTest, DefaultAxesAndOpset1AcrossChannels) {
  // Default axes [0,2,3]: ch0 [1,3] -> [-1,1]; ch1 [2,6] (std 2) -> [-1,1].
  const auto x = T_<float>({1, 2, 1, 2}, {1, 3, 2, 6});
  auto out = RunOp("MeanVarianceNormalization", 13, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)),
              ElementsAre(FloatNear(-1, 1e-6), FloatNear(1, 1e-6), FloatNear(-1, 1e-6), FloatNear(1, 1e-6)));
  // Opset 1 across channels: mean 3, std sqrt(3.5) over all four values.
  auto v1 = RunOp("MeanVarianceNormalization", 1, {x}, {AttrInt("across_channels", 1)});
  ASSERT_TRUE(v1.ok()) << v1.status();
  const float s = std::sqrt(3.5f);
  EXPECT_THAT(Values<float>(v1->at(0)), ElementsAre(FloatNear(-2 / s, 1e-6), FloatNear(0, 1e-6),
                                                    FloatNear(-1 / s, 1e-6), FloatNear(3 / s, 1e-6)));
  // Opset 1 without variance normalisation only subtracts the mean per channel.
  auto mean_only = RunOp("MeanVarianceNormalization", 1, {x}, {AttrInt("normalize_variance", 0)});
  ASSERT_TRUE(mean_only.ok()) << mean_only.status();
  EXPECT_THAT(Values<float>(mean_only->at(0)), ElementsAre(-1, 1, -2, 2));
  EXPECT_FALSE(RunOp("MeanVarianceNormalization", 13, {x}, {AttrInts("axes", {4})}).ok());
}

// ---- LpNormalization ----

TEST(LpNormTest, L1AndL2AlongAxes) {
  const auto x = T_<float>({2, 2}, {3, 4, 0, 0});
  auto l2 = RunOp("LpNormalization", 1, {x});
  ASSERT_TRUE(l2.ok()) << l2.status();
  EXPECT_THAT(Values<float>(l2->at(0)), ElementsAre(FloatNear(0.6, 1e-6), FloatNear(0.8, 1e-6), 0, 0));
  auto l1 = RunOp("LpNormalization", 1, {x}, {AttrInt("p", 1)});
  ASSERT_TRUE(l1.ok()) << l1.status();
  EXPECT_THAT(Values<float>(l1->at(0)), ElementsAre(FloatNear(3.0 / 7, 1e-6), FloatNear(4.0 / 7, 1e-6), 0, 0));
  // axis 0, p 1: columns [3,0] and [4,0] -> [1,1,0,0].
  auto cols = RunOp("LpNormalization", 1, {x}, {AttrInt("axis", 0), AttrInt("p", 1)});
  ASSERT_TRUE(cols.ok()) << cols.status();
  EXPECT_THAT(Values<float>(cols->at(0)), ElementsAre(1, 1, 0, 0));
  EXPECT_FALSE(RunOp("LpNormalization", 1, {x}, {AttrInt("p", 3)}).ok());
  EXPECT_FALSE(RunOp("LpNormalization", 1, {x}, {AttrInt("axis", 2)}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing
