// The integer kernels of the emitted code against references written from
// the definitions: ap_fixed<W, I, Q, O> rounding and overflow (Vivado/Vitis
// HLS semantics), the int8 GEMM and convolution against float products of
// the dequantised operands, and the --precision parsing.
#include <cmath>
#include <random>
#include <vector>

#include "codegen/emitted/fixed.h"
#include "codegen/emitted/int8.h"
#include "codegen/quantize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hepml/compiler.h"

namespace hepml::codegen {
namespace {

namespace K = hepml_emitted;
using ::testing::HasSubstr;

// The ap_fixed rules on exact doubles: x * 2^F is exact for a float x and
// F <= 32; quantise to an integer, then wrap or saturate to W bits.
double RefFixed(double x, int w, int i, int q, int o) {
  const int f = w - i;
  const double r = std::ldexp(x, f);
  double v = std::floor(r);                        // AP_TRN: toward -inf
  if (q == K::kFxRnd) v = std::floor(r + 0.5);     // nearest, ties toward +inf
  if (q == K::kFxRndConv) {                        // nearest, ties to even
    const double d = r - std::floor(r);
    v = d < 0.5 ? std::floor(r) : d > 0.5 ? std::ceil(r) : (std::fmod(std::floor(r), 2.0) == 0 ? std::floor(r) : std::ceil(r));
  }
  const double lo = -std::ldexp(1.0, w - 1), hi = std::ldexp(1.0, w - 1) - 1, span = std::ldexp(1.0, w);
  if (o == K::kFxSat) v = std::min(std::max(v, lo), hi);
  else v = v - span * std::floor((v - lo) / span);  // into [lo, hi]
  return std::ldexp(v, -f);
}

double Fx(float x, int w, int i, int q = K::kFxTrn, int o = K::kFxWrap) {
  return std::ldexp(static_cast<double>(K::FxFromFloat(x, w - i, w, q, o)), -(w - i));
}

TEST(ApFixedTest, HandWorkedCasesOfFixed4_2) {
  // ap_fixed<4,2>: LSB 0.25, range [-2, 1.75].
  EXPECT_EQ(Fx(0.3f, 4, 2), 0.25);     // truncation floors
  EXPECT_EQ(Fx(-0.3f, 4, 2), -0.5);    // ... toward -inf for negatives
  EXPECT_EQ(Fx(-0.25f, 4, 2), -0.25);  // exact values stay
  EXPECT_EQ(Fx(1.9f, 4, 2), 1.75);
  EXPECT_EQ(Fx(2.0f, 4, 2), -2.0);     // AP_WRAP: raw 8 wraps to -8
  EXPECT_EQ(Fx(2.3f, 4, 2), -1.75);    // raw floor(9.2) = 9 -> -7
  EXPECT_EQ(Fx(3.0f, 4, 2), -1.0);     // raw 12 -> -4
  EXPECT_EQ(Fx(-2.3f, 4, 2), 1.5);     // raw floor(-9.2) = -10 -> 6
  EXPECT_EQ(Fx(4.0f, 4, 2), 0.0);      // raw 16 -> 0
  EXPECT_EQ(Fx(2.3f, 4, 2, K::kFxTrn, K::kFxSat), 1.75);   // saturation at the top
  EXPECT_EQ(Fx(-2.3f, 4, 2, K::kFxTrn, K::kFxSat), -2.0);  // ... and at the bottom
  EXPECT_EQ(Fx(-100.f, 4, 2, K::kFxRnd, K::kFxSat), -2.0);
  EXPECT_EQ(Fx(1.9f, 4, 2, K::kFxRnd, K::kFxWrap), -2.0);  // rounds up to raw 8, then wraps
  EXPECT_EQ(Fx(1.9f, 4, 2, K::kFxRnd, K::kFxSat), 1.75);
  // Halves: raw 0.5, -0.5, 1.5, -1.5, 2.5.
  EXPECT_EQ(Fx(0.125f, 4, 2, K::kFxRnd), 0.25);      // AP_RND: ties toward +inf
  EXPECT_EQ(Fx(-0.125f, 4, 2, K::kFxRnd), 0.0);
  EXPECT_EQ(Fx(-0.375f, 4, 2, K::kFxRnd), -0.25);
  EXPECT_EQ(Fx(0.125f, 4, 2, K::kFxRndConv), 0.0);   // AP_RND_CONV: ties to even
  EXPECT_EQ(Fx(0.375f, 4, 2, K::kFxRndConv), 0.5);
  EXPECT_EQ(Fx(-0.375f, 4, 2, K::kFxRndConv), -0.5);
  EXPECT_EQ(Fx(0.625f, 4, 2, K::kFxRndConv), 0.5);
  EXPECT_EQ(Fx(-0.125f, 4, 2, K::kFxRndConv), 0.0);
  EXPECT_EQ(Fx(0.13f, 4, 2, K::kFxRndConv), 0.25);   // not a tie: nearest
  // Special values.
  EXPECT_EQ(Fx(NAN, 4, 2), 0.0);
  EXPECT_EQ(Fx(INFINITY, 4, 2, K::kFxTrn, K::kFxSat), 1.75);
  EXPECT_EQ(Fx(-INFINITY, 4, 2, K::kFxTrn, K::kFxSat), -2.0);
  EXPECT_EQ(Fx(1e-30f, 4, 2), 0.0);
  EXPECT_EQ(Fx(-1e-30f, 4, 2), -0.25);  // floor of a tiny negative
  EXPECT_EQ(Fx(-1e-30f, 4, 2, K::kFxRnd), 0.0);
  EXPECT_EQ(Fx(3e38f, 16, 6, K::kFxTrn, K::kFxSat), 32.0 - 1.0 / 1024);
}

TEST(ApFixedTest, MatchesTheReferenceOnRandomValues) {
  std::mt19937 rng(7);
  const int types[][2] = {{4, 2}, {8, 3}, {16, 6}, {16, 0}, {18, 8}, {24, 12}, {32, 16}, {32, 1}, {1, 1}, {12, 12}};
  for (const auto& t : types) {
    const int w = t[0], i = t[1];
    std::uniform_real_distribution<float> u(-std::ldexp(1.f, i + 1), std::ldexp(1.f, i + 1));
    for (int q : {K::kFxTrn, K::kFxRnd, K::kFxRndConv}) {
      for (int o : {K::kFxWrap, K::kFxSat}) {
        for (int k = 0; k < 2000; ++k) {
          float x = u(rng);
          // Every fourth value on a half-LSB grid: the rounding ties.
          if (k % 4 == 0) x = static_cast<float>(std::ldexp(std::round(std::ldexp(x, w - i + 1)), -(w - i + 1)));
          ASSERT_EQ(Fx(x, w, i, q, o), RefFixed(x, w, i, q, o))
              << "ap_fixed<" << w << "," << i << "> q " << q << " o " << o << " x " << x;
        }
      }
    }
  }
}

TEST(ApFixedTest, AccumulatorQuantisationMatchesTheReference) {
  // A sum with 2F fractional bits brought back to F bits.
  std::mt19937_64 rng(3);
  for (int w : {8, 16, 24}) {
    const int f = w / 2;
    std::uniform_int_distribution<int64_t> u(-(int64_t{1} << (2 * w)), int64_t{1} << (2 * w));
    for (int q : {K::kFxTrn, K::kFxRnd, K::kFxRndConv}) {
      for (int o : {K::kFxWrap, K::kFxSat}) {
        for (int k = 0; k < 2000; ++k) {
          const int64_t v = u(rng);
          const double x = std::ldexp(static_cast<double>(v), -2 * f);  // exact
          const double got = std::ldexp(static_cast<double>(K::FxQuantize<int64_t>(v, f, w, q, o)), -f);
          ASSERT_EQ(got, RefFixed(x, w, w - f, q, o)) << v;
#if defined(HEPML_EMITTED_FX_WIDE)
          ASSERT_EQ(K::FxQuantize<K::FxWide>(v, f, w, q, o), K::FxQuantize<int64_t>(v, f, w, q, o));
#endif
        }
      }
    }
  }
}

TEST(ApFixedTest, DenseLayerIsExactAgainstTheReference) {
  // y = relu(quantise(x . w + b)) with every operand of the type; the sum of
  // products of exact values is exact in double here.
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.f, 2.f);
  const int M = 3, N = 5, Kd = 7;
  for (const auto& [w, i, q, o] : std::vector<std::tuple<int, int, int, int>>{
           {16, 6, K::kFxTrn, K::kFxWrap}, {8, 3, K::kFxRnd, K::kFxSat}, {10, 4, K::kFxRndConv, K::kFxWrap},
           {32, 12, K::kFxRnd, K::kFxSat}}) {
    FixedType t{w, i, q, o};
    std::vector<float> x(M * Kd), wt(N * Kd), b(N), y(M * N);
    for (float& v : x) v = g(rng);
    for (float& v : wt) v = g(rng);
    for (float& v : b) v = g(rng);
    const std::vector<int32_t> wr = ToFixedRaw(wt.data(), N * Kd, t), br = ToFixedRaw(b.data(), N, t);
    std::vector<int32_t> xq(Kd);
    if (w <= 16) {
      K::GemmFixed<int64_t>(M, N, Kd, x.data(), wr.data(), br.data(), w - i, w, q, o, K::Act::kRelu, 0, 0, xq.data(), y.data());
    } else {
      K::GemmFixed<K::FxWide>(M, N, Kd, x.data(), wr.data(), br.data(), w - i, w, q, o, K::Act::kRelu, 0, 0, xq.data(), y.data());
    }
    for (int r = 0; r < M; ++r)
      for (int c = 0; c < N; ++c) {
        long double s = RefFixed(b[c], w, i, q, o);
        for (int k = 0; k < Kd; ++k) s += static_cast<long double>(RefFixed(x[r * Kd + k], w, i, q, o)) * RefFixed(wt[c * Kd + k], w, i, q, o);
        // The sum has 2F fractional bits: exact in long double for these sizes.
        double want = RefFixed(static_cast<double>(s), w, i, q, o);
        if (w > 24) want = RefFixed(0, w, i, q, o) + static_cast<double>(static_cast<float>(want));  // output carried as float
        want = std::max(want, 0.0);
        EXPECT_EQ(static_cast<double>(y[r * N + c]), static_cast<double>(static_cast<float>(want)))
            << FixedTypeName(t) << " " << r << "," << c;
      }
  }
}

// Float reference of a product of dequantised operands.
TEST(Int8KernelTest, GemmQMatchesTheDequantisedProduct) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 1.f);
  for (int64_t K_ : {1, 15, 16, 33, 300}) {
    const int64_t M = 5, N = 7, kp = K::QPad(K_);
    std::vector<float> a(M * K_), w(N * K_);
    for (float& v : a) v = g(rng);
    for (float& v : w) v = g(rng);
    const Int8Weights qw = QuantizeRowsInt8(w.data(), N, K_, kp);
    float amax = 0;
    for (float v : a) amax = std::max(amax, std::fabs(v));
    const float sx = amax / 127.f;
    // Symmetric int8 activations, and uint8 with a zero point (QDQ models).
    for (bool asym : {false, true}) {
      std::vector<float> y(M * N);
      std::vector<float> scale(N);
      for (int64_t j = 0; j < N; ++j) scale[j] = qw.scales[j] * sx;
      std::vector<float> deq(M * K_);
      if (!asym) {
        std::vector<int8_t> qa(M * kp);
        K::QuantizeRows<int8_t>(M, K_, kp, a.data(), sx, 0, -127, 127, qa.data());
        for (int64_t i = 0; i < M; ++i)
          for (int64_t k = 0; k < K_; ++k) deq[i * K_ + k] = qa[i * kp + k] * sx;
        K::GemmQ<int8_t>(M, N, kp, qa.data(), 0, qw.values.data(), nullptr, scale.data(), N, 1, y.data());
      } else {
        const float su = 2 * amax / 255.f;
        const int32_t zp = 128;
        for (float& s : scale) s = s / sx * su;
        std::vector<uint8_t> qa(M * kp);
        K::QuantizeRows<uint8_t>(M, K_, kp, a.data(), su, zp, 0, 255, qa.data());
        std::vector<int32_t> wsum(N, 0);
        for (int64_t j = 0; j < N; ++j)
          for (int64_t k = 0; k < kp; ++k) wsum[j] += qw.values[j * kp + k];
        for (int64_t i = 0; i < M; ++i)
          for (int64_t k = 0; k < K_; ++k) deq[i * K_ + k] = (static_cast<int>(qa[i * kp + k]) - zp) * su;
        K::GemmQ<uint8_t>(M, N, kp, qa.data(), zp, qw.values.data(), wsum.data(), scale.data(), N, 1, y.data());
      }
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double ref = 0, exact = 0, mag = 0;
          for (int64_t k = 0; k < K_; ++k) {
            ref += static_cast<double>(deq[i * K_ + k]) * qw.values[j * kp + k] * qw.scales[j];
            exact += static_cast<double>(a[i * K_ + k]) * w[j * K_ + k];
            mag += std::fabs(a[i * K_ + k] * w[j * K_ + k]);
          }
          EXPECT_NEAR(y[i * N + j], ref, 1e-5 * (1 + mag)) << K_ << " " << asym;
          // Quantisation error: half a step of each operand per term.
          EXPECT_NEAR(y[i * N + j], exact, 0.02 * (1 + mag)) << K_ << " " << asym;
        }
    }
  }
}

TEST(Int8KernelTest, ConvQMatchesTheDequantisedConvolution) {
  std::mt19937 rng(9);
  std::normal_distribution<float> g(0.f, 1.f);
  K::ConvGeometry geo;
  geo.spatial = 2;
  geo.in[0] = 6, geo.in[1] = 5, geo.out[0] = 6, geo.out[1] = 5;
  geo.kernel[0] = 3, geo.kernel[1] = 3, geo.pad_begin[0] = 1, geo.pad_begin[1] = 1;
  const int64_t batch = 2, c_in = 4, c_out = 6, group = 2, cin_g = 2, kk = cin_g * 9, kp = K::QPad(kk), P = 30;
  std::vector<float> x(batch * c_in * 30), w(c_out * kk), bias(c_out);
  for (float& v : x) v = g(rng);
  for (float& v : w) v = g(rng);
  for (float& v : bias) v = g(rng);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float sx = amax / 127.f;
  const Int8Weights qw = QuantizeRowsInt8(w.data(), c_out, kk, kp);
  std::vector<float> scale(c_out);
  for (int64_t c = 0; c < c_out; ++c) scale[c] = qw.scales[c] * sx;
  std::vector<int8_t> xq(x.size()), col(P * kp);
  K::QuantizeRows<int8_t>(1, x.size(), x.size(), x.data(), sx, 0, -127, 127, xq.data());
  std::vector<float> y(batch * c_out * P), ref(y.size());
  K::ConvQ<int8_t>(geo, batch, c_in, c_out, group, xq.data(), 0, qw.values.data(), nullptr, scale.data(), bias.data(),
                   K::Act::kRelu, 0, 0, col.data(), y.data());
  // The float kernel on the dequantised operands.
  std::vector<float> xd(x.size()), wd(w.size()), fcol(kk * P);
  for (size_t i = 0; i < x.size(); ++i) xd[i] = xq[i] * sx;
  for (int64_t c = 0; c < c_out; ++c)
    for (int64_t k = 0; k < kk; ++k) wd[c * kk + k] = qw.values[c * kp + k] * qw.scales[c];
  K::Conv(geo, batch, c_in, c_out, group, xd.data(), wd.data(), bias.data(), K::Act::kRelu, 0, 0, fcol.data(), ref.data());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], ref[i], 1e-4) << i;
}

TEST(Int8KernelTest, QuantizeRoundsHalfToEvenLikeQuantizeLinear) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-300.f, 300.f);
  for (int i = 0; i < 100000; ++i) {
    float x = u(rng);
    if (i % 3 == 0) x = std::round(x * 2) / 2;  // ties
    const float want = std::min(127.f, std::max(-128.f, std::nearbyint(x / 0.5f)));
    ASSERT_EQ(K::QuantizeOne<int8_t>(x, 0.5f, 0, -128, 127), static_cast<int8_t>(want)) << x;
    const float want_u = std::min(255.f, std::max(0.f, std::nearbyint(x / 1.5f) + 100.f));
    ASSERT_EQ(K::QuantizeOne<uint8_t>(x, 1.5f, 100, 0, 255), static_cast<uint8_t>(want_u)) << x;
  }
  EXPECT_EQ(K::QuantizeOne<int8_t>(2.5f, 1.f, 0, -128, 127), 2);
  EXPECT_EQ(K::QuantizeOne<int8_t>(-2.5f, 1.f, 0, -128, 127), -2);
  EXPECT_EQ(K::QuantizeOne<int8_t>(3.5f, 1.f, 0, -128, 127), 4);
  EXPECT_EQ(K::QuantizeOne<int8_t>(1e30f, 1.f, 0, -128, 127), 127);
  EXPECT_EQ(K::QuantizeOne<int8_t>(-INFINITY, 1.f, 0, -128, 127), -128);
  EXPECT_EQ(K::QuantizeOne<uint8_t>(NAN, 1.f, 7, 0, 255), 7);
}

TEST(PrecisionParseTest, FixedTypesAndErrors) {
  auto t = ParseFixedType("fixed<16,6>");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->width, 16);
  EXPECT_EQ(t->integer, 6);
  EXPECT_EQ(t->quant, K::kFxTrn);
  EXPECT_EQ(t->overflow, K::kFxWrap);
  t = ParseFixedType("fixed<8, 3, AP_RND_CONV, AP_SAT>");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FixedTypeName(*t), "fixed<8,3,RND_CONV,SAT>");
  EXPECT_THAT(std::string(ParseFixedType("fixed<8,9>").status().message()), HasSubstr("I = 9"));
  EXPECT_THAT(std::string(ParseFixedType("fixed<33,6>").status().message()), HasSubstr("W = 33"));
  EXPECT_THAT(std::string(ParseFixedType("fixed<16,6,RND_ZERO>").status().message()), HasSubstr("RND_ZERO"));
  EXPECT_THAT(std::string(ParseFixedType("fixed<16,6,RND,SAT_SYM>").status().message()), HasSubstr("SAT_SYM"));
  EXPECT_FALSE(ParseFixedType("fixed<16>").ok());
  EXPECT_FALSE(ParseFixedType("fixed16,6").ok());
  auto p = ParseWeightPrecision("fixed<18,8,RND,SAT>");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(WeightPrecisionName(*p), "fixed<18,8,RND,SAT>");
  EXPECT_EQ(ParseWeightPrecision("int8")->kind, WeightPrecision::kInt8);
  EXPECT_THAT(std::string(ParseWeightPrecision("int4").status().message()), HasSubstr("'int4'"));
}

}  // namespace
}  // namespace hepml::codegen
