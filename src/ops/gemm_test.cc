// Tests of the GEMM routine (GemmRowMajor, GemmF32 and the packed operands of
// gemm.h) against a double-precision reference loop, over the shapes where
// tiled kernels go wrong: empty and single dimensions, sizes that are not
// multiples of the vector width or the tile, k longer than a cache block,
// every transposition, padded leading dimensions, alpha/beta cases, several
// threads; and of MatMul, Gemm and Conv with constant (prepacked) weights.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <thread>

#include "hwy/targets.h"
#include "ops/gemm.h"
#include "ops/linalg.h"
#include "ops/op_test_util.h"
#include "runtime/executor.h"

namespace hepml::ops {
namespace {

// Deterministic values in [-1, 1) (a small LCG).
std::vector<float> Pseudo(int64_t n, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>((seed >> 8) % 2000) / 1000.0f - 1.0f;
  }
  return v;
}

struct Case {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
  int64_t pad = 0;  // extra elements per row of A, B and C
};

std::string Describe(const Case& c) {
  return absl::StrCat("ta=", c.trans_a, " tb=", c.trans_b, " m=", c.m, " n=", c.n, " k=", c.k,
                      " alpha=", c.alpha, " beta=", c.beta, " pad=", c.pad);
}

// Operands of a case, stored with their leading dimensions.
struct Operands {
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c;
};

Operands MakeOperands(const Case& c, uint32_t seed) {
  Operands o;
  const int64_t a_rows = c.trans_a ? c.k : c.m, a_cols = c.trans_a ? c.m : c.k;
  const int64_t b_rows = c.trans_b ? c.n : c.k, b_cols = c.trans_b ? c.k : c.n;
  o.lda = a_cols + c.pad;
  o.ldb = b_cols + c.pad;
  o.ldc = c.n + c.pad;
  o.a = Pseudo(std::max<int64_t>(a_rows * o.lda, 1), seed);
  o.b = Pseudo(std::max<int64_t>(b_rows * o.ldb, 1), seed + 1);
  o.c = Pseudo(std::max<int64_t>(c.m * o.ldc, 1), seed + 2);
  return o;
}

// The expected C and a bound on float rounding per element: the products
// are summed in some order, each partial sum rounded.
void Reference(const Case& c, const Operands& o, std::vector<double>* want,
               std::vector<double>* tol) {
  want->assign(o.c.size(), 0.0);
  tol->assign(o.c.size(), 0.0);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      double sum = 0, mag = 0;
      for (int64_t p = 0; p < c.k; ++p) {
        const double x = c.trans_a ? o.a[p * o.lda + i] : o.a[i * o.lda + p];
        const double y = c.trans_b ? o.b[j * o.ldb + p] : o.b[p * o.ldb + j];
        sum += x * y;
        mag += std::fabs(x * y);
      }
      const double old = o.c[i * o.ldc + j];
      (*want)[i * o.ldc + j] = c.alpha * sum + (c.beta == 0.0f ? 0.0 : c.beta * old);
      (*tol)[i * o.ldc + j] =
          (static_cast<double>(c.k) + 4) * std::numeric_limits<float>::epsilon() *
              (std::fabs(c.alpha) * mag + std::fabs(c.beta * old)) +
          1e-30;
    }
  }
}

// Checks C's m x n part against the reference and that its padding is untouched.
void ExpectMatches(const Case& c, const Operands& o, const std::vector<float>& got,
                   const std::string& what) {
  std::vector<double> want, tol;
  Reference(c, o, &want, &tol);
  int64_t bad = 0;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < o.ldc; ++j) {
      const size_t at = static_cast<size_t>(i * o.ldc + j);
      if (j >= c.n) {
        if (got[at] != o.c[at] && ++bad <= 3) {
          ADD_FAILURE() << what << " " << Describe(c) << ": padding at (" << i << "," << j
                        << ") changed";
        }
        continue;
      }
      if (!(std::fabs(got[at] - want[at]) <= tol[at]) && ++bad <= 3) {
        ADD_FAILURE() << what << " " << Describe(c) << ": C(" << i << "," << j << ") = "
                      << got[at] << ", want " << want[at] << " +- " << tol[at];
      }
    }
  }
}

// A KernelContext whose ParallelFor runs chunks on real threads (the rest
// is unused by the GEMM).
class ThreadedContext final : public KernelContext {
 public:
  const Node& node() const override { return node_; }
  int opset() const override { return 1; }
  size_t num_inputs() const override { return 0; }
  bool HasInput(size_t) const override { return false; }
  const Tensor& Input(size_t) const override { return tensor_; }
  const Value& InputValue(size_t) const override { return value_; }
  size_t num_outputs() const override { return 0; }
  bool HasOutput(size_t) const override { return false; }
  Tensor* Output(size_t, DType, Shape) override { return nullptr; }
  void SetOutput(size_t, Tensor) override {}
  void SetOutputValue(size_t, Value) override {}
  const KernelState* state() const override { return nullptr; }
  absl::StatusOr<std::vector<Value>> RunSubgraph(const std::string&, std::vector<Value>) override {
    return absl::UnimplementedError("no subgraphs");
  }
  void ParallelFor(int64_t begin, int64_t end, int64_t grain,
                   const std::function<void(int64_t, int64_t)>& fn) const override {
    ++calls_;
    grain = std::max<int64_t>(grain, 1);
    std::vector<std::thread> threads;
    for (int64_t lo = begin; lo < end; lo += grain) {
      threads.emplace_back(fn, lo, std::min(end, lo + grain));
    }
    for (auto& t : threads) t.join();
  }
  int calls() const { return calls_; }

 private:
  Node node_;
  Tensor tensor_;
  Value value_;
  mutable int calls_ = 0;
};

enum class Route { kPlain, kPackedA, kPackedB, kPackedBoth, kThreaded };

std::vector<float> RunGemm(const Case& c, const Operands& o, Route route) {
  std::vector<float> got = o.c;
  ThreadedContext threads;
  PackedA pa;
  PackedB pb;
  const bool use_a = route == Route::kPackedA || route == Route::kPackedBoth;
  const bool use_b = route == Route::kPackedB || route == Route::kPackedBoth;
  if (use_a) pa = PackedA::Pack(c.trans_a, c.m, c.k, o.a.data(), o.lda);
  if (use_b) pb = PackedB::Pack(c.trans_b, c.k, c.n, o.b.data(), o.ldb);
  if (route == Route::kPlain || route == Route::kThreaded) {
    GemmRowMajor<float>(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, o.a.data(), o.lda,
                        o.b.data(), o.ldb, c.beta, got.data(), o.ldc,
                        route == Route::kThreaded ? &threads : nullptr);
  } else {
    GemmF32(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, o.a.data(), o.lda, use_a ? &pa : nullptr,
            o.b.data(), o.ldb, use_b ? &pb : nullptr, c.beta, got.data(), o.ldc, nullptr);
  }
  return got;
}

void CheckAllRoutes(const Case& c, uint32_t seed) {
  const Operands o = MakeOperands(c, seed);
  for (Route r : {Route::kPlain, Route::kPackedA, Route::kPackedB, Route::kPackedBoth}) {
    ExpectMatches(c, o, RunGemm(c, o, r), absl::StrCat("route ", static_cast<int>(r)));
  }
}

TEST(GemmF32Test, KernelShapeIsSane) {
  const GemmKernelShape s = GemmF32KernelShape();
  EXPECT_GE(s.mr, 1);
  EXPECT_GE(s.nr, 2);
  EXPECT_STRNE(s.target, "");
}

TEST(GemmF32Test, SmallShapesEveryTransposition) {
  // Every size from 0 to past two tiles in each dimension would be slow;
  // these hit 0, 1, odd sizes, both sides of the vector widths (4, 8, 16)
  // and of the tile widths (nr = 2 vectors, mr = 4, 6 or 12 rows).
  const int64_t sizes[] = {0, 1, 2, 3, 5, 7, 8, 12, 13, 17, 24, 31, 33};
  uint32_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t m : sizes)
        for (int64_t n : sizes)
          for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{16}, int64_t{37}}) {
            Case c{ta, tb, m, n, k};
            CheckAllRoutes(c, seed++);
          }
}

TEST(GemmF32Test, SkinnyRowsAgainstWideAndDeepOperands) {
  // Few rows against a large B: GEMV-like tiles over packed B, rows of B
  // streamed in place, or B packed whole, depending on the size of B.
  uint32_t seed = 100;
  for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8})
    for (int64_t n : {5, 64, 65, 100, 1030})
      for (int64_t k : {16, 300, 1025})
        for (bool ta : {false, true})
          for (bool tb : {false, true}) {
            Case c{ta, tb, m, n, k};
            CheckAllRoutes(c, seed++);
          }
}

TEST(GemmF32Test, LargeShapesCrossCacheBlocks) {
  // Past MC, NC and KC (192/96, 512/256 and 512 floats on AVX-512/AVX2):
  // partial blocks in every dimension, and a k that is several blocks long.
  uint32_t seed = 200;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CheckAllRoutes({ta, tb, 203, 531, 700}, seed++);
      CheckAllRoutes({ta, tb, 97, 45, 1500}, seed++);
    }
  CheckAllRoutes({false, false, 64, 64, 4099}, seed++);
}

TEST(GemmF32Test, AlphaBetaAndLeadingDimensions) {
  uint32_t seed = 300;
  for (float alpha : {1.0f, -0.5f, 0.0f})
    for (float beta : {0.0f, 1.0f, 2.5f})
      for (int64_t pad : {0, 3})
        for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 37, 20},
                               {13, 32, 7},
                               {40, 70, 300}}) {
          Case c{false, true, m, n, k, alpha, beta, pad};
          CheckAllRoutes(c, seed++);
          c.trans_a = true;
          c.trans_b = false;
          CheckAllRoutes(c, seed++);
        }
}

TEST(GemmF32Test, BetaZeroIgnoresNanInC) {
  const Case c{false, false, 13, 40, 9};
  Operands o = MakeOperands(c, 7);
  for (float& x : o.c) x = std::numeric_limits<float>::quiet_NaN();
  for (Route r : {Route::kPlain, Route::kPackedBoth}) {
    const std::vector<float> got = RunGemm(c, o, r);
    for (int64_t i = 0; i < c.m * c.n; ++i) ASSERT_FALSE(std::isnan(got[i])) << "at " << i;
  }
  // k == 0: C = beta * C, zeros when beta == 0.
  const Case empty{false, false, 3, 4, 0};
  Operands e = MakeOperands(empty, 8);
  for (float& x : e.c) x = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> got = RunGemm(empty, e, Route::kPlain);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(got[i], 0.0f);
}

TEST(GemmF32Test, ThreadedMatchesReference) {
  uint32_t seed = 400;
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 4096, 256},
                         {4, 1000, 300},
                         {300, 600, 100},
                         {256, 64, 64},
                         {500, 500, 500}}) {
    const Case c{false, true, m, n, k};
    const Operands o = MakeOperands(c, seed++);
    ThreadedContext threads;
    std::vector<float> got = o.c;
    GemmRowMajor<float>(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, o.a.data(), o.lda,
                        o.b.data(), o.ldb, c.beta, got.data(), o.ldc, &threads);
    ExpectMatches(c, o, got, "threaded");
    // Each of these is big enough to be split.
    EXPECT_GT(threads.calls(), 0) << Describe(c);
  }
}

TEST(GemmF32Test, EveryCompiledTargetMatchesReference) {
  // The CPU picks one kernel at run time; force each other target this CPU
  // can run (AVX-512, AVX2, SSE4, scalar) through the edge cases too.
  int tested = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (target == HWY_SSSE3) continue;  // not compiled for the GEMM
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    const GemmKernelShape shape = GemmF32KernelShape();
    EXPECT_STREQ(shape.target, hwy::TargetName(target));
    uint32_t seed = 500;
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t m : {1, 5, 13, 40})
          for (int64_t n : {1, 7, 17, 40})
            for (int64_t k : {1, 9, 300}) {
              CheckAllRoutes({ta, tb, m, n, k, 0.5f, m == 5 ? 1.0f : 0.0f}, seed++);
            }
    CheckAllRoutes({false, false, 203, 531, 700}, seed++);
    ++tested;
  }
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_GE(tested, 1);
}

TEST(GemmF32Test, RowBiasStandsForEveryRowOfC) {
  // Small, few-row-large-B (streamed), blocked; B as given and prepacked.
  const std::tuple<int64_t, int64_t, int64_t> shapes[] = {
      {1, 5, 16}, {3, 40, 7}, {2, 600, 300}, {7, 600, 300}, {50, 70, 300}, {200, 600, 300}};
  for (auto [m, n, k] : shapes)
    for (float beta : {0.0f, 1.0f, -2.0f})
      for (bool tb : {false, true}) {
        const Case c{false, tb, m, n, k, 0.5f, beta};
        Operands o = MakeOperands(c, 9);
        const std::vector<float> bias = Pseudo(n, 10);
        // The reference sees C filled with the bias rows.
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) o.c[i * o.ldc + j] = bias[j];
        for (bool packed : {false, true}) {
          PackedB pb;
          if (packed) pb = PackedB::Pack(tb, k, n, o.b.data(), o.ldb);
          std::vector<float> got(o.c.size(), std::numeric_limits<float>::quiet_NaN());
          GemmF32(false, tb, m, n, k, c.alpha, o.a.data(), o.lda, nullptr, o.b.data(), o.ldb,
                  packed ? &pb : nullptr, beta, got.data(), o.ldc, nullptr, bias.data());
          ExpectMatches(c, o, got, packed ? "row bias, packed" : "row bias");
        }
      }
}

// A batch split into slices (runtime/batch_split.h) runs a layer's GEMM on
// each slice's rows: rows [r, r + m) as a product of their own must give
// bitwise the whole product's values when r, m and M are multiples of
// exact_rows and m, M > 2 * mr, whatever tiles the rows fall in, for every
// driver (k past a cache block, B prepacked or as given, wide and narrow
// last panels) and epilogue (bias, beta).
TEST(GemmF32Test, RowsOnMultiplesOfExactRowsGiveTheWholeProductsBits) {
  const GemmKernelShape shape = GemmF32KernelShape();
  const int64_t g = shape.exact_rows, mr = shape.mr;
  ASSERT_GE(g, 1);
  ASSERT_EQ(mr % g, 0);
  const int64_t m_total = (8 * mr / g + 3) * g;  // not a multiple of mr where g < mr
  int checked = 0;
  for (int64_t n : {5, 16, 21, 37, 64, 200})
    for (int64_t k : {1, 7, 64, 300, 700})
      for (bool tb : {false, true})
        for (bool packed : {false, true}) {
          const Case c{false, tb, m_total, n, k, 1.0f, 1.0f};
          const Operands o = MakeOperands(c, static_cast<uint32_t>(n * 1000 + k));
          const std::vector<float> bias = Pseudo(n, 77);
          PackedB pb;
          if (packed) pb = PackedB::Pack(tb, k, n, o.b.data(), o.ldb);
          auto product = [&](int64_t r, int64_t m, std::vector<float>& out) {
            GemmF32(false, tb, m, n, k, 0.5f, o.a.data() + r * o.lda, o.lda, nullptr, o.b.data(), o.ldb,
                    packed ? &pb : nullptr, 1.0f, out.data() + r * o.ldc, o.ldc, nullptr, bias.data());
          };
          std::vector<float> whole = o.c;
          product(0, m_total, whole);
          for (int64_t split = (2 * mr / g + 1) * g; m_total - split > 2 * mr; split += g) {
            std::vector<float> parts = o.c;
            product(0, split, parts);
            product(split, m_total - split, parts);
            ASSERT_EQ(std::memcmp(parts.data(), whole.data(), whole.size() * sizeof(float)), 0)
                << Describe(c) << " packed=" << packed << " split at row " << split;
            ++checked;
          }
        }
  EXPECT_GT(checked, 0);
}

TEST(ReluF32Test, MatchesTheScalarDefinitionForEveryLength) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = Pseudo(45, 3);
  x[0] = nan, x[1] = -0.0f, x[2] = inf, x[3] = -inf, x[17] = nan, x[40] = -0.0f;
  for (int64_t n = 0; n <= 45; ++n) {
    std::vector<float> y(46, 7.0f);
    ReluF32(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float want = x[i] > 0.0f ? x[i] : 0.0f;  // NaN and -0 give +0
      ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want)) << n << " " << i;
    }
    EXPECT_EQ(y[n], 7.0f) << "wrote past n = " << n;
  }
  std::vector<float> z = x;  // in place
  ReluF32(z.data(), z.data(), 45);
  EXPECT_EQ(z[2], inf);
  EXPECT_EQ(z[3], 0.0f);
}

TEST(GemmF32Test, PackedOperandsRecordTheirShape) {
  const auto b = Pseudo(7 * 9, 1);
  const PackedB pb = PackedB::Pack(false, 7, 9, b.data(), 9);
  EXPECT_EQ(pb.k(), 7);
  EXPECT_EQ(pb.n(), 9);
  EXPECT_EQ(pb.nr(), GemmF32KernelShape().nr);
  // The only panel is nr wide, or nr / 2 when 9 columns fit in that; rows
  // hold B's rows zero-padded past n = 9.
  const int width = 9 <= pb.nr() / 2 ? pb.nr() / 2 : pb.nr();
  for (int p = 0; p < 7; ++p)
    for (int j = 0; j < width; ++j)
      EXPECT_EQ(pb.data()[p * width + j], j < 9 ? b[p * 9 + j] : 0.0f) << p << "," << j;
  const PackedA pa = PackedA::Pack(true, 5, 3, b.data(), 5);
  EXPECT_EQ(pa.m(), 5);
  EXPECT_EQ(pa.k(), 3);
  EXPECT_EQ(pa.mr(), GemmF32KernelShape().mr);
}

TEST(GemmRowMajorTest, OtherTypesStillWork) {
  // double and the integer types keep the portable loop: spot checks.
  const std::vector<double> a = {1, 2, 3, 4, 5, 6}, b = {7, 8, 9, 10, 11, 12};
  std::vector<double> c(4, -1.0);
  GemmRowMajor<double>(false, false, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 2,
                       nullptr);
  EXPECT_EQ(c, (std::vector<double>{58, 64, 139, 154}));
  const std::vector<int32_t> ia = {1, 2, 3, 4}, ib = {5, 6, 7, 8};
  std::vector<int32_t> ic(4, 0);
  GemmRowMajor<int32_t>(false, true, 2, 2, 2, 1, ia.data(), 2, ib.data(), 2, 0, ic.data(), 2,
                        nullptr);
  EXPECT_EQ(ic, (std::vector<int32_t>{17, 23, 39, 53}));
}

// ---- Operators with constant weights (the PrepareFn packing path) ----

// Runs one node whose inputs listed in `constant` are initializers (so the
// kernel may prepack them) and the rest are fed.
absl::StatusOr<std::vector<Value>> RunWithConstants(const std::string& op, int opset,
                                                    std::vector<Tensor> inputs,
                                                    std::vector<bool> constant,
                                                    std::vector<Attribute> attrs) {
  Graph g;
  g.name = "gemm_test";
  Node node;
  node.op_type = op;
  node.opset = opset;
  node.attributes = std::move(attrs);
  std::vector<Value> fed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = absl::StrCat("in", i);
    node.inputs.push_back(name);
    if (constant[i]) {
      g.initializers[name] = inputs[i];
    } else {
      ValueInfo vi;
      vi.name = name;
      g.inputs.push_back(vi);
      fed.push_back(Value::FromTensor(inputs[i]));
    }
  }
  node.outputs.push_back("out0");
  ValueInfo out;
  out.name = "out0";
  g.outputs.push_back(out);
  g.nodes.push_back(node);
  auto plan = BuildPlan(g);
  if (!plan.ok()) return plan.status();
  ExecutionContext exec;
  return ExecutePlan(**plan, std::move(fed), exec);
}

void ExpectSameWithConstants(const std::string& op, int opset, const std::vector<Tensor>& inputs,
                             const std::vector<bool>& constant, std::vector<Attribute> attrs,
                             float tol) {
  auto fed = RunWithConstants(op, opset, inputs, std::vector<bool>(inputs.size(), false), attrs);
  ASSERT_TRUE(fed.ok()) << fed.status();
  auto prepacked = RunWithConstants(op, opset, inputs, constant, attrs);
  ASSERT_TRUE(prepacked.ok()) << prepacked.status();
  const Tensor& x = fed->at(0).tensor;
  const Tensor& y = prepacked->at(0).tensor;
  ASSERT_EQ(x.shape(), y.shape());
  for (int64_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(x.data<float>()[i], y.data<float>()[i], tol) << op << " at " << i;
  }
}

TEST(PrepackedWeightsTest, GemmTransBWithBias) {
  using testing::AttrFloat;
  using testing::AttrInt;
  using testing::T_;
  for (int64_t m : {1, 3, 40}) {
    const Tensor a = T_<float>({m, 33}, Pseudo(m * 33, 1));
    const Tensor w = T_<float>({17, 33}, Pseudo(17 * 33, 2));
    const Tensor bias = T_<float>({17}, Pseudo(17, 3));
    ExpectSameWithConstants("Gemm", 13, {a, w, bias}, {false, true, true},
                            {AttrInt("transB", 1), AttrFloat("alpha", 0.5f)}, 1e-5f);
    ExpectSameWithConstants("Gemm", 13, {a, w, bias}, {false, true, true},
                            {AttrInt("transB", 1), AttrFloat("beta", 0.0f)}, 1e-5f);
  }
  // The constant operand changes shape with transB = 0.
  const Tensor a = T_<float>({5, 33}, Pseudo(5 * 33, 4));
  const Tensor w = T_<float>({33, 70}, Pseudo(33 * 70, 5));
  ExpectSameWithConstants("Gemm", 13, {a, w}, {false, true}, {}, 1e-5f);
}

TEST(PrepackedWeightsTest, MatMulWithConstantRightOperand) {
  using testing::T_;
  // 2-D and batched left operands against a 2-D constant.
  ExpectSameWithConstants("MatMul", 13,
                          {T_<float>({7, 20}, Pseudo(140, 1)), T_<float>({20, 45}, Pseudo(900, 2))},
                          {false, true}, {}, 1e-5f);
  ExpectSameWithConstants(
      "MatMul", 13,
      {T_<float>({2, 3, 20}, Pseudo(120, 3)), T_<float>({20, 45}, Pseudo(900, 4))},
      {false, true}, {}, 1e-5f);
  ExpectSameWithConstants("MatMul", 13,
                          {T_<float>({20}, Pseudo(20, 5)), T_<float>({20, 3}, Pseudo(60, 6))},
                          {false, true}, {}, 1e-5f);
  // A constant batched right operand is not prepacked but still works.
  ExpectSameWithConstants(
      "MatMul", 13,
      {T_<float>({2, 3, 20}, Pseudo(120, 7)), T_<float>({2, 20, 4}, Pseudo(160, 8))},
      {false, true}, {}, 1e-5f);
}

TEST(PrepackedWeightsTest, ConvWithConstantWeights) {
  using testing::AttrInt;
  using testing::AttrInts;
  using testing::T_;
  // 1x1 (direct), 3x3 padded and strided, grouped, 1-D.
  const Tensor x = T_<float>({2, 4, 7, 9}, Pseudo(2 * 4 * 63, 1));
  const Tensor w1 = T_<float>({6, 4, 1, 1}, Pseudo(24, 2));
  const Tensor w3 = T_<float>({6, 4, 3, 3}, Pseudo(216, 3));
  const Tensor wg = T_<float>({6, 2, 3, 3}, Pseudo(108, 4));
  const Tensor bias = T_<float>({6}, Pseudo(6, 5));
  ExpectSameWithConstants("Conv", 11, {x, w1, bias}, {false, true, true}, {}, 1e-5f);
  ExpectSameWithConstants("Conv", 11, {x, w3, bias}, {false, true, true},
                          {AttrInts("pads", {1, 1, 1, 1}), AttrInts("strides", {2, 1})}, 1e-5f);
  ExpectSameWithConstants("Conv", 11, {x, wg}, {false, true}, {AttrInt("group", 2)}, 1e-5f);
  const Tensor x1 = T_<float>({3, 5, 11}, Pseudo(165, 6));
  const Tensor wl = T_<float>({8, 5, 3}, Pseudo(120, 7));
  ExpectSameWithConstants("Conv", 11, {x1, wl}, {false, true}, {AttrInts("dilations", {2})},
                          1e-5f);
}

TEST(PrepackedWeightsTest, ConvTransposeWithConstantWeights) {
  using testing::AttrInts;
  using testing::T_;
  const Tensor x = T_<float>({2, 4, 5, 6}, Pseudo(240, 1));
  const Tensor w = T_<float>({4, 3, 3, 3}, Pseudo(108, 2));
  ExpectSameWithConstants("ConvTranspose", 11, {x, w}, {false, true},
                          {AttrInts("strides", {2, 2})}, 1e-5f);
}

}  // namespace
}  // namespace hepml::ops
