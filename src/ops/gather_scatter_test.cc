// Unit tests of Gather, GatherElements, GatherND, Scatter, ScatterElements and
// ScatterND beyond the ONNX backend suite: opset 18+ reductions, dtypes other
// than float32, negative and out-of-range indices, bad shapes, empty tensors.
// Expected values are worked out by hand from the ONNX definitions (numpy
// indexing: out = data[idx] / np.take / np.take_along_axis / np.add.at)
// unless a test says otherwise.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "oneapi/tbb/task_arena.h"
#include "ops/op_test_util.h"
#include "runtime/executor.h"

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

// ---- Gather ----------------------------------------------------------------------

TEST(GatherTest, Axis0CopiesWholeRowsWithNegativeIndices) {
  // np.take(data, [2, -3, -1], axis=0) on a 3x4 float64 matrix.
  Tensor data = T_<double>({3, 4}, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23});
  auto out = RunOp("Gather", 13, {data, T_<int64_t>({3}, {2, -3, -1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({3, 4}));
  EXPECT_EQ(Values<double>(out->at(0)),
            std::vector<double>({20, 21, 22, 23, 0, 1, 2, 3, 20, 21, 22, 23}));
}

TEST(GatherTest, Axis1With2DInt32Indices) {
  // data[:, [[1, 0], [2, 2]]] -> shape [2, 2, 2].
  Tensor data = T_<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto out = RunOp("Gather", 11, {data, T_<int32_t>({2, 2}, {1, 0, 2, 2})}, {AttrInt("axis", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2, 2}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({2, 1, 3, 3, 5, 4, 6, 6}));
}

TEST(GatherTest, ScalarIndexDropsTheAxis) {
  Tensor data = T_<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto out = RunOp("Gather", 13, {data, Scalar<int64_t>(-1)}, {AttrInt("axis", -1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({3, 6}));
}

TEST(GatherTest, Opset1EmbeddingLookup) {
  // The pytorch Embedding export: Gather-1 of rows of a weight table.
  Tensor table = T_<float>({4, 2}, {0, 0, 1, 1, 2, 2, 3, 3});
  auto out = RunOp("Gather", 1, {table, T_<int64_t>({2, 2}, {3, 1, 0, 3})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2, 2}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({3, 3, 1, 1, 0, 0, 3, 3}));
}

TEST(GatherTest, StringsAndFloat16) {
  Tensor words = T_<std::string>({3}, {"a", "bb", "ccc"});
  auto out = RunOp("Gather", 13, {words, T_<int64_t>({2}, {2, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"ccc", "a"}));

  Tensor half = T_<Float16>({3}, {Float16(1.5f), Float16(-2.0f), Float16(4.0f)});
  auto h = RunOp("Gather", 13, {half, T_<int64_t>({2}, {1, 1})});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->at(0).dtype(), DType::kFloat16);
  EXPECT_EQ(static_cast<float>(h->at(0).data<Float16>()[0]), -2.0f);
  EXPECT_EQ(static_cast<float>(h->at(0).data<Float16>()[1]), -2.0f);
}

TEST(GatherTest, EmptyIndicesGiveAnEmptyOutput) {
  Tensor data = T_<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  auto out = RunOp("Gather", 13, {data, T_<int64_t>({0}, {})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({0, 2}));
}

TEST(GatherTest, OutOfRangeIndexNamesValuePositionAndRange) {
  Tensor data = T_<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  auto out = RunOp("Gather", 13, {data, T_<int64_t>({2, 2}, {0, 1, 2, 3})});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(Contains(out.status(), "index 3 at position [1,1]")) << out.status();
  EXPECT_TRUE(Contains(out.status(), "[-3, 2]")) << out.status();

  auto neg = RunOp("Gather", 13, {data, T_<int32_t>({1}, {-4})});
  ASSERT_FALSE(neg.ok());
  EXPECT_TRUE(Contains(neg.status(), "index -4")) << neg.status();

  // No valid index into an empty axis.
  auto empty = RunOp("Gather", 13, {T_<float>({0, 2}, {}), T_<int64_t>({1}, {0})});
  ASSERT_FALSE(empty.ok());
}

TEST(GatherTest, BadAxisScalarDataAndIndexTypeAreErrors) {
  Tensor data = T_<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  EXPECT_FALSE(RunOp("Gather", 13, {data, T_<int64_t>({1}, {0})}, {AttrInt("axis", 2)}).ok());
  EXPECT_FALSE(RunOp("Gather", 13, {Scalar<float>(1), T_<int64_t>({1}, {0})}).ok());
  EXPECT_FALSE(RunOp("Gather", 13, {data, T_<float>({1}, {0})}).ok());
}

// ---- GatherElements ------------------------------------------------------------

TEST(GatherElementsTest, Axis1WithNegativeIndicesInt64Data) {
  // np.take_along_axis(data, [[0, -1], [1, 0]], axis=1).
  Tensor data = T_<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto out = RunOp("GatherElements", 13, {data, T_<int64_t>({2, 2}, {0, -1, 1, 0})},
                   {AttrInt("axis", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({1, 3, 5, 4}));
}

TEST(GatherElementsTest, IndicesSmallerThanDataOnOtherAxes) {
  // indices [2, 1] over data [3, 3], axis 0: out[i][0] = data[idx[i][0]][0].
  Tensor data = T_<float>({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto out = RunOp("GatherElements", 13, {data, T_<int32_t>({2, 1}, {2, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({7, 4}));
  // Axis 1 with a shorter row count: out[0][j] = data[0][idx[0][j]].
  auto row = RunOp("GatherElements", 13, {data, T_<int64_t>({1, 4}, {2, 2, 0, 1})},
                   {AttrInt("axis", 1)});
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(Values<float>(row->at(0)), std::vector<float>({3, 3, 1, 2}));
}

TEST(GatherElementsTest, BadShapesAndIndicesAreErrors) {
  Tensor data = T_<float>({2, 2}, {1, 2, 3, 4});
  // Rank mismatch.
  EXPECT_FALSE(RunOp("GatherElements", 13, {data, T_<int64_t>({2}, {0, 1})}).ok());
  // Larger than data on a non-axis dimension.
  auto big = RunOp("GatherElements", 13, {data, T_<int64_t>({1, 3}, {0, 0, 0})});
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(Contains(big.status(), "exceeds data shape")) << big.status();
  // Out of range.
  auto oor = RunOp("GatherElements", 13, {data, T_<int64_t>({2, 2}, {0, 1, 1, -3})});
  ASSERT_FALSE(oor.ok());
  EXPECT_TRUE(Contains(oor.status(), "index -3 at position [1,1]")) << oor.status();
}

// ---- GatherND ------------------------------------------------------------------

TEST(GatherNDTest, BatchDimsOneInt32Data) {
  // ONNX example 5 shape-wise: data [2,2,2], indices [2,1], batch_dims=1
  // -> out[b] = data[b, idx[b]].
  Tensor data = T_<int32_t>({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  auto out = RunOp("GatherND", 13, {data, T_<int64_t>({2, 1}, {1, 0})}, {AttrInt("batch_dims", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({2, 3, 4, 5}));
}

TEST(GatherNDTest, FullIndexTuplesWithNegatives) {
  // data[[1,-1]], data[[0,0]] of a 2x3 matrix.
  Tensor data = T_<double>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto out = RunOp("GatherND", 12, {data, T_<int64_t>({2, 2}, {1, -1, 0, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2}));
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({6, 1}));
}

TEST(GatherNDTest, ErrorsOnBadIndicesAndShapes) {
  Tensor data = T_<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto oor = RunOp("GatherND", 13, {data, T_<int64_t>({1, 2}, {1, 3})});
  ASSERT_FALSE(oor.ok());
  EXPECT_TRUE(Contains(oor.status(), "index 3 at position [0,1]")) << oor.status();
  EXPECT_TRUE(Contains(oor.status(), "data axis 1")) << oor.status();
  // Last dim of indices longer than data rank.
  EXPECT_FALSE(RunOp("GatherND", 13, {data, T_<int64_t>({1, 3}, {0, 0, 0})}).ok());
  // Batch dims must match.
  EXPECT_FALSE(RunOp("GatherND", 13, {data, T_<int64_t>({3, 1}, {0, 0, 0})},
                     {AttrInt("batch_dims", 1)})
                   .ok());
  // batch_dims too large.
  EXPECT_FALSE(RunOp("GatherND", 13, {data, T_<int64_t>({2, 1}, {0, 0})},
                     {AttrInt("batch_dims", 2)})
                   .ok());
}

// ---- ScatterElements / Scatter -----------------------------------------------------

TEST(ScatterElementsTest, Opset18MaxAndMin) {
  // data [1,5,3], indices [0,0,2,1], updates [4,0,7,6], axis 0:
  // max -> [max(1,4,0)=4, max(5,6)=6, max(3,7)=7]; min -> [0, 5, 3].
  Tensor data = T_<float>({3}, {1, 5, 3});
  Tensor idx = T_<int64_t>({4}, {0, 0, 2, 1});
  Tensor upd = T_<float>({4}, {4, 0, 7, 6});
  auto mx = RunOp("ScatterElements", 18, {data, idx, upd}, {AttrString("reduction", "max")});
  ASSERT_TRUE(mx.ok()) << mx.status();
  EXPECT_EQ(Values<float>(mx->at(0)), std::vector<float>({4, 6, 7}));
  auto mn = RunOp("ScatterElements", 18, {data, idx, upd}, {AttrString("reduction", "min")});
  ASSERT_TRUE(mn.ok()) << mn.status();
  EXPECT_EQ(Values<float>(mn->at(0)), std::vector<float>({0, 5, 3}));
  // The input is left unchanged.
  EXPECT_EQ(Values<float>(data), std::vector<float>({1, 5, 3}));
}

TEST(ScatterElementsTest, MaxIsRejectedBeforeOpset18AndAddBefore16) {
  Tensor data = T_<float>({3}, {1, 5, 3});
  Tensor idx = T_<int64_t>({1}, {0});
  Tensor upd = T_<float>({1}, {4});
  auto r16 = RunOp("ScatterElements", 16, {data, idx, upd}, {AttrString("reduction", "max")});
  ASSERT_FALSE(r16.ok());
  EXPECT_TRUE(Contains(r16.status(), "reduction 'max'")) << r16.status();
  EXPECT_FALSE(RunOp("ScatterElements", 13, {data, idx, upd}, {AttrString("reduction", "add")}).ok());
  EXPECT_FALSE(RunOp("ScatterElements", 21, {data, idx, upd}, {AttrString("reduction", "sum")}).ok());
}

TEST(ScatterElementsTest, AddAccumulatesDuplicatesInt32Axis1) {
  // np.add.at on rows: out[i][idx[i][j]] += upd[i][j].
  Tensor data = T_<int32_t>({2, 3}, {0, 0, 0, 10, 10, 10});
  Tensor idx = T_<int64_t>({2, 3}, {0, 0, 2, -1, 1, -1});
  Tensor upd = T_<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto out = RunOp("ScatterElements", 16, {data, idx, upd},
                   {AttrInt("axis", 1), AttrString("reduction", "add")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({3, 0, 3, 10, 15, 20}));
  auto mul = RunOp("ScatterElements", 16, {data, idx, upd},
                   {AttrInt("axis", 1), AttrString("reduction", "mul")});
  ASSERT_TRUE(mul.ok()) << mul.status();
  EXPECT_EQ(Values<int32_t>(mul->at(0)), std::vector<int32_t>({0, 0, 0, 10, 50, 240}));
}

TEST(ScatterElementsTest, DuplicatesWithoutReductionLastWriteWins) {
  Tensor data = T_<int64_t>({3}, {0, 0, 0});
  auto out = RunOp("ScatterElements", 13,
                   {data, T_<int32_t>({4}, {1, 1, -2, 0}), T_<int64_t>({4}, {7, 8, 9, 5})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({5, 9, 0}));
}

TEST(ScatterElementsTest, GraphMessagePassingAddMatchesNaiveLoop) {
  // Edge features [E, F] summed into node rows [N, F] by destination index
  // (the interaction-network aggregation); expected values from a naive loop.
  const int64_t nodes = 7, edges = 50, feat = 33;
  std::vector<float> agg(nodes * feat, 1.0f), upd(edges * feat);
  std::vector<int64_t> dest(edges * feat);
  for (int64_t e = 0; e < edges; ++e) {
    const int64_t d = (e * 5 + 3) % nodes;
    for (int64_t f = 0; f < feat; ++f) {
      dest[e * feat + f] = (e % 3 == 0) ? d - nodes : d;  // some negative
      upd[e * feat + f] = static_cast<float>(e + f * 0.5);
    }
  }
  std::vector<float> expected = agg;
  for (int64_t e = 0; e < edges; ++e) {
    const int64_t d = (e * 5 + 3) % nodes;
    for (int64_t f = 0; f < feat; ++f) expected[d * feat + f] += upd[e * feat + f];
  }
  auto out = RunOp("ScatterElements", 18,
                   {T_<float>({nodes, feat}, agg), T_<int64_t>({edges, feat}, dest),
                    T_<float>({edges, feat}, upd)},
                   {AttrString("reduction", "add")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), expected);
}

TEST(ScatterElementsTest, BoolStringAndFloat16) {
  // bool add is logical or.
  auto b = RunOp("ScatterElements", 16,
                 {T_<bool>({3}, {false, true, false}), T_<int64_t>({2}, {0, 1}),
                  T_<bool>({2}, {true, false})},
                 {AttrString("reduction", "add")});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(Values<bool>(b->at(0)), std::vector<bool>({true, true, false}));
  auto s = RunOp("ScatterElements", 13,
                 {T_<std::string>({2}, {"x", "y"}), T_<int64_t>({1}, {1}), T_<std::string>({1}, {"z"})});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(Values<std::string>(s->at(0)), std::vector<std::string>({"x", "z"}));
  auto sr = RunOp("ScatterElements", 16,
                  {T_<std::string>({2}, {"x", "y"}), T_<int64_t>({1}, {1}), T_<std::string>({1}, {"z"})},
                  {AttrString("reduction", "add")});
  EXPECT_FALSE(sr.ok());
  auto h = RunOp("ScatterElements", 18,
                 {T_<Float16>({2}, {Float16(1.0f), Float16(2.0f)}), T_<int64_t>({2}, {1, 1}),
                  T_<Float16>({2}, {Float16(0.5f), Float16(0.25f)})},
                 {AttrString("reduction", "add")});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(static_cast<float>(h->at(0).data<Float16>()[1]), 2.75f);
}

TEST(ScatterElementsTest, BadShapesAndIndicesAreErrors) {
  Tensor data = T_<float>({2, 2}, {1, 2, 3, 4});
  // updates shape differs from indices.
  EXPECT_FALSE(RunOp("ScatterElements", 13,
                     {data, T_<int64_t>({1, 2}, {0, 0}), T_<float>({2, 1}, {1, 1})})
                   .ok());
  // indices larger than data on the non-axis dimension.
  EXPECT_FALSE(RunOp("ScatterElements", 13,
                     {data, T_<int64_t>({1, 3}, {0, 0, 0}), T_<float>({1, 3}, {1, 1, 1})})
                   .ok());
  // Out of range.
  auto oor = RunOp("ScatterElements", 13,
                   {data, T_<int64_t>({1, 2}, {0, 2}), T_<float>({1, 2}, {1, 1})});
  ASSERT_FALSE(oor.ok());
  EXPECT_TRUE(Contains(oor.status(), "index 2 at position [0,1]")) << oor.status();
  // Type mismatch between data and updates.
  EXPECT_FALSE(RunOp("ScatterElements", 13,
                     {data, T_<int64_t>({1, 1}, {0}), T_<double>({1, 1}, {1})})
                   .ok());
}

TEST(ScatterTest, DeprecatedScatterEqualsScatterElements) {
  // ONNX Scatter example with axis=1 (opset 9 and 11).
  Tensor data = T_<float>({1, 5}, {1, 2, 3, 4, 5});
  Tensor idx = T_<int64_t>({1, 2}, {1, 3});
  Tensor upd = T_<float>({1, 2}, {1.1f, 2.1f});
  for (int opset : {9, 11}) {
    auto out = RunOp("Scatter", opset, {data, idx, upd}, {AttrInt("axis", 1)});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1, 1.1f, 3, 2.1f, 5}));
  }
}

TEST(ScatterElementsTest, EmptyIndicesCopyData) {
  auto out = RunOp("ScatterElements", 18,
                   {T_<float>({2}, {1, 2}), T_<int64_t>({0}, {}), T_<float>({0}, {})},
                   {AttrString("reduction", "mul")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1, 2}));
}

// ---- ScatterND -------------------------------------------------------------------

TEST(ScatterNDTest, Opset18MaxMinOnSlices) {
  // data rows [[1,1],[5,5],[3,3]]; indices [[0],[2],[0]]; updates rows
  // [[4,0],[2,9],[7,-1]]. max: row0 = max(1,4,7)/max(1,0,-1) = [7,1],
  // row2 = [3,9]. min: row0 = [1,-1], row2 = [2,3].
  Tensor data = T_<int32_t>({3, 2}, {1, 1, 5, 5, 3, 3});
  Tensor idx = T_<int64_t>({3, 1}, {0, 2, 0});
  Tensor upd = T_<int32_t>({3, 2}, {4, 0, 2, 9, 7, -1});
  auto mx = RunOp("ScatterND", 18, {data, idx, upd}, {AttrString("reduction", "max")});
  ASSERT_TRUE(mx.ok()) << mx.status();
  EXPECT_EQ(Values<int32_t>(mx->at(0)), std::vector<int32_t>({7, 1, 5, 5, 3, 9}));
  auto mn = RunOp("ScatterND", 18, {data, idx, upd}, {AttrString("reduction", "min")});
  ASSERT_TRUE(mn.ok()) << mn.status();
  EXPECT_EQ(Values<int32_t>(mn->at(0)), std::vector<int32_t>({1, -1, 5, 5, 2, 3}));
  EXPECT_FALSE(RunOp("ScatterND", 17, {data, idx, upd}, {AttrString("reduction", "min")}).ok());
}

TEST(ScatterNDTest, AddWithDuplicateAndNegativeElementIndices) {
  // k == rank: element updates; [1,-1] and [-1,2] are the same element.
  Tensor data = T_<double>({2, 3}, {0, 0, 0, 0, 0, 0});
  Tensor idx = T_<int64_t>({3, 2}, {1, -1, -1, 2, 0, 0});
  Tensor upd = T_<double>({3}, {1.5, 2.5, 4});
  auto out = RunOp("ScatterND", 16, {data, idx, upd}, {AttrString("reduction", "add")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({4, 0, 0, 0, 0, 4}));
  // Without reduction, the last write wins.
  auto none = RunOp("ScatterND", 13, {data, idx, upd});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(Values<double>(none->at(0)), std::vector<double>({4, 0, 0, 0, 0, 2.5}));
}

TEST(ScatterNDTest, LargeRowsAddMatchesNaiveLoop) {
  // Rows of 5000 floats (the parallel column split), with a repeated row index.
  const int64_t rows = 4, width = 5000;
  std::vector<float> data(rows * width), upd(3 * width);
  for (int64_t i = 0; i < rows * width; ++i) data[i] = static_cast<float>(i % 17);
  for (int64_t i = 0; i < 3 * width; ++i) upd[i] = static_cast<float>(i % 5);
  std::vector<float> expected = data;
  const int64_t target[3] = {3, 1, 3};
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t j = 0; j < width; ++j) expected[target[t] * width + j] += upd[t * width + j];
  auto out = RunOp("ScatterND", 18,
                   {T_<float>({rows, width}, data), T_<int64_t>({3, 1}, {3, 1, -1}),
                    T_<float>({3, width}, upd)},
                   {AttrString("reduction", "add")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), expected);
}

TEST(ScatterNDTest, StringsAndErrors) {
  Tensor data = T_<std::string>({2, 2}, {"a", "b", "c", "d"});
  auto out = RunOp("ScatterND", 11,
                   {data, T_<int64_t>({1, 1}, {1}), T_<std::string>({1, 2}, {"x", "y"})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"a", "b", "x", "y"}));

  Tensor f = T_<float>({2, 2}, {1, 2, 3, 4});
  // updates shape must be indices.shape[:-1] + data.shape[k:] = [1, 2].
  auto shape = RunOp("ScatterND", 13, {f, T_<int64_t>({1, 1}, {1}), T_<float>({2}, {1, 2})});
  ASSERT_FALSE(shape.ok());
  EXPECT_TRUE(Contains(shape.status(), "must be [1,2]")) << shape.status();
  auto oor = RunOp("ScatterND", 13, {f, T_<int64_t>({1, 1}, {-3}), T_<float>({1, 2}, {1, 2})});
  ASSERT_FALSE(oor.ok());
  EXPECT_TRUE(Contains(oor.status(), "index -3 at position [0,0]")) << oor.status();
  // k larger than the data rank.
  EXPECT_FALSE(RunOp("ScatterND", 13, {f, T_<int64_t>({1, 3}, {0, 0, 0}), T_<float>({1}, {1})}).ok());
  // Scalar indices.
  EXPECT_FALSE(RunOp("ScatterND", 13, {f, Scalar<int64_t>(0), T_<float>({1}, {1})}).ok());
}

// ---- Parallel execution ---------------------------------------------------------

// Runs one node like RunOp, but inside a 4-thread TBB arena so the kernels'
// ParallelFor really splits work.
absl::StatusOr<std::vector<Tensor>> RunOpThreaded(const std::string& op_type, int opset,
                                                  std::vector<Tensor> inputs,
                                                  std::vector<Attribute> attributes) {
  Graph g;
  Node node;
  node.op_type = op_type;
  node.opset = opset;
  node.attributes = std::move(attributes);
  std::vector<Value> fed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ValueInfo vi;
    vi.name = absl::StrCat("in", i);
    node.inputs.push_back(vi.name);
    g.inputs.push_back(vi);
    fed.push_back(Value::FromTensor(inputs[i]));
  }
  node.outputs.push_back("out0");
  ValueInfo out;
  out.name = "out0";
  g.outputs.push_back(out);
  g.nodes.push_back(node);
  auto plan = BuildPlan(g);
  if (!plan.ok()) return plan.status();
  oneapi::tbb::task_arena arena(4);
  ExecutionContext exec;
  exec.arena = &arena;
  exec.concurrency = 4;
  absl::StatusOr<std::vector<Value>> result;
  arena.execute([&] { result = ExecutePlan(**plan, std::move(fed), exec); });
  if (!result.ok()) return result.status();
  std::vector<Tensor> tensors;
  for (Value& v : *result) tensors.push_back(std::move(v.tensor));
  return tensors;
}

TEST(GatherScatterParallelTest, ThreadedResultsEqualSerialOnes) {
  // Large enough for several tasks: 2000 rows of 64 or 100 floats (rows that
  // do not fill whole cache lines), 3000 edges.
  for (const int64_t width : {int64_t{64}, int64_t{100}}) {
    const int64_t rows = 2000, edges = 3000;
    std::vector<float> table(rows * width), feats(edges * width);
    for (int64_t i = 0; i < rows * width; ++i) table[i] = static_cast<float>(i % 101);
    for (int64_t i = 0; i < edges * width; ++i) feats[i] = static_cast<float>(i % 7) - 3;
    std::vector<int64_t> src(edges), dst_rows(edges * width);
    for (int64_t e = 0; e < edges; ++e) {
      src[e] = (e * 37) % rows;
      for (int64_t f = 0; f < width; ++f) dst_rows[e * width + f] = (e * 13) % 50;  // many duplicates
    }
    Tensor data = T_<float>({rows, width}, table);
    Tensor updates = T_<float>({edges, width}, feats);
    Tensor dst = T_<int64_t>({edges, width}, dst_rows);
    struct Case {
      std::string op;
      std::vector<Tensor> inputs;
      std::vector<Attribute> attrs;
    };
    std::vector<int64_t> nd_idx(edges);
    for (int64_t e = 0; e < edges; ++e) nd_idx[e] = (e * 13) % 50;
    const std::vector<Case> cases = {
        {"Gather", {data, T_<int64_t>({edges}, src)}, {}},
        {"GatherElements", {data, T_<int64_t>({50, width}, std::vector<int64_t>(dst_rows.begin(), dst_rows.begin() + 50 * width))}, {}},
        {"ScatterElements", {data, dst, updates}, {AttrString("reduction", "add")}},
        {"ScatterElements", {data, dst, updates}, {}},  // duplicates: last write wins
        {"ScatterND", {data, T_<int64_t>({edges, 1}, nd_idx), updates}, {AttrString("reduction", "add")}},
        {"ScatterND", {data, T_<int64_t>({edges, 1}, nd_idx), updates}, {}},
    };
    for (const Case& c : cases) {
      auto serial = RunOp(c.op, 18, c.inputs, c.attrs);
      auto threaded = RunOpThreaded(c.op, 18, c.inputs, c.attrs);
      ASSERT_TRUE(serial.ok()) << serial.status();
      ASSERT_TRUE(threaded.ok()) << threaded.status();
      EXPECT_EQ(Values<float>(serial->at(0)), Values<float>(threaded->at(0))) << c.op;
    }
    // Spot check of "last write wins": row 0 receives edges 0, 50, ..., 2950;
    // the last one is edge 2950, whose features are (2950 * width + f) % 7 - 3.
    auto last = RunOpThreaded("ScatterElements", 18, {data, dst, updates}, {});
    ASSERT_TRUE(last.ok()) << last.status();
    for (int64_t f = 0; f < width; ++f) {
      EXPECT_EQ(last->at(0).data<float>()[f], static_cast<float>((2950 * width + f) % 7) - 3);
    }
  }
}

}  // namespace
}  // namespace hepml::ops::testing
