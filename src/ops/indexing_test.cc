// Unit tests of TopK, NonZero, Unique, OneHot, Compress and NonMaxSuppression
// beyond the ONNX backend suite: every TopK version, ties and NaN, dtypes
// other than float32, scalars and empty tensors, bad input. Expected values
// are worked out by hand from the ONNX definitions; the Unique cases were
// checked with numpy.unique(..., return_index, return_inverse, return_counts).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_registry.h"
#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

// A rank-0 tensor. (Built from a named empty Shape: Tensor::Scalar's
// temporary trips a GCC -Wmaybe-uninitialized false positive in abseil.)
template <typename T>
Tensor Scalar(T value) {
  const Shape scalar_shape;
  return Tensor::FromVector<T>(scalar_shape, std::vector<T>{value});
}

bool Contains(const absl::Status& st, const std::string& text) {
  return std::string(st.message()).find(text) != std::string::npos;
}

// ---- TopK ------------------------------------------------------------------------

TEST(TopKTest, Opset1KAttributeAndTiesTakeTheLowerIndex) {
  Tensor x = T_<float>({2, 3}, {3, 1, 2, 0, 5, 5});
  auto out = RunOp("TopK", 1, {x}, {AttrInt("k", 2)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({3, 2, 5, 5}));
  EXPECT_EQ(Values<int64_t>(out->at(1)), std::vector<int64_t>({0, 2, 1, 2}));
  // k is required at opset 1.
  EXPECT_FALSE(RunOp("TopK", 1, {x}, {}, 2).ok());
}

TEST(TopKTest, Opset10KInputFloat64) {
  Tensor x = T_<double>({4}, {0.5, 2.5, -1, 2.5});
  auto out = RunOp("TopK", 10, {x, T_<int64_t>({1}, {3})}, {}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({2.5, 2.5, 0.5}));
  EXPECT_EQ(Values<int64_t>(out->at(1)), std::vector<int64_t>({1, 3, 0}));
  // Integer inputs arrive at opset 11.
  EXPECT_FALSE(RunOp("TopK", 10, {T_<int32_t>({2}, {1, 2}), T_<int64_t>({1}, {1})}, {}, 2).ok());
}

TEST(TopKTest, Opset11SmallestAlongAxis0Int32) {
  // Columns [3,1,2] and [1,4,1]; the two smallest of each with index order for ties.
  Tensor x = T_<int32_t>({3, 2}, {3, 1, 1, 4, 2, 1});
  auto out = RunOp("TopK", 11, {x, T_<int64_t>({1}, {2})},
                   {AttrInt("axis", 0), AttrInt("largest", 0)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({1, 1, 2, 1}));
  EXPECT_EQ(Values<int64_t>(out->at(1)), std::vector<int64_t>({1, 0, 2, 2}));
}

TEST(TopKTest, Opset21Uint8AndK1) {
  Tensor x = T_<uint8_t>({2, 3}, {7, 9, 9, 200, 3, 200});
  auto out = RunOp("TopK", 21, {x, T_<int64_t>({1}, {1})}, {}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({9, 200}));
  EXPECT_EQ(Values<int64_t>(out->at(1)), std::vector<int64_t>({1, 0}));
}

TEST(TopKTest, NaNSortsAboveEveryNumber) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = T_<float>({3}, {1, nan, 3});
  auto big = RunOp("TopK", 11, {x, T_<int64_t>({1}, {2})}, {}, 2);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_TRUE(std::isnan(big->at(0).data<float>()[0]));
  EXPECT_EQ(big->at(0).data<float>()[1], 3);
  EXPECT_EQ(Values<int64_t>(big->at(1)), std::vector<int64_t>({1, 2}));
  auto small = RunOp("TopK", 11, {x, T_<int64_t>({1}, {2})}, {AttrInt("largest", 0)}, 2);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(Values<float>(small->at(0)), std::vector<float>({1, 3}));
  EXPECT_EQ(Values<int64_t>(small->at(1)), std::vector<int64_t>({0, 2}));
}

// k nearest neighbours of a point cloud: a few of many per line, the
// largest and the smallest, along the last and a middle axis, with ties and
// NaNs, against a full stable sort of each line (k up to 16 keeps a sorted
// list while scanning; larger k selects and sorts).
TEST(TopKTest, FewOfManyMatchesAFullSort) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t outer = 3, n = 40, inner = 2;
  std::vector<float> v(outer * n * inner);
  uint32_t seed = 7;
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>((seed >> 9) % 23) - 11.0f;  // many ties
  }
  v[5] = nan;
  v[40] = nan;
  for (int64_t k : {1, 2, 9, 16, 17, 39}) {
    for (int largest : {1, 0}) {
      SCOPED_TRACE(::testing::Message() << "k=" << k << " largest=" << largest);
      auto out = RunOp("TopK", 11, {T_<float>({outer, n, inner}, v), T_<int64_t>({1}, {k})},
                       {AttrInt("axis", 1), AttrInt("largest", largest)}, 2);
      ASSERT_TRUE(out.ok()) << out.status();
      ASSERT_EQ(out->at(1).shape(), Shape({outer, k, inner}));
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          std::vector<int64_t> order(n);
          for (int64_t i = 0; i < n; ++i) order[i] = i;
          auto key = [&](int64_t i) { return v[(o * n + i) * inner + j]; };
          // NaN above every number; equal values keep index order.
          std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
            const float x = key(a), y = key(b);
            if (largest) return std::isnan(x) ? !std::isnan(y) : (!std::isnan(y) && x > y);
            return std::isnan(y) ? !std::isnan(x) : (!std::isnan(x) && x < y);
          });
          for (int64_t i = 0; i < k; ++i) {
            const int64_t at = (o * k + i) * inner + j;
            ASSERT_EQ(out->at(1).data<int64_t>()[at], order[i]) << "line " << o << "," << j << " rank " << i;
            const float got = out->at(0).data<float>()[at];
            if (std::isnan(key(order[i]))) {
              EXPECT_TRUE(std::isnan(got));
            } else {
              EXPECT_EQ(got, key(order[i]));
            }
          }
        }
    }
  }
}

// The last axis of float32 rows, as ParticleNet's kNN asks (rows of n
// distances, k a few): odd row counts and lengths, many ties, +-0, +-inf
// and NaNs of both signs, k from 2 to n, largest and smallest, sorted = 0
// (the sorted order is a valid answer), against a stable sort of each row.
TEST(TopKTest, LastAxisFloatRowsMatchAStableSort) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {3, 17, 64}) {
    const int64_t rows = 7;
    std::vector<float> v(rows * n);
    uint32_t seed = 11 + static_cast<uint32_t>(n);
    for (auto& x : v) {
      seed = seed * 1664525u + 1013904223u;
      x = static_cast<float>((seed >> 9) % 9) - 4.0f;  // many ties
    }
    v[1] = -0.0f;
    v[2] = 0.0f;
    v[n] = nan;
    v[n + 2] = -nan;
    v[2 * n + 1] = inf;
    v[2 * n + 2] = -inf;
    v[3 * n] = -inf;
    v[4 * n + 1] = 1e-42f;   // a denormal
    v[4 * n + 2] = -1e-42f;
    std::vector<int64_t> ks = {2, 3, n};
    if (n > 9) ks.insert(ks.end(), {9, 16});
    for (int64_t k : ks) {
      for (int largest : {1, 0}) {
        for (int sorted : {1, 0}) {
          SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k << " largest=" << largest);
          auto out = RunOp("TopK", 11, {T_<float>({rows, n}, v), T_<int64_t>({1}, {k})},
                           {AttrInt("largest", largest), AttrInt("sorted", sorted)}, 2);
          ASSERT_TRUE(out.ok()) << out.status();
          ASSERT_EQ(out->at(0).shape(), Shape({rows, k}));
          for (int64_t r = 0; r < rows; ++r) {
            const float* row = v.data() + r * n;
            std::vector<int64_t> order(n);
            for (int64_t i = 0; i < n; ++i) order[i] = i;
            std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
              const float x = row[a], y = row[b];
              if (largest) return std::isnan(x) ? !std::isnan(y) : (!std::isnan(y) && x > y);
              return std::isnan(y) ? !std::isnan(x) : (!std::isnan(x) && x < y);
            });
            for (int64_t i = 0; i < k; ++i) {
              ASSERT_EQ(out->at(1).data<int64_t>()[r * k + i], order[i]) << "row " << r << " rank " << i;
              const float got = out->at(0).data<float>()[r * k + i];
              const float want = row[order[i]];
              if (std::isnan(want)) {
                EXPECT_TRUE(std::isnan(got));
              } else {
                EXPECT_EQ(got, want);
                EXPECT_EQ(std::signbit(got), std::signbit(want));  // the element itself, -0 kept
              }
            }
          }
        }
      }
    }
  }
}

TEST(TopKTest, KZeroAndBadKAxisRank) {
  Tensor x = T_<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto zero = RunOp("TopK", 11, {x, T_<int64_t>({1}, {0})}, {}, 2);
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->at(0).shape(), Shape({2, 0}));
  EXPECT_EQ(zero->at(1).shape(), Shape({2, 0}));
  auto big = RunOp("TopK", 11, {x, T_<int64_t>({1}, {4})}, {}, 2);
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(Contains(big.status(), "k = 4 must be in [0, 3]")) << big.status();
  EXPECT_FALSE(RunOp("TopK", 11, {x, T_<int64_t>({1}, {-1})}, {}, 2).ok());
  EXPECT_FALSE(RunOp("TopK", 11, {x, T_<int64_t>({1}, {1})}, {AttrInt("axis", 2)}, 2).ok());
  EXPECT_FALSE(RunOp("TopK", 11, {Scalar<float>(1), T_<int64_t>({1}, {1})}, {}, 2).ok());
  EXPECT_FALSE(RunOp("TopK", 11, {x, T_<int64_t>({2}, {1, 1})}, {}, 2).ok());
}

// ---- NonZero -----------------------------------------------------------------------

TEST(NonZeroTest, Int32MatrixInRowMajorOrder) {
  auto out = RunOp("NonZero", 13, {T_<int32_t>({2, 3}, {0, 4, 0, 5, 0, 6})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 3}));
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({0, 1, 1, 1, 0, 2}));
}

TEST(NonZeroTest, ScalarsEmptyBoolAndString) {
  auto one = RunOp("NonZero", 9, {Scalar<float>(2.5f)});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->at(0).shape(), Shape({1, 1}));
  EXPECT_EQ(Values<int64_t>(one->at(0)), std::vector<int64_t>({0}));
  auto zero = RunOp("NonZero", 13, {Scalar<float>(0.0f)});
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->at(0).shape(), Shape({1, 0}));
  auto empty = RunOp("NonZero", 13, {T_<double>({0, 3}, {})});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({2, 0}));
  auto b = RunOp("NonZero", 13, {T_<bool>({3}, {false, true, true})});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(Values<int64_t>(b->at(0)), std::vector<int64_t>({1, 2}));
  auto s = RunOp("NonZero", 13, {T_<std::string>({2}, {"", "x"})});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(Values<int64_t>(s->at(0)), std::vector<int64_t>({1}));
}

// ---- Unique ------------------------------------------------------------------------

TEST(UniqueTest, SortedAndUnsortedWithoutAxisAllOutputs) {
  Tensor x = T_<int64_t>({6}, {2, 1, 1, 3, 4, 3});
  auto s = RunOp("Unique", 11, {x}, {}, 4);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(Values<int64_t>(s->at(0)), std::vector<int64_t>({1, 2, 3, 4}));
  EXPECT_EQ(Values<int64_t>(s->at(1)), std::vector<int64_t>({1, 0, 3, 4}));
  EXPECT_EQ(Values<int64_t>(s->at(2)), std::vector<int64_t>({1, 0, 0, 2, 3, 2}));
  EXPECT_EQ(Values<int64_t>(s->at(3)), std::vector<int64_t>({2, 1, 2, 1}));
  auto u = RunOp("Unique", 11, {x}, {AttrInt("sorted", 0)}, 4);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(Values<int64_t>(u->at(0)), std::vector<int64_t>({2, 1, 3, 4}));
  EXPECT_EQ(Values<int64_t>(u->at(1)), std::vector<int64_t>({0, 1, 3, 4}));
  EXPECT_EQ(Values<int64_t>(u->at(2)), std::vector<int64_t>({0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(Values<int64_t>(u->at(3)), std::vector<int64_t>({1, 2, 2, 1}));
}

TEST(UniqueTest, ColumnsAlongAxis1Int32) {
  // Columns (1,1,2), (0,0,3), (1,1,2): two unique columns, sorted (0,0,3) first.
  Tensor x = T_<int32_t>({3, 3}, {1, 0, 1, 1, 0, 1, 2, 3, 2});
  auto out = RunOp("Unique", 11, {x}, {AttrInt("axis", 1)}, 4);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({3, 2}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({0, 1, 0, 1, 3, 2}));
  EXPECT_EQ(Values<int64_t>(out->at(1)), std::vector<int64_t>({1, 0}));
  EXPECT_EQ(Values<int64_t>(out->at(2)), std::vector<int64_t>({1, 0, 1}));
  EXPECT_EQ(Values<int64_t>(out->at(3)), std::vector<int64_t>({1, 2}));
}

TEST(UniqueTest, StringsNaNAndEmpty) {
  auto s = RunOp("Unique", 11, {T_<std::string>({3}, {"b", "a", "b"})}, {}, 4);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(Values<std::string>(s->at(0)), std::vector<std::string>({"a", "b"}));
  EXPECT_EQ(Values<int64_t>(s->at(3)), std::vector<int64_t>({1, 2}));
  // NaNs form one group placed last.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto n = RunOp("Unique", 11, {T_<double>({3}, {nan, 1, nan})}, {}, 4);
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(n->at(0).size(), 2);
  EXPECT_EQ(n->at(0).data<double>()[0], 1);
  EXPECT_TRUE(std::isnan(n->at(0).data<double>()[1]));
  EXPECT_EQ(Values<int64_t>(n->at(3)), std::vector<int64_t>({1, 2}));
  auto e = RunOp("Unique", 11, {T_<float>({0}, {})}, {}, 4);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->at(0).shape(), Shape({0}));
  EXPECT_EQ(e->at(2).shape(), Shape({0}));
  EXPECT_FALSE(RunOp("Unique", 11, {T_<float>({2}, {1, 2})}, {AttrInt("axis", 1)}, 4).ok());
}

// ---- OneHot ------------------------------------------------------------------------

TEST(OneHotTest, NegativeAndOutOfRangeIndicesInnermostAxis) {
  // depth 3: index -1 -> 2, index 5 -> all off.
  auto out = RunOp("OneHot", 11,
                   {T_<int64_t>({3}, {0, -1, 5}), Scalar<float>(3), T_<float>({2}, {0, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({3, 3}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(OneHotTest, Axis0Int32ValuesOpset9) {
  // out[idx[j], j] = on: indices [1, 2] depth 3 -> [[-1,-1],[7,-1],[-1,7]].
  auto out = RunOp("OneHot", 9,
                   {T_<int32_t>({2}, {1, 2}), T_<int64_t>({1}, {3}), T_<int32_t>({2}, {-1, 7})},
                   {AttrInt("axis", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({3, 2}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-1, -1, 7, -1, -1, 7}));
}

TEST(OneHotTest, FloatIndicesTruncateAndStringValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto out = RunOp("OneHot", 11,
                   {T_<float>({3}, {1.7f, nan, -0.5f}), Scalar<double>(2.0),
                    T_<std::string>({2}, {"off", "on"})});
  ASSERT_TRUE(out.ok()) << out.status();
  // 1.7 -> 1; NaN -> all off; -0.5 -> 0.
  EXPECT_EQ(Values<std::string>(out->at(0)),
            std::vector<std::string>({"off", "on", "off", "off", "on", "off"}));
}

TEST(OneHotTest, BadDepthValuesAxis) {
  Tensor idx = T_<int64_t>({2}, {0, 1});
  EXPECT_FALSE(RunOp("OneHot", 11, {idx, Scalar<int64_t>(-2), T_<float>({2}, {0, 1})}).ok());
  EXPECT_FALSE(RunOp("OneHot", 11, {idx, T_<int64_t>({2}, {2, 2}), T_<float>({2}, {0, 1})}).ok());
  auto vals = RunOp("OneHot", 11, {idx, Scalar<int64_t>(2), T_<float>({3}, {0, 1, 2})});
  ASSERT_FALSE(vals.ok());
  EXPECT_TRUE(Contains(vals.status(), "exactly two")) << vals.status();
  EXPECT_FALSE(RunOp("OneHot", 11, {idx, Scalar<int64_t>(2), T_<float>({2}, {0, 1})},
                     {AttrInt("axis", 2)})
                   .ok());
}

// ---- Compress ----------------------------------------------------------------------

TEST(CompressTest, FlattenedAndShortCondition) {
  Tensor x = T_<int16_t>({2, 2}, {1, 2, 3, 4});
  auto flat = RunOp("Compress", 11, {x, T_<bool>({3}, {false, true, true})});
  ASSERT_TRUE(flat.ok()) << flat.status();
  EXPECT_EQ(flat->at(0).shape(), Shape({2}));
  EXPECT_EQ(Values<int16_t>(flat->at(0)), std::vector<int16_t>({2, 3}));
  // Condition shorter than the axis: missing entries count as false.
  auto col = RunOp("Compress", 9, {x, T_<bool>({1}, {true})}, {AttrInt("axis", -1)});
  ASSERT_TRUE(col.ok()) << col.status();
  EXPECT_EQ(col->at(0).shape(), Shape({2, 1}));
  EXPECT_EQ(Values<int16_t>(col->at(0)), std::vector<int16_t>({1, 3}));
}

TEST(CompressTest, StringsAllFalseAndErrors) {
  auto s = RunOp("Compress", 11, {T_<std::string>({3}, {"a", "b", "c"}), T_<bool>({3}, {true, false, true})},
                 {AttrInt("axis", 0)});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(Values<std::string>(s->at(0)), std::vector<std::string>({"a", "c"}));
  Tensor x = T_<float>({2, 2}, {1, 2, 3, 4});
  auto none = RunOp("Compress", 11, {x, T_<bool>({2}, {false, false})}, {AttrInt("axis", 0)});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->at(0).shape(), Shape({0, 2}));
  auto beyond = RunOp("Compress", 11, {x, T_<bool>({3}, {false, false, true})}, {AttrInt("axis", 0)});
  ASSERT_FALSE(beyond.ok());
  EXPECT_TRUE(Contains(beyond.status(), "position 2")) << beyond.status();
  EXPECT_FALSE(RunOp("Compress", 11, {x, T_<int32_t>({2}, {1, 0})}).ok());
  EXPECT_FALSE(RunOp("Compress", 11, {x, T_<bool>({2}, {true, true})}, {AttrInt("axis", 2)}).ok());
}

// ---- NonMaxSuppression -------------------------------------------------------------

// Three unit boxes: box 1 overlaps box 0 (IoU 0.9 / 1.1 = 0.82), box 2 is apart.
Tensor CornerBoxes() {
  return T_<float>({1, 3, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, 10, 1, 11});
}

TEST(NonMaxSuppressionTest, SuppressesOverlapsAndAppliesScoreThreshold) {
  Tensor scores = T_<float>({1, 1, 3}, {0.9f, 0.8f, 0.7f});
  auto out = RunOp("NonMaxSuppression", 11,
                   {CornerBoxes(), scores, T_<int64_t>({1}, {3}), T_<float>({1}, {0.5f})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 3}));
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({0, 0, 0, 0, 0, 2}));
  auto thr = RunOp("NonMaxSuppression", 10,
                   {CornerBoxes(), scores, T_<int64_t>({1}, {3}), T_<float>({1}, {0.5f}),
                    T_<float>({1}, {0.75f})});
  ASSERT_TRUE(thr.ok()) << thr.status();
  EXPECT_EQ(Values<int64_t>(thr->at(0)), std::vector<int64_t>({0, 0, 0}));
}

TEST(NonMaxSuppressionTest, CenterBoxesTwoClassesAndTies) {
  // The same boxes as [x_center, y_center, width, height].
  Tensor boxes = T_<float>({1, 3, 4}, {0.5f, 0.5f, 1, 1, 0.6f, 0.5f, 1, 1, 10.5f, 0.5f, 1, 1});
  // Class 1 ties boxes 1 and 2: the lower index goes first.
  Tensor scores = T_<float>({1, 2, 3}, {0.9f, 0.8f, 0.7f, 0.1f, 0.6f, 0.6f});
  auto out = RunOp("NonMaxSuppression", 21,
                   {boxes, scores, T_<int64_t>({1}, {2}), T_<float>({1}, {0.5f})},
                   {AttrInt("center_point_box", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)),
            std::vector<int64_t>({0, 0, 0, 0, 0, 2, 0, 1, 1, 0, 1, 2}));
}

TEST(NonMaxSuppressionTest, DefaultsAndErrors) {
  Tensor scores = T_<float>({1, 1, 3}, {0.9f, 0.8f, 0.7f});
  // max_output_boxes_per_class defaults to 0: nothing selected.
  auto none = RunOp("NonMaxSuppression", 11, {CornerBoxes(), scores});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->at(0).shape(), Shape({0, 3}));
  EXPECT_FALSE(RunOp("NonMaxSuppression", 11,
                     {T_<float>({1, 3, 3}, std::vector<float>(9, 0)), scores})
                   .ok());
  EXPECT_FALSE(RunOp("NonMaxSuppression", 11,
                     {CornerBoxes(), T_<float>({1, 1, 2}, {1, 1})})
                   .ok());
  EXPECT_FALSE(RunOp("NonMaxSuppression", 11,
                     {CornerBoxes(), scores, T_<int64_t>({1}, {3}), T_<float>({1}, {1.5f})})
                   .ok());
  EXPECT_FALSE(RunOp("NonMaxSuppression", 11, {CornerBoxes(), scores}, {AttrInt("center_point_box", 2)})
                   .ok());
}

// ---- Shape/type functions ---------------------------------------------------------

// Runs the table's infer function of `op` at `opset` on the given input types.
std::vector<TypeInfo> Infer(const std::string& op, int opset, std::vector<TypeInfo> inputs,
                            std::vector<const Tensor*> constants, std::vector<Attribute> attrs,
                            size_t num_outputs) {
  const OpDef* def = OpRegistry::Global().Find("", op, opset);
  EXPECT_NE(def, nullptr) << op;
  EXPECT_NE(def->infer, nullptr) << op;
  Node node;
  node.op_type = op;
  node.opset = opset;
  node.attributes = std::move(attrs);
  constants.resize(inputs.size(), nullptr);
  InferContext ctx{node, opset, std::move(inputs), std::move(constants)};
  std::vector<TypeInfo> outputs(num_outputs);
  EXPECT_TRUE(def->infer(ctx, outputs).ok()) << op;
  return outputs;
}

TEST(IndexingInferTest, ShapesFromConstantsAndAttributes) {
  const TypeInfo x = TypeInfo::Tensor(DType::kFloat32, {Dim{-1, "batch"}, Dim{10, ""}});
  const Tensor k = T_<int64_t>({1}, {3});
  auto topk = Infer("TopK", 11, {x, TypeInfo::Tensor(DType::kInt64)}, {nullptr, &k}, {}, 2);
  EXPECT_EQ(topk[0].ToString(), "float32[batch,3]");
  EXPECT_EQ(topk[1].ToString(), "int64[batch,3]");
  auto topk1 = Infer("TopK", 1, {x}, {}, {AttrInt("k", 4), AttrInt("axis", 1)}, 2);
  EXPECT_EQ(topk1[0].ToString(), "float32[batch,4]");

  const Tensor depth = Scalar<int64_t>(5);
  auto onehot = Infer("OneHot", 11,
                      {TypeInfo::Tensor(DType::kInt64, {Dim{7, ""}}), TypeInfo::Tensor(DType::kInt64),
                       TypeInfo::Tensor(DType::kInt32)},
                      {nullptr, &depth, nullptr}, {AttrInt("axis", 0)}, 1);
  EXPECT_EQ(onehot[0].ToString(), "int32[5,7]");

  auto gather = Infer("Gather", 13,
                      {TypeInfo::Tensor(DType::kFloat16, {Dim{100, ""}, Dim{16, ""}}),
                       TypeInfo::Tensor(DType::kInt64, {Dim{-1, "edges"}})},
                      {}, {}, 1);
  EXPECT_EQ(gather[0].ToString(), "float16[edges,16]");

  auto gnd = Infer("GatherND", 13,
                   {TypeInfo::Tensor(DType::kInt32, {Dim{2, ""}, Dim{3, ""}, Dim{4, ""}}),
                    TypeInfo::Tensor(DType::kInt64, {Dim{2, ""}, Dim{5, ""}, Dim{1, ""}})},
                   {}, {AttrInt("batch_dims", 1)}, 1);
  EXPECT_EQ(gnd[0].ToString(), "int32[2,5,4]");

  auto nz = Infer("NonZero", 13, {x}, {}, {}, 1);
  EXPECT_EQ(nz[0].dtype, DType::kInt64);
  ASSERT_EQ(nz[0].shape.size(), 2u);
  EXPECT_EQ(nz[0].shape[0].value, 2);
}

}  // namespace
}  // namespace hepml::ops::testing
