// Recurrent layers: RNN, GRU and LSTM (all versions; layout at opset 14).
//
// Per direction the input projection X*W^T + biases is one GEMM over all time
// steps and batch rows; each time step then runs one GEMM H_{t-1}*R^T over the
// batch (two for GRU without linear_before_reset) followed by the gate
// arithmetic, with batch rows split across the session's threads. float16
// computes in float. Weights that are initializers are transposed and
// converted once when the session is created (RnnState).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "ops/gemm.h"
#include "ops/kernel_util.h"
#include "ops/linalg.h"
#include "ops/op_registry.h"
#include "ops/vec_math.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

enum class Cell { kRnn, kGru, kLstm };

int NumGates(Cell cell) { return cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 3 : 4; }
const char* CellName(Cell cell) { return cell == Cell::kRnn ? "RNN" : cell == Cell::kGru ? "GRU" : "LSTM"; }

// ---- activation functions ----

enum class ActKind {
  kRelu,
  kTanh,
  kSigmoid,
  kAffine,
  kLeakyRelu,
  kThresholdedRelu,
  kScaledTanh,
  kHardSigmoid,
  kElu,
  kSoftsign,
  kSoftplus
};

struct Activation {
  ActKind kind = ActKind::kTanh;
  float alpha = 0;
  float beta = 0;
};

struct ActInfo {
  const char* name;  // lower case
  ActKind kind;
  bool uses_alpha, uses_beta;
  float alpha, beta;  // defaults of the matching ONNX operator
};
constexpr ActInfo kActivations[] = {
    {"relu", ActKind::kRelu, false, false, 0, 0},
    {"tanh", ActKind::kTanh, false, false, 0, 0},
    {"sigmoid", ActKind::kSigmoid, false, false, 0, 0},
    {"affine", ActKind::kAffine, true, true, 1.0f, 0.0f},
    {"leakyrelu", ActKind::kLeakyRelu, true, false, 0.01f, 0},
    {"thresholdedrelu", ActKind::kThresholdedRelu, true, false, 1.0f, 0},
    {"scaledtanh", ActKind::kScaledTanh, true, true, 1.0f, 1.0f},
    {"hardsigmoid", ActKind::kHardSigmoid, true, true, 0.2f, 0.5f},
    {"elu", ActKind::kElu, true, false, 1.0f, 0},
    {"softsign", ActKind::kSoftsign, false, false, 0, 0},
    {"softplus", ActKind::kSoftplus, false, false, 0, 0},
};

// x[i] = act(x[i]) for i < n. The switch is outside the element loops.
template <typename C>
void Activate(const Activation& a, C* x, int64_t n) {
  const C alpha = static_cast<C>(a.alpha), beta = static_cast<C>(a.beta);
  switch (a.kind) {
    case ActKind::kRelu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > C(0) ? x[i] : C(0);
      break;
    case ActKind::kTanh:
      if constexpr (std::is_same_v<C, float>) {
        TanhF32(x, x, n);
      } else {
        for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
      }
      break;
    case ActKind::kSigmoid:
      if constexpr (std::is_same_v<C, float>) {
        SigmoidF32(x, x, n);
      } else {
        for (int64_t i = 0; i < n; ++i) x[i] = C(1) / (C(1) + std::exp(-x[i]));
      }
      break;
    case ActKind::kAffine:
      for (int64_t i = 0; i < n; ++i) x[i] = alpha * x[i] + beta;
      break;
    case ActKind::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= C(0) ? x[i] : alpha * x[i];
      break;
    case ActKind::kThresholdedRelu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > alpha ? x[i] : C(0);
      break;
    case ActKind::kScaledTanh:
      for (int64_t i = 0; i < n; ++i) x[i] = alpha * std::tanh(beta * x[i]);
      break;
    case ActKind::kHardSigmoid:
      for (int64_t i = 0; i < n; ++i) x[i] = std::min(C(1), std::max(C(0), alpha * x[i] + beta));
      break;
    case ActKind::kElu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= C(0) ? x[i] : alpha * (std::exp(x[i]) - C(1));
      break;
    case ActKind::kSoftsign:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (C(1) + std::abs(x[i]));
      break;
    case ActKind::kSoftplus:
      for (int64_t i = 0; i < n; ++i) {
        // log(1 + e^x) without overflow for large x.
        x[i] = x[i] > C(0) ? x[i] + std::log1p(std::exp(-x[i])) : std::log1p(std::exp(x[i]));
      }
      break;
  }
}

template <typename C>
void Clip(C* x, int64_t n, C limit) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::min(limit, std::max(-limit, x[i]));
}

// ---- attributes ----

struct RnnConfig {
  Cell cell = Cell::kLstm;
  int gates = 4;
  int num_directions = 1;
  bool reverse = false;      // direction == "reverse"
  int64_t hidden_size = -1;  // -1: taken from R
  bool has_clip = false;
  float clip = 0;
  int acts_per_direction = 1;
  std::vector<Activation> activations;  // acts_per_direction per direction
  bool linear_before_reset = false;     // GRU
  bool input_forget = false;            // LSTM
  int layout = 0;                       // 1: batch-major (opset 14)
};

absl::StatusOr<RnnConfig> ParseConfig(const Node& node, int opset, Cell cell) {
  RnnConfig c;
  c.cell = cell;
  c.gates = NumGates(cell);
  std::string direction = node.GetString("direction", "forward");
  if (direction == "forward" || direction == "foward") {  // "foward": the default of ONNX's old schemas
    c.num_directions = 1;
  } else if (direction == "reverse") {
    c.num_directions = 1;
    c.reverse = true;
  } else if (direction == "bidirectional") {
    c.num_directions = 2;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("attribute 'direction' must be forward, reverse or bidirectional, got '", direction, "'"));
  }
  c.hidden_size = node.GetInt("hidden_size", -1);
  if (node.HasAttribute("hidden_size") && c.hidden_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("attribute 'hidden_size' must be positive, got ", c.hidden_size));
  }
  if (node.HasAttribute("clip")) {
    c.has_clip = true;
    c.clip = node.GetFloat("clip", 0);
    if (!(c.clip > 0))
      return absl::InvalidArgumentError(absl::StrCat("attribute 'clip' must be positive, got ", c.clip));
  }
  if (cell == Cell::kGru && opset >= 3) c.linear_before_reset = node.GetInt("linear_before_reset", 0) != 0;
  if (cell == Cell::kLstm) c.input_forget = node.GetInt("input_forget", 0) != 0;
  if (opset >= 14) {
    const int64_t layout = node.GetInt("layout", 0);
    if (layout != 0 && layout != 1)
      return absl::InvalidArgumentError(absl::StrCat("attribute 'layout' must be 0 or 1, got ", layout));
    c.layout = static_cast<int>(layout);
  }

  std::vector<std::string> names;
  if (node.HasAttribute("activations")) {
    names = node.GetStrings("activations");
  } else if (cell == Cell::kRnn) {
    names = {"Tanh"};
  } else if (cell == Cell::kGru) {
    names = {"Sigmoid", "Tanh"};
  } else {
    names = {"Sigmoid", "Tanh", "Tanh"};
  }
  c.acts_per_direction = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 2 : 3;
  const size_t per = static_cast<size_t>(c.acts_per_direction);
  if (c.num_directions == 2 && names.size() == per) {
    std::vector<std::string> twice = names;
    twice.insert(twice.end(), names.begin(), names.end());
    names = std::move(twice);
  }
  if (names.size() != per * static_cast<size_t>(c.num_directions)) {
    return absl::InvalidArgumentError(absl::StrCat("attribute 'activations' has ", names.size(), " entries; ",
                                                   CellName(cell), " needs ", per, " per direction"));
  }
  // activation_alpha/beta are consumed in order by the functions that use them.
  const std::vector<float> alphas = node.GetFloats("activation_alpha");
  const std::vector<float> betas = node.GetFloats("activation_beta");
  size_t next_alpha = 0, next_beta = 0;
  for (const std::string& name : names) {
    const std::string lower = absl::AsciiStrToLower(name);
    const ActInfo* info = nullptr;
    for (const ActInfo& a : kActivations)
      if (lower == a.name) info = &a;
    if (info == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown activation function '", name, "'"));
    Activation act{info->kind, info->alpha, info->beta};
    if (info->uses_alpha && next_alpha < alphas.size()) act.alpha = alphas[next_alpha++];
    if (info->uses_beta && next_beta < betas.size()) act.beta = betas[next_beta++];
    c.activations.push_back(act);
  }
  return c;
}

// ---- weights ----

// Weights of all directions in compute type C, laid out for the GEMMs.
template <typename C>
struct PackedWeights {
  int64_t input_size = 0;
  int64_t hidden = 0;
  std::vector<C> wt;    // per direction [input_size][gates*hidden] (W transposed)
  std::vector<C> rt;    // per direction [hidden][gates*hidden] (R transposed)
  std::vector<C> bias;  // per direction [gates*hidden]: Wb + Rb (GRU with
                        // linear_before_reset: Rb of the h gate left out)
  std::vector<C> rbh;   // GRU with linear_before_reset: per direction [hidden]
  std::vector<C> peep;  // LSTM with P: per direction [3*hidden] (i, o, f)
  // float: wt and rt packed for the GEMM engine, per direction.
  std::vector<PackedB> wt_packed;
  std::vector<PackedB> rt_packed;
};

// Checks the shapes of W, R, B, P and packs them.
template <typename T, typename C>
absl::Status PackWeights(const RnnConfig& cfg, const Tensor& w, const Tensor& r, const Tensor* b, const Tensor* p,
                         PackedWeights<C>& out) {
  const int64_t nd = cfg.num_directions, g = cfg.gates;
  if (w.rank() != 3 || r.rank() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("W and R must have rank 3, got ", ShapeToString(w.shape()), " and ", ShapeToString(r.shape())));
  }
  const int64_t h = cfg.hidden_size > 0 ? cfg.hidden_size : r.dim(2);
  if (h <= 0) return absl::InvalidArgumentError("hidden size must be positive");
  const int64_t in = w.dim(2), gh = g * h;
  if (w.dim(0) != nd || w.dim(1) != gh) {
    return absl::InvalidArgumentError(
        absl::StrCat("W has shape ", ShapeToString(w.shape()), "; expected [", nd, ",", gh, ",input_size]"));
  }
  if (r.dim(0) != nd || r.dim(1) != gh || r.dim(2) != h) {
    return absl::InvalidArgumentError(
        absl::StrCat("R has shape ", ShapeToString(r.shape()), "; expected [", nd, ",", gh, ",", h, "]"));
  }
  if (b != nullptr && (b->rank() != 2 || b->dim(0) != nd || b->dim(1) != 2 * gh)) {
    return absl::InvalidArgumentError(
        absl::StrCat("B has shape ", ShapeToString(b->shape()), "; expected [", nd, ",", 2 * gh, "]"));
  }
  if (p != nullptr && (p->rank() != 2 || p->dim(0) != nd || p->dim(1) != 3 * h)) {
    return absl::InvalidArgumentError(
        absl::StrCat("P has shape ", ShapeToString(p->shape()), "; expected [", nd, ",", 3 * h, "]"));
  }
  for (const Tensor* t : {&r, b, p}) {
    if (t != nullptr && t->dtype() != w.dtype()) {
      return absl::InvalidArgumentError(absl::StrCat("W, R, B and P must share one type; got ", DTypeName(w.dtype()),
                                                     " and ", DTypeName(t->dtype())));
    }
  }
  out.input_size = in;
  out.hidden = h;
  out.wt.assign(static_cast<size_t>(nd * in * gh), C(0));
  out.rt.assign(static_cast<size_t>(nd * h * gh), C(0));
  out.bias.assign(static_cast<size_t>(nd * gh), C(0));
  out.rbh.assign(cfg.linear_before_reset ? static_cast<size_t>(nd * h) : 0, C(0));
  out.peep.assign(p != nullptr ? static_cast<size_t>(nd * 3 * h) : 0, C(0));
  const T* pw = w.data<T>();
  const T* pr = r.data<T>();
  for (int64_t d = 0; d < nd; ++d) {
    C* wt = out.wt.data() + d * in * gh;
    C* rt = out.rt.data() + d * h * gh;
    for (int64_t row = 0; row < gh; ++row) {
      for (int64_t k = 0; k < in; ++k) wt[k * gh + row] = static_cast<C>(pw[(d * gh + row) * in + k]);
      for (int64_t k = 0; k < h; ++k) rt[k * gh + row] = static_cast<C>(pr[(d * gh + row) * h + k]);
    }
    if (b != nullptr) {
      const T* pb = b->data<T>() + d * 2 * gh;
      C* bias = out.bias.data() + d * gh;
      for (int64_t j = 0; j < gh; ++j) {
        const bool rb_inside = cfg.linear_before_reset && j >= 2 * h;  // GRU h gate
        bias[j] = static_cast<C>(pb[j]) + (rb_inside ? C(0) : static_cast<C>(pb[gh + j]));
        if (rb_inside) out.rbh[d * h + (j - 2 * h)] = static_cast<C>(pb[gh + j]);
      }
    }
    if (p != nullptr) {
      const T* pp = p->data<T>() + d * 3 * h;
      for (int64_t j = 0; j < 3 * h; ++j) out.peep[d * 3 * h + j] = static_cast<C>(pp[j]);
    }
  }
  if constexpr (std::is_same_v<C, float>) {
    out.wt_packed.clear();
    out.rt_packed.clear();
    for (int64_t d = 0; d < nd; ++d) {
      out.wt_packed.push_back(PackedB::Pack(false, in, gh, out.wt.data() + d * in * gh, gh));
      out.rt_packed.push_back(PackedB::Pack(false, h, gh, out.rt.data() + d * h * gh, gh));
    }
  }
  return absl::OkStatus();
}

// The LSTM of most models (float, default activations, no peepholes, no
// clip, no coupled gates, every sequence full length): per step one GEMM
// adds H_{t-1} R^T onto the step's projected input in place, then the gates
// run vectorised over each row. `xw` holds X W^T + bias for every row.
// Returns false (nothing done) when the layer is not of that kind.
bool FastLstmSteps(KernelContext& ctx, const RnnConfig& cfg, const PackedB& rt_packed, int64_t d, bool reverse,
                   bool batch_major, int64_t seq, int64_t batch, int64_t h, float* xw, float* hs, float* cs,
                   float* y, int64_t nd) {
  const int64_t gh = 4 * h;
  const Activation* act = cfg.activations.data() + d * cfg.acts_per_direction;
  if (act[0].kind != ActKind::kSigmoid || act[1].kind != ActKind::kTanh || act[2].kind != ActKind::kTanh) return false;
  // Rows of one step: consecutive batch entries are `row_stride` rows apart.
  const int64_t row_stride = batch_major ? seq : 1;
  const int64_t grain = std::max<int64_t>(16, batch / 8);
  for (int64_t step = 0; step < seq; ++step) {
    const int64_t t = reverse ? seq - 1 - step : step;
    ctx.ParallelFor(0, batch, grain, [&](int64_t lo, int64_t hi) {
      const int64_t nb = hi - lo;
      auto row = [&](int64_t bi) { return xw + ((batch_major ? bi * seq + t : t * batch + bi)) * gh; };
      // gates = xw_t + H_{t-1} R^T, in place in xw.
      GemmF32(false, false, nb, gh, h, 1.0f, hs + lo * h, h, nullptr, nullptr, 0, &rt_packed, 1.0f, row(lo),
              row_stride * gh, nullptr);
      for (int64_t bi = lo; bi < hi; ++bi) {
        float* g = row(bi);  // i, o, f, c
        float* cp = cs + bi * h;
        float* hp = hs + bi * h;
        SigmoidF32(g, g, 3 * h);
        float* gi = g;
        float* go = g + h;
        float* gf = g + 2 * h;
        float* gc = g + 3 * h;
        TanhF32(gc, gc, h);
        for (int64_t j = 0; j < h; ++j) cp[j] = gf[j] * cp[j] + gi[j] * gc[j];
        TanhF32(cp, gc, h);
        for (int64_t j = 0; j < h; ++j) hp[j] = go[j] * gc[j];
        if (y != nullptr) {
          float* out = y + (batch_major ? (bi * seq + t) * nd + d : (t * nd + d) * batch + bi) * h;
          std::copy_n(hp, h, out);
        }
      }
    });
  }
  return true;
}

class RnnState final : public KernelState {
 public:
  RnnConfig config;
  // Set when W, R (and B, P where present) are initializers of this type.
  DType packed_dtype = DType::kUndefined;
  PackedWeights<float> packed_float;
  PackedWeights<double> packed_double;
};

// Input indices.
constexpr size_t kX = 0, kW = 1, kR = 2, kB = 3, kSeqLens = 4, kInitialH = 5, kInitialC = 6, kP = 7;

// ---- GEMM ----

// c[m][n] = (accumulate ? c[m][n] : 0) + sum_k a[m][k] * b[k][n] for m < M,
// n < N, with row strides lda, ldb, ldc: the shared GEMM (linalg.h), on the
// calling thread.
template <typename C>
void Gemm(int64_t M, int64_t N, int64_t K, const C* a, int64_t lda, const C* b, int64_t ldb, C* c, int64_t ldc,
          bool accumulate) {
  GemmRowMajor<C>(false, false, M, N, K, C(1), a, lda, b, ldb, accumulate ? C(1) : C(0), c, ldc, nullptr);
}

// ---- the recurrence ----

template <typename T, typename C>
absl::Status RunRecurrent(KernelContext& ctx, const RnnConfig& cfg, const PackedWeights<C>* prepacked) {
  const Tensor& x = ctx.Input(kX);
  const DType dtype = x.dtype();
  if (x.rank() != 3) return ctx.Error("X must have rank 3, got shape ", ShapeToString(x.shape()));
  const bool batch_major = cfg.layout == 1;
  const int64_t seq = batch_major ? x.dim(1) : x.dim(0);
  const int64_t batch = batch_major ? x.dim(0) : x.dim(1);
  const int64_t nd = cfg.num_directions, g = cfg.gates;
  for (size_t i : {kW, kR}) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i == kW ? "W" : "R", " is missing");
    if (ctx.Input(i).dtype() != dtype) {
      return ctx.Error("input ", i == kW ? "W" : "R", " has type ", DTypeName(ctx.Input(i).dtype()), ", X has ",
                       DTypeName(dtype));
    }
  }
  const bool has_p = cfg.cell == Cell::kLstm && ctx.HasInput(kP);

  PackedWeights<C> local;
  const PackedWeights<C>* wts = prepacked;
  if (wts == nullptr) {
    absl::Status st = PackWeights<T, C>(cfg, ctx.Input(kW), ctx.Input(kR), ctx.HasInput(kB) ? &ctx.Input(kB) : nullptr,
                                        has_p ? &ctx.Input(kP) : nullptr, local);
    if (!st.ok()) return ctx.Error(st.message());
    wts = &local;
  }
  const int64_t h = wts->hidden, gh = g * h, in = wts->input_size;
  if (x.dim(2) != in) return ctx.Error("X has input size ", x.dim(2), ", W expects ", in);

  std::vector<int64_t> lens(static_cast<size_t>(batch), seq);
  bool ragged = false;
  if (ctx.HasInput(kSeqLens)) {
    const Tensor& sl = ctx.Input(kSeqLens);
    auto v = ReadInt64s(sl);
    if (!v.ok() || sl.rank() != 1 || sl.dim(0) != batch) {
      return ctx.Error("sequence_lens must be an int32 tensor of shape [", batch, "], got ", DTypeName(sl.dtype()),
                       ShapeToString(sl.shape()));
    }
    for (int64_t bi = 0; bi < batch; ++bi) {
      if ((*v)[bi] < 0 || (*v)[bi] > seq) {
        return ctx.Error("sequence_lens[", bi, "] = ", (*v)[bi], " is outside [0, ", seq, "]");
      }
      lens[bi] = (*v)[bi];
      ragged |= lens[bi] != seq;
    }
  }
  // initial_h / initial_c: [nd, batch, h] (layout 0) or [batch, nd, h].
  const Shape state_shape = batch_major ? Shape{batch, nd, h} : Shape{nd, batch, h};
  auto state_input = [&](size_t i, const char* name) -> absl::StatusOr<const T*> {
    if (!ctx.HasInput(i)) return static_cast<const T*>(nullptr);
    const Tensor& t = ctx.Input(i);
    if (t.dtype() != dtype || t.shape() != state_shape) {
      return ctx.Error(name, " must be ", DTypeName(dtype), ShapeToString(state_shape), ", got ", DTypeName(t.dtype()),
                       ShapeToString(t.shape()));
    }
    return t.data<T>();
  };
  auto init_h = state_input(kInitialH, "initial_h");
  if (!init_h.ok()) return init_h.status();
  const T* init_c = nullptr;
  if (cfg.cell == Cell::kLstm) {
    auto c0 = state_input(kInitialC, "initial_c");
    if (!c0.ok()) return c0.status();
    init_c = *c0;
  }

  // Outputs.
  T* y = nullptr;
  if (ctx.HasOutput(0)) {
    Tensor* t = ctx.Output(0, dtype, batch_major ? Shape{batch, seq, nd, h} : Shape{seq, nd, batch, h});
    y = t->mutable_data<T>();
    if (ragged) std::fill_n(y, t->size(), static_cast<T>(0.0f));  // padded steps are zero
  }
  T* y_h = ctx.HasOutput(1) ? ctx.Output(1, dtype, state_shape)->mutable_data<T>() : nullptr;
  T* y_c = cfg.cell == Cell::kLstm && ctx.HasOutput(2) ? ctx.Output(2, dtype, state_shape)->mutable_data<T>() : nullptr;
  // Offsets into [nd, batch, h]-shaped states (or [batch, nd, h]).
  auto state_off = [&](int64_t d, int64_t bi) { return (batch_major ? bi * nd + d : d * batch + bi) * h; };
  auto y_off = [&](int64_t t, int64_t d, int64_t bi) {
    return (batch_major ? (bi * seq + t) * nd + d : (t * nd + d) * batch + bi) * h;
  };
  // Row of X (and of the projected input) for time t and batch entry bi.
  auto x_row = [&](int64_t t, int64_t bi) { return batch_major ? bi * seq + t : t * batch + bi; };

  // X in compute type.
  const int64_t rows = seq * batch;
  std::vector<C> x_conv;
  const C* xc;
  if constexpr (std::is_same_v<T, C>) {
    xc = x.data<T>();
  } else {
    x_conv.resize(static_cast<size_t>(x.size()));
    const T* px = x.data<T>();
    for (int64_t i = 0; i < x.size(); ++i) x_conv[i] = static_cast<C>(px[i]);
    xc = x_conv.data();
  }

  std::vector<C> xw(static_cast<size_t>(rows * gh));                                // projected input per row
  std::vector<C> hr(static_cast<size_t>(batch * gh));                               // H_{t-1} R^T per batch row
  std::vector<C> hs(static_cast<size_t>(batch * h));                                // hidden state
  std::vector<C> cs(cfg.cell == Cell::kLstm ? static_cast<size_t>(batch * h) : 0);  // cell state
  std::vector<C> rh(cfg.cell == Cell::kGru && !cfg.linear_before_reset ? static_cast<size_t>(batch * h) : 0);
  const C clip = static_cast<C>(cfg.clip);

  for (int64_t d = 0; d < nd; ++d) {
    const bool reverse = cfg.reverse || d == 1;
    const C* wt = wts->wt.data() + d * in * gh;
    const C* rt = wts->rt.data() + d * h * gh;
    const C* bias = wts->bias.data() + d * gh;
    const C* rbh = cfg.linear_before_reset ? wts->rbh.data() + d * h : nullptr;
    const C* peep = has_p ? wts->peep.data() + d * 3 * h : nullptr;
    const Activation* act = cfg.activations.data() + d * cfg.acts_per_direction;

    // Input projection for all steps: xw = X W^T + bias, one GEMM.
    if constexpr (std::is_same_v<C, float>) {
      const PackedB* wp = d < static_cast<int64_t>(wts->wt_packed.size()) ? &wts->wt_packed[d] : nullptr;
      GemmF32(false, false, rows, gh, in, 1.0f, xc, in, nullptr, wp ? nullptr : wt, gh, wp, 1.0f, xw.data(), gh, &ctx,
              bias);
    } else {
      for (int64_t r = 0; r < rows; ++r) std::copy_n(bias, gh, xw.data() + r * gh);
      GemmRowMajor<C>(false, false, rows, gh, in, C(1), xc, in, wt, gh, C(1), xw.data(), gh, &ctx);
    }

    // Initial states.
    for (int64_t bi = 0; bi < batch; ++bi) {
      for (int64_t j = 0; j < h; ++j) {
        hs[bi * h + j] = *init_h ? static_cast<C>((*init_h)[state_off(d, bi) + j]) : C(0);
        if (!cs.empty()) cs[bi * h + j] = init_c ? static_cast<C>(init_c[state_off(d, bi) + j]) : C(0);
      }
    }

    if constexpr (std::is_same_v<C, float> && std::is_same_v<T, float>) {
      if (cfg.cell == Cell::kLstm && !ragged && peep == nullptr && !cfg.has_clip && !cfg.input_forget &&
          d < static_cast<int64_t>(wts->rt_packed.size()) &&
          FastLstmSteps(ctx, cfg, wts->rt_packed[d], d, reverse, batch_major, seq, batch, h, xw.data(), hs.data(),
                        cs.data(), y, nd)) {
        for (int64_t bi = 0; bi < batch; ++bi) {
          for (int64_t j = 0; j < h; ++j) {
            if (y_h != nullptr) y_h[state_off(d, bi) + j] = hs[bi * h + j];
            if (y_c != nullptr) y_c[state_off(d, bi) + j] = cs[bi * h + j];
          }
        }
        continue;
      }
    }
    for (int64_t step = 0; step < seq; ++step) {
      // Batch rows are independent: each block runs its GEMMs and gates.
      const int64_t grain = std::max<int64_t>(4, 16384 / std::max<int64_t>(1, gh * h));
      ctx.ParallelFor(0, batch, grain, [&](int64_t lo, int64_t hi) {
        const int64_t nb = hi - lo;
        C* hr_blk = hr.data() + lo * gh;
        C* hs_blk = hs.data() + lo * h;
        auto active = [&](int64_t bi) { return step < lens[bi]; };
        auto time_of = [&](int64_t bi) { return reverse ? lens[bi] - 1 - step : step; };
        const bool gru_split = cfg.cell == Cell::kGru && !cfg.linear_before_reset;
        // H_{t-1} R^T for the block (GRU without linear_before_reset: z and r only).
        Gemm<C>(nb, gru_split ? 2 * h : gh, h, hs_blk, h, rt, gh, hr_blk, gh, false);
        if (cfg.cell == Cell::kGru) {
          // z and r gates; without linear_before_reset the h gate then needs
          // (r . H_{t-1}) Rh^T: a second GEMM over the block.
          for (int64_t bi = lo; bi < hi; ++bi) {
            C* gt = hr.data() + bi * gh;
            if (!active(bi)) {
              if (gru_split) std::fill_n(rh.data() + bi * h, h, C(0));
              continue;
            }
            const C* xr = xw.data() + x_row(time_of(bi), bi) * gh;
            for (int64_t j = 0; j < 2 * h; ++j) gt[j] += xr[j];
            if (cfg.has_clip) Clip(gt, 2 * h, clip);
            Activate(act[0], gt, 2 * h);
            if (gru_split) {
              const C* gr = gt + h;
              const C* hp = hs.data() + bi * h;
              C* rrow = rh.data() + bi * h;
              for (int64_t j = 0; j < h; ++j) rrow[j] = gr[j] * hp[j];
            }
          }
          if (gru_split) Gemm<C>(nb, h, h, rh.data() + lo * h, h, rt + 2 * h, gh, hr_blk + 2 * h, gh, false);
        }
        for (int64_t bi = lo; bi < hi; ++bi) {
          if (!active(bi)) continue;
          const int64_t t = time_of(bi);
          const C* xr = xw.data() + x_row(t, bi) * gh;
          C* gt = hr.data() + bi * gh;
          C* hp = hs.data() + bi * h;
          if (cfg.cell == Cell::kRnn) {
            for (int64_t j = 0; j < h; ++j) gt[j] += xr[j];
            if (cfg.has_clip) Clip(gt, h, clip);
            Activate(act[0], gt, h);
            std::copy_n(gt, h, hp);
          } else if (cfg.cell == Cell::kLstm) {
            C* cp = cs.data() + bi * h;
            for (int64_t j = 0; j < gh; ++j) gt[j] += xr[j];
            C* gi = gt;
            C* go = gt + h;
            C* gf = gt + 2 * h;
            C* gc = gt + 3 * h;
            if (peep != nullptr) {
              for (int64_t j = 0; j < h; ++j) {
                gi[j] += peep[j] * cp[j];
                gf[j] += peep[2 * h + j] * cp[j];
              }
            }
            if (cfg.has_clip) {
              Clip(gi, h, clip);
              Clip(gf, h, clip);
              Clip(gc, h, clip);
            }
            Activate(act[0], gi, h);
            if (cfg.input_forget) {
              for (int64_t j = 0; j < h; ++j) gf[j] = C(1) - gi[j];
            } else {
              Activate(act[0], gf, h);
            }
            Activate(act[1], gc, h);
            for (int64_t j = 0; j < h; ++j) cp[j] = gf[j] * cp[j] + gi[j] * gc[j];
            if (peep != nullptr) {
              for (int64_t j = 0; j < h; ++j) go[j] += peep[h + j] * cp[j];
            }
            if (cfg.has_clip) Clip(go, h, clip);
            Activate(act[0], go, h);
            std::copy_n(cp, h, gc);  // gc is free again: h(C_t) goes there
            Activate(act[2], gc, h);
            for (int64_t j = 0; j < h; ++j) hp[j] = go[j] * gc[j];
          } else {  // GRU: z and r are activated above
            const C* gz = gt;
            const C* gr = gt + h;
            C* gn = gt + 2 * h;
            if (cfg.linear_before_reset) {
              for (int64_t j = 0; j < h; ++j) gn[j] = xr[2 * h + j] + gr[j] * (gn[j] + rbh[j]);
            } else {
              for (int64_t j = 0; j < h; ++j) gn[j] += xr[2 * h + j];
            }
            if (cfg.has_clip) Clip(gn, h, clip);
            Activate(act[1], gn, h);
            for (int64_t j = 0; j < h; ++j) hp[j] = (C(1) - gz[j]) * gn[j] + gz[j] * hp[j];
          }
          if (y != nullptr) {
            T* out = y + y_off(t, d, bi);
            for (int64_t j = 0; j < h; ++j) out[j] = static_cast<T>(hp[j]);
          }
        }
      });
    }

    for (int64_t bi = 0; bi < batch; ++bi) {
      for (int64_t j = 0; j < h; ++j) {
        if (y_h != nullptr) y_h[state_off(d, bi) + j] = static_cast<T>(hs[bi * h + j]);
        if (y_c != nullptr) y_c[state_off(d, bi) + j] = static_cast<T>(cs[bi * h + j]);
      }
    }
  }
  return absl::OkStatus();
}

template <Cell kCell>
absl::StatusOr<std::unique_ptr<KernelState>> PrepareRecurrent(const PrepareContext& pctx) {
  auto cfg = ParseConfig(pctx.node, pctx.opset, kCell);
  if (!cfg.ok()) return cfg.status();
  auto state = std::make_unique<RnnState>();
  state->config = *cfg;
  auto constant = [&](size_t i) -> const Tensor* {
    return pctx.node.HasInput(i) && i < pctx.constant_inputs.size() ? pctx.constant_inputs[i] : nullptr;
  };
  const Tensor* w = constant(kW);
  const Tensor* r = constant(kR);
  const Tensor* b = constant(kB);
  const Tensor* p = kCell == Cell::kLstm ? constant(kP) : nullptr;
  const bool b_ok = !pctx.node.HasInput(kB) || b != nullptr;
  const bool p_ok = kCell != Cell::kLstm || !pctx.node.HasInput(kP) || p != nullptr;
  if (w != nullptr && r != nullptr && b_ok && p_ok) {
    // Packing failures (bad shapes) are left for Compute to report.
    absl::Status st = absl::UnknownError("");
    switch (w->dtype()) {
      case DType::kFloat32:
        st = PackWeights<float, float>(*cfg, *w, *r, b, p, state->packed_float);
        break;
      case DType::kFloat16:
        st = PackWeights<Float16, float>(*cfg, *w, *r, b, p, state->packed_float);
        break;
      case DType::kFloat64:
        st = PackWeights<double, double>(*cfg, *w, *r, b, p, state->packed_double);
        break;
      default:
        break;
    }
    if (st.ok()) state->packed_dtype = w->dtype();
  }
  return state;
}

template <Cell kCell>
absl::Status ComputeRecurrent(KernelContext& ctx) {
  const auto* state = static_cast<const RnnState*>(ctx.state());
  RnnConfig parsed;
  if (state == nullptr) {
    auto cfg = ParseConfig(ctx.node(), ctx.opset(), kCell);
    if (!cfg.ok()) return ctx.Error(cfg.status().message());
    parsed = *cfg;
  }
  const RnnConfig& cfg = state ? state->config : parsed;
  if (!ctx.HasInput(kX)) return ctx.Error("input X is missing");
  const DType dtype = ctx.Input(kX).dtype();
  const bool use_packed = state != nullptr && state->packed_dtype == dtype;
  switch (dtype) {
    case DType::kFloat32:
      return RunRecurrent<float, float>(ctx, cfg, use_packed ? &state->packed_float : nullptr);
    case DType::kFloat16:
      return RunRecurrent<Float16, float>(ctx, cfg, use_packed ? &state->packed_float : nullptr);
    case DType::kFloat64:
      return RunRecurrent<double, double>(ctx, cfg, use_packed ? &state->packed_double : nullptr);
    default:
      return ctx.Error("X has type ", DTypeName(dtype), "; ", CellName(kCell), " takes float16, float32 or float64");
  }
}

// Shapes of Y, Y_h (and Y_c) when X's and R's shapes are known.
absl::Status InferRecurrent(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() < 3) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[kX];
  const TypeInfo& r = ctx.input_types[kR];
  if (x.kind != TypeInfo::Kind::kTensor) return absl::OkStatus();
  for (TypeInfo& o : outputs) o = TypeInfo::Tensor(x.dtype);
  if (!x.has_shape || x.shape.size() != 3) return absl::OkStatus();
  const std::string direction = ctx.node.GetString("direction", "forward");
  const int64_t nd = direction == "bidirectional" ? 2 : 1;
  Dim hidden;
  hidden.value = ctx.node.GetInt("hidden_size", -1);
  if (!hidden.known() && r.kind == TypeInfo::Kind::kTensor && r.has_shape && r.shape.size() == 3) hidden = r.shape[2];
  const bool batch_major = ctx.opset >= 14 && ctx.node.GetInt("layout", 0) == 1;
  const Dim seq = batch_major ? x.shape[1] : x.shape[0];
  const Dim batch = batch_major ? x.shape[0] : x.shape[1];
  const Dim dirs{nd, ""};
  if (!outputs.empty()) {
    outputs[0] = TypeInfo::Tensor(
        x.dtype, batch_major ? std::vector<Dim>{batch, seq, dirs, hidden} : std::vector<Dim>{seq, dirs, batch, hidden});
  }
  for (size_t i = 1; i < outputs.size(); ++i) {
    outputs[i] = TypeInfo::Tensor(
        x.dtype, batch_major ? std::vector<Dim>{batch, dirs, hidden} : std::vector<Dim>{dirs, batch, hidden});
  }
  return absl::OkStatus();
}

constexpr DTypeSet kRnnTypes = Bit(DType::kFloat32) | Bit(DType::kFloat64) | Bit(DType::kFloat16);

// Versions: RNN 1, 7, 14; GRU 1, 3 (linear_before_reset), 7, 14; LSTM 1, 7,
// 14. Opset 7 made every output optional and dropped output_sequence (hepml
// produces each requested output at every version); 14 added layout.
const OpTableRegistration kRecurrentOps({
    {.name = "RNN",
     .since = 1,
     .types = kRnnTypes,
     .infer = InferRecurrent,
     .compute = ComputeRecurrent<Cell::kRnn>,
     .prepare = PrepareRecurrent<Cell::kRnn>},
    {.name = "GRU",
     .since = 1,
     .types = kRnnTypes,
     .infer = InferRecurrent,
     .compute = ComputeRecurrent<Cell::kGru>,
     .prepare = PrepareRecurrent<Cell::kGru>},
    {.name = "LSTM",
     .since = 1,
     .types = kRnnTypes,
     .infer = InferRecurrent,
     .compute = ComputeRecurrent<Cell::kLstm>,
     .prepare = PrepareRecurrent<Cell::kLstm>},
});

}  // namespace
}  // namespace hepml::ops
