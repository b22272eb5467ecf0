// Unit tests of the activations family. Expected values were computed with
// numpy in float64 from the ONNX definitions (e.g. Gelu: 0.5*x*(1+erf(x/sqrt(2))),
// Softmax: exp(x - max) / sum) unless they are plain by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

// A rank-0 tensor. (Built by reshaping: constructing an empty Shape in
// place trips a GCC 12 -Wmaybe-uninitialized false positive in absl.)
template <typename T>
Tensor Scalar_(T v) {
  return T_<T>({1}, {v}).Reshaped(Shape(0));
}

template <typename T>
void ExpectNear(const Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  ASSERT_EQ(t.size(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    const double v = static_cast<double>(static_cast<float>(t.data<T>()[i]));
    EXPECT_NEAR(v, expected[i], tol) << "at " << i;
  }
}

const std::vector<float> kX = {-2, -0.5f, 0, 0.5f, 2};

TEST(ActivationsTest, PointwiseFloatActivations) {
  struct Case {
    const char* op;
    int opset;
    std::vector<Attribute> attrs;
    std::vector<double> expected;
  };
  const std::vector<Case> cases = {
      {"Relu", 14, {}, {0, 0, 0, 0.5, 2}},
      {"LeakyRelu", 16, {}, {-0.02, -0.005, 0, 0.5, 2}},
      {"LeakyRelu", 6, {AttrFloat("alpha", 0.5f)}, {-1, -0.25, 0, 0.5, 2}},
      {"Elu", 6, {}, {-0.86466472, -0.39346934, 0, 0.5, 2}},
      {"Selu", 6, {}, {-1.52016647, -0.69175819, 0, 0.52535051, 2.10140204}},
      {"Celu", 12, {AttrFloat("alpha", 2.0f)}, {-1.26424112, -0.44239843, 0, 0.5, 2}},
      {"Sigmoid", 13, {}, {0.11920292, 0.37754067, 0.5, 0.62245933, 0.88079708}},
      {"Tanh", 13, {}, {-0.96402758, -0.46211716, 0, 0.46211716, 0.96402758}},
      {"HardSigmoid", 6, {}, {0.1, 0.4, 0.5, 0.6, 0.9}},
      {"HardSwish", 14, {}, {-0.33333333, -0.20833333, 0, 0.29166667, 1.66666667}},
      {"Softplus", 1, {}, {0.12692801, 0.47407698, 0.69314718, 0.97407698, 2.12692801}},
      {"Softsign", 1, {}, {-0.66666667, -0.33333333, 0, 0.33333333, 0.66666667}},
      {"ThresholdedRelu", 10, {AttrFloat("alpha", 0.5f)}, {0, 0, 0, 0, 2}},
      {"Shrink", 9, {AttrFloat("lambd", 1.0f), AttrFloat("bias", 0.5f)}, {-1.5, 0, 0, 0, 1.5}},
      {"Gelu", 20, {}, {-0.04550026, -0.15426877, 0, 0.34573123, 1.95449974}},
      {"Gelu", 20, {AttrString("approximate", "tanh")}, {-0.04540231, -0.15428599, 0, 0.34571401, 1.95459769}},
      {"Mish", 18, {}, {-0.25250148, -0.22074377, 0, 0.37524521, 1.94395896}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    auto out = RunOp(c.op, c.opset, {T_<float>({5}, kX)}, c.attrs);
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectNear<float>(out->at(0), c.expected, 1e-6);
    // The same in float64 and float16.
    auto out64 = RunOp(c.op, c.opset, {T_<double>({5}, std::vector<double>(kX.begin(), kX.end()))}, c.attrs);
    ASSERT_TRUE(out64.ok()) << out64.status();
    ExpectNear<double>(out64->at(0), c.expected, 1e-7);
    std::vector<Float16> h;
    for (float v : kX) h.push_back(Float16(v));
    auto out16 = RunOp(c.op, c.opset, {T_<Float16>({5}, h)}, c.attrs);
    ASSERT_TRUE(out16.ok()) << out16.status();
    ExpectNear<Float16>(out16->at(0), c.expected, 3e-3);
  }
}

TEST(ActivationsTest, StableForLargeMagnitudes) {
  auto out = RunOp("Sigmoid", 13, {T_<float>({3}, {-1000, 0, 1000})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0, 0.5f, 1}));
  out = RunOp("Softplus", 1, {T_<float>({2}, {-1000, 1000})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0, 1000}));
  out = RunOp("Mish", 18, {T_<double>({2}, {-1000, 1000})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<double>(out->at(0), {0, 1000});
}

TEST(ActivationsTest, IntegerReluAndShrink) {
  auto out = RunOp("Relu", 14, {T_<int8_t>({3}, {-128, 0, 127})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({0, 0, 127}));
  out = RunOp("Shrink", 9, {T_<int32_t>({4}, {-5, -1, 1, 5})}, {AttrFloat("lambd", 1.5f), AttrFloat("bias", 2.0f)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-3, 0, 0, 3}));
  EXPECT_FALSE(RunOp("Sigmoid", 13, {T_<int32_t>({1}, {1})}).ok());
  // int64 Relu is exact beyond double's 53-bit mantissa.
  const int64_t big = (int64_t{1} << 60) + 1;
  out = RunOp("Relu", 14, {T_<int64_t>({2}, {big, -big})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({big, 0}));
  // Integer PRelu wraps instead of overflowing: -2^31 * 2 = 0 mod 2^32.
  out = RunOp("PRelu", 16, {T_<int32_t>({1}, {std::numeric_limits<int32_t>::min()}), T_<int32_t>({1}, {2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({0}));
}

TEST(ActivationsTest, GeluAndMishVersions) {
  EXPECT_FALSE(RunOp("Gelu", 19, {T_<float>({1}, {1})}).ok());  // new at opset 20
  EXPECT_FALSE(RunOp("Mish", 17, {T_<float>({1}, {1})}).ok());  // new at opset 18
  auto out = RunOp("Gelu", 20, {T_<float>({1}, {1})}, {AttrString("approximate", "fast")});
  EXPECT_FALSE(out.ok());
  out = RunOp("Gelu", 21, {Scalar_<BFloat16>(BFloat16(2.0f))});  // scalar
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({}));
  ExpectNear<BFloat16>(out->at(0), {1.95449974}, 1e-2);
}

TEST(ActivationsTest, EmptyTensor) {
  auto out = RunOp("Relu", 14, {T_<float>({0, 4}, {})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({0, 4}));
  out = RunOp("Softmax", 13, {T_<float>({0, 4}, {})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({0, 4}));
}

// ---- PRelu ----

TEST(ActivationsTest, PReluBroadcastsSlope) {
  // x [2,2,2], slope [2,1,1]: channel c uses slope[c].
  auto x = T_<float>({2, 2, 2}, {-1, 1, -2, 2, -3, 3, -4, 4});
  auto out = RunOp("PRelu", 16, {x, T_<float>({2, 1, 1}, {0.5f, 0.25f})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-0.5f, 1, -1, 2, -0.75f, 3, -1, 4}));
  // Trailing-dimension slope [2]: numpy broadcasting along the last axis.
  out = RunOp("PRelu", 16, {x, T_<float>({2}, {0.5f, 0.25f})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-0.5f, 1, -1, 2, -1.5f, 3, -2, 4}));
  // Non-contiguous slope pattern [2,1,2] (general path).
  out = RunOp("PRelu", 16, {x, T_<float>({2, 1, 2}, {1, 1, 0.5f, 0.5f})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-1, 1, -2, 2, -1.5f, 3, -2, 4}));
  // Integer PRelu (opset 9+).
  out = RunOp("PRelu", 16, {T_<int32_t>({3}, {-4, 0, 4}), T_<int32_t>({1}, {3})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-12, 0, 4}));
}

TEST(ActivationsTest, PReluLegacyPerChannelSlope) {
  // Opset 6: a [C] slope on [N,C,L] is one slope per channel.
  auto x = T_<float>({1, 2, 2}, {-1, -2, -3, -4});
  auto out = RunOp("PRelu", 6, {x, T_<float>({2}, {0.5f, 0.25f})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-0.5f, -1, -0.75f, -1}));
}

TEST(ActivationsTest, PReluBadSlopeIsAnError) {
  auto x = T_<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_FALSE(RunOp("PRelu", 16, {x, T_<float>({2}, {1, 2})}).ok());
  EXPECT_FALSE(RunOp("PRelu", 16, {x, T_<float>({4, 2, 3}, std::vector<float>(24, 1))}).ok());  // would grow X
  EXPECT_FALSE(RunOp("PRelu", 16, {x, T_<double>({1}, {1})}).ok());
}

// ---- Softmax family ----

TEST(ActivationsTest, SoftmaxAlongAxisFromOpset13) {
  auto x = T_<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto out = RunOp("Softmax", 13, {x});  // default axis -1
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {0.09003057, 0.24472847, 0.66524096, 0.09003057, 0.24472847, 0.66524096});
  out = RunOp("Softmax", 13, {x}, {AttrInt("axis", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {0.04742587, 0.04742587, 0.04742587, 0.95257413, 0.95257413, 0.95257413});
  out = RunOp("LogSoftmax", 13, {x}, {AttrInt("axis", -1)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {-2.40760596, -1.40760596, -0.40760596, -2.40760596, -1.40760596, -0.40760596});
  // Large values: subtracting the maximum keeps exp finite.
  out = RunOp("Softmax", 13, {T_<float>({2}, {10000, 10000})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {0.5, 0.5});
  out = RunOp("LogSoftmax", 13, {T_<float>({2}, {10000, 10000})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {-0.69314718, -0.69314718});
}

TEST(ActivationsTest, SoftmaxOfManyShortRowsMatchesTheDefinition) {
  // A classifier's output: many rows of a few classes (rows shorter than a
  // vector go through the exp together), at row counts that leave partial
  // groups, with large and equal values in some rows.
  for (int64_t n : {1, 2, 5, 15, 16, 17}) {
    for (int64_t rows : {1, 63, 64, 65, 200}) {
      std::vector<float> v(rows * n);
      for (int64_t i = 0; i < rows * n; ++i) v[i] = static_cast<float>((i * 37) % 23) * 0.7f - 8.0f;
      if (rows > 3) {
        for (int64_t j = 0; j < n; ++j) v[3 * n + j] = 10000.0f;
      }
      auto out = RunOp("Softmax", 13, {T_<float>({rows, n}, v)});
      ASSERT_TRUE(out.ok()) << out.status();
      std::vector<double> want(rows * n);
      for (int64_t r = 0; r < rows; ++r) {
        double m = -1e300, sum = 0;
        for (int64_t j = 0; j < n; ++j) m = std::max(m, double{v[r * n + j]});
        for (int64_t j = 0; j < n; ++j) sum += std::exp(double{v[r * n + j]} - m);
        for (int64_t j = 0; j < n; ++j) want[r * n + j] = std::exp(double{v[r * n + j]} - m) / sum;
      }
      ExpectNear<float>(out->at(0), want);
    }
  }
}

TEST(ActivationsTest, SoftmaxCoercesTo2DBeforeOpset13) {
  // [2,2,2] at axis 1 -> [2,4]: normalised over the last two dims together.
  std::vector<float> v = {0, 1, 2, 3, 4, 5, 6, 7};
  const std::vector<double> expected = {0.0320586,  0.08714432, 0.23688282, 0.64391426,
                                        0.0320586,  0.08714432, 0.23688282, 0.64391426};
  auto out = RunOp("Softmax", 11, {T_<float>({2, 2, 2}, v)});  // default axis 1
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), expected);
  // Opset 13 with axis 1 is different: only dim 1.
  out = RunOp("Softmax", 13, {T_<float>({2, 2, 2}, v)}, {AttrInt("axis", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {0.11920292, 0.11920292, 0.88079708, 0.88079708,
                                 0.11920292, 0.11920292, 0.88079708, 0.88079708});
  // Hardmax coerced: one 1 per row of the 2-D view.
  out = RunOp("Hardmax", 11, {T_<float>({2, 2, 2}, {0, 5, 2, 5, 9, 1, 1, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0, 1, 0, 0, 1, 0, 0, 0}));
}

TEST(ActivationsTest, HardmaxPicksFirstMaximumAlongAxis) {
  auto out = RunOp("Hardmax", 13, {T_<double>({2, 3}, {3, 1, 3, 0, 0, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({1, 0, 0, 1, 0, 0}));
  out = RunOp("Hardmax", 13, {T_<float>({2, 2}, {1, 4, 3, 2})}, {AttrInt("axis", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0, 1, 1, 0}));
}

TEST(ActivationsTest, SoftmaxFloat16AndErrors) {
  auto out = RunOp("Softmax", 13, {T_<Float16>({3}, {Float16(1.0f), Float16(2.0f), Float16(3.0f)})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<Float16>(out->at(0), {0.09003057, 0.24472847, 0.66524096}, 1e-3);
  EXPECT_FALSE(RunOp("Softmax", 13, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6})}, {AttrInt("axis", 2)}).ok());
  EXPECT_FALSE(RunOp("LogSoftmax", 11, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6})}, {AttrInt("axis", -3)}).ok());
  EXPECT_FALSE(RunOp("Hardmax", 13, {T_<int32_t>({2}, {1, 2})}).ok());
  // A scalar normalises to 1.
  out = RunOp("Softmax", 13, {Scalar_<float>(42)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1}));
}

}  // namespace
}  // namespace hepml::ops::testing
