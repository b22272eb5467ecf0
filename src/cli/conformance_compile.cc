// `hepml conformance --via compile`: each case of the ONNX backend suite
// through `hepml compile` and the system C++ compiler.
//
// Per case (in an isolated child, like the Session path): the data sets come
// from testing::LoadDataSets; for each distinct set of input shapes the model
// is rewritten with every input dim fixed to the data's shape (the suite runs
// fixed shapes, so the batch is 1 and --max-batch 1), GeneratePackage writes
// the package into WORK/pkg/<hash of its files and the compiler flags>/ unless
// that folder already holds a built runner, `cxx` builds NAME.cc + NAME_run.cc
// into NAME_run, the runner reads the inputs as .npy and writes its outputs as
// .npy, and they are compared with the expected outputs under the same
// tolerance rules as the Session path.
#include "cli/conformance_compile.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/npy.h"
#include "hepml/compiler.h"
#include "onnx/onnx_pb.h"
#include "onnx/proto_convert.h"

extern char** environ;

namespace hepml::cli {
namespace {

namespace fs = std::filesystem;

uint64_t Fnv1a(uint64_t h, const std::string& bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Runs argv with stdout and stderr into `log`; the exit status, or -1 when it
// could not start, 128 + signal when killed.
int RunCommand(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::string ReadText(const std::string& path, size_t limit = 1 << 16) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > limit) s.resize(limit);
  return s;
}

// The first compiler diagnostic line ("error:"), else the first lines.
std::string FirstError(const std::string& log) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "error:") || absl::StrContains(line, "error ")) return std::string(line.substr(0, 400));
  }
  return log.substr(0, 400);
}

std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// As the generated runner names its output files.
std::string SanitizeName(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) c = '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

// Input slots whose values decide an output's shape: a compiled model has
// static shapes, so a graph input feeding one of them becomes a constant with
// the data set's value (op type -> input positions; -1: every input).
const std::map<std::string, std::vector<int>>& ShapeInputSlots() {
  static const auto* slots = new std::map<std::string, std::vector<int>>{
      {"Reshape", {1}},  {"Expand", {1}},          {"Tile", {1}},      {"Slice", {1, 2, 3, 4}},
      {"Pad", {1, 3}},   {"Squeeze", {1}},         {"Unsqueeze", {1}}, {"TopK", {1}},
      {"OneHot", {1}},   {"Range", {-1}},          {"ConstantOfShape", {0}}, {"Resize", {1, 2, 3}},
      {"Upsample", {1}}, {"Split", {1}},           {"CenterCropPad", {1, 2}}, {"ReduceSum", {1}},
      {"ReduceMean", {1}}, {"ReduceMax", {1}},     {"ReduceMin", {1}}, {"ReduceProd", {1}},
      {"ReduceSumSquare", {1}}, {"ReduceL1", {1}}, {"ReduceL2", {1}}, {"ReduceLogSum", {1}},
      {"ReduceLogSumExp", {1}}, {"EyeLike", {}},   {"Col2Im", {1, 2}}, {"Compress", {1}},
      {"BlackmanWindow", {0}}, {"HammingWindow", {0}}, {"HannWindow", {0}}, {"MelWeightMatrix", {0, 1}}, {"STFT", {1, 3}},
      {"MaxUnpool", {2}}};
  return *slots;
}

// The case's model with each fed input's dims fixed to the data's shape, and
// the inputs in ShapeInputSlots() made constants (named in `baked`).
absl::Status WriteFixedModel(const std::string& model_path, const testing::DataSet& set, const std::string& out,
                             std::vector<std::string>* baked) {
  std::ifstream in(model_path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) return absl::InvalidArgumentError(absl::StrCat(model_path, ": cannot parse"));
  std::map<std::string, const Value*> fed;
  for (const auto& [name, v] : set.inputs) fed[name] = &v;
  std::set<std::string> shape_inputs;
  // Values in shape slots, then back through the nodes computing them to the
  // fed inputs they come from (e.g. a window length cast and divided before
  // a Range); only small fed inputs, whose values ShapeSignature tells apart.
  std::map<std::string, const onnx::NodeProto*> producer;
  for (const onnx::NodeProto& node : proto.graph().node())
    for (const std::string& o : node.output()) producer[o] = &node;
  std::vector<std::string> pending;
  for (const onnx::NodeProto& node : proto.graph().node()) {
    auto it = ShapeInputSlots().find(node.op_type());
    if (it == ShapeInputSlots().end() || !(node.domain().empty() || node.domain() == "ai.onnx")) continue;
    for (int k = 0; k < node.input_size(); ++k) {
      bool slot = false;
      for (int s : it->second) slot |= s == -1 || s == k;
      if (!slot || node.input(k).empty()) continue;
      if (fed.count(node.input(k))) shape_inputs.insert(node.input(k));
      else pending.push_back(node.input(k));
    }
  }
  std::set<std::string> seen;
  while (!pending.empty()) {
    const std::string v = pending.back();
    pending.pop_back();
    if (!seen.insert(v).second) continue;
    auto f = fed.find(v);
    if (f != fed.end()) {
      if (f->second->is_tensor() && f->second->tensor.size() <= 64) shape_inputs.insert(v);
      continue;
    }
    auto p = producer.find(v);
    // Shape and Size read only their input's shape, which is fixed already.
    if (p == producer.end() || p->second->op_type() == "Shape" || p->second->op_type() == "Size") continue;
    for (const std::string& in : p->second->input())
      if (!in.empty()) pending.push_back(in);
  }
  auto* inputs = proto.mutable_graph()->mutable_input();
  for (int i = inputs->size() - 1; i >= 0; --i) {
    const std::string name = inputs->Get(i).name();
    if (!shape_inputs.count(name) || !fed.at(name)->is_tensor()) continue;
    TensorToProto(fed.at(name)->tensor, name, proto.mutable_graph()->add_initializer());
    inputs->DeleteSubrange(i, 1);
    baked->push_back(name);
  }
  for (onnx::ValueInfoProto& vi : *proto.mutable_graph()->mutable_input()) {
    auto it = fed.find(vi.name());
    if (it == fed.end()) continue;
    const Value& v = *it->second;
    if (!v.is_tensor() || !vi.type().has_tensor_type()) {
      return absl::UnimplementedError(absl::StrCat("input '", vi.name(), "' is not a tensor: hepml compile handles tensor inputs only"));
    }
    onnx::TensorShapeProto* shape = vi.mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->clear_dim();
    for (int64_t d : v.tensor.shape()) shape->add_dim()->set_dim_value(d);
  }
  std::ofstream f(out, std::ios::binary);
  if (!proto.SerializeToOstream(&f)) return absl::PermissionDeniedError(absl::StrCat(out, ": write failed"));
  return absl::OkStatus();
}

std::string ShapeSignature(const testing::DataSet& set) {
  std::string sig;
  for (const auto& [name, v] : set.inputs) {
    absl::StrAppend(&sig, name, ":", v.is_tensor() ? DTypeName(v.tensor.dtype()) : "nontensor", "[");
    if (v.is_tensor()) absl::StrAppend(&sig, absl::StrJoin(v.tensor.shape(), ","));
    absl::StrAppend(&sig, "]");
    // Small inputs may be made constants (ShapeInputSlots): their values too.
    if (v.is_tensor() && v.tensor.size() <= 64 && v.tensor.dtype() != DType::kString) {
      absl::StrAppend(&sig, "=", absl::Hex(Fnv1a(1469598103934665603ull,
                                                 std::string(static_cast<const char*>(v.tensor.raw_data()),
                                                             v.tensor.nbytes()))));
    }
    absl::StrAppend(&sig, ";");
  }
  return sig;
}

// The standard headers the runner and the kernels include, precompiled once
// per compiler and flags (only a speed-up: without it each build parses them).
const char* const kStdHeaders[] = {"algorithm", "chrono", "cmath", "cstdint", "cstdio", "cstdlib", "cstring",
                                   "filesystem", "fstream", "iostream", "memory", "new", "random", "sstream",
                                   "string", "vector"};

std::string PchHeader(const CompiledCaseOptions& o) {
  const uint64_t h = Fnv1a(1469598103934665603ull, o.cxx + "\n" + o.cxxflags);
  return (fs::path(o.work_dir) / absl::StrCat("pch-", absl::Hex(h, absl::kZeroPad16)) / "std.h").string();
}

// Generates and builds the package for `model` (cached by content); returns
// the runner's path, or a "[compile] ..." / "[build] ..." message in `error`.
std::string BuildPackage(const std::string& model, const CompiledCaseOptions& o, std::string* error) {
  CompileOptions copt;
  copt.name = "m";
  copt.max_batch = 1;
  auto pkg = GeneratePackage(model, copt);
  if (!pkg.ok()) {
    *error = absl::StrCat("[compile] ", pkg.status().message());
    return "";
  }
  uint64_t h = Fnv1a(1469598103934665603ull, o.cxx + "\n" + o.cxxflags);
  for (const auto& [name, text] : pkg->files) h = Fnv1a(Fnv1a(h, name), text);
  const fs::path dir = fs::path(o.work_dir) / "pkg" / absl::StrCat(absl::Hex(h, absl::kZeroPad16));
  const std::string runner = (dir / "m_run").string();
  std::error_code ec;
  if (fs::exists(runner, ec)) return runner;
  // Written into a private folder, then renamed, so concurrent cases sharing
  // a package never see half of one.
  const fs::path tmp = fs::path(absl::StrCat(dir.string(), ".tmp-", getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) {
    *error = absl::StrCat("[build] ", tmp.string(), ": ", ec.message());
    return "";
  }
  for (const auto& [name, text] : pkg->files) {
    std::ofstream f(tmp / name, std::ios::binary);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  std::vector<std::string> args = {o.cxx};
  for (absl::string_view flag : absl::StrSplit(o.cxxflags, ' ', absl::SkipEmpty())) args.emplace_back(flag);
  const std::string pch = PchHeader(o);
  if (fs::exists(pch + ".gch", ec)) {
    args.push_back("-include");
    args.push_back(pch);
  }
  args.push_back(absl::StrCat("-I", tmp.string()));
  args.push_back((tmp / "m.cc").string());
  args.push_back((tmp / "m_run.cc").string());
  args.push_back("-o");
  args.push_back((tmp / "m_run").string());
  const std::string log = (tmp / "build.log").string();
  int rc = RunCommand(args, log);
  if (rc != 0) {
    *error = absl::StrCat("[build] ", rc < 0 ? absl::StrCat("cannot start ", o.cxx) : OneLine(FirstError(ReadText(log))));
    fs::remove_all(dir, ec);
    fs::rename(tmp, dir, ec);  // kept for a look at the failure; no runner in it
    if (ec) fs::remove_all(tmp, ec);
    return "";
  }
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) {
    // Another case built the same package meanwhile.
    fs::remove_all(tmp, ec);
  }
  return runner;
}

}  // namespace

void PrepareCompiledCases(const CompiledCaseOptions& o) {
  const fs::path header = PchHeader(o);
  std::error_code ec;
  if (fs::exists(header.string() + ".gch", ec)) return;
  fs::create_directories(header.parent_path(), ec);
  {
    std::ofstream f(header);
    for (const char* h : kStdHeaders) f << "#include <" << h << ">\n";
  }
  std::vector<std::string> args = {o.cxx};
  for (absl::string_view flag : absl::StrSplit(o.cxxflags, ' ', absl::SkipEmpty())) args.emplace_back(flag);
  const std::string tmp = absl::StrCat(header.string(), ".gch.tmp-", getpid());
  for (const std::string& a : {std::string("-x"), std::string("c++-header"), header.string(), std::string("-o"), tmp})
    args.push_back(a);
  if (RunCommand(args, (header.parent_path() / "build.log").string()) == 0) {
    fs::rename(tmp, header.string() + ".gch", ec);
  }
  fs::remove(tmp, ec);
}

std::vector<std::string> CompiledCaseArgs(const CompiledCaseOptions& o) {
  return {"--via", "compile", "--work", o.work_dir, "--cxx", o.cxx, "--cxxflags", o.cxxflags};
}

std::string FailureKind(const std::string& message) {
  for (const char* k : {"compile", "build", "run", "mismatch"}) {
    if (absl::StartsWith(message, absl::StrCat("[", k, "]"))) return k;
  }
  return "";
}

std::string FailingOperator(const std::string& message) {
  const std::string key = "cannot emit ";
  size_t at = message.find(key);
  if (at == std::string::npos) return "";
  size_t end = message.find_first_of(" (:", at + key.size());
  return message.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
}

testing::CaseResult RunCaseCompiled(const testing::BackendCase& test, const testing::SuiteRules& rules,
                                    const CompiledCaseOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  testing::CaseResult result{test, testing::Outcome::kFail, "", 0};
  auto finish = [&](testing::Outcome outcome, std::string msg) {
    result.outcome = outcome;
    result.message = OneLine(std::move(msg));
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
  };
  if (const auto* skip = rules.FindSkip(test.name)) return finish(testing::Outcome::kSkip, skip->reason);
  auto sets = testing::LoadDataSets(test);
  if (!sets.ok()) return finish(testing::Outcome::kFail, absl::StrCat("[compile] ", sets.status().message()));
  const Tolerance tol = rules.ToleranceFor(test.name);
  const fs::path case_dir = fs::path(o.work_dir) / "cases" / test.group / test.name;
  std::error_code ec;
  fs::create_directories(case_dir, ec);
  if (ec) return finish(testing::Outcome::kFail, absl::StrCat("[build] ", case_dir.string(), ": ", ec.message()));
  const std::string model_path = (fs::path(test.dir) / "model.onnx").string();
  std::map<std::string, std::string> runners;  // shape signature -> runner
  std::set<std::string> baked_inputs;          // made constants (see ShapeInputSlots)
  for (const testing::DataSet& set : *sets) {
    const std::string sig = ShapeSignature(set);
    if (!runners.count(sig)) {
      const std::string fixed =
          (case_dir / absl::StrCat("model-", absl::Hex(Fnv1a(1469598103934665603ull, sig)), ".onnx")).string();
      std::vector<std::string> baked;
      absl::Status st = WriteFixedModel(model_path, set, fixed, &baked);
      if (!st.ok()) return finish(testing::Outcome::kFail, absl::StrCat("[compile] ", st.message()));
      std::string error;
      std::string runner = BuildPackage(fixed, o, &error);
      if (runner.empty()) return finish(testing::Outcome::kFail, error);
      runners[sig] = runner;
      baked_inputs.insert(baked.begin(), baked.end());
    }
    const std::string& runner = runners[sig];
    const fs::path set_dir = case_dir / set.name;
    fs::remove_all(set_dir, ec);
    fs::create_directories(set_dir / "out", ec);
    std::vector<std::string> args = {runner, "--weights", (fs::path(runner).parent_path() / "m.weights").string(),
                                     "--output-dir", (set_dir / "out").string()};
    for (size_t k = 0; k < set.inputs.size(); ++k) {
      if (baked_inputs.count(set.inputs[k].first)) continue;
      const std::string path = (set_dir / absl::StrCat("input_", k, ".npy")).string();
      absl::Status st = WriteNpy(path, set.inputs[k].second.tensor);
      if (!st.ok()) return finish(testing::Outcome::kFail, absl::StrCat("[run] input '", set.inputs[k].first, "': ", st.message()));
      args.push_back("--input");
      args.push_back(absl::StrCat(set.inputs[k].first, "=", path));
    }
    const std::string log = (set_dir / "run.log").string();
    int rc = RunCommand(args, log);
    if (rc != 0) {
      return finish(testing::Outcome::kFail,
                    absl::StrCat("[run] ", set.name, ": exit status ", rc, ": ", ReadText(log, 400)));
    }
    for (size_t k = 0; k < set.expected.size(); ++k) {
      const std::string path = (set_dir / "out" / (SanitizeName(set.output_names[k]) + ".npy")).string();
      auto t = ReadNpy(path);
      if (!t.ok()) {
        return finish(testing::Outcome::kFail, absl::StrCat("[run] ", set.name, " output '", set.output_names[k],
                                                            "': ", t.status().message()));
      }
      if (t->dtype() == DType::kUInt16 && set.expected[k].is_tensor() &&
          set.expected[k].tensor.dtype() == DType::kBFloat16) {
        // NAME_run stores bfloat16 as its raw bits ('<u2'), as `hepml run` does.
        Tensor bf = Tensor::Empty(DType::kBFloat16, t->shape());
        std::memcpy(bf.raw_mutable_data(), t->raw_data(), t->nbytes());
        *t = std::move(bf);
      }
      absl::Status st = AllClose(Value::FromTensor(std::move(*t)), set.expected[k], tol);
      if (!st.ok()) {
        return finish(testing::Outcome::kFail, absl::StrCat("[mismatch] ", set.name, " output '",
                                                            set.output_names[k], "': ", st.message()));
      }
    }
    fs::remove_all(set_dir, ec);  // passed: nothing to look at
  }
  return finish(testing::Outcome::kPass, "");
}

}  // namespace hepml::cli
