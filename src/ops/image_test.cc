// Unit tests of the image family. Expected values are worked out by hand
// (stated next to each case) or with a small numpy model of the ONNX
// reference semantics (onnx/reference/ops/op_resize.py, op_grid_sample.py),
// as noted.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

template <typename T>
Tensor Sc(T v) {
  Shape scalar;
  return Tensor::FromVector<T>(scalar, std::vector<T>{v});
}

void ExpectNear(const Tensor& t, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(t.size(), static_cast<int64_t>(want.size())) << t.DebugString();
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(t.data<float>()[i], want[i], tol) << "element " << i;
  }
}

Tensor Arange4x4() {
  std::vector<float> v;
  for (int i = 1; i <= 16; ++i) v.push_back(static_cast<float>(i));
  return T_<float>({1, 1, 4, 4}, v);
}

// ---- Resize -------------------------------------------------------------------

TEST(ResizeTest, AntialiasLinearAtOpset18) {
  // numpy reference model: 4x4 arange(1..16), scales 0.5, linear, antialias.
  auto out = RunOp("Resize", 18, {Arange4x4(), Tensor(), T_<float>({4}, {1, 1, 0.5f, 0.5f})},
                   {AttrString("mode", "linear"), AttrInt("antialias", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 2, 2}));
  ExpectNear(out->at(0), {4.125f, 5.875f, 11.125f, 12.875f});
}

TEST(ResizeTest, AntialiasCubicAtOpset18) {
  // numpy reference model: scales 0.6 (2x2 output), cubic A=-0.75, antialias.
  auto out = RunOp("Resize", 18, {Arange4x4(), Tensor(), T_<float>({4}, {1, 1, 0.6f, 0.6f})},
                   {AttrString("mode", "cubic"), AttrInt("antialias", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(0), {2.5180721f, 4.2858862f, 9.5893283f, 11.3571424f});
  // A wider filter (scale 0.375 -> 11 taps) on x^2, x = 1..8.
  std::vector<float> sq;
  for (int i = 1; i <= 8; ++i) sq.push_back(static_cast<float>(i * i));
  auto wide = RunOp("Resize", 18, {T_<float>({1, 8}, sq), Tensor(), T_<float>({2}, {1, 0.375f})},
                    {AttrString("mode", "cubic"), AttrInt("antialias", 1)});
  ASSERT_TRUE(wide.ok()) << wide.status();
  ExpectNear(wide->at(0), {3.2320428f, 20.0507864f, 52.046994f}, 1e-4f);
}

TEST(ResizeTest, AxesAtOpset18) {
  // Only the last two axes, given as negative axes; half_pixel linear 0.5
  // averages 2x2 blocks: (1+2+5+6)/4 = 3.5, ...
  auto out = RunOp("Resize", 18, {Arange4x4(), Tensor(), T_<float>({2}, {0.5f, 0.5f})},
                   {AttrString("mode", "linear"), AttrInts("axes", {-2, -1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 2, 2}));
  ExpectNear(out->at(0), {3.5f, 5.5f, 11.5f, 13.5f});
  // Repeated axes are an error; axes before opset 18 are ignored (scales then
  // need one value per dimension).
  EXPECT_FALSE(RunOp("Resize", 18, {Arange4x4(), Tensor(), T_<float>({2}, {0.5f, 0.5f})},
                     {AttrInts("axes", {3, 3})})
                   .ok());
  EXPECT_FALSE(RunOp("Resize", 13, {Arange4x4(), Tensor(), T_<float>({2}, {0.5f, 0.5f})},
                     {AttrInts("axes", {2, 3})})
                   .ok());
}

TEST(ResizeTest, KeepAspectRatioPolicy) {
  // not_larger: sizes (7, 8) for 4x4 -> scale min(7/4, 8/4) = 1.75 -> 7x7.
  auto nl = RunOp("Resize", 18, {Arange4x4(), Tensor(), Tensor(), T_<int64_t>({2}, {7, 8})},
                  {AttrInts("axes", {2, 3}), AttrString("keep_aspect_ratio_policy", "not_larger")});
  ASSERT_TRUE(nl.ok()) << nl.status();
  EXPECT_EQ(nl->at(0).shape(), Shape({1, 1, 7, 7}));
  // not_smaller: sizes (2, 3) -> scale 0.75 -> 3x3; numpy reference model, linear.
  auto ns = RunOp("Resize", 18, {Arange4x4(), Tensor(), Tensor(), T_<int64_t>({2}, {2, 3})},
                  {AttrInts("axes", {2, 3}), AttrString("mode", "linear"),
                   AttrString("keep_aspect_ratio_policy", "not_smaller")});
  ASSERT_TRUE(ns.ok()) << ns.status();
  EXPECT_EQ(ns->at(0).shape(), Shape({1, 1, 3, 3}));
  ExpectNear(ns->at(0), {1.8333333f, 3.1666667f, 4.5f, 7.1666667f, 8.5f, 9.8333333f, 12.5f,
                         13.8333333f, 15.1666667f});
  EXPECT_FALSE(RunOp("Resize", 18, {Arange4x4(), Tensor(), Tensor(), T_<int64_t>({2}, {2, 3})},
                     {AttrInts("axes", {2, 3}), AttrString("keep_aspect_ratio_policy", "bigger")})
                   .ok());
}

TEST(ResizeTest, HalfPixelSymmetricAtOpset19) {
  // in 5, scale 0.5 -> out 2, resized length 2.5: adjustment 0.8, offset
  // 2.5*0.2 = 0.5, x = 0.5 + (j+0.5)/0.5 - 0.5 = 1, 3 -> values 2, 4
  // (half_pixel would give 0.5, 2.5 -> 1.5, 3.5).
  std::vector<Tensor> in = {T_<float>({1, 5}, {1, 2, 3, 4, 5}), Tensor(), T_<float>({2}, {1, 0.5f})};
  auto out = RunOp("Resize", 19, in,
                   {AttrString("mode", "linear"), AttrString("coordinate_transformation_mode", "half_pixel_symmetric")});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(0), {2.f, 4.f});
  auto hp = RunOp("Resize", 19, in, {AttrString("mode", "linear")});
  ASSERT_TRUE(hp.ok()) << hp.status();
  ExpectNear(hp->at(0), {1.5f, 3.5f});
  EXPECT_FALSE(RunOp("Resize", 18, in,
                     {AttrString("mode", "linear"),
                      AttrString("coordinate_transformation_mode", "half_pixel_symmetric")})
                   .ok());
}

TEST(ResizeTest, Opset10NearestFloorsUpAndCeilsDown) {
  // Downsample [[1..4],[5..8]] by 0.6: W index ceil(1/0.6 = 1.67) = 2 -> [1, 3]
  // (the Resize-10 test of ONNX 1.5). Upsample x2: floor(j/2).
  std::vector<float> x8 = {1, 2, 3, 4, 5, 6, 7, 8};
  auto down = RunOp("Resize", 10, {T_<float>({1, 1, 2, 4}, x8), T_<float>({4}, {1, 1, 0.6f, 0.6f})});
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(down->at(0).shape(), Shape({1, 1, 1, 2}));
  ExpectNear(down->at(0), {1.f, 3.f});
  auto up = RunOp("Resize", 10, {T_<float>({1, 2}, {1, 2}), T_<float>({2}, {1, 2})});
  ASSERT_TRUE(up.ok()) << up.status();
  ExpectNear(up->at(0), {1, 1, 2, 2});
}

TEST(ResizeTest, Int64NearestIsExact) {
  // half_pixel, round_prefer_floor, x2: sources 0, 0, 1, 1. 2^53+1 is not a
  // double; a float round trip would change it.
  const int64_t big = (int64_t{1} << 53) + 1;
  auto out = RunOp("Resize", 13, {T_<int64_t>({1, 2}, {big, -5}), Tensor(), Tensor(), T_<int64_t>({2}, {1, 4})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({big, big, -5, -5}));
}

TEST(ResizeTest, Uint8LinearTruncatesAndCubicSaturates) {
  // Linear x2 of [0, 255]: 0, 63.75, 191.25, 255 -> truncated like numpy astype.
  auto lin = RunOp("Resize", 13, {T_<uint8_t>({1, 2}, {0, 255}), Tensor(), Tensor(), T_<int64_t>({2}, {1, 4})},
                   {AttrString("mode", "linear")});
  ASSERT_TRUE(lin.ok()) << lin.status();
  EXPECT_EQ(Values<uint8_t>(lin->at(0)), std::vector<uint8_t>({0, 63, 191, 255}));
  // Cubic x2 of [0,0,255,255] overshoots (numpy reference model: 0, -8.96,
  // -26.9, 57.8, 197.2, 281.9, 263.96, 255): saturated to the uint8 range.
  auto cub = RunOp("Resize", 13,
                   {T_<uint8_t>({1, 4}, {0, 0, 255, 255}), Tensor(), Tensor(), T_<int64_t>({2}, {1, 8})},
                   {AttrString("mode", "cubic")});
  ASSERT_TRUE(cub.ok()) << cub.status();
  EXPECT_EQ(Values<uint8_t>(cub->at(0)), std::vector<uint8_t>({0, 0, 0, 57, 197, 255, 255, 255}));
}

TEST(ResizeTest, TfCropAndResizeExtrapolates) {
  // W roi [-0.25, 0.75]: x = j - 0.75, so column 0 is outside (-1) and the
  // others interpolate at 0.25, 1.25, 2.25 (numpy reference model).
  auto out = RunOp("Resize", 13,
                   {Arange4x4(), T_<float>({8}, {0, 0, 0, -0.25f, 1, 1, 1, 0.75f}), Tensor(),
                    T_<int64_t>({4}, {1, 1, 4, 4})},
                   {AttrString("mode", "linear"), AttrString("coordinate_transformation_mode", "tf_crop_and_resize"),
                    AttrFloat("extrapolation_value", -1.f)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(0), {-1, 1.25f, 2.25f, 3.25f, -1, 5.25f, 6.25f, 7.25f, -1, 9.25f, 10.25f, 11.25f, -1,
                          13.25f, 14.25f, 15.25f});
  // With scales, the output length is floor(in * (roi_end - roi_start) * scale).
  auto sc = RunOp("Resize", 13,
                  {Arange4x4(), T_<float>({8}, {0, 0, 0.5f, 0, 1, 1, 1, 1}), T_<float>({4}, {1, 1, 1, 1})},
                  {AttrString("coordinate_transformation_mode", "tf_crop_and_resize")});
  ASSERT_TRUE(sc.ok()) << sc.status();
  EXPECT_EQ(sc->at(0).shape(), Shape({1, 1, 2, 4}));
  // No roi is an error in this mode.
  EXPECT_FALSE(RunOp("Resize", 13, {Arange4x4(), Tensor(), T_<float>({4}, {1, 1, 1, 1})},
                     {AttrString("coordinate_transformation_mode", "tf_crop_and_resize")})
                   .ok());
}

TEST(ResizeTest, Opset11EmptyRoiAndScalesWithTfHalfPixelForNN) {
  // ONNX suite case resize_downsample_sizes_nearest_tf_half_pixel_for_nn,
  // with its Constant nodes replaced by empty inputs (expected output from
  // the suite's output_0.pb).
  auto out = RunOp("Resize", 11,
                   {Arange4x4(), T_<float>({0}, {}), T_<float>({0}, {}), T_<int64_t>({4}, {1, 1, 3, 2})},
                   {AttrString("mode", "nearest"), AttrString("coordinate_transformation_mode", "tf_half_pixel_for_nn")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 3, 2}));
  ExpectNear(out->at(0), {6, 8, 10, 12, 14, 16});
}

TEST(ResizeTest, EmptyInputAndBadArguments) {
  auto empty = RunOp("Resize", 13, {T_<float>({0, 1, 2, 2}, {}), Tensor(), T_<float>({4}, {1, 1, 2, 2})});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({0, 1, 4, 4}));
  // Both scales and sizes.
  EXPECT_FALSE(RunOp("Resize", 13, {Arange4x4(), Tensor(), T_<float>({4}, {1, 1, 2, 2}), T_<int64_t>({4}, {1, 1, 8, 8})})
                   .ok());
  // Neither.
  EXPECT_FALSE(RunOp("Resize", 13, {Arange4x4()}).ok());
  // Wrong length, non-positive scale, unknown mode.
  EXPECT_FALSE(RunOp("Resize", 13, {Arange4x4(), Tensor(), T_<float>({2}, {2, 2})}).ok());
  EXPECT_FALSE(RunOp("Resize", 13, {Arange4x4(), Tensor(), T_<float>({4}, {1, 1, -2, 2})}).ok());
  EXPECT_FALSE(RunOp("Resize", 13, {Arange4x4(), Tensor(), T_<float>({4}, {1, 1, 2, 2})},
                     {AttrString("mode", "bilinear")})
                   .ok());
  // Linear interpolation of bool is an error (nearest is allowed).
  EXPECT_FALSE(RunOp("Resize", 13, {T_<bool>({1, 2}, {true, false}), Tensor(), T_<float>({2}, {1, 2})},
                     {AttrString("mode", "linear")})
                   .ok());
  auto b = RunOp("Resize", 13, {T_<bool>({1, 2}, {true, false}), Tensor(), T_<float>({2}, {1, 2})});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(Values<bool>(b->at(0)), std::vector<bool>({true, true, false, false}));
}

TEST(UpsampleTest, Opset7ScalesAttributeLinear) {
  // asymmetric x2 of [[1,2],[3,4]]: coordinates 0, .5, 1, 1.5 (clamped).
  auto out = RunOp("Upsample", 7, {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4})},
                   {AttrFloats("scales", {1, 1, 2, 2}), AttrString("mode", "linear")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 4, 4}));
  ExpectNear(out->at(0), {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4});
}

TEST(UpsampleTest, Opset9ScalesInputAndErrors) {
  auto out = RunOp("Upsample", 9, {T_<int32_t>({2}, {7, 8}), T_<float>({1}, {3})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({7, 7, 7, 8, 8, 8}));
  // Downsampling is not Upsample's job; a scale per dimension is needed.
  EXPECT_FALSE(RunOp("Upsample", 9, {T_<float>({2}, {7, 8}), T_<float>({1}, {0.5f})}).ok());
  EXPECT_FALSE(RunOp("Upsample", 9, {T_<float>({2}, {7, 8}), T_<float>({2}, {2, 2})}).ok());
  EXPECT_FALSE(RunOp("Upsample", 7, {T_<float>({2}, {7, 8})}).ok());
}

// ---- GridSample -----------------------------------------------------------------

// X = arange(8) as [1,1,2,2,2]; grid points (x, y, z): (-1,-1,-1), (1,1,1),
// (0,0,0), (0.5,-0.25,0.75).
std::vector<Tensor> GridSample3dInputs() {
  return {T_<float>({1, 1, 2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}),
          T_<float>({1, 1, 2, 2, 3}, {-1, -1, -1, 1, 1, 1, 0, 0, 0, 0.5f, -0.25f, 0.75f})};
}

TEST(GridSampleTest, Volumetric3dAtOpset20) {
  // numpy reference model (op_grid_sample.py semantics).
  struct Case {
    const char* mode;
    const char* padding;
    int align;
    std::vector<float> want;
  };
  const Case cases[] = {
      {"linear", "zeros", 0, {0, 0.875f, 3.5f, 4.125f}},
      {"linear", "border", 0, {0, 7, 3.5f, 5.5f}},
      {"nearest", "zeros", 0, {0, 0, 7, 5}},
      {"nearest", "border", 0, {0, 7, 7, 5}},
      {"cubic", "zeros", 0, {-0.1640625f, 1.0390625f, 5.8609619f, 5.2970581f}},
      {"cubic", "reflection", 0, {-1.3125f, 8.3125f, 3.5f, 6.015625f}},
      {"cubic", "reflection", 1, {0, 7, 3.5f, 5.3046875f}},
  };
  for (const Case& c : cases) {
    auto out = RunOp("GridSample", 20, GridSample3dInputs(),
                     {AttrString("mode", c.mode), AttrString("padding_mode", c.padding),
                      AttrInt("align_corners", c.align)});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 1, 2, 2}));
    SCOPED_TRACE(std::string(c.mode) + " " + c.padding + " " + std::to_string(c.align));
    ExpectNear(out->at(0), c.want, 1e-5f);
  }
}

TEST(GridSampleTest, CubicBorderInterpolatesTheBorderExtendedImage) {
  // X row [2, 0, 4, 8] (W = 4, H = 1), align_corners = 0. Grid x = 1.125 maps to
  // 3.75 and -1.125 to -0.75, both outside [-0.5, 3.5]. Cubic keeps the
  // coordinate and clamps its taps (PyTorch / ONNX Runtime): at 3.75 the taps
  // 2..5 read [4, 8, 8, 8] with Keys (A = -0.75) weights for t = 0.75,
  // [-0.03515625, 0.26171875, 0.87890625, -0.10546875], so 8.140625; at -0.75
  // the taps -2..1 read [2, 2, 2, 0] with the weights for t = 0.25 (reversed),
  // so 2 * 1.03515625 = 2.0703125. Clamping the coordinate first would give 8, 2.
  for (int opset : {16, 20}) {
    auto out = RunOp("GridSample", opset,
                     {T_<float>({1, 1, 1, 4}, {2, 0, 4, 8}), T_<float>({1, 1, 2, 2}, {1.125f, 0, -1.125f, 0})},
                     {AttrString("mode", opset == 16 ? "bicubic" : "cubic"), AttrString("padding_mode", "border"),
                      AttrInt("align_corners", 0)});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 1, 2}));
    ExpectNear(out->at(0), {8.140625f, 2.0703125f}, 1e-6f);
  }
}

TEST(GridSampleTest, OneDimensionalAtOpset20) {
  // X = [1,2,3,4] as [1,1,4]; grid x = -1.2, -0.5, 0.1, 0.9, 1.5 (numpy model).
  auto run = [](const char* mode, const char* padding) {
    return RunOp("GridSample", 20,
                 {T_<float>({1, 1, 4}, {1, 2, 3, 4}), T_<float>({1, 5, 1}, {-1.2f, -0.5f, 0.1f, 0.9f, 1.5f})},
                 {AttrString("mode", mode), AttrString("padding_mode", padding)});
  };
  auto lin = run("linear", "zeros");
  ASSERT_TRUE(lin.ok()) << lin.status();
  ExpectNear(lin->at(0), {0.1f, 1.5f, 2.7f, 2.8f, 0});
  auto nn = run("nearest", "zeros");
  ASSERT_TRUE(nn.ok()) << nn.status();
  ExpectNear(nn->at(0), {0, 1, 3, 4, 0});
  auto cub = run("cubic", "reflection");
  ASSERT_TRUE(cub.ok()) << cub.status();
  ExpectNear(cub->at(0), {0.9325001f, 1.40625f, 2.658f, 4.1575f, 3.59375f});
}

TEST(GridSampleTest, Opset16Is2dOnly) {
  // The centre of [[1,2],[3,4]] averages all four pixels.
  auto out = RunOp("GridSample", 16, {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<float>({1, 1, 1, 2}, {0, 0})},
                   {AttrString("mode", "bilinear")});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(0), {2.5f});
  EXPECT_FALSE(RunOp("GridSample", 16, GridSample3dInputs()).ok());
}

TEST(GridSampleTest, SingletonAxisReflectionDoesNotDivideByZero) {
  // H = 1 with align_corners: the reflection range is empty; taps fold to 0.
  // x = (0+1)/2*(3-1) = 1 -> value 2.
  auto out = RunOp("GridSample", 16,
                   {T_<float>({1, 1, 1, 3}, {1, 2, 3}), T_<float>({1, 1, 1, 2}, {0.f, 0.5f})},
                   {AttrString("padding_mode", "reflection"), AttrInt("align_corners", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(0), {2.f});
}

TEST(GridSampleTest, BadShapesAndNonFiniteGrid) {
  // grid's last dim must equal the spatial rank; batch must match.
  EXPECT_FALSE(RunOp("GridSample", 16, {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<float>({1, 1, 1, 3}, {0, 0, 0})}).ok());
  EXPECT_FALSE(RunOp("GridSample", 16, {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<float>({2, 1, 1, 2}, {0, 0, 0, 0})}).ok());
  EXPECT_FALSE(RunOp("GridSample", 16, {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<float>({1, 1, 1, 2}, {0, 0})},
                     {AttrString("padding_mode", "wrap")})
                   .ok());
  // NaN / huge coordinates: zeros padding reads nothing.
  auto out = RunOp("GridSample", 16,
                   {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<float>({1, 1, 2, 2}, {NAN, 0, 1e30f, -1e30f})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(0), {0, 0});
}

// ---- RoiAlign --------------------------------------------------------------------

TEST(RoiAlignTest, AvgAndMaxModesAndCoordinateModes) {
  // X = [[1,2],[3,4]], roi (0,0)-(1,1), one sample per bin.
  // output_half_pixel: sample at (0.5, 0.5), weights 1/4: avg 2.5, max of
  // weighted corners 0.25*4 = 1. half_pixel: sample at (0, 0): 1.
  std::vector<Tensor> in = {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<float>({1, 4}, {0, 0, 1, 1}),
                            T_<int64_t>({1}, {0})};
  auto avg = RunOp("RoiAlign", 16, in,
                   {AttrInt("sampling_ratio", 1), AttrString("coordinate_transformation_mode", "output_half_pixel")});
  ASSERT_TRUE(avg.ok()) << avg.status();
  ExpectNear(avg->at(0), {2.5f});
  auto mx = RunOp("RoiAlign", 16, in,
                  {AttrInt("sampling_ratio", 1), AttrString("mode", "max"),
                   AttrString("coordinate_transformation_mode", "output_half_pixel")});
  ASSERT_TRUE(mx.ok()) << mx.status();
  ExpectNear(mx->at(0), {1.f});
  auto hp = RunOp("RoiAlign", 16, in, {AttrInt("sampling_ratio", 1)});
  ASSERT_TRUE(hp.ok()) << hp.status();
  ExpectNear(hp->at(0), {1.f});
  // Opset 10 has no coordinate_transformation_mode: output_half_pixel.
  auto v10 = RunOp("RoiAlign", 10, in, {AttrInt("sampling_ratio", 1)});
  ASSERT_TRUE(v10.ok()) << v10.status();
  ExpectNear(v10->at(0), {2.5f});
}

TEST(RoiAlignTest, DoubleTypeAndEmptyRois) {
  auto out = RunOp("RoiAlign", 16,
                   {T_<double>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<double>({1, 4}, {0, 0, 1, 1}), T_<int64_t>({1}, {0})},
                   {AttrInt("sampling_ratio", 1), AttrString("coordinate_transformation_mode", "output_half_pixel"),
                    AttrInt("output_height", 2), AttrInt("output_width", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 2, 1}));
  // Bins of height 0.5: samples at y = 0.25 and 0.75, x = 0.5:
  // 1.5 + 0.25*2 = 2.0 and 1.5 + 0.75*2 = 3.0.
  EXPECT_NEAR(out->at(0).data<double>()[0], 2.0, 1e-12);
  EXPECT_NEAR(out->at(0).data<double>()[1], 3.0, 1e-12);
  auto empty = RunOp("RoiAlign", 16,
                     {T_<float>({1, 3, 2, 2}, std::vector<float>(12, 1.f)), T_<float>({0, 4}, {}), T_<int64_t>({0}, {})});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({0, 3, 1, 1}));
}

TEST(RoiAlignTest, BadInputsAreErrors) {
  Tensor x = T_<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  EXPECT_FALSE(RunOp("RoiAlign", 16, {x, T_<float>({1, 4}, {0, 0, 1, 1}), T_<int64_t>({1}, {1})}).ok());
  EXPECT_FALSE(RunOp("RoiAlign", 16, {x, T_<float>({1, 4}, {0, 0, 1, 1}), T_<int64_t>({1}, {-1})}).ok());
  EXPECT_FALSE(RunOp("RoiAlign", 16, {x, T_<float>({1, 3}, {0, 0, 1}), T_<int64_t>({1}, {0})}).ok());
  EXPECT_FALSE(RunOp("RoiAlign", 16, {x, T_<float>({1, 4}, {0, 0, 1, 1}), T_<int64_t>({2}, {0, 0})}).ok());
  EXPECT_FALSE(RunOp("RoiAlign", 16, {T_<float>({2, 2}, {1, 2, 3, 4}), T_<float>({1, 4}, {0, 0, 1, 1}),
                                      T_<int64_t>({1}, {0})})
                   .ok());
  EXPECT_FALSE(RunOp("RoiAlign", 16, {x, T_<float>({1, 4}, {0, 0, 1, 1}), T_<int64_t>({1}, {0})},
                     {AttrString("mode", "sum")})
                   .ok());
}

// ---- AffineGrid -------------------------------------------------------------------

TEST(AffineGridTest, Identity2d) {
  // align_corners=0: W (3) -> -2/3, 0, 2/3; H (2) -> -1/2, 1/2.
  Tensor theta = T_<float>({1, 2, 3}, {1, 0, 0, 0, 1, 0});
  auto out = RunOp("AffineGrid", 20, {theta, T_<int64_t>({4}, {1, 1, 2, 3})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 2, 3, 2}));
  const float t = 2.f / 3.f;
  ExpectNear(out->at(0), {-t, -0.5f, 0, -0.5f, t, -0.5f, -t, 0.5f, 0, 0.5f, t, 0.5f});
  // align_corners=1: W -> -1, 0, 1; H -> -1, 1.
  auto al = RunOp("AffineGrid", 20, {theta, T_<int64_t>({4}, {1, 1, 2, 3})}, {AttrInt("align_corners", 1)});
  ASSERT_TRUE(al.ok()) << al.status();
  ExpectNear(al->at(0), {-1, -1, 0, -1, 1, -1, -1, 1, 0, 1, 1, 1});
}

TEST(AffineGrid3dTest, GeneralTransform) {
  // x' = 2x + 1, y' = z, z' = x + y over D=2, H=1, W=2 with align_corners:
  // (x, y, z) in {-1, 1} x {-1} x {-1, 1} (H of length 1 -> -1).
  Tensor theta = T_<float>({1, 3, 4}, {2, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0});
  auto out = RunOp("AffineGrid", 20, {theta, T_<int64_t>({5}, {1, 1, 2, 1, 2})}, {AttrInt("align_corners", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 2, 1, 2, 3}));
  ExpectNear(out->at(0), {-1, -1, -2, 3, -1, 0, -1, 1, -2, 3, 1, 0});
}

TEST(AffineGridTest, BadShapesAreErrors) {
  EXPECT_FALSE(RunOp("AffineGrid", 20, {T_<float>({1, 2, 3}, {1, 0, 0, 0, 1, 0}), T_<int64_t>({3}, {1, 1, 2})}).ok());
  EXPECT_FALSE(RunOp("AffineGrid", 20, {T_<float>({1, 2, 3}, {1, 0, 0, 0, 1, 0}), T_<int64_t>({4}, {2, 1, 2, 2})}).ok());
  EXPECT_FALSE(RunOp("AffineGrid", 20, {T_<float>({1, 2, 3}, {1, 0, 0, 0, 1, 0}), T_<int64_t>({5}, {1, 1, 2, 2, 2})}).ok());
  EXPECT_FALSE(RunOp("AffineGrid", 19, {T_<float>({1, 2, 3}, {1, 0, 0, 0, 1, 0}), T_<int64_t>({4}, {1, 1, 2, 2})}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing
