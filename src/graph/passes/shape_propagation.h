// Static shape propagation over one graph, for passes that need to know
// ranks, dims or the values of small integer tensors (shape arithmetic).
//
// For every value of the graph (inputs, initializers, node outputs) it
// computes a TypeInfo: from the operator table's infer functions (OpDef::infer)
// where a row has one, from a few rules of its own for the shape operators the
// table leaves without one (Reshape, Squeeze, Unsqueeze, Concat, Slice, Expand,
// ConstantOfShape, Flatten, Tile), and from the graph's declared value_info where
// neither knows more. Dims that stay unknown get a fresh symbol, so that two
// dims are known equal exactly when they carry the same number or symbol.
//
// For small integer tensors (rank <= 1, at most kMaxSymbolicElements) it also
// tracks the value, element by element, as a number, a dimension symbol or
// unknown: Shape(x) of x: [batch, 32] is {batch, 32}, Gather of it at 1 is 32.
// Nodes whose inputs are all known small tensors are evaluated with their
// kernels; Shape, Gather, Slice, Concat, Squeeze, Unsqueeze, Reshape, Cast,
// Identity, Add/Sub/Mul/Div, Equal and Where also propagate symbols.
//
// Assumptions (the model's contract): a caller feeds inputs whose dims match
// the declared numbers and whose dims with the same symbol are equal.
// Subgraphs (If/Loop/Scan bodies) are not entered: their nodes' outputs are
// not described and the node's outputs come from value_info only.
//
// Not thread-safe; a result describes the graph as it was when computed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace hepml::passes {

inline constexpr int64_t kMaxSymbolicElements = 64;

// One element of a small integer tensor.
struct SymbolicInt {
  std::optional<int64_t> number;  // set: the element is this number
  std::string symbol;             // else, non-empty: equals the dimension of this symbol (>= 0)

  static SymbolicInt Number(int64_t v) { return SymbolicInt{v, ""}; }
  static SymbolicInt Symbol(std::string s) { return SymbolicInt{std::nullopt, std::move(s)}; }
  static SymbolicInt FromDim(const Dim& d) {
    return d.known() ? Number(d.value) : SymbolicInt{std::nullopt, d.param};
  }
  bool known() const { return number.has_value(); }
  // Known to be a dimension (>= 0): a non-negative number or a symbol.
  bool IsDim() const { return known() ? *number >= 0 : !symbol.empty(); }
  // Provably equal: same number, or same symbol.
  bool SameAs(const SymbolicInt& o) const {
    if (known() || o.known()) return known() && o.known() && *number == *o.number;
    return !symbol.empty() && symbol == o.symbol;
  }
  bool SameAs(const Dim& d) const { return SameAs(FromDim(d)); }
};

struct ValueFacts {
  TypeInfo type;
  // The elements of a small integer (or bool) tensor, row-major; empty
  // optional when not tracked.
  std::optional<std::vector<SymbolicInt>> value;

  // Every element of `value` is a number.
  bool FullyKnown() const;
  // The value as a tensor of type.dtype, when FullyKnown() and the shape is known.
  std::optional<Tensor> AsTensor() const;
};

class ShapePropagation {
 public:
  // Propagates through `graph` in node order (REQUIRES: topologically sorted).
  static ShapePropagation Run(const Graph& graph);

  // Facts about `value`, or null if the graph has no such value.
  const ValueFacts* Find(const std::string& value) const;
  // The type of `value` (kUnknown when not known).
  const TypeInfo& Type(const std::string& value) const;
  // The rank of `value`, or -1 if unknown.
  int Rank(const std::string& value) const;
  // The dims as numbers when all are known.
  std::optional<Shape> StaticShape(const std::string& value) const;

 private:
  absl::flat_hash_map<std::string, ValueFacts> facts_;
};

}  // namespace hepml::passes
