#include "hepml/session.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "onnx/onnx_pb.h"

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

}  // namespace
}  // namespace hepml
