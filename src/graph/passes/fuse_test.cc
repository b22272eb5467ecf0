// fuse-gelu, fuse-layernorm, fuse-gemm-activation, fuse-conv-maxpool,
// fuse-edge-features, factor-edge-conv, pointwise-conv-to-gemm:
// input graph, expected graph, and the same outputs through the executor.
#include <gtest/gtest.h>

#include <cmath>

#include "graph/passes/pass.h"
#include "graph/passes/pass_test_util.h"

namespace hepml::passes {
namespace {

using namespace ::hepml::passes::testing;  // NOLINT

Tensor F(float v) { return Tensor::Scalar<float>(v); }

// ---- fuse-gelu ----

// What PyTorch 1.13 exports for nn.GELU() at opset 17.
Graph TorchGelu() {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "8"})};
  g.outputs = {VI("y")};
  g.initializers["sqrt2"] = F(1.4142135381698608f);
  g.initializers["one"] = F(1.f);
  g.initializers["half"] = F(0.5f);
  g.nodes = {MakeNode("Div", {"x", "sqrt2"}, {"d"}), MakeNode("Erf", {"d"}, {"e"}),
             MakeNode("Add", {"e", "one"}, {"a"}), MakeNode("Mul", {"x", "a"}, {"m"}),
             MakeNode("Mul", {"m", "half"}, {"y"})};
  return g;
}

TEST(FuseGeluTest, TorchPatternBecomesGeluAtOpset20) {
  Graph g = TorchGelu();
  Graph before = g;
  ASSERT_TRUE(*FuseGelu(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Gelu"}));
  EXPECT_EQ(g.nodes[0].opset, 20);
  EXPECT_EQ(g.nodes[0].inputs, std::vector<std::string>({"x"}));
  EXPECT_EQ(g.nodes[0].outputs, std::vector<std::string>({"y"}));
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({4, 8}, 1, -4.f, 4.f)}}), 1e-6);
}

TEST(FuseGeluTest, HalfFirstAndMulByInverseSqrt2) {
  Graph g;
  g.inputs = {TensorVI("x", {"8"})};
  g.outputs = {VI("y")};
  g.initializers["isqrt2"] = F(0.70710678f);
  g.initializers["one"] = F(1.f);
  g.initializers["half"] = F(0.5f);
  g.nodes = {MakeNode("Mul", {"half", "x"}, {"h"}), MakeNode("Mul", {"isqrt2", "x"}, {"d"}),
             MakeNode("Erf", {"d"}, {"e"}), MakeNode("Add", {"one", "e"}, {"a"}), MakeNode("Mul", {"a", "h"}, {"y"})};
  Graph before = g;
  ASSERT_TRUE(*FuseGelu(g));
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"Gelu"}));
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({8}, 2, -4.f, 4.f)}}), 1e-6);
}

TEST(FuseGeluTest, LeavesWrongConstantsAndReadIntermediates) {
  Graph g = TorchGelu();
  g.initializers["half"] = F(0.25f);
  EXPECT_FALSE(*FuseGelu(g));
  Graph h = TorchGelu();
  h.outputs.push_back(VI("e"));  // the Erf output is part of the interface
  EXPECT_FALSE(*FuseGelu(h));
  EXPECT_EQ(h.nodes.size(), 5u);
}

// ---- fuse-layernorm ----

// nn.LayerNorm(16) as PyTorch exports it below opset 17 (here opset 13).
Graph DecomposedLayerNorm(bool pow, bool affine) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "4", "16"})};
  g.outputs = {VI("y")};
  g.initializers["two"] = F(2.f);
  g.initializers["eps"] = F(1e-5f);
  g.initializers["gamma"] = Random({16}, 7, 0.5f, 1.5f);
  g.initializers["beta"] = Random({16}, 8);
  std::vector<Attribute> axes = {IntsAttr("axes", {-1})};
  g.nodes = {MakeNode("ReduceMean", {"x"}, {"m"}, axes, 13), MakeNode("Sub", {"x", "m"}, {"d"}, {}, 13),
             pow ? MakeNode("Pow", {"d", "two"}, {"p"}, {}, 13) : MakeNode("Mul", {"d", "d"}, {"p"}, {}, 13),
             MakeNode("ReduceMean", {"p"}, {"v"}, axes, 13), MakeNode("Add", {"v", "eps"}, {"ve"}, {}, 13),
             MakeNode("Sqrt", {"ve"}, {"s"}, {}, 13), MakeNode("Div", {"d", "s"}, {affine ? "n" : "y"}, {}, 13)};
  if (affine) {
    g.nodes.push_back(MakeNode("Mul", {"n", "gamma"}, {"ng"}, {}, 13));
    g.nodes.push_back(MakeNode("Add", {"ng", "beta"}, {"y"}, {}, 13));
  }
  return g;
}

TEST(FuseLayerNormTest, DecomposedPatternBecomesLayerNormalization) {
  for (bool pow : {true, false}) {
    Graph g = DecomposedLayerNorm(pow, true);
    Graph before = g;
    ASSERT_TRUE(*FuseLayerNorm(g)) << pow;
    ASSERT_EQ(OpTypes(g), std::vector<std::string>({"LayerNormalization"}));
    const Node& ln = g.nodes[0];
    EXPECT_EQ(ln.opset, 17);  // the model imports 13; the table's row starts at 17
    EXPECT_EQ(ln.inputs, std::vector<std::string>({"x", "gamma", "beta"}));
    EXPECT_EQ(ln.GetInt("axis", 0), -1);
    EXPECT_FLOAT_EQ(ln.GetFloat("epsilon", 0), 1e-5f);
    EXPECT_LT(OutputDiff(before, g, {{"x", Random({2, 4, 16}, 9, -3.f, 3.f)}}), 1e-5);
  }
}

TEST(FuseLayerNormTest, WithoutScaleAndWithAxesInputAtOpset18) {
  Graph g = DecomposedLayerNorm(true, false);
  g.initializers["axes"] = Ints({-1});
  for (Node& n : g.nodes) {
    n.opset = 18;
    if (n.op_type == "ReduceMean") {
      n.attributes.clear();
      n.inputs.push_back("axes");
    }
  }
  Graph before = g;
  ASSERT_TRUE(*FuseLayerNorm(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"LayerNormalization"}));
  EXPECT_EQ(g.nodes[0].opset, 18);
  EXPECT_EQ(g.nodes[0].inputs.size(), 2u);  // a scale of ones, no bias
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({2, 4, 16}, 9, -3.f, 3.f)}}), 1e-5);
}

TEST(FuseLayerNormTest, LeavesNonTrailingAxesAndSharedIntermediates) {
  Graph g = DecomposedLayerNorm(true, true);
  for (Node& n : g.nodes)
    if (n.op_type == "ReduceMean") n.attributes = {IntsAttr("axes", {1})};  // not the last dim
  EXPECT_FALSE(*FuseLayerNorm(g));
  Graph h = DecomposedLayerNorm(true, true);
  h.outputs.push_back(VI("v"));
  EXPECT_FALSE(*FuseLayerNorm(h));
  EXPECT_EQ(h.nodes.size(), 9u);
}

// ---- fuse-gemm-activation ----

TEST(FuseGemmActivationTest, MatMulAddBecomesGemmOrFusedGemmByRank) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "6"}), TensorVI("t", {"batch", "5", "6"})};
  g.outputs = {VI("y"), VI("z")};
  g.initializers["w"] = Random({6, 4}, 1);
  g.initializers["b"] = Random({4}, 2);
  g.nodes = {MakeNode("MatMul", {"x", "w"}, {"xm"}), MakeNode("Add", {"xm", "b"}, {"y"}),
             MakeNode("MatMul", {"t", "w"}, {"tm"}), MakeNode("Add", {"b", "tm"}, {"z"})};
  Graph before = g;
  ASSERT_TRUE(*FuseGemmActivation(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Gemm", "FusedGemm"}));
  EXPECT_EQ(g.nodes[0].inputs, std::vector<std::string>({"x", "w", "b"}));
  EXPECT_EQ(g.nodes[1].domain, "ai.hepml");
  EXPECT_EQ(g.nodes[1].outputs[0], "z");
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({3, 6}, 3)}, {"t", Random({3, 5, 6}, 4)}}), 1e-5);
}

TEST(FuseGemmActivationTest, LayersWithActivationsBecomeFusedNodes) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "6"}), TensorVI("img", {"1", "2", "5", "5"})};
  g.outputs = {VI("r"), VI("l"), VI("s"), VI("c"), VI("ge"), VI("th"), VI("sp")};
  g.initializers["w"] = Random({4, 6}, 1);
  g.initializers["b"] = Random({4}, 2);
  g.initializers["k"] = Random({3, 2, 3, 3}, 3);
  g.initializers["lo"] = F(-0.25f);
  g.initializers["hi"] = F(0.5f);
  std::vector<Attribute> tb = {IntAttr("transB", 1)};
  g.nodes = {MakeNode("Gemm", {"x", "w", "b"}, {"g1"}, tb), MakeNode("Relu", {"g1"}, {"r"}),
             MakeNode("Gemm", {"x", "w", "b"}, {"g2"}, tb), MakeNode("LeakyRelu", {"g2"}, {"l"}, {FloatAttr("alpha", 0.2f)}),
             MakeNode("Conv", {"img", "k"}, {"c1"}, {IntsAttr("pads", {1, 1, 1, 1})}), MakeNode("Sigmoid", {"c1"}, {"s"}),
             MakeNode("Conv", {"img", "k"}, {"c2"}), MakeNode("Clip", {"c2", "lo", "hi"}, {"c"}),
             MakeNode("Gemm", {"x", "w"}, {"g3"}, tb), MakeNode("Gelu", {"g3"}, {"ge"}, {}, 20),
             MakeNode("Gemm", {"x", "w", "b"}, {"g4"}, tb), MakeNode("Tanh", {"g4"}, {"th"}),
             MakeNode("Gemm", {"x", "w", "b"}, {"g5"}, tb), MakeNode("Softplus", {"g5"}, {"sp"})};
  Graph before = g;
  ASSERT_TRUE(*FuseGemmActivation(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"FusedGemm", "FusedGemm", "FusedConv", "FusedConv", "FusedGemm",
                                                  "FusedGemm", "FusedGemm"}));
  EXPECT_EQ(g.nodes[6].GetString("activation"), "Softplus");
  EXPECT_EQ(g.nodes[1].GetString("activation"), "LeakyRelu");
  EXPECT_FLOAT_EQ(g.nodes[1].GetFloat("activation_alpha", 0), 0.2f);
  EXPECT_EQ(g.nodes[3].GetString("activation"), "Clip");
  EXPECT_FLOAT_EQ(g.nodes[3].GetFloat("activation_beta", 0), 0.5f);
  EXPECT_EQ(g.nodes[4].GetString("activation"), "Gelu");
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({3, 6}, 4, -2.f, 2.f)}, {"img", Random({1, 2, 5, 5}, 5)}}), 1e-5);
}

TEST(FuseGemmActivationTest, MatMulAddThenReluIsOneNode) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "3", "6"})};
  g.outputs = {VI("y")};
  g.initializers["w"] = Random({6, 4}, 1);
  g.initializers["b"] = Random({1, 4}, 2);
  g.nodes = {MakeNode("MatMul", {"x", "w"}, {"m"}), MakeNode("Add", {"m", "b"}, {"a"}), MakeNode("Relu", {"a"}, {"y"})};
  Graph before = g;
  ASSERT_TRUE(*FuseGemmActivation(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"FusedGemm"}));
  EXPECT_EQ(g.nodes[0].GetString("activation"), "Relu");
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({2, 3, 6}, 3)}}), 1e-5);
}

TEST(FuseGemmActivationTest, LeavesPerRowBiasRuntimeWeightsAndSharedOutputs) {
  Graph g;
  g.inputs = {TensorVI("x", {"3", "6"}), TensorVI("w2", {"6", "4"})};
  g.outputs = {VI("y1"), VI("y2"), VI("g"), VI("y3")};
  g.initializers["w"] = Random({6, 4}, 1);
  g.initializers["rows"] = Random({3, 4}, 2);  // varies per row: not Gemm's C of a column bias
  g.initializers["b"] = Random({4}, 3);
  g.nodes = {MakeNode("MatMul", {"x", "w"}, {"m1"}), MakeNode("Add", {"m1", "rows"}, {"y1"}),
             MakeNode("MatMul", {"x", "w2"}, {"m2"}), MakeNode("Add", {"m2", "b"}, {"y2"}),
             MakeNode("Gemm", {"x", "w", "b"}, {"g"}), MakeNode("Relu", {"g"}, {"y3"})};
  EXPECT_FALSE(*FuseGemmActivation(g));
  EXPECT_EQ(g.nodes.size(), 6u);
}

// ---- transpose-gemm-weights ----

TEST(TransposeGemmWeightsTest, ConstantBIsStoredTransposedOnceForAllReaders) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "6"}), TensorVI("w_in", {"4", "6"})};
  g.outputs = {VI("y"), VI("z"), VI("u")};
  g.initializers["w"] = Random({4, 6}, 1);
  g.initializers["b"] = Random({4}, 2);
  std::vector<Attribute> tb = {IntAttr("transB", 1)};
  Node fused = MakeNode("FusedGemm", {"x", "w", "b"}, {"z"}, {IntAttr("transB", 1), StringAttr("activation", "Relu")}, 1);
  fused.domain = "ai.hepml";
  g.nodes = {MakeNode("Gemm", {"x", "w", "b"}, {"y"}, tb), fused,
             MakeNode("Gemm", {"x", "w_in", "b"}, {"u"}, tb)};  // a graph input: the caller's layout
  Graph before = g;
  ASSERT_TRUE(*TransposeGemmWeights(g));
  EXPECT_EQ(g.nodes[0].GetInt("transB", 1), 0);
  EXPECT_EQ(g.nodes[1].GetInt("transB", 1), 0);
  EXPECT_EQ(g.nodes[0].inputs[1], g.nodes[1].inputs[1]);  // one copy
  EXPECT_EQ(g.initializers.at(g.nodes[0].inputs[1]).shape(), Shape({6, 4}));
  EXPECT_EQ(g.nodes[2].GetInt("transB", 0), 1);
  EXPECT_EQ(OutputDiff(before, g, {{"x", Random({3, 6}, 3)}, {"w_in", Random({4, 6}, 4)}}), 0.0);
}

// ---- fuse-conv-maxpool ----

// One calo_cnn stage: Conv (3x3, pads 1) -> Relu -> MaxPool 2x2/2.
Graph ConvReluPool(int64_t c, int64_t m, std::vector<Attribute> pool_attrs) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", std::to_string(c), "9", "10"})};
  g.outputs = {VI("y")};
  g.initializers["w"] = Random({m, c, 3, 3}, 1);
  g.initializers["b"] = Random({m}, 2);
  g.nodes = {MakeNode("Conv", {"x", "w", "b"}, {"conv"}, {IntsAttr("pads", {1, 1, 1, 1})}),
             MakeNode("Relu", {"conv"}, {"act"}), MakeNode("MaxPool", {"act"}, {"y"}, std::move(pool_attrs))};
  return g;
}

std::vector<Attribute> Pool2x2() { return {IntsAttr("kernel_shape", {2, 2}), IntsAttr("strides", {2, 2})}; }

TEST(FuseConvMaxPoolTest, ConvActivationPoolBecomesOnePoolingFusedConv) {
  // 12 input channels take the Winograd kernel, 3 the direct kernel (its
  // output pooled from scratch); odd 9-row images drop their last row.
  for (int64_t c : {12, 3}) {
    Graph g = ConvReluPool(c, 10, Pool2x2());
    Graph before = g;
    ASSERT_TRUE(*FuseGemmActivation(g));
    ASSERT_TRUE(*FuseConvMaxPool(g));
    ASSERT_EQ(OpTypes(g), std::vector<std::string>({"FusedConv"}));
    EXPECT_EQ(g.nodes[0].GetString("activation", ""), "Relu");
    EXPECT_EQ(g.nodes[0].GetString("pool", ""), "MaxPool2x2");
    EXPECT_EQ(g.nodes[0].outputs, std::vector<std::string>({"y"}));
    EXPECT_LT(OutputDiff(before, g, {{"x", Random({3, c, 9, 10}, 3)}}), 1e-4);
    auto y = RunGraph(g, {{"x", Random({3, c, 9, 10}, 3)}});
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_EQ((*y)[0].shape(), Shape({3, 10, 4, 5}));
  }
  // A plain Conv (no activation) becomes a FusedConv that only pools.
  Graph g = ConvReluPool(4, 5, Pool2x2());
  g.nodes.erase(g.nodes.begin() + 1);
  g.nodes[1].inputs = {"conv"};
  Graph before = g;
  ASSERT_TRUE(*FuseConvMaxPool(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"FusedConv"}));
  EXPECT_EQ(g.nodes[0].domain, "ai.hepml");
  EXPECT_FALSE(g.nodes[0].HasAttribute("activation"));
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({2, 4, 9, 10}, 4)}}), 1e-5);
}

TEST(FuseConvMaxPoolTest, LeavesOtherPoolingAndSharedOutputs) {
  const std::vector<std::vector<Attribute>> others = {
      {IntsAttr("kernel_shape", {3, 3}), IntsAttr("strides", {2, 2})},
      {IntsAttr("kernel_shape", {2, 2})},  // stride 1
      {IntsAttr("kernel_shape", {2, 2}), IntsAttr("strides", {2, 2}), IntsAttr("pads", {1, 1, 1, 1})},
      {IntsAttr("kernel_shape", {2, 2}), IntsAttr("strides", {2, 2}), IntAttr("ceil_mode", 1)},
      {IntsAttr("kernel_shape", {2, 2}), IntsAttr("strides", {2, 2}), IntsAttr("dilations", {2, 2})},
  };
  for (const auto& attrs : others) {
    Graph g = ConvReluPool(4, 5, attrs);
    ASSERT_TRUE(*FuseGemmActivation(g));
    EXPECT_FALSE(*FuseConvMaxPool(g));
    EXPECT_EQ(OpTypes(g), std::vector<std::string>({"FusedConv", "MaxPool"}));
  }
  // With the Indices output, or the activation also a graph output.
  Graph with_indices = ConvReluPool(4, 5, Pool2x2());
  with_indices.nodes[2].outputs.push_back("idx");
  with_indices.outputs.push_back(VI("idx"));
  ASSERT_TRUE(*FuseGemmActivation(with_indices));
  EXPECT_FALSE(*FuseConvMaxPool(with_indices));
  Graph shared = ConvReluPool(4, 5, Pool2x2());
  ASSERT_TRUE(*FuseGemmActivation(shared));
  shared.outputs.push_back(VI("act"));
  EXPECT_FALSE(*FuseConvMaxPool(shared));
  // Weights that are a graph input (Conv straight into MaxPool).
  Graph runtime_w = ConvReluPool(4, 5, Pool2x2());
  runtime_w.nodes.erase(runtime_w.nodes.begin() + 1);
  runtime_w.nodes[1].inputs = {"conv"};
  runtime_w.initializers.erase("w");
  runtime_w.inputs.push_back(TensorVI("w", {"5", "4", "3", "3"}));
  EXPECT_FALSE(*FuseConvMaxPool(runtime_w));
  EXPECT_EQ(OpTypes(runtime_w), std::vector<std::string>({"Conv", "MaxPool"}));
}

// ---- fuse-edge-features ----

// An EdgeConv block's features as PyTorch exports them (after
// fold-shape-subgraphs): X [batch, 3, 5], Idx [idx_batch, 5, 4].
Graph EdgeFeaturesPattern(const std::string& idx_batch = "batch", int64_t gather_axis = 2) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "3", "5"}), TensorVI("idx", {idx_batch, "5", "4"}, DType::kInt64)};
  g.outputs = {VI("y")};
  g.initializers["last"] = Ints({-1});
  g.initializers["one"] = Ints({1});
  g.initializers["over_k"] = Ints({1, 1, 1, 4});
  g.initializers["over_c"] = Ints({1, 3, 1, 1});
  g.nodes = {MakeNode("Unsqueeze", {"idx", "one"}, {"iu"}), MakeNode("Expand", {"iu", "over_c"}, {"ie"}),
             MakeNode("Unsqueeze", {"x", "last"}, {"xu"}), MakeNode("Expand", {"xu", "over_k"}, {"xe"}),
             MakeNode("GatherElements", {"xe", "ie"}, {"g"}, {IntAttr("axis", gather_axis)}),
             MakeNode("Sub", {"g", "xe"}, {"d"}), MakeNode("Concat", {"xe", "d"}, {"y"}, {IntAttr("axis", 1)})};
  return g;
}

Tensor NeighbourIndices(int64_t batch, uint64_t seed) {
  Tensor t = Tensor::Empty(DType::kInt64, {batch, 5, 4});
  for (int64_t i = 0; i < t.size(); ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    t.mutable_data<int64_t>()[i] = static_cast<int64_t>(seed >> 33) % 10 - 5;  // [-5, 5): negatives wrap
  }
  return t;
}

TEST(FuseEdgeFeaturesTest, GatherSubConcatBecomesOneNodeWithTheSameValues) {
  Graph g = EdgeFeaturesPattern();
  Graph before = g;
  ASSERT_TRUE(*FuseEdgeFeatures(g));
  ASSERT_TRUE(*EliminateDeadNodes(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"EdgeFeatures"}));
  EXPECT_EQ(g.nodes[0].domain, "ai.hepml");
  EXPECT_EQ(g.nodes[0].inputs, std::vector<std::string>({"x", "idx"}));
  EXPECT_EQ(g.nodes[0].outputs, std::vector<std::string>({"y"}));
  const std::vector<std::pair<std::string, Tensor>> feeds = {{"x", Random({3, 3, 5}, 9)},
                                                             {"idx", NeighbourIndices(3, 4)}};
  EXPECT_EQ(OutputDiff(before, g, feeds), 0.0);  // the same subtraction, bit for bit
  auto y = RunGraph(g, feeds);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ((*y)[0].shape(), Shape({3, 6, 5, 4}));
  // An index out of range is an error naming it, as GatherElements' is.
  Tensor bad = NeighbourIndices(3, 4);
  bad.mutable_data<int64_t>()[7] = 5;
  auto err = RunGraph(g, {{"x", Random({3, 3, 5}, 9)}, {"idx", bad}});
  ASSERT_FALSE(err.ok());
  EXPECT_NE(std::string(err.status().message()).find("out of range"), std::string::npos) << err.status();
}

TEST(FuseEdgeFeaturesTest, LeavesIndicesBroadcastOverTheBatchAndOtherAxes) {
  // Idx with a batch of 1 broadcasts through Sub: valid, but not the fused form.
  Graph shared = EdgeFeaturesPattern("1");
  EXPECT_FALSE(*FuseEdgeFeatures(shared));
  // Gathering along K instead of P.
  Graph other_axis = EdgeFeaturesPattern("batch", 3);
  EXPECT_FALSE(*FuseEdgeFeatures(other_axis));
  // Channel expansion that does not match X's channels.
  Graph wrong_c = EdgeFeaturesPattern();
  wrong_c.initializers["over_c"] = Ints({1, 1, 1, 1});
  EXPECT_FALSE(*FuseEdgeFeatures(wrong_c));
  // Concatenated along another axis.
  Graph concat_k = EdgeFeaturesPattern();
  concat_k.nodes.back().attributes = {IntAttr("axis", 3)};
  EXPECT_FALSE(*FuseEdgeFeatures(concat_k));
}

// ---- factor-edge-conv ----

// The edge features into a pointwise Conv (5 outputs) and Relu, as in an
// EdgeConv block's first layer.
Graph EdgeConvFirstLayer(bool with_bias) {
  Graph g = EdgeFeaturesPattern();
  g.outputs = {VI("r")};
  g.initializers["w"] = Random({5, 6, 1, 1}, 31);
  std::vector<std::string> conv_in = {"y", "w"};
  if (with_bias) {
    g.initializers["b"] = Random({5}, 32);
    conv_in.push_back("b");
  }
  g.nodes.push_back(MakeNode("Conv", conv_in, {"c"}, {IntsAttr("kernel_shape", {1, 1})}));
  g.nodes.push_back(MakeNode("Relu", {"c"}, {"r"}));
  return g;
}

TEST(FactorEdgeConvTest, FirstLayerRunsPerPointThenGathers) {
  for (bool with_bias : {true, false}) {
    SCOPED_TRACE(with_bias);
    Graph g = EdgeConvFirstLayer(with_bias);
    Graph before = g;
    ASSERT_TRUE(*FuseEdgeFeatures(g));
    ASSERT_TRUE(*FuseGemmActivation(g));
    ASSERT_TRUE(*FactorEdgeConv(g));
    ASSERT_TRUE(*EliminateDeadNodes(g));
    ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Conv", "EdgeGatherAdd"}));
    EXPECT_EQ(g.nodes[0].inputs[0], "x");
    EXPECT_EQ(g.nodes[1].GetString("activation", ""), "Relu");
    EXPECT_EQ(g.nodes[1].outputs, std::vector<std::string>({"r"}));
    const std::vector<std::pair<std::string, Tensor>> feeds = {{"x", Random({3, 3, 5}, 33)},
                                                               {"idx", NeighbourIndices(3, 34)}};
    EXPECT_LT(OutputDiff(before, g, feeds), 1e-5);  // reassociated sums
    auto r = RunGraph(g, feeds);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)[0].shape(), Shape({3, 5, 5, 4}));
  }
}

TEST(FactorEdgeConvTest, LeavesSharedFeaturesAndWiderKernels) {
  // The edge features are also a graph output.
  Graph shared = EdgeConvFirstLayer(true);
  shared.outputs.push_back(VI("y"));
  ASSERT_TRUE(*FuseEdgeFeatures(shared));
  EXPECT_FALSE(*FactorEdgeConv(shared));
  // A 1x3 window mixes neighbours: not a per-edge layer.
  Graph wide = EdgeConvFirstLayer(true);
  wide.initializers["w"] = Random({5, 6, 1, 3}, 31);
  wide.nodes[7].attributes = {IntsAttr("kernel_shape", {1, 3}), IntsAttr("pads", {0, 1, 0, 1})};
  ASSERT_TRUE(*FuseEdgeFeatures(wide));
  EXPECT_FALSE(*FactorEdgeConv(wide));
}

// ---- pointwise-conv-to-gemm ----

// DeepJet's per-particle layers: [batch, 25, 6] transposed to channels
// first, two pointwise Convs (the first with Relu), read back channels last
// and as a graph output.
Graph PointwiseChain(std::vector<int64_t> kernel = {1}) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "25", "6"})};
  g.outputs = {VI("y"), VI("z")};
  g.initializers["w1"] = Random({8, 6, kernel[0]}, 21);
  g.initializers["b1"] = Random({8}, 22);
  g.initializers["w2"] = Random({4, 8, 1}, 23);
  g.nodes = {MakeNode("Transpose", {"x"}, {"xt"}, {IntsAttr("perm", {0, 2, 1})}),
             MakeNode("Conv", {"xt", "w1", "b1"}, {"c1"}, {IntsAttr("kernel_shape", kernel)}),
             MakeNode("Relu", {"c1"}, {"r1"}),
             MakeNode("Conv", {"r1", "w2"}, {"y"}, {IntsAttr("kernel_shape", {1}), IntsAttr("pads", {0, 0})}),
             MakeNode("Transpose", {"y"}, {"z"}, {IntsAttr("perm", {0, 2, 1})})};
  return g;
}

TEST(PointwiseConvToGemmTest, ChannelsLastChainBecomesFusedGemms) {
  Graph g = PointwiseChain();
  Graph before = g;
  ASSERT_TRUE(*FuseGemmActivation(g));
  ASSERT_TRUE(*PointwiseConvToGemm(g));
  ASSERT_TRUE(CancelTransposeReshape(g).ok());  // y and z are graph outputs: their Transposes stay
  ASSERT_TRUE(*EliminateDeadNodes(g));
  // The second layer reads the first's channels-last output directly.
  ASSERT_GE(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op_type, "FusedGemm");
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
  EXPECT_EQ(g.nodes[0].GetString("activation", ""), "Relu");
  EXPECT_EQ(g.nodes[1].op_type, "FusedGemm");
  EXPECT_EQ(g.nodes[1].inputs[0], g.nodes[0].outputs[0]);
  EXPECT_FALSE(g.nodes[1].HasAttribute("activation"));
  for (const Node& n : g.nodes) EXPECT_NE(n.op_type, "FusedConv");
  // y (channels first) and z (channels last) as before.
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({3, 25, 6}, 24)}}), 1e-5);
  auto out = RunGraph(g, {{"x", Random({3, 25, 6}, 24)}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), Shape({3, 4, 25}));
  EXPECT_EQ((*out)[1].shape(), Shape({3, 25, 4}));
}

TEST(PointwiseConvToGemmTest, LeavesWiderKernelsAndChannelsFirstInputs) {
  // A kernel of 3 stays a Conv, and the layer after it reads a Conv's
  // output, not a transposed tensor.
  Graph wide = PointwiseChain({3});
  EXPECT_FALSE(*PointwiseConvToGemm(wide));
  // Input already channels first.
  Graph first = PointwiseChain();
  first.inputs = {TensorVI("x", {"batch", "6", "25"})};
  first.nodes.erase(first.nodes.begin());
  first.nodes[0].inputs[0] = "x";
  EXPECT_FALSE(*PointwiseConvToGemm(first));
  // Grouped or strided.
  Graph strided = PointwiseChain();
  strided.nodes[1].attributes.push_back(IntsAttr("strides", {2}));
  EXPECT_FALSE(*PointwiseConvToGemm(strided));
}

}  // namespace
}  // namespace hepml::passes
