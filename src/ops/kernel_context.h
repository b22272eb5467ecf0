// What a kernel sees while it runs: its node, its inputs, a way to allocate
// outputs, subgraph execution for control flow, and the session's threads.
//
// Implemented by the runtime. A KernelContext lives for one node execution on
// one thread; kernels must not keep pointers to it.
//
// Contract for kernels:
// - inputs are read-only: never write through an input's buffer (outputs may
//   share an input's buffer only through SetOutput with a view of it);
// - bad input (wrong rank, out-of-range index, ...) returns an error Status
//   built with ctx.Error(...), never crashes or reads out of bounds;
// - every output the node names must be set before returning OK.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace hepml::ops {

class KernelState;

class KernelContext {
 public:
  virtual ~KernelContext() = default;

  virtual const Node& node() const = 0;
  // The opset version of the node's domain in the model.
  virtual int opset() const = 0;

  // Inputs. An omitted optional input (empty name, or past the end) is absent.
  virtual size_t num_inputs() const = 0;
  virtual bool HasInput(size_t i) const = 0;
  // REQUIRES: HasInput(i) and the value is a tensor (use InputValue for
  // sequences and optionals).
  virtual const Tensor& Input(size_t i) const = 0;
  virtual const Value& InputValue(size_t i) const = 0;

  // Outputs. An output the model leaves unnamed need not be produced.
  virtual size_t num_outputs() const = 0;
  virtual bool HasOutput(size_t i) const = 0;
  // Allocates output i and returns it for the kernel to fill.
  virtual Tensor* Output(size_t i, DType dtype, Shape shape) = 0;
  // Sets output i to an existing tensor (e.g. a view of an input).
  virtual void SetOutput(size_t i, Tensor tensor) = 0;
  virtual void SetOutputValue(size_t i, Value value) = 0;

  // The node's prepared state (see PrepareFn); null if it has none.
  virtual const KernelState* state() const = 0;
  template <typename T>
  const T& state_as() const {
    return *static_cast<const T*>(state());
  }

  // Runs the subgraph held by attribute `attr` with `inputs` bound to its
  // graph inputs in order; names of enclosing graphs resolve to their current
  // values. Returns the subgraph's outputs in order.
  virtual absl::StatusOr<std::vector<Value>> RunSubgraph(const std::string& attr,
                                                         std::vector<Value> inputs) = 0;

  // Splits [begin, end) into chunks of at least `grain` and runs fn(lo, hi)
  // on the session's threads (inside its TBB arena). fn must be thread-safe.
  virtual void ParallelFor(int64_t begin, int64_t end, int64_t grain,
                           const std::function<void(int64_t, int64_t)>& fn) const = 0;

  // An InvalidArgument error naming the node: "Gather 'g1': <message>".
  template <typename... Args>
  absl::Status Error(const Args&... args) const {
    return absl::InvalidArgumentError(absl::StrCat(node().Describe(), ": ", args...));
  }
};

}  // namespace hepml::ops
