// `hepml info MODEL.onnx [--json] [--optimized [--disable-pass NAME ...]]`:
// what a model is and whether hepml runs it; --optimized describes the graph
// after the default passes (the one a Session runs), with each pass's time.
// Both say whether a Session with several threads may run a batch as slices
// of rows (runtime/batch_split.h), decided on the graph after the passes.
#include <iostream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "graph/graph.h"
#include "graph/passes/pass.h"
#include "nlohmann/json.hpp"
#include "onnx/importer.h"
#include "ops/op_registry.h"
#include "runtime/batch_split.h"

namespace hepml::cli {
namespace {

using nlohmann::ordered_json;

ordered_json DimsJson(const TypeInfo& type) {
  ordered_json dims = ordered_json::array();
  for (const Dim& d : type.shape) {
    if (d.known()) dims.push_back(d.value);
    else if (!d.param.empty()) dims.push_back(d.param);
    else dims.push_back(nullptr);
  }
  return dims;
}

ordered_json ValueJson(const ValueInfo& vi) {
  ordered_json j;
  j["name"] = vi.name;
  const TypeInfo* t = &vi.type;
  std::string kind = "tensor";
  if (t->kind == TypeInfo::Kind::kSequence) kind = "sequence";
  if (t->kind == TypeInfo::Kind::kOptional) kind = "optional";
  if (t->kind == TypeInfo::Kind::kMap) kind = "map";
  j["kind"] = kind;
  while (t->element && (t->kind == TypeInfo::Kind::kSequence || t->kind == TypeInfo::Kind::kOptional)) {
    t = t->element.get();
  }
  j["dtype"] = std::string(DTypeName(t->dtype));
  j["shape"] = t->has_shape ? DimsJson(*t) : ordered_json(nullptr);
  j["type"] = vi.type.ToString();
  return j;
}

struct Summary {
  int64_t parameters = 0;
  int64_t parameter_bytes = 0;
  int64_t nodes = 0;
  std::map<std::string, int64_t> histogram;  // "Conv" or "domain.Op"
  // op -> (domain, opset, node descriptions)
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> unsupported;
};

void Summarize(const Graph& graph, Summary& s) {
  for (const auto& [name, t] : graph.initializers) {
    s.parameters += t.size();
    s.parameter_bytes += static_cast<int64_t>(t.nbytes());
  }
  for (const Node& node : graph.nodes) {
    ++s.nodes;
    std::string key = node.domain.empty() ? node.op_type : absl::StrCat(node.domain, ".", node.op_type);
    ++s.histogram[key];
    if (!ops::OpRegistry::Global().Find(node.domain, node.op_type, node.opset)) {
      auto& entry = s.unsupported[key];
      entry.first = absl::StrCat(node.DomainName(), " opset ", node.opset);
      entry.second.push_back(node.Describe());
    }
    for (const Attribute& a : node.attributes) {
      if (a.g) Summarize(*a.g, s);
      for (const auto& g : a.graphs) Summarize(*g, s);
    }
  }
}

int RunInfo(const std::string& path, bool json, bool optimized, const std::vector<std::string>& disabled) {
  auto model = LoadModel(path);
  if (!model.ok()) {
    PrintError("info", model.status().message());
    return kExitFailure;
  }
  std::vector<passes::PassReport> reports;
  if (optimized) {
    auto r = passes::PassManager::Default().Run(model->graph, std::set<std::string>(disabled.begin(), disabled.end()));
    if (!r.ok()) {
      PrintError("info", r.status().message());
      return kExitFailure;
    }
    reports = std::move(*r);
  }
  Summary s;
  Summarize(model->graph, s);
  // What a Session decides: on the graph after the passes (a second copy
  // when this one is described as imported).
  BatchSplitInfo split;
  if (optimized) {
    split = AnalyzeBatchSplit(model->graph);
  } else if (auto copy = LoadModel(path); copy.ok()) {
    if (auto r = passes::PassManager::Default().Run(copy->graph, {}); r.ok()) split = AnalyzeBatchSplit(copy->graph);
    else split.reason = absl::StrCat("the passes failed: ", r.status().message());
  }
  std::vector<const ValueInfo*> feeds = model->graph.RequiredInputs();
  if (json) {
    ordered_json j;
    j["file"] = path;
    j["ir_version"] = model->ir_version;
    j["producer"] = {{"name", model->producer_name}, {"version", model->producer_version}};
    ordered_json opsets = ordered_json::object();
    for (const auto& [domain, v] : model->opset_imports) opsets[domain.empty() ? "ai.onnx" : domain] = v;
    j["opset_imports"] = opsets;
    j["graph"] = model->graph.name;
    j["inputs"] = ordered_json::array();
    for (const ValueInfo* vi : feeds) j["inputs"].push_back(ValueJson(*vi));
    j["outputs"] = ordered_json::array();
    for (const ValueInfo& vi : model->graph.outputs) j["outputs"].push_back(ValueJson(vi));
    j["parameters"] = s.parameters;
    j["parameter_bytes"] = s.parameter_bytes;
    j["initializers"] = model->graph.initializers.size();
    j["nodes"] = s.nodes;
    j["operators"] = s.histogram;
    j["unsupported"] = ordered_json::array();
    for (const auto& [op, entry] : s.unsupported) {
      j["unsupported"].push_back({{"op", op}, {"opset", entry.first}, {"nodes", entry.second}});
    }
    j["metadata"] = model->metadata;
    j["batch_split"] = {{"separable", split.separable}};
    if (split.separable) {
      j["batch_split"]["work_per_sample"] = split.work_per_sample;
      j["batch_split"]["min_rows_per_slice"] = split.min_rows_per_slice;
    } else {
      j["batch_split"]["reason"] = split.reason;
    }
    if (optimized) {
      j["passes"] = ordered_json::array();
      for (const passes::PassReport& r : reports) {
        j["passes"].push_back({{"name", r.name}, {"skipped", r.skipped}, {"changed", r.changed}, {"milliseconds", r.milliseconds}});
      }
    }
    std::cout << j.dump(2) << std::endl;
    return kExitOk;
  }
  std::cout << "model:      " << path << "\n";
  std::cout << "producer:   " << (model->producer_name.empty() ? "(none)" : model->producer_name) << " "
            << model->producer_version << "\n";
  std::cout << "ir_version: " << model->ir_version << "\n";
  std::vector<std::string> opsets;
  for (const auto& [domain, v] : model->opset_imports) {
    opsets.push_back(absl::StrCat(domain.empty() ? "ai.onnx" : domain, " ", v));
  }
  std::cout << "opsets:     " << absl::StrJoin(opsets, ", ") << "\n";
  std::cout << "inputs:\n";
  for (const ValueInfo* vi : feeds) std::cout << "  " << vi->name << ": " << vi->type.ToString() << "\n";
  std::cout << "outputs:\n";
  for (const ValueInfo& vi : model->graph.outputs) std::cout << "  " << vi.name << ": " << vi.type.ToString() << "\n";
  std::cout << "parameters: " << s.parameters << " (" << s.parameter_bytes << " bytes in "
            << model->graph.initializers.size() << " initializers)\n";
  if (optimized) {
    std::vector<std::string> names;
    for (const passes::PassReport& r : reports) {
      if (r.skipped) names.push_back(absl::StrCat(r.name, " off"));
      else names.push_back(absl::StrFormat("%s%s %.2f ms", r.name, r.changed ? "*" : "", r.milliseconds));
    }
    std::cout << "passes:     " << absl::StrJoin(names, ", ") << " (* changed the graph)\n";
  }
  std::cout << "nodes:      " << s.nodes << (optimized ? " (after passes)" : "") << "\n";
  std::cout << "operators:\n";
  for (const auto& [op, n] : s.histogram) std::cout << "  " << op << ": " << n << "\n";
  if (split.separable) {
    std::cout << absl::StrFormat("batch split: yes (samples independent; ~%.0f multiply-adds and elements per sample, "
                                 "slices of >= %d rows)\n",
                                 split.work_per_sample, split.min_rows_per_slice);
  } else {
    std::cout << "batch split: no (" << split.reason << ")\n";
  }
  if (s.unsupported.empty()) {
    std::cout << "unsupported operators: none\n";
  } else {
    std::cout << "unsupported operators:\n";
    for (const auto& [op, entry] : s.unsupported) {
      std::cout << "  " << op << " (" << entry.first << "): " << absl::StrJoin(entry.second, ", ") << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

void AddInfoCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("info", "Describe an ONNX model: inputs, outputs, parameters, operators");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto optimized = std::make_shared<bool>(false);
  auto disabled = std::make_shared<std::vector<std::string>>();
  cmd->add_option("model", *path, "ONNX model file")->required();
  cmd->add_flag("--json", *json, "Print one JSON object");
  auto* opt = cmd->add_flag("--optimized", *optimized, "Describe the graph after hepml's default passes (what a Session runs)");
  cmd->add_option("--disable-pass", *disabled, "With --optimized: a pass to switch off (repeatable)")->needs(opt);
  cmd->callback([=] { *exit_code = RunInfo(*path, *json, *optimized, *disabled); });
}

}  // namespace hepml::cli
