// ai.hepml FusedGemm and FusedConv against the unfused operators.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace hepml::ops
