#include "testing/backend_suite.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "onnx/onnx_pb.h"
#include "onnx/proto_convert.h"

namespace hepml::testing {
namespace {

namespace fs = std::filesystem;

class SuiteDir {
 public:
  SuiteDir() {
    root_ = fs::temp_directory_path() / ("hepml_suite_test_" + std::to_string(getpid()) + "_" + std::to_string(n_++));
    fs::create_directories(root_ / "node");
  }
  ~SuiteDir() { fs::remove_all(root_); }
  std::string group() const { return (root_ / "node").string(); }

  // A case computing out = a + b on float32[2], with the given expected output.
  void AddCase(const std::string& name, std::vector<float> expected) {
    fs::path dir = root_ / "node" / name;
    fs::create_directories(dir / "test_data_set_0");
    onnx::ModelProto m;
    m.set_ir_version(8);
    m.add_opset_import()->set_version(14);
    auto* g = m.mutable_graph();
    for (const char* in : {"a", "b"}) {
      auto* vi = g->add_input();
      vi->set_name(in);
      vi->mutable_type()->mutable_tensor_type()->set_elem_type(1);
      vi->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(2);
    }
    auto* out = g->add_output();
    out->set_name("out");
    out->mutable_type()->mutable_tensor_type()->set_elem_type(1);
    auto* n = g->add_node();
    n->set_op_type("Add");
    n->add_input("a");
    n->add_input("b");
    n->add_output("out");
    std::ofstream(dir / "model.onnx", std::ios::binary) << m.SerializeAsString();
    WriteTensor(dir / "test_data_set_0" / "input_0.pb", Tensor::FromVector<float>({2}, {1, 2}));
    WriteTensor(dir / "test_data_set_0" / "input_1.pb", Tensor::FromVector<float>({2}, {10, 20}));
    WriteTensor(dir / "test_data_set_0" / "output_0.pb", Tensor::FromVector<float>({2}, expected));
  }

 private:
  static void WriteTensor(const fs::path& path, const Tensor& t) {
    onnx::TensorProto tp;
    TensorToProto(t, "", &tp);
    std::ofstream(path, std::ios::binary) << tp.SerializeAsString();
  }
  static inline int n_ = 0;
  fs::path root_;
};

TEST(BackendSuiteTest, CorrectOutputsPassWrongOnesFail) {
  SuiteDir suite;
  suite.AddCase("test_right", {11, 22});
  suite.AddCase("test_wrong", {11, 23});
  auto cases = DiscoverCases({suite.group()}, "");
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_EQ(cases->size(), 2u);
  SuiteRules rules;
  CaseResult right = RunCase((*cases)[0], rules);
  CaseResult wrong = RunCase((*cases)[1], rules);
  EXPECT_EQ(right.test.name, "test_right");
  EXPECT_EQ(right.outcome, Outcome::kPass) << right.message;
  EXPECT_EQ(wrong.outcome, Outcome::kFail);
  EXPECT_NE(wrong.message.find("1 of 2 values differ"), std::string::npos) << wrong.message;
  EXPECT_EQ(SummaryLine({right, wrong}), "1 passed, 1 failed, 0 skipped");
}

TEST(BackendSuiteTest, ToleranceRulesLoosenTheComparison) {
  SuiteDir suite;
  suite.AddCase("test_close", {11.1f, 22});
  auto cases = DiscoverCases({suite.group()}, "");
  ASSERT_TRUE(cases.ok());
  SuiteRules strict;
  EXPECT_EQ(RunCase((*cases)[0], strict).outcome, Outcome::kFail);
  SuiteRules loose;
  loose.tolerances.push_back({"test_close", Tolerance{1e-2, 0}, "documented reason"});
  EXPECT_EQ(RunCase((*cases)[0], loose).outcome, Outcome::kPass);
}

TEST(BackendSuiteTest, SkipRulesNeedAReasonAndAreReported) {
  std::string path = (fs::temp_directory_path() / ("rules_" + std::to_string(getpid()))).string();
  std::ofstream(path) << "# comment\nSKIP test_adam.* : training-only operator\n"
                         "TOLERANCE test_x rtol=0.1 atol=0.001 : fp16 rounding\n";
  auto rules = LoadRules({path});
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_NE(rules->FindSkip("test_adam_multiple"), nullptr);
  EXPECT_EQ(rules->FindSkip("test_adam_multiple")->reason, "training-only operator");
  EXPECT_EQ(rules->FindSkip("test_add"), nullptr);
  EXPECT_DOUBLE_EQ(rules->ToleranceFor("test_x").rtol, 0.1);
  EXPECT_DOUBLE_EQ(rules->ToleranceFor("test_y").rtol, 1e-3);

  std::ofstream(path) << "SKIP test_foo\n";
  auto bad = LoadRules({path});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(":1:"), std::string::npos) << bad.status();
  fs::remove(path);
}

TEST(BackendSuiteTest, FilterSelectsByGroupAndName) {
  SuiteDir suite;
  suite.AddCase("test_one", {11, 22});
  suite.AddCase("test_two", {11, 22});
  auto cases = DiscoverCases({suite.group()}, "node/test_tw");
  ASSERT_TRUE(cases.ok());
  ASSERT_EQ(cases->size(), 1u);
  EXPECT_EQ((*cases)[0].name, "test_two");
  EXPECT_FALSE(DiscoverCases({suite.group()}, "([").ok());
  EXPECT_FALSE(DiscoverCases({"/nonexistent"}, "").ok());
}

TEST(BackendSuiteTest, ABrokenModelFailsTheCaseNotTheRunner) {
  SuiteDir suite;
  suite.AddCase("test_broken", {11, 22});
  auto cases = DiscoverCases({suite.group()}, "");
  ASSERT_TRUE(cases.ok());
  std::ofstream(fs::path((*cases)[0].dir) / "model.onnx", std::ios::binary | std::ios::trunc) << "garbage";
  CaseResult r = RunCase((*cases)[0], SuiteRules{});
  EXPECT_EQ(r.outcome, Outcome::kFail);
  EXPECT_NE(r.message.find("not a valid ONNX model"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace hepml::testing
