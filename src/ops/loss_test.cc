#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

using ::testing::DoubleNear;
using ::testing::FloatNear;
using ::testing::Pointwise;

const Tensor kLogProbs = T_<float>({2, 3}, {-1, -2, -3, -0.5f, -1.5f, -2.5f});

TEST(LossTest, NllReductions) {
  const Tensor target = T_<int64_t>({2}, {2, 0});
  auto none = RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, target}, {AttrString("reduction", "none")});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->at(0).shape(), Shape({2}));
  EXPECT_EQ(Values<float>(none->at(0)), std::vector<float>({3, 0.5f}));
  auto sum = RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, target}, {AttrString("reduction", "sum")});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(sum->at(0).shape(), Shape({}));
  EXPECT_EQ(Values<float>(sum->at(0)), std::vector<float>({3.5f}));
  auto mean = RunOp("NegativeLogLikelihoodLoss", 12, {kLogProbs, target});  // default: mean
  ASSERT_TRUE(mean.ok()) << mean.status();
  EXPECT_EQ(Values<float>(mean->at(0)), std::vector<float>({1.75f}));
}

// Weighted mean divides by the sum of the applied weights: (1.5 + 0.1) / 0.7.
TEST(LossTest, NllWeightsAndIgnoreIndex) {
  const Tensor target = T_<int32_t>({2}, {2, 0});
  const Tensor weights = T_<float>({3}, {0.2f, 0.3f, 0.5f});
  auto mean = RunOp("NegativeLogLikelihoodLoss", 21, {kLogProbs, target, weights});
  ASSERT_TRUE(mean.ok()) << mean.status();
  EXPECT_THAT(Values<float>(mean->at(0)), Pointwise(FloatNear(1e-6), std::vector<float>{1.6f / 0.7f}));
  // Ignoring class 0 leaves only the first element (weight 0.5).
  auto ignored = RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, target, weights}, {AttrInt("ignore_index", 0)});
  ASSERT_TRUE(ignored.ok()) << ignored.status();
  EXPECT_THAT(Values<float>(ignored->at(0)), Pointwise(FloatNear(1e-6), std::vector<float>{3.0f}));
  // An out-of-range ignore_index (-100) is fine where targets use it.
  auto neg = RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, T_<int64_t>({2}, {-100, 1})},
                   {AttrInt("ignore_index", -100), AttrString("reduction", "none")});
  ASSERT_TRUE(neg.ok()) << neg.status();
  EXPECT_EQ(Values<float>(neg->at(0)), std::vector<float>({0, 1.5f}));
  // Everything ignored: the mean is 0 / 0.
  auto all = RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, T_<int64_t>({2}, {1, 1})}, {AttrInt("ignore_index", 1)});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(std::isnan(Values<float>(all->at(0))[0]));
}

// Input [N=1, C=2, D=2]: element d picks x[0, target[d], d].
TEST(LossTest, NllExtraDimensions) {
  auto out = RunOp("NegativeLogLikelihoodLoss", 13,
                   {T_<double>({1, 2, 2}, {-1, -2, -3, -4}), T_<int64_t>({1, 2}, {1, 0})},
                   {AttrString("reduction", "none")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 2}));
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({3, 2}));
}

TEST(LossTest, NllBadInputs) {
  EXPECT_FALSE(RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, T_<int64_t>({2}, {3, 0})}).ok());
  EXPECT_FALSE(RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, T_<int64_t>({2}, {-1, 0})}).ok());
  EXPECT_FALSE(RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, T_<int64_t>({3}, {0, 0, 0})}).ok());
  EXPECT_FALSE(RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, T_<float>({2}, {0, 0})}).ok());
  EXPECT_FALSE(RunOp("NegativeLogLikelihoodLoss", 13, {T_<float>({3}, {1, 2, 3}), T_<int64_t>({}, {0})}).ok());
  EXPECT_FALSE(RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, T_<int64_t>({2}, {0, 0}), T_<float>({2}, {1, 1})})
                   .ok());
  EXPECT_FALSE(RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs, T_<int64_t>({2}, {0, 0})},
                     {AttrString("reduction", "max")})
                   .ok());
}

// log_softmax([1, 2, 3]) = [-2.40760596, -1.40760596, -0.40760596]; log_softmax([1, 1, 1]) = -log 3.
TEST(LossTest, SoftmaxCrossEntropyWithLogProb) {
  const Tensor scores = T_<double>({2, 3}, {1, 2, 3, 1, 1, 1});
  auto out = RunOp("SoftmaxCrossEntropyLoss", 13, {scores, T_<int64_t>({2}, {2, 1})}, {}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<double>(out->at(0)), Pointwise(DoubleNear(1e-8), std::vector<double>{0.753109125}));
  const double l3 = std::log(3.0);
  EXPECT_THAT(Values<double>(out->at(1)),
              Pointwise(DoubleNear(1e-8), std::vector<double>{-2.40760596, -1.40760596, -0.40760596, -l3, -l3, -l3}));
  auto none = RunOp("SoftmaxCrossEntropyLoss", 21, {scores, T_<int32_t>({2}, {2, 1})},
                    {AttrString("reduction", "none")});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(Values<double>(none->at(0)), Pointwise(DoubleNear(1e-8), std::vector<double>{0.40760596, l3}));
}

TEST(LossTest, SoftmaxCrossEntropyLargeScoresStayFinite) {
  auto out = RunOp("SoftmaxCrossEntropyLoss", 12, {T_<float>({1, 2}, {1000, 0}), T_<int64_t>({1}, {1})},
                   {AttrString("reduction", "sum")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), Pointwise(FloatNear(1e-3), std::vector<float>{1000}));
}

TEST(LossTest, SoftmaxCrossEntropyBFloat16AtOpset13) {
  Tensor scores = Tensor::Empty(DType::kBFloat16, {1, 2});
  scores.mutable_data<BFloat16>()[0] = BFloat16(0.0f);
  scores.mutable_data<BFloat16>()[1] = BFloat16(0.0f);
  auto out = RunOp("SoftmaxCrossEntropyLoss", 13, {scores, T_<int64_t>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR(static_cast<float>(out->at(0).data<BFloat16>()[0]), std::log(2.0f), 1e-2);
  // bfloat16 is not a type of opset 12.
  EXPECT_FALSE(RunOp("SoftmaxCrossEntropyLoss", 12, {scores, T_<int64_t>({1}, {0})}).ok());
}

TEST(LossTest, SoftmaxCrossEntropyEmptyBatch) {
  auto out = RunOp("SoftmaxCrossEntropyLoss", 13, {Tensor::Zeros(DType::kFloat32, {0, 3}), Tensor::Zeros(DType::kInt64, {0})},
                   {AttrString("reduction", "sum")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0}));
}

TEST(LossTest, MissingRequiredInputsAreErrors) {
  EXPECT_FALSE(RunOp("NegativeLogLikelihoodLoss", 13, {kLogProbs}).ok());
  EXPECT_FALSE(RunOp("SoftmaxCrossEntropyLoss", 13, {Tensor(), T_<int64_t>({2}, {0, 0})}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing
