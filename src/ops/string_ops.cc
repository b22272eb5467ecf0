// String operators: StringNormalizer (10), TfIdfVectorizer (9),
// RegexFullMatch, StringConcat and StringSplit (20).
#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "re2/re2.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// Every input below `required` is present, and every present input is a
// tensor (a malformed model may leave out required inputs).
absl::Status CheckTensorInputs(KernelContext& ctx, size_t required) {
  for (size_t i = 0; i < std::max(required, ctx.num_inputs()); ++i) {
    if (!ctx.HasInput(i)) {
      if (i < required) return ctx.Error("required input ", i, " is missing");
      continue;
    }
    if (!ctx.InputValue(i).is_tensor()) return ctx.Error("input ", i, " is not a tensor");
  }
  return absl::OkStatus();
}

// ---- UTF-8 and simple case mapping ----
//
// Case changes use Unicode's simple (one-to-one) mappings for Latin, Greek,
// Cyrillic, Armenian and fullwidth letters, independent of the process's C
// locale, so every `locale` behaves like "en_US". Multi-character mappings
// (German sharp s to "SS") are not applied. Bytes that are not valid UTF-8 are
// copied unchanged.

// Decodes one code point at s[i]; returns its byte length (0: invalid).
int DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int len = 0;
  uint32_t v = 0;
  if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07;
  else return 0;
  if (i + len > s.size()) return 0;
  for (int k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

void EncodeUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Upper-case ranges [first, last] mapped to lower case by +delta. kEven/kOdd:
// only the code points of that parity in the range (alternating pairs).
// kOneWay entries are not inverted for the lower -> upper direction.
enum Parity : uint8_t { kAll, kEven, kOdd };
struct CaseRange {
  uint32_t first, last;
  int32_t delta;
  Parity parity;
  bool one_way;
};
constexpr CaseRange kUpperToLower[] = {
    {0x41, 0x5A, 32, kAll, false},      {0xC0, 0xD6, 32, kAll, false},
    {0xD8, 0xDE, 32, kAll, false},      {0x100, 0x12F, 1, kEven, false},
    {0x130, 0x130, 0x69 - 0x130, kAll, true},  // capital I with dot -> i
    {0x132, 0x137, 1, kEven, false},    {0x139, 0x148, 1, kOdd, false},
    {0x14A, 0x177, 1, kEven, false},    {0x178, 0x178, 0xFF - 0x178, kAll, false},
    {0x179, 0x17E, 1, kOdd, false},     {0x1CD, 0x1DC, 1, kOdd, false},
    {0x1DE, 0x1EF, 1, kEven, false},    {0x1F8, 0x21F, 1, kEven, false},
    {0x222, 0x233, 1, kEven, false},    {0x386, 0x386, 0x3AC - 0x386, kAll, false},
    {0x388, 0x38A, 37, kAll, false},    {0x38C, 0x38C, 0x3CC - 0x38C, kAll, false},
    {0x38E, 0x38F, 63, kAll, false},    {0x391, 0x3A1, 32, kAll, false},
    {0x3A3, 0x3AB, 32, kAll, false},    {0x3D8, 0x3EF, 1, kEven, false},
    {0x400, 0x40F, 80, kAll, false},    {0x410, 0x42F, 32, kAll, false},
    {0x460, 0x481, 1, kEven, false},    {0x48A, 0x4BF, 1, kEven, false},
    {0x4C0, 0x4C0, 0x4CF - 0x4C0, kAll, false},
    {0x4C1, 0x4CE, 1, kOdd, false},     {0x4D0, 0x52F, 1, kEven, false},
    {0x531, 0x556, 48, kAll, false},    {0x1E00, 0x1E95, 1, kEven, false},
    {0x1E9E, 0x1E9E, 0xDF - 0x1E9E, kAll, true},  // capital sharp s -> sharp s
    {0x1EA0, 0x1EFF, 1, kEven, false},  {0x2160, 0x216F, 16, kAll, false},
    {0x24B6, 0x24CF, 26, kAll, false},  {0xFF21, 0xFF3A, 32, kAll, false},
};
// Lower-case letters whose upper case is not the inverse of a range above.
constexpr std::pair<uint32_t, uint32_t> kExtraLowerToUpper[] = {
    {0xB5, 0x39C},  // micro sign -> capital mu
    {0x131, 0x49},  // dotless i -> I
    {0x17F, 0x53},  // long s -> S
    {0x3C2, 0x3A3},  // final sigma -> capital sigma
};

bool InRange(uint32_t cp, uint32_t first, uint32_t last, Parity parity) {
  if (cp < first || cp > last) return false;
  return parity == kAll || (cp & 1) == (parity == kOdd ? 1u : 0u);
}

uint32_t ToLowerCp(uint32_t cp) {
  for (const CaseRange& r : kUpperToLower) {
    if (InRange(cp, r.first, r.last, r.parity)) return static_cast<uint32_t>(static_cast<int32_t>(cp) + r.delta);
  }
  return cp;
}

uint32_t ToUpperCp(uint32_t cp) {
  for (const CaseRange& r : kUpperToLower) {
    if (r.one_way) continue;
    Parity p = r.parity;
    if (p != kAll && (r.delta & 1)) p = p == kEven ? kOdd : kEven;
    if (InRange(cp, r.first + r.delta, r.last + r.delta, p)) {
      return static_cast<uint32_t>(static_cast<int32_t>(cp) - r.delta);
    }
  }
  for (const auto& [lower, upper] : kExtraLowerToUpper) {
    if (cp == lower) return upper;
  }
  return cp;
}

std::string ChangeCase(std::string_view s, bool upper) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(upper ? (c >= 'a' && c <= 'z' ? c - 32 : c)
                                            : (c >= 'A' && c <= 'Z' ? c + 32 : c)));
      ++i;
      continue;
    }
    uint32_t cp;
    const int len = DecodeUtf8(s, i, &cp);
    if (len == 0) {
      out.push_back(s[i]);
      ++i;
      continue;
    }
    EncodeUtf8(upper ? ToUpperCp(cp) : ToLowerCp(cp), &out);
    i += len;
  }
  return out;
}

// Python's str.isspace() for the code point starting at s[i]; sets *len.
bool IsUnicodeSpace(std::string_view s, size_t i, int* len) {
  uint32_t cp;
  *len = DecodeUtf8(s, i, &cp);
  if (*len == 0) {
    *len = 1;
    return false;
  }
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// ---- StringNormalizer ----
// Input [C] or [1, C]. Drops elements equal to a stopword (compared after
// lower-casing both unless is_case_sensitive), then changes case. An empty
// result is one empty string: [1] or [1, 1].
absl::Status ComputeStringNormalizer(KernelContext& ctx) {
  if (absl::Status st = CheckTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.dtype() != DType::kString) return ctx.Error("input must be a string tensor");
  if (!(x.rank() == 1 || (x.rank() == 2 && x.dim(0) == 1))) {
    return ctx.Error("input must be [C] or [1, C], got ", ShapeToString(x.shape()));
  }
  const std::string action = ctx.node().GetString("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER") {
    return ctx.Error("case_change_action must be NONE, LOWER or UPPER, got '", action, "'");
  }
  const bool case_sensitive = ctx.node().GetInt("is_case_sensitive", 0) != 0;
  absl::flat_hash_set<std::string> stops;
  for (const std::string& w : ctx.node().GetStrings("stopwords")) {
    stops.insert(case_sensitive ? w : ChangeCase(w, false));
  }
  const std::string* in = x.data<std::string>();
  std::vector<std::string> kept;
  kept.reserve(static_cast<size_t>(x.size()));
  for (int64_t i = 0; i < x.size(); ++i) {
    if (!stops.empty() && stops.contains(case_sensitive ? in[i] : ChangeCase(in[i], false))) continue;
    if (action == "LOWER") kept.push_back(ChangeCase(in[i], false));
    else if (action == "UPPER") kept.push_back(ChangeCase(in[i], true));
    else kept.push_back(in[i]);
  }
  if (kept.empty()) kept.emplace_back();
  const int64_t n = static_cast<int64_t>(kept.size());
  Tensor* out = ctx.Output(0, DType::kString, x.rank() == 1 ? Shape{n} : Shape{1, n});
  std::string* po = out->mutable_data<std::string>();
  for (int64_t i = 0; i < n; ++i) po[i] = std::move(kept[i]);
  return absl::OkStatus();
}

absl::Status InferStringOutput(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  outputs[0] = TypeInfo::Tensor(DType::kString);
  if (!ctx.input_types.empty() && ctx.input_types[0].has_shape) {
    outputs[0] = TypeInfo::Tensor(DType::kString, std::vector<Dim>(ctx.input_types[0].shape.size()));
  }
  return absl::OkStatus();
}

// ---- TfIdfVectorizer ----
// The pool's n-grams form a trie keyed by token (int64 or string); a node
// reached after n tokens carries the n-gram's id when the pool holds it.
template <typename Key>
struct NgramTrie {
  struct Node {
    int64_t ngram_id = -1;  // index into ngram_indexes, -1: a prefix only
    absl::flat_hash_map<Key, int32_t> children;
  };
  std::vector<Node> nodes{1};  // nodes[0] is the root

  // Adds tokens[0..n) and returns the final node.
  template <typename Token>
  int32_t Insert(const Token* tokens, int64_t n) {
    int32_t cur = 0;
    for (int64_t k = 0; k < n; ++k) {
      auto it = nodes[cur].children.find(tokens[k]);
      if (it == nodes[cur].children.end()) {
        nodes.emplace_back();
        const int32_t id = static_cast<int32_t>(nodes.size() - 1);
        nodes[cur].children.emplace(Key(tokens[k]), id);
        cur = id;
      } else {
        cur = it->second;
      }
    }
    return cur;
  }
  int32_t Child(int32_t node, const Key& key) const {
    auto it = nodes[node].children.find(key);
    return it == nodes[node].children.end() ? -1 : it->second;
  }
};

enum class TfIdfMode { kTF, kIDF, kTFIDF };

struct TfIdfState : KernelState {
  TfIdfMode mode = TfIdfMode::kTF;
  int64_t min_n = 1, max_n = 1, max_skip = 0;
  std::vector<int64_t> ngram_indexes;
  std::vector<float> weights;
  int64_t output_size = 0;
  bool strings = false;
  NgramTrie<int64_t> int_trie;
  NgramTrie<std::string> string_trie;
};

absl::StatusOr<std::unique_ptr<KernelState>> PrepareTfIdf(const PrepareContext& ctx) {
  const Node& node = ctx.node;
  auto state = std::make_unique<TfIdfState>();
  const std::string mode = node.GetString("mode", "");
  if (mode == "TF") state->mode = TfIdfMode::kTF;
  else if (mode == "IDF") state->mode = TfIdfMode::kIDF;
  else if (mode == "TFIDF") state->mode = TfIdfMode::kTFIDF;
  else return absl::InvalidArgumentError(absl::StrCat("mode must be TF, IDF or TFIDF, got '", mode, "'"));
  state->min_n = node.GetInt("min_gram_length", -1);
  state->max_n = node.GetInt("max_gram_length", -1);
  state->max_skip = node.GetInt("max_skip_count", -1);
  if (state->min_n < 1 || state->max_n < state->min_n) {
    return absl::InvalidArgumentError(absl::StrCat("need 1 <= min_gram_length <= max_gram_length, got ",
                                                   state->min_n, " and ", state->max_n));
  }
  if (state->max_skip < 0) return absl::InvalidArgumentError("max_skip_count must be >= 0");
  const std::vector<int64_t> counts = node.GetInts("ngram_counts");
  state->ngram_indexes = node.GetInts("ngram_indexes");
  state->weights = node.GetFloats("weights");
  const Attribute* pool_i = node.FindAttribute("pool_int64s");
  const Attribute* pool_s = node.FindAttribute("pool_strings");
  if ((pool_i != nullptr) == (pool_s != nullptr)) {
    return absl::InvalidArgumentError("exactly one of pool_int64s and pool_strings must be given");
  }
  state->strings = pool_s != nullptr;
  const int64_t pool_size =
      static_cast<int64_t>(state->strings ? pool_s->strings.size() : pool_i->ints.size());
  int64_t ngram_id = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    const int64_t n = static_cast<int64_t>(k) + 1;
    const int64_t start = counts[k];
    const int64_t end = k + 1 < counts.size() ? counts[k + 1] : pool_size;
    if (start < 0 || end < start || end > pool_size) {
      return absl::InvalidArgumentError(absl::StrCat("ngram_counts ", k, " gives the pool range [", start,
                                                     ", ", end, ") outside [0, ", pool_size, "]"));
    }
    if ((end - start) % n != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the pool holds ", end - start, " tokens of ", n, "-grams, not a multiple of ", n));
    }
    for (int64_t p = start; p < end; p += n, ++ngram_id) {
      if (n < state->min_n || n > state->max_n) continue;
      const int32_t leaf = state->strings ? state->string_trie.Insert(pool_s->strings.data() + p, n)
                                          : state->int_trie.Insert(pool_i->ints.data() + p, n);
      if (state->strings) state->string_trie.nodes[leaf].ngram_id = ngram_id;
      else state->int_trie.nodes[leaf].ngram_id = ngram_id;
    }
  }
  if (static_cast<int64_t>(state->ngram_indexes.size()) != ngram_id) {
    return absl::InvalidArgumentError(absl::StrCat("ngram_indexes has ", state->ngram_indexes.size(),
                                                   " entries for ", ngram_id, " n-grams in the pool"));
  }
  for (int64_t v : state->ngram_indexes) {
    if (v < 0) return absl::InvalidArgumentError(absl::StrCat("ngram_indexes has a negative entry ", v));
    state->output_size = std::max(state->output_size, v + 1);
  }
  // Weights apply per output column (as in the ONNX reference and Runtime).
  if (!state->weights.empty() && static_cast<int64_t>(state->weights.size()) < state->output_size) {
    return absl::InvalidArgumentError(absl::StrCat("weights has ", state->weights.size(),
                                                   " entries for ", state->output_size, " output columns"));
  }
  return std::unique_ptr<KernelState>(std::move(state));
}

// Counts the n-grams of one row into counts[output_size].
template <typename Key, typename Token>
void CountRow(const TfIdfState& s, const NgramTrie<Key>& trie, const Token* row, int64_t c,
              int64_t* counts) {
  int64_t start_n = s.min_n;
  for (int64_t skip = 0; skip <= s.max_skip; ++skip) {
    const int64_t dist = skip + 1;
    for (int64_t begin = 0; begin < c; ++begin) {
      if (begin + dist * (start_n - 1) >= c) break;
      int32_t node = 0;
      for (int64_t n = 1, pos = begin; n <= s.max_n && pos < c; ++n, pos += dist) {
        int32_t next;
        if constexpr (std::is_same_v<Key, std::string>) {
          next = trie.Child(node, row[pos]);
        } else {
          next = trie.Child(node, static_cast<int64_t>(row[pos]));
        }
        if (next < 0) break;
        node = next;
        const int64_t id = trie.nodes[node].ngram_id;
        if (n >= start_n && id >= 0) ++counts[s.ngram_indexes[id]];
      }
    }
    // Unigrams do not depend on the skip: count them on the first pass only.
    if (start_n == 1) {
      ++start_n;
      if (start_n > s.max_n) break;
    }
  }
}

absl::Status ComputeTfIdf(KernelContext& ctx) {
  if (absl::Status st = CheckTensorInputs(ctx, 1); !st.ok()) return st;
  const auto& s = ctx.state_as<TfIdfState>();
  const Tensor& x = ctx.Input(0);
  if (x.rank() > 2) return ctx.Error("input must be [C] or [N, C], got ", ShapeToString(x.shape()));
  if (s.strings != (x.dtype() == DType::kString)) {
    return ctx.Error("input type ", DTypeName(x.dtype()), " does not match the ",
                     s.strings ? "string" : "int64", " pool");
  }
  const int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
  const int64_t c = x.rank() == 0 ? 1 : x.dim(x.rank() - 1);
  Tensor* out = ctx.Output(0, DType::kFloat32, x.rank() == 2 ? Shape{rows, s.output_size} : Shape{s.output_size});
  std::vector<int64_t> counts(static_cast<size_t>(rows * s.output_size), 0);
  auto count_all = [&](auto tag, const auto& trie) {
    using Token = typename decltype(tag)::type;
    const Token* p = x.data<Token>();
    ctx.ParallelFor(0, rows, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) CountRow(s, trie, p + r * c, c, counts.data() + r * s.output_size);
    });
  };
  if (x.size() > 0) {
    switch (x.dtype()) {
      case DType::kString: count_all(TypeTag<std::string>{}, s.string_trie); break;
      case DType::kInt32: count_all(TypeTag<int32_t>{}, s.int_trie); break;
      case DType::kInt64: count_all(TypeTag<int64_t>{}, s.int_trie); break;
      default: return ctx.Error("input must be string, int32 or int64, got ", DTypeName(x.dtype()));
    }
  }
  float* po = out->mutable_data<float>();
  for (int64_t i = 0; i < rows * s.output_size; ++i) {
    const int64_t col = i % s.output_size;
    const float w = s.weights.empty() ? 1.0f : s.weights[col];
    const int64_t f = counts[i];
    switch (s.mode) {
      case TfIdfMode::kTF: po[i] = static_cast<float>(f); break;
      case TfIdfMode::kIDF: po[i] = f > 0 ? w : 0.0f; break;
      case TfIdfMode::kTFIDF: po[i] = w * static_cast<float>(f); break;
    }
  }
  return absl::OkStatus();
}

absl::Status InferTfIdf(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.empty()) return absl::OkStatus();
  int64_t size = -1;
  for (int64_t v : ctx.node.GetInts("ngram_indexes")) size = std::max(size, v + 1);
  const TypeInfo& in = ctx.input_types[0];
  if (in.kind == TypeInfo::Kind::kTensor && in.has_shape && in.shape.size() <= 2) {
    std::vector<Dim> dims;
    if (in.shape.size() == 2) dims.push_back(in.shape[0]);
    dims.push_back(Dim{size, ""});
    outputs[0] = TypeInfo::Tensor(DType::kFloat32, std::move(dims));
  } else {
    outputs[0] = TypeInfo::Tensor(DType::kFloat32);
  }
  return absl::OkStatus();
}

// ---- RegexFullMatch ----
// The ONNX operator is defined with RE2 syntax, so hepml matches with RE2
// itself, in UTF-8 mode, as ONNX Runtime does: "." and classes match whole
// code points, \pL / \p{Greek} are Unicode classes, and \d, \w, \s are
// ASCII-only (so Arabic-Indic digits are not \d). RE2 has no backreferences
// or lookaround; such patterns are invalid. Input bytes that are not valid
// UTF-8 match no character class (RE2's behaviour).
struct RegexState : KernelState {
  std::unique_ptr<re2::RE2> re;
};

absl::StatusOr<std::unique_ptr<KernelState>> PrepareRegex(const PrepareContext& ctx) {
  const Attribute* a = ctx.node.FindAttribute("pattern");
  if (a == nullptr || a->type != Attribute::Type::kString) {
    return absl::InvalidArgumentError("required attribute 'pattern' is missing");
  }
  re2::RE2::Options options;  // UTF-8, case-sensitive, longest_match off
  options.set_log_errors(false);
  auto state = std::make_unique<RegexState>();
  state->re = std::make_unique<re2::RE2>(a->s, options);
  if (!state->re->ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid pattern '", a->s, "': ", state->re->error()));
  }
  return std::unique_ptr<KernelState>(std::move(state));
}

absl::Status ComputeRegexFullMatch(KernelContext& ctx) {
  if (absl::Status st = CheckTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.dtype() != DType::kString) return ctx.Error("input must be a string tensor");
  const re2::RE2& re = *ctx.state_as<RegexState>().re;
  Tensor* out = ctx.Output(0, DType::kBool, x.shape());
  const std::string* in = x.data<std::string>();
  bool* po = out->mutable_data<bool>();
  for (int64_t i = 0; i < x.size(); ++i) po[i] = re2::RE2::FullMatch(in[i], re);
  return absl::OkStatus();
}

absl::Status InferRegex(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.empty()) return absl::OkStatus();
  outputs[0] = ctx.input_types[0].kind == TypeInfo::Kind::kTensor ? ctx.input_types[0]
                                                                  : TypeInfo::Tensor(DType::kBool);
  outputs[0].dtype = DType::kBool;
  return absl::OkStatus();
}

// ---- StringConcat ----
absl::Status ComputeStringConcat(KernelContext& ctx) {
  if (absl::Status st = CheckTensorInputs(ctx, 2); !st.ok()) return st;
  const Tensor& a = ctx.Input(0);
  const Tensor& b = ctx.Input(1);
  if (a.dtype() != DType::kString || b.dtype() != DType::kString) {
    return ctx.Error("inputs must be string tensors");
  }
  auto shape = BroadcastShapes(a.shape(), b.shape());
  if (!shape.ok()) return ctx.Error(shape.status().message());
  Tensor* out = ctx.Output(0, DType::kString, *shape);
  const std::string* pa = a.data<std::string>();
  const std::string* pb = b.data<std::string>();
  std::string* po = out->mutable_data<std::string>();
  Shape in_shapes[2] = {a.shape(), b.shape()};
  BroadcastIterator it(*shape, absl::MakeConstSpan(in_shapes, 2));
  it.ForEach([&](int64_t o, const int64_t* idx) {
    po[o].reserve(pa[idx[0]].size() + pb[idx[1]].size());
    po[o].assign(pa[idx[0]]);
    po[o].append(pb[idx[1]]);
  });
  return absl::OkStatus();
}

// ---- StringSplit ----
// Python's str.split: with a delimiter, every occurrence splits (an empty
// string gives one empty piece); without one (absent or ""), runs of
// whitespace split and leading/trailing whitespace is dropped. At most
// maxsplit splits when maxsplit is given and >= 0; the unsplit rest keeps
// its trailing whitespace. An empty string has no substrings in either mode
// (count 0, as ONNX Runtime), where Python's "".split("-") gives [""] and onnx's
// reference implementation (np.char.split) therefore a count of 1.
void SplitOne(std::string_view s, std::string_view delim, int64_t maxsplit, std::vector<std::string>* parts) {
  parts->clear();
  if (s.empty()) return;
  if (!delim.empty()) {
    size_t pos = 0;
    for (int64_t splits = 0; maxsplit < 0 || splits < maxsplit; ++splits) {
      const size_t hit = s.find(delim, pos);
      if (hit == std::string_view::npos) break;
      parts->emplace_back(s.substr(pos, hit - pos));
      pos = hit + delim.size();
    }
    parts->emplace_back(s.substr(pos));
    return;
  }
  size_t i = 0;
  int len;
  int64_t splits = 0;
  while (true) {
    while (i < s.size() && IsUnicodeSpace(s, i, &len)) i += len;
    if (i >= s.size()) return;
    if (maxsplit >= 0 && splits >= maxsplit) {
      parts->emplace_back(s.substr(i));  // the rest, trailing whitespace kept (as Python)
      return;
    }
    const size_t start = i;
    while (i < s.size() && !IsUnicodeSpace(s, i, &len)) i += len;
    parts->emplace_back(s.substr(start, i - start));
    ++splits;
  }
}

absl::Status ComputeStringSplit(KernelContext& ctx) {
  if (absl::Status st = CheckTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.dtype() != DType::kString) return ctx.Error("input must be a string tensor");
  const std::string delim = ctx.node().GetString("delimiter", "");
  const Attribute* ms = ctx.node().FindAttribute("maxsplit");
  const int64_t maxsplit = ms != nullptr && ms->type == Attribute::Type::kInt ? ms->i : -1;
  const std::string* in = x.data<std::string>();
  std::vector<std::vector<std::string>> pieces(static_cast<size_t>(x.size()));
  int64_t widest = 0;
  for (int64_t i = 0; i < x.size(); ++i) {
    SplitOne(in[i], delim, maxsplit, &pieces[i]);
    widest = std::max<int64_t>(widest, static_cast<int64_t>(pieces[i].size()));
  }
  Shape y_shape = x.shape();
  y_shape.push_back(widest);
  Tensor* y = ctx.Output(0, DType::kString, y_shape);
  std::string* py = y->mutable_data<std::string>();
  for (int64_t i = 0; i < x.size(); ++i) {
    for (size_t k = 0; k < pieces[i].size(); ++k) py[i * widest + k] = std::move(pieces[i][k]);
  }
  if (ctx.HasOutput(1)) {
    Tensor* z = ctx.Output(1, DType::kInt64, x.shape());
    for (int64_t i = 0; i < x.size(); ++i) z->mutable_data<int64_t>()[i] = static_cast<int64_t>(pieces[i].size());
  }
  return absl::OkStatus();
}

absl::Status InferStringSplit(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.empty()) return absl::OkStatus();
  const TypeInfo& in = ctx.input_types[0];
  if (in.kind == TypeInfo::Kind::kTensor && in.has_shape) {
    std::vector<Dim> dims = in.shape;
    dims.push_back(Dim{});
    outputs[0] = TypeInfo::Tensor(DType::kString, std::move(dims));
    if (outputs.size() > 1) outputs[1] = TypeInfo::Tensor(DType::kInt64, in.shape);
  } else {
    outputs[0] = TypeInfo::Tensor(DType::kString);
    if (outputs.size() > 1) outputs[1] = TypeInfo::Tensor(DType::kInt64);
  }
  return absl::OkStatus();
}

absl::Status InferStringConcat(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  absl::Status st = InferBroadcast(ctx, outputs);
  if (st.ok() && !outputs.empty()) outputs[0].dtype = DType::kString;
  return st;
}

constexpr DTypeSet kStringType = Bit(DType::kString);

const OpTableRegistration kStringOps({
    {.name = "StringNormalizer", .since = 10, .types = kStringType, .infer = InferStringOutput,
     .compute = ComputeStringNormalizer},
    {.name = "TfIdfVectorizer", .since = 9,
     .types = kStringType | Bit(DType::kInt32) | Bit(DType::kInt64), .infer = InferTfIdf,
     .compute = ComputeTfIdf, .prepare = PrepareTfIdf},
    {.name = "RegexFullMatch", .since = 20, .types = kStringType, .infer = InferRegex,
     .compute = ComputeRegexFullMatch, .prepare = PrepareRegex},
    {.name = "StringConcat", .since = 20, .types = kStringType, .infer = InferStringConcat,
     .compute = ComputeStringConcat},
    {.name = "StringSplit", .since = 20, .types = kStringType, .infer = InferStringSplit,
     .compute = ComputeStringSplit},
});

}  // namespace
}  // namespace hepml::ops
