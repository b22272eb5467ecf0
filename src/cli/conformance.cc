// `hepml conformance [--data DIR ...] [--filter REGEX] [--json] [--via session|compile]`:
// the ONNX backend test suite, through the Session or (--via compile, see
// conformance_compile.cc) through `hepml compile` and the C++ compiler. Ends
// with "N passed, M failed, K skipped".
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "cli/commands.h"
#ifdef HEPML_SERVICES
#include "cli/conformance_compile.h"
#endif
#include "onnx/importer.h"
#include "nlohmann/json.hpp"
#include "testing/backend_suite.h"

namespace hepml::cli {

// The skip and tolerance rules of tests/conformance/, built into the binary.
extern const char* const kEmbeddedConformanceRules;

namespace {

struct Args {
  std::vector<std::string> data;
  std::string filter;
  bool json = false;
  std::vector<std::string> rules;
  std::string expect_failures;
  std::string run_one;
  int jobs = 0;
  bool no_isolate = false;
  double timeout = 120;
  bool verbose = false;
  std::string via = "session";
  std::string work;
  std::string cxx = "g++";
  std::string cxxflags = "-std=c++17 -O1 -Wall -Wextra -Werror";
};

#ifdef HEPML_SERVICES
CompiledCaseOptions CompiledOptions(const Args& a) {
  CompiledCaseOptions o;
  o.work_dir = a.work;
  o.cxx = a.cxx;
  o.cxxflags = a.cxxflags;
  return o;
}
#endif

// The operator a failure is filed under: the one a compile error names, else
// the op types of the case's model.
std::string OperatorOf(const testing::CaseResult& r) {
#ifdef HEPML_SERVICES
  std::string op = FailingOperator(r.message);
  if (!op.empty()) return op;
#endif
  auto model = LoadModel(absl::StrCat(r.test.dir, "/model.onnx"));
  if (!model.ok()) return "?";
  std::set<std::string> ops;
  for (const Node& n : model->graph.nodes) ops.insert(n.op_type);
  std::string out;
  for (const std::string& o : ops) absl::StrAppend(&out, out.empty() ? "" : "+", o);
  return out.empty() ? "(no node)" : out;
}

absl::StatusOr<testing::SuiteRules> LoadAllRules(const Args& a, std::vector<std::string>* files,
                                                  std::string* tmp_file) {
  *files = a.rules;
  if (files->empty()) {
    // Write the embedded rules once so isolated children read the same ones.
    *tmp_file = absl::StrCat("/tmp/hepml-conformance-rules-", getpid(), ".txt");
    std::ofstream out(*tmp_file);
    out << kEmbeddedConformanceRules;
    out.close();
    files->push_back(*tmp_file);
  }
  return testing::LoadRules(*files);
}

int RunOne(const Args& a) {
  auto rules = testing::LoadRules(a.rules);
  if (!rules.ok()) {
    std::cout << "FAIL " << rules.status().message() << std::endl;
    return kExitFailure;
  }
  auto cases = testing::DiscoverCases({a.run_one}, "");
  if (!cases.ok() || cases->size() != 1) {
    std::cout << "FAIL " << a.run_one << " is not a test case folder" << std::endl;
    return kExitFailure;
  }
  testing::CaseResult r;
  if (a.via == "compile") {
#ifdef HEPML_SERVICES
    r = RunCaseCompiled(cases->front(), *rules, CompiledOptions(a));
#endif
  } else {
    r = testing::RunCase(cases->front(), *rules);
  }
  std::string msg = r.message;
  for (char& c : msg)
    if (c == '\n') c = ' ';
  std::cout << testing::OutcomeName(r.outcome) << " " << msg << std::endl;
  return r.outcome == testing::Outcome::kFail ? kExitFailure : kExitOk;
}

int RunConformance(Args a) {
  if (a.via != "session" && a.via != "compile") {
    PrintError("conformance", absl::StrCat("--via '", a.via, "': expected session or compile"));
    return kExitUsage;
  }
  std::vector<std::string> extra_args;
  if (a.via == "compile") {
#ifndef HEPML_SERVICES
    PrintError("conformance", "--via compile needs hepml built with the compiler (HEPML_SERVICES)");
    return kExitUsage;
#else
    if (a.work.empty()) a.work = absl::StrCat(std::filesystem::temp_directory_path().string(), "/hepml-conformance-compile-", getuid());
    std::error_code ec;
    std::filesystem::create_directories(a.work, ec);
    if (ec) {
      PrintError("conformance", absl::StrCat("--work ", a.work, ": ", ec.message()));
      return kExitUsage;
    }
    a.work = std::filesystem::absolute(a.work).string();
    extra_args = CompiledCaseArgs(CompiledOptions(a));
    if (a.run_one.empty()) PrepareCompiledCases(CompiledOptions(a));
#endif
  }
  if (!a.run_one.empty()) return RunOne(a);
  std::vector<std::string> rule_files;
  std::string tmp_rules;
  auto rules = LoadAllRules(a, &rule_files, &tmp_rules);
  auto cleanup = [&] {
    if (!tmp_rules.empty()) std::remove(tmp_rules.c_str());
  };
  if (!rules.ok()) {
    PrintError("conformance", rules.status().message());
    cleanup();
    return kExitUsage;
  }
  std::vector<std::string> roots = a.data;
  if (roots.empty()) {
    // The compiled path's figure is over the node tests.
    roots = a.via == "compile" ? std::vector<std::string>{absl::StrCat(testing::kDefaultSuiteRoot, "/node")}
                               : testing::DefaultSuiteDirs();
  }
  auto cases = testing::DiscoverCases(roots, a.filter);
  if (!cases.ok()) {
    PrintError("conformance", cases.status().message());
    cleanup();
    return kExitUsage;
  }
  int jobs = a.jobs > 0 ? a.jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto results = testing::RunSuite(*cases, *rules, rule_files, !a.no_isolate, SelfExecutable(), jobs, a.timeout,
                                  extra_args);
  cleanup();

  std::set<std::string> expected;
  if (!a.expect_failures.empty()) {
    std::ifstream in(a.expect_failures);
    if (!in) {
      PrintError("conformance", absl::StrCat(a.expect_failures, ": cannot open"));
      return kExitUsage;
    }
    std::string line;
    while (std::getline(in, line)) {
      std::string name(absl::StripAsciiWhitespace(line.substr(0, line.find('#'))));
      if (!name.empty()) expected.insert(name);
    }
  }
  std::vector<std::string> unexpected, fixed;
  for (const auto& r : results) {
    std::string key = absl::StrCat(r.test.group, "/", r.test.name);
    bool failed = r.outcome == testing::Outcome::kFail;
    if (failed && !expected.count(key)) unexpected.push_back(key);
    if (!failed && expected.count(key)) fixed.push_back(key);
  }

  // The figure over the node tests: passed / all node cases (skips count as
  // not passed), and passed / node cases the rules do not skip.
  int node_cases = 0, node_passed = 0, node_skipped = 0;
  std::map<std::string, int> kinds;
  std::map<std::string, int> by_op;
  for (const auto& r : results) {
    if (r.test.group == "node") {
      ++node_cases;
      node_passed += r.outcome == testing::Outcome::kPass;
      node_skipped += r.outcome == testing::Outcome::kSkip;
    }
    if (r.outcome != testing::Outcome::kFail) continue;
    std::string kind = "other";
#ifdef HEPML_SERVICES
    if (a.via == "compile" && !FailureKind(r.message).empty()) kind = FailureKind(r.message);
#endif
    ++kinds[kind];
    if (a.via == "compile") ++by_op[OperatorOf(r)];
  }
  std::vector<std::pair<int, std::string>> ranked;
  for (const auto& [op, count] : by_op) ranked.emplace_back(-count, op);
  std::sort(ranked.begin(), ranked.end());
  auto rate = [](int num, int den) { return den > 0 ? static_cast<double>(num) / den : 0.0; };

  if (a.json) {
    nlohmann::ordered_json j;
    j["via"] = a.via;
    j["tests"] = nlohmann::ordered_json::array();
    for (const auto& r : results) {
      nlohmann::ordered_json t = {{"name", r.test.name}, {"group", r.test.group},
                                  {"outcome", std::string(testing::OutcomeName(r.outcome))},
                                  {"message", r.message}, {"seconds", r.seconds}};
#ifdef HEPML_SERVICES
      if (a.via == "compile" && r.outcome == testing::Outcome::kFail) t["failure"] = FailureKind(r.message);
#endif
      j["tests"].push_back(std::move(t));
    }
    j["node_cases"] = node_cases;
    j["node_passed"] = node_passed;
    j["node_skipped"] = node_skipped;
    j["node_pass_rate"] = rate(node_passed, node_cases);
    j["node_pass_rate_not_skipped"] = rate(node_passed, node_cases - node_skipped);
    j["failures_by_kind"] = kinds;
    if (a.via == "compile") {
      nlohmann::ordered_json ops = nlohmann::ordered_json::array();
      for (const auto& [count, op] : ranked) ops.push_back({{"operator", op}, {"failed", -count}});
      j["failures_by_operator"] = ops;
    }
    int pass = 0, fail = 0, skip = 0;
    for (const auto& r : results) {
      (r.outcome == testing::Outcome::kPass ? pass : r.outcome == testing::Outcome::kFail ? fail : skip)++;
    }
    j["passed"] = pass;
    j["failed"] = fail;
    j["skipped"] = skip;
    std::cout << j.dump(1) << std::endl;
  } else {
    for (const auto& r : results) {
      if (r.outcome == testing::Outcome::kPass && !a.verbose) continue;
      std::cout << testing::OutcomeName(r.outcome) << " " << r.test.group << "/" << r.test.name;
      if (!r.message.empty()) std::cout << ": " << r.message.substr(0, 400);
      std::cout << "\n";
    }
  }
  if (!a.expect_failures.empty()) {
    for (const auto& n : fixed) std::cerr << "now passing (remove from " << a.expect_failures << "): " << n << "\n";
    for (const auto& n : unexpected) std::cerr << "unexpected failure: " << n << "\n";
  }
  // With --json, stdout holds only the JSON document.
  std::ostream& summary = a.json ? std::cerr : std::cout;
  if (a.via == "compile" && !a.json && !ranked.empty()) {
    summary << "failures by operator:";
    for (size_t i = 0; i < ranked.size() && i < 40; ++i) summary << " " << ranked[i].second << " " << -ranked[i].first;
    summary << "\n";
  }
  if (!kinds.empty()) {
    summary << "failures by kind:";
    for (const auto& [kind, count] : kinds) summary << " " << kind << " " << count;
    summary << "\n";
  }
  if (node_cases > 0) {
    summary << "node tests (" << a.via << "): " << node_passed << " of " << node_cases << " passed ("
            << absl::StrFormat("%.1f", 100 * rate(node_passed, node_cases)) << "%; " << node_skipped
            << " skipped by the rules; "
            << absl::StrFormat("%.1f", 100 * rate(node_passed, node_cases - node_skipped)) << "% of the rest)\n";
  }
  summary << testing::SummaryLine(results) << std::endl;
  if (!a.expect_failures.empty()) return unexpected.empty() ? kExitOk : kExitFailure;
  for (const auto& r : results)
    if (r.outcome == testing::Outcome::kFail) return kExitFailure;
  return kExitOk;
}

}  // namespace

void AddConformanceCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("conformance", "Run the ONNX backend test suite");
  auto a = std::make_shared<Args>();
  cmd->add_option("--data", a->data, "Folder of test cases (repeatable); default: libonnx-testdata's "
                                     "node, simple, pytorch-converted, pytorch-operator");
  cmd->add_option("--filter", a->filter, "Regex searched in <group>/<test name>");
  cmd->add_flag("--json", a->json, "Print the results as JSON");
  cmd->add_option("--rules", a->rules, "Skip/tolerance rule file (repeatable); default: the built-in rules");
  cmd->add_option("--expect-failures", a->expect_failures,
                  "File of <group>/<test> names expected to fail; exit 1 only on other failures");
  cmd->add_option("--jobs,-j", a->jobs, "Cases run at once (default: one per core)");
  cmd->add_flag("--no-isolate", a->no_isolate, "Run cases in this process (a crash stops the suite)");
  cmd->add_option("--timeout", a->timeout, "Seconds before a case is killed and failed");
  cmd->add_flag("--verbose,-v", a->verbose, "Also list passing tests");
  cmd->add_option("--via", a->via, "session (default): hepml::Session; compile: each model through hepml compile "
                                   "and the C++ compiler (default data: the node tests)");
  cmd->add_option("--work", a->work, "--via compile: folder of generated packages, reused by content "
                                     "(default: TMPDIR/hepml-conformance-compile-UID)");
  cmd->add_option("--cxx", a->cxx, "--via compile: the C++ compiler");
  cmd->add_option("--cxxflags", a->cxxflags, "--via compile: its flags");
  cmd->add_option("--run-one", a->run_one, "Run a single case folder (used by the isolated runner)")
      ->group("");
  cmd->callback([=] { *exit_code = RunConformance(*a); });
}

}  // namespace hepml::cli
