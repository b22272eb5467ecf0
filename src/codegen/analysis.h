// The compiler's view of an optimised graph: every value's dtype and shape as
// a linear function of the run-time batch (dim = per_batch * batch + fixed),
// and the values of small integer tensors (shape arithmetic) the same way.
//
// Shapes come from shape propagation (graph/passes/shape_propagation.h) run
// with the inputs' symbolic dims replaced by numbers, at two batch sizes; a
// third and the maximum batch check that each dim really is linear.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace hepml::codegen {

// per_batch * batch + fixed.
struct Lin {
  int64_t per_batch = 0;
  int64_t fixed = 0;
  int64_t At(int64_t batch) const { return per_batch * batch + fixed; }
  bool IsConst() const { return per_batch == 0; }
  bool operator==(const Lin& o) const { return per_batch == o.per_batch && fixed == o.fixed; }
};
using LinShape = std::vector<Lin>;

struct ValueShape {
  DType dtype = DType::kUndefined;
  LinShape shape;
  // Set for small integer tensors whose every element is known.
  std::optional<std::vector<Lin>> known;
};

struct GraphShapes {
  bool has_batch = false;  // some input dim is the run-time batch
  absl::flat_hash_map<std::string, ValueShape> values;
  const ValueShape* Find(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? nullptr : &it->second;
  }
};

// How the graph's inputs' dims are fixed: --dim values by symbol, the batch
// for a symbolic first dim not in `dims`. Errors name the input and dim.
absl::StatusOr<GraphShapes> ResolveShapes(const Graph& graph, const std::map<std::string, int64_t>& dims,
                                          int64_t max_batch);

}  // namespace hepml::codegen
