#include "hepml/session.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "onnx/onnx_pb.h"
#include "ops/gemm.h"
#include "runtime/batch_split.h"

namespace hepml {
namespace {

void AddTensorValue(onnx::ValueInfoProto* vi, const std::string& name, int elem_type,
                    std::vector<std::string> dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (const std::string& d : dims) {
    auto* dim = shape->add_dim();
    if (std::isdigit(static_cast<unsigned char>(d[0]))) dim->set_dim_value(std::stoll(d));
    else dim->set_dim_param(d);
  }
}

// y = (x + bias) * x, with bias an initializer of shape [3]; x is [n, 3].
std::string AddMulModel(const std::string& extra_op = "") {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("add_mul");
  AddTensorValue(g->add_input(), "x", onnx::TensorProto::FLOAT, {"n", "3"});
  AddTensorValue(g->add_output(), "y", onnx::TensorProto::FLOAT, {"n", "3"});
  auto* b = g->add_initializer();
  b->set_name("bias");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(3);
  for (float v : {1.f, 2.f, 3.f}) b->add_float_data(v);
  auto* add = g->add_node();
  add->set_op_type("Add");
  add->set_name("add");
  add->add_input("x");
  add->add_input("bias");
  add->add_output("s");
  auto* mul = g->add_node();
  mul->set_op_type("Mul");
  mul->set_name("mul");
  mul->add_input("s");
  mul->add_input("x");
  mul->add_output(extra_op.empty() ? "y" : "t");
  if (!extra_op.empty()) {
    auto* n = g->add_node();
    n->set_op_type(extra_op);
    n->set_name("mystery");
    n->add_input("t");
    n->add_output("y");
  }
  return m.SerializeAsString();
}

Tensor X(int64_t n) {
  std::vector<float> v;
  for (int64_t i = 0; i < n * 3; ++i) v.push_back(static_cast<float>(i));
  return Tensor::FromVector<float>({n, 3}, v);
}

TEST(SessionTest, DescribesInputsAndOutputs) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ((*s)->inputs().size(), 1u);  // the initializer is not an input to feed
  const TensorInfo& x = (*s)->inputs()[0];
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(x.dtype, DType::kFloat32);
  EXPECT_EQ(x.shape, std::vector<int64_t>({-1, 3}));
  EXPECT_EQ(x.dim_names[0], "n");
}

TEST(SessionTest, RunsWithChangingBatchSizes) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok()) << s.status();
  for (int64_t n : {1, 4, 2, 0}) {
    auto out = (*s)->Run({{"x", X(n)}});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->size(), 1u);
    const Tensor& y = (*out)[0];
    EXPECT_EQ(y.shape(), Shape({n, 3}));
    for (int64_t i = 0; i < n * 3; ++i) {
      float x = static_cast<float>(i);
      EXPECT_EQ(y.data<float>()[i], (x + static_cast<float>(i % 3 + 1)) * x);
    }
  }
}

TEST(SessionTest, ManyThreadsShareOneSession) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok()) << s.status();
  const Session& session = **s;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int iter = 0; iter < 50; ++iter) {
        int64_t n = 1 + (t + iter) % 5;
        auto out = session.Run({{"x", X(n)}});
        if (!out.ok() || (*out)[0].shape() != Shape({n, 3})) {
          ++wrong;
          continue;
        }
        const float* y = (*out)[0].data<float>();
        float x_last = static_cast<float>(n * 3 - 1);
        if (y[n * 3 - 1] != (x_last + 3.f) * x_last) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(SessionTest, UnknownInputNameIsAnError) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok());
  auto out = (*s)->Run({{"z", X(1)}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("unknown input 'z'"), std::string::npos) << out.status();
}

TEST(SessionTest, MissingInputIsAnError) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok());
  auto out = (*s)->Run({});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("'x' is missing"), std::string::npos) << out.status();
}

TEST(SessionTest, WrongDtypeIsAnError) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok());
  auto out = (*s)->Run({{"x", Tensor::Zeros(DType::kFloat64, {1, 3})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("float64"), std::string::npos) << out.status();
}

TEST(SessionTest, WrongRankIsAnError) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok());
  auto out = (*s)->Run({{"x", Tensor::Zeros(DType::kFloat32, {3})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("rank 1"), std::string::npos) << out.status();
}

TEST(SessionTest, ShapeContradictingTheModelIsAnError) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok());
  auto out = (*s)->Run({{"x", Tensor::Zeros(DType::kFloat32, {2, 4})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("fixes dimension 1 to 3"), std::string::npos) << out.status();
}

TEST(SessionTest, NanAndInfPropagateAsIeee) {
  auto s = Session::CreateFromBytes(AddMulModel());
  ASSERT_TRUE(s.ok());
  float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  auto out = (*s)->Run({{"x", Tensor::FromVector<float>({1, 3}, {nan, inf, -inf})}});
  ASSERT_TRUE(out.ok()) << out.status();
  const float* y = (*out)[0].data<float>();
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], inf);   // (inf + 2) * inf
  EXPECT_EQ(y[2], inf);   // (-inf + 3) * -inf
}

TEST(SessionTest, MissingOperatorFailsAtCreationNamingNodes) {
  auto s = Session::CreateFromBytes(AddMulModel("NoSuchOperator"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(s.status().message().find("NoSuchOperator"), std::string::npos) << s.status();
  EXPECT_NE(s.status().message().find("mystery"), std::string::npos) << s.status();
}

TEST(SessionTest, PlannedMemoryGivesTheSameResultsAsHeapMemory) {
  SessionOptions heap_options;
  heap_options.plan_memory = false;
  auto planned = Session::CreateFromBytes(AddMulModel());
  auto heap = Session::CreateFromBytes(AddMulModel(), heap_options);
  ASSERT_TRUE(planned.ok() && heap.ok());
  std::vector<Tensor> kept;  // outputs of earlier runs must stay intact
  for (int round = 0; round < 4; ++round) {
    for (int64_t n : {3, 7, 3}) {
      auto a = (*planned)->Run({{"x", X(n)}});
      auto b = (*heap)->Run({{"x", X(n)}});
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(std::memcmp((*a)[0].raw_data(), (*b)[0].raw_data(), (*a)[0].nbytes()), 0);
      kept.push_back((*a)[0]);
    }
  }
  for (const Tensor& t : kept) {
    int64_t n = t.dim(0);
    float x_last = static_cast<float>(n * 3 - 1);
    EXPECT_EQ(t.data<float>()[n * 3 - 1], (x_last + 3.f) * x_last);
  }
}

int CountThreads() {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)entry;
    ++n;
  }
  return n;
}

// A framework hands hepml its own arena: hepml must add no thread beyond the
// arena's concurrency (here 1: no thread at all).
TEST(SessionTest, CreatesNoThreadBeyondTheCallersArena) {
  oneapi::tbb::task_arena arena(1);
  SessionOptions options;
  options.arena = &arena;
  const int before = CountThreads();
  auto s = Session::CreateFromBytes(AddMulModel(), options);
  ASSERT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < 20; ++i) {
    auto out = (*s)->Run({{"x", X(200000)}});  // large enough to be split if it could be
    ASSERT_TRUE(out.ok()) << out.status();
  }
  EXPECT_EQ(CountThreads(), before);
}

TEST(SessionTest, OneThreadRunsOnTheCallerOnly) {
  SessionOptions options;
  options.num_threads = 1;
  const int before = CountThreads();
  auto s = Session::CreateFromBytes(AddMulModel(), options);
  ASSERT_TRUE(s.ok()) << s.status();
  auto out = (*s)->Run({{"x", X(200000)}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(CountThreads(), before);
}

TEST(SessionTest, RunsInsideCallersArena) {
  oneapi::tbb::task_arena arena(2);
  SessionOptions options;
  options.arena = &arena;
  auto s = Session::CreateFromBytes(AddMulModel(), options);
  ASSERT_TRUE(s.ok()) << s.status();
  auto out = (*s)->Run({{"x", X(100000)}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].data<float>()[5], (5.f + 3.f) * 5.f);
}

// y = relu(x @ w + b), x [n, 3, 4]: written as MatMul, Add, Relu (domain ""),
// or as hepml's own fused node (domain "ai.hepml").
std::string DenseModel(bool fused) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  if (fused) {
    auto* op = m.add_opset_import();
    op->set_domain("ai.hepml");
    op->set_version(1);
  }
  auto* g = m.mutable_graph();
  g->set_name("dense");
  AddTensorValue(g->add_input(), "x", onnx::TensorProto::FLOAT, {"n", "3", "4"});
  AddTensorValue(g->add_output(), "y", onnx::TensorProto::FLOAT, {"n", "3", "2"});
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  w->add_dims(2);
  for (float v : {1.f, -1.f, 0.5f, 2.f, -0.25f, 1.f, 0.f, -3.f}) w->add_float_data(v);
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(2);
  for (float v : {0.5f, -1.f}) b->add_float_data(v);
  auto add_node = [&](const std::string& op, std::vector<std::string> in, const std::string& out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    for (const std::string& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  };
  if (fused) {
    auto* n = add_node("FusedGemm", {"x", "w", "b"}, "y");
    n->set_domain("ai.hepml");
    auto* a = n->add_attribute();
    a->set_name("activation");
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s("Relu");
  } else {
    add_node("MatMul", {"x", "w"}, "m");
    add_node("Add", {"m", "b"}, "a");
    add_node("Relu", {"a"}, "y");
  }
  return m.SerializeAsString();
}

TEST(SessionTest, FusedModelsAndPassesGiveTheUnfusedResults) {
  SessionOptions plain;
  plain.optimize = false;
  auto reference = Session::CreateFromBytes(DenseModel(false), plain);
  auto optimized = Session::CreateFromBytes(DenseModel(false));
  auto fused = Session::CreateFromBytes(DenseModel(true));  // hepml's own domain imports
  ASSERT_TRUE(reference.ok() && optimized.ok()) << optimized.status();
  ASSERT_TRUE(fused.ok()) << fused.status();
  bool fused_by_pass = false;
  for (const PassInfo& p : (*optimized)->passes()) fused_by_pass |= p.name == "fuse-gemm-activation" && p.changed;
  EXPECT_TRUE(fused_by_pass);
  std::vector<float> v;
  for (int i = 0; i < 2 * 3 * 4; ++i) v.push_back(static_cast<float>(i % 7) - 3.f);
  const Tensor x = Tensor::FromVector<float>({2, 3, 4}, v);
  auto a = (*reference)->Run({{"x", x}});
  auto b = (*optimized)->Run({{"x", x}});
  auto c = (*fused)->Run({{"x", x}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_EQ((*c)[0].shape(), Shape({2, 3, 2}));
  for (int64_t i = 0; i < (*a)[0].size(); ++i) {
    EXPECT_FLOAT_EQ((*a)[0].data<float>()[i], (*b)[0].data<float>()[i]) << i;
    EXPECT_FLOAT_EQ((*a)[0].data<float>()[i], (*c)[0].data<float>()[i]) << i;
  }
}


// --- Batch-parallel execution (SessionOptions::batch_split) ---

// A float graph written node by node, for the batch-split tests.
class GraphBuilder {
 public:
  explicit GraphBuilder(const std::string& name) {
    m_.set_ir_version(8);
    m_.add_opset_import()->set_version(17);
    g_ = m_.mutable_graph();
    g_->set_name(name);
  }
  void Input(const std::string& name, std::vector<std::string> dims) {
    AddTensorValue(g_->add_input(), name, onnx::TensorProto::FLOAT, std::move(dims));
  }
  void Output(const std::string& name) {
    auto* o = g_->add_output();
    o->set_name(name);
    o->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  // A float initializer holding a fixed pattern of values in [-0.45, 0.55).
  void Weight(const std::string& name, std::vector<int64_t> dims) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    for (int64_t i = 0; i < n; ++i) t->add_float_data(static_cast<float>((i * 37 + 11) % 23) / 23.f - 0.45f);
  }
  void Ints(const std::string& name, std::vector<int64_t> values) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
  }
  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
    auto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(out[0] + "_node");
    for (const std::string& i : in) n->add_input(i);
    for (const std::string& o : out) n->add_output(o);
    return n;
  }
  static void IntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void FloatAttr(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void IntsAttr(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  std::string Bytes() const { return m_.SerializeAsString(); }

 private:
  onnx::ModelProto m_;
  onnx::GraphProto* g_;
};

// calo_gan's kind of graph and more: two inputs concatenated, Gemm layers
// with LeakyRelu and Softplus, a Slice of one input and a Mul (output
// "out"); Softmax over axis 1 ("probs"); a Flatten of a rank-3 input, a view
// of it ("flat"); MatMul of that input with a rank-2 weight, Transpose and
// ReduceSum over axis 2 ("seq_out").
std::string SeparableModel() {
  GraphBuilder b("separable");
  b.Input("latent", {"batch", "6"});
  b.Input("cond", {"batch", "3"});
  b.Input("seq", {"batch", "2", "4"});
  b.Weight("w1", {24, 9});
  b.Weight("b1", {24});
  b.Weight("w2", {5, 24});
  b.Weight("b2", {5});
  b.Weight("w3", {4, 3});
  b.Ints("starts", {0});
  b.Ints("ends", {1});
  b.Ints("axes", {1});
  b.Ints("sum_axes", {2});
  GraphBuilder::IntAttr(b.Node("Concat", {"latent", "cond"}, {"cat"}), "axis", 1);
  GraphBuilder::IntAttr(b.Node("Gemm", {"cat", "w1", "b1"}, {"h1"}), "transB", 1);
  GraphBuilder::FloatAttr(b.Node("LeakyRelu", {"h1"}, {"a1"}), "alpha", 0.2f);
  GraphBuilder::IntAttr(b.Node("Gemm", {"a1", "w2", "b2"}, {"h2"}), "transB", 1);
  b.Node("Softplus", {"h2"}, {"sp"});
  b.Node("Slice", {"cond", "starts", "ends", "axes"}, {"energy"});
  b.Node("Mul", {"sp", "energy"}, {"out"});
  GraphBuilder::IntAttr(b.Node("Softmax", {"h2"}, {"probs"}), "axis", 1);
  GraphBuilder::IntAttr(b.Node("Flatten", {"seq"}, {"flat"}), "axis", 1);
  b.Node("MatMul", {"seq", "w3"}, {"mm"});
  GraphBuilder::IntsAttr(b.Node("Transpose", {"mm"}, {"tr"}), "perm", {0, 2, 1});
  b.Node("ReduceSum", {"tr", "sum_axes"}, {"seq_out"});
  for (const char* o : {"out", "probs", "flat", "seq_out"}) b.Output(o);
  return b.Bytes();
}

// y = x - mean over the batch (axis 0) of x: every row depends on all rows.
std::string BatchStatisticsModel() {
  GraphBuilder b("batch_stats");
  b.Input("x", {"batch", "4"});
  auto* mean = b.Node("ReduceMean", {"x"}, {"mean"});
  GraphBuilder::IntsAttr(mean, "axes", {0});
  GraphBuilder::IntAttr(mean, "keepdims", 1);
  b.Node("Sub", {"x", "mean"}, {"y"});
  b.Output("y");
  return b.Bytes();
}

Tensor Pattern(Shape shape, int seed) {
  Tensor t = Tensor::Empty(DType::kFloat32, shape);
  float* p = t.mutable_data<float>();
  for (int64_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>((i * 7919 + seed * 104729) % 1000) / 250.f - 2.f;
  return t;
}

Session::NamedTensors SeparableInputs(int64_t batch) {
  return {{"latent", Pattern({batch, 6}, 1)}, {"cond", Pattern({batch, 3}, 2)}, {"seq", Pattern({batch, 2, 4}, 3)}};
}

bool SameBits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// "" when bitwise equal, else where the first difference is.
std::string FirstDifference(const Tensor& a, const Tensor& b) {
  if (SameBits(a, b)) return "";
  if (a.dtype() != DType::kFloat32 || a.shape() != b.shape()) return a.DebugString() + " vs " + b.DebugString();
  int count = 0;
  std::string first;
  for (int64_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(a.data<float>() + i, b.data<float>() + i, sizeof(float)) == 0) continue;
    if (count++ == 0) first = "element " + std::to_string(i) + ": " + std::to_string(a.data<float>()[i]) + " vs " +
                              std::to_string(b.data<float>()[i]);
  }
  return first + " (" + std::to_string(count) + " of " + std::to_string(a.size()) + " differ)";
}

TEST(SessionTest, BatchSplitDecisionIsShownAndNamesTheNodeAtFault) {
  auto separable = Session::CreateFromBytes(SeparableModel());
  ASSERT_TRUE(separable.ok()) << separable.status();
  EXPECT_TRUE((*separable)->batch_split().separable) << (*separable)->batch_split().reason;
  EXPECT_GE((*separable)->batch_split().min_rows_per_slice, 1);
  auto stats = Session::CreateFromBytes(BatchStatisticsModel());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_FALSE((*stats)->batch_split().separable);
  EXPECT_NE((*stats)->batch_split().reason.find("mean_node"), std::string::npos) << (*stats)->batch_split().reason;
  EXPECT_NE((*stats)->batch_split().reason.find("axis 0"), std::string::npos) << (*stats)->batch_split().reason;
}

// Slices of any size (odd and uneven batches; fewer rows than threads and
// one row, which run whole) give bitwise the outputs of one thread, on the
// heap and in planned memory.
TEST(SessionTest, BatchSplitGivesTheOneThreadOutputs) {
  SessionOptions one;
  one.num_threads = 1;
  auto reference = Session::CreateFromBytes(SeparableModel(), one);
  ASSERT_TRUE(reference.ok()) << reference.status();
  for (int threads : {2, 3}) {
    SessionOptions options;
    options.num_threads = threads;
    options.batch_split_min_rows = 1;
    auto split = Session::CreateFromBytes(SeparableModel(), options);
    ASSERT_TRUE(split.ok()) << split.status();
    for (int64_t batch : {1, 2, 3, 5, 64, 75, 100, 129, 255, 256, 1001}) {
      auto inputs = SeparableInputs(batch);
      auto want = (*reference)->Run(inputs);
      ASSERT_TRUE(want.ok()) << want.status();
      for (int call = 0; call < 3; ++call) {  // the first records the memory plan, the others use it
        RunProfile profile;
        auto got = (*split)->Run(inputs, {}, &profile);
        ASSERT_TRUE(got.ok()) << got.status();
        if (batch <= 3) {
          EXPECT_EQ(profile.batch_slices, 1) << "batch " << batch;
        }
        if (batch >= 255) {
          EXPECT_EQ(profile.batch_slices, threads) << "batch " << batch;
        }
        EXPECT_LE(profile.batch_slices, threads);
        ASSERT_EQ(got->size(), want->size());
        for (size_t k = 0; k < want->size(); ++k) {
          EXPECT_EQ(FirstDifference((*got)[k], (*want)[k]), "")
              << "threads " << threads << " batch " << batch << " output " << k << " call " << call;
        }
      }
    }
  }
}

// DeepJet's kind of branch: per-sample sequences [batch, steps, features]
// transposed to [steps, batch, features] for an LSTM (samples on axis 1),
// the last hidden state taken by Gather + Squeeze back to axis 0 into a
// Gemm ("tag"), and the whole output sequence transposed back and flattened
// ("seq_feats"). With `states_out`, Y_h itself is an output: its samples lie
// along axis 1, so the graph is not split.
std::string RecurrentModel(bool states_out) {
  GraphBuilder b("recurrent");
  b.Input("parts", {"batch", "5", "3"});
  b.Weight("w", {1, 32, 3});
  b.Weight("r", {1, 32, 8});
  b.Weight("bias", {1, 64});
  b.Weight("wd", {4, 8});
  b.Weight("bd", {4});
  b.Ints("last", {0});
  b.Ints("axis0", {0});
  GraphBuilder::IntsAttr(b.Node("Transpose", {"parts"}, {"steps"}), "perm", {1, 0, 2});
  GraphBuilder::IntAttr(b.Node("LSTM", {"steps", "w", "r", "bias"}, {"y", "y_h"}), "hidden_size", 8);
  GraphBuilder::IntAttr(b.Node("Gather", {"y_h", "last"}, {"h_last"}), "axis", 0);
  b.Node("Squeeze", {"h_last", "axis0"}, {"h"});
  GraphBuilder::IntAttr(b.Node("Gemm", {"h", "wd", "bd"}, {"logits"}), "transB", 1);
  GraphBuilder::IntAttr(b.Node("Softmax", {"logits"}, {"tag"}), "axis", -1);
  GraphBuilder::IntsAttr(b.Node("Transpose", {"y"}, {"y_b"}), "perm", {2, 0, 1, 3});
  GraphBuilder::IntAttr(b.Node("Flatten", {"y_b"}, {"seq_feats"}), "axis", 1);
  b.Output("tag");
  b.Output("seq_feats");
  if (states_out) b.Output("y_h");
  return b.Bytes();
}

// The samples are followed through Transpose, LSTM, Gather and Squeeze: two
// threads run the batch as slices, with the one-thread results (bitwise on
// batches of a multiple of the GEMM's exact rows; elsewhere up to the last
// bits of the rows in the input projection's last partial GEMM tile:
// batch_split.h).
TEST(SessionTest, BatchSplitFollowsTheSamplesThroughARecurrentLayer) {
  auto whole = Session::CreateFromBytes(RecurrentModel(/*states_out=*/true));
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_FALSE((*whole)->batch_split().separable);
  EXPECT_NE((*whole)->batch_split().reason.find("'y_h' holds its samples along axis 1"), std::string::npos)
      << (*whole)->batch_split().reason;

  SessionOptions one;
  one.num_threads = 1;
  auto reference = Session::CreateFromBytes(RecurrentModel(false), one);
  ASSERT_TRUE(reference.ok()) << reference.status();
  SessionOptions two;
  two.num_threads = 2;
  two.batch_split_min_rows = 1;
  auto split = Session::CreateFromBytes(RecurrentModel(false), two);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_TRUE((*split)->batch_split().separable) << (*split)->batch_split().reason;
  for (int64_t batch : {3, 100, 256, 1001}) {
    Session::NamedTensors inputs = {{"parts", Pattern({batch, 5, 3}, 4)}};
    auto want = (*reference)->Run(inputs);
    ASSERT_TRUE(want.ok()) << want.status();
    RunProfile profile;
    auto got = (*split)->Run(inputs, {}, &profile);
    ASSERT_TRUE(got.ok()) << got.status();
    if (batch >= 256) {
      EXPECT_EQ(profile.batch_slices, 2) << "batch " << batch;
    }
    ASSERT_EQ(got->size(), 2u);
    for (size_t k = 0; k < 2; ++k) {
      ASSERT_EQ((*got)[k].shape(), (*want)[k].shape()) << "output " << k;
      if (batch % ops::GemmF32KernelShape().exact_rows == 0) {
        EXPECT_EQ(FirstDifference((*got)[k], (*want)[k]), "") << "batch " << batch << " output " << k;
      }
      for (int64_t i = 0; i < (*want)[k].size(); ++i) {
        ASSERT_NEAR((*got)[k].data<float>()[i], (*want)[k].data<float>()[i], 1e-6f)
            << "batch " << batch << " output " << k << " element " << i;
      }
    }
  }
}

// SeparableModel's outputs for `inputs` from a one-thread Session.
std::vector<Tensor> OneThreadOutputs(const Session::NamedTensors& inputs) {
  SessionOptions one;
  one.num_threads = 1;
  auto reference = Session::CreateFromBytes(SeparableModel(), one);
  EXPECT_TRUE(reference.ok()) << reference.status();
  if (!reference.ok()) return {};
  auto want = (*reference)->Run(inputs);
  EXPECT_TRUE(want.ok()) << want.status();
  return want.ok() ? *want : std::vector<Tensor>{};
}

// A two-thread Session of SeparableModel whose calls split from one row on,
// its crew's workers waiting `spin_us` for the next call.
std::unique_ptr<Session> CrewSession(int spin_us) {
  SessionOptions options;
  options.num_threads = 2;
  options.batch_split_min_rows = 1;
  options.slice_spin_us = spin_us;
  auto split = Session::CreateFromBytes(SeparableModel(), options);
  EXPECT_TRUE(split.ok()) << split.status();
  return split.ok() ? std::move(*split) : nullptr;
}

// Several threads calling one Session at once: one call at a time has the
// slice crew, the others run their slices with a parallel_for; with the
// crew's waiting off (0 us) every call enqueues its helpers afresh. Every
// call gets the one-thread outputs, bit for bit.
TEST(SessionTest, BatchSplitCrewServesConcurrentCallers) {
  const auto inputs = SeparableInputs(300);
  const std::vector<Tensor> want = OneThreadOutputs(inputs);
  ASSERT_FALSE(want.empty());
  for (int spin_us : {0, 50, 100000}) {
    std::unique_ptr<Session> split = CrewSession(spin_us);
    ASSERT_NE(split, nullptr);
    std::vector<std::string> failures(4);
    std::vector<std::thread> callers;
    for (int c = 0; c < 4; ++c) {
      callers.emplace_back([&, c] {
        for (int call = 0; call < 200 && failures[c].empty(); ++call) {
          auto got = split->Run(inputs);
          if (!got.ok()) {
            failures[c] = got.status().ToString();
            break;
          }
          for (size_t k = 0; k < want.size(); ++k) {
            std::string diff = FirstDifference((*got)[k], want[k]);
            if (!diff.empty()) failures[c] = "output " + std::to_string(k) + ": " + diff;
          }
        }
      });
    }
    for (std::thread& t : callers) t.join();
    for (int c = 0; c < 4; ++c) EXPECT_EQ(failures[c], "") << "spin " << spin_us << " caller " << c;
  }
}

// Two slices split where the threads' speeds say: toward the faster one,
// on a multiple of the GEMM's exact rows where they divide the batch (else
// of its row tile), each slice more than two tiles, and not moved by
// timings that say less than a granule.
TEST(SessionTest, SliceCrewMovesTheSplitTowardTheFasterThread) {
  const int64_t tile = std::max(1, ops::GemmF32KernelShape().mr);
  const int64_t exact = std::max(1, ops::GemmF32KernelShape().exact_rows);
  SliceCrew crew(std::chrono::microseconds(0));
  const int64_t batch = 64 * exact;
  const int64_t middle = crew.SplitRow(batch);
  EXPECT_EQ(middle % exact, 0);
  EXPECT_LE(std::abs(middle - batch / 2), exact);
  // Slice 0's thread twice as fast: it should get about two thirds.
  for (int call = 0; call < 200; ++call) {
    const int64_t row = crew.SplitRow(batch);
    crew.Observe(row, static_cast<double>(row) / 2.0, batch - row, static_cast<double>(batch - row));
  }
  const int64_t faster = crew.SplitRow(batch);
  EXPECT_EQ(faster % exact, 0);
  EXPECT_NEAR(static_cast<double>(faster), batch * 2.0 / 3.0, static_cast<double>(exact));
  // Timings that put the balance less than a granule away keep the split.
  for (double away : {-0.75, 0.75}) {
    const double balance = (static_cast<double>(faster) + away * static_cast<double>(exact)) / batch;
    for (int call = 0; call < 20; ++call) {
      const int64_t row = crew.SplitRow(batch);
      crew.Observe(row, static_cast<double>(row) / balance, batch - row,
                   static_cast<double>(batch - row) / (1.0 - balance));
      EXPECT_EQ(crew.SplitRow(batch), faster) << "balance " << balance << " call " << call;
    }
  }
  // A batch the exact rows do not divide splits on a tile.
  const int64_t odd = 64 * tile + 1;
  if (odd % exact != 0) {
    EXPECT_EQ(crew.SplitRow(odd) % tile, 0);
  }
  // Then slice 1's thread ten times as fast: the split stops at a quarter,
  // and never leaves slice 0 two tiles or fewer, even on a small batch.
  for (int call = 0; call < 400; ++call) {
    const int64_t row = crew.SplitRow(batch);
    crew.Observe(row, static_cast<double>(row), batch - row, static_cast<double>(batch - row) / 10.0);
  }
  EXPECT_GE(crew.SplitRow(batch), batch / 4 - exact);
  EXPECT_LE(crew.SplitRow(batch), batch / 2);
  const int64_t small = 2 * (2 * tile + 1 + tile);
  EXPECT_GT(crew.SplitRow(small), 2 * tile);
  EXPECT_GT(small - crew.SplitRow(small), 2 * tile);
  // One slice interrupted once (twenty times its time) hardly moves it.
  SliceCrew steady(std::chrono::microseconds(0));
  const int64_t split = steady.SplitRow(batch);
  steady.Observe(split, 1e-5, batch - split, 2e-4);
  EXPECT_EQ(steady.SplitRow(batch), split);
  // Nonsense timings are ignored.
  const int64_t before = crew.SplitRow(batch);
  crew.Observe(100, 0.0, 156, -1.0);
  EXPECT_EQ(crew.SplitRow(batch), before);
}

// Back-to-back calls through the slice crew with workers that wait long for
// the next call: every call gets the one-thread outputs. ctest also runs
// this on one CPU (session_test_one_cpu), where a worker finds itself on the
// caller's CPU with nowhere else to go and sleeps until each next call.
TEST(SessionTest, BatchSplitCrewRunsBackToBackCalls) {
  const auto inputs = SeparableInputs(300);
  const std::vector<Tensor> want = OneThreadOutputs(inputs);
  ASSERT_FALSE(want.empty());
  std::unique_ptr<Session> split = CrewSession(100000);
  ASSERT_NE(split, nullptr);
  for (int call = 0; call < 500; ++call) {
    RunProfile profile;
    auto got = split->Run(inputs, {}, &profile);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(profile.batch_slices, 2);
    for (size_t k = 0; k < want.size(); ++k) {
      ASSERT_EQ(FirstDifference((*got)[k], want[k]), "") << "call " << call << " output " << k;
    }
  }
}

// The slice crew fills the full outputs of its last call again, but only
// those the caller let go of: results a caller still holds keep their
// values through later calls.
TEST(SessionTest, BatchSplitReusesOnlyOutputsTheCallerLetGoOf) {
  Session::NamedTensors a = SeparableInputs(300);
  Session::NamedTensors b = {{"latent", Pattern({300, 6}, 4)}, {"cond", Pattern({300, 3}, 5)},
                             {"seq", Pattern({300, 2, 4}, 6)}};
  const std::vector<Tensor> want_a = OneThreadOutputs(a), want_b = OneThreadOutputs(b);
  ASSERT_FALSE(want_a.empty() || want_b.empty());
  std::unique_ptr<Session> split = CrewSession(100000);
  ASSERT_NE(split, nullptr);
  auto expect_same = [](const std::vector<Tensor>& got, const std::vector<Tensor>& want, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(FirstDifference(got[k], want[k]), "") << what << " output " << k;
  };
  auto held = split->Run(a);
  ASSERT_TRUE(held.ok()) << held.status();
  for (int call = 0; call < 3; ++call) {
    auto other = split->Run(call % 2 == 0 ? b : a);
    ASSERT_TRUE(other.ok()) << other.status();
    expect_same(*other, call % 2 == 0 ? want_b : want_a, "later call");
    for (size_t k = 0; k < held->size(); ++k) EXPECT_FALSE((*other)[k].SharesBufferWith((*held)[k])) << k;
  }
  expect_same(*held, want_a, "held through three later calls");
  // Let go of the results: the next call writes into the same memory.
  std::vector<const void*> memory;
  {
    auto last = split->Run(b);
    ASSERT_TRUE(last.ok()) << last.status();
    for (const Tensor& t : *last) memory.push_back(t.raw_data());
  }
  auto again = split->Run(a);
  ASSERT_TRUE(again.ok()) << again.status();
  expect_same(*again, want_a, "reused memory");
  for (size_t k = 0; k < again->size(); ++k) EXPECT_EQ((*again)[k].raw_data(), memory[k]) << "output " << k;
}

// A two-thread Session of one Relu over x [batch, n], whose slices a crew
// runs, and a check of one call through it.
std::unique_ptr<Session> ReluCrewSession() {
  GraphBuilder b("relu");
  b.Input("x", {"batch", "n"});
  b.Node("Relu", {"x"}, {"y"});
  b.Output("y");
  SessionOptions options;
  options.num_threads = 2;
  options.batch_split_min_rows = 1;
  options.slice_spin_us = 100000;
  auto session = Session::CreateFromBytes(b.Bytes(), options);
  EXPECT_TRUE(session.ok()) << session.status();
  return session.ok() ? std::move(*session) : nullptr;
}

void ExpectReluOfIt(const Session& session, const Tensor& x) {
  RunProfile profile;
  auto got = session.Run({{"x", x}}, {}, &profile);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(profile.batch_slices, 2);
  ASSERT_EQ(got->size(), 1u);
  const Tensor& y = (*got)[0];
  ASSERT_EQ(y.shape(), x.shape());
  for (int64_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(y.data<float>()[i], std::max(0.f, x.data<float>()[i])) << ShapeToString(x.shape()) << " element " << i;
  }
}

// The crew allocates each call's full outputs before its slices run, as the
// last call's were; when the inputs move an output's dims past the batch,
// the slices' own tensors are put together instead.
TEST(SessionTest, BatchSplitOutputsFollowInputsWhoseOtherDimsChange) {
  std::unique_ptr<Session> session = ReluCrewSession();
  ASSERT_NE(session, nullptr);
  for (int64_t n : {4, 4, 7, 7, 2, 4}) ExpectReluOfIt(*session, Pattern({300, n}, static_cast<int>(n)));
}

// A crew's worker learns of a call the batch, the split and the rows'
// addresses from the words the call hands it, and keeps the inputs' and
// outputs' dtypes and dims from earlier calls: every call's own rows reach
// it, through a new batch size too, whether the addresses fit the words
// (one input and one output) or are read from the call (three inputs and
// the separable model's outputs).
TEST(SessionTest, BatchSplitCrewReadsEveryCallsOwnRows) {
  std::unique_ptr<Session> relu = ReluCrewSession();
  ASSERT_NE(relu, nullptr);
  int seed = 0;
  for (int64_t batch : {300, 301, 260, 300}) {
    for (int call = 0; call < 3; ++call) ExpectReluOfIt(*relu, Pattern({batch, 5}, ++seed));
  }
  std::unique_ptr<Session> split = CrewSession(100000);
  ASSERT_NE(split, nullptr);
  for (int64_t batch : {300, 280, 300}) {
    for (int call = 0; call < 2; ++call) {
      Session::NamedTensors inputs = {{"latent", Pattern({batch, 6}, ++seed)},
                                      {"cond", Pattern({batch, 3}, ++seed)},
                                      {"seq", Pattern({batch, 2, 4}, ++seed)}};
      const std::vector<Tensor> want = OneThreadOutputs(inputs);
      ASSERT_FALSE(want.empty());
      RunProfile profile;
      auto got = split->Run(inputs, {}, &profile);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(profile.batch_slices, 2);
      ASSERT_EQ(got->size(), want.size());
      for (size_t k = 0; k < want.size(); ++k) {
        EXPECT_EQ(FirstDifference((*got)[k], want[k]), "") << "batch " << batch << " output " << k;
      }
    }
  }
}

// A slice worker on the caller's CPU moves off it, and gets its CPUs back
// when it stops helping (the scheduler may move it back later).
TEST(SessionTest, OffCpuMovesTheThreadAndGivesItsCpusBack) {
#if defined(__linux__)
  std::thread([] {
    cpu_set_t allowed;
    ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
    const int here = sched_getcpu();
    ASSERT_GE(here, 0);
    {
      OffCpu off;
      if (CPU_COUNT(&allowed) < 2) {
        EXPECT_FALSE(off.Leave(here));  // nowhere else to go
        return;
      }
      ASSERT_TRUE(off.Leave(here));
      EXPECT_NE(sched_getcpu(), here);
      cpu_set_t now;
      ASSERT_EQ(sched_getaffinity(0, sizeof(now), &now), 0);
      EXPECT_FALSE(CPU_ISSET(here, &now));
      EXPECT_EQ(CPU_COUNT(&now), CPU_COUNT(&allowed) - 1);
      EXPECT_FALSE(off.Leave(-1));
    }
    cpu_set_t after;
    ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
    EXPECT_TRUE(CPU_EQUAL(&after, &allowed));
  }).join();
#else
  GTEST_SKIP() << "moving threads between CPUs is done on Linux only";
#endif
}

TEST(SessionTest, BatchSplitOffOrSmallBatchesRunWhole) {
  SessionOptions off;
  off.num_threads = 2;
  off.batch_split = false;
  auto s = Session::CreateFromBytes(SeparableModel(), off);
  ASSERT_TRUE(s.ok()) << s.status();
  RunProfile profile;
  ASSERT_TRUE((*s)->Run(SeparableInputs(64), {}, &profile).ok());
  EXPECT_EQ(profile.batch_slices, 1);
  // Default minimum rows: this model's few operations per sample are not
  // worth a slice of 2 rows.
  SessionOptions on;
  on.num_threads = 2;
  auto d = Session::CreateFromBytes(SeparableModel(), on);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE((*d)->Run(SeparableInputs(4), {}, &profile).ok());
  EXPECT_EQ(profile.batch_slices, 1);
  ASSERT_TRUE((*d)->Run(SeparableInputs(4096), {}, &profile).ok());
  EXPECT_EQ(profile.batch_slices, 2);
  EXPECT_FALSE(profile.events.empty());  // the first slice's nodes
}

// A graph whose rows depend on each other must run whole: split, each half
// would subtract its own mean.
TEST(SessionTest, NonSeparableGraphIsNotSplit) {
  SessionOptions options;
  options.num_threads = 2;
  options.batch_split_min_rows = 1;
  auto s = Session::CreateFromBytes(BatchStatisticsModel(), options);
  ASSERT_TRUE(s.ok()) << s.status();
  const int64_t batch = 64;
  Tensor x = Pattern({batch, 4}, 5);
  RunProfile profile;
  auto out = (*s)->Run({{"x", x}}, {}, &profile);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(profile.batch_slices, 1);
  for (int64_t c = 0; c < 4; ++c) {
    double sum = 0;
    for (int64_t r = 0; r < batch; ++r) sum += (*out)[0].data<float>()[r * 4 + c];
    EXPECT_NEAR(sum, 0.0, 1e-3) << "column " << c;  // centred over the whole batch
  }
}

// Splitting runs the slices on the arena's threads: a caller's arena of 2
// gets at most its one worker, however many calls.
TEST(SessionTest, BatchSplitCreatesNoThreadBeyondTheCallersArena) {
  oneapi::tbb::task_arena arena(2);
  SessionOptions options;
  options.arena = &arena;
  options.batch_split_min_rows = 1;
  const int before = CountThreads();
  auto s = Session::CreateFromBytes(SeparableModel(), options);
  ASSERT_TRUE(s.ok()) << s.status();
  RunProfile profile;
  for (int i = 0; i < 50; ++i) {
    auto out = (*s)->Run(SeparableInputs(257), {}, &profile);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(profile.batch_slices, 2);
  }
  EXPECT_LE(CountThreads(), before + 1);
}

// Bad input still gets its error (from the slice that meets it).
TEST(SessionTest, BatchSplitReportsInputErrors) {
  SessionOptions options;
  options.num_threads = 2;
  options.batch_split_min_rows = 1;
  auto s = Session::CreateFromBytes(SeparableModel(), options);
  ASSERT_TRUE(s.ok()) << s.status();
  auto inputs = SeparableInputs(8);
  inputs[1].second = Pattern({7, 3}, 2);  // fewer rows than the others: not split, Concat refuses
  auto out = (*s)->Run(inputs);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("Concat"), std::string::npos) << out.status();
}

}  // namespace
}  // namespace hepml
