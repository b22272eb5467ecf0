#include "ops/vec_math.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <limits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace hepml::ops {
namespace {

// Inputs over the whole useful range, the special values, and lengths that
// leave every possible tail after the full vectors.
std::vector<float> Inputs(int64_t n) {
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = -95.0f + 190.0f * static_cast<float>(i) / static_cast<float>(n);
  return x;
}

void ExpectClose(double want, float got, double rel, const char* what, float x) {
  if (std::isinf(static_cast<float>(want))) want = static_cast<float>(want);  // overflows float
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << what << "(" << x << ")";
  } else if (std::isinf(want)) {
    EXPECT_EQ(want, got) << what << "(" << x << ")";
  } else {
    EXPECT_NEAR(want, got, rel * std::fabs(want) + 1e-37) << what << "(" << x << ")";
  }
}

TEST(VecMathTest, MatchesLibmOverTheRangeAndEveryTailLength) {
  for (int64_t n : {1, 3, 7, 8, 15, 16, 17, 31, 33, 1000}) {
    std::vector<float> x = Inputs(n), y(n);
    ExpF32(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ExpectClose(std::exp(double{x[i]}), y[i], 2e-6, "exp", x[i]);
    SigmoidF32(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ExpectClose(1.0 / (1.0 + std::exp(-double{x[i]})), y[i], 2e-6, "sigmoid", x[i]);
    TanhF32(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(std::tanh(double{x[i]}), y[i], 2e-6) << "tanh(" << x[i] << ")";
    }
    SoftplusF32(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[i];
      ExpectClose(v > 30 ? v : std::log1p(std::exp(v)), y[i], 4e-6, "softplus", x[i]);
    }
  }
}

TEST(VecMathTest, ErfAndGeluMatchLibm) {
  double worst = 0;
  for (int64_t n : {1, 5, 16, 17, 20001}) {
    std::vector<float> x(n), y(n);
    for (int64_t i = 0; i < n; ++i) x[i] = -6.0f + 12.0f * static_cast<float>(i) / static_cast<float>(n);
    ErfF32(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(std::erf(double{x[i]}), y[i], 1e-6) << "erf(" << x[i] << ")";
      worst = std::max(worst, std::fabs(std::erf(double{x[i]}) - y[i]));
    }
    GeluF32(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double g = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
      EXPECT_NEAR(g, y[i], 1e-6 * (1 + std::fabs(g))) << "gelu(" << x[i] << ")";
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> s = {inf, -inf, std::numeric_limits<float>::quiet_NaN(), 0.0f};
  ErfF32(s.data(), s.data(), s.size());
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], -1.0f);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_EQ(s[3], 0.0f);
  RecordProperty("max_abs_erf_error", std::to_string(worst));
}

TEST(VecMathTest, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = {nan, inf, -inf, 0.0f, -0.0f, 89.0f, 1e30f, -1e30f, 88.0f};
  std::vector<float> y(x.size());
  ExpF32(x.data(), y.data(), x.size());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], inf);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_EQ(y[5], inf);  // exp(89) overflows float
  EXPECT_EQ(y[6], inf);
  EXPECT_EQ(y[7], 0.0f);
  EXPECT_TRUE(std::isfinite(y[8]));
  SigmoidF32(x.data(), y.data(), x.size());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 0.5f);
  EXPECT_EQ(y[6], 1.0f);
  EXPECT_EQ(y[7], 0.0f);
  TanhF32(x.data(), y.data(), x.size());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[2], -1.0f);
  EXPECT_EQ(y[3], 0.0f);
  SoftplusF32(x.data(), y.data(), x.size());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], inf);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_NEAR(y[3], std::log(2.0f), 1e-7f);
  EXPECT_EQ(y[6], 1e30f);  // no overflow through exp(x)
  EXPECT_EQ(y[7], 0.0f);
}

TEST(VecMathTest, LeakyReluAndClipAreExactlyTheScalarForms) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : {1, 5, 16, 17, 33, 100}) {
    std::vector<float> x = Inputs(n), y(n);
    x[0] = -0.0f;
    if (n > 2) x[1] = nan, x[2] = -inf;
    if (n > 3) x[3] = inf;
    LeakyReluF32(x.data(), y.data(), n, 0.2f);
    for (int64_t i = 0; i < n; ++i) {
      const float want = x[i] >= 0.0f ? x[i] : 0.2f * x[i];
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y[i])) << i;
      } else {
        EXPECT_EQ(want, y[i]) << "leaky_relu(" << x[i] << ")";
        EXPECT_EQ(std::signbit(want), std::signbit(y[i])) << "leaky_relu(" << x[i] << ")";
      }
    }
    ClipF32(x.data(), y.data(), n, -3.0f, 7.5f);
    for (int64_t i = 0; i < n; ++i) {
      const float c = x[i] < -3.0f ? -3.0f : x[i];
      const float want = c > 7.5f ? 7.5f : c;
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y[i])) << i;
      } else {
        EXPECT_EQ(want, y[i]) << "clip(" << x[i] << ")";
      }
    }
    // In place, as the epilogues use them.
    std::vector<float> z = x;
    LeakyReluF32(z.data(), z.data(), n, 0.01f);
    for (int64_t i = 4; i < n; ++i) EXPECT_EQ(x[i] >= 0.0f ? x[i] : 0.01f * x[i], z[i]) << i;
  }
}

TEST(VecMathTest, LayerNormRowMatchesTheDefinitionInDouble) {
  for (int64_t n : {1, 7, 16, 63, 64, 65, 128, 1000}) {
    for (double offset : {0.0, 1000.0}) {
      std::vector<float> x(n), y(n), scale(n), bias(n);
      for (int64_t i = 0; i < n; ++i) {
        x[i] = static_cast<float>(offset + std::sin(0.37 * static_cast<double>(i)) * 3.0);
        scale[i] = 0.5f + 0.01f * static_cast<float>(i % 13);
        bias[i] = -0.25f + 0.02f * static_cast<float>(i % 7);
      }
      double mean = 0, inv_std = 0;
      LayerNormRowF32(x.data(), y.data(), n, scale.data(), bias.data(), 1e-5, &mean, &inv_std);
      double m = 0, v = 0;
      for (float xi : x) m += xi;
      m /= static_cast<double>(n);
      for (float xi : x) v += (xi - m) * (xi - m);
      v /= static_cast<double>(n);
      const double is = 1.0 / std::sqrt(v + 1e-5);
      EXPECT_NEAR(m, mean, 1e-6 * (1 + std::fabs(m))) << n;
      EXPECT_NEAR(is, inv_std, 1e-4 * is) << n;
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR((x[i] - m) * is * scale[i] + bias[i], y[i], 2e-4) << "n " << n << " i " << i;
      }
      LayerNormRowF32(x.data(), x.data(), n, scale.data(), nullptr, 1e-5, &mean, &inv_std);  // in place
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i] - bias[i], x[i], 1e-5) << i;
    }
  }
}

TEST(VecMathTest, BinaryOpsAreExactlyTheScalarOperators) {
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {1, 15, 16, 17, 70}) {
    std::vector<float> a = Inputs(n), b(n), o(n);
    for (int64_t i = 0; i < n; ++i) b[i] = static_cast<float>((i * 7) % 5) - 2.0f;  // zeros too
    if (n > 3) a[1] = -0.0f, a[2] = inf, a[3] = std::numeric_limits<float>::quiet_NaN();
    for (auto op : {BinaryF32Op::kAdd, BinaryF32Op::kSub, BinaryF32Op::kMul, BinaryF32Op::kDiv}) {
      for (auto [sa, sb] : {std::pair<int64_t, int64_t>{1, 1}, {1, 0}, {0, 1}, {0, 0}}) {
        BinaryF32(op, a.data(), sa, b.data(), sb, o.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const float x = a[i * sa], y = b[i * sb];
          const float want = op == BinaryF32Op::kAdd   ? x + y
                             : op == BinaryF32Op::kSub ? x - y
                             : op == BinaryF32Op::kMul ? x * y
                                                       : x / y;
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(o[i])) << static_cast<int>(op) << " " << i;
          } else {
            EXPECT_EQ(want, o[i]) << static_cast<int>(op) << " sa " << sa << " sb " << sb << " i " << i;
            EXPECT_EQ(std::signbit(want), std::signbit(o[i])) << i;
          }
        }
      }
    }
  }
}

TEST(VecMathTest, ExpShiftSumIsASoftmaxNumerator) {
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f, 10.0f, 11.0f};
  std::vector<float> y(x.size());
  const float sum = ExpShiftSumF32(x.data(), y.data(), x.size(), 11.0f);
  double want = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(std::exp(x[i] - 11.0), y[i], 1e-6);
    want += std::exp(x[i] - 11.0);
  }
  EXPECT_NEAR(want, sum, 1e-5);
  // In place.
  ExpF32(x.data(), x.data(), x.size());
  EXPECT_NEAR(std::exp(1.0), x[0], 1e-5);
}

}  // namespace
}  // namespace hepml::ops
