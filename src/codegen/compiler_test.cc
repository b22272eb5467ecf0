// hepml::GeneratePackage / CompileModel on small models built here: the
// package's files, the planned arena, the batch and --dim handling, and
// errors that leave nothing behind. The generated code itself is built and
// run against `hepml run` by tests/compile/check_compile.py.
#include "hepml/compiler.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace hepml {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

void AddTensorValue(onnx::ValueInfoProto* v, const std::string& name, const std::vector<std::string>& dims) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  for (const std::string& d : dims) {
    auto* dim = shape->add_dim();
    if (std::isdigit(static_cast<unsigned char>(d[0]))) dim->set_dim_value(std::stoll(d));
    else dim->set_dim_param(d);
  }
}

// x [n, 3] -> a chain of unary ops -> y [n, 3].
std::string ChainModel(const std::vector<std::string>& ops) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("chain");
  AddTensorValue(g->add_input(), "x", {"n", "3"});
  AddTensorValue(g->add_output(), "y", {"n", "3"});
  std::string prev = "x";
  for (size_t i = 0; i < ops.size(); ++i) {
    auto* node = g->add_node();
    node->set_op_type(ops[i]);
    node->set_name("step" + std::to_string(i));
    node->add_input(prev);
    prev = i + 1 == ops.size() ? "y" : "t" + std::to_string(i);
    node->add_output(prev);
  }
  return m.SerializeAsString();
}

// x [n, 64] -> Gemm "fc" (weights [64, cols], bias [cols]) -> y [n, cols].
std::string GemmModel(int cols = 96) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("gemm");
  AddTensorValue(g->add_input(), "x", {"n", "64"});
  AddTensorValue(g->add_output(), "y", {"n", std::to_string(cols)});
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(64);
  w->add_dims(cols);
  for (int i = 0; i < 64 * cols; ++i) w->add_float_data(0.01f * static_cast<float>(i % 17) - 0.08f);
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(cols);
  for (int i = 0; i < cols; ++i) b->add_float_data(0.5f);
  auto* node = g->add_node();
  node->set_op_type("Gemm");
  node->set_name("fc");
  node->add_input("x");
  node->add_input("w");
  node->add_input("b");
  node->add_output("y");
  return m.SerializeAsString();
}

// x [n, widths[0]] -> Gemm "fc0" -> h1 -> Gemm "fc1" -> h2 ... -> y, weights
// [widths[i], widths[i + 1]] and biases; with `expose`, h<expose> is a graph
// output too.
std::string MlpModel(const std::vector<int>& widths, int expose = 0) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("mlp");
  const int layers = static_cast<int>(widths.size()) - 1;
  AddTensorValue(g->add_input(), "x", {"n", std::to_string(widths[0])});
  AddTensorValue(g->add_output(), "y", {"n", std::to_string(widths.back())});
  if (expose > 0) AddTensorValue(g->add_output(), "h" + std::to_string(expose), {"n", std::to_string(widths[expose])});
  for (int l = 0; l < layers; ++l) {
    const std::string id = std::to_string(l);
    auto* w = g->add_initializer();
    w->set_name("w" + id);
    w->set_data_type(onnx::TensorProto::FLOAT);
    w->add_dims(widths[l]);
    w->add_dims(widths[l + 1]);
    for (int i = 0; i < widths[l] * widths[l + 1]; ++i) w->add_float_data(0.01f * static_cast<float>((i * 7 + l) % 23) - 0.11f);
    auto* b = g->add_initializer();
    b->set_name("b" + id);
    b->set_data_type(onnx::TensorProto::FLOAT);
    b->add_dims(widths[l + 1]);
    for (int i = 0; i < widths[l + 1]; ++i) b->add_float_data(0.25f);
    auto* node = g->add_node();
    node->set_op_type("Gemm");
    node->set_name("fc" + id);
    node->add_input(l == 0 ? "x" : "h" + id);
    node->add_input("w" + id);
    node->add_input("b" + id);
    node->add_output(l + 1 == layers ? "y" : "h" + std::to_string(l + 1));
  }
  return m.SerializeAsString();
}

class CompilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hepml_compiler_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  static const std::string* File(const GeneratedPackage& p, const std::string& name) {
    for (const auto& [n, text] : p.files)
      if (n == name) return &text;
    return nullptr;
  }
  fs::path dir_;
};

TEST_F(CompilerTest, PackageHoldsHeaderSourceWeightsRunnerAndCMake) {
  CompileOptions o;
  o.name = "chain";
  o.cpp_namespace = "l1::trigger";
  o.max_batch = 8;
  auto pkg = GeneratePackage(Write("m.onnx", ChainModel({"Relu", "Neg"})), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_THAT(pkg->report.files,
              ::testing::ElementsAre("chain.h", "chain.cc", "chain.weights", "chain_run.cc", "CMakeLists.txt"));
  const std::string& h = *File(*pkg, "chain.h");
  EXPECT_THAT(h, HasSubstr("namespace l1::trigger {"));
  EXPECT_THAT(h, HasSubstr("static constexpr int kMaxBatch = 8;"));
  EXPECT_THAT(h, HasSubstr("one instance per thread"));
  EXPECT_THAT(h, HasSubstr("input 0  'x'  float32[batch, 3]"));
  EXPECT_THAT(h, HasSubstr("static const char* isa();"));
  const std::string& cmake = *File(*pkg, "CMakeLists.txt");
  EXPECT_THAT(cmake, HasSubstr("add_executable(chain_run chain_run.cc)"));
  // The portable default: the file compiled again per run-time variant, each
  // in a namespace of its own, and the library's build picks one.
  EXPECT_THAT(cmake, HasSubstr("option(chain_DISPATCH "));
  EXPECT_THAT(cmake, HasSubstr("target_compile_definitions(chain_${isa} PRIVATE HEPML_ISA_VARIANT=${isa})"));
  EXPECT_THAT(cmake, HasSubstr("target_compile_options(chain_${isa} PRIVATE -march=x86-64-${isa})"));
  const std::string& cc = *File(*pkg, "chain.cc");
  EXPECT_THAT(cc, HasSubstr("#define HEPML_KERNELS HEPML_PASTE(chain_kernels, HEPML_ISA_NAME)"));
  EXPECT_THAT(cc, HasSubstr("namespace l1::trigger::HEPML_KERNELS {"));
  EXPECT_THAT(cc, HasSubstr("return {chain_kernels_v4::Run, \"x86-64-v4\"};"));
  // The weights file starts with its magic; the source only names it.
  EXPECT_EQ(File(*pkg, "chain.weights")->substr(0, 8), "HEPMLW01");
  EXPECT_THAT(*File(*pkg, "chain.cc"), ::testing::Not(HasSubstr("kEmbeddedWeights")));
}

TEST_F(CompilerTest, EmbeddedWeightsLeaveNoWeightsFile) {
  CompileOptions o;
  o.name = "chain";
  o.embed_weights = true;
  auto pkg = GeneratePackage(Write("m.onnx", ChainModel({"Relu"})), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_EQ(File(*pkg, "chain.weights"), nullptr);
  EXPECT_THAT(*File(*pkg, "chain.cc"), HasSubstr("kEmbeddedWeights"));
}

TEST_F(CompilerTest, ArenaReusesBuffersOfDeadValues) {
  // Five intermediates of 8 x 3 floats (96 bytes, 128 aligned), never more
  // than two alive at once.
  CompileOptions o;
  o.name = "chain";
  o.max_batch = 8;
  auto pkg = GeneratePackage(Write("m.onnx", ChainModel({"Relu", "Neg", "Relu", "Neg", "Relu", "Neg"})), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_EQ(pkg->report.arena_bytes, 256u);
  EXPECT_EQ(pkg->report.num_steps, 6);
}

TEST_F(CompilerTest, DimFixesASymbolicAxisInsteadOfTheBatch) {
  CompileOptions o;
  o.name = "chain";
  o.dims["n"] = 5;
  auto pkg = GeneratePackage(Write("m.onnx", ChainModel({"Relu"})), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_THAT(*File(*pkg, "chain.h"), HasSubstr("'x'  float32[5, 3]"));
  o.dims = {{"m", 5}};
  auto bad = GeneratePackage(Write("m.onnx", ChainModel({"Relu"})), o);
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("--dim m"));
}

TEST_F(CompilerTest, UnsupportedOperatorNamesTheNodeAndWritesNothing) {
  CompileOptions o;
  o.name = "chain";
  const std::string out = (dir_ / "pkg").string();
  auto r = CompileModel(Write("m.onnx", ChainModel({"Relu", "LpNormalization"})), out, o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("LpNormalization 'step1'"));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);  // m.onnx only
}

TEST_F(CompilerTest, ShapeValuedOutputIsWrittenFromTheBatch) {
  // y = Relu(x), s = Shape(x): s is [b, 3] at run time, copied into out[1].
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("shape_out");
  AddTensorValue(g->add_input(), "x", {"n", "3"});
  AddTensorValue(g->add_output(), "y", {"n", "3"});
  auto* s = g->add_output();
  s->set_name("s");
  s->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
  s->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(2);
  for (const char* op : {"Relu", "Shape"}) {
    auto* node = g->add_node();
    node->set_op_type(op);
    node->set_name(op);
    node->add_input("x");
    node->add_output(std::string(op) == "Relu" ? "y" : "s");
  }
  CompileOptions o;
  o.name = "shape_out";
  auto pkg = GeneratePackage(Write("m.onnx", m.SerializeAsString()), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  const std::string& cc = *File(*pkg, "shape_out.cc");
  EXPECT_THAT(cc, HasSubstr("const int64_t values[] = {b, 3};"));
  EXPECT_THAT(cc, HasSubstr("std::memcpy(out[1]"));
}

TEST_F(CompilerTest, SixteenBitWeightsHalveTheGemmWeights) {
  const std::string model = Write("g.onnx", GemmModel());
  CompileOptions o;
  o.name = "g";
  auto fp32 = GeneratePackage(model, o);
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  for (WeightPrecision p : {WeightPrecision::kFp16, WeightPrecision::kBf16}) {
    o.precision = p;
    auto pkg = GeneratePackage(model, o);
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    // 64 x 96 weights in 2 bytes instead of 4; the 96 biases stay float.
    EXPECT_LT(pkg->report.weight_bytes, fp32->report.weight_bytes * 55 / 100) << WeightPrecisionName(p);
    EXPECT_THAT(*File(*pkg, "g.cc"), HasSubstr(p == WeightPrecision::kFp16 ? "GemmPacked16<1>" : "GemmPacked16<2>"));
    // bfloat16 GEMMs get a run-time variant with AVX512-BF16 dot products.
    const bool bf16 = p == WeightPrecision::kBf16;
    EXPECT_EQ(File(*pkg, "CMakeLists.txt")->find("-march=x86-64-v4 -mavx512bf16") != std::string::npos, bf16);
  }
  // Per layer: "fc" back to float overrides the default.
  o.precision = WeightPrecision::kBf16;
  o.layer_precision["fc"] = WeightPrecision::kFp32;
  auto mixed = GeneratePackage(model, o);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ(mixed->report.weight_bytes, fp32->report.weight_bytes);
}

TEST_F(CompilerTest, PrecisionOfAnUnknownLayerIsAnErrorAndWritesNothing) {
  CompileOptions o;
  o.name = "g";
  o.layer_precision["fc2"] = WeightPrecision::kFp16;
  const fs::path out = dir_ / "pkg";
  auto r = CompileModel(Write("g.onnx", GemmModel()), out.string(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("'fc2' is not a node"));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(ParseWeightPrecision("fp8").ok());
  EXPECT_EQ(*ParseWeightPrecision("bf16"), WeightPrecision::kBf16);
}

TEST_F(CompilerTest, PruningReachesTheSparsityAndPicksTheSparseKernel) {
  // 48 outputs, at most 64 rows: the sparse kernel from batch 16, the lane
  // slots below.
  const std::string model = Write("g.onnx", GemmModel(48));
  CompileOptions o;
  o.name = "g";
  o.prune = "0.8";
  auto pkg = GeneratePackage(model, o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  ASSERT_EQ(pkg->report.layers.size(), 1u);
  EXPECT_EQ(pkg->report.layers[0].weight, "w");
  EXPECT_GE(pkg->report.layers[0].zeros_after, 0.8);
  EXPECT_LT(pkg->report.layers[0].zeros_after, 0.8 + 1.0 / (64 * 48) + 1e-9);
  ASSERT_EQ(pkg->report.sparse_layers.size(), 1u);
  EXPECT_THAT(pkg->report.sparse_layers[0], HasSubstr("sparse kernel from batch 16, below it lane slots"));
  EXPECT_THAT(*File(*pkg, "g.cc"), HasSubstr("K::GemmSparse("));
  // At most 8 rows: the batch kernel is never reached (no scratch for it).
  o.max_batch = 8;
  auto small = GeneratePackage(model, o);
  ASSERT_TRUE(small.ok()) << small.status();
  ASSERT_EQ(small->report.sparse_layers.size(), 1u);
  EXPECT_THAT(small->report.sparse_layers[0], HasSubstr("from batch 16 (above --max-batch: never), below it lane slots"));
  EXPECT_LT(small->report.arena_bytes, pkg->report.arena_bytes);
  o.max_batch = 64;
  // 2:4 leaves half the weights: the dense kernel stays.
  o.prune = "2:4";
  pkg = GeneratePackage(model, o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_NEAR(pkg->report.layers[0].zeros_after, 0.5, 1e-9);
  EXPECT_TRUE(pkg->report.sparse_layers.empty());
  EXPECT_THAT(*File(*pkg, "g.cc"), ::testing::Not(HasSubstr("K::GemmSparse(")));
  for (const char* bad : {"1.0", "-0.1", "x", "0:4", "4:4", "2:"}) {
    o.prune = bad;
    auto r = GeneratePackage(model, o);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(std::string("--prune '") + bad + "'"));
  }
}

TEST_F(CompilerTest, PrunedLayersThatFeedOnlyEachOtherAreLinked) {
  CompileOptions o;
  o.name = "g";
  o.prune = "0.8";
  auto pkg = GeneratePackage(Write("mlp.onnx", MlpModel({64, 48, 40, 8})), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  const std::vector<std::string> layers(pkg->report.sparse_layers.begin(), pkg->report.sparse_layers.end());
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_THAT(layers[0], HasSubstr("fc0 ("));
  EXPECT_THAT(layers[0], HasSubstr("; linked to fc1 from batch 16 (no transposes between)"));
  EXPECT_THAT(layers[1], HasSubstr("; linked to fc2 from batch 16"));
  EXPECT_THAT(layers[2], ::testing::Not(HasSubstr("linked")));
  const std::string code = *File(*pkg, "g.cc");
  EXPECT_THAT(code, HasSubstr("K::GemmSparseLinked(b, 48, 64, static_cast<const float*>(in[0]), false, true, 16,"));
  EXPECT_THAT(code, ::testing::Not(HasSubstr("K::GemmSparse(b")));
  // h2 read by the graph's caller too: it stays row-major, fc1 -> fc2 is
  // not linked and fc2 has no link at all.
  pkg = GeneratePackage(Write("mlp2.onnx", MlpModel({64, 48, 40, 8}, 2)), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  const std::vector<std::string> exposed(pkg->report.sparse_layers.begin(), pkg->report.sparse_layers.end());
  ASSERT_EQ(exposed.size(), 3u);
  EXPECT_THAT(exposed[0], HasSubstr("; linked to fc1"));
  EXPECT_THAT(exposed[1], ::testing::Not(HasSubstr("linked")));
  EXPECT_THAT(*File(*pkg, "g.cc"), HasSubstr("K::GemmSparse(b, 8, 40,"));
  // --max-batch below the crossover: no batch kernel, nothing linked.
  o.max_batch = 8;
  pkg = GeneratePackage(Write("mlp.onnx", MlpModel({64, 48, 40, 8})), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_THAT(*File(*pkg, "g.cc"), ::testing::Not(HasSubstr("GemmSparseLinked(b")));
}

TEST_F(CompilerTest, PrecisionFileMapsLayersAndRejectsBadEntries) {
  auto file = ReadPrecisionFile(Write("p.yaml", "default: fp16\nlayers:\n  fc: bf16\n  other: fp32\n"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->fallback, WeightPrecision::kFp16);
  EXPECT_EQ(file->layers.at("fc"), WeightPrecision::kBf16);
  EXPECT_EQ(file->layers.at("other"), WeightPrecision::kFp32);
  auto bad = ReadPrecisionFile(Write("q.yaml", "layers:\n  fc: half\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("layer 'fc': 'half'"));
  // Applied: the file's layer list goes to CompileOptions::layer_precision.
  CompileOptions o;
  o.name = "g";
  o.layer_precision["fc"] = WeightPrecision::kBf16;
  auto pkg = GeneratePackage(Write("g.onnx", GemmModel()), o);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_THAT(*File(*pkg, "g.cc"), HasSubstr("GemmPacked16<2>"));
}

TEST_F(CompilerTest, CompileModelWritesTheFiles) {
  CompileOptions o;
  o.name = "chain";
  const std::string out = (dir_ / "sub" / "pkg").string();
  auto r = CompileModel(Write("m.onnx", ChainModel({"Sigmoid"})), out, o);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const std::string& f : r->files) EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  EXPECT_EQ(DefaultPackageName("/x/trigger-mlp.v2.onnx"), "trigger_mlp_v2");
  EXPECT_EQ(DefaultPackageName("if.onnx"), "if_model");
}

}  // namespace
}  // namespace hepml
