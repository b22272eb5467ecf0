// fold-batchnorm: input graph, expected graph, and the same outputs.
#include <gtest/gtest.h>

#include "graph/passes/pass.h"
#include "graph/passes/pass_test_util.h"

namespace hepml::passes {
namespace {

using namespace ::hepml::passes::testing;  // NOLINT

// BatchNormalization's four parameters for `c` channels as initializers
// named prefix.{scale,bias,mean,var}; returns the BN node reading `x`.
Node AddBatchNorm(Graph& g, const std::string& prefix, int64_t c, const std::string& x, const std::string& y,
                  uint64_t seed) {
  g.initializers[prefix + ".scale"] = Random({c}, seed, 0.5f, 1.5f);
  g.initializers[prefix + ".bias"] = Random({c}, seed + 1);
  g.initializers[prefix + ".mean"] = Random({c}, seed + 2);
  g.initializers[prefix + ".var"] = Random({c}, seed + 3, 0.1f, 2.f);
  return MakeNode("BatchNormalization", {x, prefix + ".scale", prefix + ".bias", prefix + ".mean", prefix + ".var"},
                  {y}, {FloatAttr("epsilon", 1e-3f)}, 15);
}

TEST(FoldBatchNormTest, ConvThenBatchNormBecomesOneConv) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "3", "8", "8"})};
  g.outputs = {VI("y")};
  g.initializers["w"] = Random({4, 3, 3, 3}, 1);
  g.initializers["b"] = Random({4}, 2);
  g.nodes = {MakeNode("Conv", {"x", "w", "b"}, {"c"}, {IntsAttr("pads", {1, 1, 1, 1})}),
             AddBatchNorm(g, "bn", 4, "c", "y", 10)};
  Graph before = g;
  ASSERT_TRUE(*FoldBatchNorm(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Conv"}));
  EXPECT_EQ(g.nodes[0].outputs[0], "y");
  EXPECT_NE(g.nodes[0].inputs[1], "w");  // new weights: the old may be shared
  EXPECT_EQ(g.initializers.at("w").data<float>()[0], before.initializers.at("w").data<float>()[0]);
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({2, 3, 8, 8}, 3)}}), 1e-5);
  EXPECT_FALSE(*FoldBatchNorm(g));
}

TEST(FoldBatchNormTest, ConvWithoutBiasAndGroupedConvTranspose) {
  Graph g;
  g.inputs = {TensorVI("x", {"1", "4", "5", "5"})};
  g.outputs = {VI("y"), VI("z")};
  g.initializers["w"] = Random({6, 4, 1, 1}, 1);
  g.initializers["wt"] = Random({4, 3, 2, 2}, 2);  // group 2: 6 output channels
  g.nodes = {MakeNode("Conv", {"x", "w"}, {"c"}), AddBatchNorm(g, "bn1", 6, "c", "y", 10),
             MakeNode("ConvTranspose", {"x", "wt"}, {"t"}, {IntAttr("group", 2), IntsAttr("strides", {2, 2})}),
             AddBatchNorm(g, "bn2", 6, "t", "z", 20)};
  Graph before = g;
  ASSERT_TRUE(*FoldBatchNorm(g));
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"Conv", "ConvTranspose"}));
  EXPECT_EQ(g.nodes[0].inputs.size(), 3u);  // a bias was added
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({1, 4, 5, 5}, 3)}}), 1e-5);
}

TEST(FoldBatchNormTest, GemmAndMatMulAddThenBatchNorm) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "5"})};
  g.outputs = {VI("y1"), VI("y2"), VI("y3")};
  g.initializers["b"] = Random({4, 5}, 1);  // transB
  g.initializers["c"] = Random({4}, 2);
  g.initializers["m"] = Random({5, 4}, 3);
  g.initializers["bias"] = Random({4}, 4);
  g.nodes = {MakeNode("Gemm", {"x", "b", "c"}, {"g"}, {IntAttr("transB", 1), FloatAttr("beta", 0.5f), FloatAttr("alpha", 2.f)}),
             AddBatchNorm(g, "bn1", 4, "g", "y1", 10),
             MakeNode("MatMul", {"x", "m"}, {"mm"}), MakeNode("Add", {"bias", "mm"}, {"a"}),
             AddBatchNorm(g, "bn2", 4, "a", "y2", 20),
             MakeNode("MatMul", {"x", "m"}, {"mm2"}), AddBatchNorm(g, "bn3", 4, "mm2", "y3", 30)};
  Graph before = g;
  ASSERT_TRUE(*FoldBatchNorm(g));
  // The lone MatMul keeps an Add of the shift in BN's place.
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"Gemm", "MatMul", "Add", "MatMul", "Add"}));
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({3, 5}, 5)}}), 1e-5);
}

TEST(FoldBatchNormTest, BatchNormBeforeUnpaddedConv) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "3", "7"})};
  g.outputs = {VI("y"), VI("z")};
  g.initializers["w"] = Random({5, 3, 1}, 1);
  g.initializers["b"] = Random({5}, 2);
  g.initializers["wp"] = Random({5, 3, 3}, 3);
  g.nodes = {AddBatchNorm(g, "bn", 3, "x", "n", 10), MakeNode("Conv", {"n", "w", "b"}, {"y"}),
             AddBatchNorm(g, "bn2", 3, "x", "n2", 20),
             MakeNode("Conv", {"n2", "wp"}, {"z"}, {IntsAttr("pads", {1, 1})})};
  Graph before = g;
  ASSERT_TRUE(*FoldBatchNorm(g));
  // The padded Conv keeps its BN: padding would see BN(0), not 0.
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"Conv", "BatchNormalization", "Conv"}));
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
  EXPECT_LT(OutputDiff(before, g, {{"x", Random({2, 3, 7}, 4)}}), 1e-5);
}

TEST(FoldBatchNormTest, LeavesTrainingModeSharedOutputsAndNonConstantParameters) {
  Graph g;
  g.inputs = {TensorVI("x", {"1", "2", "4", "4"}), TensorVI("s", {"2"})};
  g.outputs = {VI("y1"), VI("c2"), VI("y2"), VI("y3")};
  g.initializers["w"] = Random({2, 2, 1, 1}, 1);
  Node training = AddBatchNorm(g, "bn1", 2, "c1", "y1", 10);
  training.attributes.push_back(IntAttr("training_mode", 1));
  Node reads_output = AddBatchNorm(g, "bn2", 2, "c2", "y2", 20);  // c2 is a graph output
  Node runtime_scale = AddBatchNorm(g, "bn3", 2, "c3", "y3", 30);
  runtime_scale.inputs[1] = "s";
  g.nodes = {MakeNode("Conv", {"x", "w"}, {"c1"}), training, MakeNode("Conv", {"x", "w"}, {"c2"}), reads_output,
             MakeNode("Conv", {"x", "w"}, {"c3"}), runtime_scale};
  EXPECT_FALSE(*FoldBatchNorm(g));
  EXPECT_EQ(g.nodes.size(), 6u);
}

}  // namespace
}  // namespace hepml::passes
