// Unit tests of RNN, GRU and LSTM. Linear (Affine/Relu) cells with hidden
// size 1 are worked out by hand; the LSTM and GRU values come from a numpy
// transcription of the ONNX equations (float64), quoted to 9 digits.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/op_test_util.h"
#include "runtime/executor.h"

namespace hepml::ops::testing {
namespace {

Value Ten(Tensor t) { return Value::FromTensor(std::move(t)); }
Value Absent() { return Value(); }  // kTensor with no tensor: an omitted input

template <typename R>
void ExpectError(const R& result, const std::string& fragment) {
  ASSERT_FALSE(result.ok()) << "expected an error mentioning: " << fragment;
  EXPECT_NE(result.status().message().find(fragment), std::string::npos) << result.status();
}

absl::StatusOr<std::vector<Value>> Exec(const std::string& op, int opset, std::vector<Value> inputs,
                                        std::vector<Attribute> attrs, int num_outputs) {
  OpSpec spec;
  spec.op_type = op;
  spec.opset = opset;
  spec.attributes = std::move(attrs);
  spec.num_outputs = num_outputs;
  return RunOpValues(spec, std::move(inputs));
}

void ExpectNear(const Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  ASSERT_EQ(t.size(), static_cast<int64_t>(expected.size()));
  for (int64_t i = 0; i < t.size(); ++i) {
    double v = t.dtype() == DType::kFloat64   ? t.data<double>()[i]
               : t.dtype() == DType::kFloat16 ? static_cast<double>(static_cast<float>(t.data<Float16>()[i]))
                                              : t.data<float>()[i];
    EXPECT_NEAR(v, expected[i], tol) << "element " << i;
  }
}

// h_t = relu(x_t + 0.5 h_{t-1} + 1) over x = 1, -4, 2: h = 2, 0, 3.
TEST(RecurrentTest, RnnReluByHand) {
  auto out = Exec("RNN", 7,
                  {Ten(T_<float>({3, 1, 1}, {1, -4, 2})), Ten(T_<float>({1, 1, 1}, {1})),
                   Ten(T_<float>({1, 1, 1}, {0.5f})), Ten(T_<float>({1, 2}, {0, 1}))},
                  {AttrInt("hidden_size", 1), AttrStrings("activations", {"Relu"})}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.shape(), Shape({3, 1, 1, 1}));
  EXPECT_EQ(Values<float>(out->at(0).tensor), std::vector<float>({2, 0, 3}));
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({1, 1, 1}));
  EXPECT_EQ(Values<float>(out->at(1).tensor), std::vector<float>({3}));
}

// Bidirectional linear cells (Affine with its defaults alpha 1, beta 0) in
// batch-major layout. Forward: h_t = x_t + 0.5 h_{t-1}; reverse: h_t = 2 x_t.
// Batch 0 x = 1, 2, 3: forward 1, 2.5, 4.25; reverse 2, 4, 6 (Y_h at t=0).
// Batch 1 x = 4, 0, -2: forward 4, 2, -1; reverse 8, 0, -4.
TEST(RecurrentTest, RnnBidirectionalBatchMajorAtOpset21) {
  auto out = Exec("RNN", 21,
                  {Ten(T_<float>({2, 3, 1}, {1, 2, 3, 4, 0, -2})), Ten(T_<float>({2, 1, 1}, {1, 2})),
                   Ten(T_<float>({2, 1, 1}, {0.5f, 0}))},
                  {AttrInt("hidden_size", 1), AttrString("direction", "bidirectional"), AttrInt("layout", 1),
                   AttrStrings("activations", {"Affine", "Affine"})},
                  2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.shape(), Shape({2, 3, 2, 1}));
  EXPECT_EQ(Values<float>(out->at(0).tensor), std::vector<float>({1, 2, 2.5f, 4, 4.25f, 6, 4, 8, 2, 0, -1, -4}));
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({2, 2, 1}));
  EXPECT_EQ(Values<float>(out->at(1).tensor), std::vector<float>({4.25f, 2, -1, 8}));
}

// Reverse direction with sequence_lens [3, 1] and h_t = x_t + 0.5 h_{t-1}:
// batch 0 runs t = 2, 1, 0 over x = 3, 2, 1: 3, 3.5, 2.75; batch 1 runs
// only t = 0 over x = 4; its padded steps are 0.
TEST(RecurrentTest, RnnReverseWithSequenceLengths) {
  std::vector<Attribute> attrs = {AttrInt("hidden_size", 1), AttrString("direction", "reverse"),
                                  AttrStrings("activations", {"affine"})};
  std::vector<Value> in = {Ten(T_<double>({3, 2, 1}, {1, 4, 2, 5, 3, 6})), Ten(T_<double>({1, 1, 1}, {1})),
                           Ten(T_<double>({1, 1, 1}, {0.5})), Absent(), Ten(T_<int32_t>({2}, {3, 1}))};
  auto out = Exec("RNN", 14, in, attrs, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0).tensor), std::vector<double>({2.75, 4, 3.5, 0, 3, 0}));
  EXPECT_EQ(Values<double>(out->at(1).tensor), std::vector<double>({2.75, 4}));

  in[4] = Ten(T_<int32_t>({2}, {3, 4}));
  ExpectError(Exec("RNN", 14, in, attrs, 2), "sequence_lens[1] = 4 is outside [0, 3]");
  in[4] = Ten(T_<int32_t>({3}, {3, 3, 3}));
  ExpectError(Exec("RNN", 14, in, attrs, 2), "sequence_lens must be an int32 tensor of shape [2]");
}

TEST(RecurrentTest, RnnInFloat16) {
  // h_t = relu(x_t + 0.5 h_{t-1} + 1) as in RnnReluByHand: exact in float16.
  auto f16 = [](std::vector<float> v, Shape s) {
    std::vector<Float16> h;
    for (float x : v) h.push_back(Float16(x));
    return T_<Float16>(std::move(s), h);
  };
  auto out = Exec("RNN", 14,
                  {Ten(f16({1, -4, 2}, {3, 1, 1})), Ten(f16({1}, {1, 1, 1})), Ten(f16({0.5f}, {1, 1, 1})),
                   Ten(f16({0, 1}, {1, 2}))},
                  {AttrStrings("activations", {"Relu"})}, 2);  // hidden_size taken from R
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.dtype(), DType::kFloat16);
  ExpectNear(out->at(0).tensor, {2, 0, 3});
  ExpectNear(out->at(1).tensor, {3});
}

// S=2, B=2, I=1, H=1 LSTM with biases, initial states and peepholes.
struct LstmData {
  Tensor x = T_<float>({2, 2, 1}, {0.5f, -1.0f, 1.5f, 2.0f});
  Tensor w = T_<float>({1, 4, 1}, {0.1f, 0.2f, 0.3f, 0.4f});
  Tensor r = T_<float>({1, 4, 1}, {0.5f, -0.6f, 0.7f, -0.8f});
  Tensor b = T_<float>({1, 8}, {0.1f, 0.2f, -0.1f, 0.0f, 0.05f, -0.05f, 0.1f, 0.2f});
  Tensor h0 = T_<float>({1, 2, 1}, {0.2f, -0.3f});
  Tensor c0 = T_<float>({1, 2, 1}, {0.4f, 0.1f});
  Tensor p = T_<float>({1, 3}, {0.3f, -0.2f, 0.1f});
  std::vector<Value> Inputs() const { return {Ten(x), Ten(w), Ten(r), Ten(b), Absent(), Ten(h0), Ten(c0), Ten(p)}; }
};

TEST(RecurrentTest, LstmWithPeepholesMatchesNumpy) {
  LstmData d;
  auto out = Exec("LSTM", 14, d.Inputs(), {AttrInt("hidden_size", 1)}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.shape(), Shape({2, 1, 2, 1}));
  ExpectNear(out->at(0).tensor, {0.18402813, 0.030178558, 0.298258275, 0.27272863});
  ExpectNear(out->at(1).tensor, {0.298258275, 0.27272863});
  ExpectNear(out->at(2).tensor, {0.601004652, 0.483735828});
}

TEST(RecurrentTest, LstmClipAndInputForgetMatchNumpy) {
  LstmData d;
  auto out =
      Exec("LSTM", 7, d.Inputs(), {AttrInt("hidden_size", 1), AttrFloat("clip", 0.25f), AttrInt("input_forget", 1)}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(0).tensor, {0.154193468, 0.037510716, 0.14942011, 0.093998886});
  ExpectNear(out->at(2).tensor, {0.272326813, 0.168790185});
}

TEST(RecurrentTest, LstmBatchMajorLayoutAgreesWithSequenceMajor) {
  // The same data transposed to [batch, seq, input] (and states to
  // [batch, dirs, hidden]) at opset 21 gives the transposed results.
  LstmData d;
  std::vector<Value> in = d.Inputs();
  in[0] = Ten(T_<float>({2, 2, 1}, {0.5f, 1.5f, -1.0f, 2.0f}));
  in[5] = Ten(T_<float>({2, 1, 1}, {0.2f, -0.3f}));
  in[6] = Ten(T_<float>({2, 1, 1}, {0.4f, 0.1f}));
  auto out = Exec("LSTM", 21, in, {AttrInt("hidden_size", 1), AttrInt("layout", 1)}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.shape(), Shape({2, 2, 1, 1}));
  ExpectNear(out->at(0).tensor, {0.18402813, 0.298258275, 0.030178558, 0.27272863});
  EXPECT_EQ(out->at(1).tensor.shape(), Shape({2, 1, 1}));
  ExpectNear(out->at(1).tensor, {0.298258275, 0.27272863});
}

TEST(RecurrentTest, LstmProducesOnlyRequestedOutputs) {
  LstmData d;
  OpSpec spec;
  spec.op_type = "LSTM";
  spec.opset = 14;
  spec.attributes = {AttrInt("hidden_size", 1)};
  spec.num_outputs = 3;
  // Run through a graph whose node names only Y_c.
  Graph g;
  g.name = "only_yc";
  Node n;
  n.op_type = "LSTM";
  n.opset = 14;
  n.attributes = spec.attributes;
  std::vector<Value> feeds = d.Inputs();
  std::vector<Value> fed;
  for (size_t i = 0; i < feeds.size(); ++i) {
    if (!feeds[i].tensor.defined()) {
      n.inputs.push_back("");
      continue;
    }
    n.inputs.push_back("in" + std::to_string(i));
    g.inputs.push_back(ValueInfo{n.inputs.back(), {}, ""});
    fed.push_back(feeds[i]);
  }
  n.outputs = {"", "", "yc"};
  g.nodes.push_back(n);
  g.outputs = {ValueInfo{"yc", {}, ""}};
  auto plan = BuildPlan(g);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = ExecutePlan(**plan, std::move(fed), ExecutionContext{});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(0).tensor, {0.601004652, 0.483735828});
}

TEST(RecurrentTest, LstmWithInitializerWeightsUsesThePackedPath) {
  // W, R, B, P as initializers are packed when the plan is built; results
  // must equal the runtime-input path.
  LstmData d;
  Graph g;
  g.name = "packed";
  g.initializers = {{"W", d.w}, {"R", d.r}, {"B", d.b}, {"P", d.p}};
  g.inputs = {ValueInfo{"X", {}, ""}, ValueInfo{"h0", {}, ""}, ValueInfo{"c0", {}, ""}};
  Node n;
  n.op_type = "LSTM";
  n.opset = 14;
  n.attributes = {AttrInt("hidden_size", 1)};
  n.inputs = {"X", "W", "R", "B", "", "h0", "c0", "P"};
  n.outputs = {"Y", "Y_h", "Y_c"};
  g.nodes.push_back(n);
  g.outputs = {ValueInfo{"Y", {}, ""}, ValueInfo{"Y_h", {}, ""}, ValueInfo{"Y_c", {}, ""}};
  auto plan = BuildPlan(g);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_NE((*plan)->nodes[0].state, nullptr);
  for (int run = 0; run < 2; ++run) {  // the packed state is reused
    auto out = ExecutePlan(**plan, {Ten(d.x), Ten(d.h0), Ten(d.c0)}, ExecutionContext{});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectNear(out->at(0).tensor, {0.18402813, 0.030178558, 0.298258275, 0.27272863});
    ExpectNear(out->at(2).tensor, {0.601004652, 0.483735828});
  }
}

TEST(RecurrentTest, LstmWithoutPeepholesTakesTheFastPathAndAgreesWithTheGeneralOne) {
  // A default-activation float LSTM without peepholes runs the in-place GEMM
  // + vectorised gates path; zero peepholes force the general path with the
  // same mathematics. Odd sizes (hidden 9, batch 37) leave vector tails.
  const int64_t seq = 5, batch = 37, in = 7, h = 9;
  for (int layout : {0, 1}) {
    for (const char* direction : {"forward", "reverse", "bidirectional"}) {
      const int64_t nd = std::string(direction) == "bidirectional" ? 2 : 1;
      uint32_t state = 12345;
      auto rnd = [&] {
        state = state * 1664525u + 1013904223u;
        return static_cast<float>((state >> 8) & 0xFFFF) / 65536.0f - 0.5f;
      };
      auto fill = [&](Shape shape) {
        Tensor t = Tensor::Empty(DType::kFloat32, shape);
        for (int64_t i = 0; i < t.size(); ++i) t.mutable_data<float>()[i] = 2.0f * rnd();
        return t;
      };
      Tensor x = fill(layout ? Shape{batch, seq, in} : Shape{seq, batch, in});
      Tensor w = fill({nd, 4 * h, in}), r = fill({nd, 4 * h, h}), b = fill({nd, 8 * h});
      Tensor h0 = fill(layout ? Shape{batch, nd, h} : Shape{nd, batch, h});
      Tensor c0 = fill(layout ? Shape{batch, nd, h} : Shape{nd, batch, h});
      Tensor p = Tensor::Empty(DType::kFloat32, {nd, 3 * h});
      std::fill_n(p.mutable_data<float>(), p.size(), 0.0f);
      std::vector<Attribute> attrs = {AttrInt("hidden_size", h), AttrInt("layout", layout),
                                      AttrString("direction", direction)};
      auto fast = Exec("LSTM", 21, {Ten(x), Ten(w), Ten(r), Ten(b), Absent(), Ten(h0), Ten(c0)}, attrs, 3);
      auto general = Exec("LSTM", 21, {Ten(x), Ten(w), Ten(r), Ten(b), Absent(), Ten(h0), Ten(c0), Ten(p)}, attrs, 3);
      ASSERT_TRUE(fast.ok()) << fast.status();
      ASSERT_TRUE(general.ok()) << general.status();
      for (int o = 0; o < 3; ++o) {
        const Tensor& a = fast->at(o).tensor;
        const Tensor& e = general->at(o).tensor;
        ASSERT_EQ(a.shape(), e.shape()) << "output " << o;
        for (int64_t i = 0; i < a.size(); ++i)
          ASSERT_NEAR(a.data<float>()[i], e.data<float>()[i], 2e-6)
              << "layout " << layout << " " << direction << " output " << o << " element " << i;
      }
    }
  }
}

TEST(RecurrentTest, LstmInFloat64WithoutOptionalInputs) {
  // W = R = 0 and no bias: every gate is sigmoid(0) = 0.5 and the cell input
  // tanh(0) = 0, so c stays 0 and h = 0.5 * tanh(0) = 0.
  auto out = Exec("LSTM", 14,
                  {Ten(Tensor::Zeros(DType::kFloat64, {3, 2, 4})), Ten(Tensor::Zeros(DType::kFloat64, {1, 8, 4})),
                   Ten(Tensor::Zeros(DType::kFloat64, {1, 8, 2}))},
                  {AttrInt("hidden_size", 2)}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.shape(), Shape({3, 1, 2, 2}));
  EXPECT_EQ(Values<double>(out->at(1).tensor), std::vector<double>(4, 0.0));
  // Initial c = 1, input gate sigmoid(0)... with W = R = 0: c_1 = 0.5 * 1 +
  // 0.5 * 0 = 0.5, h_1 = 0.5 * tanh(0.5).
  auto one = Exec(
      "LSTM", 14,
      {Ten(Tensor::Zeros(DType::kFloat64, {1, 1, 1})), Ten(Tensor::Zeros(DType::kFloat64, {1, 4, 1})),
       Ten(Tensor::Zeros(DType::kFloat64, {1, 4, 1})), Absent(), Absent(), Absent(), Ten(T_<double>({1, 1, 1}, {1.0}))},
      {}, 3);
  ASSERT_TRUE(one.ok()) << one.status();
  ExpectNear(one->at(1).tensor, {0.5 * std::tanh(0.5)}, 1e-12);
  ExpectNear(one->at(2).tensor, {0.5}, 1e-12);
}

struct GruData {
  Tensor x = T_<float>({2, 2, 1}, {0.5f, -1.0f, 1.5f, 2.0f});
  Tensor w = T_<float>({1, 3, 1}, {0.1f, 0.2f, 0.3f});
  Tensor r = T_<float>({1, 3, 1}, {0.5f, -0.6f, 0.7f});
  Tensor b = T_<float>({1, 6}, {0.1f, 0.2f, -0.1f, 0.05f, -0.05f, 0.1f});
  Tensor h0 = T_<float>({1, 2, 1}, {0.2f, -0.3f});
  std::vector<Value> Inputs() const { return {Ten(x), Ten(w), Ten(r), Ten(b), Absent(), Ten(h0)}; }
};

TEST(RecurrentTest, GruBothResetModesMatchNumpy) {
  GruData d;
  auto plain = Exec("GRU", 14, d.Inputs(), {AttrInt("hidden_size", 1)}, 2);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ExpectNear(plain->at(0).tensor, {0.208870479, -0.347254968, 0.321029297, -0.002366161});
  ExpectNear(plain->at(1).tensor, {0.321029297, -0.002366161});

  auto lbr = Exec("GRU", 21, d.Inputs(), {AttrInt("hidden_size", 1), AttrInt("linear_before_reset", 1)}, 2);
  ASSERT_TRUE(lbr.ok()) << lbr.status();
  ExpectNear(lbr->at(0).tensor, {0.189760737, -0.367679259, 0.294871216, -0.02783703});

  // GRU-1 has no linear_before_reset: the attribute is not read there.
  auto v1 = Exec("GRU", 1, d.Inputs(), {AttrInt("hidden_size", 1), AttrInt("linear_before_reset", 1)}, 2);
  ASSERT_TRUE(v1.ok()) << v1.status();
  ExpectNear(v1->at(1).tensor, {0.321029297, -0.002366161});
}

TEST(RecurrentTest, EmptySequenceAndEmptyBatch) {
  // seq_length 0: Y is empty, Y_h is the initial state.
  auto out = Exec("GRU", 14,
                  {Ten(Tensor::Zeros(DType::kFloat32, {0, 2, 1})), Ten(T_<float>({1, 3, 1}, {1, 1, 1})),
                   Ten(T_<float>({1, 3, 1}, {1, 1, 1})), Absent(), Absent(), Ten(T_<float>({1, 2, 1}, {0.25f, -1}))},
                  {AttrInt("hidden_size", 1)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.shape(), Shape({0, 1, 2, 1}));
  EXPECT_EQ(Values<float>(out->at(1).tensor), std::vector<float>({0.25f, -1}));

  auto no_batch = Exec("LSTM", 14,
                       {Ten(Tensor::Zeros(DType::kFloat32, {3, 0, 1})), Ten(Tensor::Zeros(DType::kFloat32, {1, 4, 1})),
                        Ten(Tensor::Zeros(DType::kFloat32, {1, 4, 1}))},
                       {AttrInt("hidden_size", 1)}, 3);
  ASSERT_TRUE(no_batch.ok()) << no_batch.status();
  EXPECT_EQ(no_batch->at(0).tensor.shape(), Shape({3, 1, 0, 1}));
  EXPECT_EQ(no_batch->at(2).tensor.shape(), Shape({1, 0, 1}));
}

TEST(RecurrentTest, BadInputIsAnError) {
  Tensor x = T_<float>({2, 1, 1}, {1, 2});
  Tensor w = T_<float>({1, 1, 1}, {1});
  Tensor r = T_<float>({1, 1, 1}, {1});
  auto rnn = [&](std::vector<Value> in, std::vector<Attribute> attrs, int opset = 14) {
    return Exec("RNN", opset, std::move(in), std::move(attrs), 2);
  };
  EXPECT_TRUE(rnn({Ten(x), Ten(w), Ten(r)}, {}).ok());
  ExpectError(rnn({Ten(T_<float>({2, 1}, {1, 2})), Ten(w), Ten(r)}, {}), "X must have rank 3");
  ExpectError(rnn({Absent(), Ten(w), Ten(r)}, {}), "input X is missing");
  ExpectError(rnn({Ten(x), Absent(), Ten(r)}, {}), "input W is missing");
  ExpectError(rnn({Ten(x), Ten(T_<float>({1, 2, 1}, {1, 1})), Ten(r)}, {}), "W has shape [1,2,1]");
  ExpectError(rnn({Ten(x), Ten(T_<float>({1, 1, 2}, {1, 1})), Ten(r)}, {}), "X has input size 1, W expects 2");
  ExpectError(rnn({Ten(x), Ten(w), Ten(r)}, {AttrInt("hidden_size", 2)}), "W has shape");
  ExpectError(rnn({Ten(x), Ten(w), Ten(r), Ten(T_<float>({1, 3}, {0, 0, 0}))}, {}), "B has shape [1,3]");
  ExpectError(rnn({Ten(x), Ten(w), Ten(T_<double>({1, 1, 1}, {1}))}, {}), "input R has type float64");
  ExpectError(rnn({Ten(T_<int32_t>({2, 1, 1}, {1, 2})), Ten(w), Ten(r)}, {}), "has type int32");
  ExpectError(rnn({Ten(x), Ten(w), Ten(r), Absent(), Absent(), Ten(T_<float>({2, 1, 1}, {0, 0}))}, {}),
              "initial_h must be float32[1,1,1]");
  ExpectError(rnn({Ten(x), Ten(w), Ten(r)}, {AttrString("direction", "sideways")}), "'direction' must be");
  ExpectError(rnn({Ten(x), Ten(w), Ten(r)}, {AttrStrings("activations", {"Swish"})}), "unknown activation");
  ExpectError(rnn({Ten(x), Ten(w), Ten(r)}, {AttrStrings("activations", {"Tanh", "Tanh", "Tanh"})}),
              "'activations' has 3 entries");
  ExpectError(rnn({Ten(x), Ten(w), Ten(r)}, {AttrInt("layout", 2)}), "'layout' must be 0 or 1");
  ExpectError(rnn({Ten(x), Ten(w), Ten(r)}, {AttrFloat("clip", -1)}), "'clip' must be positive");
  // Bidirectional needs weights for two directions.
  ExpectError(rnn({Ten(x), Ten(w), Ten(r)}, {AttrString("direction", "bidirectional")}), "W has shape [1,1,1]");
  // A bad P for LSTM.
  LstmData d;
  std::vector<Value> in = d.Inputs();
  in[7] = Ten(T_<float>({1, 2}, {0, 0}));
  ExpectError(Exec("LSTM", 14, in, {}, 3), "P has shape [1,2]");
}

TEST(RecurrentTest, ActivationAlphaIsConsumedByTheFunctionsThatUseIt) {
  // LeakyRelu (alpha 0.1) for forward, ScaledTanh for reverse takes the next
  // alpha (2) and the only beta (0.5). W = 1, R = 0, x = -2 (one step):
  // forward leaky: -0.2; reverse 2 * tanh(0.5 * -2) = 2 tanh(-1).
  auto out =
      Exec("RNN", 14,
           {Ten(T_<float>({1, 1, 1}, {-2})), Ten(T_<float>({2, 1, 1}, {1, 1})), Ten(T_<float>({2, 1, 1}, {0, 0}))},
           {AttrString("direction", "bidirectional"), AttrStrings("activations", {"LeakyRelu", "ScaledTanh"}),
            AttrFloats("activation_alpha", {0.1f, 2.0f}), AttrFloats("activation_beta", {0.5f})},
           2);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->at(1).tensor, {-0.2, 2 * std::tanh(-1.0)});
}

}  // namespace
}  // namespace hepml::ops::testing
