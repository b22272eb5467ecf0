// SessionOptions::precision: a small MLP and a small CNN at fp32, bf16 and
// fp16 give the same outputs within the documented tolerances, keep their
// input and output types, and hold half the weight bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "hepml/session.h"
#include "onnx/onnx_pb.h"

namespace hepml {
namespace {

// Tolerances relative to the largest float32 output magnitude: a few roundings
// of 2^-9 (bfloat16) or 2^-12 (float16) per layer, through three layers.
constexpr double kBf16Tolerance = 1e-2;
constexpr double kFp16Tolerance = 2e-3;

class ModelBuilder {
 public:
  ModelBuilder() {
    model_.set_ir_version(8);
    model_.add_opset_import()->set_version(17);
    graph_ = model_.mutable_graph();
    graph_->set_name("precision_test");
  }
  void Input(const std::string& name, std::vector<int64_t> dims) { Declare(graph_->add_input(), name, dims); }
  void Output(const std::string& name, std::vector<int64_t> dims) { Declare(graph_->add_output(), name, dims); }
  // Seeded uniform weights in [-1, 1] / sqrt(fan_in).
  void Weight(const std::string& name, std::vector<int64_t> dims, int64_t fan_in) {
    auto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    std::uniform_real_distribution<float> uni(-1.f, 1.f);
    const float scale = 1.f / std::sqrt(static_cast<float>(fan_in));
    for (int64_t i = 0; i < n; ++i) t->add_float_data(scale * uni(rng_));
  }
  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in, const std::string& out) {
    auto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(out);
    for (const std::string& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  }
  static void Ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  std::string Bytes() const { return model_.SerializeAsString(); }

 private:
  static void Declare(onnx::ValueInfoProto* vi, const std::string& name, const std::vector<int64_t>& dims) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) {
      if (d < 0) tt->mutable_shape()->add_dim()->set_dim_param("batch");
      else tt->mutable_shape()->add_dim()->set_dim_value(d);
    }
  }
  onnx::ModelProto model_;
  onnx::GraphProto* graph_;
  std::mt19937 rng_{42};
};

// x[batch,16] -> Gemm 32 -> Relu -> Gemm 32 -> Relu -> MatMul+Add 5 -> Softmax
std::string Mlp() {
  ModelBuilder b;
  b.Input("x", {-1, 16});
  b.Output("y", {-1, 5});
  b.Weight("w1", {16, 32}, 16);
  b.Weight("b1", {32}, 16);
  b.Weight("w2", {32, 32}, 32);
  b.Weight("b2", {32}, 32);
  b.Weight("w3", {32, 5}, 32);
  b.Weight("b3", {5}, 32);
  b.Node("Gemm", {"x", "w1", "b1"}, "h1");
  b.Node("Relu", {"h1"}, "r1");
  b.Node("Gemm", {"r1", "w2", "b2"}, "h2");
  b.Node("Relu", {"h2"}, "r2");
  b.Node("MatMul", {"r2", "w3"}, "m3");
  b.Node("Add", {"m3", "b3"}, "logits");
  b.Node("Softmax", {"logits"}, "y");
  return b.Bytes();
}

// x[batch,2,8,8] -> Conv 4 (3x3, pad 1) -> Relu -> MaxPool 2 -> Conv 6 -> Relu
// -> Flatten -> Gemm 3 -> y (regression, no softmax)
std::string Cnn() {
  ModelBuilder b;
  b.Input("x", {-1, 2, 8, 8});
  b.Output("y", {-1, 3});
  b.Weight("k1", {4, 2, 3, 3}, 18);
  b.Weight("c1", {4}, 18);
  b.Weight("k2", {6, 4, 3, 3}, 36);
  b.Weight("c2", {6}, 36);
  b.Weight("w", {3, 96}, 96);
  b.Weight("bias", {3}, 96);
  ModelBuilder::Ints(b.Node("Conv", {"x", "k1", "c1"}, "conv1"), "pads", {1, 1, 1, 1});
  b.Node("Relu", {"conv1"}, "relu1");
  auto* pool = b.Node("MaxPool", {"relu1"}, "pool");
  ModelBuilder::Ints(pool, "kernel_shape", {2, 2});
  ModelBuilder::Ints(pool, "strides", {2, 2});
  ModelBuilder::Ints(b.Node("Conv", {"pool", "k2", "c2"}, "conv2"), "pads", {1, 1, 1, 1});
  b.Node("Relu", {"conv2"}, "relu2");
  b.Node("Flatten", {"relu2"}, "flat");
  auto* gemm = b.Node("Gemm", {"flat", "w", "bias"}, "y");
  auto* trans = gemm->add_attribute();
  trans->set_name("transB");
  trans->set_type(onnx::AttributeProto::INT);
  trans->set_i(1);
  return b.Bytes();
}

Tensor RandomInput(Shape shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-2.f, 2.f);
  Tensor t = Tensor::Empty(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.size(); ++i) t.mutable_data<float>()[i] = uni(rng);
  return t;
}

struct Result {
  Tensor y;
  size_t weight_bytes = 0;
  std::vector<PassInfo> passes;
};

Result RunAt(const std::string& model, Precision precision, const Tensor& x) {
  SessionOptions options;
  options.num_threads = 1;
  options.precision = precision;
  auto s = Session::CreateFromBytes(model, options);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return {};
  // Callers see the declared float32 interface at every precision.
  EXPECT_EQ((*s)->inputs()[0].dtype, DType::kFloat32);
  EXPECT_EQ((*s)->outputs()[0].dtype, DType::kFloat32);
  auto out = (*s)->Run({{"x", x}});
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  return {(*out)[0], (*s)->weight_bytes(), (*s)->passes()};
}

// max |a - b| / max |reference|
double RelativeMaxError(const Tensor& a, const Tensor& reference) {
  double err = 0, scale = 0;
  for (int64_t i = 0; i < reference.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a.data<float>()[i]) - reference.data<float>()[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(reference.data<float>()[i])));
  }
  return err / scale;
}

void CheckModel(const std::string& model, const Tensor& x) {
  Result fp32 = RunAt(model, Precision::kFloat32, x);
  Result bf16 = RunAt(model, Precision::kBFloat16, x);
  Result fp16 = RunAt(model, Precision::kFloat16, x);
  ASSERT_TRUE(fp32.y.defined() && bf16.y.defined() && fp16.y.defined());
  for (const Result* r : {&bf16, &fp16}) {
    EXPECT_EQ(r->y.dtype(), DType::kFloat32);
    EXPECT_EQ(r->y.shape(), fp32.y.shape());
    // Every initializer here is a float32 weight of a converted node.
    EXPECT_EQ(r->weight_bytes * 2, fp32.weight_bytes);
    ASSERT_FALSE(r->passes.empty());
    EXPECT_EQ(r->passes.back().name, "mixed-precision");
    EXPECT_TRUE(r->passes.back().changed);
  }
  for (const PassInfo& p : fp32.passes) EXPECT_NE(p.name, "mixed-precision");
  const double bf16_err = RelativeMaxError(bf16.y, fp32.y);
  const double fp16_err = RelativeMaxError(fp16.y, fp32.y);
  EXPECT_LT(bf16_err, kBf16Tolerance);
  EXPECT_LT(fp16_err, kFp16Tolerance);
  // Reduced precision does change the result (the pass did something), and
  // float16's longer mantissa is closer than bfloat16's.
  EXPECT_GT(bf16_err, 0);
  EXPECT_LT(fp16_err, bf16_err);
  std::printf("relative max error: bf16 %.2e, fp16 %.2e; weights %zu -> %zu bytes\n", bf16_err, fp16_err,
              fp32.weight_bytes, bf16.weight_bytes);
}

TEST(PrecisionTest, MlpMatchesFloat32WithinTolerance) { CheckModel(Mlp(), RandomInput({64, 16}, 1)); }

TEST(PrecisionTest, CnnMatchesFloat32WithinTolerance) { CheckModel(Cnn(), RandomInput({8, 2, 8, 8}, 2)); }

TEST(PrecisionTest, ThePassCanBeSwitchedOffAndRunsWithoutOptimize) {
  SessionOptions options;
  options.precision = Precision::kBFloat16;
  options.disabled_passes = {"mixed-precision"};
  auto off = Session::CreateFromBytes(Mlp(), options);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_TRUE((*off)->passes().back().skipped);
  Result fp32 = RunAt(Mlp(), Precision::kFloat32, RandomInput({2, 16}, 3));
  EXPECT_EQ((*off)->weight_bytes(), fp32.weight_bytes);

  options.disabled_passes.clear();
  options.optimize = false;
  auto unoptimized = Session::CreateFromBytes(Mlp(), options);
  ASSERT_TRUE(unoptimized.ok()) << unoptimized.status();
  ASSERT_EQ((*unoptimized)->passes().size(), 1u);
  EXPECT_EQ((*unoptimized)->passes()[0].name, "mixed-precision");
  EXPECT_EQ((*unoptimized)->weight_bytes() * 2, fp32.weight_bytes);
}

TEST(PrecisionTest, ParsesNamesAndRejectsOthers) {
  for (Precision p : {Precision::kFloat32, Precision::kFloat16, Precision::kBFloat16}) {
    auto parsed = ParsePrecision(PrecisionName(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = ParsePrecision("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'fp8'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("bf16"), std::string::npos);
}

}  // namespace
}  // namespace hepml
