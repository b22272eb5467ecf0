#include "testing/backend_suite.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hepml/session.h"
#include "hepml/status.h"
#include "onnx/importer.h"
#include "onnx/proto_convert.h"

extern char** environ;

namespace hepml::testing {
namespace {

namespace fs = std::filesystem;

bool Matches(const std::string& pattern, const std::string& name) {
  try {
    return std::regex_match(name, std::regex(pattern));
  } catch (const std::regex_error&) {
    return false;
  }
}

// input_0.pb, input_1.pb, ... in numeric order.
std::vector<std::string> NumberedFiles(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, prefix) || !absl::EndsWith(name, ".pb")) continue;
    int k;
    if (absl::SimpleAtoi(name.substr(prefix.size(), name.size() - prefix.size() - 3), &k)) {
      found.emplace_back(k, entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [k, p] : found) out.push_back(p);
  return out;
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kPass: return "PASS";
    case Outcome::kFail: return "FAIL";
    case Outcome::kSkip: return "SKIP";
  }
  return "FAIL";
}

const SuiteRules::Skip* SuiteRules::FindSkip(const std::string& name) const {
  for (const Skip& s : skips)
    if (Matches(s.pattern, name)) return &s;
  return nullptr;
}

Tolerance SuiteRules::ToleranceFor(const std::string& name) const {
  for (const ToleranceRule& t : tolerances)
    if (Matches(t.pattern, name)) return t.tolerance;
  return Tolerance{};
}

absl::StatusOr<SuiteRules> LoadRules(const std::vector<std::string>& files) {
  SuiteRules rules;
  for (const std::string& file : files) {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat(file, ": cannot open"));
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      absl::string_view l = absl::StripAsciiWhitespace(line);
      if (l.empty() || l[0] == '#') continue;
      auto bad = [&](absl::string_view why) {
        return absl::InvalidArgumentError(absl::StrCat(file, ":", line_no, ": ", why));
      };
      size_t colon = l.find(" : ");
      if (colon == absl::string_view::npos) return bad("expected '<rule> : <reason>'");
      std::string reason(absl::StripAsciiWhitespace(l.substr(colon + 3)));
      if (reason.empty()) return bad("every rule needs a reason");
      std::vector<std::string> words = absl::StrSplit(l.substr(0, colon), ' ', absl::SkipWhitespace());
      if (words.size() < 2) return bad("expected a rule kind and a pattern");
      try {
        std::regex check(words[1]);
      } catch (const std::regex_error& e) {
        return bad(absl::StrCat("bad pattern '", words[1], "': ", e.what()));
      }
      if (words[0] == "SKIP" && words.size() == 2) {
        rules.skips.push_back({words[1], reason});
      } else if (words[0] == "TOLERANCE") {
        SuiteRules::ToleranceRule rule{words[1], Tolerance{}, reason};
        for (size_t i = 2; i < words.size(); ++i) {
          std::vector<std::string> kv = absl::StrSplit(words[i], '=');
          double v;
          if (kv.size() != 2 || !absl::SimpleAtod(kv[1], &v)) return bad("expected rtol=<x> atol=<y>");
          if (kv[0] == "rtol") rule.tolerance.rtol = v;
          else if (kv[0] == "atol") rule.tolerance.atol = v;
          else return bad(absl::StrCat("unknown tolerance '", kv[0], "'"));
        }
        rules.tolerances.push_back(rule);
      } else {
        return bad(absl::StrCat("unknown rule '", words[0], "' (SKIP or TOLERANCE)"));
      }
    }
  }
  return rules;
}

std::vector<std::string> DefaultSuiteDirs() {
  std::vector<std::string> out;
  for (const char* group : {"node", "simple", "pytorch-converted", "pytorch-operator"}) {
    out.push_back(absl::StrCat(kDefaultSuiteRoot, "/", group));
  }
  return out;
}

absl::StatusOr<std::vector<BackendCase>> DiscoverCases(const std::vector<std::string>& roots,
                                                       const std::string& filter) {
  std::optional<std::regex> re;
  if (!filter.empty()) {
    try {
      re.emplace(filter);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError(absl::StrCat("bad --filter '", filter, "': ", e.what()));
    }
  }
  std::vector<BackendCase> cases;
  for (const std::string& root : roots) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      return absl::NotFoundError(absl::StrCat(root, ": not a folder of ONNX backend tests"));
    }
    // A root is either a group of cases or a single case.
    std::vector<fs::path> dirs;
    if (fs::exists(fs::path(root) / "model.onnx")) {
      dirs.push_back(fs::path(root));
    } else {
      for (const auto& e : fs::directory_iterator(root, ec)) {
        if (e.is_directory() && fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
      }
    }
    for (const fs::path& d : dirs) {
      fs::path clean = d.lexically_normal();
      if (clean.filename().empty()) clean = clean.parent_path();
      BackendCase c{clean.filename().string(), clean.parent_path().filename().string(), clean.string()};
      if (re && !std::regex_search(absl::StrCat(c.group, "/", c.name), *re)) continue;
      cases.push_back(std::move(c));
    }
  }
  std::sort(cases.begin(), cases.end(), [](const BackendCase& a, const BackendCase& b) {
    return std::tie(a.group, a.name) < std::tie(b.group, b.name);
  });
  return cases;
}

absl::StatusOr<std::vector<DataSet>> LoadDataSets(const BackendCase& test) {
  const std::string model_path = (fs::path(test.dir) / "model.onnx").string();
  HEPML_ASSIGN_OR_RETURN(Model model, LoadModel(model_path));
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(test.dir, ec)) {
    if (e.is_directory() && absl::StartsWith(e.path().filename().string(), "test_data_set_")) {
      dirs.push_back(e.path());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) return absl::NotFoundError("no test_data_set_* folder");
  std::vector<const ValueInfo*> feed = model.graph.RequiredInputs();
  std::vector<DataSet> sets;
  for (const fs::path& dir : dirs) {
    DataSet set;
    set.name = dir.filename().string();
    std::vector<std::string> in_files = NumberedFiles(dir, "input_");
    std::vector<std::string> out_files = NumberedFiles(dir, "output_");
    if (in_files.size() > feed.size()) {
      return absl::InvalidArgumentError(absl::StrCat(set.name, ": ", in_files.size(), " input files for ",
                                                     feed.size(), " graph inputs"));
    }
    for (size_t k = 0; k < in_files.size(); ++k) {
      HEPML_ASSIGN_OR_RETURN(Value v, ReadValueFile(in_files[k], &feed[k]->type));
      set.inputs.emplace_back(feed[k]->name, std::move(v));
    }
    for (size_t k = 0; k < out_files.size(); ++k) {
      // More output files than graph outputs is reported by the caller's count check.
      const TypeInfo* type = k < model.graph.outputs.size() ? &model.graph.outputs[k].type : nullptr;
      if (type == nullptr) {
        set.output_names.push_back(absl::StrCat("#", k));
        set.expected.push_back(Value{});
        continue;
      }
      HEPML_ASSIGN_OR_RETURN(Value v, ReadValueFile(out_files[k], type));
      set.output_names.push_back(model.graph.outputs[k].name);
      set.expected.push_back(std::move(v));
    }
    sets.push_back(std::move(set));
  }
  return sets;
}

CaseResult RunCase(const BackendCase& test, const SuiteRules& rules) {
  auto t0 = std::chrono::steady_clock::now();
  CaseResult result{test, Outcome::kFail, "", 0};
  auto finish = [&](Outcome o, std::string msg) {
    result.outcome = o;
    result.message = std::move(msg);
    result.seconds = Since(t0);
    return result;
  };
  if (const auto* skip = rules.FindSkip(test.name)) return finish(Outcome::kSkip, skip->reason);

  const std::string model_path = (fs::path(test.dir) / "model.onnx").string();
  auto model = LoadModel(model_path);
  if (!model.ok()) return finish(Outcome::kFail, std::string(model.status().message()));
  SessionOptions options;
  options.num_threads = 1;
  auto session = Session::Create(model_path, options);
  if (!session.ok()) return finish(Outcome::kFail, std::string(session.status().message()));
  const Tolerance tol = rules.ToleranceFor(test.name);
  auto sets = LoadDataSets(test);
  if (!sets.ok()) return finish(Outcome::kFail, std::string(sets.status().message()));
  for (const DataSet& set : *sets) {
    // Twice: the first run records the memory plan, the second uses it.
    for (const char* run : {"", " (second run, planned memory)"}) {
      auto outputs = (*session)->RunValues(set.inputs);
      if (!outputs.ok()) return finish(Outcome::kFail, absl::StrCat(outputs.status().message(), run));
      if (set.expected.size() != outputs->size()) {
        return finish(Outcome::kFail, absl::StrCat(set.name, ": model gave ", outputs->size(),
                                                   " outputs, test data has ", set.expected.size()));
      }
      for (size_t k = 0; k < set.expected.size(); ++k) {
        absl::Status st = AllClose((*outputs)[k], set.expected[k], tol);
        if (!st.ok()) {
          return finish(Outcome::kFail, absl::StrCat(set.name, " output '", set.output_names[k], "'", run, ": ",
                                                     st.message()));
        }
      }
    }
  }
  return finish(Outcome::kPass, "");
}

CaseResult RunCaseIsolated(const std::string& exe, const BackendCase& test,
                           const std::vector<std::string>& rule_files, double timeout_s,
                           const std::vector<std::string>& extra_args) {
  auto t0 = std::chrono::steady_clock::now();
  CaseResult result{test, Outcome::kFail, "", 0};
  std::vector<std::string> args = {exe, "conformance", "--run-one", test.dir};
  for (const std::string& f : rule_files) {
    args.push_back("--rules");
    args.push_back(f);
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    result.message = "pipe() failed";
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDERR_FILENO);
  pid_t pid;
  int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    result.message = absl::StrCat("cannot start ", exe);
    return result;
  }
  std::string output;
  bool timed_out = false;
  char buf[4096];
  while (true) {
    double left = timeout_s - Since(t0);
    if (left <= 0) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    int pr = poll(&p, 1, static_cast<int>(std::min(left, 1.0) * 1000) + 1);
    if (pr > 0) {
      ssize_t n = read(pipefd[0], buf, sizeof(buf));
      if (n <= 0) break;
      if (output.size() < (1 << 20)) output.append(buf, static_cast<size_t>(n));
    }
  }
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.seconds = Since(t0);
  if (timed_out) {
    result.message = absl::StrCat("timed out after ", timeout_s, " s");
    return result;
  }
  if (WIFSIGNALED(status)) {
    result.message = absl::StrCat("crashed with signal ", WTERMSIG(status), ": ", output.substr(0, 2000));
    return result;
  }
  // The child prints "<OUTCOME> <message>" on its last line.
  std::vector<std::string> lines = absl::StrSplit(output, '\n', absl::SkipEmpty());
  if (lines.empty()) {
    result.message = absl::StrCat("child exited with status ", WEXITSTATUS(status), " and printed nothing");
    return result;
  }
  const std::string& last = lines.back();
  for (Outcome o : {Outcome::kPass, Outcome::kFail, Outcome::kSkip}) {
    std::string tag(OutcomeName(o));
    if (absl::StartsWith(last, tag)) {
      result.outcome = o;
      result.message = std::string(absl::StripAsciiWhitespace(last.substr(tag.size())));
      return result;
    }
  }
  result.message = absl::StrCat("child exited with status ", WEXITSTATUS(status), ": ", output.substr(0, 2000));
  return result;
}

std::vector<CaseResult> RunSuite(const std::vector<BackendCase>& cases, const SuiteRules& rules,
                                 const std::vector<std::string>& rule_files, bool isolate,
                                 const std::string& exe, int jobs, double timeout_s,
                                 const std::vector<std::string>& extra_args) {
  std::vector<CaseResult> results(cases.size());
  if (!isolate) {
    for (size_t i = 0; i < cases.size(); ++i) results[i] = RunCase(cases[i], rules);
    return results;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (int j = 0; j < std::max(1, jobs); ++j) {
    workers.emplace_back([&] {
      for (size_t i = next++; i < cases.size(); i = next++) {
        if (const auto* skip = rules.FindSkip(cases[i].name)) {
          results[i] = CaseResult{cases[i], Outcome::kSkip, skip->reason, 0};
        } else {
          results[i] = RunCaseIsolated(exe, cases[i], rule_files, timeout_s, extra_args);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  return results;
}

std::string SummaryLine(const std::vector<CaseResult>& results) {
  int pass = 0, fail = 0, skip = 0;
  for (const CaseResult& r : results) {
    if (r.outcome == Outcome::kPass) ++pass;
    else if (r.outcome == Outcome::kFail) ++fail;
    else ++skip;
  }
  return absl::StrCat(pass, " passed, ", fail, " failed, ", skip, " skipped");
}

}  // namespace hepml::testing
