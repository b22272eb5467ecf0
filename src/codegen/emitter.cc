// Emits one block of C++ per graph node into the generated run(), using the
// kernels of src/codegen/emitted/. Every value lives in one of: a graph input
// (the caller's pointer), a graph output (the caller's pointer, written in
// place by the node that makes it), the weights (initializers and folded
// shape values), or the arena. Reshape-like nodes alias their input. Arena
// offsets are planned after emission from each value's live range (first
// write to last read), first fit, 64-byte aligned, for the maximum batch;
// code refers to them through placeholders replaced at the end.
#include "codegen/emitter.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "codegen/emitted/conv.h"
#include "codegen/emitted/fixed.h"
#include "codegen/emitted/gemm.h"
#include "codegen/quantize.h"
#include "hepml/status.h"
#include "absl/strings/str_format.h"
#include "ops/conv.h"
#include "ops/resize_plan.h"

namespace hepml::codegen {

const char* CTypeOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float";
    case DType::kInt64: return "int64_t";
    case DType::kInt32: return "int32_t";
    case DType::kBool: return "bool";
    case DType::kFloat64: return "double";
    case DType::kInt8: return "int8_t";
    case DType::kInt16: return "int16_t";
    case DType::kUInt8: return "uint8_t";
    case DType::kUInt16: return "uint16_t";
    case DType::kUInt32: return "uint32_t";
    case DType::kUInt64: return "uint64_t";
    // 16-bit floats: storage types of common.h that convert to float.
    case DType::kFloat16: return "K::Float16";
    case DType::kBFloat16: return "K::BFloat16";
    default: return nullptr;
  }
}

namespace {

constexpr size_t kAlign = 64;

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::string LinExpr(const Lin& l) {
  if (l.per_batch == 0) return absl::StrCat(l.fixed);
  std::string s = l.per_batch == 1 ? "b" : absl::StrCat(l.per_batch, " * b");
  if (l.fixed > 0) return absl::StrCat("(", s, " + ", l.fixed, ")");
  if (l.fixed < 0) return absl::StrCat("(", s, " - ", -l.fixed, ")");
  return l.per_batch == 1 ? s : absl::StrCat("(", s, ")");
}

// Product of dims [from, to) as an expression (linear factors multiply).
std::string ProdExpr(const LinShape& s, size_t from, size_t to) {
  int64_t constant = 1;
  std::vector<std::string> parts;
  for (size_t d = from; d < to && d < s.size(); ++d) {
    if (s[d].IsConst()) constant *= s[d].fixed;
    else parts.push_back(LinExpr(s[d]));
  }
  if (constant != 1 || parts.empty()) parts.insert(parts.begin(), absl::StrCat(constant));
  return absl::StrJoin(parts, " * ");
}

int64_t ProdAt(const LinShape& s, int64_t batch) {
  int64_t n = 1;
  for (const Lin& l : s) n *= l.At(batch);
  return n;
}

std::string FloatLit(float f) {
  if (std::isinf(f)) return f > 0 ? "INFINITY" : "-INFINITY";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9gf", f);
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s.insert(s.size() - 1, ".0");
  return s;
}

enum class Loc { kInput, kOutput, kWeight, kArena };

struct Storage {
  Loc loc = Loc::kArena;
  int index = 0;          // input / output position
  size_t offset = 0;      // weights offset (arena: planned later)
  std::string base;       // the value whose storage this one shares ("" = own)
};

struct Step {
  std::string code;
  std::set<std::string> reads, writes;
};

struct ArenaBlock {
  std::string name;
  size_t bytes = 0;
  int first = -1, last = -1;
  size_t offset = 0;
};

class Emitter {
 public:
  Emitter(const Graph& graph, const GraphShapes& shapes, int64_t max_batch, const WeightFormats& formats)
      : graph_(graph), shapes_(shapes), max_batch_(max_batch), formats_(formats) {}

  absl::StatusOr<EmittedProgram> Run();

 private:
  // ---- values
  const ValueShape& VS(const std::string& v) const { return shapes_.values.at(v); }
  const LinShape& S(const std::string& v) const { return VS(v).shape; }
  int Rank(const std::string& v) const { return static_cast<int>(S(v).size()); }
  DType DT(const std::string& v) const { return VS(v).dtype; }
  std::string CT(const std::string& v) const { return CTypeOf(DT(v)); }
  // The type an elementwise functor computes v in: float for the 16-bit
  // floats (stored as K::Float16 / K::BFloat16), else v's own type.
  std::string LT(const std::string& v) const { return Is16Bit(DT(v)) ? "float" : CT(v); }
  static bool Is16Bit(DType t) { return t == DType::kFloat16 || t == DType::kBFloat16; }
  std::string Dims(const std::string& v) const {
    std::vector<std::string> d;
    for (const Lin& l : S(v)) d.push_back(LinExpr(l));
    if (d.empty()) d.push_back("1");
    return absl::StrCat("{", absl::StrJoin(d, ", "), "}");
  }
  std::string Count(const std::string& v) const { return ProdExpr(S(v), 0, S(v).size()); }
  const Tensor* Const(const std::string& v) const {
    auto it = graph_.initializers.find(v);
    return it == graph_.initializers.end() ? nullptr : &it->second;
  }
  // Compile-time integer values of a constant or batch-independent known value.
  std::optional<std::vector<int64_t>> ConstInts(const std::string& v) const;
  std::optional<std::vector<float>> ConstFloats(const std::string& v) const;

  std::string Root(const std::string& v) const {
    std::string r = v;
    for (auto it = storage_.find(r); it != storage_.end() && !it->second.base.empty(); it = storage_.find(r))
      r = it->second.base;
    return r;
  }
  size_t AddWeight(const void* data, size_t bytes) {
    size_t off = AlignUp(weights_.size());
    weights_.resize(off + std::max<size_t>(bytes, 1), 0);
    if (bytes) std::memcpy(weights_.data() + off, data, bytes);
    return off;
  }
  // Raw fixed-point weights in the narrowest integer type holding the
  // width; returns "reinterpret_cast<const T*>(w + offset)".
  std::string AddFixedWeights(const std::vector<int32_t>& raw, int width) {
    if (width <= 8) {
      std::vector<int8_t> v(raw.begin(), raw.end());
      return absl::StrCat("reinterpret_cast<const int8_t*>(w + ", AddWeight(v.data(), v.size()), ")");
    }
    if (width <= 16) {
      std::vector<int16_t> v(raw.begin(), raw.end());
      return absl::StrCat("reinterpret_cast<const int16_t*>(w + ", AddWeight(v.data(), v.size() * 2), ")");
    }
    return absl::StrCat("reinterpret_cast<const int32_t*>(w + ", AddWeight(raw.data(), raw.size() * 4), ")");
  }
  // 16-bit copy of float weights in the blob; returns its offset.
  size_t AddWeight16(const float* data, size_t count, int format) {
    std::vector<uint16_t> h(count);
    for (size_t i = 0; i < count; ++i)
      h[i] = format == hepml_emitted::kWeightBF16 ? hepml_emitted::FloatToBf16(data[i]) : hepml_emitted::FloatToHalf(data[i]);
    return AddWeight(h.data(), count * 2);
  }
  // For a constant float weight v of node n stored 16-bit: emits its widening
  // into a scratch buffer and returns the buffer's pointer; "" when v stays float.
  std::string Widened16(const Node& n, const std::string& v) {
    const int format = Format16(n.name);
    const Tensor* t = Const(v);
    if (format == 0 || t == nullptr || t->dtype() != DType::kFloat32) return "";
    const size_t off = AddWeight16(t->data<float>(), t->size(), format);
    const std::string buf = Scratch("float", t->size() * 4);
    Code(absl::StrCat("K::DecodeWeights<", format, ">(", t->size(), ", reinterpret_cast<const uint16_t*>(w + ", off,
                      "), ", buf, ");"));
    return buf;
  }
  // Pointer expression for reading value v (registers the read).
  absl::StatusOr<std::string> In(const std::string& v);
  // Pointer expression for writing output v of the current node.
  std::string Out(const std::string& v);
  // A scratch arena buffer of `bytes` for the current step.
  std::string Scratch(const std::string& ctype, size_t bytes);
  std::string Ptr(const std::string& v, bool write) const;

  void BeginStep(const Node& n) {
    cur_ = Step{};
    cur_.code = absl::StrCat("  // ", absl::StrReplaceAll(n.Describe(), {{"\n", " "}, {"\r", " "}}), "\n");
  }
  void Code(const std::string& s) { absl::StrAppend(&cur_.code, "  ", s, "\n"); }
  void EndStep() {
    steps_.push_back(std::move(cur_));
    cur_ = Step{};
  }
  absl::Status Unsupported(const Node& n, const std::string& why) const {
    return absl::UnimplementedError(absl::StrCat(n.Describe(), ": hepml compile cannot emit ", n.op_type,
                                                 why.empty() ? "" : absl::StrCat(" (", why, ")")));
  }
  // The 16-bit format of node `name` (kWeightF16 / kWeightBF16), else 0.
  int Format16(const std::string& name) const {
    const int f = formats_.For(name);
    return f == hepml_emitted::kWeightF16 || f == hepml_emitted::kWeightBF16 ? f : 0;
  }
  // kWeightInt8 (when the node's input was calibrated) or kWeightFixed, else 0.
  int FormatQ(const std::string& name) const {
    if (formats_.qdq.count(name)) return kWeightInt8;
    const int f = formats_.For(name);
    if (f == kWeightInt8) return formats_.input_scale.count(name) ? f : 0;
    return f == kWeightFixed ? f : 0;
  }
  // Largest element count of value v over the batches.
  int64_t MaxCount(const LinShape& s, size_t from, size_t to) const {
    const LinShape part(s.begin() + static_cast<std::ptrdiff_t>(from), s.begin() + static_cast<std::ptrdiff_t>(to));
    return std::max(ProdAt(part, 1), ProdAt(part, max_batch_));
  }
  // Dense layer y = act(alpha * a x W^T + beta * C) with int8 or fixed-point
  // weights; w is [N, K] row-major float.
  absl::Status EmitDenseQuant(const Node& n, int format, const std::vector<float>& w, int64_t N, int64_t K,
                              float alpha, float beta, const std::string& act);
  // The int8 form of a layer: from a QDQ model (formats_.qdq) or quantised
  // here (weights per output channel, input scale from the calibration).
  struct Int8Layer {
    float x_scale = 1.f;
    int x_zero_point = 0, lo = -127, hi = 127;
    bool x_uint8 = false;
    std::vector<int8_t> rows;  // [N, K]
    std::vector<float> w_scales;
  };
  Int8Layer Int8For(const Node& n, const std::vector<float>& w, int64_t N, int64_t K) {
    Int8Layer l;
    auto it = formats_.qdq.find(n.name);
    if (it != formats_.qdq.end()) {
      const WeightFormats::QdqLayer& q = it->second;
      l.x_scale = q.x_scale;
      l.x_zero_point = q.x_zero_point;
      l.x_uint8 = q.x_uint8;
      l.lo = q.x_uint8 ? 0 : -128;
      l.hi = q.x_uint8 ? 255 : 127;
      l.rows = q.rows;
      l.w_scales = q.w_scales;
      quant_nodes_.push_back(absl::StrCat(n.name, " int8 from QDQ (input scale ", l.x_scale, ", zero point ",
                                          l.x_zero_point, ")"));
      return l;
    }
    l.x_scale = formats_.input_scale.at(n.name);
    const Int8Weights q = QuantizeRowsInt8(w.data(), N, K, K);
    l.rows = q.values;
    l.w_scales = q.scales;
    quant_nodes_.push_back(absl::StrCat(n.name, " int8 (input scale ", l.x_scale, ")"));
    return l;
  }
  static std::vector<int8_t> PadK(const std::vector<int8_t>& rows, int64_t N, int64_t K, int64_t kp) {
    std::vector<int8_t> out(static_cast<size_t>(N * kp), 0);
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) out[j * kp + k] = rows[j * K + k];
    return out;
  }
  // Row sums of the weights for a non-zero input zero point, else "nullptr".
  std::string WsumPtr(const Int8Layer& l, int64_t N, int64_t K) {
    if (l.x_zero_point == 0) return "nullptr";
    std::vector<int32_t> sums(static_cast<size_t>(N), 0);
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) sums[j] += l.rows[j * K + k];
    return absl::StrCat("reinterpret_cast<const int32_t*>(w + ", AddWeight(sums.data(), sums.size() * 4), ")");
  }
  absl::Status EmitNode(const Node& n);
  absl::Status EmitGemm(const Node& n);
  absl::Status EmitMatMul(const Node& n);
  absl::Status EmitConv(const Node& n);
  absl::Status EmitPool(const Node& n);
  absl::Status EmitUnary(const Node& n);
  absl::Status EmitBinary(const Node& n);
  absl::Status EmitCopyAlias(const Node& n);
  absl::Status EmitLstm(const Node& n);
  absl::Status EmitLstmRuntimeWeights(const Node& n);
  // The operands both LSTM emitters share: initial states and outputs (empty
  // when absent) and the per-step scratch (gates, h, c) for max_b rows.
  struct LstmOperands {
    std::string h0, c0, y, yh, yc, gates, hs, cs;
    std::string lens = "nullptr", xs = "nullptr";  // sequence_lens and its gathered step rows
  };
  absl::StatusOr<LstmOperands> LstmIo(const Node& n, int64_t max_b, int64_t I, int64_t H, int64_t G);
  absl::Status EmitRnnGru(const Node& n);
  absl::Status EmitConcat(const Node& n);
  absl::Status EmitSlice(const Node& n);
  absl::Status EmitReduce(const Node& n);
  absl::Status EmitBatchNorm(const Node& n);
  // ArgMax/ArgMin, CumSum, Hardmax, Trilu, Split, the losses; *handled false
  // for other operators.
  absl::Status EmitMisc(const Node& n, bool* handled);
  // ONNX's integer operators on run-time operands (int8.h); *handled false
  // for other operators.
  absl::Status EmitInteger(const Node& n, bool* handled);
  // Einsum, Det, LRN, MeanVarianceNormalization, ReverseSequence, Compress
  // with a constant condition, BatchNormalization in training mode (extra.h);
  // *handled false for other operators.
  absl::Status EmitExtra(const Node& n, bool* handled);
  absl::Status EmitResize(const Node& n);
  absl::Status EmitConvTranspose(const Node& n);
  absl::Status EmitCopy(const std::string& from, const std::string& to, const std::string& label);

  const Graph& graph_;
  const GraphShapes& shapes_;
  int64_t max_batch_;
  const WeightFormats& formats_;
  absl::flat_hash_map<std::string, Storage> storage_;
  absl::flat_hash_map<std::string, int> output_of_;  // graph output value -> position
  std::vector<uint8_t> weights_;
  std::vector<Step> steps_;
  Step cur_;
  std::vector<ArenaBlock> scratch_;
  std::set<std::string> kernels_;
  std::set<std::string> sparse_nodes_;
  // How EmitGemm takes a Gemm of mostly zero weights (--prune); see there.
  struct SparsePlan {
    bool csc = false;     // the sparse kernels (GemmSparse)
    bool batch = false;   // ... with the batch-vectorised one reachable (scratch planned)
    int64_t batch_min = 0, nnz = 0, K = 0, N = 0;
    double density = 1.0;
    bool lanes = false, dense_copy = true;
  };
  SparsePlan PlanSparse(const Node& n) const;
  // Linked pruned layers (gemm.h GemmSparseLinked), by node name: the chain's
  // crossover and whether the layer reads / writes transposed blocks.
  struct SparseLink {
    int64_t chain_min = 0;
    bool in_t = false, out_t = false;
    std::string next;
  };
  std::map<std::string, SparseLink> sparse_links_;
  void LinkSparseChains();
  // Inputs of MaxPool nodes a 3x3 convolution already pooled as it stored
  // its output (EmitConv): those MaxPools emit nothing.
  std::set<std::string> pooled_by_conv_;
  // The MaxPool 2x2 / 2 that alone reads convolution output `v`, or null.
  const Node* SoleMaxPool2x2Reader(const std::string& v) const;
  std::vector<std::string> quant_nodes_;
  std::vector<IoSpec> inputs_, outputs_;
  int next_scratch_ = 0;
};

std::optional<std::vector<int64_t>> Emitter::ConstInts(const std::string& v) const {
  if (v.empty()) return std::nullopt;
  if (const Tensor* t = Const(v)) {
    std::vector<int64_t> out;
    if (t->dtype() == DType::kInt64) out.assign(t->data<int64_t>(), t->data<int64_t>() + t->size());
    else if (t->dtype() == DType::kInt32) out.assign(t->data<int32_t>(), t->data<int32_t>() + t->size());
    else return std::nullopt;
    return out;
  }
  const ValueShape* vs = shapes_.Find(v);
  if (vs && vs->known) {
    std::vector<int64_t> out;
    for (const Lin& l : *vs->known) {
      if (!l.IsConst()) return std::nullopt;
      out.push_back(l.fixed);
    }
    return out;
  }
  return std::nullopt;
}

std::optional<std::vector<float>> Emitter::ConstFloats(const std::string& v) const {
  const Tensor* t = v.empty() ? nullptr : Const(v);
  if (t == nullptr || t->dtype() != DType::kFloat32) return std::nullopt;
  return std::vector<float>(t->data<float>(), t->data<float>() + t->size());
}

std::string Emitter::Ptr(const std::string& v, bool write) const {
  const std::string root = Root(v);
  const Storage& st = storage_.at(root);
  const std::string ct = CT(v);
  const std::string cst = write ? "" : "const ";
  switch (st.loc) {
    case Loc::kInput: return absl::StrCat("static_cast<const ", ct, "*>(in[", st.index, "])");
    case Loc::kOutput: return absl::StrCat("static_cast<", cst, ct, "*>(out[", st.index, "])");
    case Loc::kWeight: return absl::StrCat("reinterpret_cast<const ", ct, "*>(w + ", st.offset, ")");
    case Loc::kArena: return absl::StrCat("reinterpret_cast<", cst, ct, "*>(a + @OFF{", root, "}@)");
  }
  return "";
}

absl::StatusOr<std::string> Emitter::In(const std::string& v) {
  if (!storage_.count(v) && Const(v) != nullptr) {
    // Initializers join the weights when a kernel first reads them.
    const Tensor* t = Const(v);
    if (CTypeOf(t->dtype()) == nullptr)
      return absl::UnimplementedError(absl::StrCat("constant '", v, "' is ", DTypeName(t->dtype())));
    storage_[v] = Storage{Loc::kWeight, 0, AddWeight(t->raw_data(), t->nbytes()), ""};
  }
  if (!storage_.count(v)) {
    // A value not yet stored: a folded shape value the kernel reads as data.
    const ValueShape* vs = shapes_.Find(v);
    if (vs == nullptr || !vs->known) return absl::InternalError(absl::StrCat("value '", v, "' has no storage"));
    const char* ct = CTypeOf(vs->dtype);
    if (ct == nullptr) return absl::UnimplementedError(absl::StrCat("value '", v, "' of type ", DTypeName(vs->dtype)));
    bool constant = true;
    for (const Lin& l : *vs->known) constant &= l.IsConst();
    if (constant) {
      std::vector<uint8_t> bytes(vs->known->size() * DTypeSize(vs->dtype));
      for (size_t i = 0; i < vs->known->size(); ++i) {
        const int64_t x = (*vs->known)[i].fixed;
        switch (vs->dtype) {
          case DType::kInt64: std::memcpy(bytes.data() + 8 * i, &x, 8); break;
          case DType::kInt32: {
            int32_t y = static_cast<int32_t>(x);
            std::memcpy(bytes.data() + 4 * i, &y, 4);
            break;
          }
          case DType::kBool: bytes[i] = x != 0; break;
          case DType::kFloat32: {
            float f = static_cast<float>(x);
            std::memcpy(bytes.data() + 4 * i, &f, 4);
            break;
          }
          default: break;
        }
      }
      storage_[v] = Storage{Loc::kWeight, 0, AddWeight(bytes.data(), bytes.size()), ""};
    } else {
      // Depends on the batch: written at the start of run().
      storage_[v] = Storage{Loc::kArena, 0, 0, ""};
      Step s;
      std::vector<std::string> vals;
      for (const Lin& l : *vs->known) vals.push_back(LinExpr(l));
      s.code = absl::StrCat("  // shape value '", v, "'\n  {\n    const ", ct, " values[] = {", absl::StrJoin(vals, ", "),
                            "};\n    std::memcpy(", Ptr(v, true), ", values, sizeof(values));\n  }\n");
      s.writes.insert(v);
      steps_.insert(steps_.begin(), std::move(s));
    }
  }
  cur_.reads.insert(Root(v));
  return Ptr(v, false);
}

std::string Emitter::Out(const std::string& v) {
  if (!storage_.count(v)) {
    auto it = output_of_.find(v);
    if (it != output_of_.end()) storage_[v] = Storage{Loc::kOutput, it->second, 0, ""};
    else storage_[v] = Storage{Loc::kArena, 0, 0, ""};
  }
  cur_.writes.insert(Root(v));
  return Ptr(v, true);
}

std::string Emitter::Scratch(const std::string& ctype, size_t bytes) {
  const std::string name = absl::StrCat("@scratch", next_scratch_++);
  ArenaBlock blk;
  blk.name = name;
  blk.bytes = bytes;
  scratch_.push_back(blk);
  cur_.reads.insert(name);
  cur_.writes.insert(name);
  return absl::StrCat("reinterpret_cast<", ctype, "*>(a + @OFF{", name, "}@)");
}

absl::Status Emitter::EmitCopy(const std::string& from, const std::string& to, const std::string& label) {
  Step s;
  cur_ = Step{};
  HEPML_ASSIGN_OR_RETURN(std::string src, In(from));
  std::string dst = Out(to);
  cur_.code = absl::StrCat("  // ", label, "\n  std::memcpy(", dst, ", ", src, ", sizeof(", CT(to), ") * static_cast<size_t>(",
                           Count(to), "));\n");
  EndStep();
  return absl::OkStatus();
}

std::optional<int> ActEnum(const std::string& name, std::string* out) {
  static const std::map<std::string, std::string> kActs = {
      {"", "K::Act::kNone"},         {"None", "K::Act::kNone"},     {"Relu", "K::Act::kRelu"},
      {"LeakyRelu", "K::Act::kLeakyRelu"}, {"Sigmoid", "K::Act::kSigmoid"}, {"Tanh", "K::Act::kTanh"},
      {"Clip", "K::Act::kClip"},     {"Gelu", "K::Act::kGelu"},     {"Softplus", "K::Act::kSoftplus"}};
  auto it = kActs.find(name);
  if (it == kActs.end()) return std::nullopt;
  *out = it->second;
  return 0;
}

// act enum, alpha, beta of a FusedGemm / FusedConv.
absl::StatusOr<std::string> ActArgs(const Node& n) {
  std::string act;
  const std::string name = n.GetString("activation", "");
  if (!ActEnum(name, &act)) {
    return absl::UnimplementedError(absl::StrCat(n.Describe(), ": activation '", name, "' cannot be emitted"));
  }
  float alpha = 0, beta = 0;
  if (name == "LeakyRelu") alpha = n.GetFloat("activation_alpha", 0.01f);
  if (name == "Clip") {
    alpha = n.GetFloat("activation_alpha", -std::numeric_limits<float>::infinity());
    beta = n.GetFloat("activation_beta", std::numeric_limits<float>::infinity());
  }
  return absl::StrCat(act, ", ", FloatLit(alpha), ", ", FloatLit(beta));
}

Emitter::SparsePlan Emitter::PlanSparse(const Node& n) const {
  SparsePlan p;
  if ((n.op_type != "Gemm" && n.op_type != "FusedGemm") || n.inputs.size() < 2 || !formats_.sparse_gemm) return p;
  const Tensor* b = Const(n.inputs[1]);
  if (b == nullptr || b->dtype() != DType::kFloat32 || b->rank() != 2 || DT(n.inputs[0]) != DType::kFloat32) return p;
  if (n.GetInt("transA", 0) != 0 || FormatQ(n.name) != 0) return p;
  const LinShape& sa = S(n.inputs[0]);
  if (sa.size() < 2) return p;
  const bool trans_b = n.GetInt("transB", 0) != 0;
  const int64_t r = b->dim(0), c = b->dim(1);
  p.K = trans_b ? c : r;
  p.N = trans_b ? r : c;
  const float* src = b->data<float>();
  for (int64_t i = 0; i < r * c; ++i) p.nnz += src[i] != 0.f;
  // Rules, measured on the 2-core EPYC (AVX-512; bench/compile_bench.py
  // --prune) at 20% non-zero over layers of 5 to 512 columns: from 16 batch
  // rows up the batch-vectorised sparse kernel beats the dense tiles (3-15x
  // at 256 rows) and the single-row kernels; its cost is per 64-row block
  // and scales with the non-zeros, so the crossover is taken as 80 x
  // density rows. Below it, rows one at a time: the lane slots (1.0-3.7x
  // faster than the dense tiles at batch 1, at half their bytes) where the
  // reduction is at least one 16-row chunk; else the dense tiles, except in
  // layers narrower than one 16-column vector tile (scalar edge loops),
  // where the gathered dot products win.
  p.density = r * c > 0 ? static_cast<double>(p.nnz) / static_cast<double>(r * c) : 1.0;
  const int64_t m_max = MaxCount(sa, 0, sa.size() - 1);
  p.lanes = p.K >= hepml_emitted::kSpLanes;
  p.dense_copy = !p.lanes && p.N >= 16;
  p.batch_min = std::max<int64_t>(2, static_cast<int64_t>(std::lround(80.0 * p.density)));
  p.csc = p.density <= 0.3 && (!p.dense_copy || m_max >= p.batch_min);
  p.batch = p.csc && m_max >= p.batch_min;
  return p;
}

// Pairs of pruned layers on the batch kernel where the second is the only
// reader of the first's output (not a graph output) and reads it as its A;
// the writer's bias, if any, is one per column (its epilogue then runs on the
// transposed blocks). Each chain of such pairs gets the largest crossover of
// its layers as the batch from which all of them link.
void Emitter::LinkSparseChains() {
  absl::flat_hash_map<std::string, int> readers;
  absl::flat_hash_map<std::string, const Node*> reader;
  for (const Node& n : graph_.nodes) {
    for (const std::string& in : n.inputs) {
      if (in.empty()) continue;
      ++readers[in];
      reader[in] = &n;
    }
  }
  for (const ValueInfo& o : graph_.outputs) readers[o.name] += 2;  // never linked
  absl::flat_hash_map<std::string, SparsePlan> plans;
  auto plan_of = [&](const Node& n) -> const SparsePlan& {
    auto it = plans.find(n.name);
    if (it == plans.end()) it = plans.emplace(n.name, PlanSparse(n)).first;
    return it->second;
  };
  std::map<std::string, std::string> next;  // writer -> reader
  std::set<std::string> has_prev;
  for (const Node& n : graph_.nodes) {
    if (n.name.empty() || n.outputs.empty() || !plan_of(n).batch) continue;
    const std::string& y = n.outputs[0];
    if (readers[y] != 1) continue;
    const Node& r = *reader.at(y);
    if (r.name.empty() || r.inputs[0] != y || !plan_of(r).batch) continue;
    if (n.HasInput(2)) {
      const LinShape& sc = S(n.inputs[2]);
      if (sc.size() > 2 || (sc.size() == 2 && !(sc[0].IsConst() && sc[0].fixed == 1))) continue;
    }
    next[n.name] = r.name;
    has_prev.insert(r.name);
  }
  for (const auto& [first, unused] : next) {
    if (has_prev.count(first)) continue;  // not the head of its chain
    int64_t chain_min = 0;
    for (std::string v = first;; v = next.at(v)) {
      chain_min = std::max(chain_min, plans.at(v).batch_min);
      if (!next.count(v)) break;
    }
    for (std::string v = first;; v = next.at(v)) {
      SparseLink& l = sparse_links_[v];
      l.chain_min = chain_min;
      l.in_t = has_prev.count(v) > 0;
      l.out_t = next.count(v) > 0;
      if (!l.out_t) break;
      l.next = next.at(v);
    }
  }
}

absl::Status Emitter::EmitGemm(const Node& n) {
  const bool fused = n.op_type == "FusedGemm";
  const std::string& a = n.inputs[0];
  const std::string& bname = n.inputs[1];
  if (DT(a) != DType::kFloat32) return Unsupported(n, "only float32");
  bool trans_a = n.GetInt("transA", 0) != 0, trans_b = n.GetInt("transB", 0) != 0;
  const float alpha = n.GetFloat("alpha", 1.f), beta = n.GetFloat("beta", 1.f);
  const LinShape& sa = S(a);
  const LinShape& sb = S(bname);
  if (sb.size() != 2 || sa.size() < 2 || (sa.size() > 2 && trans_a)) return Unsupported(n, "operand ranks");
  const std::string M = trans_a ? LinExpr(sa[1]) : ProdExpr(sa, 0, sa.size() - 1);
  const std::string K = trans_a ? LinExpr(sa[0]) : LinExpr(sa.back());
  if (!sb[0].IsConst() || !sb[1].IsConst()) return Unsupported(n, "B depends on the batch");
  const int64_t N = trans_b ? sb[0].fixed : sb[1].fixed;
  std::string bptr;
  const Tensor* bconst = Const(bname);
  bool packed = bconst != nullptr && bconst->dtype() == DType::kFloat32 && !trans_a;
  if (const int qf = FormatQ(n.name); qf != 0 && packed) {
    // Weights as [N, K] rows, one per output column.
    const int64_t r = bconst->dim(0), c = bconst->dim(1);
    const float* src = bconst->data<float>();
    std::vector<float> nk(src, src + r * c);
    if (!trans_b)
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) nk[j * r + i] = src[i * c + j];
    std::string act = "K::Act::kNone, 0.f, 0.f";
    if (fused) {
      HEPML_ASSIGN_OR_RETURN(act, ActArgs(n));
    }
    return EmitDenseQuant(n, qf, nk, N, trans_b ? c : r, alpha, beta, act);
  }
  int format = 0;
  std::string csc;  // "ptr, idx, val, batch_min, at, ct" of K::GemmSparse
  bool dense_copy = true;
  if (packed && formats_.sparse_gemm) {
    const int64_t r = bconst->dim(0), c = bconst->dim(1), kk = trans_b ? c : r;
    const float* src = bconst->data<float>();
    auto at = [&](int64_t k, int64_t j) { return trans_b ? src[j * c + k] : src[k * N + j]; };
    const SparsePlan plan = PlanSparse(n);
    const int64_t nnz = plan.nnz, batch_min = plan.batch_min;
    const int64_t m_max = MaxCount(sa, 0, sa.size() - 1);
    const bool lanes = plan.lanes;
    dense_copy = plan.dense_copy;
    if (plan.csc) {
      std::string lane_args = "nullptr, nullptr, nullptr, nullptr";
      if (lanes) {
        // Lane slots: per 16-column block, per 16-row chunk, as many slots as
        // the fullest column of the block has non-zeros in the chunk.
        std::vector<int32_t> sptr{0}, k0;
        std::vector<uint8_t> lidx;
        std::vector<float> lval;
        for (int64_t j = 0; j < N; j += hepml_emitted::kSpLanes) {
          for (int64_t lo = 0; lo < kk; lo += 16) {
            const int64_t hi = std::min<int64_t>(kk, lo + 16), start = std::min<int64_t>(lo, kk - 16);
            std::vector<std::vector<int64_t>> rows(hepml_emitted::kSpLanes);
            size_t slots = 0;
            for (int64_t l = 0; l < hepml_emitted::kSpLanes && j + l < N; ++l) {
              for (int64_t k = lo; k < hi; ++k)
                if (at(k, j + l) != 0.f) rows[l].push_back(k);
              slots = std::max(slots, rows[l].size());
            }
            for (size_t t = 0; t < slots; ++t) {
              k0.push_back(static_cast<int32_t>(start));
              for (int64_t l = 0; l < hepml_emitted::kSpLanes; ++l) {
                const bool has = t < rows[l].size();
                lidx.push_back(has ? static_cast<uint8_t>(rows[l][t] - start) : 0);
                lval.push_back(has ? at(rows[l][t], j + l) : 0.f);
              }
            }
          }
          sptr.push_back(static_cast<int32_t>(k0.size()));
        }
        lane_args = absl::StrCat("reinterpret_cast<const int32_t*>(w + ", AddWeight(sptr.data(), sptr.size() * 4),
                                 "), reinterpret_cast<const int32_t*>(w + ", AddWeight(k0.data(), k0.size() * 4),
                                 "), reinterpret_cast<const uint8_t*>(w + ", AddWeight(lidx.data(), lidx.size()),
                                 "), reinterpret_cast<const float*>(w + ", AddWeight(lval.data(), lval.size() * 4),
                                 ")");
      }
      // CSC by output column: for column j, the k and w[k, j] of its non-zeros.
      std::vector<int32_t> ptr(N + 1, 0), idx;
      std::vector<float> val;
      for (int64_t j = 0; j < N; ++j) {
        for (int64_t k = 0; k < kk; ++k)
          if (at(k, j) != 0.f) {
            idx.push_back(static_cast<int32_t>(k));
            val.push_back(at(k, j));
          }
        ptr[j + 1] = static_cast<int32_t>(idx.size());
      }
      std::string scratch = "nullptr, nullptr";
      if (m_max >= batch_min) {
        scratch = absl::StrCat(Scratch("float", static_cast<size_t>(kk * hepml_emitted::kSpMBMax) * 4), ", ",
                               Scratch("float", static_cast<size_t>(N * hepml_emitted::kSpMBMax) * 4));
      }
      csc = absl::StrCat(lane_args, ", @DENSE@, reinterpret_cast<const int32_t*>(w + ",
                         AddWeight(ptr.data(), ptr.size() * 4), "), reinterpret_cast<const int32_t*>(w + ",
                         AddWeight(idx.data(), idx.size() * 4), "), reinterpret_cast<const float*>(w + ",
                         AddWeight(val.data(), val.size() * 4), "), ", batch_min, ", ", scratch);
      packed = dense_copy;
      const auto link = sparse_links_.find(n.name);
      sparse_nodes_.insert(absl::StrCat(
          n.name, " (", nnz, " of ", r * c, " non-zero): sparse kernel from batch ", batch_min,
          m_max >= batch_min ? "" : " (above --max-batch: never)", ", below it ",
          lanes ? "lane slots" : dense_copy ? "the dense tiles" : "gathered dot products",
          link != sparse_links_.end() && link->second.out_t
              ? absl::StrCat("; linked to ", link->second.next, " from batch ", link->second.chain_min,
                             " (no transposes between)")
              : ""));
    } else if (plan.density <= 0.3) {
      sparse_nodes_.insert(absl::StrCat(n.name, " (", nnz, " of ", r * c, " non-zero): dense tiles (--max-batch ",
                                        m_max, " is below the sparse crossover, batch ", batch_min, ")"));
    }
  }
  if (packed) {
    // Constant weights: [K, N] (transposed here if stored [N, K]), then
    // packed into the column panels the GEMM tiles read sequentially.
    const int64_t r = bconst->dim(0), c = bconst->dim(1);
    std::vector<float> kn(bconst->data<float>(), bconst->data<float>() + r * c);
    if (trans_b) {
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) kn[j * r + i] = bconst->data<float>()[i * c + j];
    }
    const int64_t kk = trans_b ? c : r;
    std::vector<float> pk(kn.size());
    hepml_emitted::PackB(kk, N, kn.data(), pk.data());
    format = csc.empty() ? Format16(n.name) : 0;
    if (format != 0) {
      bptr = absl::StrCat("reinterpret_cast<const uint16_t*>(w + ", AddWeight16(pk.data(), pk.size(), format), ")");
    } else {
      bptr = absl::StrCat("reinterpret_cast<const float*>(w + ", AddWeight(pk.data(), pk.size() * 4), ")");
    }
  } else if (!csc.empty()) {
    bptr = "nullptr";
  } else {
    HEPML_ASSIGN_OR_RETURN(bptr, In(bname));
  }
  std::string cptr = "nullptr";
  int64_t c_rows = 1, c_cols = 1;
  if (n.HasInput(2)) {
    const LinShape& sc = S(n.inputs[2]);
    for (const Lin& l : sc)
      if (!l.IsConst()) return Unsupported(n, "bias depends on the batch");
    if (sc.size() == 1) c_cols = sc[0].fixed;
    else if (sc.size() == 2) {
      c_rows = sc[0].fixed;
      c_cols = sc[1].fixed;
      if (c_rows != 1 && fused && sa.size() > 2) return Unsupported(n, "per-row bias with a rank > 2 input");
    } else if (sc.size() > 2) {
      return Unsupported(n, "bias rank");
    }
    HEPML_ASSIGN_OR_RETURN(cptr, In(n.inputs[2]));
  }
  std::string act = "K::Act::kNone, 0.f, 0.f";
  if (fused) {
    HEPML_ASSIGN_OR_RETURN(act, ActArgs(n));
  }
  HEPML_ASSIGN_OR_RETURN(std::string aptr, In(a));
  const std::string y = Out(n.outputs[0]);
  if (!csc.empty()) {
    const auto link = sparse_links_.find(n.name);
    const std::string head =
        link == sparse_links_.end()
            ? absl::StrCat("K::GemmSparse(", M, ", ", N, ", ", K, ", ", aptr, ", ")
            : absl::StrCat("K::GemmSparseLinked(", M, ", ", N, ", ", K, ", ", aptr, ", ",
                           link->second.in_t ? "true" : "false", ", ", link->second.out_t ? "true" : "false", ", ",
                           link->second.chain_min, ", ");
    Code(absl::StrCat(head, absl::StrReplaceAll(csc, {{"@DENSE@", bptr}}), ", ", FloatLit(alpha), ", ",
                      FloatLit(beta), ", ", cptr, ", ", c_rows, ", ", c_cols, ", ", act, ", ", y, ");"));
  } else if (packed) {
    Code(absl::StrCat(format != 0 ? absl::StrCat("K::GemmPacked16<", format, ">(") : std::string("K::GemmPacked("), M, ", ", N, ", ", K, ", ", aptr, ", ", bptr, ", ", FloatLit(alpha), ", ",
                      FloatLit(beta), ", ", cptr, ", ", c_rows, ", ", c_cols, ", ", act, ", ", y, ");"));
  } else {
    Code(absl::StrCat("K::Gemm(", M, ", ", N, ", ", K, ", ", aptr, ", ", trans_a ? "true" : "false", ", ", bptr, ", ",
                      trans_b ? "true" : "false", ", ", FloatLit(alpha), ", ", FloatLit(beta), ", ", cptr, ", ", c_rows,
                      ", ", c_cols, ", ", act, ", ", y, ");"));
  }
  kernels_.insert("gemm.h");
  return absl::OkStatus();
}

// The accumulator of a fixed-point dot product over k terms: int64 while
// k * 2^(2W - 2) plus the bias fits in 62 bits, else the compiler's 128-bit
// integer (checked where the generated code is compiled).
std::string FixedAcc(const FixedType& t, int64_t k) {
  int bits = 0;
  while ((int64_t{1} << bits) < k + 1) ++bits;
  return 2 * (t.width - 1) + bits <= 61 ? "int64_t" : "K::FxWide";
}

absl::Status Emitter::EmitDenseQuant(const Node& n, int format, const std::vector<float>& w, int64_t N, int64_t K,
                                     float alpha, float beta, const std::string& act) {
  const auto qdq = formats_.qdq.find(n.name);
  const std::string& a = qdq != formats_.qdq.end() ? qdq->second.x : n.inputs[0];
  const LinShape& sa = S(a);
  const std::string M = ProdExpr(sa, 0, sa.size() - 1);
  const int64_t m_max = MaxCount(sa, 0, sa.size() - 1);
  std::string cptr = "nullptr";
  int64_t c_rows = 1, c_cols = 1;
  const bool has_c = (n.op_type == "Gemm" || n.op_type == "FusedGemm") && n.HasInput(2);
  if (has_c) {
    const LinShape& sc = S(n.inputs[2]);
    for (const Lin& l : sc)
      if (!l.IsConst()) return Unsupported(n, "bias depends on the batch");
    if (sc.size() == 1) c_cols = sc[0].fixed;
    else if (sc.size() == 2) {
      c_rows = sc[0].fixed;
      c_cols = sc[1].fixed;
      if (c_rows != 1 && sa.size() > 2) return Unsupported(n, "per-row bias with a rank > 2 input");
    } else if (sc.size() > 2) {
      return Unsupported(n, "bias rank");
    }
    HEPML_ASSIGN_OR_RETURN(cptr, In(n.inputs[2]));
  }
  HEPML_ASSIGN_OR_RETURN(std::string aptr, In(a));
  kernels_.insert("gemm.h");
  kernels_.insert("conv.h");
  kernels_.insert("int8.h");
  if (format == kWeightInt8) {
    const Int8Layer l = Int8For(n, w, N, K);
    const int64_t kp = hepml_emitted::QPad(K);
    std::vector<float> scale(l.w_scales);
    for (float& s : scale) s *= l.x_scale * alpha;
    const std::vector<int8_t> rows = PadK(l.rows, N, K, kp);
    const size_t woff = AddWeight(rows.data(), rows.size());
    const size_t soff = AddWeight(scale.data(), scale.size() * 4);
    const std::string ta = l.x_uint8 ? "uint8_t" : "int8_t";
    const std::string xq = Scratch(ta, static_cast<size_t>(m_max * kp));
    const std::string y = Out(n.outputs[0]);
    Code(absl::StrCat("K::QuantizeRows<", ta, ">(", M, ", ", K, ", ", kp, ", ", aptr, ", ", FloatLit(l.x_scale), ", ",
                      l.x_zero_point, ", ", l.lo, ", ", l.hi, ", ", xq, ");"));
    Code(absl::StrCat("K::GemmQ<", ta, ">(", M, ", ", N, ", ", kp, ", ", xq, ", ", l.x_zero_point,
                      ", reinterpret_cast<const int8_t*>(w + ", woff, "), ", WsumPtr(l, N, K), ", reinterpret_cast<const float*>(w + ",
                      soff, "), ", N, ", 1, ", y, ");"));
    Code(absl::StrCat("K::GemmEpilogue(", M, ", ", N, ", 1.f, ", FloatLit(beta), ", ", cptr, ", ", c_rows, ", ", c_cols,
                      ", ", act, ", ", y, ");"));
    return absl::OkStatus();
  }
  const FixedType t = formats_.Fixed(n.name);
  quant_nodes_.push_back(absl::StrCat(n.name, " ", FixedTypeName(t)));
  std::vector<float> bias;
  if (has_c) {
    auto c = ConstFloats(n.inputs[2]);
    if (!c || c_rows != 1 || (c_cols != 1 && c_cols != N)) return Unsupported(n, "fixed point needs a constant bias per output column");
    bias.assign(static_cast<size_t>(N), 0.f);
    for (int64_t j = 0; j < N; ++j) bias[j] = beta * (*c)[c_cols == 1 ? 0 : j];
  }
  if (alpha != 1.f) return Unsupported(n, "fixed point needs alpha = 1");
  const std::string wptr = AddFixedWeights(ToFixedRaw(w.data(), N * K, t), t.width);
  std::string braw = "nullptr";
  if (!bias.empty()) {
    const std::vector<int32_t> br = ToFixedRaw(bias.data(), N, t);
    braw = absl::StrCat("reinterpret_cast<const int32_t*>(w + ", AddWeight(br.data(), br.size() * 4), ")");
  }
  const std::string xq = Scratch("int32_t", static_cast<size_t>(K * 4));
  const std::string y = Out(n.outputs[0]);
  if (FixedAcc(t, K) != "int64_t") Code("static_assert(sizeof(K::FxWide) == 16, \"this fixed-point width needs a compiler with __int128\");");
  Code(absl::StrCat("K::GemmFixed<", FixedAcc(t, K), ">(", M, ", ", N, ", ", K, ", ", aptr, ", ", wptr, ", ", braw, ", ", t.frac(), ", ", t.width, ", ",
                    t.quant, ", ", t.overflow, ", ", act, ", ", xq, ", ", y, ");"));
  kernels_.insert("fixed.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitMatMul(const Node& n) {
  const std::string &a = n.inputs[0], &bn = n.inputs[1];
  if (DT(a) != DType::kFloat32) return Unsupported(n, "only float32");
  const LinShape &sa = S(a), &sb = S(bn);
  if (sa.size() < 2 || sb.size() < 2) return Unsupported(n, "1-D operands");
  const std::string K = LinExpr(sa.back());
  if (const int qf = FormatQ(n.name); qf != 0 && sb.size() == 2 && Const(bn) != nullptr &&
                                      Const(bn)->dtype() == DType::kFloat32) {
    const Tensor* t = Const(bn);
    const int64_t r = t->dim(0), c = t->dim(1);
    std::vector<float> nk(static_cast<size_t>(r * c));
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) nk[j * r + i] = t->data<float>()[i * c + j];
    return EmitDenseQuant(n, qf, nk, c, r, 1.f, 0.f, "K::Act::kNone, 0.f, 0.f");
  }
  HEPML_ASSIGN_OR_RETURN(std::string ap, In(a));
  std::string bp = Widened16(n, bn);
  if (bp.empty()) {
    HEPML_ASSIGN_OR_RETURN(bp, In(bn));
  }
  const std::string y = Out(n.outputs[0]);
  const std::string N = LinExpr(sb.back());
  if (sb.size() == 2) {
    Code(absl::StrCat("K::GemmNN(", ProdExpr(sa, 0, sa.size() - 1), ", ", N, ", ", K, ", ", ap, ", ", K, ", ", bp, ", ",
                      N, ", ", y, ", ", N, ", false);"));
  } else {
    // Batched: equal batch dims, or one side's batch all ones.
    const LinShape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
    auto all_one = [](const LinShape& s) {
      for (const Lin& l : s)
        if (!(l.IsConst() && l.fixed == 1)) return false;
      return true;
    };
    const LinShape& out_batch = ba.size() >= bb.size() ? ba : bb;
    std::string a_step = absl::StrCat(LinExpr(sa[sa.size() - 2]), " * ", K);
    std::string b_step = absl::StrCat(K, " * ", N);
    if (ba != bb) {
      if (all_one(ba)) a_step = "0";
      else if (all_one(bb)) b_step = "0";
      else return Unsupported(n, "broadcast batch dims");
    }
    Code(absl::StrCat("K::BatchedMatMul(", ProdExpr(out_batch, 0, out_batch.size()), ", ", LinExpr(sa[sa.size() - 2]),
                      ", ", N, ", ", K, ", ", ap, ", ", a_step, ", ", bp, ", ", b_step, ", ", y, ");"));
  }
  kernels_.insert("gemm.h");
  return absl::OkStatus();
}

// The generated K::ConvGeometry of a Conv or pooling node over constant
// spatial dims: strides, dilations, pads, auto_pad and ceil_mode resolved by
// the same rules as the runtime's kernels (ops::ComputeWindowGeometry).
absl::StatusOr<std::string> WindowGeometryCode(const Node& n, const LinShape& sx, const std::vector<int64_t>& kernel) {
  const int spatial = static_cast<int>(sx.size()) - 2;
  Shape in(spatial);
  for (int i = 0; i < spatial; ++i) in[i] = sx[i + 2].fixed;
  ops::WindowOptions options;
  options.ceil_mode = n.GetInt("ceil_mode", 0) != 0;
  auto g = ops::ComputeWindowGeometry(n, in, kernel, options);
  if (!g.ok()) return g.status();
  std::string geo = absl::StrCat("K::ConvGeometry g;\n    g.spatial = ", spatial, ";\n");
  for (int i = 0; i < spatial; ++i) {
    absl::StrAppend(&geo, "    g.in[", i, "] = ", g->in[i], "; g.out[", i, "] = ", g->out[i], "; g.kernel[", i,
                    "] = ", g->kernel[i], "; g.stride[", i, "] = ", g->strides[i], "; g.dilation[", i,
                    "] = ", g->dilations[i], "; g.pad_begin[", i, "] = ", g->pads_begin[i], ";\n");
  }
  return geo;
}

// Input channels from which a 3x3 "same" convolution runs as Winograd
// F(2x2, 3x3) (as the runtime's kernel); fewer run the direct kernel.
constexpr int64_t kWinogradMinChannels = 8;

// True for a 2-D convolution with a 3x3 kernel, stride 1, dilation 1, pads
// 1 on every side and one group: output as large as the input.
bool Is3x3Same(const Node& n, const LinShape& sx, const std::vector<int64_t>& kernel, int64_t group) {
  if (sx.size() != 4 || group != 1 || kernel != std::vector<int64_t>{3, 3}) return false;
  Shape in(2);
  for (int i = 0; i < 2; ++i) in[i] = sx[i + 2].fixed;
  auto g = ops::ComputeWindowGeometry(n, in, kernel, ops::WindowOptions{});
  if (!g.ok()) return false;
  for (int i = 0; i < 2; ++i)
    if (g->strides[i] != 1 || g->dilations[i] != 1 || g->pads_begin[i] != 1 || g->out[i] != in[i] || in[i] < 1)
      return false;
  return true;
}

const Node* Emitter::SoleMaxPool2x2Reader(const std::string& v) const {
  if (output_of_.count(v)) return nullptr;
  const Node* reader = nullptr;
  for (const Node& m : graph_.nodes)
    for (const std::string& in : m.inputs)
      if (in == v) {
        if (reader != nullptr) return nullptr;
        reader = &m;
      }
  if (reader == nullptr || !reader->domain.empty() || reader->op_type != "MaxPool" || reader->inputs.size() != 1 ||
      (reader->outputs.size() > 1 && !reader->outputs[1].empty()) || reader->GetInt("ceil_mode", 0) != 0 ||
      reader->GetInts("kernel_shape") != std::vector<int64_t>{2, 2} ||
      reader->GetInts("strides") != std::vector<int64_t>{2, 2})
    return nullptr;
  for (int64_t p : reader->GetInts("pads"))
    if (p != 0) return nullptr;
  for (int64_t d : reader->GetInts("dilations"))
    if (d != 1) return nullptr;
  const std::string auto_pad = reader->GetString("auto_pad", "NOTSET");
  if (!(auto_pad == "NOTSET" || auto_pad.empty() || auto_pad == "VALID")) return nullptr;
  return reader;
}

// True for a convolution whose kernel is all 1s with stride 1 and no pads:
// each output position reads only its own input position.
bool IsPointwise(const Node& n, const LinShape& sx, const std::vector<int64_t>& kernel) {
  const int spatial = static_cast<int>(sx.size()) - 2;
  if (spatial < 1 || static_cast<int>(kernel.size()) != spatial) return false;
  Shape in(spatial);
  for (int i = 0; i < spatial; ++i) in[i] = sx[i + 2].fixed;
  auto g = ops::ComputeWindowGeometry(n, in, kernel, ops::WindowOptions{});
  if (!g.ok()) return false;
  for (int i = 0; i < spatial; ++i)
    if (kernel[i] != 1 || g->strides[i] != 1 || g->pads_begin[i] != 0 || g->out[i] != in[i]) return false;
  return true;
}

absl::Status Emitter::EmitConv(const Node& n) {
  const std::string& x = n.inputs[0];
  const LinShape &sx = S(x), &sw = S(n.inputs[1]), &sy = S(n.outputs[0]);
  const int spatial = static_cast<int>(sx.size()) - 2;
  if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
  if (spatial < 1 || spatial > 3) return Unsupported(n, "spatial rank");
  for (size_t d = 1; d < sx.size(); ++d)
    if (!sx[d].IsConst() || !sy[d].IsConst()) return Unsupported(n, "spatial dims depend on the batch");
  const int64_t group = n.GetInt("group", 1);
  std::vector<int64_t> kernel(sw.size() - 2);
  for (size_t i = 0; i < kernel.size(); ++i) kernel[i] = sw[i + 2].fixed;
  auto geometry = WindowGeometryCode(n, sx, kernel);
  if (!geometry.ok()) return Unsupported(n, std::string(geometry.status().message()));
  const std::string& geo = *geometry;
  const int64_t c_in = sx[1].fixed, c_out = sw[0].fixed;
  int64_t col = c_in / group;
  int64_t out_size = 1;
  for (int i = 0; i < spatial; ++i) {
    col *= kernel[i];
    out_size *= sy[i + 2].fixed;
  }
  std::string act = "K::Act::kNone, 0.f, 0.f";
  if (n.op_type == "FusedConv") {
    HEPML_ASSIGN_OR_RETURN(act, ActArgs(n));
  }
  const Tensor* wconst = Const(n.inputs[1]);
  if (const int qf = FormatQ(n.name); qf != 0 && wconst != nullptr && wconst->dtype() == DType::kFloat32) {
    const auto qdq = formats_.qdq.find(n.name);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(qdq != formats_.qdq.end() ? qdq->second.x : x));
    std::string bp = "nullptr";
    std::vector<float> bias;
    if (n.HasInput(2)) {
      HEPML_ASSIGN_OR_RETURN(bp, In(n.inputs[2]));
      if (auto b = ConstFloats(n.inputs[2])) bias = *b;
    }
    const int64_t x_count = c_in * ProdAt(LinShape(sx.begin() + 2, sx.end()), 1);
    const std::string batch = LinExpr(sx[0]);
    const float* wf = wconst->data<float>();
    if (qf == kWeightInt8) {
      const Int8Layer l = Int8For(n, std::vector<float>(wf, wf + c_out * col), c_out, col);
      const int64_t kp = hepml_emitted::QPad(col);
      std::vector<float> scale(l.w_scales);
      for (float& s : scale) s *= l.x_scale;
      const std::vector<int8_t> rows = PadK(l.rows, c_out, col, kp);
      const size_t woff = AddWeight(rows.data(), rows.size());
      const size_t soff = AddWeight(scale.data(), scale.size() * 4);
      const std::string ta = l.x_uint8 ? "uint8_t" : "int8_t";
      const std::string xq = Scratch(ta, static_cast<size_t>(MaxCount(sx, 0, sx.size())));
      const std::string colT = Scratch(ta, static_cast<size_t>(out_size * kp));
      const std::string wsum = WsumPtr(l, c_out, col);
      const std::string y = Out(n.outputs[0]);
      Code(absl::StrCat("{\n    ", geo, "    K::QuantizeRows<", ta, ">(1, ", batch, " * ", x_count, ", ", batch, " * ",
                        x_count, ", ", xp, ", ", FloatLit(l.x_scale), ", ", l.x_zero_point, ", ", l.lo, ", ", l.hi, ", ",
                        xq, ");\n    K::ConvQ<", ta, ">(g, ", batch, ", ", c_in, ", ", c_out, ", ", group, ", ", xq, ", ",
                        l.x_zero_point, ", reinterpret_cast<const int8_t*>(w + ", woff, "), ", wsum,
                        ", reinterpret_cast<const float*>(w + ", soff, "), ", bp, ", ", act, ", ", colT, ", ", y,
                        ");\n  }"));
      kernels_.insert("int8.h");
    } else {
      const FixedType t = formats_.Fixed(n.name);
      quant_nodes_.push_back(absl::StrCat(n.name, " ", FixedTypeName(t)));
      if (n.HasInput(2) && static_cast<int64_t>(bias.size()) != c_out) return Unsupported(n, "fixed point needs a constant bias");
      const std::string wptr = AddFixedWeights(ToFixedRaw(wf, c_out * col, t), t.width);
      std::string braw = "nullptr";
      if (!bias.empty()) {
        const std::vector<int32_t> br = ToFixedRaw(bias.data(), c_out, t);
        braw = absl::StrCat("reinterpret_cast<const int32_t*>(w + ", AddWeight(br.data(), br.size() * 4), ")");
      }
      const std::string xq = Scratch("int32_t", static_cast<size_t>(x_count * 4));
      const std::string colT = Scratch("int32_t", static_cast<size_t>(out_size * col * 4));
      const std::string y = Out(n.outputs[0]);
      if (FixedAcc(t, col) != "int64_t") Code("static_assert(sizeof(K::FxWide) == 16, \"this fixed-point width needs a compiler with __int128\");");
      Code(absl::StrCat("{\n    ", geo, "    K::ConvFixed<", FixedAcc(t, col), ">(g, ", batch, ", ", c_in, ", ", c_out,
                        ", ", group, ", ", xp, ", ", wptr, ", ", braw, ", ",
                        t.frac(), ", ", t.width, ", ", t.quant, ", ", t.overflow, ", ", act, ", ", xq, ", ", colT, ", ",
                        y, ");\n  }"));
      kernels_.insert("int8.h");
      kernels_.insert("fixed.h");
    }
    kernels_.insert("gemm.h");
    kernels_.insert("conv.h");
    return absl::OkStatus();
  }
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  if (wconst != nullptr && wconst->dtype() == DType::kFloat32 && Format16(n.name) == 0 && Is3x3Same(n, sx, kernel, group)) {
    // 3x3 "same" convolutions: Winograd on weights transformed here, or the
    // direct kernel for few input channels (conv.h).
    const int64_t h = sx[2].fixed, wd = sx[3].fixed;
    std::string bp = "nullptr";
    if (n.HasInput(2)) {
      HEPML_ASSIGN_OR_RETURN(bp, In(n.inputs[2]));
    }
    const std::string batch = LinExpr(sx[0]);
    // A following MaxPool 2x2 / 2 that alone reads the output is done as
    // the output is stored (the pooled output written, MaxPool emits nothing).
    const Node* pool = SoleMaxPool2x2Reader(n.outputs[0]);
    const std::string& out = pool != nullptr ? pool->outputs[0] : n.outputs[0];
    if (pool != nullptr) pooled_by_conv_.insert(n.outputs[0]);
    const char* pooled = pool != nullptr ? "true" : "false";
    if (c_in >= kWinogradMinChannels) {
      std::vector<float> u(static_cast<size_t>(16 * c_in * hepml_emitted::WinogradPadded(c_out)));
      hepml_emitted::WinogradTransformWeights(c_out, c_in, wconst->data<float>(), u.data());
      const size_t uoff = AddWeight(u.data(), u.size() * 4);
      const std::string scratch =
          Scratch("float", static_cast<size_t>(hepml_emitted::WinogradScratchFloats(c_in, c_out, h, wd)) * 4);
      const std::string y = Out(out);
      Code(absl::StrCat("K::Conv3x3Winograd(", batch, ", ", c_in, ", ", c_out, ", ", h, ", ", wd, ", ", xp,
                        ", reinterpret_cast<const float*>(w + ", uoff, "), ", bp, ", ", act, ", ", pooled, ", ",
                        scratch, ", ", y, ");"));
    } else {
      HEPML_ASSIGN_OR_RETURN(std::string wp, In(n.inputs[1]));
      const std::string scratch =
          Scratch("float", static_cast<size_t>(hepml_emitted::ConvDirectScratchFloats(c_in, h, wd)) * 4);
      const std::string y = Out(out);
      Code(absl::StrCat("K::Conv3x3Direct(", batch, ", ", c_in, ", ", c_out, ", ", h, ", ", wd, ", ", xp, ", ", wp,
                        ", ", bp, ", ", act, ", ", pooled, ", ", scratch, ", ", y, ");"));
    }
    kernels_.insert("gemm.h");
    kernels_.insert("conv.h");
    return absl::OkStatus();
  }
  if (wconst != nullptr && wconst->dtype() == DType::kFloat32 && Format16(n.name) == 0 && group == 1 &&
      IsPointwise(n, sx, kernel)) {
    // 1x1 convolutions (EdgeConv's per-edge layers): weights packed here
    // into the register tiles' blocks, bias and activation as they store.
    std::vector<float> packed(static_cast<size_t>(hepml_emitted::PointwisePackedFloats(c_out, c_in)));
    hepml_emitted::PackPointwiseWeights(c_out, c_in, wconst->data<float>(), packed.data());
    const size_t woff = AddWeight(packed.data(), packed.size() * 4);
    std::string bp = "nullptr";
    if (n.HasInput(2)) {
      HEPML_ASSIGN_OR_RETURN(bp, In(n.inputs[2]));
    }
    const std::string scratch =
        Scratch("float", static_cast<size_t>(hepml_emitted::ConvPointwiseScratchFloats(c_in)) * 4);
    const std::string y = Out(n.outputs[0]);
    Code(absl::StrCat("K::ConvPointwise(", LinExpr(sx[0]), ", ", c_in, ", ", c_out, ", ", out_size, ", ", xp,
                      ", reinterpret_cast<const float*>(w + ", woff, "), ", bp, ", ", act, ", ", scratch, ", ", y,
                      ");"));
    kernels_.insert("gemm.h");
    kernels_.insert("conv.h");
    return absl::OkStatus();
  }
  std::string wp = Widened16(n, n.inputs[1]);
  if (wp.empty()) {
    HEPML_ASSIGN_OR_RETURN(wp, In(n.inputs[1]));
  }
  std::string bp = "nullptr";
  if (n.HasInput(2)) {
    HEPML_ASSIGN_OR_RETURN(bp, In(n.inputs[2]));
  }
  const std::string scratch = Scratch("float", static_cast<size_t>(col * out_size) * 4);
  const std::string y = Out(n.outputs[0]);
  Code(absl::StrCat("{\n    ", geo, "    K::Conv(g, ", LinExpr(sx[0]), ", ", c_in, ", ", c_out, ", ", group, ", ", xp,
                    ", ", wp, ", ", bp, ", ", act, ", ", scratch, ", ", y, ");\n  }"));
  kernels_.insert("gemm.h");
  kernels_.insert("conv.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitPool(const Node& n) {
  const std::string& x = n.inputs[0];
  if (n.op_type == "MaxPool" && (DT(x) != DType::kFloat32 || n.HasOutput(1))) {
    // Other element types, the Indices output: extra.h's MaxPoolIndices.
    const LinShape& sx = S(x);
    if (CTypeOf(DT(x)) == nullptr || DT(x) == DType::kBool) return Unsupported(n, DTypeName(DT(x)));
    const int spatial = static_cast<int>(sx.size()) - 2;
    if (spatial < 1 || spatial > 3) return Unsupported(n, "spatial rank");
    std::vector<int64_t> kernel = n.GetInts("kernel_shape");
    if (static_cast<int>(kernel.size()) != spatial) return Unsupported(n, "kernel_shape");
    for (int i = 0; i < spatial; ++i)
      if (!sx[i + 2].IsConst()) return Unsupported(n, "spatial dims depend on the batch");
    auto geometry = WindowGeometryCode(n, sx, kernel);
    if (!geometry.ok()) return Unsupported(n, std::string(geometry.status().message()));
    if (n.HasOutput(1) && DT(n.outputs[1]) != DType::kInt64) return Unsupported(n, "Indices type");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string y = Out(n.outputs[0]);
    const std::string ip = n.HasOutput(1) ? Out(n.outputs[1]) : "nullptr";
    Code(absl::StrCat("{\n    ", *geometry, "    K::MaxPoolIndices<", CT(x), ">(g, ", ProdExpr(sx, 0, 2), ", ",
                      n.GetInt("storage_order", 0) ? "true" : "false", ", ", xp, ", ", y, ", ", ip, ");\n  }"));
    kernels_.insert("extra.h");
    kernels_.insert("conv.h");  // extra.h uses its ConvGeometry
    kernels_.insert("gemm.h");
    return absl::OkStatus();
  }
  if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
  if (n.HasOutput(1)) return Unsupported(n, "the Indices output");
  if (n.op_type == "MaxPool" && pooled_by_conv_.count(x)) return absl::OkStatus();  // done by the convolution
  const LinShape& sx = S(x);
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  const std::string y = Out(n.outputs[0]);
  kernels_.insert("gemm.h");
  kernels_.insert("conv.h");
  kernels_.insert("pool.h");
  const std::string planes = ProdExpr(sx, 0, 2);
  if (n.op_type == "GlobalAveragePool" || n.op_type == "GlobalMaxPool") {
    Code(absl::StrCat("K::GlobalPool(", planes, ", ", ProdExpr(sx, 2, sx.size()), ", ",
                      n.op_type == "GlobalMaxPool" ? "true" : "false", ", ", xp, ", ", y, ");"));
    return absl::OkStatus();
  }
  const int spatial = static_cast<int>(sx.size()) - 2;
  if (spatial < 1 || spatial > 3) return Unsupported(n, "spatial rank");
  std::vector<int64_t> kernel = n.GetInts("kernel_shape");
  if (static_cast<int>(kernel.size()) != spatial) return Unsupported(n, "kernel_shape");
  for (int i = 0; i < spatial; ++i) {
    if (!sx[i + 2].IsConst()) return Unsupported(n, "spatial dims depend on the batch");
  }
  auto geometry = WindowGeometryCode(n, sx, kernel);
  if (!geometry.ok()) return Unsupported(n, std::string(geometry.status().message()));
  const std::string& geo = *geometry;
  const bool max = n.op_type == "MaxPool";
  Code(absl::StrCat("{\n    ", geo, "    K::Pool(g, ", planes, ", ", max ? "true" : "false", ", ",
                    n.GetInt("count_include_pad", 0) ? "true" : "false", ", ", xp, ", ", y, ");\n  }"));
  return absl::OkStatus();
}

// Floating-point unary operators without attributes: the expression of `v`
// each element computes (the standalone operators' arithmetic). float and
// double share them.
const absl::flat_hash_map<std::string, const char*> kFloatUnary = {
    {"Sigmoid", "1.f / (1.f + std::exp(-v))"},
    {"Tanh", "std::tanh(v)"},
    {"Exp", "std::exp(v)"},
    {"Log", "std::log(v)"},
    {"Sqrt", "std::sqrt(v)"},
    {"Reciprocal", "1.f / v"},
    {"Floor", "std::floor(v)"},
    {"Ceil", "std::ceil(v)"},
    {"Erf", "std::erf(v)"},
    {"Softplus", "K::SoftplusF(v)"},
    {"Sin", "std::sin(v)"},
    {"Cos", "std::cos(v)"},
    {"Tan", "std::tan(v)"},
    {"Asin", "std::asin(v)"},
    {"Acos", "std::acos(v)"},
    {"Atan", "std::atan(v)"},
    {"Sinh", "std::sinh(v)"},
    {"Cosh", "std::cosh(v)"},
    {"Asinh", "std::asinh(v)"},
    {"Acosh", "std::acosh(v)"},
    {"Atanh", "std::atanh(v)"},
    {"Round", "std::nearbyint(v)"},
    {"Softsign", "v / (1.f + std::fabs(v))"},
    {"IsNaN", "std::isnan(v)"},
    {"Mish", "v * std::tanh(std::log1p(std::exp(v)))"},
    {"HardSwish", "v * std::fmax(0.f, std::fmin(1.f, v / 6.f + 0.5f))"},
};

// The float (and float16/bfloat16, whose maps compute in float) forms of the
// transcendental maps: emitted/vecmath.h's libm-free functions, so the Unary
// loop vectorises. double keeps kFloatUnary's libm calls.
const absl::flat_hash_map<std::string, const char*> kFloat32Unary = {
    {"Sigmoid", "K::SigmoidF(v)"},
    {"Tanh", "K::TanhF(v)"},
    {"Exp", "K::ExpF(v)"},
    {"Erf", "K::ErfF(v)"},
    {"Mish", "v * K::TanhF(K::SoftplusF(v))"},
};

bool IsUnsignedInt(DType t) {
  return t == DType::kUInt8 || t == DType::kUInt16 || t == DType::kUInt32 || t == DType::kUInt64;
}
bool IsFloatType(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 || t == DType::kBFloat16;
}

absl::Status Emitter::EmitUnary(const Node& n) {
  const std::string& x = n.inputs[0];
  const std::string& op = n.op_type;
  const std::string ti = LT(x);
  // Cast stores straight into a 16-bit type (from double without a detour
  // through float); other maps return the compute type.
  const std::string to = op == "Cast" || op == "CastLike" ? CT(n.outputs[0]) : LT(n.outputs[0]);
  std::string f;
  auto fl = [&](const char* attr, float d) { return FloatLit(n.GetFloat(attr, d)); };
  const DType dt = DT(x);
  const bool is_float = IsFloatType(dt);
  const bool is_unsigned = IsUnsignedInt(dt) || dt == DType::kBool;
  std::string prologue;  // statements before the map (run-time Clip bounds)
  if (op == "Clip") {
    std::string lo = absl::StrCat("std::numeric_limits<", ti, ">::lowest()");
    std::string hi = absl::StrCat("std::numeric_limits<", ti, ">::max()");
    if (n.opset < 11) {
      if (!is_float) return Unsupported(n, absl::StrCat("input of type ", DTypeName(dt)));
      if (n.HasAttribute("min")) lo = fl("min", 0.f);
      if (n.HasAttribute("max")) hi = fl("max", 0.f);
    } else {
      for (int i = 1; i <= 2; ++i) {
        if (!n.HasInput(i)) continue;
        std::string& bound = i == 1 ? lo : hi;
        auto cf = ConstFloats(n.inputs[i]);
        auto ci = ConstInts(n.inputs[i]);
        if (cf && cf->size() == 1 && DT(n.inputs[i]) == DType::kFloat32) {
          bound = FloatLit((*cf)[0]);
        } else if (ci && ci->size() == 1) {
          bound = absl::StrCat(ci->front());
        } else {
          HEPML_ASSIGN_OR_RETURN(std::string bp, In(n.inputs[i]));
          const std::string var = i == 1 ? "lo" : "hi";
          absl::StrAppend(&prologue, "const ", ti, " ", var, " = ", bp, "[0];\n    ");
          bound = var;
        }
      }
    }
    f = absl::StrCat("v < ", lo, " ? static_cast<", ti, ">(", lo, ") : (v > ", hi, " ? static_cast<", ti, ">(", hi,
                     ") : v)");
  } else if (op == "Cast" || op == "CastLike") {
    if (op == "Cast" && n.GetInt("saturate", 1) == 0) return Unsupported(n, "saturate 0");
    if (DT(n.outputs[0]) == DType::kBool) f = "v != 0";
    else if (IsFloatType(dt) && !IsFloatType(DT(n.outputs[0])) && DT(n.outputs[0]) != DType::kBool)
      f = absl::StrCat("static_cast<", to, ">(static_cast<int64_t>(v))");
    else f = absl::StrCat("static_cast<", to, ">(v)");
    if (IsFloatType(dt) && IsUnsignedInt(DT(n.outputs[0]))) f = absl::StrCat("static_cast<", to, ">(v)");
  } else if (op == "Not") {
    f = "!v";
  } else if (op == "Neg") {
    f = absl::StrCat("static_cast<", to, ">(-v)");
  } else if (op == "Abs") {
    f = is_float ? "std::fabs(v)" : is_unsigned ? "v" : absl::StrCat("static_cast<", to, ">(v < 0 ? -v : v)");
  } else if (op == "Sign") {
    f = is_unsigned ? absl::StrCat("static_cast<", to, ">(v > 0 ? 1 : 0)")
                    : absl::StrCat("static_cast<", to, ">(v > 0 ? 1 : (v < 0 ? -1 : 0))");
  } else if (op == "Relu" && !is_float) {
    f = is_unsigned ? "v" : absl::StrCat("static_cast<", to, ">(v > 0 ? v : 0)");
  } else if (op == "BitwiseNot") {
    if (is_float) return Unsupported(n, "a float input");
    f = absl::StrCat("static_cast<", to, ">(~v)");
  } else if (op == "Shrink") {
    const std::string lambd = fl("lambd", 0.5f), bias = fl("bias", 0.f);
    f = absl::StrCat("static_cast<", to, ">(v < -", lambd, " ? v + ", bias, " : (v > ", lambd, " ? v - ", bias, " : 0))");
    if (is_unsigned) f = absl::StrCat("static_cast<", to, ">(v > ", lambd, " ? v - ", bias, " : 0)");
  } else if (!is_float) {
    return Unsupported(n, absl::StrCat("input of type ", DTypeName(DT(x))));
  } else if (auto it32 = kFloat32Unary.find(op); dt != DType::kFloat64 && it32 != kFloat32Unary.end()) {
    f = it32->second;
  } else if (auto it = kFloatUnary.find(op); it != kFloatUnary.end()) {
    f = it->second;
  } else if (op == "Relu") {
    f = "v > 0.f ? v : 0.f";
  } else if (op == "LeakyRelu") {
    f = absl::StrCat("v >= 0.f ? v : ", fl("alpha", 0.01f), " * v");
  } else if (op == "Elu") {
    f = absl::StrCat("v >= 0.f ? v : ", fl("alpha", 1.f), " * (std::exp(v) - 1.f)");
  } else if (op == "Selu") {
    const std::string alpha = fl("alpha", 1.67326319217681884765625f), gamma = fl("gamma", 1.05070102214813232421875f);
    f = absl::StrCat("v > 0.f ? ", gamma, " * v : ", gamma, " * (", alpha, " * std::exp(v) - ", alpha, ")");
  } else if (op == "Celu") {
    const std::string alpha = fl("alpha", 1.f);
    f = absl::StrCat("std::fmax(0.f, v) + std::fmin(0.f, ", alpha, " * (std::exp(v / ", alpha, ") - 1.f))");
  } else if (op == "ThresholdedRelu") {
    f = absl::StrCat("v > ", fl("alpha", 1.f), " ? v : 0.f");
  } else if (op == "IsInf") {
    const bool neg = n.GetInt("detect_negative", 1) != 0, pos = n.GetInt("detect_positive", 1) != 0;
    f = neg && pos ? "std::isinf(v)" : neg ? "std::isinf(v) && v < 0" : pos ? "std::isinf(v) && v > 0" : "false";
  } else if (op == "HardSigmoid") {
    f = absl::StrCat("std::fmax(0.f, std::fmin(1.f, ", fl("alpha", 0.2f), " * v + ", fl("beta", 0.5f), "))");
  } else if (op == "Gelu" && dt != DType::kFloat64) {
    f = n.GetString("approximate", "none") == "tanh" ? "K::GeluTanhF(v)" : "K::GeluF(v)";
  } else if (op == "Gelu") {
    if (n.GetString("approximate", "none") == "tanh")
      f = "0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))";
    else
      f = "0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440))";
  } else {
    return Unsupported(n, "");
  }
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  const std::string y = Out(n.outputs[0]);
  if (!prologue.empty()) {
    Code(absl::StrCat("{\n    ", prologue, "K::Unary(", Count(x), ", ", xp, ", ", y, ", [=](", ti, " v) -> ", to,
                      " { return ", f, "; });\n  }"));
  } else {
    Code(absl::StrCat("K::Unary(", Count(x), ", ", xp, ", ", y, ", [](", ti, " v) -> ", to, " { return ", f, "; });"));
  }
  kernels_.insert("elementwise.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitBinary(const Node& n) {
  const std::string& op = n.op_type;
  static const std::map<std::string, std::string> kOps = {
      {"Add", "x + y"},   {"Sub", "x - y"},       {"Mul", "x * y"},       {"Div", "x / y"},
      {"Equal", "x == y"}, {"Less", "x < y"},      {"Greater", "x > y"},   {"LessOrEqual", "x <= y"},
      {"GreaterOrEqual", "x >= y"}, {"And", "x && y"}, {"Or", "x || y"}, {"Xor", "x != y"},
      {"Max", "x > y ? x : y"}, {"Min", "x < y ? x : y"}, {"Pow", "std::pow(x, y)"},
      {"Sum", "x + y"}, {"Mean", "x + y"}, {"BitwiseAnd", "x & y"}, {"BitwiseOr", "x | y"},
      {"BitwiseXor", "x ^ y"}, {"Mod", ""}, {"BitShift", ""}, {"PRelu", "x < 0 ? y * x : x"}};
  auto it = kOps.find(op);
  if (it == kOps.end()) return Unsupported(n, "");
  const bool variadic = op == "Max" || op == "Min" || op == "Sum" || op == "Mean";
  if (!variadic && n.inputs.size() != 2) return Unsupported(n, "only two inputs");
  const std::string &a = n.inputs[0], &y = n.outputs[0];
  const DType da = DT(a);
  std::string f = it->second;
  if (op == "Pow") {
    if (!IsFloatType(da)) f = absl::StrCat("static_cast<", CT(y), ">(std::pow(static_cast<double>(x), static_cast<double>(y)))");
    else if (!IsFloatType(DT(n.inputs[1]))) f = absl::StrCat("std::pow(x, static_cast<", LT(a), ">(y))");
    auto c = ConstFloats(n.inputs[1]);
    if (c && c->size() == 1 && (*c)[0] == 2.f && IsFloatType(da)) f = "x * x";
  } else if (op == "Mod") {
    if (n.GetInt("fmod", 0) != 0) f = IsFloatType(da) ? "std::fmod(x, y)" : "x % y";
    else if (IsFloatType(da)) return Unsupported(n, "fmod 0 on floats");
    else if (IsUnsignedInt(da)) f = "x % y";
    else f = absl::StrCat("static_cast<", CT(y), ">((x % y != 0 && ((x % y < 0) != (y < 0))) ? x % y + y : x % y)");
  } else if (op == "BitShift") {
    f = n.GetString("direction", "") == "LEFT" ? absl::StrCat("static_cast<", CT(y), ">(x << y)")
                                               : absl::StrCat("static_cast<", CT(y), ">(x >> y)");
  } else if (op == "PRelu" && IsUnsignedInt(da)) {
    f = "x";
  } else if (op == "Div" && !IsFloatType(da)) {
    f = absl::StrCat("static_cast<", CT(y), ">(x / y)");
  } else if ((op == "Add" || op == "Sub" || op == "Mul" || op == "Sum" || op == "Mean") && !IsFloatType(da)) {
    f = absl::StrCat("static_cast<", CT(y), ">(", f, ")");
  }
  const std::string lambda_of = absl::StrCat("\n      (void)x;\n      (void)y;\n      return ", f, ";\n    }");
  if (variadic) {
    // y = in0 broadcast to y's shape, then y = op(y, in_k) in place.
    std::vector<std::string> ptrs;
    for (const std::string& v : n.inputs) {
      if (v.empty()) continue;
      HEPML_ASSIGN_OR_RETURN(std::string p, In(v));
      ptrs.push_back(p);
    }
    const std::string yp = Out(y);
    const std::string ct = CT(y), lt = LT(y);
    Code(absl::StrCat("{\n    const int64_t dy[] = ", Dims(y), ";\n    const int64_t d0[] = ", Dims(a),
                      ";\n    K::BroadcastCopy<", ct, ">(", Rank(y), ", dy, ", ptrs[0], ", ", Rank(a), ", d0, ", yp, ");"));
    size_t k = 1;
    for (size_t i = 1; i < n.inputs.size(); ++i) {
      const std::string& v = n.inputs[i];
      if (v.empty()) continue;
      Code(absl::StrCat("  {\n      const int64_t dk[] = ", Dims(v), ";\n      K::Binary(", Rank(y), ", dy, ", yp, ", ",
                        Rank(y), ", dy, ", ptrs[k++], ", ", Rank(v), ", dk, ", yp, ", [](", lt, " x, ", LT(v), " y) -> ",
                        lt, " {", absl::StrReplaceAll(lambda_of, {{"\n", "\n  "}}), ");\n    }"));
    }
    if (op == "Mean") {
      Code(absl::StrCat("  K::Unary(", Count(y), ", ", yp, ", ", yp, ", [](", lt, " v) -> ", lt, " { return v / ",
                        ptrs.size(), "; });"));
    }
    Code("}");
    kernels_.insert("elementwise.h");
    return absl::OkStatus();
  }
  const std::string& bv = n.inputs[1];
  HEPML_ASSIGN_OR_RETURN(std::string ap, In(a));
  HEPML_ASSIGN_OR_RETURN(std::string bp, In(bv));
  const std::string yp = Out(y);
  Code(absl::StrCat("{\n    const int64_t dy[] = ", Dims(y), ";\n    const int64_t da[] = ", Dims(a),
                    ";\n    const int64_t db[] = ", Dims(bv), ";\n    K::Binary(", Rank(y), ", dy, ", ap, ", ", Rank(a),
                    ", da, ", bp, ", ", Rank(bv), ", db, ", yp, ", [](", LT(a), " x, ", LT(bv), " y) -> ", LT(y),
                    " {", lambda_of, ");\n  }"));
  kernels_.insert("elementwise.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitConcat(const Node& n) {
  const std::string& y = n.outputs[0];
  const int rank = Rank(y);
  int64_t axis = n.GetInt("axis", 0);
  if (axis < 0) axis += rank;
  const LinShape& sy = S(y);
  const std::string outer = ProdExpr(sy, 0, axis), inner = ProdExpr(sy, axis + 1, rank);
  const std::string yp = Out(y);
  const std::string ct = CT(y);
  std::string offset = "0";
  Code("{");
  Code(absl::StrCat("  const int64_t outer = ", outer, ", inner = ", inner, ", out_row = ", LinExpr(sy[axis]),
                    " * inner;"));
  Code(absl::StrCat("  int64_t at = 0;"));
  for (const std::string& x : n.inputs) {
    if (x.empty()) continue;
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    Code(absl::StrCat("  { const int64_t row = ", LinExpr(S(x)[axis]), " * inner; K::CopyRows<", ct, ">(outer, row, ",
                      xp, ", row, ", yp, " + at, out_row); at += row; }"));
  }
  Code("}");
  kernels_.insert("shape.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitSlice(const Node& n) {
  const std::string &x = n.inputs[0], &y = n.outputs[0];
  const LinShape& sx = S(x);
  const int rank = static_cast<int>(sx.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (n.opset < 10) {
    starts = n.GetInts("starts");
    ends = n.GetInts("ends");
    axes = n.GetInts("axes");
  } else {
    auto s = ConstInts(n.inputs[1]);
    auto e = ConstInts(n.inputs[2]);
    if (!s || !e) return Unsupported(n, "starts/ends that are not constants");
    starts = *s;
    ends = *e;
    if (n.HasInput(3)) {
      auto a = ConstInts(n.inputs[3]);
      if (!a) return Unsupported(n, "axes that are not constants");
      axes = *a;
    }
    if (n.HasInput(4)) {
      auto st = ConstInts(n.inputs[4]);
      if (!st) return Unsupported(n, "steps that are not constants");
      steps = *st;
    }
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  std::vector<std::string> st(rank, "0"), sp(rank, "1");
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t ax = axes[i] < 0 ? axes[i] + rank : axes[i];
    int64_t start = starts[i];
    const int64_t step = steps[i];
    if (!sx[ax].IsConst()) {
      if (start < 0 || step < 0) return Unsupported(n, "a negative start or step on the batch axis");
      st[ax] = absl::StrCat(start);
    } else {
      const int64_t dim = sx[ax].fixed;
      if (start < 0) start += dim;
      if (step > 0) start = std::clamp<int64_t>(start, 0, dim);
      else start = std::clamp<int64_t>(start, 0, dim - 1);
      st[ax] = absl::StrCat(start);
    }
    sp[ax] = absl::StrCat(step);
  }
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  const std::string yp = Out(y);
  Code(absl::StrCat("{\n    const int64_t dx[] = ", Dims(x), ";\n    const int64_t dy[] = ", Dims(y),
                    ";\n    const int64_t starts[] = {", absl::StrJoin(st, ", "), "};\n    const int64_t steps[] = {",
                    absl::StrJoin(sp, ", "), "};\n    K::Slice<", CT(x), ">(", rank, ", dx, starts, steps, dy, ", xp,
                    ", ", yp, ");\n  }"));
  kernels_.insert("shape.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitReduce(const Node& n) {
  static const std::map<std::string, int> kKinds = {
      {"ReduceSum", 0}, {"ReduceMean", 1}, {"ReduceMax", 2}, {"ReduceMin", 3},   {"ReduceProd", 4},
      {"ReduceSumSquare", 5}, {"ReduceL2", 6}, {"ReduceL1", 7}, {"ReduceLogSum", 8}, {"ReduceLogSumExp", 9}};
  auto kind = kKinds.find(n.op_type);
  if (kind == kKinds.end()) return Unsupported(n, "");
  const std::string &x = n.inputs[0], &y = n.outputs[0];
  if (CTypeOf(DT(x)) == nullptr || DT(x) == DType::kBool) return Unsupported(n, DTypeName(DT(x)));
  const int rank = Rank(x);
  std::vector<int64_t> axes;
  const bool axes_input = (n.op_type == "ReduceSum" && n.opset >= 13) || n.opset >= 18;
  if (axes_input) {
    if (n.HasInput(1)) {
      auto a = ConstInts(n.inputs[1]);
      if (!a) return Unsupported(n, "axes that are not constants");
      axes = *a;
    }
  } else {
    axes = n.GetInts("axes");
  }
  if (axes.empty()) {
    if (n.GetInt("noop_with_empty_axes", 0)) return EmitCopyAlias(n);
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  }
  for (int64_t& a : axes)
    if (a < 0) a += rank;
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  bool contiguous = true;
  for (size_t i = 1; i < axes.size(); ++i) contiguous &= axes[i] == axes[i - 1] + 1;
  const LinShape& sx = S(x);
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  const std::string yp = Out(y);
  if (contiguous && kind->second <= 6 && DT(x) == DType::kFloat32 && !axes.empty()) {
    Code(absl::StrCat("K::Reduce(", ProdExpr(sx, 0, axes.front()), ", ", ProdExpr(sx, axes.front(), axes.back() + 1),
                      ", ", ProdExpr(sx, axes.back() + 1, rank), ", ", kind->second, ", ", xp, ", ", yp, ");"));
    kernels_.insert("normalize.h");
    return absl::OkStatus();
  }
  // Any axes, any numeric type: the generic kernel over constant dims.
  for (const Lin& l : sx)
    if (!l.IsConst()) return Unsupported(n, "reduction over dims that depend on the batch");
  std::vector<int64_t> strides(rank, 0);
  int64_t out_count = 1;
  for (int d = rank - 1; d >= 0; --d) {
    if (std::binary_search(axes.begin(), axes.end(), d)) continue;
    strides[d] = out_count;
    out_count *= sx[d].fixed;
  }
  const std::string acc = Scratch("double", static_cast<size_t>(std::max<int64_t>(out_count, 1)) * 8);
  const std::string mx = Scratch("double", static_cast<size_t>(std::max<int64_t>(out_count, 1)) * 8);
  std::vector<std::string> ds;
  for (const Lin& l : sx) ds.push_back(absl::StrCat(l.fixed));
  if (ds.empty()) ds.push_back("1"), strides.push_back(0);
  Code(absl::StrCat("{\n    const int64_t dx[] = {", absl::StrJoin(ds, ", "), "};\n    const int64_t so[] = {",
                    absl::StrJoin(strides, ", "), "};\n    K::ReduceAxes<", CT(x), ">(", std::max(rank, 1), ", dx, so, ",
                    out_count, ", ", kind->second, ", ", xp, ", ", yp, ", ", acc, ", ", mx, ");\n  }"));
  kernels_.insert("reduce.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitMisc(const Node& n, bool* handled) {
  *handled = true;
  const std::string& op = n.op_type;
  if (op == "ArgMax" || op == "ArgMin") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    if (CTypeOf(DT(x)) == nullptr) return Unsupported(n, DTypeName(DT(x)));
    int64_t axis = n.GetInt("axis", 0);
    if (axis < 0) axis += Rank(x);
    const LinShape& sx = S(x);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("K::ArgReduce<", CT(x), ">(", ProdExpr(sx, 0, axis), ", ", LinExpr(sx[axis]), ", ",
                      ProdExpr(sx, axis + 1, sx.size()), ", ", op == "ArgMax" ? "true" : "false", ", ",
                      n.GetInt("select_last_index", 0) ? "true" : "false", ", ", xp, ", ", yp, ");"));
    kernels_.insert("reduce.h");
    return absl::OkStatus();
  }
  if (op == "CumSum") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    if (CTypeOf(DT(x)) == nullptr || DT(x) == DType::kBool) return Unsupported(n, DTypeName(DT(x)));
    const int rank = Rank(x);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    std::string axis_code;
    if (auto a = ConstInts(n.inputs[1]); a && a->size() == 1) {
      axis_code = absl::StrCat((*a)[0]);
    } else {
      HEPML_ASSIGN_OR_RETURN(std::string ap, In(n.inputs[1]));
      axis_code = absl::StrCat("static_cast<int64_t>(", ap, "[0])");
    }
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dx[] = ", Dims(x), ";\n    int64_t axis = ", axis_code,
                      ";\n    if (axis < 0) axis += ", rank, ";\n    if (axis < 0 || axis >= ", rank,
                      ") return (\"", absl::CEscape(n.Describe()),
                      ": axis out of range\");\n    int64_t outer = 1, inner = 1;\n    for (int64_t d = 0; d < ", rank,
                      "; ++d) {\n      if (d < axis) outer *= dx[d];\n      if (d > axis) inner *= dx[d];\n    }\n    K::CumSum<",
                      CT(x), ">(outer, dx[axis], inner, ", n.GetInt("exclusive", 0) ? "true" : "false", ", ",
                      n.GetInt("reverse", 0) ? "true" : "false", ", ", xp, ", ", yp, ");\n  }"));
    kernels_.insert("reduce.h");
    return absl::OkStatus();
  }
  if (op == "Hardmax") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    if (!IsFloatType(DT(x))) return Unsupported(n, DTypeName(DT(x)));
    const int rank = Rank(x);
    int64_t axis = n.GetInt("axis", n.opset >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    const LinShape& sx = S(x);
    std::string mid = LinExpr(sx[axis]), inner = ProdExpr(sx, axis + 1, rank);
    if (n.opset < 13) {
      mid = ProdExpr(sx, axis, rank);
      inner = "1";
    }
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("K::Hardmax<", CT(x), ">(", ProdExpr(sx, 0, axis), ", ", mid, ", ", inner, ", ", xp, ", ", yp,
                      ");"));
    kernels_.insert("normalize.h");
    return absl::OkStatus();
  }
  if (op == "Trilu") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    if (CTypeOf(DT(x)) == nullptr) return Unsupported(n, DTypeName(DT(x)));
    const LinShape& sx = S(x);
    const int rank = Rank(x);
    if (rank < 2) return Unsupported(n, "rank below 2");
    std::string k = "0";
    if (n.HasInput(1)) {
      if (auto c = ConstInts(n.inputs[1]); c && c->size() == 1) {
        k = absl::StrCat((*c)[0]);
      } else {
        HEPML_ASSIGN_OR_RETURN(std::string kp, In(n.inputs[1]));
        k = absl::StrCat("static_cast<int64_t>(", kp, "[0])");
      }
    }
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("K::Trilu<", CT(x), ">(", ProdExpr(sx, 0, rank - 2), ", ", LinExpr(sx[rank - 2]), ", ",
                      LinExpr(sx[rank - 1]), ", ", k, ", ", n.GetInt("upper", 1) ? "true" : "false", ", ", xp, ", ",
                      yp, ");"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "Split") {
    const std::string& x = n.inputs[0];
    const int rank = Rank(x);
    int64_t axis = n.GetInt("axis", 0);
    if (axis < 0) axis += rank;
    const LinShape& sx = S(x);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string inner = ProdExpr(sx, axis + 1, rank);
    Code("{");
    Code(absl::StrCat("  const int64_t outer = ", ProdExpr(sx, 0, axis), ", inner = ", inner, ", in_row = ",
                      LinExpr(sx[axis]), " * inner;"));
    Code("  int64_t at = 0;");
    for (const std::string& o : n.outputs) {
      if (o.empty()) continue;
      const std::string yp = Out(o);
      Code(absl::StrCat("  { const int64_t row = ", LinExpr(S(o)[axis]), " * inner; K::CopyRows<", CT(x),
                        ">(outer, row, ", xp, " + at, in_row, ", yp, ", row); at += row; }"));
    }
    Code("}");
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "NegativeLogLikelihoodLoss" || op == "SoftmaxCrossEntropyLoss") {
    const std::string &x = n.inputs[0], &t = n.inputs[1];
    if (!IsFloatType(DT(x))) return Unsupported(n, DTypeName(DT(x)));
    const LinShape& sx = S(x);
    if (sx.size() < 2) return Unsupported(n, "input rank below 2");
    static const std::map<std::string, int> kRed = {{"none", 0}, {"sum", 1}, {"mean", 2}};
    auto red = kRed.find(n.GetString("reduction", "mean"));
    if (red == kRed.end()) return Unsupported(n, "reduction");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string tp, In(t));
    std::string wp = "nullptr";
    if (n.HasInput(2)) {
      HEPML_ASSIGN_OR_RETURN(wp, In(n.inputs[2]));
    }
    const std::string N = LinExpr(sx[0]), C = LinExpr(sx[1]), D = ProdExpr(sx, 2, sx.size());
    const bool has_ignore = n.HasAttribute("ignore_index");
    std::string lp = xp;
    if (op == "SoftmaxCrossEntropyLoss") {
      const int64_t count = std::max(ProdAt(sx, 1), ProdAt(sx, max_batch_));
      lp = n.HasOutput(1) ? Out(n.outputs[1]) : Scratch(CT(x), static_cast<size_t>(count) * DTypeSize(DT(x)));
      Code(absl::StrCat("K::Softmax<", CT(x), ">(", N, ", ", C, ", ", D, ", ", xp, ", ", lp, ", true);"));
      kernels_.insert("normalize.h");
    }
    const std::string yp = Out(n.outputs[0]);
    Code(absl::StrCat("if (!K::NllLoss<", CT(x), ", ", CT(t), ">(", N, ", ", C, ", ", D, ", ", lp, ", ", tp, ", ", wp, ", ",
                      has_ignore ? "true" : "false", ", ", n.GetInt("ignore_index", 0), ", ", red->second, ", ", yp,
                      ")) return (\"", absl::CEscape(n.Describe()), ": target out of range\");"));
    kernels_.insert("loss.h");
    return absl::OkStatus();
  }
  if (op == "Resize" || op == "Upsample") return EmitResize(n);
  if (op == "DepthToSpace" || op == "SpaceToDepth") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    const LinShape& sx = S(x);
    if (sx.size() != 4) return Unsupported(n, "rank other than 4");
    const int64_t bs = n.GetInt("blocksize", 0);
    if (bs < 1) return Unsupported(n, "blocksize");
    std::string dims;
    std::vector<int64_t> perm;
    const std::string N = LinExpr(sx[0]);
    for (int d = 1; d < 4; ++d)
      if (!sx[d].IsConst()) return Unsupported(n, "dims that depend on the batch");
    const int64_t C = sx[1].fixed, H = sx[2].fixed, W = sx[3].fixed;
    if (op == "DepthToSpace") {
      if (n.GetString("mode", "DCR") == "CRD") {
        dims = absl::StrCat(N, ", ", C / (bs * bs), ", ", bs, ", ", bs, ", ", H, ", ", W);
        perm = {0, 1, 4, 2, 5, 3};
      } else {
        dims = absl::StrCat(N, ", ", bs, ", ", bs, ", ", C / (bs * bs), ", ", H, ", ", W);
        perm = {0, 3, 4, 1, 5, 2};
      }
    } else {
      dims = absl::StrCat(N, ", ", C, ", ", H / bs, ", ", bs, ", ", W / bs, ", ", bs);
      perm = {0, 3, 5, 1, 2, 4};
    }
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dx[] = {", dims, "};\n    const int64_t perm[] = {", absl::StrJoin(perm, ", "),
                      "};\n    K::Transpose<", CT(x), ">(6, dx, perm, ", xp, ", ", yp, ");\n  }"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "EyeLike") {
    const std::string& y = n.outputs[0];
    const LinShape& sy = S(y);
    if (sy.size() != 2 || !sy[0].IsConst() || !sy[1].IsConst()) return Unsupported(n, "shape");
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    ", CT(y), "* p = ", yp, ";\n    for (int64_t i = 0; i < ", sy[0].fixed,
                      "; ++i)\n      for (int64_t j = 0; j < ", sy[1].fixed, "; ++j) p[i * ", sy[1].fixed,
                      " + j] = static_cast<", CT(y), ">(j - i == ", n.GetInt("k", 0), " ? 1 : 0);\n  }"));
    return absl::OkStatus();
  }
  if (op == "Pad") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    const int rank = Rank(x);
    static const std::map<std::string, int> kModes = {{"constant", 0}, {"reflect", 1}, {"edge", 2}, {"wrap", 3}};
    auto mode = kModes.find(n.GetString("mode", "constant"));
    if (mode == kModes.end()) return Unsupported(n, "mode");
    std::vector<int64_t> pads;
    std::string value = "0";
    std::string prologue;
    if (n.opset < 11) {
      pads = n.GetInts("pads");
      value = FloatLit(n.GetFloat("value", 0.f));
    } else {
      auto p = ConstInts(n.inputs[1]);
      if (!p) return Unsupported(n, "pads that are not constants");
      pads = *p;
      if (n.HasInput(2)) {
        HEPML_ASSIGN_OR_RETURN(std::string vp, In(n.inputs[2]));
        value = absl::StrCat(vp, "[0]");
      }
    }
    std::vector<int64_t> axes;
    if (n.HasInput(3)) {
      auto a = ConstInts(n.inputs[3]);
      if (!a) return Unsupported(n, "axes that are not constants");
      axes = *a;
    } else {
      for (int d = 0; d < rank; ++d) axes.push_back(d);
    }
    if (pads.size() != 2 * axes.size()) return Unsupported(n, "pads");
    std::vector<int64_t> begin(rank, 0);
    for (size_t i = 0; i < axes.size(); ++i) begin[(axes[i] + rank) % rank] = pads[i];
    for (const Lin& l : S(x))
      if (!l.IsConst()) return Unsupported(n, "dims that depend on the batch");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    if (begin.empty()) begin.push_back(0);
    Code(absl::StrCat("{\n    const int64_t dx[] = ", Dims(x), ";\n    const int64_t dy[] = ", Dims(y),
                      ";\n    const int64_t pb[] = {", absl::StrJoin(begin, ", "), "};\n    K::Pad<", CT(x), ">(",
                      std::max(rank, 1), ", dx, dy, pb, ", mode->second, ", static_cast<", CT(x), ">(", value, "), ",
                      xp, ", ", yp, ");\n  }"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "GatherND" || op == "ScatterND") {
    const std::string &x = n.inputs[0], &idx = n.inputs[1], &y = n.outputs[0];
    const LinShape &sx = S(x), &si = S(idx);
    for (const Lin& l : sx)
      if (!l.IsConst()) return Unsupported(n, "dims that depend on the batch");
    for (const Lin& l : si)
      if (!l.IsConst()) return Unsupported(n, "dims that depend on the batch");
    const int64_t b = op == "GatherND" ? n.GetInt("batch_dims", 0) : 0;
    const int64_t k = si.back().fixed;
    if (si.empty() || b + k > static_cast<int64_t>(sx.size())) return Unsupported(n, "index shape");
    int64_t batches = 1, tuples = 1, slice = 1;
    for (int64_t d = 0; d < b; ++d) batches *= sx[d].fixed;
    for (size_t d = b; d + 1 < si.size(); ++d) tuples *= si[d].fixed;
    for (size_t d = b + k; d < sx.size(); ++d) slice *= sx[d].fixed;
    std::vector<int64_t> dims;
    for (int64_t d = b; d < b + k; ++d) dims.push_back(sx[d].fixed);
    if (dims.empty()) dims.push_back(1);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string ip, In(idx));
    std::string up;
    if (op == "ScatterND") {
      HEPML_ASSIGN_OR_RETURN(up, In(n.inputs[2]));
    }
    const std::string yp = Out(y);
    const std::string fail = absl::StrCat(" return (\"", absl::CEscape(n.Describe()), ": index out of range\");");
    if (op == "GatherND") {
      Code(absl::StrCat("{\n    const int64_t dims[] = {", absl::StrJoin(dims, ", "), "};\n    if (!K::GatherND<", CT(x),
                        ", ", CT(idx), ">(", batches, ", ", tuples, ", ", k, ", dims, ", slice, ", ", xp, ", ", ip, ", ",
                        yp, "))", fail, "\n  }"));
    } else {
      static const std::map<std::string, int> kRed = {{"none", 0}, {"add", 1}, {"mul", 2}, {"max", 3}, {"min", 4}};
      auto red = kRed.find(n.GetString("reduction", "none"));
      if (red == kRed.end()) return Unsupported(n, "reduction");
      Code(absl::StrCat("{\n    std::memcpy(", yp, ", ", xp, ", sizeof(", CT(y), ") * static_cast<size_t>(", Count(y),
                        "));\n    const int64_t dims[] = {", absl::StrJoin(dims, ", "), "};\n    if (!K::ScatterND<",
                        CT(x), ", ", CT(idx), ">(", tuples, ", ", k, ", dims, ", slice, ", ", ip, ", ", up, ", ",
                        red->second, ", ", yp, "))", fail, "\n  }"));
    }
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "InstanceNormalization") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
    const LinShape& sx = S(x);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string sp, In(n.inputs[1]));
    HEPML_ASSIGN_OR_RETURN(std::string bp, In(n.inputs[2]));
    const std::string yp = Out(y);
    Code(absl::StrCat("K::InstanceNorm(", LinExpr(sx[0]), ", ", LinExpr(sx[1]), ", ", ProdExpr(sx, 2, sx.size()), ", ",
                      xp, ", ", sp, ", ", bp, ", ", FloatLit(n.GetFloat("epsilon", 1e-5f)), ", ", yp, ");"));
    kernels_.insert("normalize.h");
    return absl::OkStatus();
  }
  if (op == "ConvTranspose") return EmitConvTranspose(n);
  if (op == "Size") {
    const std::string yp = Out(n.outputs[0]);
    Code(absl::StrCat(yp, "[0] = ", Count(n.inputs[0]), ";"));
    return absl::OkStatus();
  }
  if (op == "Range") {
    const std::string& y = n.outputs[0];
    std::string start, delta;
    if (auto f = ConstFloats(n.inputs[0]), d = ConstFloats(n.inputs[2]); f && d && f->size() == 1 && d->size() == 1) {
      start = FloatLit((*f)[0]);
      delta = FloatLit((*d)[0]);
    } else if (auto i = ConstInts(n.inputs[0]), di = ConstInts(n.inputs[2]); i && di && i->size() == 1 && di->size() == 1) {
      start = absl::StrCat((*i)[0]);
      delta = absl::StrCat((*di)[0]);
    } else {
      return Unsupported(n, "start and delta that are not constants");
    }
    const std::string yp = Out(y);
    Code(absl::StrCat("for (int64_t i = 0; i < ", Count(y), "; ++i) ", yp, "[i] = static_cast<", CT(y), ">(", start,
                      " + static_cast<", CT(y), ">(i) * ", delta, ");"));
    return absl::OkStatus();
  }
  if (op == "OneHot") {
    const std::string &idx = n.inputs[0], &vals = n.inputs[2], &y = n.outputs[0];
    const LinShape& sy = S(y);
    const int rank = static_cast<int>(sy.size());
    int64_t axis = n.GetInt("axis", -1);
    if (axis < 0) axis += rank;
    for (const Lin& l : sy)
      if (!l.IsConst()) return Unsupported(n, "dims that depend on the batch");
    const int64_t depth = sy[axis].fixed;
    HEPML_ASSIGN_OR_RETURN(std::string ip, In(idx));
    HEPML_ASSIGN_OR_RETURN(std::string vp, In(vals));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t outer = ", ProdExpr(sy, 0, axis), ", inner = ", ProdExpr(sy, axis + 1, rank),
                      ", depth = ", depth, ";\n    for (int64_t o = 0; o < outer; ++o)\n      for (int64_t i = 0; i < inner; ++i) {\n"
                      "        int64_t k = static_cast<int64_t>(", ip, "[o * inner + i]);\n        if (k < 0) k += depth;\n"
                      "        for (int64_t d = 0; d < depth; ++d) ", yp, "[(o * depth + d) * inner + i] = d == k ? ", vp,
                      "[1] : ", vp, "[0];\n      }\n  }"));
    return absl::OkStatus();
  }
  *handled = false;
  return absl::OkStatus();
}

absl::Status Emitter::EmitConvTranspose(const Node& n) {
  const std::string& x = n.inputs[0];
  const LinShape &sx = S(x), &sw = S(n.inputs[1]), &sy = S(n.outputs[0]);
  const int spatial = static_cast<int>(sx.size()) - 2;
  if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
  if (spatial < 1 || spatial > 3) return Unsupported(n, "spatial rank");
  Shape in, kernel;
  for (int i = 0; i < spatial; ++i) {
    if (!sx[i + 2].IsConst() || !sw[i + 2].IsConst()) return Unsupported(n, "spatial dims depend on the batch");
    in.push_back(sx[i + 2].fixed);
    kernel.push_back(sw[i + 2].fixed);
  }
  auto g = ops::ConvTransposeGeometry(n, in, kernel);
  if (!g.ok()) return Unsupported(n, std::string(g.status().message()));
  for (int i = 0; i < spatial; ++i)
    if (g->out[i] != sy[i + 2].fixed) return Unsupported(n, "the output shape differs from the inferred one");
  std::string geo = absl::StrCat("K::ConvGeometry g;\n    g.spatial = ", spatial, ";\n");
  for (int i = 0; i < spatial; ++i) {
    absl::StrAppend(&geo, "    g.in[", i, "] = ", g->in[i], "; g.out[", i, "] = ", g->out[i], "; g.kernel[", i,
                    "] = ", g->kernel[i], "; g.stride[", i, "] = ", g->strides[i], "; g.dilation[", i,
                    "] = ", g->dilations[i], "; g.pad_begin[", i, "] = ", g->pads_begin[i], ";\n");
  }
  const int64_t group = n.GetInt("group", 1);
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  HEPML_ASSIGN_OR_RETURN(std::string wp, In(n.inputs[1]));
  std::string bp = "nullptr";
  if (n.HasInput(2)) {
    HEPML_ASSIGN_OR_RETURN(bp, In(n.inputs[2]));
  }
  const std::string y = Out(n.outputs[0]);
  Code(absl::StrCat("{\n    ", geo, "    K::ConvTranspose(g, ", LinExpr(sx[0]), ", ", LinExpr(sx[1]), ", ",
                    LinExpr(sy[1]), ", ", group, ", ", xp, ", ", wp, ", ", bp, ", ", y, ");\n  }"));
  kernels_.insert("gemm.h");
  kernels_.insert("conv.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitResize(const Node& n) {
  const std::string &x = n.inputs[0], &y = n.outputs[0];
  if (CTypeOf(DT(x)) == nullptr || DT(x) == DType::kBool) return Unsupported(n, DTypeName(DT(x)));
  const LinShape& sx = S(x);
  Shape xs;
  for (const Lin& l : sx) {
    if (!l.IsConst()) return Unsupported(n, "dims that depend on the batch");
    xs.push_back(l.fixed);
  }
  // roi / scales / sizes must be constants (or folded values).
  std::vector<std::optional<Tensor>> held(4);
  auto constant = [&](int i) -> absl::StatusOr<const Tensor*> {
    if (!n.HasInput(i)) return nullptr;
    if (const Tensor* t = Const(n.inputs[i])) return t;
    const ValueShape* vs = shapes_.Find(n.inputs[i]);
    if (vs && vs->known && vs->dtype == DType::kInt64) {
      auto v = ConstInts(n.inputs[i]);
      if (v) {
        Tensor t = Tensor::Empty(DType::kInt64, {static_cast<int64_t>(v->size())});
        std::copy(v->begin(), v->end(), t.mutable_data<int64_t>());
        held[i] = std::move(t);
        return &*held[i];
      }
    }
    return absl::UnimplementedError(absl::StrCat(n.Describe(), ": hepml compile cannot emit ", n.op_type,
                                                 " (input ", i, " is not a constant)"));
  };
  const bool roi_input = n.op_type == "Resize" && n.opset >= 11;
  const Tensor *roi = nullptr, *scales = nullptr, *sizes = nullptr;
  if (roi_input) {
    HEPML_ASSIGN_OR_RETURN(roi, constant(1));
    HEPML_ASSIGN_OR_RETURN(scales, constant(2));
    HEPML_ASSIGN_OR_RETURN(sizes, constant(3));
  } else if (n.op_type == "Resize" || n.opset >= 9) {
    HEPML_ASSIGN_OR_RETURN(scales, constant(1));
  }
  auto plan = ops::PlanResize(n, n.opset, xs, roi, scales, sizes);
  if (!plan.ok()) return Unsupported(n, std::string(plan.status().message()));
  Shape ys;
  for (const auto& a : plan->axes) ys.push_back(a.out_len);
  const LinShape& sy = S(y);
  for (size_t d = 0; d < ys.size(); ++d)
    if (d >= sy.size() || sy[d].fixed != ys[d]) return Unsupported(n, "the planned output shape differs from the inferred one");
  // Two double buffers, each as large as the largest intermediate.
  int64_t largest = std::max<int64_t>(1, ProdAt(sx, 1));
  Shape cur = xs;
  for (size_t d = cur.size(); d-- > 0;) {
    if (plan->axes[d].identity) continue;
    cur[d] = ys[d];
    int64_t c = 1;
    for (int64_t v : cur) c *= v;
    largest = std::max(largest, c);
  }
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  const std::string yp = Out(y);
  const std::string b0 = Scratch("double", static_cast<size_t>(largest) * 8);
  const std::string b1 = Scratch("double", static_cast<size_t>(largest) * 8);
  Code("{");
  Code(absl::StrCat("  K::ToDouble<", CT(x), ">(", ProdAt(sx, 1), ", ", xp, ", ", b0, ");"));
  cur = xs;
  bool in_b0 = true;
  for (size_t d = cur.size(); d-- > 0;) {
    const auto& a = plan->axes[d];
    if (a.identity) continue;
    int64_t outer = 1, inner = 1;
    for (size_t k = 0; k < d; ++k) outer *= cur[k];
    for (size_t k = d + 1; k < cur.size(); ++k) inner *= cur[k];
    std::vector<uint8_t> outside(a.outside.begin(), a.outside.end());
    const size_t io = AddWeight(a.index.data(), a.index.size() * 8);
    const size_t wo = AddWeight(a.weight.data(), a.weight.size() * 8);
    const size_t oo = AddWeight(outside.data(), outside.size());
    Code(absl::StrCat("  K::ResizeAxis(", outer, ", ", a.in_len, ", ", a.out_len, ", ", inner, ", ", a.taps,
                      ", reinterpret_cast<const int64_t*>(w + ", io, "), reinterpret_cast<const double*>(w + ", wo,
                      "), w + ", oo, ", ", absl::StrFormat("%.17g", plan->extrapolation), ", ", in_b0 ? b0 : b1, ", ",
                      in_b0 ? b1 : b0, ");"));
    in_b0 = !in_b0;
    cur[d] = a.out_len;
  }
  Code(absl::StrCat("  K::FromDouble<", CT(y), ">(", ProdAt(sy, 1), ", ", in_b0 ? b0 : b1, ", ", yp, ");"));
  Code("}");
  kernels_.insert("resize.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitBatchNorm(const Node& n) {
  const std::string &x = n.inputs[0], &y = n.outputs[0];
  auto scale = ConstFloats(n.inputs[1]), bias = ConstFloats(n.inputs[2]), mean = ConstFloats(n.inputs[3]),
       var = ConstFloats(n.inputs[4]);
  if (n.HasOutput(1) || n.GetInt("training_mode", 0)) return Unsupported(n, "training mode");
  if (!scale || !bias || !mean || !var) {
    // Statistics given at run time.
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
    const LinShape& sx = S(x);
    if (sx.size() < 2 || !sx[1].IsConst()) return Unsupported(n, "channel dim");
    std::string p[4];
    for (int i = 0; i < 4; ++i) {
      HEPML_ASSIGN_OR_RETURN(p[i], In(n.inputs[i + 1]));
    }
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    const int64_t C = sx[1].fixed;
    const std::string s_buf = Scratch("float", static_cast<size_t>(C) * 4), t_buf = Scratch("float", static_cast<size_t>(C) * 4);
    Code(absl::StrCat("K::BatchNormScale(", C, ", ", p[0], ", ", p[1], ", ", p[2], ", ", p[3], ", ",
                      FloatLit(n.GetFloat("epsilon", 1e-5f)), ", ", s_buf, ", ", t_buf, ");"));
    Code(absl::StrCat("K::ChannelAffine(", LinExpr(sx[0]), ", ", C, ", ", ProdExpr(sx, 2, sx.size()), ", ", xp, ", ",
                      s_buf, ", ", t_buf, ", ", yp, ");"));
    kernels_.insert("normalize.h");
    return absl::OkStatus();
  }
  const float eps = n.GetFloat("epsilon", 1e-5f);
  std::vector<float> s(scale->size()), t(scale->size());
  for (size_t c = 0; c < s.size(); ++c) {
    s[c] = (*scale)[c] / std::sqrt((*var)[c] + eps);
    t[c] = (*bias)[c] - (*mean)[c] * s[c];
  }
  const LinShape& sx = S(x);
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  const std::string yp = Out(y);
  Code(absl::StrCat("K::ChannelAffine(", LinExpr(sx[0]), ", ", sx.size() > 1 ? LinExpr(sx[1]) : "1", ", ",
                    ProdExpr(sx, 2, sx.size()), ", ", xp, ", reinterpret_cast<const float*>(w + ",
                    AddWeight(s.data(), s.size() * 4), "), reinterpret_cast<const float*>(w + ",
                    AddWeight(t.data(), t.size() * 4), "), ", yp, ");"));
  kernels_.insert("normalize.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitLstm(const Node& n) {
  const std::string& x = n.inputs[0];
  if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
  if (n.GetInt("layout", 0) != 0) return Unsupported(n, "layout 1");
  if (n.HasAttribute("clip")) return Unsupported(n, "clip");
  if (n.GetInt("input_forget", 0) != 0) return Unsupported(n, "input_forget");
  if (n.HasAttribute("activations")) {
    const std::vector<std::string> acts = n.GetStrings("activations");
    for (size_t i = 0; i < acts.size(); ++i)
      if (acts[i] != (i % 3 == 0 ? "Sigmoid" : "Tanh")) return Unsupported(n, "activations other than the defaults");
  }
  if (n.HasInput(4) && DT(n.inputs[4]) != DType::kInt32) return Unsupported(n, "sequence_lens that are not int32");
  const Tensor* w = Const(n.inputs[1]);
  const Tensor* r = Const(n.inputs[2]);
  if (w == nullptr || r == nullptr || w->dtype() != DType::kFloat32 || r->dtype() != DType::kFloat32)
    return EmitLstmRuntimeWeights(n);
  const Tensor* bias = n.HasInput(3) ? Const(n.inputs[3]) : nullptr;
  if (n.HasInput(3) && bias == nullptr) return Unsupported(n, "a bias that is not a constant");
  const Tensor* peep = n.HasInput(7) ? Const(n.inputs[7]) : nullptr;
  if (n.HasInput(7) && peep == nullptr) return Unsupported(n, "peepholes that are not constants");
  const std::string direction = n.GetString("direction", "forward");
  const int64_t dirs = w->dim(0), H = r->dim(2), I = w->dim(2), G = 4 * H;
  const LinShape& sx = S(x);
  if (!sx[0].IsConst()) return Unsupported(n, "the sequence length depends on the batch");
  const int64_t T = sx[0].fixed;
  const std::string B = LinExpr(sx[1]);
  const int64_t max_b = std::max(sx[1].At(1), sx[1].At(max_batch_));
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  HEPML_ASSIGN_OR_RETURN(LstmOperands io, LstmIo(n, max_b, I, H, G));
  const std::string &h0p = io.h0, &c0p = io.c0, &yp = io.y, &yhp = io.yh, &ycp = io.yc;
  const std::string &gates = io.gates, &hs = io.hs, &cs = io.cs;
  Code("{");
  Code(absl::StrCat("  const int64_t B = ", B, ";"));
  for (int64_t d = 0; d < dirs; ++d) {
    // W^T and R^T of this direction, and its summed bias.
    std::vector<float> wt(I * G), rt(H * G), bsum(G, 0.f);
    const float* wd = w->data<float>() + d * G * I;
    const float* rd = r->data<float>() + d * G * H;
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t i = 0; i < I; ++i) wt[i * G + g] = wd[g * I + i];
      for (int64_t i = 0; i < H; ++i) rt[i * G + g] = rd[g * H + i];
      if (bias) bsum[g] = bias->data<float>()[d * 2 * G + g] + bias->data<float>()[d * 2 * G + G + g];
    }
    const size_t wo = AddWeight(wt.data(), wt.size() * 4), ro = AddWeight(rt.data(), rt.size() * 4);
    const std::string bp = bias ? absl::StrCat("reinterpret_cast<const float*>(w + ", AddWeight(bsum.data(), G * 4), ")")
                                : "nullptr";
    const std::string pp = peep ? absl::StrCat("reinterpret_cast<const float*>(w + ",
                                               AddWeight(peep->data<float>() + d * 3 * H, 3 * H * 4), ")")
                                : "nullptr";
    const bool reverse = direction == "reverse" || (direction == "bidirectional" && d == 1);
    auto at = [&](const std::string& p) { return p.empty() ? std::string("nullptr") : absl::StrCat(p, " + ", d, " * B * ", H); };
    Code(absl::StrCat("  K::Lstm(", T, ", B, ", I, ", ", H, ", ", xp, ", reinterpret_cast<const float*>(w + ", wo,
                      "), reinterpret_cast<const float*>(w + ", ro, "), ", bp, ", ", at(h0p), ", ", at(c0p), ", ", pp,
                      ", ", reverse ? "true" : "false", ", ", at(yp), ", ", dirs, " * B * ", H, ", ", at(yhp), ", ",
                      at(ycp), ", ", gates, ", ", hs, ", ", cs, ", ", io.lens, ", ", io.xs, ");"));
  }
  Code("}");
  kernels_.insert("gemm.h");
  kernels_.insert("recurrent.h");
  return absl::OkStatus();
}

absl::StatusOr<Emitter::LstmOperands> Emitter::LstmIo(const Node& n, int64_t max_b, int64_t I, int64_t H, int64_t G) {
  LstmOperands io;
  if (n.HasInput(4)) {
    HEPML_ASSIGN_OR_RETURN(io.lens, In(n.inputs[4]));
    io.xs = Scratch("float", static_cast<size_t>(max_b * I) * 4);
  }
  if (n.HasInput(5)) {
    HEPML_ASSIGN_OR_RETURN(io.h0, In(n.inputs[5]));
  }
  if (n.HasInput(6)) {
    HEPML_ASSIGN_OR_RETURN(io.c0, In(n.inputs[6]));
  }
  io.y = n.HasOutput(0) ? Out(n.outputs[0]) : "";
  io.yh = n.HasOutput(1) ? Out(n.outputs[1]) : "";
  io.yc = n.HasOutput(2) ? Out(n.outputs[2]) : "";
  io.gates = Scratch("float", static_cast<size_t>(max_b * G) * 4);
  io.hs = Scratch("float", static_cast<size_t>(max_b * H) * 4);
  io.cs = Scratch("float", static_cast<size_t>(max_b * H) * 4);
  return io;
}

// LSTM whose W, R (and B) are inputs: transposed and summed into scratch at
// the start of the step, then the same kernel.
absl::Status Emitter::EmitLstmRuntimeWeights(const Node& n) {
  const std::string& x = n.inputs[0];
  const LinShape &sx = S(x), &sw = S(n.inputs[1]), &sr = S(n.inputs[2]);
  for (const LinShape* s : {&sw, &sr})
    for (const Lin& l : *s)
      if (!l.IsConst()) return Unsupported(n, "weights whose shape depends on the batch");
  if (!sx[0].IsConst()) return Unsupported(n, "the sequence length depends on the batch");
  const int64_t dirs = sw[0].fixed, G = sw[1].fixed, I = sw[2].fixed, H = sr[2].fixed, T = sx[0].fixed;
  const std::string direction = n.GetString("direction", "forward");
  const int64_t max_b = std::max(sx[1].At(1), sx[1].At(max_batch_));
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  HEPML_ASSIGN_OR_RETURN(std::string wp, In(n.inputs[1]));
  HEPML_ASSIGN_OR_RETURN(std::string rp, In(n.inputs[2]));
  std::string bp;
  if (n.HasInput(3)) {
    HEPML_ASSIGN_OR_RETURN(bp, In(n.inputs[3]));
  }
  std::string pp;
  if (n.HasInput(7)) {
    HEPML_ASSIGN_OR_RETURN(pp, In(n.inputs[7]));
  }
  HEPML_ASSIGN_OR_RETURN(LstmOperands io, LstmIo(n, max_b, I, H, G));
  const std::string &h0p = io.h0, &c0p = io.c0, &yp = io.y, &yhp = io.yh, &ycp = io.yc;
  const std::string &gates = io.gates, &hs = io.hs, &cs = io.cs;
  const std::string wt = Scratch("float", static_cast<size_t>(I * G) * 4);
  const std::string rt = Scratch("float", static_cast<size_t>(H * G) * 4);
  const std::string bs = Scratch("float", static_cast<size_t>(G) * 4);
  Code("{");
  Code(absl::StrCat("  const int64_t B = ", LinExpr(sx[1]), ";"));
  for (int64_t d = 0; d < dirs; ++d) {
    const bool reverse = direction == "reverse" || (direction == "bidirectional" && d == 1);
    auto at = [&](const std::string& p) { return p.empty() ? std::string("nullptr") : absl::StrCat(p, " + ", d, " * B * ", H); };
    Code(absl::StrCat("  for (int64_t g = 0; g < ", G, "; ++g) {\n    for (int64_t i = 0; i < ", I, "; ++i) ", wt,
                      "[i * ", G, " + g] = ", wp, "[(", d * G, " + g) * ", I, " + i];\n    for (int64_t i = 0; i < ", H,
                      "; ++i) ", rt, "[i * ", G, " + g] = ", rp, "[(", d * G, " + g) * ", H, " + i];\n    ", bs, "[g] = ",
                      bp.empty() ? std::string("0.f") : absl::StrCat(bp, "[", d * 2 * G, " + g] + ", bp, "[", d * 2 * G + G, " + g]"),
                      ";\n  }"));
    Code(absl::StrCat("  K::Lstm(", T, ", B, ", I, ", ", H, ", ", xp, ", ", wt, ", ", rt, ", ", bs, ", ", at(h0p), ", ",
                      at(c0p), ", ", pp.empty() ? std::string("nullptr") : absl::StrCat(pp, " + ", d * 3 * H), ", ",
                      reverse ? "true" : "false", ", ", at(yp), ", ", dirs, " * B * ", H, ", ",
                      at(yhp), ", ", at(ycp), ", ", gates, ", ", hs, ", ", cs, ", ", io.lens, ", ", io.xs, ");"));
  }
  Code("}");
  kernels_.insert("gemm.h");
  kernels_.insert("recurrent.h");
  return absl::OkStatus();
}

absl::Status Emitter::EmitRnnGru(const Node& n) {
  const bool gru = n.op_type == "GRU";
  const std::string& x = n.inputs[0];
  if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
  if (n.GetInt("layout", 0) != 0) return Unsupported(n, "layout 1");
  if (n.HasAttribute("clip")) return Unsupported(n, "clip");
  if (n.HasInput(4) && DT(n.inputs[4]) != DType::kInt32) return Unsupported(n, "sequence_lens that are not int32");
  int act = 0;
  if (n.HasAttribute("activations")) {
    const std::vector<std::string> acts = n.GetStrings("activations");
    for (size_t i = 0; i < acts.size(); ++i) {
      if (gru) {
        if (acts[i] != (i % 2 == 0 ? "Sigmoid" : "Tanh")) return Unsupported(n, "activations other than the defaults");
      } else {
        const int a = acts[i] == "Tanh" ? 0 : acts[i] == "Relu" ? 1 : acts[i] == "Sigmoid" ? 2 : -1;
        if (a < 0 || (i > 0 && a != act)) return Unsupported(n, "activations");
        act = a;
      }
    }
  }
  const LinShape &sx = S(x), &sw = S(n.inputs[1]), &sr = S(n.inputs[2]);
  for (const LinShape* s : {&sw, &sr})
    for (const Lin& l : *s)
      if (!l.IsConst()) return Unsupported(n, "weights whose shape depends on the batch");
  if (!sx[0].IsConst()) return Unsupported(n, "the sequence length depends on the batch");
  const int64_t dirs = sw[0].fixed, G = sw[1].fixed, I = sw[2].fixed, H = sr[2].fixed, T = sx[0].fixed;
  const std::string direction = n.GetString("direction", "forward");
  const int64_t max_b = std::max(sx[1].At(1), sx[1].At(max_batch_));
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  HEPML_ASSIGN_OR_RETURN(std::string wp, In(n.inputs[1]));
  HEPML_ASSIGN_OR_RETURN(std::string rp, In(n.inputs[2]));
  std::string bp, h0p, lens = "nullptr";
  if (n.HasInput(4)) {
    HEPML_ASSIGN_OR_RETURN(lens, In(n.inputs[4]));
  }
  if (n.HasInput(3)) {
    HEPML_ASSIGN_OR_RETURN(bp, In(n.inputs[3]));
  }
  if (n.HasInput(5)) {
    HEPML_ASSIGN_OR_RETURN(h0p, In(n.inputs[5]));
  }
  const std::string yp = n.HasOutput(0) ? Out(n.outputs[0]) : "";
  const std::string yhp = n.HasOutput(1) ? Out(n.outputs[1]) : "";
  const std::string hs = Scratch("float", static_cast<size_t>(max_b * H) * 4);
  const std::string tmp = Scratch("float", static_cast<size_t>(max_b * H) * 4);
  Code("{");
  Code(absl::StrCat("  const int64_t B = ", LinExpr(sx[1]), ";"));
  for (int64_t d = 0; d < dirs; ++d) {
    const bool reverse = direction == "reverse" || (direction == "bidirectional" && d == 1);
    auto at = [&](const std::string& p) { return p.empty() ? std::string("nullptr") : absl::StrCat(p, " + ", d, " * B * ", H); };
    const std::string wb = bp.empty() ? "nullptr" : absl::StrCat(bp, " + ", d * 2 * G);
    const std::string rb = bp.empty() ? "nullptr" : absl::StrCat(bp, " + ", d * 2 * G + G);
    Code(absl::StrCat("  K::", gru ? "Gru" : "Rnn", "(", T, ", B, ", I, ", ", H, ", ", xp, ", ", wp, " + ", d * G * I, ", ",
                      rp, " + ", d * G * H, ", ", wb, ", ", rb, ", ", at(h0p), ", ", reverse ? "true" : "false", ", ",
                      gru ? (n.GetInt("linear_before_reset", 0) ? "true" : "false") : absl::StrCat(act), ", ", at(yp),
                      ", ", dirs, " * B * ", H, ", ", at(yhp), ", ", hs, ", ", tmp, ", ", lens, ");"));
  }
  Code("}");
  kernels_.insert("gemm.h");
  kernels_.insert("recurrent.h");
  return absl::OkStatus();
}

// Reshape-like nodes: the output shares the input's storage, unless it is a
// graph output (then it is copied into the caller's buffer).
absl::Status Emitter::EmitCopyAlias(const Node& n) {
  const std::string &x = n.inputs[0], &y = n.outputs[0];
  if (output_of_.count(y) || !storage_.count(x)) {
    cur_.code.clear();
    return EmitCopy(x, y, n.Describe());
  }
  storage_[y] = Storage{Loc::kArena, 0, 0, x};
  return absl::OkStatus();
}

absl::Status Emitter::EmitInteger(const Node& n, bool* handled) {
  const std::string& op = n.op_type;
  *handled = op == "MatMulInteger" || op == "QLinearMatMul" || op == "ConvInteger" || op == "QLinearConv" ||
             op == "QuantizeLinear" || op == "DequantizeLinear" || op == "DynamicQuantizeLinear";
  if (!*handled) return absl::OkStatus();
  auto quantized = [&](const std::string& v) { return DT(v) == DType::kInt8 || DT(v) == DType::kUInt8; };
  auto constant_dims = [&](const std::string& v) {
    for (const Lin& l : S(v))
      if (!l.IsConst()) return false;
    return true;
  };
  // Pointer of optional input i ("nullptr" when absent, typed by `ctype`).
  auto optional = [&](int i, const std::string& ctype) -> absl::StatusOr<std::string> {
    if (!n.HasInput(i)) return absl::StrCat("static_cast<const ", ctype, "*>(nullptr)");
    return In(n.inputs[i]);
  };
  // Element count of a scale / zero-point input (1 when absent).
  auto count = [&](int i) -> int64_t { return n.HasInput(i) ? ProdAt(S(n.inputs[i]), 1) : 1; };
  // Its first value as int32_t ("0" when absent).
  auto first = [&](int i, const std::string& p) {
    return n.HasInput(i) ? absl::StrCat("static_cast<int32_t>(", p, "[0])") : std::string("0");
  };
  kernels_.insert("gemm.h");
  kernels_.insert("conv.h");
  kernels_.insert("int8.h");
  if (op == "DynamicQuantizeLinear") {
    const std::string& x = n.inputs[0];
    if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = n.HasOutput(0) ? Out(n.outputs[0]) : Scratch("uint8_t", static_cast<size_t>(MaxCount(S(x), 0, S(x).size())));
    const std::string sp = n.HasOutput(1) ? Out(n.outputs[1]) : Scratch("float", 4);
    const std::string zp = n.HasOutput(2) ? Out(n.outputs[2]) : Scratch("uint8_t", 1);
    Code(absl::StrCat("K::DynamicQuantizeLinear(", Count(x), ", ", xp, ", ", yp, ", ", sp, ", ", zp, ");"));
    return absl::OkStatus();
  }
  if (op == "QuantizeLinear" || op == "DequantizeLinear") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    const bool quant = op == "QuantizeLinear";
    if (quant && DT(x) != DType::kFloat32) return Unsupported(n, absl::StrCat("input of type ", DTypeName(DT(x))));
    if (quant && !quantized(y)) return Unsupported(n, absl::StrCat("output of type ", DTypeName(DT(y))));
    if (!quant && !quantized(x) && DT(x) != DType::kInt32) return Unsupported(n, absl::StrCat("input of type ", DTypeName(DT(x))));
    if (!quant && DT(y) != DType::kFloat32) return Unsupported(n, absl::StrCat("output of type ", DTypeName(DT(y))));
    if (DT(n.inputs[1]) != DType::kFloat32) return Unsupported(n, "a scale that is not float32");
    if (!constant_dims(n.inputs[1])) return Unsupported(n, "a scale whose shape depends on the batch");
    const int64_t per = count(1);
    const LinShape& sx = S(x);
    const int rank = Rank(x);
    std::string outer = Count(x), mid = "1", inner = "1";
    if (per != 1 || Rank(n.inputs[1]) == 1) {
      int64_t axis = n.GetInt("axis", 1);
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank) return Unsupported(n, "axis out of range");
      if (!sx[axis].IsConst() || sx[axis].fixed != per) {
        if (per != 1) return Unsupported(n, "a scale that is neither one value nor one per index of the axis");
      } else {
        outer = ProdExpr(sx, 0, axis);
        mid = LinExpr(sx[axis]);
        inner = ProdExpr(sx, axis + 1, rank);
      }
    }
    if (n.HasInput(2) && count(2) != per) return Unsupported(n, "a zero point of another shape than the scale");
    const std::string qt = CT(quant ? y : x);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string sp, In(n.inputs[1]));
    HEPML_ASSIGN_OR_RETURN(std::string zp, optional(2, qt));
    if (n.HasInput(2) && DT(n.inputs[2]) != (quant ? DT(y) : DT(x))) return Unsupported(n, "zero point type");
    const std::string yp = Out(y);
    Code(absl::StrCat("K::", quant ? "QuantizeAxis<" : "DequantizeAxis<", qt, ">(", outer, ", ", mid, ", ", inner, ", ",
                      xp, ", ", sp, ", ", per, ", ", zp, ", ", yp, ");"));
    return absl::OkStatus();
  }
  if (op == "MatMulInteger" || op == "QLinearMatMul") {
    const bool qlinear = op == "QLinearMatMul";
    const int ia = 0, ib = qlinear ? 3 : 1, iaz = qlinear ? 2 : 2, ibz = qlinear ? 5 : 3;
    const std::string &a = n.inputs[ia], &b = n.inputs[ib], &y = n.outputs[0];
    if (!quantized(a) || !quantized(b)) return Unsupported(n, "operands that are not int8 or uint8");
    if (qlinear && !quantized(y)) return Unsupported(n, "output that is not int8 or uint8");
    if (!qlinear && DT(y) != DType::kInt32) return Unsupported(n, "output that is not int32");
    const LinShape &sa = S(a), &sb = S(b);
    if (sa.size() < 2 || sb.size() < 2) return Unsupported(n, "1-D operands");
    if (!constant_dims(b) || !sa.back().IsConst() || !sa[sa.size() - 2].IsConst())
      return Unsupported(n, "matrix dims that depend on the batch");
    for (int i : {iaz, ibz, 1, 4, 6, 7}) {
      if (!qlinear && i != iaz && i != ibz) continue;
      if (n.HasInput(i) && !constant_dims(n.inputs[i])) return Unsupported(n, "parameters whose shape depends on the batch");
    }
    const int64_t M = sa[sa.size() - 2].fixed, K = sa.back().fixed, N = sb.back().fixed;
    // Per-row parameters of a (M values) or per-column of b (N values) apply
    // to each matrix of a batch.
    const int64_t a_n = qlinear ? count(1) : count(iaz), b_n = qlinear ? count(4) : count(ibz);
    if ((a_n != 1 && a_n != M) || (n.HasInput(iaz) && count(iaz) != a_n)) return Unsupported(n, "a's zero point or scale shape");
    if ((b_n != 1 && b_n != N) || (n.HasInput(ibz) && count(ibz) != b_n)) return Unsupported(n, "b's zero point or scale shape");
    if (qlinear && (count(6) != 1 || count(7) != 1)) return Unsupported(n, "y's scale and zero point must be single values");
    std::string batches = "1", a_step = "0", b_step = "0";
    if (sb.size() == 2) {
      batches = ProdExpr(sa, 0, sa.size() - 2);
      a_step = absl::StrCat(M * K);
    } else {
      const LinShape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
      auto all_one = [](const LinShape& s) {
        for (const Lin& l : s)
          if (!(l.IsConst() && l.fixed == 1)) return false;
        return true;
      };
      a_step = absl::StrCat(M * K);
      b_step = absl::StrCat(K * N);
      batches = ProdExpr(ba.size() >= bb.size() ? ba : bb, 0, std::max(ba.size(), bb.size()));
      if (ba != bb) {
        if (all_one(ba)) a_step = "0";
        else if (all_one(bb)) b_step = "0";
        else return Unsupported(n, "broadcast batch dims");
      }
    }
    const std::string ta = CT(a), tb = CT(b);
    HEPML_ASSIGN_OR_RETURN(std::string ap, In(a));
    HEPML_ASSIGN_OR_RETURN(std::string bp, In(b));
    HEPML_ASSIGN_OR_RETURN(std::string azp, optional(iaz, ta));
    HEPML_ASSIGN_OR_RETURN(std::string bzp, optional(ibz, tb));
    if ((n.HasInput(iaz) && DT(n.inputs[iaz]) != DT(a)) || (n.HasInput(ibz) && DT(n.inputs[ibz]) != DT(b)))
      return Unsupported(n, "zero point type");
    const std::string bt = Scratch("int16_t", static_cast<size_t>(N * K) * 2);
    const std::string ar = Scratch("int16_t", static_cast<size_t>(K) * 2);
    const std::string yp = Out(y);
    Code(absl::StrCat("for (int64_t i = 0, e = ", batches, "; i < e; ++i) {"));
    if (qlinear) {
      const std::string ty = CT(y);
      HEPML_ASSIGN_OR_RETURN(std::string as, In(n.inputs[1]));
      HEPML_ASSIGN_OR_RETURN(std::string bs, In(n.inputs[4]));
      HEPML_ASSIGN_OR_RETURN(std::string ys, In(n.inputs[6]));
      HEPML_ASSIGN_OR_RETURN(std::string yz, optional(7, ty));
      if (n.HasInput(7) && DT(n.inputs[7]) != DT(y)) return Unsupported(n, "y's zero point type");
      const std::string acc = Scratch("int32_t", static_cast<size_t>(M * N) * 4);
      Code(absl::StrCat("  K::QLinearMatMul<", ta, ", ", tb, ", ", ty, ">(", M, ", ", N, ", ", K, ", ", ap, " + i * ",
                        a_step, ", ", as, ", ", a_n, ", ", azp, ", ", bp, " + i * ", b_step, ", ", bs, ", ", b_n, ", ",
                        bzp, ", ", ys, "[0], ", first(7, yz), ", ", bt, ", ", ar, ", ", acc, ", ", yp, " + i * ", M * N,
                        ");"));
    } else {
      Code(absl::StrCat("  K::MatMulInt<", ta, ", ", tb, ">(", M, ", ", N, ", ", K, ", ", ap, " + i * ", a_step, ", ",
                        azp, ", ", a_n, ", ", bp, " + i * ", b_step, ", ", bzp, ", ", b_n, ", ", bt, ", ", ar, ", ", yp,
                        " + i * ", M * N, ");"));
    }
    Code("}");
    return absl::OkStatus();
  }
  // ConvInteger (x, w, x_zero_point, w_zero_point) and QLinearConv (x,
  // x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B).
  const bool qlinear = op == "QLinearConv";
  const int iw = qlinear ? 3 : 1, ixz = qlinear ? 2 : 2, iwz = qlinear ? 5 : 3;
  const std::string &x = n.inputs[0], &wv = n.inputs[iw], &y = n.outputs[0];
  if (!quantized(x) || !quantized(wv)) return Unsupported(n, "operands that are not int8 or uint8");
  if (qlinear && !quantized(y)) return Unsupported(n, "output that is not int8 or uint8");
  if (!qlinear && DT(y) != DType::kInt32) return Unsupported(n, "output that is not int32");
  const LinShape &sx = S(x), &sw = S(wv), &sy = S(y);
  const int spatial = static_cast<int>(sx.size()) - 2;
  if (spatial < 1 || spatial > 3) return Unsupported(n, "spatial rank");
  for (size_t d = 1; d < sx.size(); ++d)
    if (!sx[d].IsConst() || !sy[d].IsConst()) return Unsupported(n, "spatial dims depend on the batch");
  if (!constant_dims(wv)) return Unsupported(n, "weights whose shape depends on the batch");
  const int64_t group = n.GetInt("group", 1);
  std::vector<int64_t> kernel(sw.size() - 2);
  for (size_t i = 0; i < kernel.size(); ++i) kernel[i] = sw[i + 2].fixed;
  auto geometry = WindowGeometryCode(n, sx, kernel);
  if (!geometry.ok()) return Unsupported(n, std::string(geometry.status().message()));
  const int64_t c_in = sx[1].fixed, c_out = sw[0].fixed;
  if (group < 1 || c_in % group != 0 || c_out % group != 0) return Unsupported(n, "group");
  int64_t kc = c_in / group, out_size = 1;
  for (int i = 0; i < spatial; ++i) {
    kc *= kernel[i];
    out_size *= sy[i + 2].fixed;
  }
  const int64_t w_n = qlinear ? count(4) : count(iwz);
  if ((w_n != 1 && w_n != c_out) || (n.HasInput(iwz) && count(iwz) != w_n)) return Unsupported(n, "w's zero point or scale shape");
  if (count(ixz) != 1 || (qlinear && (count(1) != 1 || count(6) != 1 || count(7) != 1)))
    return Unsupported(n, "x's and y's scale and zero point must be single values");
  const std::string tx = CT(x), tw = CT(wv);
  if ((n.HasInput(ixz) && DT(n.inputs[ixz]) != DT(x)) || (n.HasInput(iwz) && DT(n.inputs[iwz]) != DT(wv)))
    return Unsupported(n, "zero point type");
  HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
  HEPML_ASSIGN_OR_RETURN(std::string wp, In(wv));
  HEPML_ASSIGN_OR_RETURN(std::string xz, optional(ixz, tx));
  HEPML_ASSIGN_OR_RETURN(std::string wz, optional(iwz, tw));
  const std::string colT = Scratch(tx, static_cast<size_t>(out_size * kc));
  const std::string col16 = Scratch("int16_t", static_cast<size_t>(out_size * kc) * 2);
  const std::string w16 = Scratch("int16_t", static_cast<size_t>(c_out / group * kc) * 2);
  const std::string batch = LinExpr(sx[0]);
  std::string acc;
  std::string requant;
  if (qlinear) {
    const std::string ty = CT(y);
    HEPML_ASSIGN_OR_RETURN(std::string xs, In(n.inputs[1]));
    HEPML_ASSIGN_OR_RETURN(std::string ws, In(n.inputs[4]));
    HEPML_ASSIGN_OR_RETURN(std::string ys, In(n.inputs[6]));
    HEPML_ASSIGN_OR_RETURN(std::string yz, optional(7, ty));
    if (n.HasInput(7) && DT(n.inputs[7]) != DT(y)) return Unsupported(n, "y's zero point type");
    std::string bias = "nullptr";
    if (n.HasInput(8)) {
      if (DT(n.inputs[8]) != DType::kInt32 || count(8) != c_out) return Unsupported(n, "a bias that is not int32 [M]");
      HEPML_ASSIGN_OR_RETURN(bias, In(n.inputs[8]));
    }
    acc = Scratch("int32_t", static_cast<size_t>(MaxCount(sy, 0, sy.size())) * 4);
    requant = absl::StrCat("    K::RequantizeChannels<", ty, ">(", batch, ", ", c_out, ", ", out_size, ", ", acc, ", ", bias,
                           ", ", xs, "[0], ", ws, ", ", w_n, ", ", ys, "[0], ", first(7, yz), ", ", Out(y), ");\n");
  } else {
    acc = Out(y);
  }
  Code(absl::StrCat("{\n    ", *geometry, "    K::ConvInt<", tx, ", ", tw, ">(g, ", batch, ", ", c_in, ", ", c_out, ", ",
                    group, ", ", xp, ", ", first(ixz, xz), ", ", wp, ", ", wz, ", ", w_n, ", ", colT, ", ", col16, ", ",
                    w16, ", ", acc, ");\n", requant, "  }"));
  return absl::OkStatus();
}

absl::Status Emitter::EmitExtra(const Node& n, bool* handled) {
  const std::string& op = n.op_type;
  *handled = op == "Einsum" || op == "Det" || op == "LRN" || op == "MeanVarianceNormalization" ||
             op == "ReverseSequence" || op == "Compress" || op == "GridSample" || op == "TfIdfVectorizer" ||
             op == "MaxUnpool" || op == "RoiAlign" || op == "DFT" || op == "STFT" || op == "MelWeightMatrix" ||
             (op == "BatchNormalization" && (n.GetInt("training_mode", 0) != 0 || n.HasOutput(1)));
  if (!*handled) return absl::OkStatus();
  auto constant_dims = [&](const std::string& v) {
    for (const Lin& l : S(v))
      if (!l.IsConst()) return false;
    return true;
  };
  auto dims_of = [&](const std::string& v) {
    std::vector<int64_t> d;
    for (const Lin& l : S(v)) d.push_back(l.fixed);
    return d;
  };
  const std::string &x = n.inputs[0], &y = n.outputs[0];
  if (CTypeOf(DT(x)) == nullptr || DT(x) == DType::kBool) return Unsupported(n, DTypeName(DT(x)));
  kernels_.insert("extra.h");
  kernels_.insert("conv.h");  // extra.h uses its ConvGeometry
  kernels_.insert("gemm.h");
  if (op == "Compress") {
    // The condition decides the output's shape, so it is a constant here:
    // a Gather of the selected indices.
    if (!n.HasInput(1)) return Unsupported(n, "no condition");
    const Tensor* c = Const(n.inputs[1]);
    auto ci = ConstInts(n.inputs[1]);
    std::vector<bool> cond;
    if (c != nullptr && c->dtype() == DType::kBool) cond.assign(c->data<bool>(), c->data<bool>() + c->size());
    else if (ci) for (int64_t v : *ci) cond.push_back(v != 0);
    else return Unsupported(n, "a condition that is not a constant");
    const LinShape& sx = S(x);
    const int rank = Rank(x);
    std::string outer = "1", len = Count(x), inner = "1";
    int64_t n_axis = -1;
    if (n.HasAttribute("axis")) {
      int64_t axis = n.GetInt("axis", 0);
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank || !sx[axis].IsConst()) return Unsupported(n, "axis");
      outer = ProdExpr(sx, 0, axis);
      len = LinExpr(sx[axis]);
      inner = ProdExpr(sx, axis + 1, rank);
      n_axis = sx[axis].fixed;
    } else if (!constant_dims(x)) {
      return Unsupported(n, "a flattened input whose size depends on the batch");
    } else {
      n_axis = ProdAt(sx, 1);
    }
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < static_cast<int64_t>(cond.size()) && i < n_axis; ++i)
      if (cond[i]) idx.push_back(i);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    const std::string ip = absl::StrCat("reinterpret_cast<const int64_t*>(w + ", AddWeight(idx.data(), idx.size() * 8), ")");
    Code(absl::StrCat("if (!K::Gather<", CT(x), ", int64_t>(", outer, ", ", len, ", ", inner, ", ", xp, ", ", idx.size(),
                      ", ", ip, ", ", yp, ")) return (\"", absl::CEscape(n.Describe()), ": index out of range\");"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "TfIdfVectorizer") {
    if (DT(x) != DType::kInt32 && DT(x) != DType::kInt64) return Unsupported(n, DTypeName(DT(x)));
    if (DT(y) != DType::kFloat32) return Unsupported(n, "output type");
    const std::string mode_s = n.GetString("mode", "");
    const int mode = mode_s == "TF" ? 0 : mode_s == "IDF" ? 1 : mode_s == "TFIDF" ? 2 : -1;
    if (mode < 0) return Unsupported(n, absl::StrCat("mode '", mode_s, "'"));
    const int64_t min_n = n.GetInt("min_gram_length", -1), max_n = n.GetInt("max_gram_length", -1),
                  max_skip = n.GetInt("max_skip_count", -1);
    if (min_n < 1 || max_n < min_n || max_skip < 0) return Unsupported(n, "gram lengths or skip count");
    if (!n.HasAttribute("pool_int64s")) return Unsupported(n, "a string pool");
    const std::vector<int64_t> pool = n.GetInts("pool_int64s"), counts = n.GetInts("ngram_counts"),
                               indexes = n.GetInts("ngram_indexes");
    const std::vector<float> weights = n.GetFloats("weights");
    // The trie: children per node (token -> node), the output column per node.
    std::vector<std::map<int64_t, int64_t>> kids(1);
    std::vector<int64_t> col(1, -1);
    int64_t id = 0;
    for (size_t k = 0; k < counts.size(); ++k) {
      const int64_t len = static_cast<int64_t>(k) + 1;
      const int64_t start = counts[k], end = k + 1 < counts.size() ? counts[k + 1] : static_cast<int64_t>(pool.size());
      if (start < 0 || end < start || end > static_cast<int64_t>(pool.size()) || (end - start) % len != 0)
        return Unsupported(n, "ngram_counts");
      for (int64_t p = start; p < end; p += len, ++id) {
        if (len < min_n || len > max_n) continue;
        int64_t cur = 0;
        for (int64_t t = 0; t < len; ++t) {
          auto it = kids[cur].find(pool[p + t]);
          if (it == kids[cur].end()) {
            kids.emplace_back();
            col.push_back(-1);
            const int64_t fresh = static_cast<int64_t>(kids.size()) - 1;
            kids[cur][pool[p + t]] = fresh;
            cur = fresh;
          } else {
            cur = it->second;
          }
        }
        if (id >= static_cast<int64_t>(indexes.size())) return Unsupported(n, "ngram_indexes");
        col[cur] = indexes[id];
      }
    }
    int64_t out_size = 0;
    for (int64_t v : indexes) out_size = std::max(out_size, v + 1);
    if (!weights.empty() && static_cast<int64_t>(weights.size()) < out_size) return Unsupported(n, "weights");
    std::vector<int64_t> first, count, key, child;
    for (const auto& m : kids) {
      first.push_back(static_cast<int64_t>(key.size()));
      count.push_back(static_cast<int64_t>(m.size()));
      for (const auto& [k, c] : m) {
        key.push_back(k);
        child.push_back(c);
      }
    }
    auto arr = [&](const std::vector<int64_t>& v) {
      return absl::StrCat("reinterpret_cast<const int64_t*>(w + ", AddWeight(v.data(), v.size() * 8), ")");
    };
    const LinShape& sx = S(x);
    if (Rank(x) > 2 || (Rank(x) >= 1 && !sx.back().IsConst())) return Unsupported(n, "input shape");
    const std::string rows = Rank(x) == 2 ? LinExpr(sx[0]) : "1";
    const int64_t c = Rank(x) == 0 ? 1 : sx.back().fixed;
    const int64_t max_rows = Rank(x) == 2 ? MaxCount(sx, 0, 1) : 1;
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string cnt = Scratch("int64_t", static_cast<size_t>(std::max<int64_t>(1, max_rows * out_size)) * 8);
    const std::string yp = Out(y);
    const std::string wp = weights.empty() ? "nullptr"
        : absl::StrCat("reinterpret_cast<const float*>(w + ", AddWeight(weights.data(), weights.size() * 4), ")");
    Code(absl::StrCat("K::TfIdf<", CT(x), ">(", rows, ", ", c, ", ", xp, ", ", min_n, ", ", max_n, ", ", max_skip, ", ",
                      arr(first), ", ", arr(count), ", ", arr(key), ", ", arr(child), ", ", arr(col), ", ", mode, ", ",
                      wp, ", ", out_size, ", ", cnt, ", ", yp, ");"));
    return absl::OkStatus();
  }
  if (op == "MaxUnpool") {
    const int rank = Rank(x);
    const int nd = rank - 2;
    if (nd < 1 || rank > 8 || !constant_dims(x) || !constant_dims(y)) return Unsupported(n, "rank or dims that depend on the batch");
    const std::vector<int64_t> kernel = n.GetInts("kernel_shape");
    const std::vector<int64_t> strides = n.GetInts("strides", std::vector<int64_t>(nd, 1));
    const std::vector<int64_t> pads = n.GetInts("pads", std::vector<int64_t>(2 * nd, 0));
    if (static_cast<int>(kernel.size()) != nd || static_cast<int>(strides.size()) != nd ||
        static_cast<int>(pads.size()) != 2 * nd)
      return Unsupported(n, "kernel_shape, strides or pads");
    std::vector<int64_t> full = {S(x)[0].fixed, S(x)[1].fixed};
    for (int d = 0; d < nd; ++d) full.push_back((S(x)[d + 2].fixed - 1) * strides[d] - pads[d] - pads[d + nd] + kernel[d]);
    if (DT(n.inputs[1]) != DType::kInt64 && DT(n.inputs[1]) != DType::kInt32) return Unsupported(n, "indices type");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string ip, In(n.inputs[1]));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t full_dims[] = {", absl::StrJoin(full, ", "), "};\n    const int64_t y_dims[] = {",
                      absl::StrJoin(dims_of(y), ", "), "};\n    if (!K::MaxUnpool<", CT(x), ", ", CT(n.inputs[1]), ">(",
                      rank, ", full_dims, y_dims, ", Count(x), ", ", xp, ", ", ip, ", ", yp, ")) return (\"",
                      absl::CEscape(n.Describe()), ": an index outside the unpooled tensor\");\n  }"));
    return absl::OkStatus();
  }
  if (op == "RoiAlign") {
    const std::string &rois = n.inputs[1], &bidx = n.inputs[2];
    const LinShape& sx = S(x);
    if (Rank(x) != 4 || Rank(rois) != 2 || !S(rois)[1].IsConst() || S(rois)[1].fixed != 4)
      return Unsupported(n, "X of rank 4 and rois of shape [num_rois, 4]");
    if (!IsFloatType(DT(x)) || Is16Bit(DT(x)) || DT(rois) != DT(x)) return Unsupported(n, "float32 or float64 X and rois");
    if (DT(bidx) != DType::kInt64 && DT(bidx) != DType::kInt32) return Unsupported(n, "batch_indices type");
    const std::string mode = n.GetString("mode", "avg");
    if (mode != "avg" && mode != "max") return Unsupported(n, absl::StrCat("mode '", mode, "'"));
    const int64_t oh = n.GetInt("output_height", 1), ow = n.GetInt("output_width", 1);
    const int64_t sampling = n.GetInt("sampling_ratio", 0);
    if (oh <= 0 || ow <= 0 || sampling < 0) return Unsupported(n, "output size or sampling_ratio");
    bool half_pixel = false;
    if (n.opset >= 16) {
      const std::string ctm = n.GetString("coordinate_transformation_mode", "half_pixel");
      if (ctm != "half_pixel" && ctm != "output_half_pixel")
        return Unsupported(n, absl::StrCat("coordinate_transformation_mode '", ctm, "'"));
      half_pixel = ctm == "half_pixel";
    }
    if (!sx[2].IsConst() || !sx[3].IsConst() || sx[2].fixed == 0 || sx[3].fixed == 0)
      return Unsupported(n, "an empty or batch-dependent feature map");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string rp, In(rois));
    HEPML_ASSIGN_OR_RETURN(std::string bp, In(bidx));
    const std::string yp = Out(y);
    char scale[64];
    std::snprintf(scale, sizeof(scale), "%.17g", static_cast<double>(n.GetFloat("spatial_scale", 1.f)));
    Code(absl::StrCat("if (!K::RoiAlign(", LinExpr(sx[0]), ", ", LinExpr(sx[1]), ", ", sx[2].fixed, ", ", sx[3].fixed, ", ",
                      xp, ", ", LinExpr(S(rois)[0]), ", ", rp, ", ", bp, ", ", oh, ", ", ow, ", ", sampling, ", ", scale,
                      ", ", half_pixel ? "true" : "false", ", ", mode == "max" ? "true" : "false", ", ", yp,
                      ")) return (\"", absl::CEscape(n.Describe()), ": a batch index outside [0, N)\");"));
    return absl::OkStatus();
  }
  if (op == "MelWeightMatrix") {
    // num_mel_bins and dft_length set the output's shape, so they are
    // constants here; the rate and the edges may be run-time values.
    auto mels = ConstInts(n.inputs[0]), dft_length = ConstInts(n.inputs[1]);
    if (!mels || mels->size() != 1 || !dft_length || dft_length->size() != 1)
      return Unsupported(n, "num_mel_bins or dft_length that is not a constant");
    if (!IsFloatType(DT(y))) return Unsupported(n, absl::StrCat("output_datatype ", DTypeName(DT(y))));
    std::vector<std::string> scalars;
    for (int i = 2; i < 5; ++i) {
      HEPML_ASSIGN_OR_RETURN(std::string p, In(n.inputs[i]));
      scalars.push_back(absl::StrCat("static_cast<double>(", p, "[0])"));
    }
    const std::string yp = Out(y);
    Code(absl::StrCat("if (!K::MelWeightMatrix(", (*mels)[0], ", ", (*dft_length)[0], ", ", absl::StrJoin(scalars, ", "), ", ",
                      yp, ")) return (\"", absl::CEscape(n.Describe()),
                      ": sample_rate must be positive and 0 <= lower_edge_hertz <= upper_edge_hertz <= sample_rate / 2\");"));
    return absl::OkStatus();
  }
  if (op == "DFT" || op == "STFT") {
    const LinShape& sx = S(x);
    const int r = Rank(x);
    if (!IsFloatType(DT(x)) || r < 2 || !sx[r - 1].IsConst() || (sx[r - 1].fixed != 1 && sx[r - 1].fixed != 2))
      return Unsupported(n, "a float signal of shape [..., 1 or 2]");
    const int comp = static_cast<int>(sx[r - 1].fixed);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    if (op == "DFT") {
      int64_t axis = n.GetInt("axis", 1);
      if (n.opset >= 20) {
        axis = -2;
        if (n.HasInput(2)) {
          auto a = ConstInts(n.inputs[2]);
          if (!a || a->size() != 1) return Unsupported(n, "an axis that is not a constant");
          axis = (*a)[0];
        }
      }
      if (axis < 0) axis += r;
      if (axis < 0 || axis > r - 2 || !sx[axis].IsConst()) return Unsupported(n, "the axis");
      const int64_t len_in = sx[axis].fixed;
      int64_t len = len_in;
      if (n.HasInput(1)) {
        auto d = ConstInts(n.inputs[1]);
        if (!d || d->size() != 1 || (*d)[0] <= 0) return Unsupported(n, "a dft_length that is not a positive constant");
        len = (*d)[0];
      }
      const int64_t out_n = n.GetInt("onesided", 0) != 0 ? len / 2 + 1 : len;
      if (!S(y)[axis].IsConst() || S(y)[axis].fixed != out_n) return Unsupported(n, "the output's shape");
      const std::string yp = Out(y);
      Code(absl::StrCat("K::Dft(", ProdExpr(sx, 0, axis), ", ", len_in, ", ", ProdExpr(sx, axis + 1, r - 1), ", ", comp,
                        ", ", len, ", ", out_n, ", ", n.GetInt("inverse", 0) != 0 ? "true" : "false", ", ", xp, ", ",
                        yp, ");"));
      return absl::OkStatus();
    }
    if (r != 3 || !sx[1].IsConst()) return Unsupported(n, "a signal of shape [batch, length, 1 or 2]");
    auto step = ConstInts(n.inputs[1]);
    if (!step || step->size() != 1 || (*step)[0] <= 0) return Unsupported(n, "a frame_step that is not a positive constant");
    int64_t frame_length = -1;
    std::string wp = absl::StrCat("static_cast<const ", CT(x), "*>(nullptr)");
    if (n.HasInput(2)) {
      const LinShape& sw = S(n.inputs[2]);
      if (sw.size() != 1 || !sw[0].IsConst() || DT(n.inputs[2]) != DT(x)) return Unsupported(n, "the window");
      frame_length = sw[0].fixed;
      HEPML_ASSIGN_OR_RETURN(wp, In(n.inputs[2]));
    }
    if (n.HasInput(3)) {
      auto fl = ConstInts(n.inputs[3]);
      if (!fl || fl->size() != 1 || (frame_length >= 0 && (*fl)[0] != frame_length))
        return Unsupported(n, "a frame_length that is not a constant equal to the window's");
      frame_length = (*fl)[0];
    }
    const int64_t length = sx[1].fixed;
    if (frame_length <= 0 || frame_length > length) return Unsupported(n, "frame_length");
    const int64_t frames = 1 + (length - frame_length) / (*step)[0];
    const int64_t bins = n.GetInt("onesided", 1) != 0 ? frame_length / 2 + 1 : frame_length;
    const LinShape& sy = S(y);
    if (sy.size() != 4 || !sy[1].IsConst() || sy[1].fixed != frames || !sy[2].IsConst() || sy[2].fixed != bins)
      return Unsupported(n, "the output's shape");
    const std::string yp = Out(y);
    Code(absl::StrCat("K::Stft(", LinExpr(sx[0]), ", ", length, ", ", comp, ", ", (*step)[0], ", ", wp, ", ",
                      frame_length, ", ", frames, ", ", bins, ", ", xp, ", ", yp, ");"));
    return absl::OkStatus();
  }
  if (op == "ReverseSequence") {
    const int64_t batch_axis = n.GetInt("batch_axis", 1), time_axis = n.GetInt("time_axis", 0);
    const LinShape& sx = S(x);
    if (Rank(x) < 2 || !((batch_axis == 0 && time_axis == 1) || (batch_axis == 1 && time_axis == 0)))
      return Unsupported(n, "batch_axis and time_axis other than 0 and 1");
    const std::string& lens = n.inputs[1];
    if (DT(lens) != DType::kInt64 && DT(lens) != DType::kInt32) return Unsupported(n, "sequence_lens type");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string lp, In(lens));
    const std::string yp = Out(y);
    Code(absl::StrCat("if (!K::ReverseSequence<", CT(x), ", ", CT(lens), ">(", LinExpr(sx[time_axis]), ", ",
                      LinExpr(sx[batch_axis]), ", ", ProdExpr(sx, 2, sx.size()), ", ", batch_axis == 0 ? "true" : "false",
                      ", ", xp, ", ", lp, ", ", yp, ")) return (\"", absl::CEscape(n.Describe()),
                      ": a sequence length outside [0, the time axis]\");"));
    return absl::OkStatus();
  }
  if (!IsFloatType(DT(x))) return Unsupported(n, DTypeName(DT(x)));
  if (op == "GridSample") {
    const std::string& grid = n.inputs[1];
    const LinShape &sx = S(x), &sg = S(grid);
    const int r = Rank(x) - 2;
    if (r < 1 || r > 3 || (n.opset < 20 && r != 2)) return Unsupported(n, "spatial rank");
    if (DT(grid) != DT(x)) return Unsupported(n, "a grid of another type than X");
    for (size_t d = 1; d < sx.size(); ++d)
      if (!sx[d].IsConst()) return Unsupported(n, "dims that depend on the batch");
    for (size_t d = 1; d < sg.size(); ++d)
      if (!sg[d].IsConst()) return Unsupported(n, "dims that depend on the batch");
    if (Rank(grid) != r + 2 || sg.back().fixed != r) return Unsupported(n, "grid shape");
    const std::string mode_s = n.GetString("mode", n.opset >= 20 ? "linear" : "bilinear");
    const int mode = mode_s == "nearest" ? 0 : (mode_s == "bilinear" || mode_s == "linear") ? 1
                   : (mode_s == "bicubic" || mode_s == "cubic") ? 2 : -1;
    const std::string pad_s = n.GetString("padding_mode", "zeros");
    const int pad = pad_s == "zeros" ? 0 : pad_s == "border" ? 1 : pad_s == "reflection" ? 2 : -1;
    if (mode < 0) return Unsupported(n, absl::StrCat("mode ", mode_s));
    if (pad < 0) return Unsupported(n, absl::StrCat("padding_mode ", pad_s));
    std::vector<int64_t> in_sp;
    for (int d = 0; d < r; ++d) in_sp.push_back(sx[d + 2].fixed);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string gp, In(grid));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t in_sp[] = {", absl::StrJoin(in_sp, ", "), "};\n    K::GridSample<", CT(x),
                      ">(", r, ", ", LinExpr(sx[0]), ", ", sx[1].fixed, ", in_sp, ", ProdExpr(sg, 1, sg.size() - 1), ", ",
                      mode, ", ", pad, ", ", n.GetInt("align_corners", 0) ? "true" : "false", ", ", xp, ", ", gp, ", ",
                      yp, ");\n  }"));
    return absl::OkStatus();
  }
  if (op == "Det") {
    const LinShape& sx = S(x);
    const int rank = Rank(x);
    if (rank < 2 || !sx[rank - 1].IsConst() || sx[rank - 1] != sx[rank - 2]) return Unsupported(n, "non-square matrices");
    const int64_t m = sx[rank - 1].fixed;
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string lu = Scratch("double", static_cast<size_t>(m * m) * 8);
    const std::string yp = Out(y);
    Code(absl::StrCat("K::Det<", CT(x), ">(", ProdExpr(sx, 0, rank - 2), ", ", m, ", ", xp, ", ", lu, ", ", yp, ");"));
    return absl::OkStatus();
  }
  if (op == "LRN") {
    const LinShape& sx = S(x);
    if (Rank(x) < 2 || !sx[1].IsConst()) return Unsupported(n, "channel dim");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("K::Lrn<", CT(x), ">(", LinExpr(sx[0]), ", ", sx[1].fixed, ", ", ProdExpr(sx, 2, sx.size()), ", ",
                      n.GetInt("size", 1), ", ", FloatLit(n.GetFloat("alpha", 1e-4f)), ", ",
                      FloatLit(n.GetFloat("beta", 0.75f)), ", ", FloatLit(n.GetFloat("bias", 1.f)), ", ", xp, ", ", yp,
                      ");"));
    return absl::OkStatus();
  }
  if (op == "MeanVarianceNormalization") {
    const int rank = Rank(x);
    if (rank > 8 || !constant_dims(x)) return Unsupported(n, "rank above 8 or dims that depend on the batch");
    std::vector<int64_t> axes = n.GetInts("axes", {0, 2, 3});
    std::vector<int> reduced(rank, 0);
    for (int64_t a : axes) {
      if (a < 0) a += rank;
      if (a < 0 || a >= rank) return Unsupported(n, "axis out of range");
      reduced[a] = 1;
    }
    int64_t groups = 1;
    for (int d = 0; d < rank; ++d)
      if (!reduced[d]) groups *= S(x)[d].fixed;
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string stats = Scratch("double", static_cast<size_t>(groups) * 16);
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dx[] = {", absl::StrJoin(dims_of(x), ", "), "};\n    const int red[] = {",
                      absl::StrJoin(reduced, ", "), "};\n    K::MeanVarianceNormalization<", CT(x), ">(", rank,
                      ", dx, red, ", xp, ", ", stats, ", ", yp, ");\n  }"));
    return absl::OkStatus();
  }
  if (op == "BatchNormalization") {
    const LinShape& sx = S(x);
    if (Rank(x) < 2 || !sx[1].IsConst()) return Unsupported(n, "channel dim");
    std::string p[4];
    for (int i = 0; i < 4; ++i) {
      if (DT(n.inputs[i + 1]) != DT(x)) return Unsupported(n, "statistics of another type than the input");
      HEPML_ASSIGN_OR_RETURN(p[i], In(n.inputs[i + 1]));
    }
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    const std::string mp = n.HasOutput(1) ? Out(n.outputs[1]) : "nullptr";
    const std::string vp = n.HasOutput(2) ? Out(n.outputs[2]) : "nullptr";
    Code(absl::StrCat("K::BatchNormTraining<", CT(x), ">(", LinExpr(sx[0]), ", ", sx[1].fixed, ", ",
                      ProdExpr(sx, 2, sx.size()), ", ", xp, ", ", p[0], ", ", p[1], ", ", p[2], ", ", p[3], ", ",
                      FloatLit(n.GetFloat("epsilon", 1e-5f)), ", ", FloatLit(n.GetFloat("momentum", 0.9f)), ", ", yp,
                      ", ", mp, ", ", vp, ");"));
    return absl::OkStatus();
  }
  // Einsum: labels of each operand ("..." expanded to the broadcast dims),
  // the output's (explicit, or implicit: the ellipsis dims, then the labels
  // used once in alphabetical order), one loop over every combination.
  std::string eq;
  for (char ch : n.GetString("equation"))
    if (ch != ' ') eq += ch;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms = absl::StrSplit(lhs, ',');
  if (terms.size() != n.inputs.size() || terms.size() > 8) return Unsupported(n, "equation and inputs disagree");
  int max_ell = 0;
  std::vector<std::vector<int>> in_labels(terms.size());  // label ids; -k-1: the k-th ellipsis dim from the right
  std::map<char, int> count_of;
  for (size_t i = 0; i < terms.size(); ++i) {
    const std::string& t = terms[i];
    if (!constant_dims(n.inputs[i])) return Unsupported(n, "dims that depend on the batch");
    const size_t ell = t.find("...");
    const int letters = static_cast<int>(t.size()) - (ell == std::string::npos ? 0 : 3);
    const int e = ell == std::string::npos ? 0 : Rank(n.inputs[i]) - letters;
    if (e < 0 || (ell == std::string::npos && letters != Rank(n.inputs[i]))) return Unsupported(n, "equation and ranks disagree");
    max_ell = std::max(max_ell, e);
    for (size_t k = 0; k < t.size(); ++k) {
      if (ell != std::string::npos && k == ell) {
        for (int j = e - 1; j >= 0; --j) in_labels[i].push_back(-j - 1);
        k += 2;
        continue;
      }
      if (!std::isalpha(static_cast<unsigned char>(t[k]))) return Unsupported(n, "equation syntax");
      in_labels[i].push_back(static_cast<unsigned char>(t[k]));
      ++count_of[t[k]];
    }
  }
  std::vector<int> out_labels;
  if (arrow != std::string::npos) {
    const std::string r = eq.substr(arrow + 2);
    for (size_t k = 0; k < r.size(); ++k) {
      if (r.compare(k, 3, "...") == 0) {
        for (int j = max_ell - 1; j >= 0; --j) out_labels.push_back(-j - 1);
        k += 2;
        continue;
      }
      if (!count_of.count(r[k])) return Unsupported(n, "an output label no input has");
      out_labels.push_back(static_cast<unsigned char>(r[k]));
    }
  } else {
    for (int j = max_ell - 1; j >= 0; --j) out_labels.push_back(-j - 1);
    for (const auto& [ch, c] : count_of)
      if (c == 1) out_labels.push_back(static_cast<unsigned char>(ch));
  }
  // Every label, its size (broadcast: the largest), the strides.
  std::vector<int> labels;
  std::map<int, int64_t> size_of;
  for (size_t i = 0; i < terms.size(); ++i) {
    const std::vector<int64_t> d = dims_of(n.inputs[i]);
    for (size_t k = 0; k < in_labels[i].size(); ++k) {
      const int l = in_labels[i][k];
      if (!size_of.count(l)) labels.push_back(l);
      int64_t& sz = size_of[l];
      if (sz > 1 && d[k] > 1 && sz != d[k]) return Unsupported(n, "label sizes disagree");
      sz = std::max(sz, d[k]);
    }
  }
  for (int l : out_labels)
    if (!size_of.count(l)) return Unsupported(n, "an output label no input has");
  const int L = static_cast<int>(labels.size());
  if (L > 16) return Unsupported(n, "more than 16 labels");
  std::vector<int64_t> sizes, istride(terms.size() * L, 0), ostride(L, 0);
  for (int l : labels) sizes.push_back(size_of[l]);
  auto pos = [&](int l) { return static_cast<int>(std::find(labels.begin(), labels.end(), l) - labels.begin()); };
  for (size_t i = 0; i < terms.size(); ++i) {
    const std::vector<int64_t> d = dims_of(n.inputs[i]);
    int64_t st = 1;
    for (size_t k = in_labels[i].size(); k-- > 0;) {
      if (d[k] != 1 || size_of[in_labels[i][k]] == 1) istride[i * L + pos(in_labels[i][k])] += st;
      st *= d[k];
    }
  }
  {
    int64_t st = 1;
    for (size_t k = out_labels.size(); k-- > 0;) {
      ostride[pos(out_labels[k])] = st;
      st *= size_of[out_labels[k]];
    }
    const std::vector<int64_t> dy = dims_of(y);
    if (!constant_dims(y) || dy.size() != out_labels.size()) return Unsupported(n, "the output shape differs from the inferred one");
    for (size_t k = 0; k < dy.size(); ++k)
      if (dy[k] != size_of[out_labels[k]]) return Unsupported(n, "the output shape differs from the inferred one");
  }
  std::vector<std::string> ptrs;
  for (const std::string& in : n.inputs) {
    if (DT(in) != DT(x)) return Unsupported(n, "inputs of different types");
    HEPML_ASSIGN_OR_RETURN(std::string p, In(in));
    ptrs.push_back(p);
  }
  const std::string yp = Out(y);
  Code(absl::StrCat("{\n    const ", CT(x), "* const xs[] = {", absl::StrJoin(ptrs, ", "), "};\n    const int64_t size[] = {",
                    absl::StrJoin(sizes, ", "), "};\n    const int64_t istride[] = {", absl::StrJoin(istride, ", "),
                    "};\n    const int64_t ostride[] = {", absl::StrJoin(ostride, ", "), "};\n    K::Einsum<", CT(x), ">(",
                    terms.size(), ", xs, ", L, ", size, istride, ostride, ", Count(y), ", ", yp, ");\n  }"));
  return absl::OkStatus();
}

absl::Status Emitter::EmitNode(const Node& n) {
  const std::string& op = n.op_type;
  // float16 / bfloat16 operands: the casts, the elementwise maps (computed in
  // float, rounded once when stored) and the data movement; other kernels
  // compute in their own type and would need their own 16-bit paths.
  {
    bool any16 = false;
    for (const auto* list : {&n.inputs, &n.outputs})
      for (const std::string& v : *list) any16 |= !v.empty() && Is16Bit(DT(v));
    static const std::set<std::string> k16 = {
        "Cast", "CastLike", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Concat", "Transpose",
        "Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Max", "Min",
        "Pow", "Sum", "Mean", "Mod", "PRelu", "Neg", "Abs", "Sign", "Relu", "LeakyRelu", "Elu", "Selu", "Celu",
        "ThresholdedRelu", "HardSigmoid", "Gelu", "IsInf", "Softsign", "Softplus", "Exp", "Log", "Sqrt", "Reciprocal",
        "Sigmoid", "Tanh", "Floor", "Ceil", "Erf", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
        "Asinh", "Acosh", "Atanh", "Round", "IsNaN", "Mish", "HardSwish"};
    if (any16 && (!n.domain.empty() && n.domain != "ai.onnx" ? true : !k16.count(op)))
      return Unsupported(n, "float16 / bfloat16 operands; the casts, elementwise maps and data movement take them");
  }
  if (n.domain == "ai.hepml") {
    if (op == "FusedGemm") return EmitGemm(n);
    if (op == "FusedConv") return EmitConv(n);
    if ((op == "EdgeFeatures" || op == "EdgeGatherAdd") && n.inputs.size() == 2 && n.HasInput(0) && n.HasInput(1) &&
        DT(n.inputs[0]) == DType::kFloat32 && Rank(n.inputs[0]) == 3 && Rank(n.inputs[1]) == 3) {
      const std::string &x = n.inputs[0], &idx = n.inputs[1], &y = n.outputs[0];
      const LinShape& sx = S(x);
      const LinShape& si = S(idx);
      std::string act = "";
      if (op == "EdgeGatherAdd") {
        HEPML_ASSIGN_OR_RETURN(act, ActArgs(n));
        act = absl::StrCat(", ", act);
      }
      HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
      HEPML_ASSIGN_OR_RETURN(std::string ip, In(idx));
      const std::string yp = Out(y);
      const std::string channels = op == "EdgeFeatures" ? LinExpr(sx[1]) : absl::StrCat("(", LinExpr(sx[1]), ") / 2");
      Code(absl::StrCat("if (!K::", op, "<", CT(idx), ">(", LinExpr(sx[0]), ", ", channels, ", ", LinExpr(sx[2]), ", ",
                        LinExpr(si[2]), ", ", xp, ", ", ip, ", ", yp, act, ")) return (\"",
                        absl::CEscape(n.Describe()), ": neighbour index out of range\");"));
      kernels_.insert("shape.h");
      return absl::OkStatus();
    }
    return Unsupported(n, "");
  }
  if (!n.domain.empty() && n.domain != "ai.onnx") return Unsupported(n, absl::StrCat("domain ", n.domain));
  if (op == "Gemm") return EmitGemm(n);
  if (op == "MatMul") return EmitMatMul(n);
  if (op == "Conv") return EmitConv(n);
  if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" || op == "GlobalMaxPool") return EmitPool(n);
  if (op == "Dropout") {
    // Inference: the identity (training_mode must be a constant false).
    if (n.HasInput(2)) {
      auto t = ConstInts(n.inputs[2]);
      const Tensor* c = Const(n.inputs[2]);
      const bool off = (t && t->size() == 1 && (*t)[0] == 0) ||
                       (c && c->dtype() == DType::kBool && c->size() == 1 && !c->data<bool>()[0]);
      if (!off) {
        // Decided at run time: the training-mode kernel (numpy's stream).
        const std::string &x = n.inputs[0], &y = n.outputs[0];
        if (n.opset < 12 || !IsFloatType(DT(x))) return Unsupported(n, "training mode");
        if (DT(n.inputs[2]) != DType::kBool) return Unsupported(n, "training_mode that is not bool");
        const Attribute* seed = n.FindAttribute("seed");
        if (seed == nullptr || seed->type != Attribute::Type::kInt || seed->i < 0 || seed->i > 0xffffffffLL)
          return Unsupported(n, "training mode without a seed in [0, 2^32)");
        HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
        std::string ratio = "0.5";
        if (n.HasInput(1)) {
          if (!IsFloatType(DT(n.inputs[1]))) return Unsupported(n, "ratio type");
          HEPML_ASSIGN_OR_RETURN(std::string rp, In(n.inputs[1]));
          ratio = absl::StrCat("static_cast<double>(", rp, "[0])");
        }
        HEPML_ASSIGN_OR_RETURN(std::string tp, In(n.inputs[2]));
        const std::string yp = Out(y);
        const std::string mp = n.HasOutput(1) ? Out(n.outputs[1]) : "nullptr";
        if (n.HasOutput(1) && DT(n.outputs[1]) != DType::kBool) return Unsupported(n, "mask type");
        Code(absl::StrCat("{\n    const double ratio = ", ratio, ";\n    if (!(ratio >= 0.0 && ratio <= 1.0)) return (\"",
                          absl::CEscape(n.Describe()), ": ratio outside [0, 1]\");\n    K::Dropout<", CT(x), ">(",
                          Count(x), ", ", xp, ", ratio, ", tp, "[0], ", seed->i, "u, ", yp, ", ", mp, ");\n  }"));
        kernels_.insert("extra.h");
        kernels_.insert("conv.h");  // extra.h uses its ConvGeometry
        kernels_.insert("gemm.h");
        return absl::OkStatus();
      }
    }
    if (n.HasOutput(1)) {
      const std::string mp = Out(n.outputs[1]);
      Code(absl::StrCat("{\n    bool* m = ", mp, ";\n    for (int64_t i = 0, e = ", Count(n.outputs[1]),
                        "; i < e; ++i) m[i] = true;\n  }"));
      EndStep();
      BeginStep(n);
    }
    return EmitCopyAlias(n);
  }
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" || op == "Identity") {
    return EmitCopyAlias(n);
  }
  if (op == "Concat") return EmitConcat(n);
  {
    bool handled = false;
    absl::Status st = EmitMisc(n, &handled);
    if (handled) return st;
    st = EmitInteger(n, &handled);
    if (handled) return st;
    st = EmitExtra(n, &handled);
    if (handled) return st;
  }
  if (op == "LSTM") return EmitLstm(n);
  if (op == "RNN" || op == "GRU") return EmitRnnGru(n);
  if (op == "Slice") return EmitSlice(n);
  if (op == "BatchNormalization") return EmitBatchNorm(n);
  if (op.rfind("Reduce", 0) == 0) return EmitReduce(n);
  if (op == "Softmax" || op == "LogSoftmax") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    if (!IsFloatType(DT(x))) return Unsupported(n, "only float32 and float64");
    const int rank = Rank(x);
    int64_t axis = n.GetInt("axis", n.opset >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    const LinShape& sx = S(x);
    std::string outer = ProdExpr(sx, 0, axis), mid, inner;
    if (n.opset >= 13) {
      mid = LinExpr(sx[axis]);
      inner = ProdExpr(sx, axis + 1, rank);
    } else {
      mid = ProdExpr(sx, axis, rank);
      inner = "1";
    }
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("K::Softmax<", CT(x), ">(", outer, ", ", mid, ", ", inner, ", ", xp, ", ", yp, ", ",
                      op == "LogSoftmax" ? "true" : "false", ");"));
    kernels_.insert("normalize.h");
    return absl::OkStatus();
  }
  if (op == "LayerNormalization") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    if (DT(x) != DType::kFloat32) return Unsupported(n, "only float32");
    const int rank = Rank(x);
    int64_t axis = n.GetInt("axis", -1);
    if (axis < 0) axis += rank;
    const LinShape& sx = S(x);
    const LinShape ns(sx.begin() + axis, sx.end());
    if (ProdAt(S(n.inputs[1]), 1) != ProdAt(ns, 1) || (n.HasInput(2) && ProdAt(S(n.inputs[2]), 1) != ProdAt(ns, 1)))
      return Unsupported(n, "broadcast scale or bias");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string sp, In(n.inputs[1]));
    std::string bp = "nullptr";
    if (n.HasInput(2)) {
    HEPML_ASSIGN_OR_RETURN(bp, In(n.inputs[2]));
  }
    const std::string yp = Out(y);
    const std::string mp = n.HasOutput(1) ? Out(n.outputs[1]) : "nullptr";
    const std::string ip = n.HasOutput(2) ? Out(n.outputs[2]) : "nullptr";
    if (n.HasOutput(1) && DT(n.outputs[1]) != DType::kFloat32) return Unsupported(n, "Mean of another type");
    if (n.HasOutput(2) && DT(n.outputs[2]) != DType::kFloat32) return Unsupported(n, "InvStdDev of another type");
    Code(absl::StrCat("K::LayerNorm(", ProdExpr(sx, 0, axis), ", ", ProdExpr(sx, axis, rank), ", ", xp, ", ", sp, ", ",
                      bp, ", ", FloatLit(n.GetFloat("epsilon", 1e-5f)), ", ", yp, ", ", mp, ", ", ip, ");"));
    kernels_.insert("normalize.h");
    return absl::OkStatus();
  }
  if (op == "Transpose") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    const int rank = Rank(x);
    std::vector<int64_t> perm = n.GetInts("perm");
    if (perm.empty())
      for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dx[] = ", Dims(x), ";\n    const int64_t perm[] = {", absl::StrJoin(perm, ", "),
                      "};\n    K::Transpose<", CT(x), ">(", rank, ", dx, perm, ", xp, ", ", yp, ");\n  }"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "TopK") {
    const std::string& x = n.inputs[0];
    const int rank = Rank(x);
    int64_t axis = n.GetInt("axis", -1);
    if (axis < 0) axis += rank;
    const LinShape& sx = S(x);
    const std::string& any_out = n.HasOutput(0) ? n.outputs[0] : n.outputs[1];
    const Lin k = S(any_out)[axis];
    if (!sx[axis].IsConst() || !k.IsConst()) return Unsupported(n, "the axis depends on the batch");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const size_t esize = DTypeSize(DT(x));
    const int64_t others = std::max(ProdAt(sx, 1), ProdAt(sx, max_batch_)) / std::max<int64_t>(1, sx[axis].fixed);
    const std::string vp = n.HasOutput(0) ? Out(n.outputs[0])
                                          : Scratch(CT(x), static_cast<size_t>(others * k.fixed) * esize);
    const std::string ip = n.HasOutput(1) ? Out(n.outputs[1])
                                          : Scratch("int64_t", static_cast<size_t>(others * k.fixed) * 8);
    const std::string order = Scratch("int64_t", static_cast<size_t>(sx[axis].fixed) * 8);
    Code(absl::StrCat("K::TopK<", CT(x), ">(", ProdExpr(sx, 0, axis), ", ", sx[axis].fixed, ", ",
                      ProdExpr(sx, axis + 1, rank), ", ", k.fixed, ", ", n.GetInt("largest", 1) ? "true" : "false",
                      ", ", xp, ", ", vp, ", ", ip, ", ", order, ");"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "Gather") {
    const std::string &x = n.inputs[0], &idx = n.inputs[1], &y = n.outputs[0];
    const int rank = Rank(x);
    int64_t axis = n.GetInt("axis", 0);
    if (axis < 0) axis += rank;
    const LinShape& sx = S(x);
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string ip, In(idx));
    const std::string yp = Out(y);
    Code(absl::StrCat("if (!K::Gather<", CT(x), ", ", CT(idx), ">(", ProdExpr(sx, 0, axis), ", ", LinExpr(sx[axis]), ", ",
                      ProdExpr(sx, axis + 1, rank), ", ", xp, ", ", Count(idx), ", ", ip, ", ", yp,
                      ")) return (\"", absl::CEscape(n.Describe()), ": index out of range\");"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "GatherElements") {
    const std::string &x = n.inputs[0], &idx = n.inputs[1], &y = n.outputs[0];
    const int rank = Rank(x);
    int64_t axis = n.GetInt("axis", 0);
    if (axis < 0) axis += rank;
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string ip, In(idx));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dx[] = ", Dims(x), ";\n    const int64_t di[] = ", Dims(idx),
                      ";\n    if (!K::GatherElements<", CT(x), ", ", CT(idx), ">(", rank, ", dx, di, ", axis, ", ", xp,
                      ", ", ip, ", ", yp, ")) return (\"", absl::CEscape(n.Describe()), ": index out of range\");\n  }"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "ScatterElements" || op == "Scatter") {
    const std::string &x = n.inputs[0], &idx = n.inputs[1], &upd = n.inputs[2], &y = n.outputs[0];
    const int rank = Rank(x);
    int64_t axis = n.GetInt("axis", 0);
    if (axis < 0) axis += rank;
    static const std::map<std::string, int> kRed = {{"none", 0}, {"add", 1}, {"mul", 2}, {"max", 3}, {"min", 4}};
    auto red = kRed.find(n.GetString("reduction", "none"));
    if (red == kRed.end()) return Unsupported(n, "reduction");
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    HEPML_ASSIGN_OR_RETURN(std::string ip, In(idx));
    HEPML_ASSIGN_OR_RETURN(std::string up, In(upd));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dy[] = ", Dims(y), ";\n    const int64_t di[] = ", Dims(idx),
                      ";\n    std::memcpy(", yp, ", ", xp, ", sizeof(", CT(y), ") * static_cast<size_t>(", Count(y),
                      "));\n    if (!K::ScatterElements<", CT(y), ", ", CT(idx), ">(", rank, ", dy, di, ", axis, ", ", ip,
                      ", ", up, ", ", red->second, ", ", yp, ")) return (\"", absl::CEscape(n.Describe()),
                      ": index out of range\");\n  }"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "Expand") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dy[] = ", Dims(y), ";\n    const int64_t dx[] = ", Dims(x),
                      ";\n    K::BroadcastCopy<", CT(x), ">(", Rank(y), ", dy, ", xp, ", ", Rank(x), ", dx, ", yp,
                      ");\n  }"));
    kernels_.insert("elementwise.h");
    return absl::OkStatus();
  }
  if (op == "Tile") {
    const std::string &x = n.inputs[0], &y = n.outputs[0];
    HEPML_ASSIGN_OR_RETURN(std::string xp, In(x));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dx[] = ", Dims(x), ";\n    const int64_t dy[] = ", Dims(y),
                      ";\n    K::Tile<", CT(x), ">(", Rank(x), ", dx, dy, ", xp, ", ", yp, ");\n  }"));
    kernels_.insert("shape.h");
    return absl::OkStatus();
  }
  if (op == "Where") {
    const std::string &c = n.inputs[0], &a = n.inputs[1], &bv = n.inputs[2], &y = n.outputs[0];
    HEPML_ASSIGN_OR_RETURN(std::string cp, In(c));
    HEPML_ASSIGN_OR_RETURN(std::string ap, In(a));
    HEPML_ASSIGN_OR_RETURN(std::string bp, In(bv));
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    const int64_t dy[] = ", Dims(y), ";\n    const int64_t dc[] = ", Dims(c),
                      ";\n    const int64_t da[] = ", Dims(a), ";\n    const int64_t db[] = ", Dims(bv),
                      ";\n    K::Ternary(", Rank(y), ", dy, ", cp, ", ", Rank(c), ", dc, ", ap, ", ", Rank(a), ", da, ",
                      bp, ", ", Rank(bv), ", db, ", yp, ", [](bool c, ", CT(a), " x, ", CT(a), " y) { return c ? x : y; });\n  }"));
    kernels_.insert("elementwise.h");
    return absl::OkStatus();
  }
  if (op == "ConstantOfShape") {
    const std::string& y = n.outputs[0];
    std::string value = "0";
    if (const Tensor* t = n.GetTensor("value")) {
      if (t->dtype() == DType::kFloat32) value = FloatLit(t->data<float>()[0]);
      else if (t->dtype() == DType::kInt64) value = absl::StrCat(t->data<int64_t>()[0]);
      else if (t->dtype() == DType::kInt32) value = absl::StrCat(t->data<int32_t>()[0]);
      else if (t->dtype() == DType::kBool) value = t->data<bool>()[0] ? "true" : "false";
      else return Unsupported(n, "value type");
    }
    const std::string yp = Out(y);
    Code(absl::StrCat("{\n    ", CT(y), "* p = ", yp, ";\n    for (int64_t i = 0, e = ", Count(y),
                      "; i < e; ++i) p[i] = ", value, ";\n  }"));
    return absl::OkStatus();
  }
  static const std::set<std::string> kBinary = {"Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater",
                                                 "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Max", "Min",
                                                 "Pow", "Sum", "Mean", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
                                                 "Mod", "BitShift", "PRelu"};
  if (kBinary.count(op)) return EmitBinary(n);
  if (n.inputs.size() >= 1 && n.outputs.size() == 1) return EmitUnary(n);
  return Unsupported(n, "");
}

absl::StatusOr<EmittedProgram> Emitter::Run() {
  // Inputs and outputs.
  int k = 0;
  for (const ValueInfo* vi : graph_.RequiredInputs()) {
    const ValueShape* vs = shapes_.Find(vi->name);
    if (vs == nullptr) return absl::InternalError(absl::StrCat("input '", vi->name, "' has no resolved shape"));
    if (CTypeOf(vs->dtype) == nullptr) {
      return absl::UnimplementedError(absl::StrCat("input '", vi->name, "' is ", DTypeName(vs->dtype),
                                                   ": hepml compile handles float16/32/64, bfloat16, integer and bool inputs"));
    }
    inputs_.push_back(IoSpec{vi->name, vs->dtype, vs->shape});
    storage_[vi->name] = Storage{Loc::kInput, k++, 0, ""};
  }
  for (size_t i = 0; i < graph_.outputs.size(); ++i) {
    const std::string& name = graph_.outputs[i].name;
    const ValueShape* vs = shapes_.Find(name);
    if (vs == nullptr) return absl::UnimplementedError(absl::StrCat("output '", name, "' has no resolved shape"));
    if (CTypeOf(vs->dtype) == nullptr) {
      return absl::UnimplementedError(absl::StrCat("output '", name, "' is ", DTypeName(vs->dtype),
                                                   ": hepml compile handles float16/32/64, bfloat16, integer and bool outputs"));
    }
    outputs_.push_back(IoSpec{name, vs->dtype, vs->shape});
    if (!output_of_.count(name)) output_of_[name] = static_cast<int>(i);
  }
  LinkSparseChains();
  // Nodes in order; nodes whose outputs are all folded shape values vanish.
  for (const Node& n : graph_.nodes) {
    bool all_known = true;
    for (const std::string& o : n.outputs) {
      if (o.empty()) continue;
      const ValueShape* vs = shapes_.Find(o);
      if (!vs || !vs->known) all_known = false;  // a known graph output is copied at the end
    }
    if (all_known || formats_.skip.count(n.name)) continue;
    if (auto fq = formats_.fake_quant.find(n.name); fq != formats_.fake_quant.end()) {
      // QuantizeLinear -> DequantizeLinear in float, from the pair's input.
      const WeightFormats::FakeQuant& q = fq->second;
      BeginStep(n);
      HEPML_ASSIGN_OR_RETURN(std::string xp, In(q.x));
      const std::string yp = Out(n.outputs[0]);
      Code(absl::StrCat("{\n    const float* x = ", xp, ";\n    float* y = ", yp, ";\n    for (int64_t i = 0, e = ",
                        Count(n.outputs[0]), "; i < e; ++i)\n      y[i] = static_cast<float>(K::QuantizeOne<int32_t>(x[i], ",
                        FloatLit(q.scale), ", ", q.zero_point, ", ", q.lo, ", ", q.hi, ") - ", q.zero_point, ") * ",
                        FloatLit(q.scale), ";\n  }"));
      kernels_.insert("gemm.h");
      kernels_.insert("conv.h");
      kernels_.insert("int8.h");
      EndStep();
      continue;
    }
    for (const std::string& o : n.outputs) {
      if (o.empty()) continue;
      if (CTypeOf(DT(o)) == nullptr) {
        return absl::UnimplementedError(absl::StrCat(n.Describe(), ": output '", o, "' is ", DTypeName(DT(o)),
                                                     ": hepml compile handles float32/64, integer and bool"));
      }
    }
    BeginStep(n);
    HEPML_RETURN_IF_ERROR(EmitNode(n));
    if (!cur_.code.empty() && (!cur_.writes.empty())) EndStep();
  }
  // Graph outputs not written in place: inputs, weights, aliases, duplicates.
  std::set<int> written;
  for (const auto& [name, st] : storage_)
    if (st.loc == Loc::kOutput && st.base.empty()) written.insert(st.index);
  for (size_t i = 0; i < outputs_.size(); ++i) {
    if (written.count(static_cast<int>(i))) continue;
    const std::string& name = outputs_[i].name;
    cur_ = Step{};
    HEPML_ASSIGN_OR_RETURN(std::string src, In(name));
    cur_.code = absl::StrCat("  // output '", name, "'\n  std::memcpy(out[", i, "], ", src, ", sizeof(", CT(name),
                             ") * static_cast<size_t>(", Count(name), "));\n");
    cur_.writes.insert(absl::StrCat("@out", i));
    EndStep();
  }
  // Live ranges of arena values and scratch buffers.
  std::map<std::string, ArenaBlock> blocks;
  for (const ArenaBlock& s : scratch_) blocks[s.name] = s;
  for (const auto& [name, st] : storage_) {
    if (st.loc != Loc::kArena || !st.base.empty()) continue;
    const LinShape& s = S(name);
    const size_t bytes = static_cast<size_t>(std::max(ProdAt(s, 1), ProdAt(s, max_batch_))) * DTypeSize(DT(name));
    blocks[name] = ArenaBlock{name, bytes, -1, -1, 0};
  }
  for (int i = 0; i < static_cast<int>(steps_.size()); ++i) {
    for (const auto* set : {&steps_[i].reads, &steps_[i].writes}) {
      for (const std::string& v : *set) {
        auto it = blocks.find(v);
        if (it == blocks.end()) continue;
        if (it->second.first < 0) it->second.first = i;
        it->second.last = i;
      }
    }
  }
  // First fit in order of first use.
  std::vector<ArenaBlock*> order;
  for (auto& [name, blk] : blocks)
    if (blk.first >= 0) order.push_back(&blk);
  std::sort(order.begin(), order.end(), [](const ArenaBlock* x, const ArenaBlock* y) {
    return x->first != y->first ? x->first < y->first : x->bytes > y->bytes;
  });
  size_t arena = 0;
  std::vector<const ArenaBlock*> placed;
  for (ArenaBlock* blk : order) {
    std::vector<std::pair<size_t, size_t>> busy;
    for (const ArenaBlock* p : placed)
      if (p->first <= blk->last && blk->first <= p->last) busy.emplace_back(p->offset, p->offset + AlignUp(p->bytes));
    std::sort(busy.begin(), busy.end());
    size_t off = 0;
    for (const auto& [lo, hi] : busy) {
      if (off + AlignUp(blk->bytes) <= lo) break;
      off = std::max(off, hi);
    }
    blk->offset = off;
    arena = std::max(arena, off + AlignUp(blk->bytes));
    placed.push_back(blk);
  }
  EmittedProgram prog;
  for (const Step& s : steps_) absl::StrAppend(&prog.body, s.code);
  std::vector<std::pair<std::string, std::string>> repl;
  for (const auto& [name, blk] : blocks) repl.emplace_back(absl::StrCat("@OFF{", name, "}@"), absl::StrCat(blk.offset));
  prog.body = absl::StrReplaceAll(prog.body, repl);
  prog.inputs = inputs_;
  prog.outputs = outputs_;
  prog.weights = std::move(weights_);
  prog.sparse_nodes = sparse_nodes_;
  prog.quant_nodes = quant_nodes_;
  prog.arena_bytes = arena;
  prog.kernel_files = kernels_;
  prog.num_steps = static_cast<int>(steps_.size());
  return prog;
}

}  // namespace

absl::StatusOr<EmittedProgram> EmitProgram(const Graph& graph, const GraphShapes& shapes, int64_t max_batch,
                                           const WeightFormats& formats) {
  Emitter e(graph, shapes, max_batch, formats);
  return e.Run();
}

}  // namespace hepml::codegen
