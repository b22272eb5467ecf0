#include "onnx/importer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "onnx/onnx_pb.h"

namespace hepml {
namespace {

namespace fs = std::filesystem;

// A temporary folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("hepml_importer_test_" + std::to_string(getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

void AddTensorValue(onnx::ValueInfoProto* vi, const std::string& name, int elem_type,
                    std::vector<std::string> dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (const std::string& d : dims) {
    auto* dim = shape->add_dim();
    if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) dim->set_dim_value(std::stoll(d));
    else dim->set_dim_param(d);
  }
}

// y = Relu(x @ W + b) with W, b initializers; x has a symbolic batch dim.
onnx::ModelProto SmallModel(int opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("importer_test");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("small");
  AddTensorValue(g->add_input(), "x", onnx::TensorProto::FLOAT, {"batch", "2"});
  AddTensorValue(g->add_output(), "y", onnx::TensorProto::FLOAT, {"batch", "3"});
  auto* w = g->add_initializer();
  w->set_name("W");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(2);
  w->add_dims(3);
  for (float v : {1.f, 2.f, 3.f, 4.f, 5.f, 6.f}) w->add_float_data(v);
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(3);
  for (float v : {0.5f, -100.f, 0.f}) b->add_float_data(v);
  auto* mm = g->add_node();
  mm->set_op_type("MatMul");
  mm->set_name("mm");
  mm->add_input("x");
  mm->add_input("W");
  mm->add_output("xw");
  auto* add = g->add_node();
  add->set_op_type("Add");
  add->add_input("xw");
  add->add_input("b");
  add->add_output("pre");
  auto* relu = g->add_node();
  relu->set_op_type("Relu");
  relu->add_input("pre");
  relu->add_output("y");
  return m;
}

std::string Write(const TempDir& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir.File(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(ImporterTest, ReadsGraphInitializersAndSymbolicDims) {
  TempDir dir;
  std::string path = Write(dir, "m.onnx", SmallModel().SerializeAsString());
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->producer_name, "importer_test");
  EXPECT_EQ(model->OpsetOf(""), 17);
  ASSERT_EQ(model->graph.nodes.size(), 3u);
  EXPECT_EQ(model->graph.nodes[0].op_type, "MatMul");
  EXPECT_EQ(model->graph.nodes[0].opset, 17);
  ASSERT_EQ(model->graph.inputs.size(), 1u);
  const TypeInfo& x = model->graph.inputs[0].type;
  EXPECT_EQ(x.dtype, DType::kFloat32);
  ASSERT_EQ(x.shape.size(), 2u);
  EXPECT_EQ(x.shape[0].param, "batch");
  EXPECT_EQ(x.shape[1].value, 2);
  ASSERT_EQ(model->graph.initializers.count("W"), 1u);
  EXPECT_EQ(model->graph.initializers.at("W").shape(), Shape({2, 3}));
  EXPECT_EQ(model->graph.initializers.at("W").data<float>()[5], 6.f);
}

TEST(ImporterTest, ReordersNodesTopologically) {
  onnx::ModelProto m = SmallModel();
  // Reverse the node order: the importer must sort them back.
  auto* nodes = m.mutable_graph()->mutable_node();
  std::reverse(nodes->begin(), nodes->end());
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->graph.nodes[0].op_type, "MatMul");
  EXPECT_EQ(model->graph.nodes[2].op_type, "Relu");
}

TEST(ImporterTest, TruncatedFileIsAnError) {
  TempDir dir;
  std::string bytes = SmallModel().SerializeAsString();
  std::string path = Write(dir, "t.onnx", bytes.substr(0, bytes.size() / 2));
  auto model = LoadModel(path);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find(path), std::string::npos);
  EXPECT_NE(model.status().message().find("not a valid ONNX model"), std::string::npos) << model.status();
}

TEST(ImporterTest, NonOnnxFileIsAnError) {
  TempDir dir;
  std::string path = Write(dir, "readme.onnx", "This is a text file, not a model.\n");
  auto model = LoadModel(path);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find(path), std::string::npos) << model.status();
}

TEST(ImporterTest, MissingFileIsNotFound) {
  auto model = LoadModel("/nonexistent/model.onnx");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
}

TEST(ImporterTest, UnknownOpsetIsAnError) {
  auto model = LoadModelFromBytes(SmallModel(/*opset=*/99).SerializeAsString());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("opset 99"), std::string::npos) << model.status();
}

TEST(ImporterTest, UnknownDomainIsAnError) {
  onnx::ModelProto m = SmallModel();
  auto* op = m.add_opset_import();
  op->set_domain("com.example.private");
  op->set_version(1);
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("com.example.private"), std::string::npos) << model.status();
}

TEST(ImporterTest, CycleIsAnErrorNamingTheNode) {
  onnx::ModelProto m = SmallModel();
  // MatMul now reads Relu's output, which depends on MatMul.
  m.mutable_graph()->mutable_node(0)->set_input(0, "y");
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("cycle"), std::string::npos) << model.status();
}

TEST(ImporterTest, UndefinedInputIsAnErrorNamingNodeAndValue) {
  onnx::ModelProto m = SmallModel();
  m.mutable_graph()->mutable_node(1)->set_input(1, "no_such_value");
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("no_such_value"), std::string::npos) << model.status();
  EXPECT_NE(model.status().message().find("Add"), std::string::npos) << model.status();
}

TEST(ImporterTest, ReadsExternalData) {
  TempDir dir;
  onnx::ModelProto m = SmallModel();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_float_data();
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* loc = w->add_external_data();
  loc->set_key("location");
  loc->set_value("weights.bin");
  auto* off = w->add_external_data();
  off->set_key("offset");
  off->set_value("4");
  std::vector<float> values = {0, 10, 20, 30, 40, 50, 60};  // first float skipped by the offset
  Write(dir, "weights.bin", std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  std::string path = Write(dir, "ext.onnx", m.SerializeAsString());
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status();
  const Tensor& t = model->graph.initializers.at("W");
  EXPECT_EQ(t.data<float>()[0], 10.f);
  EXPECT_EQ(t.data<float>()[5], 60.f);
}

TEST(ImporterTest, MissingExternalDataFileIsAnError) {
  TempDir dir;
  onnx::ModelProto m = SmallModel();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_float_data();
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* loc = w->add_external_data();
  loc->set_key("location");
  loc->set_value("missing.bin");
  std::string path = Write(dir, "ext.onnx", m.SerializeAsString());
  auto model = LoadModel(path);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("missing.bin"), std::string::npos) << model.status();
  EXPECT_NE(model.status().message().find("'W'"), std::string::npos) << model.status();
}

TEST(ImporterTest, ExternalDataMayNotLeaveTheModelFolder) {
  onnx::ModelProto m = SmallModel();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_float_data();
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* loc = w->add_external_data();
  loc->set_key("location");
  loc->set_value("../../etc/passwd");
  TempDir dir;
  auto model = LoadModel(Write(dir, "ext.onnx", m.SerializeAsString()));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("leaves the model's folder"), std::string::npos) << model.status();
}

TEST(ImporterTest, RawDataOfWrongSizeIsAnError) {
  onnx::ModelProto m = SmallModel();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_float_data();
  w->set_raw_data(std::string(7, '\0'));
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("raw data"), std::string::npos) << model.status();
}

TEST(ImporterTest, HugeDimensionsAreRefusedWithoutAllocating) {
  onnx::ModelProto m = SmallModel();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_dims();
  w->add_dims(int64_t{1} << 40);
  w->add_dims(int64_t{1} << 40);
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("too large"), std::string::npos) << model.status();
}

// Inputs fuzz/fuzz_onnx found: each imports or is a clear error, never a
// crash or an allocation of gigabytes (some failed later, in the passes).
TEST(ImporterTest, FuzzRegressionsImportOrFail) {
  const std::string dir = std::string(HEPML_SOURCE_DIR) + "/fuzz/regressions/fuzz_onnx";
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto model = LoadModelFromBytes(bytes);
    if (!model.ok()) EXPECT_FALSE(model.status().message().empty()) << entry.path();
    ++seen;
  }
  EXPECT_GT(seen, 0);
  std::ifstream in(dir + "/initializer-shape-beyond-data.onnx", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto model = LoadModelFromBytes(bytes);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("holds data for at most"), std::string::npos) << model.status();
}

// Found by fuzz/fuzz_onnx: a Sigmoid with no input was constant-folded at
// load time and its kernel read input 0 past the end of the input list.
TEST(ImporterTest, NodeArityIsCheckedAgainstTheSchema) {
  onnx::ModelProto m = SmallModel();
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type("Sigmoid");
  n->add_output("s");
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("has 0 inputs; Sigmoid-13 takes 1"), std::string::npos) << model.status();
  n->add_input("x");
  n->add_input("x");
  model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("has 2 inputs"), std::string::npos) << model.status();
}

// Found by fuzz/fuzz_onnx: a Squeeze whose data input was named "" (absent)
// was constant-folded at load time and its kernel read the missing input.
// Optional inputs may be absent; required ones may not, at any opset.
TEST(ImporterTest, RequiredInputWithEmptyNameIsAnError) {
  for (int opset : {13, 21}) {
    onnx::ModelProto m = SmallModel();
    m.mutable_opset_import(0)->set_version(opset);
    auto* n = m.mutable_graph()->add_node();
    n->set_op_type("Squeeze");
    n->add_input("");
    n->add_output("s");
    auto model = LoadModelFromBytes(m.SerializeAsString());
    ASSERT_FALSE(model.ok()) << opset;
    EXPECT_NE(model.status().message().find("input 0 ('data' of Squeeze-13) is required but has an empty name"),
              std::string::npos)
        << model.status();
    // An absent optional input (Clip's min) is fine.
    n->set_op_type("Clip");
    n->set_input(0, "x");
    n->add_input("");
    n->add_input("");
    model = LoadModelFromBytes(m.SerializeAsString());
    EXPECT_TRUE(model.ok()) << opset << ": " << model.status();
  }
}

TEST(ImporterTest, SubgraphsSeeOuterScopeNames) {
  onnx::ModelProto m = SmallModel();
  auto* g = m.mutable_graph();
  AddTensorValue(g->add_input(), "cond", onnx::TensorProto::BOOL, {});
  auto* if_node = g->add_node();
  if_node->set_op_type("If");
  if_node->add_input("cond");
  if_node->add_output("z");
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* attr = if_node->add_attribute();
    attr->set_name(branch);
    attr->set_type(onnx::AttributeProto::GRAPH);
    auto* body = attr->mutable_g();
    body->set_name(branch);
    auto* id = body->add_node();
    id->set_op_type("Identity");
    id->add_input("y");  // defined in the enclosing graph
    id->add_output(std::string(branch) + "_out");
    AddTensorValue(body->add_output(), std::string(branch) + "_out", onnx::TensorProto::FLOAT, {});
  }
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_TRUE(model.ok()) << model.status();
  const Graph* then_graph = model->graph.nodes.back().GetGraph("then_branch");
  ASSERT_NE(then_graph, nullptr);
  EXPECT_EQ(then_graph->nodes[0].op_type, "Identity");

  // A subgraph reading a name defined nowhere is refused.
  g->mutable_node(g->node_size() - 1)->mutable_attribute(0)->mutable_g()->mutable_node(0)->set_input(0, "nowhere");
  auto bad = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("nowhere"), std::string::npos) << bad.status();
}

TEST(ImporterTest, InlinesModelLocalFunctions) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* local = m.add_opset_import();
  local->set_domain("local");
  local->set_version(1);
  auto* f = m.add_functions();
  f->set_name("AddTwice");
  f->set_domain("local");
  f->add_input("a");
  f->add_input("b");
  f->add_output("out");
  f->add_opset_import()->set_version(17);
  auto* n1 = f->add_node();
  n1->set_op_type("Add");
  n1->add_input("a");
  n1->add_input("b");
  n1->add_output("tmp");
  auto* n2 = f->add_node();
  n2->set_op_type("Add");
  n2->add_input("tmp");
  n2->add_input("b");
  n2->add_output("out");
  auto* g = m.mutable_graph();
  AddTensorValue(g->add_input(), "x", onnx::TensorProto::FLOAT, {"2"});
  AddTensorValue(g->add_input(), "y", onnx::TensorProto::FLOAT, {"2"});
  AddTensorValue(g->add_output(), "z", onnx::TensorProto::FLOAT, {"2"});
  for (const char* name : {"first", "second"}) {
    auto* call = g->add_node();
    call->set_op_type("AddTwice");
    call->set_domain("local");
    call->set_name(name);
    call->add_input(std::string(name) == "first" ? "x" : "mid");
    call->add_input("y");
    call->add_output(std::string(name) == "first" ? "mid" : "z");
  }
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->graph.nodes.size(), 4u);
  for (const Node& n : model->graph.nodes) {
    EXPECT_EQ(n.op_type, "Add");
    EXPECT_EQ(n.opset, 17);
  }
  EXPECT_EQ(model->graph.nodes[0].inputs[0], "x");
  EXPECT_EQ(model->graph.nodes[1].outputs[0], "mid");
  // The two calls' intermediate values do not collide.
  EXPECT_NE(model->graph.nodes[0].outputs[0], model->graph.nodes[2].outputs[0]);
  EXPECT_EQ(model->graph.nodes[3].outputs[0], "z");
}

TEST(ImporterTest, AcceptsOpsetsUpTo21) {
  auto model = LoadModelFromBytes(SmallModel(21).SerializeAsString());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->graph.nodes[0].opset, 21);
}

TEST(ImporterTest, ImportsFloat8AndInt4TensorsAndTypes) {
  onnx::ModelProto m = SmallModel(21);
  auto* g = m.mutable_graph();
  auto* f8 = g->add_initializer();  // float8e4m3fn [1.0, -448]
  f8->set_name("f8");
  f8->set_data_type(17);
  f8->add_dims(2);
  f8->set_raw_data(std::string("\x38\xfe", 2));
  auto* i4 = g->add_initializer();  // int4 [-1, 2, -8], packed
  i4->set_name("i4");
  i4->set_data_type(22);
  i4->add_dims(3);
  i4->set_raw_data(std::string("\x2f\x08", 2));
  AddTensorValue(g->add_output(), "u4_out", 21, {"3"});
  auto* cast = g->add_node();
  cast->set_op_type("Cast");
  cast->add_input("i4");
  cast->add_output("u4_out");
  auto* to = cast->add_attribute();
  to->set_name("to");
  to->set_type(onnx::AttributeProto::INT);
  to->set_i(21);
  auto model = LoadModelFromBytes(m.SerializeAsString());
  ASSERT_TRUE(model.ok()) << model.status();
  const Tensor& a = model->graph.initializers.at("f8");
  EXPECT_EQ(a.dtype(), DType::kFloat8E4M3FN);
  EXPECT_EQ(static_cast<float>(a.data<Float8E4M3FN>()[1]), -448.0f);
  const Tensor& b = model->graph.initializers.at("i4");
  EXPECT_EQ(b.dtype(), DType::kInt4);
  EXPECT_EQ(std::vector<int8_t>(b.data<int8_t>(), b.data<int8_t>() + 3), std::vector<int8_t>({-1, 2, -8}));
  ASSERT_EQ(model->graph.outputs.size(), 2u);
  EXPECT_EQ(model->graph.outputs[1].type.dtype, DType::kUInt4);
}

}  // namespace
}  // namespace hepml
