// The ONNX backend test suite runner behind `hepml conformance`.
//
// A case is a folder holding model.onnx and test_data_set_*/{input,output}_K.pb
// (TensorProto, SequenceProto or OptionalProto). A case passes when every data
// set's outputs match within its tolerance. Cases can be skipped only by a
// rule in the skip file (a name pattern and the reason).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hepml/tensor.h"
#include "tensor/compare.h"

namespace hepml::testing {

struct BackendCase {
  std::string name;   // folder name, e.g. "test_abs"
  std::string group;  // parent folder: node, simple, pytorch-converted, ...
  std::string dir;
};

enum class Outcome { kPass, kFail, kSkip };
const char* OutcomeName(Outcome o);

struct CaseResult {
  BackendCase test;
  Outcome outcome = Outcome::kFail;
  std::string message;  // why it failed or was skipped
  double seconds = 0;
};

// Rules read from files: "SKIP <regex> : <reason>" and
// "TOLERANCE <regex> rtol=<x> atol=<y> : <reason>", '#' comments.
struct SuiteRules {
  struct Skip {
    std::string pattern;
    std::string reason;
  };
  struct ToleranceRule {
    std::string pattern;
    Tolerance tolerance;
    std::string reason;
  };
  std::vector<Skip> skips;
  std::vector<ToleranceRule> tolerances;

  const Skip* FindSkip(const std::string& name) const;
  Tolerance ToleranceFor(const std::string& name) const;  // default rtol 1e-3, atol 1e-7
};

absl::StatusOr<SuiteRules> LoadRules(const std::vector<std::string>& files);

// Case folders under each of `roots` whose group/name matches `filter` (an
// ECMAScript regex searched in "group/name"; empty matches all). Sorted.
absl::StatusOr<std::vector<BackendCase>> DiscoverCases(const std::vector<std::string>& roots,
                                                       const std::string& filter);

// One test_data_set_K folder of a case: the inputs by graph input name (in
// the order of the graph's required inputs) and the expected outputs.
struct DataSet {
  std::string name;  // "test_data_set_0"
  std::vector<std::pair<std::string, Value>> inputs;
  std::vector<Value> expected;
  std::vector<std::string> output_names;  // graph output names, one per expected
};

// Reads every data set of the case (sorted); an error names the set and file.
// Used by RunCase and by the compiled path of `hepml conformance --via compile`.
absl::StatusOr<std::vector<DataSet>> LoadDataSets(const BackendCase& test);

// Runs one case in this process.
CaseResult RunCase(const BackendCase& test, const SuiteRules& rules);

// Runs one case in a child process (`exe conformance --run-one DIR ...`), so
// that a crash or hang fails the case instead of the suite. A case running
// longer than `timeout_s` is killed and fails.
// `extra_args` follow the case folder (e.g. "--via", "compile").
CaseResult RunCaseIsolated(const std::string& exe, const BackendCase& test,
                           const std::vector<std::string>& rule_files, double timeout_s,
                           const std::vector<std::string>& extra_args = {});

// Runs all cases, `jobs` at a time (isolated when `isolate`).
std::vector<CaseResult> RunSuite(const std::vector<BackendCase>& cases, const SuiteRules& rules,
                                 const std::vector<std::string>& rule_files, bool isolate,
                                 const std::string& exe, int jobs, double timeout_s,
                                 const std::vector<std::string>& extra_args = {});

// "N passed, M failed, K skipped"
std::string SummaryLine(const std::vector<CaseResult>& results);

// The default location of Debian's libonnx-testdata.
inline constexpr const char* kDefaultSuiteRoot = "/usr/share/libonnx-testdata/data";
std::vector<std::string> DefaultSuiteDirs();

}  // namespace hepml::testing
