// Retraining triggers against a real registry (SQLite, in a temporary
// folder) and real training jobs on a real one-node Slurm cluster
// (slurm_test_cluster.h). The "training" copies a small ONNX model to {out}
// and prints the metric the test chose.
#include "jobs/triggers.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jobs/batch_executors.h"
#include "jobs/slurm_test_cluster.h"

namespace hepml::jobs {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const char* kModel = HEPML_SOURCE_DIR "/fuzz/corpus/fuzz_onnx/mlp.onnx";

class TriggersTest : public testing::SlurmClusterSuite<TriggersTest> {
 protected:

  void SetUp() override {
    char tmpl[] = "/tmp/hepml-triggers-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto reg = registry::Registry::OpenDir((dir_ / "registry").string());
    ASSERT_TRUE(reg.ok()) << reg.status();
    reg_ = std::move(*reg);
    options_.make_executor = [](const ExecutorOptions& o) { return MakeSlurmExecutor(o); };
    options_.poll_interval_s = 0.2;
    SetMetric(0.8);
  }
  void TearDown() override {
    reg_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  bool NeedSlurm() {
    if (!testing::SlurmTestCluster::Installed()) {
      skip_reason_ = testing::SlurmTestCluster::kNotInstalled;
      return false;
    }
    if (!start_status_->ok()) {
      ADD_FAILURE() << *start_status_;
      return false;
    }
    return true;
  }

  void SetMetric(double auc) { Write(dir_ / "metric.txt", absl::StrCat("epoch 1\nhepml-metric auc=", auc, "\n")); }

  static void Write(const fs::path& p, const std::string& text) {
    std::ofstream f(p);
    f << text;
  }

  // A job file training `model` (into {out}) and printing the chosen metric.
  std::string JobFile(const std::string& name, const std::string& extra = "", const std::string& model = "btag",
                      const std::string& command = "") {
    std::string cmd = command.empty() ? absl::StrCat("cp '", kModel, "' {out} && echo data={dataset}@{dataset_version} && cat '",
                                                     (dir_ / "metric.txt").string(), "'")
                                      : command;
    std::string text = absl::StrCat("command: \"", cmd, "\"\nmodel: ", model,
                                    "\noutput: model.onnx\nmetric: {name: auc, direction: maximize}\n"
                                    "alias: production\nexecutor: {kind: slurm}\nresources: {cpus: 1, memory_mb: 100}\n",
                                    extra);
    fs::path p = dir_ / name;
    Write(p, text);
    return p.string();
  }

  void AddDatasetVersion(const std::string& name) {
    static int n = 0;
    fs::path f = dir_ / absl::StrCat("data", n++, ".csv");
    Write(f, absl::StrCat("x\n", n, "\n"));
    auto v = reg_->AddDatasetVersion(name, {f.string()});
    ASSERT_TRUE(v.ok()) << v.status();
  }

  std::vector<Decision> Watch() {
    auto d = WatchOnce(*reg_, options_);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : std::vector<Decision>{};
  }

  int64_t AliasVersion(const std::string& model = "btag") {
    auto v = reg_->GetAlias(model, "production");
    return v.ok() ? v->version : 0;
  }

  fs::path dir_;
  std::unique_ptr<registry::Registry> reg_;
  WatchOptions options_;
  std::string skip_reason_;
};


#define NEED_SLURM()                                    \
  do {                                                  \
    if (!NeedSlurm()) {                                 \
      if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_; \
      return;                                           \
    }                                                   \
  } while (0)

TEST_F(TriggersTest, DatasetTriggerFiresOncePerNewVersion) {
  NEED_SLURM();
  AddDatasetVersion("jets");  // before the trigger: not a reason to retrain
  auto t = AddTrigger(*reg_, "dataset:jets", JobFile("job.yaml"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(Watch().empty());

  AddDatasetVersion("jets");
  AddDatasetVersion("other");
  std::vector<Decision> d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].decision, "promoted") << d[0].reason;
  EXPECT_EQ(d[0].cause, "dataset jets@2");
  EXPECT_EQ(d[0].job_state, "succeeded");
  ASSERT_TRUE(d[0].version.has_value());
  EXPECT_EQ(*d[0].version, 1);
  EXPECT_EQ(AliasVersion(), 1);
  // The version records the metric and its lineage: the run and the dataset version.
  auto v = reg_->GetVersion("btag", 1);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_DOUBLE_EQ(v->metrics.at("auc"), 0.8);
  ASSERT_EQ(v->datasets.size(), 1u);
  EXPECT_EQ(v->datasets[0].dataset, "jets");
  EXPECT_EQ(v->datasets[0].version, 2);
  EXPECT_EQ(v->source_run, d[0].run_id);
  auto run = reg_->GetRun(d[0].run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, "finished");
  EXPECT_EQ(run->tags.at("hepml.decision"), "promoted");
  EXPECT_THAT(run->tags.at("hepml.job.command"), HasSubstr("echo data=jets@2"));

  // Watching again finds nothing new: the same version does not fire twice.
  EXPECT_TRUE(Watch().empty());
  AddDatasetVersion("jets");
  d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cause, "dataset jets@3");
  EXPECT_TRUE(Watch().empty());

  // A watcher that died after starting jobs but before recording how far it
  // got: the next one sees the events again but fires nothing twice.
  auto state_exp = reg_->GetExperimentByName("hepml.jobs.state");
  ASSERT_TRUE(state_exp.ok());
  auto state = reg_->SearchRuns({state_exp->id}, 10);
  ASSERT_TRUE(state.ok() && state->size() == 1u);
  ASSERT_TRUE(reg_->SetRunTag(state->front().id, "hepml.watch.last_event_id", "0").ok());
  EXPECT_TRUE(Watch().empty());

  auto history = History(*reg_);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].cause, "dataset jets@3");  // newest first
  EXPECT_EQ((*history)[1].cause, "dataset jets@2");
  ASSERT_TRUE((*history)[1].metric.has_value());
  EXPECT_DOUBLE_EQ(*(*history)[1].metric, 0.8);
}

TEST_F(TriggersTest, BetterOrEqualMovesTheAliasOnlyWhenTheMetricIsAtLeastTheCurrentOne) {
  NEED_SLURM();
  ASSERT_TRUE(AddTrigger(*reg_, "dataset:jets", JobFile("job.yaml", "policy: {promote_if: better_or_equal}\n")).ok());
  AddDatasetVersion("jets");
  auto d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].decision, "promoted");
  EXPECT_EQ(AliasVersion(), 1);

  SetMetric(0.7);  // worse
  AddDatasetVersion("jets");
  d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].decision, "registered") << d[0].reason;
  EXPECT_EQ(d[0].version, 2);
  EXPECT_THAT(d[0].reason, HasSubstr("auc 0.7 not >= 0.8"));
  EXPECT_EQ(AliasVersion(), 1);

  SetMetric(0.8);  // equal to production's
  AddDatasetVersion("jets");
  d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].decision, "promoted") << d[0].reason;
  EXPECT_EQ(AliasVersion(), 3);
}

TEST_F(TriggersTest, NeverAndAlwaysPolicies) {
  NEED_SLURM();
  ASSERT_TRUE(AddTrigger(*reg_, "dataset:a", JobFile("never.yaml", "policy: {promote_if: never}\n", "m_never")).ok());
  ASSERT_TRUE(AddTrigger(*reg_, "dataset:a", JobFile("always.yaml", "policy: always\n", "m_always")).ok());
  SetMetric(0.9);
  AddDatasetVersion("a");
  auto d = Watch();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].decision, "registered");
  EXPECT_EQ(AliasVersion("m_never"), 0);
  EXPECT_EQ(d[1].decision, "promoted");
  EXPECT_EQ(AliasVersion("m_always"), 1);

  SetMetric(0.1);  // far worse: `always` still moves the alias
  AddDatasetVersion("a");
  d = Watch();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].decision, "registered");
  EXPECT_EQ(AliasVersion("m_never"), 0);
  EXPECT_EQ(d[1].decision, "promoted");
  EXPECT_EQ(AliasVersion("m_always"), 2);
}

TEST_F(TriggersTest, AFailingJobIsRecordedAndLeavesTheAliasAlone) {
  NEED_SLURM();
  ASSERT_TRUE(AddTrigger(*reg_, "dataset:jets", JobFile("good.yaml")).ok());
  AddDatasetVersion("jets");
  ASSERT_EQ(Watch().size(), 1u);
  ASSERT_EQ(AliasVersion(), 1);

  // Another trigger for the same model, whose training fails.
  ASSERT_TRUE(AddTrigger(*reg_, "dataset:fresh", JobFile("bad.yaml", "", "btag", "echo training; exit 4")).ok());
  AddDatasetVersion("fresh");
  auto d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].decision, "failed");
  EXPECT_EQ(d[0].job_state, "failed");
  EXPECT_EQ(d[0].exit_code, 4);
  EXPECT_THAT(d[0].reason, HasSubstr("exit code 4"));
  EXPECT_FALSE(d[0].version.has_value());
  EXPECT_EQ(AliasVersion(), 1);
  EXPECT_EQ(reg_->ListVersions("btag")->size(), 1u);
  auto run = reg_->GetRun(d[0].run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, "failed");
  EXPECT_EQ(run->tags.at("hepml.decision"), "failed");
  EXPECT_EQ(run->tags.at("hepml.job.exit_code"), "4");
}

TEST_F(TriggersTest, DriftTriggerFiresWhenTheThresholdIsCrossed) {
  NEED_SLURM();
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  AddDatasetVersion("jets");
  ASSERT_TRUE(AddTrigger(*reg_, "drift:btag", JobFile("drift.yaml", "dataset: jets\ndrift_threshold: 0.2\n")).ok());
  ASSERT_TRUE(ReportDrift(*reg_, "btag", 0.1).ok());
  EXPECT_TRUE(Watch().empty());
  ASSERT_TRUE(ReportDrift(*reg_, "btag", 0.3).ok());
  ASSERT_TRUE(ReportDrift(*reg_, "btag", 0.35).ok());  // still above: no second firing
  ASSERT_TRUE(ReportDrift(*reg_, "other", 0.9).ok());
  auto d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cause, "drift btag 0.3 >= 0.2");
  EXPECT_EQ(d[0].decision, "promoted") << d[0].reason;
  auto v = reg_->GetVersion("btag", 1);
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->datasets.size(), 1u);  // trained on the latest jets version
  EXPECT_EQ(v->datasets[0].version, 1);
  ASSERT_TRUE(ReportDrift(*reg_, "btag", 0.1).ok());
  ASSERT_TRUE(ReportDrift(*reg_, "btag", 0.25).ok());
  d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cause, "drift btag 0.25 >= 0.2");
}

TEST_F(TriggersTest, AliasTriggerRetrainsWhenAnotherModelsAliasMoves) {
  NEED_SLURM();
  ASSERT_TRUE(reg_->CreateModel("teacher").ok());
  auto t = AddTrigger(*reg_, "alias:teacher@production", JobFile("student.yaml", "", "student"));
  ASSERT_TRUE(t.ok()) << t.status();
  auto v = reg_->PushModelVersion("teacher", {kModel});
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(reg_->SetAlias("teacher", "production", v->version).ok());
  auto d = Watch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cause, "alias teacher@production -> 1");
  EXPECT_EQ(AliasVersion("student"), 1);
}

TEST_F(TriggersTest, BadTriggersAndJobFilesAreRefused) {
  // A trigger whose job moves the alias it watches.
  auto loop = AddTrigger(*reg_, "alias:btag@production", JobFile("loop.yaml"));
  ASSERT_FALSE(loop.ok());
  EXPECT_THAT(loop.status().message(), HasSubstr("retrain forever"));
  EXPECT_THAT(AddTrigger(*reg_, "nightly", JobFile("j.yaml")).status().message(),
              HasSubstr("expected dataset:NAME, alias:MODEL@ALIAS or drift:MODEL"));
  EXPECT_THAT(AddTrigger(*reg_, "drift:btag", JobFile("j.yaml")).status().message(),
              HasSubstr("no drift_threshold"));
  EXPECT_EQ(AddTrigger(*reg_, "dataset:x", (dir_ / "missing.yaml").string()).status().code(),
            absl::StatusCode::kNotFound);
  auto triggers = ListTriggers(*reg_);
  ASSERT_TRUE(triggers.ok());
  EXPECT_TRUE(triggers->empty());

  // A removed trigger no longer fires (nor lists); its id cannot be removed twice.
  auto t = AddTrigger(*reg_, "dataset:jets", JobFile("j.yaml"));
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(ListTriggers(*reg_)->size(), 1u);
  ASSERT_TRUE(RemoveTrigger(*reg_, t->id).ok());
  EXPECT_TRUE(ListTriggers(*reg_)->empty());
  EXPECT_EQ(RemoveTrigger(*reg_, t->id).code(), absl::StatusCode::kNotFound);
  AddDatasetVersion("jets");
  auto none = WatchOnce(*reg_, options_);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  // A stored job file that no longer reads is a recorded failed decision.
  auto t2 = AddTrigger(*reg_, "dataset:jets", JobFile("j2.yaml"));
  ASSERT_TRUE(t2.ok()) << t2.status();
  ASSERT_TRUE(reg_->SetRunTag(t2->id, "hepml.trigger.job_yaml", "command: x\nmodel: m\nmetric: auc\nfrobnicate: 1\n").ok());
  AddDatasetVersion("jets");
  auto bad_job = WatchOnce(*reg_, options_);
  ASSERT_TRUE(bad_job.ok()) << bad_job.status();
  ASSERT_EQ(bad_job->size(), 1u);
  EXPECT_EQ((*bad_job)[0].decision, "failed");
  EXPECT_THAT((*bad_job)[0].reason, HasSubstr("unknown key 'frobnicate'"));
  auto recorded = History(*reg_);
  ASSERT_TRUE(recorded.ok());
  ASSERT_EQ(recorded->size(), 1u);
  EXPECT_EQ((*recorded)[0].decision, "failed");
  EXPECT_EQ((*recorded)[0].trigger_id, t2->id);

  // Unknown keys, at the top and inside sections, are named.
  auto bad = ParseRetrainJob("command: x\nmodel: m\nmetric: auc\nmodle: m\npolcy: always\n", "j.yaml", "/tmp");
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown keys 'modle', 'polcy'"));
  bad = ParseRetrainJob("command: x\nmodel: m\nmetric: auc\nresources: {cpu: 2}\n", "j.yaml", "/tmp");
  EXPECT_THAT(bad.status().message(), HasSubstr("resources: unknown key 'cpu'"));
  bad = ParseRetrainJob("command: x\nmodel: m\nmetric: {name: auc, direction: up}\n", "j.yaml", "/tmp");
  EXPECT_THAT(bad.status().message(), HasSubstr("direction 'up'"));
  bad = ParseRetrainJob("command: train {datset}\nmodel: m\nmetric: auc\n", "j.yaml", "/tmp");
  EXPECT_THAT(bad.status().message(), HasSubstr("{datset} is unknown"));
  bad = ParseRetrainJob("command: x\nmodel: m\nmetric: auc\npolicy: sometimes\n", "j.yaml", "/tmp");
  EXPECT_THAT(bad.status().message(), HasSubstr("promote_if 'sometimes'"));
  bad = ParseRetrainJob("model: m\nmetric: auc\n", "j.yaml", "/tmp");
  EXPECT_THAT(bad.status().message(), HasSubstr("'command' is missing"));
  auto good = ParseRetrainJob("command: echo ${HOME} {out}\nmodel: m\nmetric: auc\nwork_root: w\n", "j.yaml", "/tmp");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->work_root, "/tmp/w");
  EXPECT_EQ(good->policy, PromotePolicy::kBetterOrEqual);
}

TEST(RetrainJobTest, TheDeployExamplesParse) {
  for (const char* f : {HEPML_SOURCE_DIR "/deploy/slurm/retrain.yaml", HEPML_SOURCE_DIR "/deploy/htcondor/retrain.yaml"}) {
    auto job = LoadRetrainJob(f);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->model, "btag");
    EXPECT_EQ(job->resources.gpus, 1);
    EXPECT_TRUE(job->executor.kind == "slurm" || job->executor.kind == "htcondor");
    auto made = job->executor.kind == "slurm" ? MakeSlurmExecutor(job->executor) : MakeCondorExecutor(job->executor);
    EXPECT_TRUE(made.ok()) << made.status();
  }
}

TEST(LastMetricTest, ReadsTheLastValueOfEachMetric) {
  std::map<std::string, double> all;
  auto v = LastMetric("hepml-metric auc=0.5 step=1\nnoise\nhepml-metric loss=2\nhepml-metric auc=0.75 step=2\n"
                      "hepml-metric auc=oops\n",
                      "auc", &all);
  ASSERT_TRUE(v.has_value());
  EXPECT_DOUBLE_EQ(*v, 0.75);
  EXPECT_DOUBLE_EQ(all.at("loss"), 2);
  EXPECT_FALSE(LastMetric("nothing\n", "auc").has_value());
}

}  // namespace
}  // namespace hepml::jobs
