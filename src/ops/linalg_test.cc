// Unit tests of MatMul, Gemm, Einsum and Det. Hand-computed values say how
// they were obtained; larger cases compare against a naive triple loop.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "ops/op_registry.h"
#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::FloatNear;
using ::testing::HasSubstr;

// Deterministic values in [-1, 1) (a small LCG).
std::vector<float> Pseudo(int64_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>((seed >> 8) % 2000) / 1000.0f - 1.0f;
  }
  return v;
}

std::vector<float> NaiveMatMul(const std::vector<float>& a, const std::vector<float>& b, int64_t m,
                               int64_t k, int64_t n) {
  std::vector<float> c(m * n, 0.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += static_cast<double>(a[i * k + p]) * b[p * n + j];
      c[i * n + j] = static_cast<float>(s);
    }
  return c;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol) << "at " << i;
  }
}

// ---- MatMul ----

TEST(MatMulTest, TwoByTwo) {
  // [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]]
  auto out = RunOp("MatMul", 13, {T_<float>({2, 2}, {1, 2, 3, 4}), T_<float>({2, 2}, {5, 6, 7, 8})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(19, 22, 43, 50));
}

TEST(MatMulTest, OneDimensionalOperandsArePromotedAndDropped) {
  // [1,2,3] x [[1,0],[0,1],[1,1]] = [4,5]
  auto vm = RunOp("MatMul", 13, {T_<float>({3}, {1, 2, 3}), T_<float>({3, 2}, {1, 0, 0, 1, 1, 1})});
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ(vm->at(0).shape(), Shape({2}));
  EXPECT_THAT(Values<float>(vm->at(0)), ElementsAre(4, 5));
  // [[1,2,3],[4,5,6]] x [1,1,1] = [6,15]
  auto mv = RunOp("MatMul", 13, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({3}, {1, 1, 1})});
  ASSERT_TRUE(mv.ok()) << mv.status();
  EXPECT_EQ(mv->at(0).shape(), Shape({2}));
  EXPECT_THAT(Values<float>(mv->at(0)), ElementsAre(6, 15));
  // dot product: 1*4 + 2*5 + 3*6 = 32, a scalar
  auto vv = RunOp("MatMul", 13, {T_<float>({3}, {1, 2, 3}), T_<float>({3}, {4, 5, 6})});
  ASSERT_TRUE(vv.ok()) << vv.status();
  EXPECT_EQ(vv->at(0).shape(), Shape({}));
  EXPECT_THAT(Values<float>(vv->at(0)), ElementsAre(32));
}

TEST(MatMulTest, BatchDimensionsBroadcast) {
  // A [2,1,2,3] x B [3,3,2] -> [2,3,2,2]; checked against per-batch naive products.
  const auto a = Pseudo(2 * 2 * 3, 1), b = Pseudo(3 * 3 * 2, 2);
  auto out = RunOp("MatMul", 13, {T_<float>({2, 1, 2, 3}, a), T_<float>({3, 3, 2}, b)});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).shape(), Shape({2, 3, 2, 2}));
  const auto got = Values<float>(out->at(0));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      std::vector<float> ai(a.begin() + i * 6, a.begin() + i * 6 + 6);
      std::vector<float> bj(b.begin() + j * 6, b.begin() + j * 6 + 6);
      const auto want = NaiveMatMul(ai, bj, 2, 3, 2);
      for (int e = 0; e < 4; ++e) EXPECT_NEAR(got[(i * 3 + j) * 4 + e], want[e], 1e-5);
    }
}

TEST(MatMulTest, LargeOddSizesMatchNaiveProduct) {
  // Crosses the K (128) and N (512) cache blocks and the 4-row groups.
  const int64_t m = 37, k = 300, n = 600;
  const auto a = Pseudo(m * k, 3), b = Pseudo(k * n, 4);
  auto out = RunOp("MatMul", 13, {T_<float>({m, k}, a), T_<float>({k, n}, b)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(Values<float>(out->at(0)), NaiveMatMul(a, b, m, k, n), 1e-3f);
}

TEST(MatMulTest, ThreeDimensionalTimesMatrixIsOneTallProduct) {
  const auto a = Pseudo(3 * 5 * 7, 5), b = Pseudo(7 * 4, 6);
  auto out = RunOp("MatMul", 13, {T_<float>({3, 5, 7}, a), T_<float>({7, 4}, b)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({3, 5, 4}));
  ExpectNear(Values<float>(out->at(0)), NaiveMatMul(a, b, 15, 7, 4), 1e-5f);
}

TEST(MatMulTest, IntegerTypes) {
  auto i32 = RunOp("MatMul", 13, {T_<int32_t>({1, 2}, {-3, 4}), T_<int32_t>({2, 1}, {5, -6})});
  ASSERT_TRUE(i32.ok()) << i32.status();
  EXPECT_THAT(Values<int32_t>(i32->at(0)), ElementsAre(-39));  // -15 - 24
  auto u64 = RunOp("MatMul", 13, {T_<uint64_t>({1, 2}, {1, 2}), T_<uint64_t>({2, 2}, {3, 4, 5, 6})});
  ASSERT_TRUE(u64.ok()) << u64.status();
  EXPECT_THAT(Values<uint64_t>(u64->at(0)), ElementsAre(13, 16));
  // int32 wraps like numpy: 65536 * 65536 = 2^32 -> 0.
  auto wrap = RunOp("MatMul", 13, {T_<int32_t>({1, 1}, {65536}), T_<int32_t>({1, 1}, {65536})});
  ASSERT_TRUE(wrap.ok()) << wrap.status();
  EXPECT_THAT(Values<int32_t>(wrap->at(0)), ElementsAre(0));
}

TEST(MatMulTest, HalfAndDoublePrecision) {
  auto h = RunOp("MatMul", 13,
                 {T_<Float16>({1, 2}, {Float16(1.5f), Float16(2.0f)}),
                  T_<Float16>({2, 1}, {Float16(2.0f), Float16(0.25f)})});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->at(0).dtype(), DType::kFloat16);
  EXPECT_EQ(static_cast<float>(h->at(0).data<Float16>()[0]), 3.5f);
  auto d = RunOp("MatMul", 13, {T_<double>({1, 2}, {0.1, 0.2}), T_<double>({2, 1}, {10, 10})});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_NEAR(d->at(0).data<double>()[0], 3.0, 1e-15);  // 0.1*10 + 0.2*10
}

TEST(MatMulTest, EmptyDimensions) {
  auto zero_rows = RunOp("MatMul", 13, {T_<float>({0, 3}, {}), T_<float>({3, 4}, Pseudo(12, 1))});
  ASSERT_TRUE(zero_rows.ok()) << zero_rows.status();
  EXPECT_EQ(zero_rows->at(0).shape(), Shape({0, 4}));
  // K = 0: the product is all zeros.
  auto zero_k = RunOp("MatMul", 13, {T_<float>({2, 0}, {}), T_<float>({0, 3}, {})});
  ASSERT_TRUE(zero_k.ok()) << zero_k.status();
  EXPECT_EQ(zero_k->at(0).shape(), Shape({2, 3}));
  EXPECT_THAT(Values<float>(zero_k->at(0)), ElementsAre(0, 0, 0, 0, 0, 0));
}

TEST(MatMulTest, BadShapesAreErrors) {
  auto inner = RunOp("MatMul", 13, {T_<float>({2, 3}, Pseudo(6, 1)), T_<float>({2, 3}, Pseudo(6, 2))});
  ASSERT_FALSE(inner.ok());
  EXPECT_THAT(std::string(inner.status().message()), HasSubstr("inner dimensions"));
  auto scalar = RunOp("MatMul", 13, {T_<float>({}, {1}), T_<float>({1}, {1})});
  EXPECT_FALSE(scalar.ok());
  auto batch = RunOp("MatMul", 13, {T_<float>({2, 1, 1}, {1, 2}), T_<float>({3, 1, 1}, {1, 2, 3})});
  EXPECT_FALSE(batch.ok());
  auto types = RunOp("MatMul", 13, {T_<float>({1, 1}, {1}), T_<double>({1, 1}, {1})});
  EXPECT_FALSE(types.ok());
  auto int8 = RunOp("MatMul", 13, {T_<int8_t>({1, 1}, {1}), T_<int8_t>({1, 1}, {1})});
  EXPECT_FALSE(int8.ok());
}

// ---- Gemm ----

TEST(GemmTest, TransposesAlphaBetaAndBroadcastC) {
  // A^T with A = [[1,2],[3,4],[5,6]] (3x2) -> op(A) = [[1,3,5],[2,4,6]];
  // B^T with B = [[1,0,1],[0,1,1]] (2x3) -> op(B) = [[1,0],[0,1],[1,1]].
  // op(A) op(B) = [[6,8],[8,10]]; alpha 0.5 -> [[3,4],[4,5]]; + 2 * C[1x2]=[1,-1].
  auto out = RunOp("Gemm", 13,
                   {T_<float>({3, 2}, {1, 2, 3, 4, 5, 6}), T_<float>({2, 3}, {1, 0, 1, 0, 1, 1}),
                    T_<float>({1, 2}, {1, -1})},
                   {AttrInt("transA", 1), AttrInt("transB", 1), AttrFloat("alpha", 0.5f),
                    AttrFloat("beta", 2.0f)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(5, 2, 6, 3));
}

TEST(GemmTest, ColumnBiasAndScalarBias) {
  // [[1,2],[3,4]] x I + C[2x1] = [[11,12],[23,24]]
  auto col = RunOp("Gemm", 13,
                   {T_<float>({2, 2}, {1, 2, 3, 4}), T_<float>({2, 2}, {1, 0, 0, 1}),
                    T_<float>({2, 1}, {10, 20})});
  ASSERT_TRUE(col.ok()) << col.status();
  EXPECT_THAT(Values<float>(col->at(0)), ElementsAre(11, 12, 23, 24));
  auto scalar = RunOp("Gemm", 13,
                      {T_<float>({1, 2}, {1, 2}), T_<float>({2, 1}, {3, 4}), T_<float>({}, {100})});
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_THAT(Values<float>(scalar->at(0)), ElementsAre(111));
}

TEST(GemmTest, OptionalCFromOpset11) {
  auto out = RunOp("Gemm", 11, {T_<float>({1, 2}, {1, 2}), T_<float>({2, 1}, {3, 4})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<float>(out->at(0)), ElementsAre(11));
  auto old = RunOp("Gemm", 9, {T_<float>({1, 2}, {1, 2}), T_<float>({2, 1}, {3, 4})});
  EXPECT_FALSE(old.ok());
}

TEST(GemmTest, IntegerAndDouble) {
  auto i64 = RunOp("Gemm", 13,
                   {T_<int64_t>({1, 2}, {2, 3}), T_<int64_t>({2, 1}, {4, 5}), T_<int64_t>({1}, {-1})});
  ASSERT_TRUE(i64.ok()) << i64.status();
  EXPECT_THAT(Values<int64_t>(i64->at(0)), ElementsAre(22));
  auto f64 = RunOp("Gemm", 13, {T_<double>({1, 1}, {1.5}), T_<double>({1, 1}, {2})},
                   {AttrFloat("alpha", 2.0f)});
  ASSERT_TRUE(f64.ok()) << f64.status();
  EXPECT_THAT(Values<double>(f64->at(0)), ElementsAre(6.0));
}

TEST(GemmTest, BadShapesAreErrors) {
  auto rank = RunOp("Gemm", 13, {T_<float>({2}, {1, 2}), T_<float>({2, 1}, {3, 4})});
  EXPECT_FALSE(rank.ok());
  auto inner = RunOp("Gemm", 13, {T_<float>({1, 2}, {1, 2}), T_<float>({3, 1}, {3, 4, 5})});
  EXPECT_FALSE(inner.ok());
  auto c = RunOp("Gemm", 13,
                 {T_<float>({2, 2}, {1, 2, 3, 4}), T_<float>({2, 2}, {1, 0, 0, 1}), T_<float>({3}, {1, 2, 3})});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("cannot be broadcast"));
}

// ---- Einsum ----

TEST(EinsumTest, MatrixProductExplicitAndImplicit) {
  const auto a = Pseudo(6, 7), b = Pseudo(12, 8);
  const auto want = NaiveMatMul(a, b, 2, 3, 4);
  for (const char* eq : {"ij,jk->ik", "ij,jk", " i j , j k -> i k "}) {
    auto out = RunOp("Einsum", 12, {T_<float>({2, 3}, a), T_<float>({3, 4}, b)}, {AttrString("equation", eq)});
    ASSERT_TRUE(out.ok()) << eq << ": " << out.status();
    EXPECT_EQ(out->at(0).shape(), Shape({2, 4})) << eq;
    ExpectNear(Values<float>(out->at(0)), want, 1e-5f);
  }
}

TEST(EinsumTest, TraceDiagonalTransposeAndSum) {
  const auto m = T_<float>({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto trace = RunOp("Einsum", 12, {m}, {AttrString("equation", "ii")});
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->at(0).shape(), Shape({}));
  EXPECT_THAT(Values<float>(trace->at(0)), ElementsAre(15));  // 1 + 5 + 9
  auto diag = RunOp("Einsum", 12, {m}, {AttrString("equation", "ii->i")});
  ASSERT_TRUE(diag.ok()) << diag.status();
  EXPECT_THAT(Values<float>(diag->at(0)), ElementsAre(1, 5, 9));
  auto tr = RunOp("Einsum", 12, {m}, {AttrString("equation", "ji")});  // implicit: sorted -> ij of ji = transpose
  ASSERT_TRUE(tr.ok()) << tr.status();
  EXPECT_THAT(Values<float>(tr->at(0)), ElementsAre(1, 4, 7, 2, 5, 8, 3, 6, 9));
  auto all = RunOp("Einsum", 12, {m}, {AttrString("equation", "ij->")});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Values<float>(all->at(0)), ElementsAre(45));
}

TEST(EinsumTest, EllipsisBroadcastsBatchDims) {
  // "...ij,...jk->...ik" with batches [2] and [1]: the second operand broadcasts.
  const auto a = Pseudo(2 * 2 * 3, 9), b = Pseudo(3 * 2, 10);
  auto out = RunOp("Einsum", 12, {T_<float>({2, 2, 3}, a), T_<float>({1, 3, 2}, b)},
                   {AttrString("equation", "...ij,...jk->...ik")});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).shape(), Shape({2, 2, 2}));
  const auto got = Values<float>(out->at(0));
  for (int bi = 0; bi < 2; ++bi) {
    std::vector<float> ab(a.begin() + bi * 6, a.begin() + bi * 6 + 6);
    const auto want = NaiveMatMul(ab, b, 2, 3, 2);
    for (int e = 0; e < 4; ++e) EXPECT_NEAR(got[bi * 4 + e], want[e], 1e-5);
  }
}

TEST(EinsumTest, OuterProductThreeOperandsAndIntegers) {
  auto outer = RunOp("Einsum", 12, {T_<int32_t>({2}, {1, 2}), T_<int32_t>({3}, {3, 4, 5})},
                     {AttrString("equation", "i,j->ij")});
  ASSERT_TRUE(outer.ok()) << outer.status();
  EXPECT_THAT(Values<int32_t>(outer->at(0)), ElementsAre(3, 4, 5, 6, 8, 10));
  // sum_i a_i b_i c_i = 1*4*7 + 2*5*8 + 3*6*9 = 28 + 80 + 162 = 270
  auto three = RunOp("Einsum", 12,
                     {T_<int64_t>({3}, {1, 2, 3}), T_<int64_t>({3}, {4, 5, 6}), T_<int64_t>({3}, {7, 8, 9})},
                     {AttrString("equation", "i,i,i->")});
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_THAT(Values<int64_t>(three->at(0)), ElementsAre(270));
}

TEST(EinsumTest, BadEquationsAreErrors) {
  const auto m = T_<float>({2, 3}, Pseudo(6, 1));
  EXPECT_FALSE(RunOp("Einsum", 12, {m}, {AttrString("equation", "ijk->i")}).ok());  // rank
  EXPECT_FALSE(RunOp("Einsum", 12, {m}, {AttrString("equation", "ij->k")}).ok());   // unknown label
  EXPECT_FALSE(RunOp("Einsum", 12, {m}, {AttrString("equation", "i1")}).ok());      // bad char
  EXPECT_FALSE(RunOp("Einsum", 12, {m}, {AttrString("equation", "ii")}).ok());      // 2 vs 3 diagonal
  EXPECT_FALSE(RunOp("Einsum", 12, {m, m}, {AttrString("equation", "ij")}).ok());   // term count
  EXPECT_FALSE(RunOp("Einsum", 12, {m, m}, {AttrString("equation", "ij,jk")}).ok());  // 3 vs 2
  EXPECT_FALSE(RunOp("Einsum", 12, {m}).ok());  // no equation
}

// ---- Det ----

TEST(DetTest, BatchedDeterminants) {
  // det [[1,2],[3,4]] = -2; det [[2,0],[0,3]] = 6; det of a singular matrix = 0.
  auto out = RunOp("Det", 11, {T_<float>({3, 2, 2}, {1, 2, 3, 4, 2, 0, 0, 3, 1, 2, 2, 4})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({3}));
  EXPECT_THAT(Values<float>(out->at(0)),
              ElementsAre(FloatNear(-2, 1e-6), FloatNear(6, 1e-6), FloatNear(0, 1e-6)));
}

TEST(DetTest, NeedsPivotingAndDouble) {
  // [[0,1,2],[1,0,3],[4,-3,8]]: numpy.linalg.det gives -2.0 (zero leading pivot).
  auto out = RunOp("Det", 11, {T_<double>({3, 3}, {0, 1, 2, 1, 0, 3, 4, -3, 8})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({}));
  EXPECT_NEAR(out->at(0).data<double>()[0], -2.0, 1e-12);
}

TEST(DetTest, BadInputsAreErrors) {
  EXPECT_FALSE(RunOp("Det", 11, {T_<float>({2, 3}, Pseudo(6, 1))}).ok());
  EXPECT_FALSE(RunOp("Det", 11, {T_<float>({4}, Pseudo(4, 1))}).ok());
  EXPECT_FALSE(RunOp("Det", 11, {T_<int32_t>({1, 1}, {1})}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing

namespace hepml::ops::testing {
namespace {

// Runs the registered shape function of `op` on the given input types.
absl::StatusOr<std::vector<TypeInfo>> Infer(const std::string& op, int opset,
                                            std::vector<TypeInfo> inputs,
                                            std::vector<Attribute> attrs = {}, int outputs = 1) {
  const OpDef* def = OpRegistry::Global().Find("", op, opset);
  if (def == nullptr || def->infer == nullptr) return absl::NotFoundError("no infer function");
  Node node;
  node.op_type = op;
  node.opset = opset;
  node.attributes = std::move(attrs);
  InferContext ctx{node, opset, std::move(inputs), {}};
  ctx.constant_inputs.resize(ctx.input_types.size(), nullptr);
  std::vector<TypeInfo> out(outputs);
  absl::Status st = def->infer(ctx, out);
  if (!st.ok()) return st;
  return out;
}

TEST(LinalgInferTest, MatMulKeepsSymbolicBatchAndDropsVectorDims) {
  auto out = Infer("MatMul", 13,
                   {TypeInfo::Tensor(DType::kFloat32, {Dim{-1, "batch"}, Dim{4, ""}, Dim{3, ""}}),
                    TypeInfo::Tensor(DType::kFloat32, {Dim{3, ""}})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).ToString(), "float32[batch,4]");
  auto bad = Infer("MatMul", 13,
                   {TypeInfo::Tensor(DType::kFloat32, {Dim{4, ""}, Dim{3, ""}}),
                    TypeInfo::Tensor(DType::kFloat32, {Dim{2, ""}, Dim{5, ""}})});
  EXPECT_FALSE(bad.ok());
}

TEST(LinalgInferTest, GemmHonoursTransposes) {
  auto out = Infer("Gemm", 13,
                   {TypeInfo::Tensor(DType::kFloat32, {Dim{3, ""}, Dim{2, ""}}),
                    TypeInfo::Tensor(DType::kFloat32, {Dim{5, ""}, Dim{3, ""}})},
                   {AttrInt("transA", 1), AttrInt("transB", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).ToString(), "float32[2,5]");
}

TEST(LinalgInferTest, ConvAndPoolOutputShapes) {
  // 7x7 input, 3x3 kernel, stride 2, pads 1: (7 + 2 - 3) / 2 + 1 = 4.
  auto conv = Infer("Conv", 11,
                    {TypeInfo::Tensor(DType::kFloat32, {Dim{1, ""}, Dim{3, ""}, Dim{7, ""}, Dim{7, ""}}),
                     TypeInfo::Tensor(DType::kFloat32, {Dim{8, ""}, Dim{3, ""}, Dim{3, ""}, Dim{3, ""}})},
                    {AttrInts("strides", {2, 2}), AttrInts("pads", {1, 1, 1, 1})});
  ASSERT_TRUE(conv.ok()) << conv.status();
  EXPECT_EQ(conv->at(0).ToString(), "float32[1,8,4,4]");
  auto pool = Infer("MaxPool", 12,
                    {TypeInfo::Tensor(DType::kFloat32, {Dim{1, ""}, Dim{3, ""}, Dim{5, ""}, Dim{5, ""}})},
                    {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2}), AttrInt("ceil_mode", 1)}, 2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(pool->at(0).ToString(), "float32[1,3,3,3]");
  EXPECT_EQ(pool->at(1).ToString(), "int64[1,3,3,3]");
}

}  // namespace
}  // namespace hepml::ops::testing
