// Unit tests of Conv, ConvTranspose, Col2Im and DeformConv. Small cases are
// computed by hand (the comment shows how); larger ones compare against
// direct loops written here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<float> Pseudo(int64_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>((seed >> 8) % 2000) / 1000.0f - 1.0f;
  }
  return v;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << "at " << i;
}

struct Conv2dParams {
  int64_t n, c, h, w, m, kh, kw, group = 1;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
};

int64_t ConvOut(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1) {
  return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1;
}

// Direct 2-D convolution (cross-correlation) with groups.
std::vector<float> NaiveConv2d(const Conv2dParams& p, const std::vector<float>& x,
                               const std::vector<float>& w, const std::vector<float>& b) {
  const int64_t oh = ConvOut(p.h, p.kh, p.sh, p.dh, p.pt, p.pb);
  const int64_t ow = ConvOut(p.w, p.kw, p.sw, p.dw, p.pl, p.pr);
  const int64_t cg = p.c / p.group, mg = p.m / p.group;
  std::vector<float> y(p.n * p.m * oh * ow);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t m = 0; m < p.m; ++m)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double s = b.empty() ? 0.0 : b[m];
          const int64_t g = m / mg;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t a = 0; a < p.kh; ++a)
              for (int64_t e = 0; e < p.kw; ++e) {
                const int64_t ih = i * p.sh - p.pt + a * p.dh, iw = j * p.sw - p.pl + e * p.dw;
                if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
                s += static_cast<double>(x[((n * p.c + g * cg + c) * p.h + ih) * p.w + iw]) *
                     w[((m * cg + c) * p.kh + a) * p.kw + e];
              }
          y[((n * p.m + m) * oh + i) * ow + j] = static_cast<float>(s);
        }
  return y;
}

std::vector<Attribute> ConvAttrs(const Conv2dParams& p) {
  return {AttrInt("group", p.group), AttrInts("strides", {p.sh, p.sw}),
          AttrInts("dilations", {p.dh, p.dw}), AttrInts("pads", {p.pt, p.pl, p.pb, p.pr})};
}

void CheckConvAgainstNaive(const Conv2dParams& p, bool bias) {
  const auto x = Pseudo(p.n * p.c * p.h * p.w, 11);
  const auto w = Pseudo(p.m * (p.c / p.group) * p.kh * p.kw, 12);
  const auto b = bias ? Pseudo(p.m, 13) : std::vector<float>{};
  std::vector<Tensor> in = {T_<float>({p.n, p.c, p.h, p.w}, x),
                            T_<float>({p.m, p.c / p.group, p.kh, p.kw}, w)};
  if (bias) in.push_back(T_<float>({p.m}, b));
  const Shape want_shape = {p.n, p.m, ConvOut(p.h, p.kh, p.sh, p.dh, p.pt, p.pb),
                            ConvOut(p.w, p.kw, p.sw, p.dw, p.pl, p.pr)};
  const std::vector<float> want = NaiveConv2d(p, x, w, b);
  auto out = RunOp("Conv", 11, in, ConvAttrs(p));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), want_shape);
  ExpectNear(Values<float>(out->at(0)), want, 1e-4f);
  // Constant weights (and bias), as in a model: the prepare step packs them
  // and small stride-1 2-D convolutions take the direct kernel.
  auto prepared = RunOpWithConstants("Conv", 11, in, {false, true, true}, ConvAttrs(p));
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->at(0).shape(), want_shape);
  ExpectNear(Values<float>(prepared->at(0)), want, 1e-4f);
}

// ---- Conv ----

TEST(ConvTest, HandComputed2x2OnesKernel) {
  // x = 0..8 as 3x3, kernel of ones 2x2: window sums 0+1+3+4=8, 12, 20, 24.
  auto out = RunOp("Conv", 11, {T_<float>({1, 1, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8}),
                                T_<float>({1, 1, 2, 2}, {1, 1, 1, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 2, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(8, 12, 20, 24));
}

TEST(ConvTest, GroupsStridesDilationsAsymmetricPadsMatchDirectLoops) {
  CheckConvAgainstNaive({.n = 2, .c = 4, .h = 7, .w = 6, .m = 6, .kh = 3, .kw = 2, .group = 2,
                         .sh = 2, .sw = 1, .dh = 1, .dw = 2, .pt = 1, .pl = 0, .pb = 2, .pr = 1},
                        true);
}

// Stride-1 2-D convolutions run as an implicit GEMM over shifted views of a
// padded copy of the input: every way the padding, dilation, kernel width and
// channel count change that layout.
TEST(ConvTest, StrideOneShiftedViewsMatchDirectLoops) {
  const Conv2dParams cases[] = {
      {.n = 2, .c = 3, .h = 9, .w = 7, .m = 5, .kh = 3, .kw = 3, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
      {.n = 1, .c = 2, .h = 6, .w = 8, .m = 4, .kh = 3, .kw = 2, .dh = 2, .dw = 3,
       .pt = 2, .pl = 0, .pb = 1, .pr = 3},
      {.n = 2, .c = 4, .h = 5, .w = 5, .m = 3, .kh = 2, .kw = 2},                      // no padding
      {.n = 1, .c = 3, .h = 6, .w = 4, .m = 2, .kh = 3, .kw = 1, .pt = 1, .pb = 1},    // dense rows
      {.n = 1, .c = 2, .h = 4, .w = 4, .m = 3, .kh = 2, .kw = 2, .pt = 3, .pl = 2, .pb = 3, .pr = 4},
      {.n = 1, .c = 4, .h = 6, .w = 6, .m = 6, .kh = 3, .kw = 3, .group = 2,
       .pt = 1, .pl = 1, .pb = 1, .pr = 1},
      // k = 64 * 9 = 576 spans two k slices of the blocked GEMM; m = 40 rows.
      {.n = 1, .c = 64, .h = 8, .w = 8, .m = 40, .kh = 3, .kw = 3, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
  };
  for (const Conv2dParams& p : cases) {
    SCOPED_TRACE(::testing::Message() << "c=" << p.c << " h=" << p.h << " w=" << p.w << " k=" << p.kh
                                    << "x" << p.kw << " group=" << p.group);
    CheckConvAgainstNaive(p, true);
    CheckConvAgainstNaive(p, false);
  }
}

// The direct kernel (constant weights, stride 1, 2-D) tiles output channels
// by 8 (AVX-512; 4 elsewhere) and positions by whole vectors: channel counts
// off those multiples, images narrower than a vector, images whose rows wrap
// mid-vector, one and several images, groups and dilations, and the
// calorimeter CNN's own layer shapes; stride 2 falls back to the GEMM paths.
TEST(ConvTest, DirectKernelShapesMatchDirectLoops) {
  const Conv2dParams cases[] = {
      {.n = 1, .c = 1, .h = 32, .w = 32, .m = 16, .kh = 3, .kw = 3, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
      {.n = 3, .c = 16, .h = 16, .w = 16, .m = 32, .kh = 3, .kw = 3, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
      {.n = 2, .c = 32, .h = 8, .w = 8, .m = 64, .kh = 3, .kw = 3, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
      {.n = 1, .c = 5, .h = 3, .w = 2, .m = 7, .kh = 3, .kw = 3, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
      {.n = 2, .c = 17, .h = 11, .w = 13, .m = 9, .kh = 3, .kw = 3, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
      {.n = 1, .c = 3, .h = 20, .w = 19, .m = 1, .kh = 5, .kw = 5, .pt = 2, .pl = 2, .pb = 2, .pr = 2},
      {.n = 2, .c = 6, .h = 12, .w = 10, .m = 10, .kh = 3, .kw = 3, .group = 2, .dh = 2, .dw = 2,
       .pt = 2, .pl = 1, .pb = 0, .pr = 3},
      {.n = 1, .c = 8, .h = 9, .w = 9, .m = 24, .kh = 2, .kw = 3},  // no padding
      {.n = 2, .c = 12, .h = 10, .w = 10, .m = 20, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
       .pt = 1, .pl = 1, .pb = 1, .pr = 1},  // stride 2
  };
  for (const Conv2dParams& p : cases) {
    SCOPED_TRACE(::testing::Message() << "n=" << p.n << " c=" << p.c << " h=" << p.h << " w=" << p.w
                                    << " m=" << p.m << " k=" << p.kh << "x" << p.kw
                                    << " group=" << p.group);
    CheckConvAgainstNaive(p, true);
    CheckConvAgainstNaive(p, false);
  }
}

// Pointwise convolutions over images of 256 positions or more (EdgeConv's
// [C, particles, k] blocks) with constant weights take the direct kernel,
// image by image, reading X in place (the last image from a padded copy),
// from batch 2 (batch 1 stays on the GEMM engine): channel counts off the
// tiles of 8, positions off whole vectors, batch 1, 2 and 3, and
// particlenet's own shapes.
TEST(ConvTest, WidePointwiseOnTheDirectKernelMatchesDirectLoops) {
  const Conv2dParams cases[] = {
      {.n = 1, .c = 16, .h = 64, .w = 8, .m = 32, .kh = 1, .kw = 1},
      {.n = 3, .c = 64, .h = 64, .w = 8, .m = 64, .kh = 1, .kw = 1},
      {.n = 3, .c = 17, .h = 5, .w = 61, .m = 9, .kh = 1, .kw = 1},
      {.n = 2, .c = 3, .h = 16, .w = 17, .m = 13, .kh = 1, .kw = 1},
      {.n = 3, .c = 1, .h = 1, .w = 300, .m = 5, .kh = 1, .kw = 1},
  };
  for (const Conv2dParams& p : cases) {
    SCOPED_TRACE(::testing::Message() << "n=" << p.n << " c=" << p.c << " h=" << p.h << " w=" << p.w
                                    << " m=" << p.m);
    CheckConvAgainstNaive(p, true);
    CheckConvAgainstNaive(p, false);
  }
}

TEST(ConvTest, DepthwiseWithMultiplier) {
  CheckConvAgainstNaive({.n = 1, .c = 3, .h = 5, .w = 5, .m = 6, .kh = 3, .kw = 3, .group = 3,
                         .pt = 1, .pl = 1, .pb = 1, .pr = 1},
                        false);
}

TEST(ConvTest, PointwiseConvolutionRunsAsGemm) {
  CheckConvAgainstNaive({.n = 2, .c = 5, .h = 4, .w = 3, .m = 7, .kh = 1, .kw = 1}, true);
}

TEST(ConvTest, PointwiseOverABatchOfParticleListsMatchesDirectLoops) {
  // 33 lists of 25 particles with 16 features -> 24 channels (the images
  // are laid side by side for one GEMM), with and without bias.
  CheckConvAgainstNaive({.n = 33, .c = 16, .h = 1, .w = 25, .m = 24, .kh = 1, .kw = 1}, true);
  CheckConvAgainstNaive({.n = 3, .c = 5, .h = 2, .w = 3, .m = 7, .kh = 1, .kw = 1}, false);
}

TEST(ConvTest, ManyBatchesRunInParallelTasks) {
  CheckConvAgainstNaive({.n = 9, .c = 2, .h = 6, .w = 6, .m = 3, .kh = 3, .kw = 3, .sh = 2,
                         .sw = 2, .pt = 1, .pl = 1, .pb = 0, .pr = 0},
                        true);
}

TEST(ConvTest, OneDimensional) {
  // x = [1..5] padded by one zero each side, kernel [1,0,-1]: x[i-1] - x[i+1].
  auto out = RunOp("Conv", 11, {T_<float>({1, 1, 5}, {1, 2, 3, 4, 5}), T_<float>({1, 1, 3}, {1, 0, -1})},
                   {AttrInts("pads", {1, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(-2, -2, -2, -2, 4));
}

TEST(ConvTest, ThreeDimensional) {
  // Ones 3x3x3 with a ones 2x2x2 kernel and bias 1: every output is 8 + 1.
  auto out = RunOp("Conv", 11,
                   {T_<float>({1, 1, 3, 3, 3}, std::vector<float>(27, 1)),
                    T_<float>({1, 1, 2, 2, 2}, std::vector<float>(8, 1)), T_<float>({1}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 2, 2, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), ::testing::Each(9.0f));
}

TEST(ConvTest, AutoPadSameUpperAndLower) {
  // x = [1,2,3], kernel [1,10]; one unit of padding: at the end (UPPER) gives
  // x[i] + 10 x[i+1] = [21,32,3]; at the start (LOWER) x[i-1] + 10 x[i] = [10,21,32].
  const auto x = T_<float>({1, 1, 1, 3}, {1, 2, 3});
  const auto w = T_<float>({1, 1, 1, 2}, {1, 10});
  auto upper = RunOp("Conv", 11, {x, w}, {AttrString("auto_pad", "SAME_UPPER")});
  ASSERT_TRUE(upper.ok()) << upper.status();
  EXPECT_THAT(Values<float>(upper->at(0)), ElementsAre(21, 32, 3));
  auto lower = RunOp("Conv", 11, {x, w}, {AttrString("auto_pad", "SAME_LOWER")});
  ASSERT_TRUE(lower.ok()) << lower.status();
  EXPECT_THAT(Values<float>(lower->at(0)), ElementsAre(10, 21, 32));
  auto valid = RunOp("Conv", 11, {x, w}, {AttrString("auto_pad", "VALID")});
  ASSERT_TRUE(valid.ok()) << valid.status();
  EXPECT_THAT(Values<float>(valid->at(0)), ElementsAre(21, 32));
}

TEST(ConvTest, HalfAndDouble) {
  auto h = RunOp("Conv", 11,
                 {T_<Float16>({1, 1, 1, 2}, {Float16(1.5f), Float16(2.0f)}),
                  T_<Float16>({1, 1, 1, 2}, {Float16(2.0f), Float16(0.5f)})});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->at(0).dtype(), DType::kFloat16);
  EXPECT_EQ(static_cast<float>(h->at(0).data<Float16>()[0]), 4.0f);  // 3 + 1
  auto d = RunOp("Conv", 11, {T_<double>({1, 1, 2}, {0.25, 0.5}), T_<double>({1, 1, 1}, {4})});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(Values<double>(d->at(0)), ElementsAre(1.0, 2.0));
}

TEST(ConvTest, EmptyBatch) {
  auto out = RunOp("Conv", 11, {T_<float>({0, 1, 3, 3}, {}), T_<float>({2, 1, 2, 2}, Pseudo(8, 1))});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({0, 2, 2, 2}));
}

TEST(ConvTest, BadInputsAreErrors) {
  const auto x = T_<float>({1, 3, 4, 4}, Pseudo(48, 1));
  const auto w = T_<float>({2, 3, 2, 2}, Pseudo(24, 2));
  auto group = RunOp("Conv", 11, {x, w}, {AttrInt("group", 2)});
  ASSERT_FALSE(group.ok());
  EXPECT_THAT(std::string(group.status().message()), HasSubstr("group"));
  EXPECT_FALSE(RunOp("Conv", 11, {x, T_<float>({2, 3, 2}, Pseudo(12, 2))}).ok());
  EXPECT_FALSE(RunOp("Conv", 11, {x, w, T_<float>({3}, {1, 2, 3})}).ok());
  EXPECT_FALSE(RunOp("Conv", 11, {x, w}, {AttrInts("kernel_shape", {3, 3})}).ok());
  EXPECT_FALSE(RunOp("Conv", 11, {x, T_<float>({2, 3, 5, 5}, Pseudo(150, 2))}).ok());
  EXPECT_FALSE(RunOp("Conv", 11, {x, w}, {AttrString("auto_pad", "SAME")}).ok());
  EXPECT_FALSE(RunOp("Conv", 11, {x, w}, {AttrInts("pads", {1, 1})}).ok());
  EXPECT_FALSE(RunOp("Conv", 11, {x, w}, {AttrInts("strides", {0, 1})}).ok());
  EXPECT_FALSE(RunOp("Conv", 11, {T_<float>({3, 4}, Pseudo(12, 1)), T_<float>({2, 3}, Pseudo(6, 1))}).ok());
  EXPECT_FALSE(RunOp("Conv", 11, {x}).ok());
}

// ---- ConvTranspose ----

struct ConvT2dParams {
  int64_t n, c, h, w, mg, kh, kw, group = 1;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0, oph = 0, opw = 0;
};

std::vector<float> NaiveConvTranspose2d(const ConvT2dParams& p, const std::vector<float>& x,
                                        const std::vector<float>& w, const std::vector<float>& b,
                                        int64_t oh, int64_t ow) {
  const int64_t m = p.mg * p.group, cg = p.c / p.group;
  std::vector<double> y(p.n * m * oh * ow, 0.0);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t oc = 0; oc < m; ++oc)
      for (int64_t i = 0; i < oh * ow; ++i) y[(n * m + oc) * oh * ow + i] = b.empty() ? 0.0 : b[oc];
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t ci = 0; ci < p.c; ++ci) {
      const int64_t g = ci / cg;
      for (int64_t mm = 0; mm < p.mg; ++mm)
        for (int64_t ih = 0; ih < p.h; ++ih)
          for (int64_t iw = 0; iw < p.w; ++iw)
            for (int64_t a = 0; a < p.kh; ++a)
              for (int64_t e = 0; e < p.kw; ++e) {
                const int64_t yh = ih * p.sh - p.pt + a * p.dh, yw = iw * p.sw - p.pl + e * p.dw;
                if (yh < 0 || yh >= oh || yw < 0 || yw >= ow) continue;
                const int64_t oc = g * p.mg + mm;
                y[((n * m + oc) * oh + yh) * ow + yw] +=
                    static_cast<double>(x[((n * p.c + ci) * p.h + ih) * p.w + iw]) *
                    w[((ci * p.mg + mm) * p.kh + a) * p.kw + e];
              }
    }
  return std::vector<float>(y.begin(), y.end());
}

TEST(ConvTransposeTest, HandComputedOnesKernel) {
  // Each input value spreads over a 2x2 block of ones: overlaps add up.
  auto out = RunOp("ConvTranspose", 11, {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}),
                                         T_<float>({1, 1, 2, 2}, {1, 1, 1, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 3, 3}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(1, 3, 2, 4, 10, 6, 3, 7, 4));
}

TEST(ConvTransposeTest, GroupsStridesDilationsPadsOutputPaddingMatchDirectLoops) {
  const ConvT2dParams p{.n = 2, .c = 4, .h = 3, .w = 4, .mg = 3, .kh = 3, .kw = 2, .group = 2,
                        .sh = 2, .sw = 3, .dh = 1, .dw = 2, .pt = 1, .pl = 0, .pb = 0, .pr = 1,
                        .oph = 1, .opw = 0};
  const auto x = Pseudo(p.n * p.c * p.h * p.w, 21);
  const auto w = Pseudo(p.c * p.mg * p.kh * p.kw, 22);
  const auto b = Pseudo(p.mg * p.group, 23);
  const int64_t oh = p.sh * (p.h - 1) + p.oph + ((p.kh - 1) * p.dh + 1) - p.pt - p.pb;
  const int64_t ow = p.sw * (p.w - 1) + p.opw + ((p.kw - 1) * p.dw + 1) - p.pl - p.pr;
  auto out = RunOp("ConvTranspose", 11,
                   {T_<float>({p.n, p.c, p.h, p.w}, x), T_<float>({p.c, p.mg, p.kh, p.kw}, w),
                    T_<float>({p.mg * p.group}, b)},
                   {AttrInt("group", p.group), AttrInts("strides", {p.sh, p.sw}),
                    AttrInts("dilations", {p.dh, p.dw}), AttrInts("pads", {p.pt, p.pl, p.pb, p.pr}),
                    AttrInts("output_padding", {p.oph, p.opw})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({p.n, p.mg * p.group, oh, ow}));
  ExpectNear(Values<float>(out->at(0)), NaiveConvTranspose2d(p, x, w, b, oh, ow), 1e-4f);
}

TEST(ConvTransposeTest, OutputShapeLargerThanTheWindowsPadsTheEnd) {
  // x = [1,2], kernel [1,1], stride 2 -> [1,1,2,2]; output_shape [5] adds a zero.
  auto out = RunOp("ConvTranspose", 11, {T_<float>({1, 1, 2}, {1, 2}), T_<float>({1, 1, 2}, {1, 1})},
                   {AttrInts("strides", {2}), AttrInts("output_shape", {5})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 5}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(1, 1, 2, 2, 0));
}

TEST(ConvTransposeTest, BadInputsAreErrors) {
  const auto x = T_<float>({1, 2, 2, 2}, Pseudo(8, 1));
  EXPECT_FALSE(RunOp("ConvTranspose", 11, {x, T_<float>({3, 1, 2, 2}, Pseudo(12, 1))}).ok());
  EXPECT_FALSE(RunOp("ConvTranspose", 11, {x, T_<float>({2, 1, 2, 2}, Pseudo(8, 1))},
                     {AttrInt("group", 3)}).ok());
  EXPECT_FALSE(RunOp("ConvTranspose", 11, {x, T_<float>({2, 1, 2, 2}, Pseudo(8, 1))},
                     {AttrInts("pads", {5, 5, 5, 5})}).ok());
  EXPECT_FALSE(RunOp("ConvTranspose", 11, {x, T_<float>({2, 1, 2, 2}, Pseudo(8, 1)), T_<float>({2}, {1, 2})}).ok());
}

// ---- Col2Im ----

TEST(Col2ImTest, NonOverlappingBlocksRebuildTheImage) {
  // 4x4 image from 2x2 blocks at stride 2; col[k][l] = 10 k + l, so image
  // point (2 bh + kh, 2 bw + kw) holds 10 (2 kh + kw) + (2 bh + bw).
  std::vector<float> col(16);
  for (int k = 0; k < 4; ++k)
    for (int l = 0; l < 4; ++l) col[k * 4 + l] = static_cast<float>(10 * k + l);
  auto out = RunOp("Col2Im", 18,
                   {T_<float>({1, 4, 4}, col), T_<int64_t>({2}, {4, 4}), T_<int64_t>({2}, {2, 2})},
                   {AttrInts("strides", {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 4, 4}));
  EXPECT_THAT(Values<float>(out->at(0)),
              ElementsAre(0, 10, 1, 11, 20, 30, 21, 31, 2, 12, 3, 13, 22, 32, 23, 33));
}

TEST(Col2ImTest, OverlappingBlocksAdd) {
  // 1-D image of 4 from blocks of 2 at stride 1 (3 blocks):
  // img = [c00, c01 + c10, c02 + c11, c12] = [1, 2+10, 3+20, 30].
  auto out = RunOp("Col2Im", 18,
                   {T_<float>({1, 2, 3}, {1, 2, 3, 10, 20, 30}), T_<int64_t>({1}, {4}),
                    T_<int64_t>({1}, {2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(1, 12, 23, 30));
}

TEST(Col2ImTest, BlockCountMismatchIsAnError) {
  auto out = RunOp("Col2Im", 18,
                   {T_<float>({1, 2, 2}, {1, 2, 3, 4}), T_<int64_t>({1}, {4}), T_<int64_t>({1}, {2})});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("blocks"));
  EXPECT_FALSE(RunOp("Col2Im", 18,
                     {T_<float>({1, 3, 3}, Pseudo(9, 1)), T_<int64_t>({1}, {4}), T_<int64_t>({1}, {2})})
                   .ok());
}

// ---- DeformConv ----

TEST(DeformConvTest, ZeroOffsetsEqualConv) {
  const auto x = T_<float>({2, 4, 5, 5}, Pseudo(200, 31));
  const auto w = T_<float>({4, 2, 3, 3}, Pseudo(72, 32));
  const auto b = T_<float>({4}, Pseudo(4, 33));
  const std::vector<Attribute> attrs = {AttrInt("group", 2), AttrInts("pads", {1, 0, 1, 1}),
                                        AttrInts("strides", {2, 1})};
  auto conv = RunOp("Conv", 11, {x, w, b}, attrs);
  ASSERT_TRUE(conv.ok()) << conv.status();
  const Shape& os = conv->at(0).shape();  // [2, 4, 3, 4]
  const int64_t offs = 2 * (2 * 2 * 9) * os[2] * os[3];  // N * og * k * nd * spatial
  auto attrs2 = attrs;
  attrs2.push_back(AttrInt("offset_group", 2));
  auto deform = RunOp("DeformConv", 19,
                      {x, w, T_<float>({2, 2 * 2 * 9, os[2], os[3]}, std::vector<float>(offs, 0)), b},
                      attrs2);
  ASSERT_TRUE(deform.ok()) << deform.status();
  EXPECT_EQ(deform->at(0).shape(), os);
  ExpectNear(Values<float>(deform->at(0)), Values<float>(conv->at(0)), 1e-5f);
}

TEST(DeformConvTest, OffsetsShiftAndInterpolateMaskScales) {
  // 1x4 image [1,2,3,4], 1x1 kernel of 1, offset (dh, dw) per output point.
  const auto x = T_<float>({1, 1, 1, 4}, {1, 2, 3, 4});
  const auto w = T_<float>({1, 1, 1, 1}, {1});
  // dw = +1: out[j] = x[j+1], zero past the end.
  auto shift = RunOp("DeformConv", 19, {x, w, T_<float>({1, 2, 1, 4}, {0, 0, 0, 0, 1, 1, 1, 1})});
  ASSERT_TRUE(shift.ok()) << shift.status();
  EXPECT_THAT(Values<float>(shift->at(0)), ElementsAre(2, 3, 4, 0));
  // dw = +0.5: the mean of neighbours; past the end the zero counts half.
  auto half = RunOp("DeformConv", 19, {x, w, T_<float>({1, 2, 1, 4}, {0, 0, 0, 0, .5, .5, .5, .5})});
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_THAT(Values<float>(half->at(0)), ElementsAre(1.5, 2.5, 3.5, 2));
  // With a mask of 0.5 (input 4; B omitted) the shifted values halve.
  auto masked = RunOp("DeformConv", 19,
                      {x, w, T_<float>({1, 2, 1, 4}, {0, 0, 0, 0, 1, 1, 1, 1}), Tensor(),
                       T_<float>({1, 1, 1, 4}, {.5, .5, .5, .5})});
  ASSERT_TRUE(masked.ok()) << masked.status();
  EXPECT_THAT(Values<float>(masked->at(0)), ElementsAre(1, 1.5, 2, 0));
}

TEST(DeformConvTest, BadOffsetShapeIsAnError) {
  auto out = RunOp("DeformConv", 19,
                   {T_<float>({1, 1, 1, 4}, {1, 2, 3, 4}), T_<float>({1, 1, 1, 1}, {1}),
                    T_<float>({1, 2, 1, 3}, std::vector<float>(6, 0))});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("offset"));
}

}  // namespace
}  // namespace hepml::ops::testing
