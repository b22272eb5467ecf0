// The registry's records as JSON, one shape for `hepml registry --json` and
// the REST API's native /api/v1 answers, and lineage as Graphviz dot.
#ifndef HEPML_REGISTRY_REGISTRY_JSON_H_
#define HEPML_REGISTRY_REGISTRY_JSON_H_

#include <string>
#include <vector>

#include "hepml/registry.h"
#include "nlohmann/json.hpp"

namespace hepml::registry {

using OrderedJson = nlohmann::ordered_json;

// [{name, sha256, size, manifest}].
OrderedJson FilesJson(const std::vector<FileEntry>& files);
// model, version, files, inputs, outputs, params, metrics (non-finite values
// as null), tags, source_run, datasets ["NAME@V"], code_version, aliases,
// created_by, created_at_ms.
OrderedJson VersionJson(const ModelVersion& v);
// dataset, version, files, entries, schema, stats (parsed JSON or null),
// source_run, created_by, created_at_ms.
OrderedJson DatasetVersionJson(const DatasetVersion& v);
// id, name, status, experiment_id, host, code_version, params, tags, metrics
// [{key, step, value}], artifacts, inputs ["NAME@V"], model_inputs
// ["MODEL@V"], created_by, start_ms, end_ms, cpu_seconds, gpu_seconds,
// peak_memory_bytes.
OrderedJson RunJson(const RunInfo& r);
OrderedJson IntervalJson(const Interval& iv);
// {nodes: [{kind, ref, depth}], edges: [{from, relation, to}], truncated}.
OrderedJson LineageJson(const Lineage& l);
// A Graphviz digraph: one box per node (shape by kind), one labelled arrow
// per edge.
std::string LineageDot(const Lineage& l);

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_REGISTRY_JSON_H_
