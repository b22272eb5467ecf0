// `hepml conformance [--data DIR ...] [--filter REGEX] [--json]`: the ONNX
// backend test suite. Ends with "N passed, M failed, K skipped".
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/commands.h"
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
};

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
  testing::CaseResult r = testing::RunCase(cases->front(), *rules);
  std::string msg = r.message;
  for (char& c : msg)
    if (c == '\n') c = ' ';
  std::cout << testing::OutcomeName(r.outcome) << " " << msg << std::endl;
  return r.outcome == testing::Outcome::kFail ? kExitFailure : kExitOk;
}

int RunConformance(const Args& a) {
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
  std::vector<std::string> roots = a.data.empty() ? testing::DefaultSuiteDirs() : a.data;
  auto cases = testing::DiscoverCases(roots, a.filter);
  if (!cases.ok()) {
    PrintError("conformance", cases.status().message());
    cleanup();
    return kExitUsage;
  }
  int jobs = a.jobs > 0 ? a.jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto results = testing::RunSuite(*cases, *rules, rule_files, !a.no_isolate, SelfExecutable(), jobs, a.timeout);
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

  if (a.json) {
    nlohmann::ordered_json j;
    j["tests"] = nlohmann::ordered_json::array();
    for (const auto& r : results) {
      j["tests"].push_back({{"name", r.test.name}, {"group", r.test.group},
                            {"outcome", std::string(testing::OutcomeName(r.outcome))},
                            {"message", r.message}, {"seconds", r.seconds}});
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
  (a.json ? std::cerr : std::cout) << testing::SummaryLine(results) << std::endl;
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
  cmd->add_option("--run-one", a->run_one, "Run a single case folder (used by the isolated runner)")
      ->group("");
  cmd->callback([=] { *exit_code = RunConformance(*a); });
}

}  // namespace hepml::cli
