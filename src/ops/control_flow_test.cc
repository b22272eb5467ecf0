// Unit tests of If, Loop and Scan. Bodies are built by hand from Add/Sub/Mul
// and the sequence operators; expected values are worked out by hand.
#include <gtest/gtest.h>

#include "ops/op_test_util.h"
#include "runtime/executor.h"

namespace hepml::ops::testing {
namespace {

// Asserts that `result` failed with a message containing `fragment`.
template <typename R>
void ExpectError(const R& result, const std::string& fragment) {
  ASSERT_FALSE(result.ok()) << "expected an error mentioning: " << fragment;
  EXPECT_NE(result.status().message().find(fragment), std::string::npos) << result.status();
}

Value Ten(Tensor t) { return Value::FromTensor(std::move(t)); }
Value Seq(std::vector<Tensor> items, DType elem) { return Value::FromSequence(std::move(items), elem); }
Value Absent() { return Value(); }  // kTensor with no tensor: an omitted input

Node MakeNode(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
              std::vector<Attribute> attrs = {}) {
  Node n;
  n.op_type = op;
  n.opset = 21;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attributes = std::move(attrs);
  return n;
}

ValueInfo Info(const std::string& name, TypeInfo type = {}) { return ValueInfo{name, std::move(type), ""}; }

Graph MakeGraph(std::vector<ValueInfo> inputs, std::vector<Node> nodes, std::vector<ValueInfo> outputs) {
  Graph g;
  g.name = "body";
  g.inputs = std::move(inputs);
  g.nodes = std::move(nodes);
  g.outputs = std::move(outputs);
  return g;
}

absl::StatusOr<std::vector<Value>> Exec(const std::string& op, int opset, std::vector<Value> inputs,
                                        std::vector<Attribute> attrs, int num_outputs = 1) {
  OpSpec spec;
  spec.op_type = op;
  spec.opset = opset;
  spec.attributes = std::move(attrs);
  spec.num_outputs = num_outputs;
  return RunOpValues(spec, std::move(inputs));
}

// Runs one `op` node reading the graph inputs named in `node_inputs` ("" =
// omitted). Every feed is a graph input, so a body can also read feeds the
// node does not take (outer-scope values).
absl::StatusOr<std::vector<Value>> RunScoped(const std::string& op, int opset, std::vector<std::string> node_inputs,
                                             std::vector<std::pair<std::string, Value>> feeds,
                                             std::vector<Attribute> attrs, int num_outputs = 1) {
  Graph g;
  g.name = "scoped";
  std::vector<Value> values;
  for (auto& [name, v] : feeds) {
    g.inputs.push_back(Info(name));
    values.push_back(std::move(v));
  }
  Node n = MakeNode(op, std::move(node_inputs), {}, std::move(attrs));
  n.opset = opset;
  for (int i = 0; i < num_outputs; ++i) {
    n.outputs.push_back("out" + std::to_string(i));
    g.outputs.push_back(Info(n.outputs.back()));
  }
  g.nodes.push_back(std::move(n));
  auto plan = BuildPlan(g);
  if (!plan.ok()) return plan.status();
  return ExecutePlan(**plan, std::move(values), ExecutionContext{});
}

// ---- If ----

// then: in1 + in2; else: in1 * in1 (outer-scope values in1, in2).
std::vector<Attribute> IfBranches() {
  Graph then_g = MakeGraph({}, {MakeNode("Add", {"in1", "in2"}, {"t"})}, {Info("t")});
  Graph else_g = MakeGraph({}, {MakeNode("Mul", {"in1", "in1"}, {"e"})}, {Info("e")});
  return {AttrGraph("then_branch", then_g), AttrGraph("else_branch", else_g)};
}

TEST(ControlFlowTest, IfRunsTheChosenBranchWithOuterValues) {
  Tensor a = T_<int64_t>({2}, {3, 4});
  Tensor b = T_<int64_t>({2, 2}, {1, 2, 3, 4});
  auto then_out =
      RunScoped("If", 21, {"c"}, {{"c", Ten(T_<bool>({}, {true}))}, {"in1", Ten(a)}, {"in2", Ten(b)}}, IfBranches());
  ASSERT_TRUE(then_out.ok()) << then_out.status();
  EXPECT_EQ(then_out->at(0).tensor.shape(), Shape({2, 2}));  // the branches differ in shape
  EXPECT_EQ(Values<int64_t>(then_out->at(0).tensor), std::vector<int64_t>({4, 6, 6, 8}));

  auto else_out =
      RunScoped("If", 11, {"c"}, {{"c", Ten(T_<bool>({1}, {false}))}, {"in1", Ten(a)}, {"in2", Ten(b)}}, IfBranches());
  ASSERT_TRUE(else_out.ok()) << else_out.status();
  EXPECT_EQ(else_out->at(0).tensor.shape(), Shape({2}));
  EXPECT_EQ(Values<int64_t>(else_out->at(0).tensor), std::vector<int64_t>({9, 16}));
}

TEST(ControlFlowTest, IfRejectsABadCondition) {
  Tensor a = T_<int64_t>({1}, {1});
  auto run_if = [&](Tensor cond, std::vector<Attribute> attrs) {
    return RunScoped("If", 21, {"c"}, {{"c", Ten(std::move(cond))}, {"in1", Ten(a)}, {"in2", Ten(a)}},
                     std::move(attrs));
  };
  EXPECT_TRUE(run_if(T_<bool>({}, {true}), IfBranches()).ok());
  ExpectError(run_if(T_<int32_t>({}, {1}), IfBranches()), "input 'cond' must be bool, got int32");
  ExpectError(run_if(T_<bool>({2}, {true, false}), IfBranches()), "input 'cond' must hold one element, got shape");
  ExpectError(run_if(T_<bool>({0}, {}), IfBranches()), "input 'cond' must hold one element, got shape");
  ExpectError(run_if(T_<bool>({}, {true}), {}), "attribute 'then_branch' is required");  // no branches
}

TEST(ControlFlowTest, IfPassesSequencesAndEmptyOptionals) {
  Graph then_g = MakeGraph({}, {MakeNode("SequenceConstruct", {"in1", "in1"}, {"s"})}, {Info("s")});
  Attribute type;
  type.name = "type";
  type.type = Attribute::Type::kTypeProto;
  type.type_proto = TypeInfo::Tensor(DType::kFloat32);
  Graph else_g = MakeGraph({}, {MakeNode("Optional", {}, {"o"}, {type})}, {Info("o")});
  std::vector<Attribute> attrs = {AttrGraph("then_branch", then_g), AttrGraph("else_branch", else_g)};
  auto seq =
      RunScoped("If", 16, {"c"}, {{"c", Ten(T_<bool>({}, {true}))}, {"in1", Ten(T_<float>({1}, {2.5f}))}}, attrs);
  ASSERT_TRUE(seq.ok()) << seq.status();
  ASSERT_EQ(seq->at(0).kind, Value::Kind::kSequence);
  EXPECT_EQ(seq->at(0).sequence.size(), 2u);
  auto none =
      RunScoped("If", 16, {"c"}, {{"c", Ten(T_<bool>({}, {false}))}, {"in1", Ten(T_<float>({1}, {2.5f}))}}, attrs);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->at(0).kind, Value::Kind::kNone);
}

// ---- Loop ----

// body(i, cond, acc) -> (cond, acc + step, acc + step) with `step` from the
// outer scope: one loop-carried value and one scan output.
Graph AccumulateBody(TypeInfo scan_type = {}) {
  return MakeGraph({Info("i"), Info("cond_in"), Info("acc")}, {MakeNode("Add", {"acc", "step"}, {"next"})},
                   {Info("cond_in"), Info("next"), Info("next", std::move(scan_type))});
}

TEST(ControlFlowTest, LoopWithTripCountCarriesAndStacks) {
  auto out = RunScoped(
      "Loop", 21, {"m", "", "acc"},
      {{"m", Ten(T_<int64_t>({}, {3}))}, {"acc", Ten(T_<float>({2}, {0, 1}))}, {"step", Ten(T_<float>({2}, {1, 10}))}},
      {AttrGraph("body", AccumulateBody())}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0).tensor), std::vector<float>({3, 31}));
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({3, 2}));
  EXPECT_EQ(Values<float>(out->at(1).tensor), std::vector<float>({1, 11, 2, 21, 3, 31}));
}

TEST(ControlFlowTest, LoopUsesTheIterationNumber) {
  // body: acc_out = acc + i (int64); after M=4: 0+0+1+2+3 = 6.
  Graph body = MakeGraph({Info("i"), Info("c"), Info("acc")}, {MakeNode("Add", {"acc", "i"}, {"acc_out"})},
                         {Info("c"), Info("acc_out")});
  auto out = Exec("Loop", 1, {Ten(T_<int64_t>({}, {4})), Ten(T_<bool>({}, {true})), Ten(T_<int64_t>({}, {0}))},
                  {AttrGraph("body", body)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0).tensor), std::vector<int64_t>({6}));
}

TEST(ControlFlowTest, LoopStopsWhenTheBodyConditionTurnsFalse) {
  // No trip count; the body reads its condition from an outer sequence of
  // flags [true, true, false, true] at the iteration number: iterations 0, 1
  // and 2 run, so acc = 3 * 5 and three scan rows.
  Graph body =
      MakeGraph({Info("i"), Info("c"), Info("acc")},
                {MakeNode("SequenceAt", {"flags", "i"}, {"c_out"}), MakeNode("Add", {"acc", "step"}, {"acc_out"})},
                {Info("c_out"), Info("acc_out"), Info("acc_out")});
  auto feeds = [](Tensor m) {
    Value flags =
        Seq({T_<bool>({}, {true}), T_<bool>({}, {true}), T_<bool>({}, {false}), T_<bool>({}, {true})}, DType::kBool);
    return std::vector<std::pair<std::string, Value>>{{"m", Ten(std::move(m))},
                                                      {"cond", Ten(T_<bool>({}, {true}))},
                                                      {"acc", Ten(T_<int32_t>({1}, {0}))},
                                                      {"step", Ten(T_<int32_t>({1}, {5}))},
                                                      {"flags", flags}};
  };
  auto out = RunScoped("Loop", 13, {"", "cond", "acc"}, feeds(T_<int64_t>({}, {100})), {AttrGraph("body", body)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0).tensor), std::vector<int32_t>({15}));
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({3, 1}));
  EXPECT_EQ(Values<int32_t>(out->at(1).tensor), std::vector<int32_t>({5, 10, 15}));

  // Both M and the body condition bound the loop: M = 2 ends it first.
  auto capped = RunScoped("Loop", 13, {"m", "", "acc"}, feeds(T_<int64_t>({}, {2})), {AttrGraph("body", body)}, 2);
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_EQ(Values<int32_t>(capped->at(0).tensor), std::vector<int32_t>({10}));
}

TEST(ControlFlowTest, LoopThatNeverRunsGivesEmptyScanOutputsOfTheDeclaredShape) {
  TypeInfo declared = TypeInfo::Tensor(DType::kFloat64, {Dim{2, ""}, Dim{-1, "n"}});
  Tensor acc0 = T_<double>({2}, {7, 8});
  // cond = false: zero iterations, the initial value passes through.
  auto out = RunScoped(
      "Loop", 21, {"m", "cond", "acc"},
      {{"m", Ten(T_<int64_t>({}, {5}))}, {"cond", Ten(T_<bool>({}, {false}))}, {"acc", Ten(acc0)}, {"step", Ten(acc0)}},
      {AttrGraph("body", AccumulateBody(declared))}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0).tensor), std::vector<double>({7, 8}));
  EXPECT_EQ(out->at(1).tensor.dtype(), DType::kFloat64);
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({0, 2, 0}));

  // M = 0 (and a negative M) run nothing either; no declared type: float32 [0].
  for (int64_t m : {0, -3}) {
    auto zero = RunScoped("Loop", 11, {"m", "", "acc"},
                          {{"m", Ten(T_<int64_t>({}, {m}))}, {"acc", Ten(acc0)}, {"step", Ten(acc0)}},
                          {AttrGraph("body", AccumulateBody())}, 2);
    ASSERT_TRUE(zero.ok()) << zero.status();
    EXPECT_EQ(zero->at(1).tensor.shape(), Shape({0}));
  }
}

TEST(ControlFlowTest, LoopCarriesSequencesAndOptionals) {
  // body appends the iteration number to a loop-carried sequence (opset 13).
  Graph body = MakeGraph({Info("i"), Info("c"), Info("seq")}, {MakeNode("SequenceInsert", {"seq", "i"}, {"seq_out"})},
                         {Info("c"), Info("seq_out")});
  auto out = Exec("Loop", 13, {Ten(T_<int64_t>({}, {3})), Absent(), Seq({}, DType::kInt64)}, {AttrGraph("body", body)});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).kind, Value::Kind::kSequence);
  ASSERT_EQ(out->at(0).sequence.size(), 3u);
  EXPECT_EQ(Values<int64_t>(out->at(0).sequence[2]), std::vector<int64_t>({2}));

  // An empty optional carried through unchanged (opset 16).
  Graph pass = MakeGraph({Info("i"), Info("c"), Info("opt")}, {}, {Info("c"), Info("opt")});
  auto none =
      Exec("Loop", 16, {Ten(T_<int64_t>({}, {2})), Absent(), Value::None(DType::kFloat32)}, {AttrGraph("body", pass)});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->at(0).kind, Value::Kind::kNone);
}

TEST(ControlFlowTest, LoopRejectsBadInput) {
  Tensor acc0 = T_<float>({1}, {0});
  auto run = [&](Tensor m, Tensor cond, std::vector<Attribute> attrs, int carried = 1) {
    std::vector<std::pair<std::string, Value>> feeds = {
        {"m", Ten(std::move(m))}, {"acc", Ten(acc0)}, {"step", Ten(acc0)}};
    std::vector<std::string> in = {"m", cond.defined() ? "cond" : "", "acc"};
    if (cond.defined()) feeds.push_back({"cond", Ten(std::move(cond))});
    if (carried == 2) in.push_back("acc");
    return RunScoped("Loop", 21, in, std::move(feeds), std::move(attrs), carried + 1);
  };
  std::vector<Attribute> body = {AttrGraph("body", AccumulateBody())};
  EXPECT_TRUE(run(T_<int64_t>({}, {3}), Tensor(), body).ok());
  ExpectError(run(T_<float>({}, {3}), Tensor(), body), "input 'M' must be an int64 scalar");
  ExpectError(run(T_<int64_t>({2}, {3, 3}), Tensor(), body), "input 'M' must be an int64 scalar");
  ExpectError(run(T_<int64_t>({}, {3}), T_<int64_t>({}, {1}), body), "input 'cond' must be bool, got int64");
  ExpectError(run(T_<int64_t>({}, {3}), Tensor(), {}), "attribute 'body' is required");  // no body
  ExpectError(run(T_<int64_t>({}, {3}), Tensor(), body, 2), "body takes 3 inputs; expected 4");
  // A body condition that is not bool.
  Graph bad_cond = MakeGraph({Info("i"), Info("c"), Info("acc")}, {}, {Info("i"), Info("acc"), Info("acc")});
  ExpectError(run(T_<int64_t>({}, {3}), Tensor(), {AttrGraph("body", bad_cond)}), "body output 'cond' must be bool");
}

TEST(ControlFlowTest, OmittedRequiredInputsAreErrors) {
  Tensor one = T_<float>({1}, {1});
  ExpectError(RunScoped("If", 21, {""}, {{"in1", Ten(one)}, {"in2", Ten(one)}}, IfBranches()),
              "input 'cond' is missing");
  ExpectError(RunScoped("Loop", 21, {"m", "", ""}, {{"m", Ten(T_<int64_t>({}, {1}))}, {"step", Ten(one)}},
                        {AttrGraph("body", AccumulateBody())}, 2),
              "loop-carried input 0 is missing");
  ExpectError(
      RunScoped("Scan", 21, {"", "x"}, {{"x", Ten(one)}},
                {AttrGraph("body", MakeGraph({Info("s"), Info("x")}, {}, {Info("s")})), AttrInt("num_scan_inputs", 1)}),
      "input 0 is missing");
}

TEST(ControlFlowTest, LoopRejectsScanOutputsThatChangeShape) {
  // scan output = outer sequence element i, whose shapes differ.
  Graph body =
      MakeGraph({Info("i"), Info("c")}, {MakeNode("SequenceAt", {"parts", "i"}, {"elem"})}, {Info("c"), Info("elem")});
  Value parts = Seq({T_<float>({1}, {1}), T_<float>({2}, {1, 2})}, DType::kFloat32);
  auto out =
      RunScoped("Loop", 21, {"m", ""}, {{"m", Ten(T_<int64_t>({}, {2}))}, {"parts", parts}}, {AttrGraph("body", body)});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("changed"), std::string::npos) << out.status();
}

// ---- Scan ----

// body(sum, x) -> (sum + x, sum + x)
Graph SumBody() {
  return MakeGraph({Info("sum"), Info("x")}, {MakeNode("Add", {"sum", "x"}, {"next"})}, {Info("next"), Info("next")});
}

TEST(ControlFlowTest, Scan9SumsAlongAxisZero) {
  auto out = Exec("Scan", 21, {Ten(T_<float>({2}, {0, 0})), Ten(T_<float>({3, 2}, {1, 2, 3, 4, 5, 6}))},
                  {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0).tensor), std::vector<float>({9, 12}));
  EXPECT_EQ(Values<float>(out->at(1).tensor), std::vector<float>({1, 2, 4, 6, 9, 12}));
}

TEST(ControlFlowTest, ScanHonoursAxesAndDirections) {
  // x is [2, 3]; scanning axis 1 backwards feeds columns (3,6), (2,5), (1,4).
  // Running sums: (3,6), (5,11), (6,15). Output axis 1 with prepending puts
  // iteration 0 last: [[6,5,3],[15,11,6]].
  Tensor x = T_<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto out = Exec("Scan", 11, {Ten(T_<int32_t>({2}, {0, 0})), Ten(x)},
                  {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1), AttrInts("scan_input_axes", {-1}),
                   AttrInts("scan_input_directions", {1}), AttrInts("scan_output_axes", {1}),
                   AttrInts("scan_output_directions", {1})},
                  2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0).tensor), std::vector<int32_t>({6, 15}));
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({2, 3}));
  EXPECT_EQ(Values<int32_t>(out->at(1).tensor), std::vector<int32_t>({6, 5, 3, 15, 11, 6}));
}

TEST(ControlFlowTest, ScanOfLengthZeroReturnsTheInitialState) {
  auto out = Exec("Scan", 16, {Ten(T_<float>({2}, {1, 2})), Ten(Tensor::Zeros(DType::kFloat32, {0, 2}))},
                  {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0).tensor), std::vector<float>({1, 2}));
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({0}));
}

TEST(ControlFlowTest, ScanRejectsBadInput) {
  Tensor init = T_<float>({2}, {0, 0});
  Tensor a = T_<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor b = T_<float>({2, 2}, {1, 2, 3, 4});
  ExpectError(Exec("Scan", 21, {Ten(init), Ten(a)}, {AttrGraph("body", SumBody())}, 2),
              "'num_scan_inputs' must be >= 1");
  ExpectError(Exec("Scan", 21, {Ten(init), Ten(a)},
                   {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1), AttrInts("scan_input_axes", {2})}, 2),
              "scan_input_axes[0]: axis 2 is out of range for");
  ExpectError(
      Exec("Scan", 21, {Ten(init), Ten(a)},
           {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1), AttrInts("scan_input_axes", {0, 0})}, 2),
      "attribute 'scan_input_axes' has 2 entries;");
  // Two scan inputs of different lengths (3 and 2) with a two-input body.
  Graph body2 = MakeGraph({Info("x"), Info("y")}, {MakeNode("Add", {"x", "y"}, {"s"})}, {Info("s")});
  ExpectError(Exec("Scan", 21, {Ten(a), Ten(b)}, {AttrGraph("body", body2), AttrInt("num_scan_inputs", 2)}),
              "scan input 1 has length 2 along its scan axis;");
  ExpectError(Exec("Scan", 21, {Ten(init), Ten(T_<float>({}, {1}))},
                   {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1)}, 2),
              "scan input 0 is a scalar; it needs a scan axis");
}

TEST(ControlFlowTest, Scan8RunsEachBatchEntryToItsLength) {
  // batch 2, max length 3; entry 1 stops after 2 steps and its last scan row
  // is zero padding. Entry 1 scans backwards over its 2 valid steps.
  Tensor init = T_<float>({2, 1}, {0, 100});
  Tensor x = T_<float>({2, 3, 1}, {1, 2, 3, 4, 5, 6});
  auto out = Exec("Scan", 8, {Ten(T_<int64_t>({2}, {3, 2})), Ten(init), Ten(x)},
                  {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1), AttrInts("directions", {0})}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0).tensor), std::vector<float>({6, 109}));
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({2, 3, 1}));
  EXPECT_EQ(Values<float>(out->at(1).tensor), std::vector<float>({1, 3, 6, 104, 109, 0}));

  auto rev = Exec("Scan", 8, {Ten(T_<int64_t>({2}, {3, 2})), Ten(init), Ten(x)},
                  {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1), AttrInts("directions", {1})}, 2);
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ(Values<float>(rev->at(1).tensor), std::vector<float>({3, 5, 6, 105, 109, 0}));

  // Without sequence_lens every entry runs the full length.
  auto full =
      Exec("Scan", 8, {Absent(), Ten(init), Ten(x)}, {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1)}, 2);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(Values<float>(full->at(0).tensor), std::vector<float>({6, 115}));

  ExpectError(Exec("Scan", 8, {Ten(T_<int64_t>({2}, {4, 1})), Ten(init), Ten(x)},
                   {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1)}, 2),
              "sequence_lens[0] = 4 is outside [0, 3]");
  ExpectError(Exec("Scan", 8, {Absent(), Ten(T_<float>({3, 1}, {0, 0, 0})), Ten(x)},
                   {AttrGraph("body", SumBody()), AttrInt("num_scan_inputs", 1)}, 2),
              "state 0 has shape [3,1]; its first axis must be");
}

}  // namespace
}  // namespace hepml::ops::testing
