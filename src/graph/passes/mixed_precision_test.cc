// mixed-precision: input graphs and the graphs expected after the pass.
#include <gtest/gtest.h>

#include "graph/passes/pass.h"

namespace hepml::passes {
namespace {

Node MakeNode(const std::string& op, std::vector<std::string> in, std::vector<std::string> out, int opset = 17) {
  Node n;
  n.op_type = op;
  n.opset = opset;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.name = n.outputs.empty() ? op : n.outputs[0];
  return n;
}

ValueInfo F32(const std::string& name, std::vector<Dim> shape = {Dim{-1, "n"}, Dim{4, ""}}) {
  return {name, TypeInfo::Tensor(DType::kFloat32, std::move(shape)), ""};
}

Tensor Weights(Shape shape, float scale = 0.1f) {
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * static_cast<float>(static_cast<int>(i % 7) - 3);
  return Tensor::FromVector<float>(shape, v);
}

// "Cast(a->b:bf16)" for casts, the op type for others: the graph at a glance.
std::vector<std::string> Describe(const Graph& g) {
  std::vector<std::string> out;
  for (const Node& n : g.nodes) {
    if (n.op_type != "Cast") {
      out.push_back(n.op_type);
      continue;
    }
    out.push_back("Cast(" + n.inputs[0] + "->" + n.outputs[0] + ":" + DTypeName(static_cast<DType>(n.GetInt("to", 0))) +
                  ")");
  }
  return out;
}

const Node* Producer(const Graph& g, const std::string& value) {
  for (const Node& n : g.nodes)
    for (const std::string& o : n.outputs)
      if (o == value) return &n;
  return nullptr;
}

DType DeclaredDType(const Graph& g, const std::string& value) {
  const TypeInfo* t = g.FindType(value);
  return t == nullptr ? DType::kUndefined : t->dtype;
}

// x -> MatMul(w1) -> Add(b1) -> Relu -> MatMul(w2) -> Add(b2) -> Softmax -> y
Graph Mlp() {
  Graph g;
  g.inputs = {F32("x")};
  g.outputs = {F32("y")};
  g.initializers["w1"] = Weights({4, 8});
  g.initializers["b1"] = Weights({8});
  g.initializers["w2"] = Weights({8, 4});
  g.initializers["b2"] = Weights({4});
  g.nodes = {MakeNode("MatMul", {"x", "w1"}, {"h1"}),  MakeNode("Add", {"h1", "b1"}, {"a1"}),
             MakeNode("Relu", {"a1"}, {"r1"}),          MakeNode("MatMul", {"r1", "w2"}, {"h2"}),
             MakeNode("Add", {"h2", "b2"}, {"logits"}), MakeNode("Softmax", {"logits"}, {"y"})};
  return g;
}

TEST(MixedPrecisionTest, MlpRunsInBf16BetweenOneCastInAndOneCastOut) {
  Graph g = Mlp();
  auto changed = ConvertToMixedPrecision(g, DType::kBFloat16);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(Describe(g), std::vector<std::string>({"Cast(x->x/to_bf16:bfloat16)", "MatMul", "Add", "Relu", "MatMul",
                                                   "Add", "Cast(logits/bf16->logits:float32)", "Softmax"}));
  // The converted nodes read each other's reduced outputs directly.
  EXPECT_EQ(g.nodes[1].inputs, std::vector<std::string>({"x/to_bf16", "w1"}));
  EXPECT_EQ(g.nodes[2].inputs, std::vector<std::string>({"h1/bf16", "b1"}));
  EXPECT_EQ(g.nodes[4].inputs, std::vector<std::string>({"r1/bf16", "w2"}));
  EXPECT_EQ(g.nodes[7].inputs, std::vector<std::string>({"logits"}));  // Softmax stays float32
  // Weights are stored in bfloat16, in place (no float32 copy left).
  for (const char* w : {"w1", "b1", "w2", "b2"}) EXPECT_EQ(g.initializers.at(w).dtype(), DType::kBFloat16) << w;
  EXPECT_EQ(g.initializers.size(), 4u);
  EXPECT_EQ(static_cast<float>(g.initializers.at("w1").data<BFloat16>()[0]), -0.30078125f);  // -0.3 rounded
  // Inputs and outputs keep their names and types; new values are declared.
  EXPECT_EQ(g.inputs[0].type.dtype, DType::kFloat32);
  EXPECT_EQ(g.outputs[0].type.dtype, DType::kFloat32);
  EXPECT_EQ(g.outputs[0].name, "y");
  EXPECT_EQ(DeclaredDType(g, "x/to_bf16"), DType::kBFloat16);
  EXPECT_EQ(DeclaredDType(g, "h1/bf16"), DType::kBFloat16);
  // A second run finds nothing left to convert.
  EXPECT_FALSE(*ConvertToMixedPrecision(g, DType::kBFloat16));
}

TEST(MixedPrecisionTest, ConvReluConvChainDoesNotBounce) {
  Graph g;
  std::vector<Dim> image = {Dim{-1, "n"}, Dim{2, ""}, Dim{8, ""}, Dim{8, ""}};
  g.inputs = {F32("x", image)};
  g.outputs = {F32("y", image)};
  g.initializers["w1"] = Weights({2, 2, 3, 3});
  g.initializers["w2"] = Weights({2, 2, 3, 3});
  g.nodes = {MakeNode("Conv", {"x", "w1"}, {"c1"}), MakeNode("Relu", {"c1"}, {"r1"}),
             MakeNode("Conv", {"r1", "w2"}, {"y"})};
  ASSERT_TRUE(*ConvertToMixedPrecision(g, DType::kFloat16));
  EXPECT_EQ(Describe(g), std::vector<std::string>({"Cast(x->x/to_fp16:float16)", "Conv", "Relu", "Conv",
                                                   "Cast(y/fp16->y:float32)"}));
  EXPECT_EQ(g.nodes[2].inputs[0], "c1/fp16");
  EXPECT_EQ(g.nodes[3].inputs[0], "r1/fp16");
  EXPECT_EQ(g.initializers.at("w2").dtype(), DType::kFloat16);
  // The graph output keeps its name: the last Cast produces it.
  EXPECT_EQ(Producer(g, "y")->op_type, "Cast");
  // Shapes carry over to the declared reduced values.
  const TypeInfo* t = g.FindType("x/to_fp16");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape.size(), 4u);
}

TEST(MixedPrecisionTest, PassThroughOpsStayFloat32AwayFromConvertedNodes) {
  // Relu on the input and Softmax are not next to a converted node: Relu
  // stays float32 and the cast in sits after it.
  Graph g;
  g.inputs = {F32("x")};
  g.outputs = {F32("y")};
  g.initializers["w"] = Weights({4, 4});
  g.nodes = {MakeNode("Relu", {"x"}, {"r"}), MakeNode("MatMul", {"r", "w"}, {"m"}),
             MakeNode("Exp", {"m"}, {"e"}), MakeNode("Relu", {"e"}, {"y"})};
  ASSERT_TRUE(*ConvertToMixedPrecision(g, DType::kBFloat16));
  EXPECT_EQ(Describe(g), std::vector<std::string>({"Relu", "Cast(r->r/to_bf16:bfloat16)", "MatMul",
                                                   "Cast(m/bf16->m:float32)", "Exp", "Relu"}));
}

TEST(MixedPrecisionTest, SharedWeightGetsAReducedCopyAndOutputsReadByOthersAreCastBack) {
  // w feeds a MatMul (converted) and a Div (float32); m is a graph output and
  // is also read by a converted Add and by the float32 Div.
  Graph g;
  g.inputs = {F32("x")};
  g.outputs = {F32("m"), F32("y"), F32("q")};
  g.initializers["w"] = Weights({4, 4});
  g.nodes = {MakeNode("MatMul", {"x", "w"}, {"m"}), MakeNode("Add", {"m", "m"}, {"y"}),
             MakeNode("Div", {"m", "w"}, {"q"})};
  ASSERT_TRUE(*ConvertToMixedPrecision(g, DType::kBFloat16));
  EXPECT_EQ(Describe(g), std::vector<std::string>({"Cast(x->x/to_bf16:bfloat16)", "MatMul",
                                                   "Cast(m/bf16->m:float32)", "Add", "Cast(y/bf16->y:float32)",
                                                   "Div"}));
  EXPECT_EQ(g.nodes[1].inputs, std::vector<std::string>({"x/to_bf16", "w/bf16"}));
  EXPECT_EQ(g.nodes[3].inputs, std::vector<std::string>({"m/bf16", "m/bf16"}));
  EXPECT_EQ(g.nodes[5].inputs, std::vector<std::string>({"m", "w"}));
  EXPECT_EQ(g.initializers.at("w").dtype(), DType::kFloat32);
  EXPECT_EQ(g.initializers.at("w/bf16").dtype(), DType::kBFloat16);
  for (const ValueInfo& vi : g.outputs) EXPECT_EQ(vi.type.dtype, DType::kFloat32);
}

TEST(MixedPrecisionTest, OverridableInitializerIsCastAtRunTime) {
  Graph g = Mlp();
  g.inputs.push_back({"w1", TypeInfo::Tensor(DType::kFloat32), ""});  // a default the caller may replace
  ASSERT_TRUE(*ConvertToMixedPrecision(g, DType::kBFloat16));
  EXPECT_EQ(g.initializers.at("w1").dtype(), DType::kFloat32);
  EXPECT_EQ(g.nodes[2].op_type, "MatMul");
  EXPECT_EQ(g.nodes[2].inputs, std::vector<std::string>({"x/to_bf16", "w1/to_bf16"}));
  EXPECT_EQ(Producer(g, "w1/to_bf16")->op_type, "Cast");
}

TEST(MixedPrecisionTest, SubgraphsStayFloat32AndReadFloat32Values) {
  Graph g;
  g.inputs = {F32("x"), {"c", TypeInfo::Tensor(DType::kBool, {}), ""}};
  g.outputs = {F32("y")};
  g.initializers["w"] = Weights({4, 4});
  auto branch = std::make_shared<Graph>();
  branch->outputs = {F32("b")};
  branch->nodes = {MakeNode("MatMul", {"h", "w"}, {"b"})};  // reads outer h and w
  Node if_node = MakeNode("If", {"c"}, {"y"});
  for (const char* name : {"then_branch", "else_branch"}) {
    Attribute a;
    a.name = name;
    a.type = Attribute::Type::kGraph;
    a.g = branch;
    if_node.attributes.push_back(a);
  }
  g.nodes = {MakeNode("MatMul", {"x", "w"}, {"h"}), if_node};
  ASSERT_TRUE(*ConvertToMixedPrecision(g, DType::kBFloat16));
  EXPECT_EQ(Describe(g), std::vector<std::string>({"Cast(x->x/to_bf16:bfloat16)", "MatMul",
                                                   "Cast(h/bf16->h:float32)", "If"}));
  EXPECT_EQ(branch->nodes[0].inputs, std::vector<std::string>({"h", "w"}));
  EXPECT_EQ(g.initializers.at("w").dtype(), DType::kFloat32);  // the body still reads it
  EXPECT_EQ(g.nodes[1].inputs[1], "w/bf16");
}

TEST(MixedPrecisionTest, LeavesIntegerAndUnsupportedNodesAlone) {
  Graph g;
  g.inputs = {{"i", TypeInfo::Tensor(DType::kInt32, {Dim{2, ""}, Dim{2, ""}}), ""}, F32("x")};
  g.outputs = {{"j", TypeInfo::Tensor(DType::kInt32), ""}, F32("y")};
  g.nodes = {MakeNode("MatMul", {"i", "i"}, {"j"}), MakeNode("Softmax", {"x"}, {"y"})};
  Graph before = g;
  EXPECT_FALSE(*ConvertToMixedPrecision(g, DType::kBFloat16));
  EXPECT_EQ(Describe(g), Describe(before));
  // A MatMul whose input type is unknown is not touched either.
  Graph unknown;
  unknown.inputs = {{"x", TypeInfo{}, ""}};
  unknown.outputs = {{"y", TypeInfo{}, ""}};
  unknown.initializers["w"] = Weights({4, 4});
  unknown.nodes = {MakeNode("MatMul", {"x", "w"}, {"y"})};
  EXPECT_FALSE(*ConvertToMixedPrecision(unknown, DType::kBFloat16));
  EXPECT_EQ(unknown.initializers.at("w").dtype(), DType::kFloat32);
}

TEST(MixedPrecisionTest, RecurrentNodesConvertOnlyWhereTheKernelTakesTheType) {
  auto lstm_graph = [] {
    Graph g;
    g.inputs = {F32("x", {Dim{5, ""}, Dim{-1, "n"}, Dim{3, ""}})};
    g.outputs = {F32("y")};
    g.initializers["W"] = Weights({1, 8, 3});
    g.initializers["R"] = Weights({1, 8, 2});
    Node lstm = MakeNode("LSTM", {"x", "W", "R"}, {"y"});
    Attribute hidden;
    hidden.name = "hidden_size";
    hidden.type = Attribute::Type::kInt;
    hidden.i = 2;
    lstm.attributes.push_back(hidden);
    g.nodes = {lstm};
    return g;
  };
  Graph bf16 = lstm_graph();
  EXPECT_FALSE(*ConvertToMixedPrecision(bf16, DType::kBFloat16));  // no bfloat16 LSTM kernel
  Graph fp16 = lstm_graph();
  EXPECT_TRUE(*ConvertToMixedPrecision(fp16, DType::kFloat16));
  EXPECT_EQ(Describe(fp16), std::vector<std::string>({"Cast(x->x/to_fp16:float16)", "LSTM",
                                                      "Cast(y/fp16->y:float32)"}));
  EXPECT_EQ(fp16.initializers.at("R").dtype(), DType::kFloat16);
}

TEST(MixedPrecisionTest, RemovesCastPairsThatCancel) {
  // A model that already holds a bf16 -> float32 -> bf16 round trip: both
  // casts are exact, so the MatMul reads the bf16 value itself.
  Graph g;
  g.inputs = {{"x", TypeInfo::Tensor(DType::kBFloat16, {Dim{2, ""}, Dim{4, ""}}), ""}};
  g.outputs = {F32("y")};
  g.initializers["w"] = Weights({4, 4});
  Node up = MakeNode("Cast", {"x"}, {"xf"});
  Attribute to;
  to.name = "to";
  to.type = Attribute::Type::kInt;
  to.i = static_cast<int64_t>(DType::kFloat32);
  up.attributes.push_back(to);
  g.nodes = {up, MakeNode("MatMul", {"xf", "w"}, {"y"})};
  ASSERT_TRUE(*ConvertToMixedPrecision(g, DType::kBFloat16));
  EXPECT_EQ(Describe(g), std::vector<std::string>({"MatMul", "Cast(y/bf16->y:float32)"}));
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
}

TEST(MixedPrecisionTest, NewNamesDoNotCollideWithExistingOnes) {
  Graph g = Mlp();
  g.value_info.push_back({"x/to_bf16", TypeInfo::Tensor(DType::kFloat32), ""});  // an unrelated value's name
  ASSERT_TRUE(*ConvertToMixedPrecision(g, DType::kBFloat16));
  EXPECT_EQ(g.nodes[0].outputs[0], "x/to_bf16_1");
  EXPECT_EQ(g.nodes[1].inputs[0], "x/to_bf16_1");
}

TEST(MixedPrecisionTest, Float32IsANoOpAndOtherTargetsAreErrors) {
  Graph g = Mlp();
  EXPECT_FALSE(*ConvertToMixedPrecision(g, DType::kFloat32));
  EXPECT_EQ(g.nodes.size(), 6u);
  auto bad = ConvertToMixedPrecision(g, DType::kInt8);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("int8"), std::string::npos);
}

}  // namespace
}  // namespace hepml::passes
