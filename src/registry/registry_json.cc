#include "registry/registry_json.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace hepml::registry {
namespace {

template <typename T>
OrderedJson Opt(const std::optional<T>& v) {
  return v ? OrderedJson(*v) : OrderedJson(nullptr);
}

OrderedJson SignatureJson(const std::vector<TensorSignature>& s) {
  OrderedJson a = OrderedJson::array();
  for (const auto& t : s) a.push_back({{"name", t.name}, {"type", t.type}});
  return a;
}

// JSON has no NaN or infinities.
OrderedJson Number(double v) { return std::isfinite(v) ? OrderedJson(v) : OrderedJson(nullptr); }

OrderedJson ParsedOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  OrderedJson j = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? OrderedJson(nullptr) : j;
}

template <typename Ref, typename Fn>
OrderedJson Refs(const std::vector<Ref>& refs, Fn name) {
  OrderedJson a = OrderedJson::array();
  for (const auto& r : refs) a.push_back(absl::StrCat(name(r), "@", r.version));
  return a;
}

std::string DatasetName(const DatasetVersionRef& r) { return r.dataset; }
std::string ModelName(const ModelVersionRef& r) { return r.model; }

// A dot identifier: the string in double quotes, quotes and backslashes escaped.
std::string DotId(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

OrderedJson FilesJson(const std::vector<FileEntry>& files) {
  OrderedJson j = OrderedJson::array();
  for (const auto& f : files) {
    j.push_back({{"name", f.name}, {"sha256", f.sha256}, {"size", f.size}, {"manifest", f.manifest_id}});
  }
  return j;
}

OrderedJson VersionJson(const ModelVersion& v) {
  OrderedJson j;
  j["model"] = v.model;
  j["version"] = v.version;
  j["files"] = FilesJson(v.files);
  j["inputs"] = SignatureJson(v.inputs);
  j["outputs"] = SignatureJson(v.outputs);
  j["params"] = v.params;
  j["metrics"] = OrderedJson::object();
  for (const auto& [k, m] : v.metrics) j["metrics"][k] = Number(m);
  j["tags"] = v.tags;
  j["source_run"] = Opt(v.source_run);
  j["datasets"] = Refs(v.datasets, DatasetName);
  j["code_version"] = v.code_version;
  j["aliases"] = v.aliases;
  j["created_by"] = v.created_by;
  j["created_at_ms"] = v.created_at_ms;
  return j;
}

OrderedJson DatasetVersionJson(const DatasetVersion& v) {
  OrderedJson j;
  j["dataset"] = v.dataset;
  j["version"] = v.version;
  j["files"] = FilesJson(v.files);
  j["entries"] = Opt(v.entries);
  j["schema"] = ParsedOrNull(v.schema_json);
  j["stats"] = ParsedOrNull(v.stats_json);
  j["source_run"] = Opt(v.source_run);
  j["created_by"] = v.created_by;
  j["created_at_ms"] = v.created_at_ms;
  return j;
}

OrderedJson RunJson(const RunInfo& r) {
  OrderedJson j;
  j["id"] = r.id;
  j["name"] = r.name;
  j["status"] = r.status;
  j["experiment_id"] = Opt(r.experiment_id);
  j["host"] = r.host;
  j["code_version"] = r.code_version;
  j["params"] = r.params;
  j["tags"] = r.tags;
  OrderedJson metrics = OrderedJson::array();
  for (const auto& m : r.metrics) metrics.push_back({{"key", m.key}, {"step", m.step}, {"value", Number(m.value)}});
  j["metrics"] = metrics;
  j["artifacts"] = FilesJson(r.artifacts);
  j["inputs"] = Refs(r.inputs, DatasetName);
  j["model_inputs"] = Refs(r.model_inputs, ModelName);
  j["created_by"] = r.created_by;
  j["start_ms"] = r.start_ms;
  j["end_ms"] = Opt(r.end_ms);
  j["cpu_seconds"] = Opt(r.cpu_seconds);
  j["gpu_seconds"] = Opt(r.gpu_seconds);
  j["peak_memory_bytes"] = Opt(r.peak_memory_bytes);
  return j;
}

OrderedJson IntervalJson(const Interval& iv) {
  OrderedJson j;
  j["tag"] = iv.tag;
  j["first_run"] = iv.range.first_run;
  j["last_run"] = iv.range.last_run;
  j["first_time"] = Opt(iv.range.first_time);
  j["last_time"] = Opt(iv.range.last_time);
  j["model"] = iv.model;
  j["version"] = iv.version;
  return j;
}

OrderedJson LineageJson(const Lineage& l) {
  OrderedJson nodes = OrderedJson::array(), edges = OrderedJson::array();
  for (const auto& n : l.nodes) nodes.push_back({{"kind", n.kind}, {"ref", n.ref}, {"depth", n.depth}});
  for (const auto& e : l.edges) edges.push_back({{"from", e.from}, {"relation", e.relation}, {"to", e.to}});
  return {{"nodes", nodes}, {"edges", edges}, {"truncated", l.truncated}};
}

std::string LineageDot(const Lineage& l) {
  std::string out = "digraph lineage {\n  rankdir=LR;\n";
  for (const auto& n : l.nodes) {
    const char* shape = n.kind == "run"             ? "ellipse"
                        : n.kind == "model_version" ? "box"
                        : n.kind == "alias"         ? "note"
                        : n.kind == "iov_tag"       ? "tab"
                                                    : "cylinder";
    absl::StrAppend(&out, "  ", DotId(n.ref), " [shape=", shape, "];\n");
  }
  for (const auto& e : l.edges) {
    absl::StrAppend(&out, "  ", DotId(e.from), " -> ", DotId(e.to), " [label=", DotId(e.relation), "];\n");
  }
  out += "}\n";
  return out;
}

}  // namespace hepml::registry
