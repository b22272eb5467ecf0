// The operator table: one row per operator version range.
//
// Each family file in src/ops/ (elementwise.cc, reduce.cc, ...) registers its
// rows with a static OpTableRegistration; there is no central list. A row names
// the domain, the operator, the opset range it covers, the input types it
// accepts, its shape/type function and its kernel:
//
//   const OpTableRegistration kRows({
//       {.name = "Relu", .since = 14, .types = kFloatTypes | kSignedIntTypes,
//        .infer = InferSameAsInput, .compute = ComputeRelu},
//   });
//
// Lookup picks the row whose [since, until] range holds the opset version the
// model imports for the node's domain.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "hepml/tensor.h"
#include "ops/kernel_context.h"

namespace hepml::ops {

// A set of DTypes as a bit mask (bit = static_cast<int>(DType)).
using DTypeSet = uint32_t;
constexpr DTypeSet Bit(DType d) { return DTypeSet{1} << static_cast<int>(d); }
inline constexpr DTypeSet kFloatTypes =
    Bit(DType::kFloat32) | Bit(DType::kFloat64) | Bit(DType::kFloat16) | Bit(DType::kBFloat16);
inline constexpr DTypeSet kSignedIntTypes =
    Bit(DType::kInt8) | Bit(DType::kInt16) | Bit(DType::kInt32) | Bit(DType::kInt64);
inline constexpr DTypeSet kUnsignedIntTypes =
    Bit(DType::kUInt8) | Bit(DType::kUInt16) | Bit(DType::kUInt32) | Bit(DType::kUInt64);
inline constexpr DTypeSet kIntTypes = kSignedIntTypes | kUnsignedIntTypes;
inline constexpr DTypeSet kNumericTypes = kFloatTypes | kIntTypes;
inline constexpr DTypeSet kFloat8Types = Bit(DType::kFloat8E4M3FN) | Bit(DType::kFloat8E4M3FNUZ) |
                                         Bit(DType::kFloat8E5M2) | Bit(DType::kFloat8E5M2FNUZ);
inline constexpr DTypeSet kInt4Types = Bit(DType::kInt4) | Bit(DType::kUInt4);
inline constexpr DTypeSet kAllTypes = ~DTypeSet{0};
std::string DTypeSetToString(DTypeSet set);

// What shape and type inference sees of a node.
struct InferContext {
  const Node& node;
  int opset;
  // Types of the node's inputs (kUnknown where not known or omitted).
  std::vector<TypeInfo> input_types;
  // Values of inputs known before running (initializers, folded constants);
  // nullptr elsewhere.
  std::vector<const Tensor*> constant_inputs;
};
// Fills `outputs` (sized to the node's output count, all kUnknown on entry).
// An error means the node cannot be valid for these inputs.
using InferFn = absl::Status (*)(const InferContext& ctx, std::vector<TypeInfo>& outputs);

// Per-node state built once when a Session is created (prepacked weights,
// parsed attributes). Immutable afterwards: shared by concurrent Run calls.
class KernelState {
 public:
  virtual ~KernelState() = default;
};

struct PrepareContext {
  const Node& node;
  int opset;
  // Values of inputs that are constant for the Session's lifetime
  // (initializers); nullptr for runtime inputs.
  std::vector<const Tensor*> constant_inputs;
};
using PrepareFn = absl::StatusOr<std::unique_ptr<KernelState>> (*)(const PrepareContext& ctx);

// Runs the node: reads ctx inputs, writes every requested output.
using ComputeFn = absl::Status (*)(KernelContext& ctx);

struct OpDef {
  std::string_view domain = "";  // "" = the default ONNX domain
  std::string_view name;
  int since = 1;             // first opset version this row covers
  int until = kMaxOpset;     // last opset version this row covers (inclusive)
  DTypeSet types = kAllTypes;  // accepted dtypes of input 0 (checked before compute)
  InferFn infer = nullptr;     // shape/type function; nullptr: outputs unknown statically
  ComputeFn compute = nullptr;
  PrepareFn prepare = nullptr;  // optional per-node state, see KernelState
};

class OpRegistry {
 public:
  // The process-wide table, filled by static registrations before main().
  static OpRegistry& Global();

  void Register(const OpDef& def);
  // The row for `name` in `domain` ("" or "ai.onnx" = default) at `opset`, or null.
  const OpDef* Find(std::string_view domain, std::string_view name, int opset) const;
  // All rows, sorted by domain, name and version.
  std::vector<const OpDef*> All() const;

 private:
  std::vector<std::unique_ptr<OpDef>> rows_;
};

// Registers a family's rows at static-initialisation time.
struct OpTableRegistration {
  OpTableRegistration(std::initializer_list<OpDef> rows);
};

}  // namespace hepml::ops
