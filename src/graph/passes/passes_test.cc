// Each pass: an input graph and the graph expected after it.
#include <gtest/gtest.h>

#include "graph/passes/pass.h"

namespace hepml::passes {
namespace {

Node MakeNode(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
              const std::string& name = "") {
  Node n;
  n.op_type = op;
  n.opset = 17;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.name = name;
  return n;
}

ValueInfo VI(const std::string& name) {
  ValueInfo vi;
  vi.name = name;
  return vi;
}

std::vector<std::string> OpTypes(const Graph& g) {
  std::vector<std::string> ops;
  for (const Node& n : g.nodes) ops.push_back(n.op_type);
  return ops;
}

TEST(EliminateDeadNodesTest, RemovesUnreadNodesAndInitializers) {
  Graph g;
  g.inputs = {VI("x")};
  g.outputs = {VI("y")};
  g.initializers["w"] = Tensor::Scalar<float>(2);
  g.initializers["unused"] = Tensor::Scalar<float>(3);
  g.nodes = {MakeNode("Mul", {"x", "w"}, {"y"}), MakeNode("Add", {"x", "unused"}, {"dead"}),
             MakeNode("Relu", {"dead"}, {"dead2"})};
  auto changed = EliminateDeadNodes(g);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"Mul"}));
  EXPECT_EQ(g.initializers.count("unused"), 0u);
  EXPECT_EQ(g.initializers.count("w"), 1u);
  EXPECT_FALSE(*EliminateDeadNodes(g));  // nothing left to do
}

TEST(EliminateDeadNodesTest, KeepsValuesReadBySubgraphs) {
  Graph g;
  g.inputs = {VI("x"), VI("c")};
  g.outputs = {VI("y")};
  g.nodes = {MakeNode("Neg", {"x"}, {"n"})};
  Graph branch;
  branch.outputs = {VI("n")};  // reads the outer value directly
  Node if_node = MakeNode("If", {"c"}, {"y"});
  Attribute then_branch;
  then_branch.name = "then_branch";
  then_branch.type = Attribute::Type::kGraph;
  then_branch.g = std::make_shared<Graph>(branch);
  if_node.attributes.push_back(then_branch);
  g.nodes.push_back(if_node);
  ASSERT_TRUE(EliminateDeadNodes(g).ok());
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"Neg", "If"}));
}

TEST(EliminateIdentitiesTest, ReadersReadTheInputDirectly) {
  Graph g;
  g.inputs = {VI("x")};
  g.outputs = {VI("y")};
  g.nodes = {MakeNode("Identity", {"x"}, {"a"}), MakeNode("Dropout", {"a"}, {"b"}), MakeNode("Relu", {"b"}, {"y"})};
  g.nodes[1].opset = 13;
  ASSERT_TRUE(*EliminateIdentities(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Relu"}));
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
}

TEST(EliminateIdentitiesTest, KeepsIdentityProducingAGraphOutputAndTrainingDropout) {
  Graph g;
  g.inputs = {VI("x")};
  g.outputs = {VI("y"), VI("mask")};
  g.nodes = {MakeNode("Dropout", {"x"}, {"d", "mask"}), MakeNode("Identity", {"d"}, {"y"})};
  EXPECT_FALSE(*EliminateIdentities(g));
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"Dropout", "Identity"}));
}

TEST(FoldConstantsTest, FoldsChainsOfConstantNodes) {
  Graph g;
  g.inputs = {VI("x")};
  g.outputs = {VI("y")};
  g.initializers["a"] = Tensor::FromVector<float>({2}, {1, 2});
  g.initializers["b"] = Tensor::FromVector<float>({2}, {10, 20});
  g.nodes = {MakeNode("Add", {"a", "b"}, {"ab"}), MakeNode("Mul", {"ab", "ab"}, {"sq"}),
             MakeNode("Add", {"x", "sq"}, {"y"})};
  ASSERT_TRUE(*FoldConstants(g));
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"Add"}));
  ASSERT_EQ(g.initializers.count("sq"), 1u);
  EXPECT_EQ(g.initializers.at("sq").data<float>()[1], 484.f);
}

TEST(FoldConstantsTest, AnInitializerThatIsAlsoAnInputIsNotConstant) {
  Graph g;
  g.inputs = {VI("x"), VI("a")};  // "a" has a default but callers may override it
  g.outputs = {VI("y")};
  g.initializers["a"] = Tensor::Scalar<float>(1);
  g.initializers["b"] = Tensor::Scalar<float>(2);
  g.nodes = {MakeNode("Add", {"a", "b"}, {"ab"}), MakeNode("Add", {"x", "ab"}, {"y"})};
  EXPECT_FALSE(*FoldConstants(g));
  EXPECT_EQ(g.nodes.size(), 2u);
}

TEST(PassManagerTest, NamesTimesAndSwitchesOffPasses) {
  PassManager pm = PassManager::Default();
  Graph g;
  g.inputs = {VI("x")};
  g.outputs = {VI("y")};
  g.initializers["a"] = Tensor::Scalar<float>(1);
  g.nodes = {MakeNode("Add", {"a", "a"}, {"two"}), MakeNode("Mul", {"x", "two"}, {"y"})};
  auto reports = pm.Run(g, {"fold-constants"});
  ASSERT_TRUE(reports.ok()) << reports.status();
  ASSERT_EQ(reports->size(), pm.Names().size());
  for (const PassReport& r : *reports) {
    EXPECT_EQ(r.skipped, r.name == "fold-constants");
  }
  EXPECT_EQ(g.nodes.size(), 2u);  // folding was off
  auto bad = pm.Run(g, {"no-such-pass"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("no-such-pass"), std::string::npos);
}

TEST(PassManagerTest, DefaultOrderFoldsBeforeFusingAndCleansUpLast) {
  EXPECT_EQ(PassManager::Default().Names(),
            std::vector<std::string>({"eliminate-identities", "fold-constants", "fold-shape-subgraphs",
                                      "drop-zero-recurrent-states", "fold-batchnorm",
                                      "fuse-layernorm", "fuse-gelu", "fuse-gemm-activation", "fuse-conv-maxpool", "fuse-edge-features", "factor-edge-conv", "pointwise-conv-to-gemm", "transpose-gemm-weights",
                                      "cancel-transpose-reshape",
                                      "eliminate-dead-nodes"}));
}

}  // namespace
}  // namespace hepml::passes
