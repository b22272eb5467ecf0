// ai.hepml FusedGemm, FusedConv and EdgeFeatures against the unfused operators.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "ops/op_registry.h"
#include "ops/op_test_util.h"
#include "runtime/executor.h"

namespace hepml::ops {
namespace {

using namespace ::hepml::ops::testing;  // NOLINT

Tensor Rand(Shape shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  Tensor t = Tensor::Empty(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.size(); ++i) t.mutable_data<float>()[i] = d(rng);
  return t;
}

// The standalone activation `op` with `attrs` (and Clip's bound inputs).
Tensor Activate(const std::string& op, const Tensor& x, std::vector<Attribute> attrs, std::vector<Tensor> extra = {}) {
  std::vector<Tensor> in = {x};
  for (Tensor& t : extra) in.push_back(t);
  auto out = RunOp(op, op == "Gelu" ? 20 : 17, in, std::move(attrs));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? (*out)[0] : Tensor();
}

void ExpectNear(const Tensor& a, const Tensor& b, float tol) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], tol) << i;
}

absl::StatusOr<Tensor> Fused(const std::string& op, std::vector<Tensor> in, std::vector<Attribute> attrs) {
  OpSpec spec{op, 1, "ai.hepml", std::move(attrs)};
  std::vector<Value> values;
  for (Tensor& t : in) values.push_back(Value::FromTensor(t));
  auto out = RunOpValues(spec, std::move(values));
  if (!out.ok()) return out.status();
  return (*out)[0].tensor;
}

// FusedConv(x, W, B) with W and B initializers of the graph, as in a
// model, so that the prepare step packs them.
absl::StatusOr<Tensor> FusedConvWithConstantWeights(const Tensor& x, const Tensor& w, const Tensor& b,
                                                    std::vector<Attribute> attrs) {
  Graph g;
  g.name = "fused_test";
  Node node;
  node.op_type = "FusedConv";
  node.domain = "ai.hepml";
  node.opset = 1;
  node.attributes = std::move(attrs);
  node.inputs = {"x", "w", "b"};
  node.outputs = {"y"};
  g.initializers["w"] = w;
  g.initializers["b"] = b;
  ValueInfo in, out;
  in.name = "x";
  out.name = "y";
  g.inputs.push_back(in);
  g.outputs.push_back(out);
  g.nodes.push_back(node);
  auto plan = BuildPlan(g);
  if (!plan.ok()) return plan.status();
  ExecutionContext exec;
  auto y = ExecutePlan(**plan, {Value::FromTensor(x)}, exec);
  if (!y.ok()) return y.status();
  return (*y)[0].tensor;
}

struct Case {
  std::string op;
  std::vector<Attribute> op_attrs;     // the standalone operator's
  std::vector<Attribute> fused_attrs;  // the fused node's activation attributes
  std::vector<Tensor> extra;           // Clip's bounds
};

std::vector<Case> Cases() {
  return {
      {"Relu", {}, {AttrString("activation", "Relu")}, {}},
      {"LeakyRelu", {AttrFloat("alpha", 0.3f)}, {AttrString("activation", "LeakyRelu"), AttrFloat("activation_alpha", 0.3f)}, {}},
      {"Sigmoid", {}, {AttrString("activation", "Sigmoid")}, {}},
      {"Tanh", {}, {AttrString("activation", "Tanh")}, {}},
      {"Gelu", {}, {AttrString("activation", "Gelu")}, {}},
      {"Softplus", {}, {AttrString("activation", "Softplus")}, {}},
      {"Clip", {}, {AttrString("activation", "Clip"), AttrFloat("activation_alpha", -0.5f), AttrFloat("activation_beta", 1.f)},
       {Tensor::Scalar<float>(-0.5f), Tensor::Scalar<float>(1.f)}},
  };
}

TEST(FusedGemmTest, EqualsGemmThenActivation) {
  const Tensor a = Rand({3, 5}, 1), b = Rand({4, 5}, 2), c = Rand({4}, 3);
  auto gemm = RunOp("Gemm", 13, {a, b, c}, {AttrInt("transB", 1), AttrFloat("alpha", 0.5f)});
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  for (const Case& k : Cases()) {
    std::vector<Attribute> attrs = k.fused_attrs;
    attrs.push_back(AttrInt("transB", 1));
    attrs.push_back(AttrFloat("alpha", 0.5f));
    auto fused = Fused("FusedGemm", {a, b, c}, attrs);
    ASSERT_TRUE(fused.ok()) << k.op << ": " << fused.status();
    ExpectNear(*fused, Activate(k.op, (*gemm)[0], k.op_attrs, k.extra), 1e-6f);
  }
}

TEST(FusedGemmTest, FlattensLeadingDimsOfAAsMatMulDoes) {
  const Tensor a = Rand({2, 3, 5}, 1), b = Rand({5, 4}, 2), c = Rand({4}, 3);
  auto mm = RunOp("MatMul", 13, {a, b});
  ASSERT_TRUE(mm.ok());
  auto ref = RunOp("Add", 14, {(*mm)[0], c});
  ASSERT_TRUE(ref.ok());
  auto fused = Fused("FusedGemm", {a, b, c}, {});
  ASSERT_TRUE(fused.ok()) << fused.status();
  EXPECT_EQ(fused->shape(), Shape({2, 3, 4}));
  ExpectNear(*fused, (*ref)[0], 1e-5f);
  // Not with transA: A must then be 2-D.
  EXPECT_FALSE(Fused("FusedGemm", {a, b, c}, {AttrInt("transA", 1)}).ok());
}

TEST(FusedConvTest, EqualsConvThenActivation) {
  // Each way Conv computes: patches (stride 2), shifted views of a padded
  // input (stride 1), and a batch of pointwise products as one GEMM; each
  // applies the activation in its own epilogue.
  struct Geometry {
    Shape x, w;
    std::vector<Attribute> attrs;
  };
  const Geometry geometries[] = {
      {{2, 3, 6, 6}, {4, 3, 3, 3}, {AttrInts("pads", {1, 1, 1, 1}), AttrInts("strides", {2, 2})}},
      {{2, 3, 6, 5}, {4, 3, 3, 3}, {AttrInts("pads", {1, 1, 1, 1})}},
      {{5, 3, 1, 7}, {4, 3, 1, 1}, {}},
      {{2, 3, 16, 20}, {4, 3, 1, 1}, {}},  // 320 positions: the direct kernel, image by image
  };
  for (const Geometry& g : geometries) {
    const Tensor x = Rand(g.x, 1), w = Rand(g.w, 2), b = Rand({4}, 3);
    auto conv = RunOp("Conv", 11, {x, w, b}, g.attrs);
    ASSERT_TRUE(conv.ok()) << conv.status();
    for (const Case& k : Cases()) {
      std::vector<Attribute> attrs = g.attrs;
      for (const Attribute& a : k.fused_attrs) attrs.push_back(a);
      auto fused = Fused("FusedConv", {x, w, b}, attrs);
      ASSERT_TRUE(fused.ok()) << k.op << ": " << fused.status();
      const Tensor want = Activate(k.op, (*conv)[0], k.op_attrs, k.extra);
      ExpectNear(*fused, want, 1e-6f);
      // Constant weights and bias, as in a model: stride-1 2-D windows take
      // the direct kernel, whose epilogue applies each activation.
      auto prepared = FusedConvWithConstantWeights(x, w, b, attrs);
      ASSERT_TRUE(prepared.ok()) << k.op << ": " << prepared.status();
      ExpectNear(*prepared, want, 1e-5f);
    }
  }
}

// Direct loops: y = pool(act(conv3x3(x, pads 1) + b)), pool MaxPool 2x2/2.
std::vector<float> NaiveConvPool(const Tensor& x, const Tensor& w, const Tensor& b, bool relu, bool pool) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), m = w.dim(0);
  std::vector<float> full(n * m * h * wd);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < m; ++r)
      for (int64_t oy = 0; oy < h; ++oy)
        for (int64_t ox = 0; ox < wd; ++ox) {
          double acc = b.data<float>()[r];
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 3; ++kx) {
                const int64_t iy = oy + ky - 1, ix = ox + kx - 1;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += static_cast<double>(x.data<float>()[((i * c + ch) * h + iy) * wd + ix]) *
                       w.data<float>()[((r * c + ch) * 3 + ky) * 3 + kx];
              }
          const float v = static_cast<float>(acc);
          full[((i * m + r) * h + oy) * wd + ox] = relu && !(v > 0) ? 0.0f : v;
        }
  if (!pool) return full;
  const int64_t ph = h / 2, pw = wd / 2;
  std::vector<float> out(n * m * ph * pw);
  for (int64_t p = 0; p < n * m; ++p)
    for (int64_t oy = 0; oy < ph; ++oy)
      for (int64_t ox = 0; ox < pw; ++ox) {
        const float* f = full.data() + p * h * wd + 2 * oy * wd + 2 * ox;
        out[(p * ph + oy) * pw + ox] = std::max(std::max(f[0], f[1]), std::max(f[wd], f[wd + 1]));
      }
  return out;
}

// 3x3 "same" convolutions with constant weights over 8 or more input
// channels take the Winograd F(2x2, 3x3) kernel, with or without the
// following MaxPool 2x2/2 fused (pool = "MaxPool2x2"); fewer channels take
// the direct kernel and pool a scratch copy. Channel counts off the kernel's
// tiles of 8, odd and one-pixel-wide images (partial 2x2 blocks, tile rows
// shorter than a vector), batch 1 and 3, and calo_cnn's own layers.
TEST(FusedConvTest, WinogradAndPoolingMatchDirectLoops) {
  struct Case {
    int64_t n, c, h, w, m;
  };
  const Case cases[] = {
      {3, 16, 16, 16, 32}, {3, 32, 8, 8, 64}, {1, 8, 16, 16, 16}, {1, 17, 7, 5, 9},
      {3, 9, 1, 1, 3},     {3, 11, 2, 3, 13}, {1, 12, 3, 20, 8},  {2, 20, 33, 9, 7},
      {1, 1, 32, 32, 16},  {3, 3, 5, 6, 10},  {1, 64, 4, 4, 40},
  };
  for (const Case& k : cases) {
    const Tensor x = Rand({k.n, k.c, k.h, k.w}, 11), w = Rand({k.m, k.c, 3, 3}, 12), b = Rand({k.m}, 13);
    for (bool relu : {false, true})
      for (bool pool : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "n=" << k.n << " c=" << k.c << " h=" << k.h << " w=" << k.w
                                        << " m=" << k.m << " relu=" << relu << " pool=" << pool);
        std::vector<Attribute> attrs = {AttrInts("pads", {1, 1, 1, 1})};
        if (relu) attrs.push_back(AttrString("activation", "Relu"));
        if (pool) attrs.push_back(AttrString("pool", "MaxPool2x2"));
        const std::vector<float> want = NaiveConvPool(x, w, b, relu, pool);
        const Shape want_shape = pool ? Shape{k.n, k.m, k.h / 2, k.w / 2} : Shape{k.n, k.m, k.h, k.w};
        auto prepared = FusedConvWithConstantWeights(x, w, b, attrs);
        ASSERT_TRUE(prepared.ok()) << prepared.status();
        ASSERT_EQ(prepared->shape(), want_shape);
        // Winograd rounds differently from the direct sum: a few ulps of
        // sums of up to 64 x 9 products of magnitude 4.
        for (int64_t i = 0; i < prepared->size(); ++i) {
          ASSERT_NEAR(prepared->data<float>()[i], want[i], 2e-4f * (1.0f + std::fabs(want[i]))) << "at " << i;
        }
        // Weights as run-time inputs: the GEMM paths, pooled from scratch.
        auto runtime = Fused("FusedConv", {x, w, b}, attrs);
        ASSERT_TRUE(runtime.ok()) << runtime.status();
        ASSERT_EQ(runtime->shape(), want_shape);
        for (int64_t i = 0; i < runtime->size(); ++i) {
          ASSERT_NEAR(runtime->data<float>()[i], want[i], 2e-4f * (1.0f + std::fabs(want[i]))) << "at " << i;
        }
      }
  }
}

// Pooling after activations the Winograd kernel does not apply (here
// Sigmoid), in double, and an unknown pool, through the other paths.
TEST(FusedConvTest, PoolAfterOtherActivationsAndTypes) {
  const Tensor x = Rand({2, 9, 6, 7}, 21), w = Rand({5, 9, 3, 3}, 22), b = Rand({5}, 23);
  const std::vector<Attribute> conv_attrs = {AttrInts("pads", {1, 1, 1, 1})};
  auto conv = RunOp("Conv", 11, {x, w, b}, conv_attrs);
  ASSERT_TRUE(conv.ok()) << conv.status();
  const Tensor act = Activate("Sigmoid", (*conv)[0], {});
  auto pooled = RunOp("MaxPool", 12, {act}, {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
  ASSERT_TRUE(pooled.ok()) << pooled.status();
  std::vector<Attribute> attrs = conv_attrs;
  attrs.push_back(AttrString("activation", "Sigmoid"));
  attrs.push_back(AttrString("pool", "MaxPool2x2"));
  auto fused = FusedConvWithConstantWeights(x, w, b, attrs);
  ASSERT_TRUE(fused.ok()) << fused.status();
  ExpectNear(*fused, (*pooled)[0], 1e-6f);

  auto as_double = [](const Tensor& t) {
    Tensor d = Tensor::Empty(DType::kFloat64, t.shape());
    for (int64_t i = 0; i < t.size(); ++i) d.mutable_data<double>()[i] = t.data<float>()[i];
    return d;
  };
  auto fused_double = Fused("FusedConv", {as_double(x), as_double(w), as_double(b)}, attrs);
  ASSERT_TRUE(fused_double.ok()) << fused_double.status();
  ASSERT_EQ(fused_double->shape(), (*pooled)[0].shape());
  for (int64_t i = 0; i < fused_double->size(); ++i) {
    EXPECT_NEAR(fused_double->data<double>()[i], (*pooled)[0].data<float>()[i], 1e-5) << i;
  }

  auto bad = Fused("FusedConv", {x, w, b}, {AttrString("pool", "AveragePool2x2")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("AveragePool2x2"), std::string::npos);
  auto one_d = Fused("FusedConv", {Rand({1, 2, 8}, 1), Rand({3, 2, 3}, 2)}, {AttrString("pool", "MaxPool2x2")});
  ASSERT_FALSE(one_d.ok());
  EXPECT_NE(one_d.status().message().find("2-D"), std::string::npos);
}

TEST(FusedConvTest, UnknownActivationIsAnError) {
  auto fused = Fused("FusedConv", {Rand({1, 1, 3, 3}, 1), Rand({1, 1, 1, 1}, 2)}, {AttrString("activation", "Swish")});
  ASSERT_FALSE(fused.ok());
  EXPECT_NE(fused.status().message().find("Swish"), std::string::npos);
}

// Conv's (and FusedConv's) shape function keeps symbolic dims where the
// window preserves the size.
TEST(FusedConvTest, InferKeepsSymbolicDimsThatTheWindowPreserves) {
  const OpDef* def = OpRegistry::Global().Find("ai.hepml", "FusedConv", 1);
  ASSERT_NE(def, nullptr);
  Node node;
  node.op_type = "FusedConv";
  node.domain = "ai.hepml";
  node.opset = 1;
  node.attributes = {AttrInts("pads", {1, 0, 1, 0}), AttrInts("strides", {1, 2})};  // h: 1 + 1
  const TypeInfo x = TypeInfo::Tensor(DType::kFloat32, {Dim{-1, "batch"}, Dim{3, ""}, Dim{-1, "h"}, Dim{-1, "w"}});
  const TypeInfo w = TypeInfo::Tensor(DType::kFloat32, {Dim{8, ""}, Dim{3, ""}, Dim{3, ""}, Dim{1, ""}});
  InferContext ctx{node, 1, {x, w}, {nullptr, nullptr}};
  std::vector<TypeInfo> out(1);
  ASSERT_TRUE(def->infer(ctx, out).ok());
  // h: 3 tall with pads 1 + 1 and stride 1 keeps h; w: stride 2 does not.
  EXPECT_EQ(out[0].ToString(), "float32[batch,8,h,?]");
}

// EdgeFeatures(X, Idx) against its definition, element by element: odd
// sizes, negative indices (wrapped), one neighbour and all of them.
TEST(EdgeFeaturesTest, CenterThenNeighbourMinusCenter) {
  const int64_t n = 2, c = 3, p = 7;
  for (int64_t k : {1, 7}) {
    SCOPED_TRACE(k);
    Tensor x = Rand({n, c, p}, 5);
    std::vector<int64_t> idx(n * p * k);
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>((i * 5 + 3) % (2 * p)) - p;
    auto y = Fused("EdgeFeatures", {x, T_<int64_t>({n, p, k}, idx)}, {});
    ASSERT_TRUE(y.ok()) << y.status();
    ASSERT_EQ(y->shape(), Shape({n, 2 * c, p, k}));
    const float* px = x.data<float>();
    for (int64_t s = 0; s < n; ++s)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t q = 0; q < p; ++q)
          for (int64_t j = 0; j < k; ++j) {
            int64_t m = idx[(s * p + q) * k + j];
            if (m < 0) m += p;
            const float center = px[(s * c + ch) * p + q];
            EXPECT_EQ(y->data<float>()[((s * 2 * c + ch) * p + q) * k + j], center);
            EXPECT_EQ(y->data<float>()[((s * 2 * c + c + ch) * p + q) * k + j], px[(s * c + ch) * p + m] - center);
          }
  }
}

TEST(EdgeFeaturesTest, BadInputsAreErrorsNamingTheProblem) {
  Tensor x = Rand({2, 3, 4}, 6);
  auto message = [](const absl::StatusOr<Tensor>& r) { return r.ok() ? std::string() : std::string(r.status().message()); };
  // Idx rows must be X's points.
  auto rows = Fused("EdgeFeatures", {x, T_<int64_t>({2, 5, 1}, std::vector<int64_t>(10, 0))}, {});
  EXPECT_NE(message(rows).find("Idx must be an int64 tensor [N, P, K] = [2, 4, K]"), std::string::npos) << message(rows);
  auto rank = Fused("EdgeFeatures", {Rand({2, 12}, 6), T_<int64_t>({2, 4, 1}, std::vector<int64_t>(8, 0))}, {});
  EXPECT_NE(message(rank).find("X must be a float32 tensor [N, C, P]"), std::string::npos) << message(rank);
  auto type = Fused("EdgeFeatures", {x, T_<int32_t>({2, 4, 1}, std::vector<int32_t>(8, 0))}, {});
  EXPECT_FALSE(type.ok());
  std::vector<int64_t> idx(8, 0);
  idx[5] = -5;
  auto range = Fused("EdgeFeatures", {x, T_<int64_t>({2, 4, 1}, idx)}, {});
  EXPECT_NE(message(range).find("neighbour index -5 out of range [-4, 4)"), std::string::npos) << message(range);
}

// EdgeGatherAdd(H, Idx) against its definition, with and without Relu.
TEST(EdgeGatherAddTest, SelfTermPlusNeighbourTermThenActivation) {
  const int64_t n = 2, m = 3, p = 5, k = 3;
  Tensor h = Rand({n, 2 * m, p}, 8);
  std::vector<int64_t> idx(n * p * k);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>((i * 7 + 1) % (2 * p)) - p;
  for (bool relu : {false, true}) {
    SCOPED_TRACE(relu);
    std::vector<Attribute> attrs;
    if (relu) attrs.push_back(AttrString("activation", "Relu"));
    auto y = Fused("EdgeGatherAdd", {h, T_<int64_t>({n, p, k}, idx)}, attrs);
    ASSERT_TRUE(y.ok()) << y.status();
    ASSERT_EQ(y->shape(), Shape({n, m, p, k}));
    const float* ph = h.data<float>();
    for (int64_t s = 0; s < n; ++s)
      for (int64_t o = 0; o < m; ++o)
        for (int64_t q = 0; q < p; ++q)
          for (int64_t j = 0; j < k; ++j) {
            int64_t at = idx[(s * p + q) * k + j];
            if (at < 0) at += p;
            float want = ph[(s * 2 * m + o) * p + q] + ph[(s * 2 * m + m + o) * p + at];
            if (relu) want = std::max(want, 0.0f);
            EXPECT_EQ(y->data<float>()[((s * m + o) * p + q) * k + j], want);
          }
  }
  // An odd channel count, mismatched points and an index out of range are errors.
  EXPECT_FALSE(Fused("EdgeGatherAdd", {Rand({2, 5, 5}, 1), T_<int64_t>({n, p, k}, idx)}, {}).ok());
  EXPECT_FALSE(Fused("EdgeGatherAdd", {Rand({2, 6, 4}, 1), T_<int64_t>({n, p, k}, idx)}, {}).ok());
  std::vector<int64_t> bad = idx;
  bad[3] = p;
  auto range = Fused("EdgeGatherAdd", {h, T_<int64_t>({n, p, k}, bad)}, {});
  ASSERT_FALSE(range.ok());
  EXPECT_NE(std::string(range.status().message()).find("out of range"), std::string::npos) << range.status();
}

}  // namespace
}  // namespace hepml::ops
