// Linear algebra operators: MatMul, Gemm, Einsum, Det, and the GEMM routine
// (GemmRowMajor, see linalg.h) that the conv family shares.
#include "ops/linalg.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "ops/epilogue.h"
#include "ops/gemm.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// Error unless inputs [0, n) are all present.
absl::Status RequireInputs(const KernelContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is required");
  }
  return absl::OkStatus();
}


// ---------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------

// Arithmetic type of the GEMM loops: unsigned for integers so that overflow
// wraps (signed overflow is undefined behaviour); same bits, same results.
template <typename T, bool = std::is_integral_v<T>>
struct GemmArithOf {
  using type = T;
};
template <typename T>
struct GemmArithOf<T, true> {
  using type = std::make_unsigned_t<T>;
};
template <typename T>
using GemmArith = typename GemmArithOf<T>::type;

// Cache blocking: a kBlockK x kBlockN panel of B (256 KiB of floats) stays in
// L2 while every row of the row range streams over it.
constexpr int64_t kBlockK = 128;
constexpr int64_t kBlockN = 512;

// c_r[j] += a_r * b[j] for four rows r at once: each B element loaded once
// feeds four accumulations. The fixed-width inner blocks let the compiler's
// straight-line (SLP) vectoriser use SIMD at -O2.
constexpr int64_t kLanes = 8;

template <typename T>
inline void Axpy4(int64_t n, T a0, T a1, T a2, T a3, const T* __restrict b, T* __restrict c0,
                  T* __restrict c1, T* __restrict c2, T* __restrict c3) {
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t u = 0; u < kLanes; ++u) {
      const T bv = b[j + u];
      c0[j + u] += a0 * bv;
      c1[j + u] += a1 * bv;
      c2[j + u] += a2 * bv;
      c3[j + u] += a3 * bv;
    }
  }
  for (; j < n; ++j) {
    const T bv = b[j];
    c0[j] += a0 * bv;
    c1[j] += a1 * bv;
    c2[j] += a2 * bv;
    c3[j] += a3 * bv;
  }
}

template <typename T>
inline void Axpy1(int64_t n, T a0, const T* __restrict b, T* __restrict c0) {
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t u = 0; u < kLanes; ++u) c0[j + u] += a0 * b[j + u];
  }
  for (; j < n; ++j) c0[j] += a0 * b[j];
}

// C[i0:i1, j0:j1] = alpha * op(A) * B + beta * C for B row-major k x n (ldb).
template <typename T>
void GemmTile(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t k, T alpha, const T* a,
              int64_t lda, bool trans_a, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  for (int64_t i = i0; i < i1; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0)) {
      std::fill(row + j0, row + j1, T(0));
    } else if (beta != T(1)) {
      for (int64_t j = j0; j < j1; ++j) row[j] *= beta;
    }
  }
  if (k == 0) return;
  auto a_at = [&](int64_t i, int64_t p) -> T {
    return alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
  };
  for (int64_t kb = 0; kb < k; kb += kBlockK) {
    const int64_t ke = std::min(k, kb + kBlockK);
    for (int64_t jb = j0; jb < j1; jb += kBlockN) {
      const int64_t nj = std::min(j1, jb + kBlockN) - jb;
      int64_t i = i0;
      for (; i + 4 <= i1; i += 4) {
        T* c0 = c + i * ldc + jb;
        for (int64_t p = kb; p < ke; ++p) {
          Axpy4<T>(nj, a_at(i, p), a_at(i + 1, p), a_at(i + 2, p), a_at(i + 3, p),
                   b + p * ldb + jb, c0, c0 + ldc, c0 + 2 * ldc, c0 + 3 * ldc);
        }
      }
      for (; i < i1; ++i) {
        T* c0 = c + i * ldc + jb;
        for (int64_t p = kb; p < ke; ++p) Axpy1<T>(nj, a_at(i, p), b + p * ldb + jb, c0);
      }
    }
  }
}

// Multiply-adds below which a GEMM runs on the calling thread.
constexpr int64_t kParallelWork = int64_t{1} << 17;

template <typename T>
void GemmImpl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
              int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
              const KernelContext* ctx) {
  if (m <= 0 || n <= 0) return;
  std::vector<T> packed;
  if (trans_b && k > 0) {
    // The i-k-j loop reads rows of B: transpose it once into a k x n panel.
    packed.resize(static_cast<size_t>(k * n));
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) packed[p * n + j] = b[j * ldb + p];
    b = packed.data();
    ldb = n;
  }
  auto tile = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    GemmTile<T>(i0, i1, j0, j1, k, alpha, a, lda, trans_a, b, ldb, beta, c, ldc);
  };
  const int64_t work = m * n * std::max<int64_t>(k, 1);
  if (ctx == nullptr || work < kParallelWork) {
    tile(0, m, 0, n);
  } else if (m >= 32 || n < 256) {
    const int64_t grain = std::max<int64_t>(4, kParallelWork / (n * std::max<int64_t>(k, 1)));
    ctx->ParallelFor(0, m, grain, [&](int64_t lo, int64_t hi) { tile(lo, hi, 0, n); });
  } else {
    // Few rows (a matrix-vector product, a thin batch): split the columns.
    constexpr int64_t kCols = 64;
    const int64_t blocks = (n + kCols - 1) / kCols;
    ctx->ParallelFor(0, blocks, 1, [&](int64_t lo, int64_t hi) {
      tile(0, m, lo * kCols, std::min(n, hi * kCols));
    });
  }
}

}  // namespace

template <typename T>
void GemmRowMajor(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                  const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
                  const KernelContext* ctx) {
  if constexpr (std::is_same_v<T, float>) {
    // fp32: the packed, vectorised engine of gemm.h.
    GemmF32(trans_a, trans_b, m, n, k, alpha, a, lda, nullptr, b, ldb, nullptr, beta, c, ldc, ctx);
  } else {
    using A = GemmArith<T>;
    GemmImpl<A>(trans_a, trans_b, m, n, k, static_cast<A>(alpha), reinterpret_cast<const A*>(a),
                lda, reinterpret_cast<const A*>(b), ldb, static_cast<A>(beta),
                reinterpret_cast<A*>(c), ldc, ctx);
  }
}

template void GemmRowMajor<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                  int64_t, const float*, int64_t, float, float*, int64_t,
                                  const KernelContext*);
template void GemmRowMajor<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                   int64_t, const double*, int64_t, double, double*, int64_t,
                                   const KernelContext*);
template void GemmRowMajor<int32_t>(bool, bool, int64_t, int64_t, int64_t, int32_t,
                                    const int32_t*, int64_t, const int32_t*, int64_t, int32_t,
                                    int32_t*, int64_t, const KernelContext*);
template void GemmRowMajor<int64_t>(bool, bool, int64_t, int64_t, int64_t, int64_t,
                                    const int64_t*, int64_t, const int64_t*, int64_t, int64_t,
                                    int64_t*, int64_t, const KernelContext*);
template void GemmRowMajor<uint32_t>(bool, bool, int64_t, int64_t, int64_t, uint32_t,
                                     const uint32_t*, int64_t, const uint32_t*, int64_t,
                                     uint32_t, uint32_t*, int64_t, const KernelContext*);
template void GemmRowMajor<uint64_t>(bool, bool, int64_t, int64_t, int64_t, uint64_t,
                                     const uint64_t*, int64_t, const uint64_t*, int64_t,
                                     uint64_t, uint64_t*, int64_t, const KernelContext*);

namespace {

constexpr DTypeSet kGemmIntTypes = Bit(DType::kInt32) | Bit(DType::kInt64) |
                                   Bit(DType::kUInt32) | Bit(DType::kUInt64);

// Visits the dtypes a GEMM-based operator takes: the floats and the four
// wide integer types.
template <typename F>
absl::Status VisitGemmTypes(DType d, F&& f) {
  switch (d) {
    case DType::kInt32: return f(TypeTag<int32_t>{});
    case DType::kInt64: return f(TypeTag<int64_t>{});
    case DType::kUInt32: return f(TypeTag<uint32_t>{});
    case DType::kUInt64: return f(TypeTag<uint64_t>{});
    default: return VisitFloat(d, f);
  }
}

// Broadcasts two symbolic dims; an unknown result where it cannot tell.
Dim BroadcastDim(const Dim& a, const Dim& b) {
  if (a.known() && a.value == 1) return b;
  if (b.known() && b.value == 1) return a;
  if (a.known()) return a;
  if (b.known()) return b;
  if (!a.param.empty() && a.param == b.param) return a;
  return Dim{};
}

// ---------------------------------------------------------------------------
// MatMul
// ---------------------------------------------------------------------------

absl::Status InferMatMul(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() < 2 || outputs.empty()) return absl::OkStatus();
  const TypeInfo& a = ctx.input_types[0];
  const TypeInfo& b = ctx.input_types[1];
  outputs[0] = TypeInfo::Tensor(a.dtype);
  if (!a.has_shape || !b.has_shape) return absl::OkStatus();
  if (a.shape.empty() || b.shape.empty()) {
    return absl::InvalidArgumentError("MatMul inputs must have rank >= 1");
  }
  std::vector<Dim> sa = a.shape, sb = b.shape;
  const bool a_vec = sa.size() == 1, b_vec = sb.size() == 1;
  if (a_vec) sa.insert(sa.begin(), Dim{1, ""});
  if (b_vec) sb.push_back(Dim{1, ""});
  const Dim& ka = sa.back();
  const Dim& kb = sb[sb.size() - 2];
  if (ka.known() && kb.known() && ka.value != kb.value) {
    return absl::InvalidArgumentError(
        absl::StrCat("MatMul inner dimensions differ: ", ka.value, " vs ", kb.value));
  }
  const size_t ba = sa.size() - 2, bb = sb.size() - 2, rank = std::max(ba, bb);
  std::vector<Dim> out(rank, Dim{1, ""});
  for (size_t d = 0; d < rank; ++d) {
    Dim x = d + ba >= rank ? sa[d + ba - rank] : Dim{1, ""};
    Dim y = d + bb >= rank ? sb[d + bb - rank] : Dim{1, ""};
    if (x.known() && y.known() && x.value != y.value && x.value != 1 && y.value != 1) {
      return absl::InvalidArgumentError("MatMul batch dimensions cannot be broadcast");
    }
    out[d] = BroadcastDim(x, y);
  }
  if (!a_vec) out.push_back(sa[sa.size() - 2]);
  if (!b_vec) out.push_back(sb.back());
  outputs[0] = TypeInfo::Tensor(a.dtype, std::move(out));
  return absl::OkStatus();
}

// The shapes of one batched matrix product: out[batch..., m, n] =
// a[batch_a..., m, k] x b[batch_b..., k, n] with numpy broadcasting.
struct MatMulShape {
  Shape out_shape;
  Shape batch;  // broadcast batch dims
  int64_t m = 1, n = 1, k = 1;
  Shape a_batch, b_batch;  // the operands' own batch dims
};

absl::StatusOr<MatMulShape> PlanMatMul(const Shape& a_in, const Shape& b_in) {
  if (a_in.empty() || b_in.empty()) {
    return absl::InvalidArgumentError("MatMul inputs must have rank >= 1 (got a scalar)");
  }
  Shape a = a_in, b = b_in;
  const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), 1);
  if (b_vec) b.push_back(1);
  MatMulShape s;
  s.m = a[a.size() - 2];
  s.k = a.back();
  s.n = b.back();
  if (b[b.size() - 2] != s.k) {
    return absl::InvalidArgumentError(absl::StrCat("MatMul inner dimensions differ: ",
                                                   ShapeToString(a_in), " x ",
                                                   ShapeToString(b_in)));
  }
  s.a_batch.assign(a.begin(), a.end() - 2);
  s.b_batch.assign(b.begin(), b.end() - 2);
  auto batch = BroadcastShapes(s.a_batch, s.b_batch);
  if (!batch.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("MatMul batch dimensions of ",
                                                   ShapeToString(a_in), " and ",
                                                   ShapeToString(b_in), " cannot be broadcast"));
  }
  s.batch = *batch;
  s.out_shape = s.batch;
  if (!a_vec) s.out_shape.push_back(s.m);
  if (!b_vec) s.out_shape.push_back(s.n);
  return s;
}

// Prepared state of MatMul and Gemm: the constant right operand op(B),
// packed once for the fp32 kernels. Absent for other types and for
// operands that are only known at run time.
// Gemm's (and FusedGemm's) state also holds the attributes, read once: a
// per-call attribute lookup is a string search, which costs more than a
// small layer's arithmetic.
struct GemmAttrs {
  bool trans_a = false, trans_b = false;
  float alpha = 1.0f, beta = 1.0f;
};
GemmAttrs ReadGemmAttrs(const Node& node) {
  return {node.GetInt("transA", 0) != 0, node.GetInt("transB", 0) != 0, node.GetFloat("alpha", 1.0f),
          node.GetFloat("beta", 1.0f)};
}

struct PackedWeightState final : KernelState {
  bool has_b = false;
  PackedB b;
  std::optional<GemmAttrs> gemm;
  std::optional<ActivationSpec> act;
};

const PackedWeightState* WeightState(const KernelContext& ctx) {
  return ctx.state() == nullptr ? nullptr : &ctx.state_as<PackedWeightState>();
}

// The packed op(B) of this node, or null.
const PackedB* PackedWeight(const KernelContext& ctx) {
  const PackedWeightState* s = WeightState(ctx);
  return s != nullptr && s->has_b ? &s->b : nullptr;
}

absl::StatusOr<std::unique_ptr<KernelState>> PrepareMatMul(const PrepareContext& ctx) {
  std::unique_ptr<KernelState> none;
  if (ctx.constant_inputs.size() < 2 || ctx.constant_inputs[1] == nullptr) return none;
  const Tensor& b = *ctx.constant_inputs[1];
  // A 1-D B is a k x 1 matrix; batched B (rank > 2) is not packed.
  if (b.dtype() != DType::kFloat32 || b.rank() < 1 || b.rank() > 2 || b.size() == 0) return none;
  const int64_t k = b.dim(0), n = b.rank() == 2 ? b.dim(1) : 1;
  auto state = std::make_unique<PackedWeightState>();
  state->has_b = true;
  state->b = PackedB::Pack(false, k, n, b.data<float>(), n);
  return state;
}

template <typename T>
absl::Status MatMulTyped(KernelContext& ctx, const MatMulShape& s) {
  using C = ComputeT<T>;
  const Tensor& a = ctx.Input(0);
  const Tensor& b = ctx.Input(1);
  Tensor* out = ctx.Output(0, a.dtype(), s.out_shape);
  if (out->size() == 0) return absl::OkStatus();
  ComputeView<T> va(a), vb(b);
  ComputeOutput<T> vo(out);
  const C* pa = va.data();
  const C* pb = vb.data();
  C* po = vo.data();
  const int64_t m = s.m, n = s.n, k = s.k;
  const int64_t batches = NumElements(s.batch);
  if (NumElements(s.b_batch) == 1 && NumElements(s.a_batch) == batches) {
    // B is one matrix for every batch and A's batches are contiguous: one
    // tall GEMM (the Linear layer on a [batch, seq, features] input).
    const PackedB* packed = PackedWeight(ctx);
    if constexpr (std::is_same_v<C, float>) {
      if (packed != nullptr && packed->k() == k && packed->n() == n) {
        GemmF32(false, false, batches * m, n, k, 1.0f, pa, k, nullptr, nullptr, n, packed, 0.0f,
                po, n, &ctx);
        vo.Finish();
        return absl::OkStatus();
      }
    }
    GemmRowMajor<C>(false, false, batches * m, n, k, C(1), pa, k, pb, n, C(0), po, n, &ctx);
  } else {
    const Shape sa = BroadcastStrides(s.a_batch, s.batch);
    const Shape sb = BroadcastStrides(s.b_batch, s.batch);
    const Shape out_strides = Strides(s.batch);
    auto one = [&](int64_t bi, const KernelContext* gemm_ctx) {
      int64_t oa = 0, ob = 0, rest = bi;
      for (size_t d = 0; d < s.batch.size(); ++d) {
        const int64_t coord = rest / out_strides[d];
        rest %= out_strides[d];
        oa += coord * sa[d];
        ob += coord * sb[d];
      }
      GemmRowMajor<C>(false, false, m, n, k, C(1), pa + oa * m * k, k, pb + ob * k * n, n, C(0),
                      po + bi * m * n, n, gemm_ctx);
    };
    const int64_t per = m * n * std::max<int64_t>(k, 1);
    if (batches >= 4 && per < (int64_t{1} << 20)) {
      // Many small products: one thread per group of batches.
      const int64_t grain = std::max<int64_t>(1, kParallelWork / per);
      ctx.ParallelFor(0, batches, grain, [&](int64_t lo, int64_t hi) {
        for (int64_t bi = lo; bi < hi; ++bi) one(bi, nullptr);
      });
    } else {
      for (int64_t bi = 0; bi < batches; ++bi) one(bi, &ctx);
    }
  }
  vo.Finish();
  return absl::OkStatus();
}

absl::Status ComputeMatMul(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 2); !st.ok()) return st;
  const Tensor& a = ctx.Input(0);
  const Tensor& b = ctx.Input(1);
  if (a.dtype() != b.dtype()) {
    return ctx.Error("inputs have different types: ", DTypeName(a.dtype()), " and ",
                     DTypeName(b.dtype()));
  }
  auto plan = PlanMatMul(a.shape(), b.shape());
  if (!plan.ok()) return ctx.Error(plan.status().message());
  return VisitGemmTypes(a.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    return MatMulTyped<T>(ctx, *plan);
  });
}

// ---------------------------------------------------------------------------
// Gemm
// ---------------------------------------------------------------------------

absl::Status InferGemm(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() < 2 || outputs.empty()) return absl::OkStatus();
  const TypeInfo& a = ctx.input_types[0];
  const TypeInfo& b = ctx.input_types[1];
  outputs[0] = TypeInfo::Tensor(a.dtype);
  if (!a.has_shape || !b.has_shape) return absl::OkStatus();
  if (a.shape.size() != 2 || b.shape.size() != 2) {
    return absl::InvalidArgumentError("Gemm inputs A and B must be 2-D");
  }
  const bool ta = ctx.node.GetInt("transA", 0) != 0, tb = ctx.node.GetInt("transB", 0) != 0;
  outputs[0] = TypeInfo::Tensor(a.dtype, {a.shape[ta ? 1 : 0], b.shape[tb ? 0 : 1]});
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<Tensor*> GemmTyped(KernelContext& ctx, const GemmAttrs& attrs, int64_t m, int64_t n,
                                  int64_t k, Shape out_shape) {
  using C = ComputeT<T>;
  const bool trans_a = attrs.trans_a, trans_b = attrs.trans_b;
  const Tensor& a = ctx.Input(0);
  const Tensor& b = ctx.Input(1);
  const bool has_c = ctx.HasInput(2);
  const float alpha = attrs.alpha;
  float beta = attrs.beta;
  Tensor* out = ctx.Output(0, a.dtype(), std::move(out_shape));
  if (out->size() == 0) return out;
  ComputeOutput<T> vo(out);
  C* po = vo.data();
  if (!has_c) beta = 0.0f;
  std::optional<ComputeView<T>> vc;
  const C* row_bias = nullptr;  // C as one row broadcast over all rows
  if (beta != 0.0f) {
    const Tensor& c = ctx.Input(2);
    vc.emplace(c);
    const C* pc = vc->data();
    // Unidirectional broadcast of C to [m, n]: its dims are 1 or match.
    const int64_t cr = c.rank() == 2 ? c.dim(0) : 1;
    const int64_t cc = c.rank() >= 1 ? c.dim(c.rank() - 1) : 1;
    const int64_t rs = cr == 1 ? 0 : cc, cs = cc == 1 ? 0 : 1;
    if (std::is_same_v<C, float> && cr == 1 && cc == n) {
      row_bias = pc;  // the fp32 GEMM adds it in its epilogue
    } else {
      for (int64_t i = 0; i < m; ++i) {
        C* row = po + i * n;
        if (cs == 1) {
          std::copy(pc + i * rs, pc + i * rs + n, row);
        } else {
          std::fill(row, row + n, pc[i * rs]);
        }
      }
    }
  }
  ComputeView<T> va(a), vb(b);
  if constexpr (std::is_same_v<C, float>) {
    const PackedB* packed = PackedWeight(ctx);
    if (packed == nullptr || packed->k() != k || packed->n() != n) packed = nullptr;
    GemmF32(trans_a, trans_b, m, n, k, alpha, va.data(), a.dim(a.rank() - 1), nullptr, vb.data(), b.dim(1),
            packed, beta, po, n, &ctx, row_bias);
  } else {
    GemmRowMajor<C>(trans_a, trans_b, m, n, k, static_cast<C>(alpha), va.data(), a.dim(a.rank() - 1),
                    vb.data(), b.dim(1), static_cast<C>(beta), po, n, &ctx);
  }
  vo.Finish();
  return out;
}

absl::StatusOr<std::unique_ptr<KernelState>> PrepareGemm(const PrepareContext& ctx) {
  auto state = std::make_unique<PackedWeightState>();
  state->gemm = ReadGemmAttrs(ctx.node);
  // The activation of FusedGemm (none for Gemm); a bad one is reported by
  // the kernel, as it would be without a prepare step.
  if (auto act = ParseActivation(ctx.node); act.ok()) state->act = *act;
  if (ctx.constant_inputs.size() < 2 || ctx.constant_inputs[1] == nullptr) return state;
  const Tensor& b = *ctx.constant_inputs[1];
  if (b.dtype() != DType::kFloat32 || b.rank() != 2 || b.size() == 0) return state;
  const bool trans_b = state->gemm->trans_b;
  const int64_t k = trans_b ? b.dim(1) : b.dim(0), n = trans_b ? b.dim(0) : b.dim(1);
  state->has_b = true;
  state->b = PackedB::Pack(trans_b, k, n, b.data<float>(), b.dim(1));
  return state;
}

absl::Status ComputeGemm(KernelContext& ctx) {
  if (!ctx.HasInput(2) && ctx.opset() < 11) return ctx.Error("input C is required before opset 11");
  return RunGemm(ctx, false).status();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KernelState>> PrepareGemmWeights(const PrepareContext& ctx) {
  return PrepareGemm(ctx);
}

absl::StatusOr<ActivationSpec> GemmActivation(const KernelContext& ctx) {
  const PackedWeightState* state = WeightState(ctx);
  if (state != nullptr && state->act) return *state->act;
  return ParseActivation(ctx.node());
}

absl::StatusOr<Tensor*> RunGemm(KernelContext& ctx, bool flatten_a) {
  if (auto st = RequireInputs(ctx, 2); !st.ok()) return st;
  const Tensor& a = ctx.Input(0);
  const Tensor& b = ctx.Input(1);
  const PackedWeightState* state = WeightState(ctx);
  const GemmAttrs attrs = state != nullptr && state->gemm ? *state->gemm : ReadGemmAttrs(ctx.node());
  const bool trans_a = attrs.trans_a, trans_b = attrs.trans_b;
  const bool flat = flatten_a && !trans_a && a.rank() > 2;
  if ((a.rank() != 2 && !flat) || b.rank() != 2) {
    return ctx.Error("A and B must be 2-D, got ", ShapeToString(a.shape()), " and ",
                     ShapeToString(b.shape()));
  }
  if (a.dtype() != b.dtype()) {
    return ctx.Error("inputs have different types: ", DTypeName(a.dtype()), " and ",
                     DTypeName(b.dtype()));
  }
  const int64_t k = trans_a ? a.dim(0) : a.dim(a.rank() - 1);
  const int64_t m = trans_a ? a.dim(1) : (k == 0 ? NumElements(Shape(a.shape().begin(), a.shape().end() - 1)) : a.size() / k);
  const int64_t kb = trans_b ? b.dim(1) : b.dim(0);
  const int64_t n = trans_b ? b.dim(0) : b.dim(1);
  if (k != kb) {
    return ctx.Error("inner dimensions differ: op(A) is ", m, "x", k, ", op(B) is ", kb, "x", n);
  }
  if (ctx.HasInput(2)) {
    const Tensor& c = ctx.Input(2);
    if (c.dtype() != a.dtype()) {
      return ctx.Error("C has type ", DTypeName(c.dtype()), ", A has ", DTypeName(a.dtype()));
    }
    bool ok = c.rank() <= 2;
    if (ok && c.rank() >= 1) ok = c.dim(c.rank() - 1) == 1 || c.dim(c.rank() - 1) == n;
    if (ok && c.rank() == 2) ok = c.dim(0) == 1 || c.dim(0) == m;
    if (!ok) {
      return ctx.Error("C of shape ", ShapeToString(c.shape()), " cannot be broadcast to [", m,
                       ",", n, "]");
    }
  }
  Shape out_shape(a.shape().begin(), a.shape().end() - 1);
  if (!flat) out_shape = {m};
  out_shape.push_back(n);
  Tensor* result = nullptr;
  absl::Status st = VisitGemmTypes(a.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    auto out = GemmTyped<T>(ctx, attrs, m, n, k, out_shape);
    if (!out.ok()) return out.status();
    result = *out;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return result;
}

namespace {

// ---------------------------------------------------------------------------
// Einsum
// ---------------------------------------------------------------------------

// A parsed equation. Labels are letters; the ellipsis of each operand is
// expanded into synthetic labels (ids >= 52, right-aligned like numpy).
struct EinsumPlan {
  int num_labels = 0;
  std::vector<int64_t> label_dim;
  std::vector<std::vector<int64_t>> operand_strides;  // [operand][label], 0 if absent
  std::vector<int> out_labels;
  std::vector<int> sum_labels;
  Shape out_shape;
};

int LetterId(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -1;
}

// One term: its labels in order, -1 marking where the ellipsis stands.
absl::StatusOr<std::vector<int>> ParseTerm(const std::string& term) {
  std::vector<int> labels;
  bool ellipsis = false;
  for (size_t i = 0; i < term.size(); ++i) {
    if (term[i] == '.') {
      if (ellipsis || term.compare(i, 3, "...") != 0) {
        return absl::InvalidArgumentError(absl::StrCat("bad ellipsis in term '", term, "'"));
      }
      ellipsis = true;
      labels.push_back(-1);
      i += 2;
      continue;
    }
    const int id = LetterId(term[i]);
    if (id < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad character '", std::string(1, term[i]),
                                                     "' in term '", term, "'"));
    }
    labels.push_back(id);
  }
  return labels;
}

absl::StatusOr<EinsumPlan> PlanEinsum(std::string equation, const std::vector<const Tensor*>& in) {
  equation.erase(std::remove_if(equation.begin(), equation.end(),
                                [](unsigned char c) { return std::isspace(c); }),
                 equation.end());
  std::string lhs = equation, rhs;
  const size_t arrow = equation.find("->");
  const bool explicit_out = arrow != std::string::npos;
  if (explicit_out) {
    lhs = equation.substr(0, arrow);
    rhs = equation.substr(arrow + 2);
  }
  std::vector<std::vector<int>> terms;
  size_t start = 0;
  while (true) {
    const size_t comma = lhs.find(',', start);
    auto t = ParseTerm(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!t.ok()) return t.status();
    terms.push_back(*t);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != in.size()) {
    return absl::InvalidArgumentError(absl::StrCat("equation has ", terms.size(),
                                                   " input terms for ", in.size(), " inputs"));
  }
  // Ellipsis rank per operand and the broadcast ellipsis shape.
  Shape ell_shape;
  std::vector<int64_t> ell_rank(in.size(), 0);
  for (size_t o = 0; o < in.size(); ++o) {
    const int64_t letters = std::count_if(terms[o].begin(), terms[o].end(), [](int l) { return l >= 0; });
    const bool has_ell = letters != static_cast<int64_t>(terms[o].size());
    const int64_t rank = in[o]->rank();
    if (has_ell ? rank < letters : rank != letters) {
      return absl::InvalidArgumentError(absl::StrCat("input ", o, " has rank ", rank,
                                                     ", its term has ", letters, " labels"));
    }
    ell_rank[o] = rank - letters;
    Shape es;
    if (has_ell) {
      size_t pos = std::find(terms[o].begin(), terms[o].end(), -1) - terms[o].begin();
      es.assign(in[o]->shape().begin() + pos, in[o]->shape().begin() + pos + ell_rank[o]);
    }
    auto b = BroadcastShapes(ell_shape, es);
    if (!b.ok()) return absl::InvalidArgumentError("ellipsis dimensions cannot be broadcast");
    ell_shape = *b;
  }
  const int num_ell = static_cast<int>(ell_shape.size());
  EinsumPlan plan;
  plan.num_labels = 52 + num_ell;
  plan.label_dim.assign(plan.num_labels, -1);
  for (int e = 0; e < num_ell; ++e) plan.label_dim[52 + e] = ell_shape[e];
  std::vector<int> count(plan.num_labels, 0);
  plan.operand_strides.assign(in.size(), std::vector<int64_t>(plan.num_labels, 0));
  for (size_t o = 0; o < in.size(); ++o) {
    const Shape& shape = in[o]->shape();
    const Shape strides = Strides(shape);
    int axis = 0;
    for (int l : terms[o]) {
      if (l < 0) {
        for (int64_t e = 0; e < ell_rank[o]; ++e, ++axis) {
          const int id = 52 + num_ell - static_cast<int>(ell_rank[o]) + static_cast<int>(e);
          if (shape[axis] != 1) plan.operand_strides[o][id] += strides[axis];
        }
        continue;
      }
      ++count[l];
      int64_t& dim = plan.label_dim[l];
      if (dim < 0 || dim == 1) {
        dim = shape[axis];
      } else if (shape[axis] != dim && shape[axis] != 1) {
        return absl::InvalidArgumentError(absl::StrCat("label '", std::string(1, l < 26 ? 'a' + l : 'A' + l - 26),
                                                       "' has sizes ", dim, " and ", shape[axis]));
      }
      if (shape[axis] != 1) plan.operand_strides[o][l] += strides[axis];
      ++axis;
    }
  }
  // Size-1 dims of a label that is larger elsewhere broadcast: stride 0 is
  // right for them, but a repeated label mixing 1 and n is not a diagonal.
  std::vector<bool> in_out(plan.num_labels, false);
  if (explicit_out) {
    auto out_terms = ParseTerm(rhs);
    if (!out_terms.ok()) return out_terms.status();
    for (int l : *out_terms) {
      if (l < 0) {
        for (int e = 0; e < num_ell; ++e) {
          plan.out_labels.push_back(52 + e);
          in_out[52 + e] = true;
        }
        continue;
      }
      if (count[l] == 0) {
        return absl::InvalidArgumentError(absl::StrCat("output label '", std::string(1, l < 26 ? 'a' + l : 'A' + l - 26),
                                                       "' is not in any input"));
      }
      if (in_out[l]) return absl::InvalidArgumentError("output repeats a label");
      in_out[l] = true;
      plan.out_labels.push_back(l);
    }
  } else {
    for (int e = 0; e < num_ell; ++e) {
      plan.out_labels.push_back(52 + e);
      in_out[52 + e] = true;
    }
    // numpy order: upper case letters sort before lower case.
    for (int l = 26; l < 52; ++l)
      if (count[l] == 1) plan.out_labels.push_back(l), in_out[l] = true;
    for (int l = 0; l < 26; ++l)
      if (count[l] == 1) plan.out_labels.push_back(l), in_out[l] = true;
  }
  for (int l = 0; l < plan.num_labels; ++l) {
    if (in_out[l]) continue;
    if (l < 52 ? count[l] > 0 : true) plan.sum_labels.push_back(l);
  }
  for (int l : plan.out_labels) plan.out_shape.push_back(plan.label_dim[l]);
  return plan;
}

template <typename T>
absl::Status EinsumTyped(KernelContext& ctx, const EinsumPlan& plan) {
  // Integers accumulate in uint64 (wrapping, as numpy does); floats in ComputeT.
  using Acc = std::conditional_t<std::is_integral_v<T>, uint64_t, ComputeT<T>>;
  const size_t n_in = ctx.num_inputs();
  Tensor* out = ctx.Output(0, ctx.Input(0).dtype(), plan.out_shape);
  T* po = out->mutable_data<T>();
  const int64_t total = out->size();
  if (total == 0) return absl::OkStatus();
  std::vector<const T*> data(n_in);
  for (size_t o = 0; o < n_in; ++o) data[o] = ctx.Input(o).data<T>();
  const size_t n_out = plan.out_labels.size(), n_sum = plan.sum_labels.size();
  Shape sum_dims;
  int64_t sum_total = 1;
  for (int l : plan.sum_labels) {
    sum_dims.push_back(plan.label_dim[l]);
    sum_total *= plan.label_dim[l];
  }
  // stride[o][d]: operand o's step along output dim d / summed dim d.
  std::vector<std::vector<int64_t>> out_stride(n_in), sum_stride(n_in);
  for (size_t o = 0; o < n_in; ++o) {
    for (int l : plan.out_labels) out_stride[o].push_back(plan.operand_strides[o][l]);
    for (int l : plan.sum_labels) sum_stride[o].push_back(plan.operand_strides[o][l]);
  }
  const Shape out_strides = Strides(plan.out_shape);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(sum_total, 1));
  ctx.ParallelFor(0, total, grain, [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> base(n_in), off(n_in), coord(n_sum);
    for (int64_t oi = lo; oi < hi; ++oi) {
      std::fill(base.begin(), base.end(), 0);
      int64_t rest = oi;
      for (size_t d = 0; d < n_out; ++d) {
        const int64_t c = rest / out_strides[d];
        rest %= out_strides[d];
        for (size_t o = 0; o < n_in; ++o) base[o] += c * out_stride[o][d];
      }
      Acc acc = Acc(0);
      if (sum_total > 0) {
        off = base;
        std::fill(coord.begin(), coord.end(), 0);
        for (int64_t s = 0; s < sum_total; ++s) {
          Acc prod = static_cast<Acc>(static_cast<ComputeT<T>>(data[0][off[0]]));
          for (size_t o = 1; o < n_in; ++o) prod *= static_cast<Acc>(static_cast<ComputeT<T>>(data[o][off[o]]));
          acc += prod;
          for (size_t d = n_sum; d-- > 0;) {
            ++coord[d];
            for (size_t o = 0; o < n_in; ++o) off[o] += sum_stride[o][d];
            if (coord[d] < sum_dims[d]) break;
            for (size_t o = 0; o < n_in; ++o) off[o] -= sum_stride[o][d] * coord[d];
            coord[d] = 0;
          }
        }
      }
      po[oi] = static_cast<T>(static_cast<ComputeT<T>>(acc));
    }
  });
  return absl::OkStatus();
}

absl::Status ComputeEinsum(KernelContext& ctx) {
  if (!ctx.node().HasAttribute("equation")) return ctx.Error("attribute 'equation' is required");
  std::vector<const Tensor*> in;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is missing");
    in.push_back(&ctx.Input(i));
    if (in.back()->dtype() != in[0]->dtype()) {
      return ctx.Error("inputs have different types: ", DTypeName(in[0]->dtype()), " and ",
                       DTypeName(in.back()->dtype()));
    }
  }
  if (in.empty()) return ctx.Error("needs at least one input");
  auto plan = PlanEinsum(ctx.node().GetString("equation"), in);
  if (!plan.ok()) return ctx.Error("equation '", ctx.node().GetString("equation"), "': ",
                                   plan.status().message());
  return VisitNumeric(in[0]->dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    return EinsumTyped<T>(ctx, *plan);
  });
}

// ---------------------------------------------------------------------------
// Det
// ---------------------------------------------------------------------------

absl::Status InferDet(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty() || outputs.empty()) return absl::OkStatus();
  const TypeInfo& a = ctx.input_types[0];
  outputs[0] = TypeInfo::Tensor(a.dtype);
  if (!a.has_shape) return absl::OkStatus();
  if (a.shape.size() < 2) return absl::InvalidArgumentError("Det input must have rank >= 2");
  outputs[0] = TypeInfo::Tensor(a.dtype, std::vector<Dim>(a.shape.begin(), a.shape.end() - 2));
  return absl::OkStatus();
}

// Determinant of an n x n row-major matrix by LU with partial pivoting; `lu`
// is scratch of n*n doubles.
double Determinant(int64_t n, std::vector<double>& lu) {
  double det = 1.0;
  for (int64_t col = 0; col < n; ++col) {
    int64_t pivot = col;
    double best = std::fabs(lu[col * n + col]);
    for (int64_t r = col + 1; r < n; ++r) {
      const double v = std::fabs(lu[r * n + col]);
      if (v > best) best = v, pivot = r;
    }
    if (best == 0.0) return 0.0;
    if (pivot != col) {
      for (int64_t c = 0; c < n; ++c) std::swap(lu[col * n + c], lu[pivot * n + c]);
      det = -det;
    }
    const double d = lu[col * n + col];
    det *= d;
    for (int64_t r = col + 1; r < n; ++r) {
      const double f = lu[r * n + col] / d;
      if (f == 0.0) continue;
      for (int64_t c = col + 1; c < n; ++c) lu[r * n + c] -= f * lu[col * n + c];
    }
  }
  return det;
}

absl::Status ComputeDet(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.rank() < 2) return ctx.Error("input must have rank >= 2, got ", ShapeToString(x.shape()));
  const int64_t n = x.dim(x.rank() - 1);
  if (x.dim(x.rank() - 2) != n) {
    return ctx.Error("input must hold square matrices, got ", ShapeToString(x.shape()));
  }
  Shape out_shape(x.shape().begin(), x.shape().end() - 2);
  Tensor* out = ctx.Output(0, x.dtype(), out_shape);
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* po = out->mutable_data<T>();
    const int64_t batches = out->size();
    ctx.ParallelFor(0, batches, std::max<int64_t>(1, 4096 / std::max<int64_t>(n * n * n, 1)),
                    [&](int64_t lo, int64_t hi) {
                      std::vector<double> lu(static_cast<size_t>(n * n));
                      for (int64_t b = lo; b < hi; ++b) {
                        const T* m = px + b * n * n;
                        for (int64_t i = 0; i < n * n; ++i)
                          lu[i] = static_cast<double>(static_cast<ComputeT<T>>(m[i]));
                        po[b] = static_cast<T>(static_cast<ComputeT<T>>(Determinant(n, lu)));
                      }
                    });
    return absl::OkStatus();
  });
}

const OpTableRegistration kLinalgOps({
    {.name = "MatMul", .since = 1, .types = kFloatTypes | kGemmIntTypes, .infer = InferMatMul,
     .compute = ComputeMatMul, .prepare = PrepareMatMul},
    {.name = "Gemm", .since = 1, .types = kFloatTypes | kGemmIntTypes, .infer = InferGemm,
     .compute = ComputeGemm, .prepare = PrepareGemm},
    {.name = "Einsum", .since = 12, .types = kNumericTypes, .compute = ComputeEinsum},
    {.name = "Det", .since = 11, .types = kFloatTypes, .infer = InferDet, .compute = ComputeDet},
});

}  // namespace
}  // namespace hepml::ops
