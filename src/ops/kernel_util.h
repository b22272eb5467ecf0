// Helpers shared by kernels of several families: broadcasting, axes, strides,
// reading small integer tensors, and common shape/type functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "hepml/tensor.h"
#include "ops/op_registry.h"

namespace hepml::ops {

// numpy broadcasting of several shapes; error if they are incompatible.
absl::StatusOr<Shape> BroadcastShapes(absl::Span<const Shape> shapes);
absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b);

// Row-major strides (in elements) of `shape`.
Shape Strides(absl::Span<const int64_t> shape);

// Strides of `in_shape` aligned to the right of `out_shape` (rank(out) >= rank(in)),
// with 0 for broadcast dimensions: element i of the output reads
// sum(coord[d] * result[d]) of the input.
Shape BroadcastStrides(absl::Span<const int64_t> in_shape, absl::Span<const int64_t> out_shape);

// Maps a possibly negative axis into [0, rank); error if out of range.
absl::StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank);
// The same for each axis; error on out-of-range or duplicate axes.
absl::StatusOr<std::vector<int64_t>> NormalizeAxes(absl::Span<const int64_t> axes, int64_t rank);

// Values of an int32/int64 (or, with allow_float, float) tensor as int64.
absl::StatusOr<std::vector<int64_t>> ReadInt64s(const Tensor& t);
// Values of any numeric tensor as double.
absl::StatusOr<std::vector<double>> ReadDoubles(const Tensor& t);
// A scalar (or one-element) tensor's value as int64 / double.
absl::StatusOr<int64_t> ReadScalarInt(const Tensor& t);
absl::StatusOr<double> ReadScalarDouble(const Tensor& t);

// Walks every element of an output of `out_shape` and calls fn(out_index,
// in_index[0..n)) with the matching indices into broadcast inputs.
// Used by elementwise kernels where the fast paths do not apply.
class BroadcastIterator {
 public:
  BroadcastIterator(absl::Span<const int64_t> out_shape, absl::Span<const Shape> in_shapes);
  // Calls fn(int64_t out_i, const int64_t* in_i) for every output element.
  template <typename F>
  void ForEach(F&& fn) const {
    const int64_t total = NumElements(out_shape_);
    if (total == 0) return;
    const size_t rank = out_shape_.size();
    const size_t n = in_strides_.size();
    std::vector<int64_t> coord(rank, 0), idx(n, 0);
    for (int64_t o = 0; o < total; ++o) {
      fn(o, idx.data());
      for (size_t d = rank; d-- > 0;) {
        ++coord[d];
        for (size_t k = 0; k < n; ++k) idx[k] += in_strides_[k][d];
        if (coord[d] < out_shape_[d]) break;
        for (size_t k = 0; k < n; ++k) idx[k] -= in_strides_[k][d] * coord[d];
        coord[d] = 0;
      }
    }
  }

 private:
  Shape out_shape_;
  std::vector<Shape> in_strides_;
};

// Every input below `required` is present, and every present input is a
// tensor (a malformed model may leave out required inputs, or feed a
// sequence where a tensor belongs).
absl::Status RequireTensorInputs(const KernelContext& ctx, size_t required);

// Copies n elements (memcpy for trivially copyable types).
template <typename T>
inline void CopyElements(T* dst, const T* src, int64_t n) {
  if (n <= 0) return;
  if constexpr (std::is_trivially_copyable_v<T>) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
  } else {
    std::copy(src, src + n, dst);
  }
}

// Copies n elements from src[src_off..] to dst[dst_off..] of any dtype.
// REQUIRES: both ranges lie inside their tensors and the dtypes match.
void CopyTensorElements(const Tensor& src, int64_t src_off, Tensor& dst, int64_t dst_off, int64_t n);

// ---- shape/type functions usable as OpDef::infer ----
// Output 0 has input 0's type and shape.
absl::Status InferSameAsInput(const InferContext& ctx, std::vector<TypeInfo>& outputs);
// Output 0 has input 0's dtype and the broadcast shape of all inputs.
absl::Status InferBroadcast(const InferContext& ctx, std::vector<TypeInfo>& outputs);
// Output 0 is bool with the broadcast shape of all inputs (comparisons).
absl::Status InferBroadcastBool(const InferContext& ctx, std::vector<TypeInfo>& outputs);

// Converts between a TypeInfo with a fully known shape and a Shape.
std::optional<Shape> KnownShape(const TypeInfo& type);
std::vector<Dim> ToDims(const Shape& shape);

}  // namespace hepml::ops
