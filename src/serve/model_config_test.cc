#include "serve/model_config.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace hepml::serve {
namespace {

const char* kModel = HEPML_SOURCE_DIR "/examples/models/trigger_mlp.onnx";

std::unique_ptr<Session> TriggerMlp() {
  auto s = Session::Create(kModel);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

inference::ModelConfig Parse(const std::string& text) {
  auto c = ParseModelConfig(text);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : inference::ModelConfig();
}

TEST(ModelConfigTest, ParsesTritonFields) {
  auto c = Parse(R"pb(
    name: "trigger_mlp"
    platform: "onnxruntime_onnx"
    max_batch_size: 64
    version_policy: { latest: { num_versions: 2 } }
    input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
    output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ 5 ] reshape: { shape: [ 5 ] } } ]
    dynamic_batching {
      preferred_batch_size: [ 8, 16 ]
      max_queue_delay_microseconds: 100
      preserve_ordering: true
      default_queue_policy { max_queue_size: 32 }
    }
    instance_group [ { count: 2 kind: KIND_CPU } ]
    parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
  )pb");
  EXPECT_EQ(c.name(), "trigger_mlp");
  EXPECT_EQ(c.max_batch_size(), 64);
  EXPECT_EQ(c.version_policy().latest().num_versions(), 2u);
  ASSERT_EQ(c.input_size(), 1);
  EXPECT_EQ(c.input(0).data_type(), inference::TYPE_FP32);
  EXPECT_EQ(c.input(0).dims(0), 16);
  EXPECT_TRUE(c.output(0).has_reshape());
  EXPECT_EQ(c.dynamic_batching().preferred_batch_size_size(), 2);
  EXPECT_EQ(c.dynamic_batching().max_queue_delay_microseconds(), 100u);
  EXPECT_EQ(c.dynamic_batching().default_queue_policy().max_queue_size(), 32u);
  EXPECT_EQ(c.instance_group(0).count(), 2);
  EXPECT_EQ(c.instance_group(0).kind(), inference::ModelInstanceGroup::KIND_CPU);
  EXPECT_EQ(c.parameters().at("intra_op_thread_count").string_value(), "1");
}

TEST(ModelConfigTest, UnknownFieldsAreSkippedAndReported) {
  std::vector<std::string> ignored;
  auto c = ParseModelConfig(R"pb(
    name: "m"
    backend: "onnxruntime"
    optimization { execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt" } ] } }
    max_batch_size: 8
  )pb", &ignored);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_batch_size(), 8);
  ASSERT_FALSE(ignored.empty());
  EXPECT_NE(ignored[0].find("optimization"), std::string::npos) << ignored[0];
}

TEST(ModelConfigTest, SchedulingHepmlCannotHonourIsAnError) {
  auto c = ParseModelConfig("name: \"m\"\nsequence_batching { max_sequence_idle_microseconds: 5000 }\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("sequence_batching"), std::string::npos) << c.status();
}

TEST(ModelConfigTest, SyntaxErrorNamesTheLine) {
  auto c = ParseModelConfig("name: \"m\"\nmax_batch_size: \"eight\"\n");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
  EXPECT_NE(c.status().message().find("line 2"), std::string::npos) << c.status();
}

TEST(ModelConfigTest, CompletesAnEmptyConfigFromTheModel) {
  auto session = TriggerMlp();
  inference::ModelConfig c;
  ASSERT_TRUE(CompleteModelConfig("trigger_mlp", *session, &c).ok());
  EXPECT_EQ(c.name(), "trigger_mlp");
  EXPECT_EQ(c.platform(), "onnxruntime_onnx");
  EXPECT_EQ(c.backend(), "onnxruntime");
  EXPECT_EQ(c.max_batch_size(), kDefaultMaxBatchSize);
  EXPECT_TRUE(c.has_dynamic_batching());
  ASSERT_EQ(c.input_size(), 1);
  EXPECT_EQ(c.input(0).name(), "features");
  EXPECT_EQ(c.input(0).data_type(), inference::TYPE_FP32);
  ASSERT_EQ(c.input(0).dims_size(), 1);
  EXPECT_EQ(c.input(0).dims(0), 16);
  ASSERT_EQ(c.output_size(), 1);
  EXPECT_EQ(c.output(0).name(), "class_probabilities");
  EXPECT_EQ(c.output(0).dims(0), 5);
  ASSERT_EQ(c.instance_group_size(), 1);
  EXPECT_EQ(c.instance_group(0).count(), 1);
  EXPECT_EQ(ProtocolShape(c, c.input(0).dims()), (std::vector<int64_t>{-1, 16}));
}

TEST(ModelConfigTest, AcceptsAMatchingConfig) {
  auto session = TriggerMlp();
  auto c = Parse(R"pb(
    backend: "onnxruntime" max_batch_size: 32
    input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
    output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ -1 ] } ])pb");
  absl::Status st = CompleteModelConfig("trigger_mlp", *session, &c);
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(c.max_batch_size(), 32);
  EXPECT_FALSE(c.has_dynamic_batching());
}

TEST(ModelConfigTest, NoBatchingWithFullDims) {
  auto session = TriggerMlp();
  auto c = Parse(R"pb(
    input [ { name: "features" data_type: TYPE_FP32 dims: [ -1, 16 ] } ]
    output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ -1, 5 ] } ])pb");
  absl::Status st = CompleteModelConfig("trigger_mlp", *session, &c);
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(c.max_batch_size(), 0);
  EXPECT_EQ(ProtocolShape(c, c.input(0).dims()), (std::vector<int64_t>{-1, 16}));
}

void ExpectRejected(const std::string& text, const std::string& needle) {
  auto session = TriggerMlp();
  auto c = Parse(text);
  absl::Status st = CompleteModelConfig("trigger_mlp", *session, &c);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << text << " -> " << st;
  EXPECT_NE(st.message().find(needle), std::string::npos) << st;
}

TEST(ModelConfigTest, RejectsConfigsThatDoNotFitTheModel) {
  ExpectRejected(R"pb(name: "other")pb", "other");
  ExpectRejected(R"pb(platform: "tensorflow_savedmodel")pb", "tensorflow_savedmodel");
  ExpectRejected(R"pb(backend: "pytorch")pb", "pytorch");
  ExpectRejected(R"pb(max_batch_size: 8 input [ { name: "features" data_type: TYPE_FP64 dims: [ 16 ] } ])pb",
                 "TYPE_FP64");
  ExpectRejected(R"pb(max_batch_size: 8 input [ { name: "features" data_type: TYPE_FP32 dims: [ 17 ] } ])pb",
                 "[17]");
  ExpectRejected(R"pb(max_batch_size: 8 input [ { name: "jets" data_type: TYPE_FP32 dims: [ 16 ] } ])pb", "jets");
  ExpectRejected(R"pb(max_batch_size: 8 output [ { name: "p" data_type: TYPE_FP32 dims: [ 5 ] } ])pb", "'p'");
  ExpectRejected(R"pb(max_batch_size: 8 input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
                     dynamic_batching { preferred_batch_size: [ 16 ] })pb",
                 "preferred_batch_size 16");
}

TEST(ModelConfigTest, RejectsAConfigMissingAModelInput) {
  auto session = TriggerMlp();
  auto c = Parse(R"pb(max_batch_size: 8 output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ 5 ] } ])pb");
  // Outputs listed, inputs not: inputs come from the model.
  EXPECT_TRUE(CompleteModelConfig("trigger_mlp", *session, &c).ok());
}

TEST(ModelConfigTest, JsonHasNumbersForDims) {
  auto session = TriggerMlp();
  inference::ModelConfig c;
  ASSERT_TRUE(CompleteModelConfig("trigger_mlp", *session, &c).ok());
  auto j = nlohmann::json::parse(ModelConfigToJson(c));
  EXPECT_EQ(j["name"], "trigger_mlp");
  EXPECT_EQ(j["max_batch_size"], kDefaultMaxBatchSize);
  EXPECT_EQ(j["input"][0]["dims"][0], 16);
  EXPECT_EQ(j["input"][0]["data_type"], "TYPE_FP32");
}

TEST(ModelConfigTest, ProtocolDataTypes) {
  EXPECT_STREQ(ProtocolDataTypeName(DType::kFloat32), "FP32");
  EXPECT_STREQ(ProtocolDataTypeName(DType::kString), "BYTES");
  EXPECT_EQ(*DTypeFromProtocolName("INT64"), DType::kInt64);
  EXPECT_TRUE(absl::IsInvalidArgument(DTypeFromProtocolName("FLOAT").status()));
}

}  // namespace
}  // namespace hepml::serve
