// Indexing and selection operators: TopK, NonZero, Unique, OneHot, Compress,
// NonMaxSuppression.
//
// Orderings: floating-point NaN sorts above every number (numpy's order), so
// TopK with largest=1 returns NaNs first and Unique puts one NaN group last.
// Ties keep the lower index first (TopK, Unique, NonMaxSuppression), as ONNX
// requires for TopK.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// Total order with NaN above every number; other types use operator<.
template <typename C>
inline bool Less(const C& a, const C& b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}
template <typename C>
inline bool Equal(const C& a, const C& b) {
  return !Less(a, b) && !Less(b, a);
}

// ---- TopK ----------------------------------------------------------------------

// Up to this k, TopK keeps a sorted list of the best k while it scans a line
// (k compares at worst per element, one for most); above it, selection
// (nth_element) and a sort of the k.
constexpr int64_t kInsertionTopK = 16;

// A float32 as an int32 that orders as Less() does: NaN (either sign) above
// +inf, -0 equal to +0, so that ties and NaNs come out as in the generic path.
inline int32_t OrderKey(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::numeric_limits<int32_t>::max();
  if (u == 0x80000000u) u = 0;
  const int32_t s = static_cast<int32_t>(u);
  return s >= 0 ? s : s ^ 0x7fffffff;  // negatives: larger magnitude, smaller key
}

// TopK of float32 rows (the innermost axis) for 1 < k <= kInsertionTopK < n:
// the k best so far live in two small arrays (keys and indices, best first)
// and each candidate is one integer compare against the k-th best; no
// allocation. `largest` = false flips the keys (~key reverses the order and
// keeps NaN last). A candidate equal to the k-th loses, and an insertion
// stops at an equal key, so the lower index comes first among ties.
void TopKRowsFloat(KernelContext& ctx, const float* px, float* pv, int64_t* pi, int64_t rows, int64_t n,
                   int64_t k, bool largest) {
  const int32_t flip = largest ? 0 : -1;
  ctx.ParallelFor(0, rows, std::max<int64_t>(1, 4096 / n), [&](int64_t lo, int64_t hi) {
    int32_t best_key[kInsertionTopK];
    int64_t best_index[kInsertionTopK];
    for (int64_t row = lo; row < hi; ++row) {
      const float* src = px + row * n;
      int64_t count = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int32_t key = OrderKey(src[i]) ^ flip;
        int64_t pos;
        if (count == k) {
          if (key <= best_key[k - 1]) continue;
          pos = k - 1;
        } else {
          pos = count++;
        }
        for (; pos > 0 && key > best_key[pos - 1]; --pos) {
          best_key[pos] = best_key[pos - 1];
          best_index[pos] = best_index[pos - 1];
        }
        best_key[pos] = key;
        best_index[pos] = i;
      }
      float* dv = pv + row * k;
      int64_t* di = pi + row * k;
      for (int64_t i = 0; i < k; ++i) {
        dv[i] = src[best_index[i]];
        di[i] = best_index[i];
      }
    }
  });
}

absl::Status ComputeTopK(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  if (x.rank() < 1) return ctx.Error("input must have rank >= 1, got a scalar");
  int64_t k = 0;
  if (ctx.opset() < 10) {
    if (!ctx.node().HasAttribute("k")) return ctx.Error("attribute 'k' is required");
    k = ctx.node().GetInt("k", 0);
  } else {
    if (!ctx.HasInput(1)) return ctx.Error("input 'K' is required");
    const Tensor& kt = ctx.Input(1);
    if (kt.rank() > 1) return ctx.Error("K must be a 1-D tensor of one element, got shape ", ShapeToString(kt.shape()));
    auto kv = ReadScalarInt(kt);
    if (!kv.ok()) return ctx.Error("K: ", kv.status().message());
    k = *kv;
  }
  auto axis_or = NormalizeAxis(ctx.node().GetInt("axis", -1), x.rank());
  if (!axis_or.ok()) return ctx.Error(axis_or.status().message());
  const int axis = static_cast<int>(*axis_or);
  const bool largest = ctx.opset() >= 11 ? ctx.node().GetInt("largest", 1) != 0 : true;
  // sorted=0 leaves the order unspecified; the sorted order is one valid answer.
  const int64_t n = x.dim(axis);
  if (k < 0 || k > n) {
    return ctx.Error("k = ", k, " must be in [0, ", n, "] (size of axis ", axis, " of input ",
                     ShapeToString(x.shape()), ")");
  }
  Shape out_shape = x.shape();
  out_shape[axis] = k;
  Tensor* values = ctx.Output(0, x.dtype(), out_shape);
  Tensor* indices = ctx.Output(1, DType::kInt64, out_shape);
  if (values->size() == 0) return absl::OkStatus();
  const int64_t outer = NumElements(absl::MakeConstSpan(x.shape()).subspan(0, axis));
  const int64_t inner = NumElements(absl::MakeConstSpan(x.shape()).subspan(axis + 1));
  if (x.dtype() == DType::kFloat32 && inner == 1 && k > 1 && k <= kInsertionTopK && k < n) {
    TopKRowsFloat(ctx, x.data<float>(), values->mutable_data<float>(), indices->mutable_data<int64_t>(), outer, n, k,
                  largest);
    return absl::OkStatus();
  }

  return VisitNumeric(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* pv = values->mutable_data<T>();
    int64_t* pi = indices->mutable_data<int64_t>();
    using Item = std::pair<C, int64_t>;
    auto before = [largest](const Item& a, const Item& b) {
      if (largest ? Less(b.first, a.first) : Less(a.first, b.first)) return true;
      if (Equal(a.first, b.first)) return a.second < b.second;
      return false;
    };
    ctx.ParallelFor(0, outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)),
                    [&](int64_t lo, int64_t hi) {
      std::vector<Item> items(static_cast<size_t>(n));
      for (int64_t line = lo; line < hi; ++line) {
        const int64_t o = line / inner, j = line % inner;
        const T* src = px + o * n * inner + j;
        T* dv = pv + o * k * inner + j;
        int64_t* di = pi + o * k * inner + j;
        if (k == 1) {
          Item best{static_cast<C>(src[0]), 0};
          for (int64_t i = 1; i < n; ++i) {
            Item cand{static_cast<C>(src[i * inner]), i};
            if (before(cand, best)) best = cand;
          }
          dv[0] = src[best.second * inner];
          di[0] = best.second;
          continue;
        }
        if (k <= kInsertionTopK && k < n) {
          // A few of many (the k nearest neighbours of a point cloud): keep
          // the k best so far in order; most candidates lose to the k-th at
          // the first comparison. Candidates come by increasing index, so
          // before() (index breaks ties) gives the same k as a full sort.
          int64_t count = 0;
          for (int64_t i = 0; i < n; ++i) {
            const Item cand{static_cast<C>(src[i * inner]), i};
            int64_t pos;
            if (count == k) {
              if (!before(cand, items[k - 1])) continue;
              pos = k - 1;
            } else {
              pos = count++;
            }
            for (; pos > 0 && before(cand, items[pos - 1]); --pos) items[pos] = items[pos - 1];
            items[pos] = cand;
          }
          for (int64_t i = 0; i < k; ++i) {
            dv[i * inner] = src[items[i].second * inner];
            di[i * inner] = items[i].second;
          }
          continue;
        }
        for (int64_t i = 0; i < n; ++i) items[i] = Item{static_cast<C>(src[i * inner]), i};
        if (k < n) {
          // before() is a strict total order (index breaks ties), so
          // selecting the k first and sorting them equals a partial sort;
          // selection is linear where the heap of partial_sort is n log k.
          std::nth_element(items.begin(), items.begin() + k, items.end(), before);
          std::sort(items.begin(), items.begin() + k, before);
        } else {
          std::sort(items.begin(), items.end(), before);
        }
        for (int64_t i = 0; i < k; ++i) {
          dv[i * inner] = src[items[i].second * inner];
          di[i * inner] = items[i].second;
        }
      }
    });
    return absl::OkStatus();
  });
}

absl::Status InferTopK(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty()) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  int64_t k = -1;
  if (ctx.opset < 10) {
    k = ctx.node.GetInt("k", -1);
  } else if (ctx.constant_inputs.size() > 1 && ctx.constant_inputs[1] != nullptr) {
    auto kv = ReadScalarInt(*ctx.constant_inputs[1]);
    if (kv.ok()) k = *kv;
  }
  TypeInfo v = TypeInfo::Tensor(x.dtype), i = TypeInfo::Tensor(DType::kInt64);
  if (x.has_shape && !x.shape.empty()) {
    auto axis = NormalizeAxis(ctx.node.GetInt("axis", -1), static_cast<int64_t>(x.shape.size()));
    if (!axis.ok()) return axis.status();
    std::vector<Dim> dims = x.shape;
    dims[*axis] = k >= 0 ? Dim{k, ""} : Dim{};
    v = TypeInfo::Tensor(x.dtype, dims);
    i = TypeInfo::Tensor(DType::kInt64, dims);
  }
  if (!outputs.empty()) outputs[0] = v;
  if (outputs.size() > 1) outputs[1] = i;
  return absl::OkStatus();
}

// ---- NonZero -------------------------------------------------------------------

template <typename T>
inline bool IsNonZero(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return !v.empty();
  } else if constexpr (std::is_same_v<T, bool>) {
    return v;
  } else {
    return static_cast<ComputeT<T>>(v) != ComputeT<T>(0);
  }
}

absl::Status ComputeNonZero(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  // A scalar counts as a 1-element vector (numpy's behaviour): output [1, nnz].
  const Shape shape = x.rank() == 0 ? Shape{1} : x.shape();
  const int64_t rank = static_cast<int64_t>(shape.size());
  return VisitAll(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* p = x.data<T>();
    const int64_t total = x.size();
    int64_t nnz = 0;
    for (int64_t i = 0; i < total; ++i) nnz += IsNonZero(p[i]) ? 1 : 0;
    Tensor* out = ctx.Output(0, DType::kInt64, Shape{rank, nnz});
    int64_t* po = out->mutable_data<int64_t>();
    std::vector<int64_t> coord(static_cast<size_t>(rank), 0);
    int64_t col = 0;
    for (int64_t i = 0; i < total; ++i) {
      if (IsNonZero(p[i])) {
        for (int64_t d = 0; d < rank; ++d) po[d * nnz + col] = coord[d];
        ++col;
      }
      for (int64_t d = rank; d-- > 0;) {
        if (++coord[d] < shape[d]) break;
        coord[d] = 0;
      }
    }
    return absl::OkStatus();
  }, "NonZero");
}

absl::Status InferNonZero(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.empty()) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  Dim rank{};
  if (x.has_shape) rank = Dim{std::max<int64_t>(1, static_cast<int64_t>(x.shape.size())), ""};
  outputs[0] = TypeInfo::Tensor(DType::kInt64, {rank, Dim{}});
  return absl::OkStatus();
}

// ---- Unique --------------------------------------------------------------------

absl::Status ComputeUnique(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const bool sorted = ctx.node().GetInt("sorted", 1) != 0;
  const bool has_axis = ctx.node().HasAttribute("axis");
  int axis = 0;
  int64_t outer = 1, n = x.size(), inner = 1;
  if (has_axis) {
    if (x.rank() < 1) return ctx.Error("axis is given but the input is a scalar");
    auto a = NormalizeAxis(ctx.node().GetInt("axis", 0), x.rank());
    if (!a.ok()) return ctx.Error(a.status().message());
    axis = static_cast<int>(*a);
    outer = NumElements(absl::MakeConstSpan(x.shape()).subspan(0, axis));
    n = x.dim(axis);
    inner = NumElements(absl::MakeConstSpan(x.shape()).subspan(axis + 1));
  }
  if (x.dtype() == DType::kComplex64 || x.dtype() == DType::kComplex128) {
    return ctx.Error("complex inputs have no order to sort by");
  }
  return VisitAll(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, std::complex<float>> || std::is_same_v<T, std::complex<double>>) {
      return absl::OkStatus();  // rejected above
    } else {
      // Strings compare by reference; 16-bit floats in float.
      using C = std::conditional_t<std::is_same_v<T, std::string>, const std::string&, ComputeT<T>>;
      const T* p = x.data<T>();
      // Slice i is the elements p[(o * n + i) * inner + j] in (o, j) order.
      auto elem = [&](int64_t i, int64_t o, int64_t j) -> C {
        return static_cast<C>(p[(o * n + i) * inner + j]);
      };
      // -1, 0, 1: lexicographic comparison of slices a and b.
      auto compare = [&](int64_t a, int64_t b) -> int {
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t j = 0; j < inner; ++j) {
            C va = elem(a, o, j);
            C vb = elem(b, o, j);
            if (Less(va, vb)) return -1;
            if (Less(vb, va)) return 1;
          }
        }
        return 0;
      };
      std::vector<int64_t> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      if (outer * inner == 1) {
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return Less(elem(a, 0, 0), elem(b, 0, 0));
        });
      } else {
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return compare(a, b) < 0; });
      }
      // Groups of equal slices; the first of each group is its first occurrence.
      std::vector<int64_t> first, count;
      std::vector<int64_t> group_of(static_cast<size_t>(n));
      for (int64_t r = 0; r < n; ++r) {
        if (r == 0 || compare(order[r - 1], order[r]) != 0) {
          first.push_back(order[r]);
          count.push_back(0);
        }
        group_of[order[r]] = static_cast<int64_t>(first.size()) - 1;
        ++count.back();
      }
      const int64_t u = static_cast<int64_t>(first.size());
      // rank[g]: output position of group g.
      std::vector<int64_t> pos(static_cast<size_t>(u));
      std::iota(pos.begin(), pos.end(), 0);
      if (!sorted) {
        std::vector<int64_t> by_first(static_cast<size_t>(u));
        std::iota(by_first.begin(), by_first.end(), 0);
        std::sort(by_first.begin(), by_first.end(),
                  [&](int64_t a, int64_t b) { return first[a] < first[b]; });
        for (int64_t r = 0; r < u; ++r) pos[by_first[r]] = r;
      }
      Shape y_shape = has_axis ? x.shape() : Shape{u};
      if (has_axis) y_shape[axis] = u;
      Tensor* y = ctx.Output(0, x.dtype(), y_shape);
      Tensor* indices = ctx.Output(1, DType::kInt64, Shape{u});
      Tensor* inverse = ctx.Output(2, DType::kInt64, Shape{n});
      Tensor* counts = ctx.Output(3, DType::kInt64, Shape{u});
      T* py = y->mutable_data<T>();
      for (int64_t g = 0; g < u; ++g) {
        const int64_t at = pos[g];
        indices->mutable_data<int64_t>()[at] = first[g];
        counts->mutable_data<int64_t>()[at] = count[g];
        for (int64_t o = 0; o < outer; ++o) {
          CopyElements(py + (o * u + at) * inner, p + (o * n + first[g]) * inner, inner);
        }
      }
      for (int64_t i = 0; i < n; ++i) inverse->mutable_data<int64_t>()[i] = pos[group_of[i]];
      return absl::OkStatus();
    }
  }, "Unique");
}

absl::Status InferUnique(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty()) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  if (!outputs.empty()) {
    if (!ctx.node.HasAttribute("axis")) {
      outputs[0] = TypeInfo::Tensor(x.dtype, {Dim{}});
    } else if (x.has_shape && !x.shape.empty()) {
      auto axis = NormalizeAxis(ctx.node.GetInt("axis", 0), static_cast<int64_t>(x.shape.size()));
      if (!axis.ok()) return axis.status();
      std::vector<Dim> dims = x.shape;
      dims[*axis] = Dim{};
      outputs[0] = TypeInfo::Tensor(x.dtype, std::move(dims));
    } else {
      outputs[0] = TypeInfo::Tensor(x.dtype);
    }
  }
  for (size_t i = 1; i < outputs.size() && i < 4; ++i) outputs[i] = TypeInfo::Tensor(DType::kInt64, {Dim{}});
  return absl::OkStatus();
}

// ---- OneHot --------------------------------------------------------------------

absl::Status ComputeOneHot(KernelContext& ctx) {
  const Tensor& indices = ctx.Input(0);
  const Tensor& depth_t = ctx.Input(1);
  const Tensor& values = ctx.Input(2);
  if (depth_t.size() != 1) {
    return ctx.Error("depth must be a scalar, got shape ", ShapeToString(depth_t.shape()));
  }
  auto depth_v = ReadScalarDouble(depth_t);
  if (!depth_v.ok()) return ctx.Error("depth: ", depth_v.status().message());
  if (!std::isfinite(*depth_v) || *depth_v < 0 || *depth_v > 9.0e15) {
    return ctx.Error("depth must be a non-negative number, got ", *depth_v);
  }
  const int64_t depth = static_cast<int64_t>(*depth_v);
  if (depth > 0 && indices.size() > std::numeric_limits<int64_t>::max() / depth) {
    return ctx.Error("depth ", depth, " times ", indices.size(), " indices overflows the output size");
  }
  if (values.size() != 2) {
    return ctx.Error("values must hold exactly two elements [off_value, on_value], got shape ",
                     ShapeToString(values.shape()));
  }
  const int64_t out_rank = indices.rank() + 1;
  auto axis_or = NormalizeAxis(ctx.node().GetInt("axis", -1), out_rank);
  if (!axis_or.ok()) return ctx.Error(axis_or.status().message());
  const int64_t axis = *axis_or;
  Shape out_shape = indices.shape();
  out_shape.insert(out_shape.begin() + axis, depth);
  const int64_t outer = NumElements(absl::MakeConstSpan(indices.shape()).subspan(0, axis));
  const int64_t inner = NumElements(absl::MakeConstSpan(indices.shape()).subspan(axis));

  // Each index as a position in [0, depth), or -1 where it is out of range.
  std::vector<int64_t> where(static_cast<size_t>(indices.size()));
  absl::Status st = VisitNumeric(indices.dtype(), [&](auto tag) -> absl::Status {
    using I = typename decltype(tag)::type;
    const I* p = indices.data<I>();
    for (int64_t i = 0; i < indices.size(); ++i) {
      int64_t v;
      if constexpr (std::is_integral_v<I>) {
        if constexpr (std::is_unsigned_v<I>) {
          if (static_cast<uint64_t>(p[i]) > static_cast<uint64_t>(depth)) {
            where[i] = -1;
            continue;
          }
        }
        v = static_cast<int64_t>(p[i]);
      } else {
        const double d = static_cast<double>(static_cast<ComputeT<I>>(p[i]));
        if (!(d > -9.0e15 && d < 9.0e15)) {  // NaN, inf, huge: out of range
          where[i] = -1;
          continue;
        }
        v = static_cast<int64_t>(d);  // truncation = cast to int64
      }
      if (v < 0) v += depth;
      where[i] = (v >= 0 && v < depth) ? v : -1;
    }
    return absl::OkStatus();
  }, "OneHot indices");
  if (!st.ok()) return ctx.Error(st.message());

  Tensor* out = ctx.Output(0, values.dtype(), out_shape);
  return VisitAll(values.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T off = values.data<T>()[0];
    const T on = values.data<T>()[1];
    T* po = out->mutable_data<T>();
    std::fill(po, po + out->size(), off);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < inner; ++j) {
        const int64_t w = where[o * inner + j];
        if (w >= 0) po[(o * depth + w) * inner + j] = on;
      }
    }
    return absl::OkStatus();
  }, "OneHot values");
}

absl::Status InferOneHot(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.size() < 3) return absl::OkStatus();
  const TypeInfo& indices = ctx.input_types[0];
  const DType dtype = ctx.input_types[2].dtype;
  outputs[0] = TypeInfo::Tensor(dtype);
  if (!indices.has_shape) return absl::OkStatus();
  const int64_t out_rank = static_cast<int64_t>(indices.shape.size()) + 1;
  auto axis = NormalizeAxis(ctx.node.GetInt("axis", -1), out_rank);
  if (!axis.ok()) return axis.status();
  Dim depth{};
  if (ctx.constant_inputs.size() > 1 && ctx.constant_inputs[1] != nullptr) {
    auto d = ReadScalarDouble(*ctx.constant_inputs[1]);
    if (d.ok() && std::isfinite(*d) && *d >= 0 && *d < 9.0e15) depth = Dim{static_cast<int64_t>(*d), ""};
  }
  std::vector<Dim> dims = indices.shape;
  dims.insert(dims.begin() + *axis, depth);
  outputs[0] = TypeInfo::Tensor(dtype, std::move(dims));
  return absl::OkStatus();
}

// ---- Compress ------------------------------------------------------------------

absl::Status ComputeCompress(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const Tensor& cond = ctx.Input(1);
  if (cond.dtype() != DType::kBool) {
    return ctx.Error("condition must be bool, got ", DTypeName(cond.dtype()));
  }
  if (cond.rank() != 1) {
    return ctx.Error("condition must be 1-D, got shape ", ShapeToString(cond.shape()));
  }
  const bool has_axis = ctx.node().HasAttribute("axis");
  int axis = 0;
  int64_t outer = 1, n = x.size(), inner = 1;
  if (has_axis) {
    if (x.rank() < 1) return ctx.Error("axis is given but the input is a scalar");
    auto a = NormalizeAxis(ctx.node().GetInt("axis", 0), x.rank());
    if (!a.ok()) return ctx.Error(a.status().message());
    axis = static_cast<int>(*a);
    outer = NumElements(absl::MakeConstSpan(x.shape()).subspan(0, axis));
    n = x.dim(axis);
    inner = NumElements(absl::MakeConstSpan(x.shape()).subspan(axis + 1));
  }
  // Entries past the condition's length are dropped (ONNX); a true entry past
  // the input's length has nothing to select.
  const bool* c = cond.data<bool>();
  std::vector<int64_t> selected;
  for (int64_t i = 0; i < cond.size(); ++i) {
    if (!c[i]) continue;
    if (i >= n) {
      return ctx.Error("condition is true at position ", i, " but the input has only ", n,
                       has_axis ? absl::StrCat(" slices along axis ", axis) : std::string(" elements"));
    }
    selected.push_back(i);
  }
  const int64_t m = static_cast<int64_t>(selected.size());
  Shape out_shape = has_axis ? x.shape() : Shape{m};
  if (has_axis) out_shape[axis] = m;
  Tensor* out = ctx.Output(0, x.dtype(), out_shape);
  if (out->size() == 0) return absl::OkStatus();
  return VisitAll(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* po = out->mutable_data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t s = 0; s < m; ++s) {
        CopyElements(po + (o * m + s) * inner, px + (o * n + selected[s]) * inner, inner);
      }
    }
    return absl::OkStatus();
  }, "Compress");
}

absl::Status InferCompress(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.empty()) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  if (!ctx.node.HasAttribute("axis")) {
    outputs[0] = TypeInfo::Tensor(x.dtype, {Dim{}});
  } else if (x.has_shape && !x.shape.empty()) {
    auto axis = NormalizeAxis(ctx.node.GetInt("axis", 0), static_cast<int64_t>(x.shape.size()));
    if (!axis.ok()) return axis.status();
    std::vector<Dim> dims = x.shape;
    dims[*axis] = Dim{};
    outputs[0] = TypeInfo::Tensor(x.dtype, std::move(dims));
  } else {
    outputs[0] = TypeInfo::Tensor(x.dtype);
  }
  return absl::OkStatus();
}

// ---- NonMaxSuppression ---------------------------------------------------------

struct Box {
  float ymin, xmin, ymax, xmax;
  float area() const { return (ymax - ymin) * (xmax - xmin); }
};

// IoU > threshold; boxes with no area never suppress or get suppressed.
bool Overlaps(const Box& a, const Box& b, float threshold) {
  const float area_a = a.area(), area_b = b.area();
  if (area_a <= 0 || area_b <= 0) return false;
  const float h = std::min(a.ymax, b.ymax) - std::max(a.ymin, b.ymin);
  const float w = std::min(a.xmax, b.xmax) - std::max(a.xmin, b.xmin);
  if (h <= 0 || w <= 0) return false;
  const float inter = h * w;
  return inter / (area_a + area_b - inter) > threshold;
}

absl::Status ComputeNonMaxSuppression(KernelContext& ctx) {
  const Tensor& boxes_t = ctx.Input(0);
  const Tensor& scores_t = ctx.Input(1);
  if (boxes_t.rank() != 3 || boxes_t.dim(2) != 4) {
    return ctx.Error("boxes must have shape [num_batches, spatial_dimension, 4], got ",
                     ShapeToString(boxes_t.shape()));
  }
  if (scores_t.rank() != 3 || scores_t.dim(0) != boxes_t.dim(0) || scores_t.dim(2) != boxes_t.dim(1)) {
    return ctx.Error("scores must have shape [num_batches, num_classes, spatial_dimension] = [",
                     boxes_t.dim(0), ", C, ", boxes_t.dim(1), "], got ", ShapeToString(scores_t.shape()));
  }
  const int64_t center_point_box = ctx.node().GetInt("center_point_box", 0);
  if (center_point_box != 0 && center_point_box != 1) {
    return ctx.Error("center_point_box must be 0 or 1, got ", center_point_box);
  }
  int64_t max_out = 0;
  if (ctx.HasInput(2) && ctx.Input(2).size() > 0) {
    auto v = ReadScalarInt(ctx.Input(2));
    if (!v.ok()) return ctx.Error("max_output_boxes_per_class: ", v.status().message());
    max_out = std::max<int64_t>(*v, 0);
  }
  float iou_threshold = 0;
  if (ctx.HasInput(3) && ctx.Input(3).size() > 0) {
    auto v = ReadScalarDouble(ctx.Input(3));
    if (!v.ok()) return ctx.Error("iou_threshold: ", v.status().message());
    if (!(*v >= 0 && *v <= 1)) return ctx.Error("iou_threshold must be in [0, 1], got ", *v);
    iou_threshold = static_cast<float>(*v);
  }
  bool has_score_threshold = false;
  float score_threshold = 0;
  if (ctx.HasInput(4) && ctx.Input(4).size() > 0) {
    auto v = ReadScalarDouble(ctx.Input(4));
    if (!v.ok()) return ctx.Error("score_threshold: ", v.status().message());
    has_score_threshold = true;
    score_threshold = static_cast<float>(*v);
  }
  auto boxes_v = ReadDoubles(boxes_t);
  if (!boxes_v.ok()) return ctx.Error("boxes: ", boxes_v.status().message());
  auto scores_v = ReadDoubles(scores_t);
  if (!scores_v.ok()) return ctx.Error("scores: ", scores_v.status().message());

  const int64_t batches = boxes_t.dim(0), spatial = boxes_t.dim(1), classes = scores_t.dim(1);
  std::vector<Box> boxes(static_cast<size_t>(batches * spatial));
  for (size_t i = 0; i < boxes.size(); ++i) {
    const double* b = boxes_v->data() + i * 4;
    float y1, x1, y2, x2;
    if (center_point_box == 0) {
      y1 = static_cast<float>(b[0]), x1 = static_cast<float>(b[1]);
      y2 = static_cast<float>(b[2]), x2 = static_cast<float>(b[3]);
    } else {
      const float xc = static_cast<float>(b[0]), yc = static_cast<float>(b[1]);
      const float w = static_cast<float>(b[2]), h = static_cast<float>(b[3]);
      x1 = xc - w / 2, x2 = xc + w / 2, y1 = yc - h / 2, y2 = yc + h / 2;
    }
    boxes[i] = Box{std::min(y1, y2), std::min(x1, x2), std::max(y1, y2), std::max(x1, x2)};
  }

  std::vector<int64_t> result;  // triples (batch, class, box)
  std::vector<std::pair<float, int64_t>> candidates;
  std::vector<int64_t> kept;
  for (int64_t b = 0; b < batches && max_out > 0; ++b) {
    for (int64_t c = 0; c < classes; ++c) {
      const double* s = scores_v->data() + (b * classes + c) * spatial;
      candidates.clear();
      for (int64_t i = 0; i < spatial; ++i) {
        const float score = static_cast<float>(s[i]);
        if (std::isnan(score)) continue;
        if (has_score_threshold && !(score > score_threshold)) continue;
        candidates.emplace_back(score, i);
      }
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const auto& x, const auto& y) { return x.first > y.first; });
      kept.clear();
      for (const auto& [score, i] : candidates) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        const Box& box = boxes[b * spatial + i];
        bool suppressed = false;
        for (int64_t k : kept) {
          if (Overlaps(boxes[b * spatial + k], box, iou_threshold)) {
            suppressed = true;
            break;
          }
        }
        if (suppressed) continue;
        kept.push_back(i);
        result.insert(result.end(), {b, c, i});
      }
    }
  }
  const int64_t selected = static_cast<int64_t>(result.size() / 3);
  Tensor* out = ctx.Output(0, DType::kInt64, Shape{selected, 3});
  CopyElements(out->mutable_data<int64_t>(), result.data(), static_cast<int64_t>(result.size()));
  return absl::OkStatus();
}

absl::Status InferNonMaxSuppression(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (!outputs.empty()) outputs[0] = TypeInfo::Tensor(DType::kInt64, {Dim{}, Dim{3, ""}});
  return absl::OkStatus();
}

constexpr DTypeSet kTopKTypes = kNumericTypes;
constexpr DTypeSet kSortableTypes = kNumericTypes | Bit(DType::kBool) | Bit(DType::kString);
constexpr DTypeSet kNmsTypes = kFloatTypes;

const OpTableRegistration kIndexingOps({
    // TopK-1: k attribute; TopK-10: K input; TopK-11: largest/sorted, more types.
    {.name = "TopK", .since = 1, .until = 9, .types = kFloatTypes, .infer = InferTopK,
     .compute = ComputeTopK},
    {.name = "TopK", .since = 10, .until = 10, .types = kFloatTypes, .infer = InferTopK,
     .compute = ComputeTopK},
    {.name = "TopK", .since = 11, .types = kTopKTypes, .infer = InferTopK, .compute = ComputeTopK},
    {.name = "NonZero", .since = 9, .infer = InferNonZero, .compute = ComputeNonZero},
    {.name = "Unique", .since = 11, .types = kSortableTypes, .infer = InferUnique,
     .compute = ComputeUnique},
    // OneHot-9/11: 11 documents negative indices and axis, accepted here throughout.
    {.name = "OneHot", .since = 9, .types = kNumericTypes, .infer = InferOneHot,
     .compute = ComputeOneHot},
    // Compress-9/11: 11 adds negative axis, accepted here throughout.
    {.name = "Compress", .since = 9, .infer = InferCompress, .compute = ComputeCompress},
    {.name = "NonMaxSuppression", .since = 10, .types = kNmsTypes,
     .infer = InferNonMaxSuppression, .compute = ComputeNonMaxSuppression},
});

}  // namespace
}  // namespace hepml::ops
