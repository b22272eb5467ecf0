// Unit tests of the pooling operators. Every expected value is worked out
// by hand in the comment beside it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;

// ---- MaxPool ----

TEST(MaxPoolTest, IndicesInBothStorageOrders) {
  // Plane 0 = [[1,5,3],[4,2,6],[7,8,0]], plane 1 = plane 0 + 10; 2x2 windows:
  // maxima 5,6,8,8 at flat (row-major) 1,5,7,7; plane 1 adds 9 to each index.
  std::vector<float> x = {1, 5, 3, 4, 2, 6, 7, 8, 0};
  for (int i = 0; i < 9; ++i) x.push_back(x[i] + 10);
  auto out = RunOp("MaxPool", 12, {T_<float>({1, 2, 3, 3}, x)}, {AttrInts("kernel_shape", {2, 2})}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 2, 2, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(5, 6, 8, 8, 15, 16, 18, 18));
  EXPECT_EQ(out->at(1).dtype(), DType::kInt64);
  EXPECT_THAT(Values<int64_t>(out->at(1)), ElementsAre(1, 5, 7, 7, 10, 14, 16, 16));
  // Column-major: index = h + w * H: (0,1) -> 3, (1,2) -> 7, (2,1) -> 5.
  auto col = RunOp("MaxPool", 12, {T_<float>({1, 2, 3, 3}, x)},
                   {AttrInts("kernel_shape", {2, 2}), AttrInt("storage_order", 1)}, 2);
  ASSERT_TRUE(col.ok()) << col.status();
  EXPECT_THAT(Values<int64_t>(col->at(1)), ElementsAre(3, 7, 5, 5, 12, 16, 14, 14));
}

TEST(MaxPoolTest, TwoByTwoStrideTwoDropsTheOddEdge) {
  // A 5x5 plane v(h, w) = (3h + 7w) mod 11 with 2x2 windows at stride 2:
  // 2x2 outputs from rows/columns 0-3; row and column 4 are dropped.
  //   rows 0-1: v = [[0,7,3,10,6],[3,10,6,2,9]] -> max(0,7,3,10)=10, max(3,10,6,2)=10
  //   rows 2-3: v = [[6,2,9,5,1],[9,5,1,8,4]]  -> max(6,2,9,5)=9,  max(9,5,1,8)=9
  // The second plane is the first negated: windows' maxima are the minima negated:
  //   -min(0,7,3,10)=0, -min(3,10,6,2)=-2, -min(6,2,9,5)=-2, -min(9,5,1,8)=-1.
  std::vector<float> x(50);
  for (int h = 0; h < 5; ++h)
    for (int w = 0; w < 5; ++w) {
      x[h * 5 + w] = static_cast<float>((3 * h + 7 * w) % 11);
      x[25 + h * 5 + w] = -x[h * 5 + w];
    }
  auto out = RunOp("MaxPool", 12, {T_<float>({1, 2, 5, 5}, x)},
                   {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 2, 2, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(10, 10, 9, 9, 0, -2, -2, -1));
  // NaN: a window that starts with NaN gives NaN; a later NaN is passed over.
  const float nan = std::nanf("");
  auto n = RunOp("MaxPool", 12, {T_<float>({1, 1, 2, 4}, {nan, 1, 2, nan, 3, 4, 5, 6})},
                 {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
  ASSERT_TRUE(n.ok()) << n.status();
  const auto v = Values<float>(n->at(0));
  ASSERT_EQ(v.size(), 2u);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], 6.0f);
}

// Planes wide enough for whole vectors of windows (fp32 takes a vectorised
// path: 35 outputs per row = two AVX-512 vectors and 3 more), with NaNs
// first, second and last in windows, against the rule written out here.
TEST(MaxPoolTest, TwoByTwoStrideTwoWidePlanesMatchTheRule) {
  const int64_t planes = 3, h = 7, w = 71, oh = 3, ow = 35;
  std::vector<float> x(planes * h * w);
  uint32_t seed = 3;
  for (auto& v : x) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<float>((seed >> 8) % 1000) / 100.0f - 5.0f;
  }
  const float nan = std::nanf("");
  x[0] = nan;            // first of a window: stays
  x[w + 3] = nan;        // later in a window: passed over
  x[h * w + 2 * 20 + 1] = nan;
  x[2 * h * w + 3 * w + 69] = nan;
  auto out = RunOp("MaxPool", 12, {T_<float>({1, planes, h, w}, x)},
                   {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).shape(), Shape({1, planes, oh, ow}));
  const std::vector<float> got = Values<float>(out->at(0));
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const float* r0 = x.data() + (p * h + 2 * i) * w + 2 * j;
        float best = r0[0];
        for (float v : {r0[1], r0[w], r0[w + 1]}) best = v > best ? v : best;
        const float g = got[(p * oh + i) * ow + j];
        if (std::isnan(best)) {
          EXPECT_TRUE(std::isnan(g)) << p << "," << i << "," << j;
        } else {
          EXPECT_EQ(g, best) << p << "," << i << "," << j;
        }
      }
}

TEST(MaxPoolTest, PaddingIsIgnoredForNegativeIntegers) {
  // int8 [-5,-7,-3], window 2 with one pad each side: [-5,-5,-3,-3] (pad is not 0).
  auto out = RunOp("MaxPool", 12, {T_<int8_t>({1, 1, 1, 3}, {-5, -7, -3})},
                   {AttrInts("kernel_shape", {1, 2}), AttrInts("pads", {0, 1, 0, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<int8_t>(out->at(0)), ElementsAre(-5, -5, -3, -3));
  auto u8 = RunOp("MaxPool", 12, {T_<uint8_t>({1, 1, 4}, {1, 200, 3, 255})},
                  {AttrInts("kernel_shape", {2}), AttrInts("strides", {2})});
  ASSERT_TRUE(u8.ok()) << u8.status();
  EXPECT_THAT(Values<uint8_t>(u8->at(0)), ElementsAre(200, 255));
}

TEST(MaxPoolTest, CeilModeAndDilations) {
  const auto x = T_<float>({1, 1, 5}, {1, 2, 3, 4, 5});
  // windows of 2 at stride 2: floor -> [1,2],[3,4]; ceil adds the partial [5].
  auto floor_mode = RunOp("MaxPool", 12, {x}, {AttrInts("kernel_shape", {2}), AttrInts("strides", {2})});
  ASSERT_TRUE(floor_mode.ok()) << floor_mode.status();
  EXPECT_THAT(Values<float>(floor_mode->at(0)), ElementsAre(2, 4));
  auto ceil_mode = RunOp("MaxPool", 12, {x},
                         {AttrInts("kernel_shape", {2}), AttrInts("strides", {2}), AttrInt("ceil_mode", 1)});
  ASSERT_TRUE(ceil_mode.ok()) << ceil_mode.status();
  EXPECT_THAT(Values<float>(ceil_mode->at(0)), ElementsAre(2, 4, 5));
  // dilation 2: windows {0,2},{1,3},{2,4} -> [3,4,5].
  auto dilated = RunOp("MaxPool", 12, {x}, {AttrInts("kernel_shape", {2}), AttrInts("dilations", {2})});
  ASSERT_TRUE(dilated.ok()) << dilated.status();
  EXPECT_THAT(Values<float>(dilated->at(0)), ElementsAre(3, 4, 5));
}

TEST(MaxPoolTest, HalfPrecisionAndOldOpset) {
  auto out = RunOp("MaxPool", 1, {T_<Float16>({1, 1, 2}, {Float16(-1.5f), Float16(0.5f)})},
                   {AttrInts("kernel_shape", {2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(static_cast<float>(out->at(0).data<Float16>()[0]), 0.5f);
}

TEST(MaxPoolTest, BadAttributesAreErrors) {
  const auto x = T_<float>({1, 1, 3, 3}, std::vector<float>(9, 1));
  auto no_kernel = RunOp("MaxPool", 12, {x});
  ASSERT_FALSE(no_kernel.ok());
  EXPECT_THAT(std::string(no_kernel.status().message()), HasSubstr("kernel_shape"));
  EXPECT_FALSE(RunOp("MaxPool", 12, {T_<float>({3, 3}, std::vector<float>(9, 1))},
                     {AttrInts("kernel_shape", {2})}).ok());
  EXPECT_FALSE(RunOp("MaxPool", 12, {x}, {AttrInts("kernel_shape", {2, 2}), AttrInts("pads", {1, 1})}).ok());
  EXPECT_FALSE(RunOp("MaxPool", 12, {x}, {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {0, 1})}).ok());
  EXPECT_FALSE(RunOp("MaxPool", 12, {x}, {AttrInts("kernel_shape", {4, 4})}).ok());
  EXPECT_FALSE(RunOp("MaxPool", 12, {x}, {AttrInts("kernel_shape", {2, 2}), AttrInt("storage_order", 2)}).ok());
  EXPECT_FALSE(RunOp("MaxPool", 12, {T_<int32_t>({1, 1, 2}, {1, 2})}, {AttrInts("kernel_shape", {2})}).ok());
}

// ---- AveragePool ----

TEST(AveragePoolTest, CountIncludePad) {
  // [1,2,3], window 2, one pad each side.
  // excluded: [1, 1.5, 2.5, 3]; included: [(0+1)/2, 1.5, 2.5, (3+0)/2].
  const auto x = T_<float>({1, 1, 1, 3}, {1, 2, 3});
  const std::vector<Attribute> base = {AttrInts("kernel_shape", {1, 2}), AttrInts("pads", {0, 1, 0, 1})};
  auto exclude = RunOp("AveragePool", 11, {x}, base);
  ASSERT_TRUE(exclude.ok()) << exclude.status();
  EXPECT_THAT(Values<float>(exclude->at(0)), ElementsAre(1, 1.5, 2.5, 3));
  auto with = base;
  with.push_back(AttrInt("count_include_pad", 1));
  auto include = RunOp("AveragePool", 11, {x}, with);
  ASSERT_TRUE(include.ok()) << include.status();
  EXPECT_THAT(Values<float>(include->at(0)), ElementsAre(0.5, 1.5, 2.5, 1.5));
}

TEST(AveragePoolTest, DilationsAtOpset19AndCeilMode) {
  const auto x = T_<float>({1, 1, 5}, {1, 2, 3, 4, 5});
  // dilation 2: {1,3},{2,4},{3,5} -> [2,3,4].
  auto dilated = RunOp("AveragePool", 19, {x}, {AttrInts("kernel_shape", {2}), AttrInts("dilations", {2})});
  ASSERT_TRUE(dilated.ok()) << dilated.status();
  EXPECT_THAT(Values<float>(dilated->at(0)), ElementsAre(2, 3, 4));
  // ceil mode: the partial last window holds only 5 -> [1.5, 3.5, 5].
  auto ceil_mode = RunOp("AveragePool", 19, {x},
                         {AttrInts("kernel_shape", {2}), AttrInts("strides", {2}), AttrInt("ceil_mode", 1)});
  ASSERT_TRUE(ceil_mode.ok()) << ceil_mode.status();
  EXPECT_THAT(Values<float>(ceil_mode->at(0)), ElementsAre(1.5, 3.5, 5));
}

TEST(AveragePoolTest, SameLowerPadsTheStart) {
  // [1,2,3] window 2 SAME_LOWER: pad at the start, not counted -> [1, 1.5, 2.5].
  auto out = RunOp("AveragePool", 11, {T_<double>({1, 1, 3}, {1, 2, 3})},
                   {AttrInts("kernel_shape", {2}), AttrString("auto_pad", "SAME_LOWER")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<double>(out->at(0)), ElementsAre(1, 1.5, 2.5));
}

TEST(AveragePoolTest, EmptyBatch) {
  auto out = RunOp("AveragePool", 11, {T_<float>({0, 3, 4, 4}, {})}, {AttrInts("kernel_shape", {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({0, 3, 3, 3}));
}

// ---- LpPool ----

TEST(LpPoolTest, PNormsOfWindows) {
  // p = 2: sqrt(3^2 + 4^2) = 5; p = 1: 3 + 4 = 7.
  const auto x = T_<float>({1, 1, 2}, {3, -4});
  auto p2 = RunOp("LpPool", 11, {x}, {AttrInts("kernel_shape", {2})});
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_THAT(Values<float>(p2->at(0)), ElementsAre(FloatNear(5, 1e-6)));
  auto p1 = RunOp("LpPool", 11, {x}, {AttrInts("kernel_shape", {2}), AttrInt("p", 1)});
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_THAT(Values<float>(p1->at(0)), ElementsAre(FloatNear(7, 1e-6)));
  // Opset 1 spells p as a float.
  auto v1 = RunOp("LpPool", 1, {x}, {AttrInts("kernel_shape", {2}), AttrFloat("p", 1.0f)});
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_THAT(Values<float>(v1->at(0)), ElementsAre(FloatNear(7, 1e-6)));
}

TEST(LpPoolTest, CeilModeAtOpset18) {
  // [3,4,12], window 2 stride 2, ceil: [5, 12].
  auto out = RunOp("LpPool", 18, {T_<float>({1, 1, 3}, {3, 4, 12})},
                   {AttrInts("kernel_shape", {2}), AttrInts("strides", {2}), AttrInt("ceil_mode", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(FloatNear(5, 1e-6), FloatNear(12, 1e-6)));
}

// ---- Global pools ----

TEST(GlobalPoolTest, AverageMaxAndLp) {
  // channel 0 = [1,2,3,4], channel 1 = [-1,-2,-3,-4].
  const auto x = T_<float>({1, 2, 2, 2}, {1, 2, 3, 4, -1, -2, -3, -4});
  auto avg = RunOp("GlobalAveragePool", 1, {x});
  ASSERT_TRUE(avg.ok()) << avg.status();
  EXPECT_EQ(avg->at(0).shape(), Shape({1, 2, 1, 1}));
  EXPECT_THAT(Values<float>(avg->at(0)), ElementsAre(2.5, -2.5));
  auto mx = RunOp("GlobalMaxPool", 1, {x});
  ASSERT_TRUE(mx.ok()) << mx.status();
  EXPECT_THAT(Values<float>(mx->at(0)), ElementsAre(4, -1));
  // sqrt(1 + 4 + 9 + 16) = sqrt(30) for both channels.
  auto lp = RunOp("GlobalLpPool", 2, {x});
  ASSERT_TRUE(lp.ok()) << lp.status();
  EXPECT_THAT(Values<float>(lp->at(0)),
              ElementsAre(FloatNear(std::sqrt(30.0f), 1e-5), FloatNear(std::sqrt(30.0f), 1e-5)));
  EXPECT_FALSE(RunOp("GlobalAveragePool", 1, {T_<float>({3}, {1, 2, 3})}).ok());
}

// ---- MaxUnpool ----

TEST(MaxUnpoolTest, ScattersToIndices) {
  // Values 5..8 to flat indices 5,7,13,15 of the 4x4 default output.
  auto out = RunOp("MaxUnpool", 11,
                   {T_<float>({1, 1, 2, 2}, {5, 6, 7, 8}), T_<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15})},
                   {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 4, 4}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(0, 0, 0, 0, 0, 5, 0, 6, 0, 0, 0, 0, 0, 7, 0, 8));
}

TEST(MaxUnpoolTest, OutputShapeKeepsCoordinates) {
  // Same indices placed at the same (h, w) of a 1x1x4x5 output.
  auto out = RunOp("MaxUnpool", 11,
                   {T_<float>({1, 1, 2, 2}, {5, 6, 7, 8}), T_<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15}),
                    T_<int64_t>({4}, {1, 1, 4, 5})},
                   {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 4, 5}));
  EXPECT_THAT(Values<float>(out->at(0)),
              ElementsAre(0, 0, 0, 0, 0, 0, 5, 0, 6, 0, 0, 0, 0, 0, 0, 0, 7, 0, 8, 0));
}

TEST(MaxUnpoolTest, OutOfRangeIndexIsAnError) {
  auto out = RunOp("MaxUnpool", 11,
                   {T_<float>({1, 1, 1, 1}, {5}), T_<int64_t>({1, 1, 1, 1}, {4})},
                   {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("out of range"));
  EXPECT_FALSE(RunOp("MaxUnpool", 11,
                     {T_<float>({1, 1, 1, 1}, {5}), T_<int64_t>({1, 1, 1, 1}, {-1})},
                     {AttrInts("kernel_shape", {2, 2})}).ok());
  EXPECT_FALSE(RunOp("MaxUnpool", 11, {T_<float>({1, 1, 1, 1}, {5}), T_<int64_t>({1, 1, 1, 1}, {0})}).ok());
}

// ---- MaxRoiPool ----

TEST(MaxRoiPoolTest, PoolsRegions) {
  // X = 0..15 as 4x4. ROI (0,0)-(3,3) in 2x2 bins of 2: maxima 5, 7, 13, 15.
  // ROI (1,1)-(2,2) in 2x2 bins of 1: the points 5, 6, 9, 10.
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i);
  auto out = RunOp("MaxRoiPool", 1,
                   {T_<float>({1, 1, 4, 4}, x), T_<float>({2, 5}, {0, 0, 0, 3, 3, 0, 1, 1, 2, 2})},
                   {AttrInts("pooled_shape", {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 1, 2, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(5, 7, 13, 15, 5, 6, 9, 10));
}

TEST(MaxRoiPoolTest, BadBatchIndexIsAnError) {
  auto out = RunOp("MaxRoiPool", 1,
                   {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<float>({1, 5}, {1, 0, 0, 1, 1})},
                   {AttrInts("pooled_shape", {1, 1})});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("batch index"));
  EXPECT_FALSE(RunOp("MaxRoiPool", 1,
                     {T_<float>({1, 1, 2, 2}, {1, 2, 3, 4}), T_<float>({1, 4}, {0, 0, 1, 1})},
                     {AttrInts("pooled_shape", {1, 1})}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing
