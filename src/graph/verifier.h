// Structural checks of an imported graph: every value a node reads is a graph
// input, an initializer, the output of another node or a name of an enclosing
// graph; each value is produced once; the graph has no cycle. Sorts nodes into
// topological order (ONNX requires it, but some exporters do not keep it).
#pragma once

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "graph/graph.h"

namespace hepml {

// REQUIRES: `outer_scope` holds the names visible from enclosing graphs.
// Errors name the node and the value at fault.
absl::Status VerifyAndSortGraph(Graph& graph,
                                const absl::flat_hash_set<std::string>& outer_scope = {});

}  // namespace hepml
