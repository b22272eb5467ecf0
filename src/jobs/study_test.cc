// Study files, metric lines and the study runner against a real registry
// (SQLite in a temporary folder) and the real local executor.
#include "jobs/study.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hepml/registry.h"

namespace hepml::jobs {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// ---------------------------------------------------------------- study files

constexpr const char* kGood = R"(name: demo
command: python3 train.py --lr {lr} --units {units} --act {act} --out {trial_dir}
space:
  lr: {type: float, low: 1.0e-4, high: 0.1, log: true}
  units: {type: int, low: 16, high: 128, step: 16}
  act: {type: categorical, choices: [relu, tanh]}
  slope: {type: float, low: 0.0, high: 0.5, condition: {act: [relu]}}
objective: {metric: val_loss, direction: minimize}
sampler: {kind: tpe, seed: 3}
pruner: {kind: asha, min_resource: 1, max_resource: 9}
budget: {trials: 10, parallel: 2, max_failures: 3, wall_time: 10m}
resources: {cpus: 1, time_limit: 90s}
)";

absl::StatusOr<StudyConfig> Parse(const std::string& text) { return ParseStudyConfig(text, "s.yaml", "/base"); }

// kGood with one line replaced (or, with `from` empty, one line added).
std::string Edit(const std::string& from, const std::string& to) {
  std::string s = kGood;
  if (from.empty()) return s + to + "\n";
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(StudyFileTest, ReadsAGoodFile) {
  auto c = Parse(kGood);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "demo");
  ASSERT_EQ(c->space.params.size(), 4u);
  EXPECT_EQ(c->space.params[0].kind, ParamKind::kFloat);
  EXPECT_TRUE(c->space.params[0].log);
  EXPECT_EQ(c->space.params[1].kind, ParamKind::kInt);
  EXPECT_EQ(c->space.params[1].step, 16);
  EXPECT_EQ(c->space.params[2].choices, (std::vector<std::string>{"relu", "tanh"}));
  EXPECT_EQ(c->space.params[3].parent, "act");
  EXPECT_EQ(c->objective, "val_loss");
  EXPECT_EQ(c->sampler.kind, "tpe");
  EXPECT_EQ(c->sampler.seed, 3u);
  EXPECT_EQ(c->pruner.max_resource, 9);
  EXPECT_EQ(c->budget.trials, 10);
  EXPECT_EQ(c->budget.max_failures, 3);
  EXPECT_EQ(c->budget.wall_time_s, 600);
  EXPECT_EQ(c->resources.time_limit_s, 90);
  EXPECT_EQ(c->executor.kind, "local");
  EXPECT_EQ(c->work_dir, "/base/hepml-hpo/demo");
  EXPECT_EQ(c->registry_dir, "/base/hepml-registry");
}

TEST(StudyFileTest, UnknownKeysAreNamedWithTheirLine) {
  auto c = Parse(Edit("", "workdir: /tmp"));
  EXPECT_THAT(c.status().message(), HasSubstr("s.yaml:13: unknown key 'workdir' in the study"));
  c = Parse(Edit("  lr: {type: float, low: 1.0e-4, high: 0.1, log: true}", "  lr: {type: float, lo: 1.0e-4, high: 0.1}"));
  EXPECT_THAT(c.status().message(), HasSubstr("s.yaml:4: unknown key 'lo' in space.lr"));
  c = Parse(Edit("budget: {trials: 10,", "budget: {trails: 10,"));
  EXPECT_THAT(c.status().message(), HasSubstr("unknown key 'trails' in budget"));
  c = Parse(Edit("sampler: {kind: tpe, seed: 3}", "sampler: {kind: tpe, sed: 3}"));
  EXPECT_THAT(c.status().message(), HasSubstr("s.yaml:9: unknown key 'sed' in sampler"));
}

TEST(StudyFileTest, RejectsBadSpacesAndKinds) {
  struct Case {
    std::string from, to, message;
  } cases[] = {
      {"  lr: {type: float, low: 1.0e-4, high: 0.1, log: true}", "  lr: {type: float, low: 0.1, high: 0.01}",
       "space.lr: low (0.1) must be below high (0.01)"},
      {"  lr: {type: float, low: 1.0e-4, high: 0.1, log: true}", "  lr: {type: float, low: 0, high: 0.1, log: true}",
       "log needs low > 0"},
      {"  units: {type: int, low: 16, high: 128, step: 16}", "  units: {type: int, low: 16.5, high: 128}",
       "int bounds must be integers"},
      {"  units: {type: int, low: 16, high: 128, step: 16}", "  units: {type: int, low: 16, high: 128, step: 0}",
       "step must be > 0"},
      {"  act: {type: categorical, choices: [relu, tanh]}", "  act: {type: categorical, choices: []}", "no choices"},
      {"  act: {type: categorical, choices: [relu, tanh]}", "  act: {type: categorical, choices: [relu, relu]}",
       "listed twice"},
      {"  act: {type: categorical, choices: [relu, tanh]}", "  act: {type: string, choices: [relu]}",
       "unknown type 'string'"},
      {"condition: {act: [relu]}", "condition: {act: [elu]}", "'elu' is not a choice of 'act'"},
      {"condition: {act: [relu]}", "condition: {nope: [relu]}", "parameter 'nope' is not defined before 'slope'"},
      {"sampler: {kind: tpe, seed: 3}", "sampler: {kind: bayes}", "unknown sampler 'bayes'"},
      {"pruner: {kind: asha, min_resource: 1, max_resource: 9}", "pruner: {kind: patient}", "unknown pruner 'patient'"},
      {"pruner: {kind: asha, min_resource: 1, max_resource: 9}", "pruner: {kind: asha}", "needs max_resource"},
      {"resources: {cpus: 1, time_limit: 90s}", "executor: {kind: kubernetes}", "unknown executor 'kubernetes'"},
      {"budget: {trials: 10,", "budget: {trials: 0,", "budget.trials: must be >= 1"},
      {"budget: {trials: 10,", "budget: {trials: ten,", "budget.trials: expected an integer, got 'ten'"},
      {"wall_time: 10m", "wall_time: soon", "expected seconds or a duration"},
      {"direction: minimize", "direction: lower", "'lower' (expected minimize or maximize)"},
      {"--out {trial_dir}", "--out {trial_dir} --seed {seed}", "unknown placeholder {seed}"},
      {"name: demo", "name: 'my study'", "name 'my study'"},
  };
  for (const auto& c : cases) {
    auto r = Parse(Edit(c.from, c.to));
    EXPECT_FALSE(r.ok()) << c.to;
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << c.to;
  }
}

TEST(StudyFileTest, EmptySpaceMissingKeysAndBadYaml) {
  auto c = Parse("name: x\ncommand: true\nspace: {}\nobjective: {metric: m}\nbudget: {trials: 1}\n");
  EXPECT_THAT(c.status().message(), HasSubstr("the search space is empty"));
  c = Parse("name: x\ncommand: true\nobjective: {metric: m}\nbudget: {trials: 1}\n");
  EXPECT_THAT(c.status().message(), HasSubstr("the search space is empty"));
  c = Parse("name: x\ncommand: true\nspace: {a: {type: int, low: 0, high: 3}}\nbudget: {trials: 1}\n");
  EXPECT_THAT(c.status().message(), HasSubstr("no objective"));
  c = Parse("name: x\ncommand: true\nspace: {a: {type: int, low: 0, high: 3}}\nobjective: {metric: m}\n");
  EXPECT_THAT(c.status().message(), HasSubstr("no budget"));
  c = Parse("name: [x\n");
  EXPECT_THAT(c.status().message(), HasSubstr("not valid YAML"));
  c = Parse("- a\n- b\n");
  EXPECT_THAT(c.status().message(), HasSubstr("expected a mapping"));
  c = Parse(Edit("", "name: again"));
  EXPECT_THAT(c.status().message(), HasSubstr("key 'name' given twice"));
  EXPECT_EQ(LoadStudyFile("/no/such/study.yaml").status().code(), absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------- metric lines

TEST(MetricLineTest, GoodLines) {
  auto m = ParseMetricLine("hepml-metric val_loss=0.25 step=3");
  ASSERT_TRUE(m.ok() && m->has_value());
  ASSERT_EQ((*m)->size(), 1u);
  EXPECT_EQ((**m)[0].name, "val_loss");
  EXPECT_EQ((**m)[0].value, 0.25);
  EXPECT_EQ((**m)[0].step, 3);
  m = ParseMetricLine("  hepml-metric acc=0.9 loss=1e-3\r");
  ASSERT_TRUE(m.ok() && m->has_value());
  ASSERT_EQ((*m)->size(), 2u);
  EXPECT_EQ((**m)[1].value, 1e-3);
  EXPECT_FALSE((**m)[1].step.has_value());
  // Not metric lines at all.
  for (const char* other : {"epoch 3 loss 0.2", "", "hepml-metrics a=1", "# hepml-metric a=1"}) {
    m = ParseMetricLine(other);
    ASSERT_TRUE(m.ok()) << other;
    EXPECT_FALSE(m->has_value()) << other;
  }
}

TEST(MetricLineTest, BadLines) {
  EXPECT_THAT(ParseMetricLine("hepml-metric").status().message(), HasSubstr("no NAME=VALUE"));
  EXPECT_THAT(ParseMetricLine("hepml-metric loss").status().message(), HasSubstr("not NAME=VALUE"));
  EXPECT_THAT(ParseMetricLine("hepml-metric loss=abc").status().message(), HasSubstr("'abc' is not a number"));
  EXPECT_THAT(ParseMetricLine("hepml-metric loss=nan").status().message(), HasSubstr("not a finite number"));
  EXPECT_THAT(ParseMetricLine("hepml-metric loss=1 step=-1").status().message(), HasSubstr("non-negative"));
  EXPECT_THAT(ParseMetricLine("hepml-metric loss=1 step=1.5").status().message(), HasSubstr("non-negative integer"));
  EXPECT_THAT(ParseMetricLine("hepml-metric loss=1 loss=2").status().message(), HasSubstr("given twice"));
  EXPECT_THAT(ParseMetricLine("hepml-metric =3").status().message(), HasSubstr("not NAME=VALUE"));
}

TEST(MetricLineTest, JsonLines) {
  auto m = ParseMetricJson(R"({"name": "auc", "value": 0.93, "step": 4})");
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((**m)[0].name, "auc");
  EXPECT_EQ((**m)[0].step, 4);
  EXPECT_FALSE(ParseMetricJson("  ")->has_value());
  EXPECT_FALSE(ParseMetricJson("{\"name\": \"a\"}").ok());
  EXPECT_FALSE(ParseMetricJson("{\"name\": \"a\", \"value\": \"x\"}").ok());
  EXPECT_FALSE(ParseMetricJson("{\"name\": \"a\", \"value\": 1, \"step\": 0.5}").ok());
  EXPECT_FALSE(ParseMetricJson("{\"name\": \"a\", \"value\": 1, \"extra\": 2}").ok());
  EXPECT_FALSE(ParseMetricJson("not json").ok());
}

TEST(ExpandCommandTest, PlaceholdersAndQuoting) {
  auto c = Parse(kGood);
  ASSERT_TRUE(c.ok());
  ParamSet p{{"lr", 0.001}, {"units", int64_t{64}}, {"act", std::string("tanh")}};
  auto cmd = ExpandCommand("t --lr {lr} --units {units} --act {act} --slope={slope} {{x}} {trial_number} {trial_dir}",
                           c->space, p, "/w/my trial", 7, "demo");
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(*cmd, "t --lr 0.001 --units 64 --act tanh --slope= {x} 7 '/w/my trial'");
  p["act"] = std::string("it's");
  EXPECT_EQ(*ExpandCommand("{act}", c->space, p, "/t", 0, "s"), "'it'\\''s'");
  EXPECT_FALSE(ExpandCommand("{nope}", c->space, p, "/t", 0, "s").ok());
  EXPECT_FALSE(ExpandCommand("{lr", c->space, p, "/t", 0, "s").ok());
}

// ---------------------------------------------------------------- the runner

// Proposes x = values[trial_number % n]: the runner tests need to know what
// each trial does.
class FixedSampler : public Sampler {
 public:
  explicit FixedSampler(std::vector<int64_t> values) : values_(std::move(values)) {}
  absl::StatusOr<ParamSet> Sample(const SearchSpace&, Direction, const std::vector<Trial>&, int64_t n) override {
    return ParamSet{{"x", values_[static_cast<size_t>(n) % values_.size()]}};
  }

 private:
  std::vector<int64_t> values_;
};

// Prunes the trial with x == 99 once it reports step 2.
class PruneNinetyNine : public Pruner {
 public:
  bool ShouldPrune(const Trial& t, int64_t step, const std::vector<Trial>&, Direction) const override {
    auto it = t.params.find("x");
    return it != t.params.end() && std::get<int64_t>(it->second) == 99 && step >= 2;
  }
};

// A local executor whose first polls of each job fail, as a busy batch
// system's queries do.
class FlakyExecutor : public Executor {
 public:
  explicit FlakyExecutor(std::unique_ptr<Executor> inner) : inner_(std::move(inner)) {}
  std::string kind() const override { return "flaky"; }
  int64_t capacity() const override { return inner_->capacity(); }
  absl::StatusOr<std::string> Submit(const JobSpec& job) override { return inner_->Submit(job); }
  absl::StatusOr<JobStatus> Poll(const std::string& handle) override {
    if (++polls_[handle] <= 3) return absl::UnavailableError("the scheduler is busy");
    return inner_->Poll(handle);
  }
  absl::Status Cancel(const std::string& handle, double grace_s) override { return inner_->Cancel(handle, grace_s); }
  std::map<std::string, int> polls_;

 private:
  std::unique_ptr<Executor> inner_;
};

bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

class StudyRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / absl::StrCat("hepml_study_", getpid(), "_",
                                                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto reg = registry::Registry::OpenDir((dir_ / "registry").string());
    ASSERT_TRUE(reg.ok()) << reg.status();
    reg_ = std::move(*reg);
  }
  void TearDown() override { fs::remove_all(dir_); }

  StudyConfig Config(const std::string& command, int64_t trials, int64_t parallel) {
    std::string indented;
    for (absl::string_view line : absl::StrSplit(command, '\n')) absl::StrAppend(&indented, "  ", line, "\n");
    std::string text = absl::StrCat("name: t\ncommand: |\n", indented,
                                    "space: {x: {type: int, low: 0, high: 100}}\n"
                                    "objective: {metric: loss, direction: minimize}\n"
                                    "budget: {trials: ", trials, ", parallel: ", parallel, "}\n");
    auto c = ParseStudyConfig(text, "t.yaml", dir_.string());
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  }

  StudyOptions Options(std::vector<int64_t> xs, int64_t cpus = 2, const std::string& gpus = "") {
    StudyOptions o;
    o.sampler = std::make_unique<FixedSampler>(std::move(xs));
    o.executor = *MakeExecutor({.kind = "local", .cpu_slots = cpus, .gpus = gpus, .detect_gpus = false});
    o.cancel_grace_s = 2;
    return o;
  }

  std::unique_ptr<registry::Registry> reg_;
  fs::path dir_;
};

TEST_F(StudyRunnerTest, FailedTrialsCarryTheirReasonAndTheStudyGoesOn) {
  // x=3 exits 3, x=5 runs a program that does not exist, the rest report loss=x.
  StudyConfig c = Config(
      "if [ {x} = 3 ]; then echo boom >&2; exit 3; fi; if [ {x} = 5 ]; then /no/such/prog; exit $?; fi; "
      "echo hepml-metric loss={x}",
      5, 2);
  auto study = Study::Create(c, reg_.get(), Options({1, 3, 5, 2, 4}));
  ASSERT_TRUE(study.ok()) << study.status();
  auto summary = (*study)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->complete, 3);
  EXPECT_EQ(summary->failed, 2);
  EXPECT_EQ(summary->stopped, "");
  auto trials = (*study)->Trials();
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 5u);
  EXPECT_EQ((*trials)[1].trial.state, TrialState::kFailed);
  EXPECT_THAT((*trials)[1].trial.fail_reason, HasSubstr("exit code 3"));
  EXPECT_THAT((*trials)[1].trial.fail_reason, HasSubstr("boom"));
  EXPECT_EQ((*trials)[1].exit_code, 3);
  EXPECT_EQ((*trials)[2].trial.state, TrialState::kFailed);
  EXPECT_THAT((*trials)[2].trial.fail_reason, HasSubstr("exit code 127"));
  EXPECT_EQ((*trials)[4].trial.state, TrialState::kComplete);
  EXPECT_EQ((*trials)[4].trial.value, 4);
  auto best = (*study)->Best();
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->trial.number, 0);
  EXPECT_EQ(best->trial.value, 1);
  // The registry has the runs, with their end status.
  auto run = reg_->GetRun((*trials)[1].run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, "failed");
  EXPECT_EQ(run->params.at("x"), "3");
  EXPECT_EQ(run->tags.at("hepml.hpo.trial"), "1");
  // A second study of the same name is refused.
  EXPECT_EQ(Study::Create(c, reg_.get(), Options({1})).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(StudyRunnerTest, FailedPollsAreRetried) {
  StudyConfig c = Config("echo hepml-metric loss={x}", 2, 1);
  StudyOptions o = Options({1, 2});
  o.executor = std::make_unique<FlakyExecutor>(std::move(o.executor));
  auto study = Study::Create(c, reg_.get(), std::move(o));
  ASSERT_TRUE(study.ok());
  auto summary = (*study)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->complete, 2);
}

TEST_F(StudyRunnerTest, AStudyThatCannotRunIsNotRecorded) {
  StudyConfig c = Config("echo hepml-metric loss={x}", 1, 1);
  c.name = "unrunnable";
  c.executor.kind = "pbs";
  auto study = Study::Create(c, reg_.get());
  EXPECT_EQ(study.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(study.status().message(), HasSubstr("unknown executor kind 'pbs'"));
  EXPECT_EQ(reg_->GetExperimentByName("unrunnable").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StudyRunnerTest, SubmitFailuresAndMaxFailuresStopTheStudy) {
  StudyConfig c = Config("echo hepml-metric loss={x}", 10, 1);
  c.budget.max_failures = 2;
  c.resources.gpus = 1;  // the executor has none: every Submit fails
  auto study = Study::Create(c, reg_.get(), Options({1}));
  ASSERT_TRUE(study.ok());
  auto summary = (*study)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 3);
  EXPECT_THAT(summary->stopped, HasSubstr("max_failures (2)"));
  auto trials = (*study)->Trials();
  ASSERT_EQ(trials->size(), 3u);
  EXPECT_THAT((*trials)[0].trial.fail_reason, HasSubstr("could not start"));
  EXPECT_THAT((*trials)[0].trial.fail_reason, HasSubstr("needs 1 GPUs"));
}

TEST_F(StudyRunnerTest, MetricsAreRecordedByStepAndBadLinesAreWarnings) {
  StudyConfig c = Config(
      "echo hepml-metric loss=5 acc=0.1 step=0; echo hepml-metric loss=oops step=1; echo hepml-metric loss=3 step=1; "
      "echo hepml-metric loss=2 step=1; echo just a line; printf \"hepml-metric loss=1 step=2\"",
      1, 1);
  auto study = Study::Create(c, reg_.get(), Options({7}));
  ASSERT_TRUE(study.ok());
  ASSERT_TRUE((*study)->Run().ok());
  auto trials = (*study)->Trials();
  ASSERT_EQ(trials->size(), 1u);
  const TrialRecord& t = (*trials)[0];
  EXPECT_EQ(t.trial.state, TrialState::kComplete);
  EXPECT_EQ(t.trial.intermediate, (std::map<int64_t, double>{{0, 5}, {1, 3}, {2, 1}}));
  EXPECT_EQ(t.trial.value, 1);  // the last line had no newline and still counts
  EXPECT_EQ(t.warnings, 2);     // loss=oops, and step 1 twice
  auto run = reg_->GetRun(t.run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_THAT(run->tags.at("hepml.hpo.last_warning"), HasSubstr("reported twice"));
  int acc = 0;
  for (const auto& m : run->metrics) acc += m.key == "acc";
  EXPECT_EQ(acc, 1);
  EXPECT_EQ(run->status, "finished");
}

TEST_F(StudyRunnerTest, JsonlMetricsFile) {
  StudyConfig c = Config(
      "echo \"{{\\\"name\\\": \\\"loss\\\", \\\"value\\\": {x}, \\\"step\\\": 1}}\" > m.jsonl; echo bad >> m.jsonl", 1, 1);
  c.metrics_source = "jsonl";
  c.metrics_file = "m.jsonl";
  auto study = Study::Create(c, reg_.get(), Options({9}));
  ASSERT_TRUE(study.ok());
  ASSERT_TRUE((*study)->Run().ok());
  auto trials = (*study)->Trials();
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_EQ((*trials)[0].trial.value, 9);
  EXPECT_EQ((*trials)[0].warnings, 1);
}

TEST_F(StudyRunnerTest, PruningCancelsTheRunningTrial) {
  // x=99 reports a step every 50 ms for 20 s unless it is stopped.
  StudyConfig c = Config(
      "echo $$ > pid; i=0; while [ $i -lt 400 ]; do echo hepml-metric loss={x} step=$i; i=$((i+1)); sleep 0.05; done",
      1, 1);
  StudyOptions o = Options({99});
  o.pruner = std::make_unique<PruneNinetyNine>();
  c.pruner.kind = "median";  // anything but none: the injected pruner decides
  auto study = Study::Create(c, reg_.get(), std::move(o));
  ASSERT_TRUE(study.ok());
  auto summary = (*study)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->pruned, 1);
  auto trials = (*study)->Trials();
  const TrialRecord& t = (*trials)[0];
  EXPECT_EQ(t.trial.state, TrialState::kPruned);
  EXPECT_THAT(t.trial.fail_reason, HasSubstr("pruned at step 2"));
  EXPECT_EQ(t.trial.value, 99);
  EXPECT_LT(t.trial.intermediate.size(), 100u);
  int pid = 0;
  std::ifstream in(fs::path(t.trial_dir) / "pid");
  in >> pid;
  ASSERT_GT(pid, 0);
  EXPECT_FALSE(Alive(pid)) << "the pruned trial's process still runs";
  auto run = reg_->GetRun(t.run_id);
  EXPECT_EQ(run->status, "killed");
  EXPECT_EQ(run->tags.at("hepml.hpo.term_signal"), "15");  // SIGTERM ended it
}

TEST_F(StudyRunnerTest, TrialsGetTheirOwnGpus) {
  // Both trials start, record their device, and wait for each other.
  StudyConfig c = Config(
      "echo $CUDA_VISIBLE_DEVICES > ../started-{x}; n=0; while [ $(ls .. | grep -c started-) -lt 2 ] && "
      "[ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done; echo hepml-metric loss=$(ls .. | grep -c started-)",
      2, 2);
  c.resources.gpus = 1;
  auto study = Study::Create(c, reg_.get(), Options({1, 2}, 4, "0,1"));
  ASSERT_TRUE(study.ok());
  auto summary = (*study)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto trials = (*study)->Trials();
  ASSERT_EQ(trials->size(), 2u);
  // Both ran at once (each saw the other start) on different devices.
  EXPECT_EQ((*trials)[0].trial.value, 2);
  EXPECT_EQ((*trials)[1].trial.value, 2);
  EXPECT_THAT((std::vector<std::string>{(*trials)[0].gpus, (*trials)[1].gpus}),
              ::testing::UnorderedElementsAre("0", "1"));
  auto run = reg_->GetRun((*trials)[0].run_id);
  ASSERT_TRUE(run->gpu_seconds.has_value());
}

TEST_F(StudyRunnerTest, RecordsPeakMemoryAndCpuTime) {
  StudyConfig c = Config(
      "/usr/bin/python3 -c \"import time\nb = b\\\"x\\\" * (150 << 20)\nt = time.process_time()\n"
      "while time.process_time() - t < 0.3: pass\nprint(\\\"hepml-metric loss={x}\\\")\"",
      1, 1);
  auto study = Study::Create(c, reg_.get(), Options({4}));
  ASSERT_TRUE(study.ok());
  ASSERT_TRUE((*study)->Run().ok());
  auto trials = (*study)->Trials();
  const TrialRecord& t = (*trials)[0];
  ASSERT_EQ(t.trial.state, TrialState::kComplete) << t.trial.fail_reason;
  EXPECT_GE(t.peak_rss_kb, 150 * 1024);
  EXPECT_GE(t.cpu_s, 0.3);
  auto run = reg_->GetRun(t.run_id);
  ASSERT_TRUE(run->peak_memory_bytes.has_value());
  EXPECT_GE(*run->peak_memory_bytes, int64_t{150} << 20);
  EXPECT_GE(run->cpu_seconds.value_or(0), 0.3);
}

TEST_F(StudyRunnerTest, StopMarksRunningTrialsLostAndResumeRunsThemAgain) {
  // Trials wait for ../go; the first two start, then the runner is stopped.
  StudyConfig c = Config("while [ ! -e ../go ]; do sleep 0.01; done; echo hepml-metric loss={x}", 4, 2);
  std::atomic<bool> stop{false};
  StudyOptions o = Options({10, 20, 30, 40});
  o.stop = &stop;
  auto study = Study::Create(c, reg_.get(), std::move(o));
  ASSERT_TRUE(study.ok());
  std::thread stopper([&] {
    // Once both trial folders exist the trials run: stop the runner.
    for (int i = 0; i < 1000 && !(fs::exists(dir_ / "hepml-hpo/t/trial-00001/stdout.log")); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop = true;
  });
  auto summary = (*study)->Run();
  stopper.join();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->stopped, "interrupted");
  EXPECT_EQ(summary->lost, 2);
  EXPECT_EQ(summary->complete, 0);

  // Another runner: a second one at once is refused by the study lock.
  std::ofstream(dir_ / "hepml-hpo/t/go") << "";
  auto again = Study::Open("t", reg_.get(), Options({50, 60, 70, 80}));
  ASSERT_TRUE(again.ok()) << again.status();
  summary = (*again)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->complete, 4);
  EXPECT_EQ(summary->lost, 2);
  auto trials = (*again)->Trials();
  ASSERT_EQ(trials->size(), 6u);
  // The lost trials 0 and 1 ran again as 2 and 3 with their parameters.
  EXPECT_TRUE((*trials)[0].lost);
  EXPECT_THAT((*trials)[0].trial.fail_reason, HasSubstr("lost: runner stopped"));
  EXPECT_EQ((*trials)[2].retry_of, 0);
  EXPECT_EQ((*trials)[2].trial.value, 10);
  EXPECT_EQ((*trials)[3].retry_of, 1);
  EXPECT_EQ((*trials)[3].trial.value, 20);
  // New parameters come from the sampler for the next trial numbers.
  EXPECT_EQ((*trials)[4].trial.value, 50);
  EXPECT_EQ((*trials)[5].trial.value, 60);
  // Resuming a finished study runs nothing.
  auto done = Study::Open("t", reg_.get(), Options({1}));
  ASSERT_TRUE(done.ok());
  summary = (*done)->Run();
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ((*done)->Trials()->size(), 6u);
  EXPECT_EQ(Study::Open("nope", reg_.get()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StudyRunnerTest, ARunnerKilledBeforeTaggingItsTrialLosesNothing) {
  StudyConfig c = Config("echo hepml-metric loss={x}", 2, 1);
  auto study = Study::Create(c, reg_.get(), Options({7, 8}));
  ASSERT_TRUE(study.ok());
  // What a runner killed right after starting trial 0's run leaves behind.
  auto exp = reg_->GetExperimentByName("t");
  ASSERT_TRUE(exp.ok());
  registry::RunStart start;
  start.name = "t-trial-0";
  start.experiment_id = exp->id;
  start.params = {{"x", "5"}};
  ASSERT_TRUE(reg_->StartRun(start).ok());
  auto summary = (*study)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->complete, 2);
  EXPECT_EQ(summary->lost, 1);
  auto trials = (*study)->Trials();
  ASSERT_EQ(trials->size(), 3u);
  EXPECT_TRUE((*trials)[0].lost);
  EXPECT_EQ((*trials)[1].retry_of, 0);
  EXPECT_EQ((*trials)[1].trial.value, 5);  // its parameters, run again
  EXPECT_EQ((*trials)[2].trial.value, 7);  // the sampler's proposal for trial 2 (7, 8, 7, ...)
}

TEST_F(StudyRunnerTest, OneRunnerPerStudy) {
  StudyConfig c = Config("while [ ! -e ../go ]; do sleep 0.01; done; echo hepml-metric loss={x}", 1, 1);
  auto study = Study::Create(c, reg_.get(), Options({1}));
  ASSERT_TRUE(study.ok());
  std::thread runner([&] { EXPECT_TRUE((*study)->Run().ok()); });
  for (int i = 0; i < 1000 && !fs::exists(dir_ / "hepml-hpo/t/trial-00000/stdout.log"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto reg2 = registry::Registry::OpenDir((dir_ / "registry").string());
  ASSERT_TRUE(reg2.ok());
  auto second = Study::Open("t", reg2->get(), Options({2}));
  ASSERT_TRUE(second.ok());
  auto r = (*second)->Run();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("being run by another process"));
  std::ofstream(dir_ / "hepml-hpo/t/go") << "";
  runner.join();
}

}  // namespace
}  // namespace hepml::jobs
