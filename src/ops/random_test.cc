#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

// A rank-0 tensor. (Tensor::Scalar trips a GCC 12 -Wmaybe-uninitialized false
// positive inside absl::InlinedVector when inlined here.)
template <typename T>
Tensor Scalar(T v) {
  Tensor t = Tensor::Empty(DTypeOf<T>::value, Shape{});
  t.mutable_data<T>()[0] = v;
  return t;
}

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::Pointwise;

// Seeded draws reproduce numpy's legacy stream:
//   np.random.seed(0); np.random.uniform(0, 1, 4).astype(np.float32)
TEST(RandomTest, SeededUniformMatchesNumpy) {
  auto out = RunOp("RandomUniform", 1, {},
                   {AttrInts("shape", {2, 2}), AttrFloat("seed", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat32);
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_THAT(Values<float>(out->at(0)),
              Pointwise(FloatNear(1e-6), std::vector<float>{0.5488135f, 0.71518934f, 0.60276335f, 0.5448832f}));
}

// np.random.seed(7); np.random.uniform(2, 4, 3) (float64 output).
TEST(RandomTest, SeededUniformWithRangeAndDouble) {
  auto out = RunOp("RandomUniform", 1, {},
                   {AttrInts("shape", {3}), AttrFloat("seed", 7), AttrFloat("low", 2), AttrFloat("high", 4),
                    AttrInt("dtype", 11)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<double>(out->at(0)),
              Pointwise(::testing::DoubleNear(1e-7), std::vector<double>{2.15261658, 3.55983758, 2.87681846}));
}

// np.random.seed(0); np.random.normal(1, 2, 5).astype(np.float32)
TEST(RandomTest, SeededNormalMatchesNumpy) {
  auto out = RunOp("RandomNormal", 1, {},
                   {AttrInts("shape", {5}), AttrFloat("seed", 0), AttrFloat("mean", 1), AttrFloat("scale", 2)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)),
              Pointwise(FloatNear(1e-5), std::vector<float>{4.528105f, 1.8003144f, 2.957476f, 5.4817863f, 4.735116f}));
}

// RandomUniform draws from [low, high) in every output type. In float16,
// np.random.seed(0); np.random.uniform(0, 1, 20000) has 10 draws above
// 1 - 2^-12 that round to 1.0; they must come out as 0.99951172 (the float16
// just below 1) instead. RandomUniformLike follows the same rule.
TEST(RandomTest, UniformStaysBelowHighAfterRounding) {
  auto out = RunOp("RandomUniform", 1, {}, {AttrInts("shape", {20000}), AttrFloat("seed", 0), AttrInt("dtype", 10)});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).dtype(), DType::kFloat16);
  const Float16* p = out->at(0).data<Float16>();
  float lo = 1, hi = 0;
  int at_top = 0;
  for (int64_t i = 0; i < out->at(0).size(); ++i) {
    const float v = p[i];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    at_top += v == 0.99951172f;
  }
  EXPECT_GE(lo, 0.0f);
  EXPECT_EQ(hi, 0.99951172f);
  EXPECT_GE(at_top, 10);
  auto like = RunOp("RandomUniformLike", 1, {Tensor::Empty(DType::kFloat16, Shape{20000})},
                    {AttrFloat("seed", 0), AttrFloat("low", -1)});
  ASSERT_TRUE(like.ok()) << like.status();
  const Float16* q = like->at(0).data<Float16>();
  for (int64_t i = 0; i < like->at(0).size(); ++i) ASSERT_LT(static_cast<float>(q[i]), 1.0f) << i;
}

TEST(RandomTest, SeededOutputRepeatsAndUnseededVaries) {
  auto a = RunOp("RandomNormal", 1, {}, {AttrInts("shape", {16}), AttrFloat("seed", 3)});
  auto b = RunOp("RandomNormal", 1, {}, {AttrInts("shape", {16}), AttrFloat("seed", 3)});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(Values<float>(a->at(0)), Values<float>(b->at(0)));
  auto c = RunOp("RandomUniform", 1, {}, {AttrInts("shape", {16})});
  auto d = RunOp("RandomUniform", 1, {}, {AttrInts("shape", {16})});
  ASSERT_TRUE(c.ok() && d.ok());
  EXPECT_NE(Values<float>(c->at(0)), Values<float>(d->at(0)));
  for (float v : Values<float>(c->at(0))) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LT(v, 1.0f);
  }
}

TEST(RandomTest, LikeOpsTakeShapeAndDtype) {
  // int input: the output type must come from `dtype`.
  auto out = RunOp("RandomNormalLike", 1, {T_<int32_t>({2, 3}, {0, 0, 0, 0, 0, 0})}, {AttrInt("dtype", 11)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat64);
  EXPECT_EQ(out->at(0).shape(), Shape({2, 3}));
  auto bad = RunOp("RandomUniformLike", 1, {T_<int32_t>({2}, {0, 0})});
  EXPECT_FALSE(bad.ok());
  auto half = RunOp("RandomUniformLike", 1, {Tensor::Zeros(DType::kFloat16, {3})}, {AttrFloat("seed", 0)});
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(half->at(0).dtype(), DType::kFloat16);
  EXPECT_NEAR(static_cast<float>(half->at(0).data<Float16>()[0]), 0.5488135f, 1e-3);
  auto empty = RunOp("RandomUniformLike", 1, {Tensor::Zeros(DType::kFloat32, {0, 4})});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->at(0).shape(), Shape({0, 4}));
}

TEST(RandomTest, BadAttributesAreErrors) {
  EXPECT_FALSE(RunOp("RandomUniform", 1, {}, {}).ok());  // no shape
  EXPECT_FALSE(RunOp("RandomUniform", 1, {}, {AttrInts("shape", {2}), AttrInt("dtype", 6)}).ok());
  EXPECT_FALSE(RunOp("RandomNormal", 1, {}, {AttrInts("shape", {-1})}).ok());
}

TEST(RandomTest, BernoulliWithCertainProbabilities) {
  auto out = RunOp("Bernoulli", 15, {T_<float>({4}, {0, 1, 1, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0, 1, 1, 0}));
  auto as_bool = RunOp("Bernoulli", 15, {T_<double>({2}, {1, 0})}, {AttrInt("dtype", 9)});
  ASSERT_TRUE(as_bool.ok()) << as_bool.status();
  EXPECT_EQ(as_bool->at(0).dtype(), DType::kBool);
  EXPECT_THAT(Values<bool>(as_bool->at(0)), ElementsAre(true, false));
  auto as_int = RunOp("Bernoulli", 21, {T_<float>({2}, {1, 1})}, {AttrInt("dtype", 7)});
  ASSERT_TRUE(as_int.ok()) << as_int.status();
  EXPECT_EQ(Values<int64_t>(as_int->at(0)), std::vector<int64_t>({1, 1}));
}

// Seed 0's first draws are 0.5488, 0.7152, 0.6028, 0.5449: y = (u < p).
TEST(RandomTest, SeededBernoulliComparesUniformDraws) {
  auto out = RunOp("Bernoulli", 15, {T_<float>({4}, {0.6f, 0.7f, 0.61f, 0.5f})}, {AttrFloat("seed", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1, 0, 1, 0}));
}

TEST(RandomTest, BernoulliRejectsBadProbability) {
  EXPECT_FALSE(RunOp("Bernoulli", 15, {T_<float>({2}, {0.5f, 1.5f})}).ok());
  EXPECT_FALSE(RunOp("Bernoulli", 15, {T_<int32_t>({1}, {1})}).ok());
}

TEST(RandomTest, MultinomialSamplesOnlyPossibleClasses) {
  const float ninf = -std::numeric_limits<float>::infinity();
  auto out = RunOp("Multinomial", 7, {T_<float>({2, 3}, {ninf, 0, ninf, 5, ninf, ninf})},
                   {AttrInt("sample_size", 4), AttrInt("dtype", 7)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 4}));
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({1, 1, 1, 1, 0, 0, 0, 0}));
  auto def = RunOp("Multinomial", 7, {T_<double>({1, 2}, {0, 0})}, {AttrFloat("seed", 1)});
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->at(0).dtype(), DType::kInt32);
  EXPECT_EQ(def->at(0).shape(), Shape({1, 1}));
}

TEST(RandomTest, MultinomialBadInput) {
  EXPECT_FALSE(RunOp("Multinomial", 7, {T_<float>({3}, {0, 0, 0})}).ok());
  const float ninf = -std::numeric_limits<float>::infinity();
  EXPECT_FALSE(RunOp("Multinomial", 7, {T_<float>({1, 2}, {ninf, ninf})}).ok());
  EXPECT_FALSE(RunOp("Multinomial", 7, {T_<float>({1, 2}, {0, 0})}, {AttrInt("dtype", 1)}).ok());
}

TEST(RandomTest, DropoutOldOpsetsAreIdentityAtInference) {
  auto v7 = RunOp("Dropout", 7, {T_<float>({3}, {-1, 0, 1})}, {AttrFloat("ratio", 0.3f)}, 2);
  ASSERT_TRUE(v7.ok()) << v7.status();
  EXPECT_EQ(Values<float>(v7->at(0)), std::vector<float>({-1, 0, 1}));
  EXPECT_EQ(v7->at(1).dtype(), DType::kFloat32);  // mask of type T before opset 10
  EXPECT_EQ(Values<float>(v7->at(1)), std::vector<float>({1, 1, 1}));
  auto v10 = RunOp("Dropout", 10, {T_<double>({2}, {4, 5})}, {}, 2);
  ASSERT_TRUE(v10.ok()) << v10.status();
  EXPECT_EQ(v10->at(1).dtype(), DType::kBool);
  EXPECT_THAT(Values<bool>(v10->at(1)), ElementsAre(true, true));
  auto v6 = RunOp("Dropout", 6, {T_<float>({2}, {4, 5})}, {AttrInt("is_test", 1)});
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(Values<float>(v6->at(0)), std::vector<float>({4, 5}));
}

// Opset 6 without is_test trains: ratio 0 keeps (and scales by 1) everything.
TEST(RandomTest, DropoutOpset6TrainsByDefault) {
  auto out = RunOp("Dropout", 6, {T_<float>({2}, {4, 5})}, {AttrFloat("ratio", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({4, 5}));
}

// np.random.seed(0); u = np.random.uniform(0, 1, 4) = [0.549, 0.715, 0.603, 0.545];
// ratio 0.6 keeps u >= 0.6 -> [F, T, T, F], scaled by 1 / 0.4.
TEST(RandomTest, TrainingDropoutMatchesNumpyReference) {
  auto out = RunOp("Dropout", 13,
                   {T_<float>({2, 2}, {1, 2, 3, 4}), Scalar<float>(0.6f), Scalar<bool>(true)},
                   {AttrInt("seed", 0)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), Pointwise(FloatNear(1e-6), std::vector<float>{0, 5, 7.5f, 0}));
  EXPECT_THAT(Values<bool>(out->at(1)), ElementsAre(false, true, true, false));
  // ratio 1 drops everything without NaNs.
  auto all = RunOp("Dropout", 21, {T_<float>({2}, {1, 2}), Scalar<double>(1.0), Scalar<bool>(true)});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Values<float>(all->at(0)), std::vector<float>({0, 0}));
}

TEST(RandomTest, DropoutInferenceAtOpset13KeepsBFloat16AndScalars) {
  Tensor x = Tensor::Empty(DType::kBFloat16, {});
  x.mutable_data<BFloat16>()[0] = BFloat16(2.5f);
  auto out = RunOp("Dropout", 13, {x, Scalar<float>(0.5f), Scalar<bool>(false)}, {}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({}));
  EXPECT_EQ(static_cast<float>(out->at(0).data<BFloat16>()[0]), 2.5f);
  EXPECT_THAT(Values<bool>(out->at(1)), ElementsAre(true));
  auto empty = RunOp("Dropout", 12, {Tensor::Zeros(DType::kFloat32, {0, 3})});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({0, 3}));
}

TEST(RandomTest, DropoutBadInputs) {
  EXPECT_FALSE(RunOp("Dropout", 12, {T_<float>({1}, {1}), Scalar<float>(1.5f)}).ok());
  EXPECT_FALSE(RunOp("Dropout", 12, {T_<float>({1}, {1}), Scalar<float>(0.5f), Scalar<float>(1)}).ok());
  EXPECT_FALSE(RunOp("Dropout", 12, {T_<float>({1}, {1}), T_<float>({2}, {0.5f, 0.5f})}).ok());
  EXPECT_FALSE(RunOp("Dropout", 10, {T_<float>({1}, {1})}, {AttrFloat("ratio", -0.1f)}).ok());
  EXPECT_FALSE(RunOp("Dropout", 13, {T_<int32_t>({1}, {1})}).ok());
}

TEST(RandomTest, MissingRequiredInputsAreErrors) {
  EXPECT_FALSE(RunOp("RandomUniformLike", 1, {}).ok());
  EXPECT_FALSE(RunOp("Dropout", 13, {Tensor(), Scalar<float>(0.5f)}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing
