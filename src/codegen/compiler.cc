// hepml::CompileModel: import, optimise (the Session's pass pipeline),
// resolve shapes, emit, then assemble the package's files.
#include "hepml/compiler.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "codegen/analysis.h"
#include "codegen/emitted/gemm.h"
#include "codegen/emitter.h"
#include "codegen/prune.h"
#include "codegen/quantize.h"
#include "onnx/onnx_pb.h"
#include "onnx/proto_convert.h"
#include "graph/passes/pass.h"
#include "onnx/importer.h"

namespace hepml {
namespace codegen {

// The kernel library and runner, embedded at build time (embedded_sources.cc).
struct EmbeddedFile {
  const char* name;
  const char* text;
};
extern const EmbeddedFile kEmbeddedFiles[];
extern const int kNumEmbeddedFiles;

}  // namespace codegen

namespace {

namespace fs = std::filesystem;
using codegen::EmittedProgram;
using codegen::IoSpec;

const char* const kKeywords[] = {
    "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char", "class", "const",
    "constexpr", "continue", "default", "delete", "do", "double", "else", "enum", "explicit", "export", "extern",
    "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new",
    "noexcept", "not", "nullptr", "operator", "or", "private", "protected", "public", "register", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "template", "this", "throw", "true", "try", "typedef",
    "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "while", "std", "K"};

bool IsIdentifier(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  if (s.find("__") != std::string::npos || (s.size() > 1 && s[0] == '_' && s[1] >= 'A' && s[1] <= 'Z')) return false;
  for (const char* k : kKeywords)
    if (s == k) return false;
  return true;
}

absl::Status CheckOptions(const CompileOptions& o) {
  if (!IsIdentifier(o.name)) {
    return absl::InvalidArgumentError(absl::StrCat("--name '", o.name,
                                                   "': not a usable C++ identifier (letters, digits, '_'; no keyword)"));
  }
  for (absl::string_view part : absl::StrSplit(o.cpp_namespace, "::")) {
    if (!IsIdentifier(std::string(part))) {
      return absl::InvalidArgumentError(absl::StrCat("--namespace '", o.cpp_namespace,
                                                     "': expected C++ identifiers separated by '::'"));
    }
  }
  if (o.max_batch < 1 || o.max_batch > (1 << 24)) {
    return absl::InvalidArgumentError(absl::StrCat("--max-batch ", o.max_batch, ": expected 1 to 16777216"));
  }
  for (const auto& [name, v] : o.dims) {
    if (v < 1) return absl::InvalidArgumentError(absl::StrCat("--dim ", name, "=", v, ": expected a positive size"));
  }
  return absl::OkStatus();
}

uint64_t Fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

const char* SpecDType(DType t) {
  switch (t) {
    case DType::kFloat32: return "DType::kFloat32";
    case DType::kInt64: return "DType::kInt64";
    case DType::kInt32: return "DType::kInt32";
    case DType::kFloat64: return "DType::kFloat64";
    case DType::kInt8: return "DType::kInt8";
    case DType::kInt16: return "DType::kInt16";
    case DType::kUInt8: return "DType::kUInt8";
    case DType::kUInt16: return "DType::kUInt16";
    case DType::kUInt32: return "DType::kUInt32";
    case DType::kUInt64: return "DType::kUInt64";
    case DType::kFloat16: return "DType::kFloat16";
    case DType::kBFloat16: return "DType::kBFloat16";
    default: return "DType::kBool";
  }
}

std::string SpecRow(const IoSpec& s) {
  std::vector<std::string> pb, fx;
  for (const codegen::Lin& l : s.shape) {
    pb.push_back(absl::StrCat(l.per_batch));
    fx.push_back(absl::StrCat(l.fixed));
  }
  if (pb.empty()) pb.push_back("0"), fx.push_back("0");
  return absl::StrCat("    {\"", absl::CEscape(s.name), "\", ", SpecDType(s.dtype), ", ", s.shape.size(), ", {",
                      absl::StrJoin(pb, ", "), "}, {", absl::StrJoin(fx, ", "), "}},\n");
}

std::string ShapeComment(const IoSpec& s) {
  std::vector<std::string> d;
  for (const codegen::Lin& l : s.shape) {
    if (l.per_batch == 0) d.push_back(absl::StrCat(l.fixed));
    else if (l.per_batch == 1 && l.fixed == 0) d.push_back("batch");
    else d.push_back(absl::StrCat(l.per_batch, "*batch", l.fixed ? absl::StrCat("+", l.fixed) : ""));
  }
  return absl::StrCat(DTypeName(s.dtype), "[", absl::StrJoin(d, ", "), "]");
}

// The kernel files in dependency order, namespace renamed, project includes
// dropped; their standard includes collected separately.
std::string KernelText(const std::set<std::string>& wanted, const std::string& kernel_ns, std::set<std::string>* includes) {
  static const char* const kOrder[] = {"vecmath.h", "common.h", "gemm.h", "conv.h", "int8.h", "fixed.h", "pool.h", "elementwise.h", "normalize.h",
                                       "shape.h",  "recurrent.h", "reduce.h", "loss.h", "resize.h", "extra.h"};
  std::string out;
  for (const char* name : kOrder) {
    const bool always = std::string(name) == "vecmath.h" || std::string(name) == "common.h";
    if (!always && !wanted.count(name)) continue;
    for (int i = 0; i < codegen::kNumEmbeddedFiles; ++i) {
      if (std::string(codegen::kEmbeddedFiles[i].name) != name) continue;
      absl::StrAppend(&out, "// ---- ", name, "\n");
      bool in_header_comment = true;
      for (absl::string_view line : absl::StrSplit(codegen::kEmbeddedFiles[i].text, '\n')) {
        if (in_header_comment && absl::StartsWith(line, "//")) continue;
        in_header_comment = false;
        if (absl::StartsWith(line, "#pragma once") || absl::StartsWith(line, "#include \"")) continue;
        if (absl::StartsWith(line, "#include <")) {
          includes->insert(std::string(line));
          continue;
        }
        if (line == "namespace hepml_emitted {") {
          absl::StrAppend(&out, "namespace ", kernel_ns, " {\n");
          continue;
        }
        absl::StrAppend(&out, line, "\n");
      }
    }
  }
  return out;
}

const char* Embedded(const std::string& name) {
  for (int i = 0; i < codegen::kNumEmbeddedFiles; ++i)
    if (name == codegen::kEmbeddedFiles[i].name) return codegen::kEmbeddedFiles[i].text;
  return "";
}

std::string Header(const CompileOptions& o, const std::string& model_path, const EmittedProgram& p) {
  const std::string& N = o.name;
  std::string io;
  for (size_t i = 0; i < p.inputs.size(); ++i)
    absl::StrAppend(&io, "//   input ", i, "  '", p.inputs[i].name, "'  ", ShapeComment(p.inputs[i]), "\n");
  for (size_t i = 0; i < p.outputs.size(); ++i)
    absl::StrAppend(&io, "//   output ", i, " '", p.outputs[i].name, "'  ", ShapeComment(p.outputs[i]), "\n");
  const std::string weights_doc =
      o.embed_weights ? "//   The weights are embedded (read-only, in .rodata); NAME(path) may still load a\n"
                        "//   NAME.weights file of the same compile.\n"
                      : "//   NAME() reads the weights file named by HEPML_WEIGHTS_FILE when NAME.cc was\n"
                        "//   built (the package's CMakeLists.txt sets it to its NAME.weights), else\n"
                        "//   \"NAME.weights\"; NAME(path) reads the given file. The file must come from the\n"
                        "//   same compile (a hash check rejects any other).\n";
  return absl::StrCat(
      "// ", N, ": generated by `hepml compile` from ", model_path, ". Do not edit.\n"
      "//\n"
      "//   ", o.cpp_namespace, "::", N, " model;\n"
      "//   if (!model.ok()) { /* model.error() says why */ }\n"
      "//   const void* in[", N, "::kNumInputs] = {...};   // kInputs[i]: row-major, its dtype\n"
      "//   void* out[", N, "::kNumOutputs] = {...};       // kOutputs[i]: room for its shape\n"
      "//   if (!model.run(batch, in, out)) { /* model.error() */ }\n"
      "//\n"
      "// Tensors (batch is run()'s argument, 1..kMaxBatch):\n", io,
      "//\n", absl::StrReplaceAll(weights_doc, {{"NAME", N}}),
      "//\n"
      "// Thread safety: one instance per thread. run() works in the instance's own\n"
      "// arena (kArenaBytes, allocated by the constructor) and allocates nothing;\n"
      "// distinct instances may run at the same time. The weights are read-only.\n"
      "#pragma once\n\n"
      "#include <cstddef>\n#include <cstdint>\n#include <memory>\n#include <string>\n\n"
      "namespace ", o.cpp_namespace, " {\n\n"
      "class ", N, " {\n"
      " public:\n"
      "  enum class DType { kFloat32, kInt64, kInt32, kBool, kFloat64, kInt8, kInt16, kUInt8, kUInt16, kUInt32, kUInt64,\n"
      "                    kFloat16, kBFloat16 };  // the 16-bit floats as their raw bits (uint16_t)\n"
      "  // dimension d of the tensor = per_batch[d] * batch + fixed[d].\n"
      "  struct TensorSpec {\n"
      "    const char* name;\n"
      "    DType dtype;\n"
      "    int rank;\n"
      "    std::int64_t per_batch[8];\n"
      "    std::int64_t fixed[8];\n"
      "  };\n"
      "  static constexpr int kNumInputs = ", p.inputs.size(), ";\n"
      "  static constexpr int kNumOutputs = ", p.outputs.size(), ";\n"
      "  static constexpr int kMaxBatch = ", o.max_batch, ";\n"
      "  static constexpr std::size_t kArenaBytes = ", p.arena_bytes, ";\n"
      "  static constexpr std::size_t kWeightBytes = ", p.weights.size(), ";\n"
      "  static const TensorSpec kInputs[kNumInputs];\n"
      "  static const TensorSpec kOutputs[kNumOutputs];\n\n"
      "  ", N, "();\n"
      "  explicit ", N, "(const char* weights_path);\n"
      "  ", N, "(const ", N, "&) = delete;\n"
      "  ", N, "& operator=(const ", N, "&) = delete;\n\n"
      "  bool ok() const { return ok_; }\n"
      "  // Why the constructor or the last run() failed.\n"
      "  const std::string& error() const { return error_; }\n"
      "  // The instruction set run() executes: \"x86-64-v4\" (AVX-512; with bfloat16\n"
      "  // weights \"x86-64-v4+avx512bf16\" where the CPU has its dot products) or\n"
      "  // \"x86-64-v3\" (AVX2, FMA) when the package was built with its run-time variants (the\n"
      "  // CMakeLists.txt default on x86-64) and this CPU has them, else the flags\n"
      "  // the library was compiled with: \"native\" (", N, "_NATIVE) or \"baseline\".\n"
      "  static const char* isa();\n"
      "  // Runs the model on `batch` rows. inputs[i] / outputs[i] point at\n"
      "  // kInputs[i] / kOutputs[i] (row-major). False (see error()) when the\n"
      "  // instance is not ok(), batch is outside 1..kMaxBatch, or an index input\n"
      "  // is out of range. REQUIRES: outputs do not overlap inputs or each other.\n"
      "  bool run(int batch, const void* const* inputs, void* const* outputs);\n"
      "  // The same in a caller-owned arena of kArenaBytes aligned to kArenaAlignment\n"
      "  // (e.g. one arena for several models run one after another on a thread);\n"
      "  // the instance's own arena is left alone.\n"
      "  bool run(int batch, const void* const* inputs, void* const* outputs, void* arena);\n"
      "  static constexpr std::size_t kArenaAlignment = 64;\n\n"
      " private:\n"
      "  bool Fail(const char* message);\n"
      "  void LoadWeights(const char* path);\n"
      "  void AllocateArena();\n"
      "  std::unique_ptr<unsigned char[]> arena_storage_, weight_storage_;\n"
      "  unsigned char* arena_ = nullptr;\n"
      "  const unsigned char* weights_ = nullptr;\n"
      "  bool ok_ = false;\n"
      "  std::string error_;\n"
      "};\n\n"
      "}  // namespace ", o.cpp_namespace, "\n");
}

std::string EmbeddedWeights(const std::vector<uint8_t>& w) {
  std::string out = "alignas(64) const unsigned char kEmbeddedWeights[] =\n";
  static const char kHex[] = "0123456789abcdef";
  if (w.empty()) return out + "    \"\";\n";
  for (size_t i = 0; i < w.size(); i += 64) {
    out += "    \"";
    for (size_t j = i; j < std::min(w.size(), i + 64); ++j) {
      out += "\\x";
      out += kHex[w[j] >> 4];
      out += kHex[w[j] & 15];
    }
    out += "\"\n";
  }
  return out + "    ;\n";
}

// Whether the program multiplies bfloat16 weights in the 16-bit GEMM, which
// has AVX512-BF16 dot products (emitted/gemm.h GemmBf16DotNN): such a package
// gets a fourth run-time variant built for them.
bool UsesBf16Gemm(const EmittedProgram& p) { return absl::StrContains(p.body, "GemmPacked16<2>("); }

std::string Source(const CompileOptions& o, const EmittedProgram& p, uint64_t hash) {
  const std::string& N = o.name;
  // The kernels and the model's steps live in a namespace per instruction-set
  // variant: the package's CMakeLists.txt compiles this file again with
  // HEPML_ISA_VARIANT=v3 / v4 (/ v4bf16) and that -march, and the library's own
  // build picks one at its first run (Pick in the generated file).
  const std::string kernel_ns = absl::StrCat(o.cpp_namespace, "::HEPML_KERNELS");
  std::set<std::string> includes = {"#include <cstdint>", "#include <cstring>", "#include <cstdio>",
                                    "#include <fstream>", "#include <new>"};
  const std::string kernels = KernelText(p.kernel_files, kernel_ns, &includes);
  std::string specs_in, specs_out;
  for (const IoSpec& s : p.inputs) specs_in += SpecRow(s);
  for (const IoSpec& s : p.outputs) specs_out += SpecRow(s);
  std::string src = absl::StrCat("// ", N, ": generated by `hepml compile`. Do not edit.\n#include \"", N, ".h\"\n\n",
                                 absl::StrJoin(includes, "\n"), "\n\n",
                                 "// This file is compiled once for the library and, on x86-64, once more per\n"
                                 "// run-time variant (HEPML_ISA_VARIANT v3, v4 or v4bf16, with its -march).\n"
                                 "#ifdef HEPML_ISA_VARIANT\n#define HEPML_ISA_NAME HEPML_ISA_VARIANT\n#else\n"
                                 "#define HEPML_ISA_NAME base\n#endif\n"
                                 "#define HEPML_PASTE2(a, b) a##_##b\n#define HEPML_PASTE(a, b) HEPML_PASTE2(a, b)\n"
                                 "#define HEPML_KERNELS HEPML_PASTE(", N, "_kernels, HEPML_ISA_NAME)\n\n",
                                 kernels, "\n");
  // The steps: null, or why the run failed.
  absl::StrAppend(&src, "namespace ", kernel_ns, " {\n\nnamespace K = ::", kernel_ns, ";\n\n",
                  "const char* Run(std::int64_t b, const void* const* in, void* const* out, unsigned char* a,\n"
                  "                const unsigned char* w) {\n"
                  "  (void)b;\n  (void)a;\n  (void)w;\n  (void)in;\n  (void)out;\n",
                  p.body, "  return nullptr;\n}\n\n}  // namespace ", kernel_ns, "\n\n#ifndef HEPML_ISA_VARIANT\n");
  absl::StrAppend(&src, "namespace ", o.cpp_namespace, " {\n");
  absl::StrAppend(&src, "#ifdef HEPML_DISPATCH\nnamespace ", N, "_kernels_v3 {\n"
                  "const char* Run(std::int64_t, const void* const*, void* const*, unsigned char*, const unsigned char*);\n"
                  "}\nnamespace ", N, "_kernels_v4 {\n"
                  "const char* Run(std::int64_t, const void* const*, void* const*, unsigned char*, const unsigned char*);\n"
                  "}\n#endif\n#ifdef HEPML_DISPATCH_BF16\nnamespace ", N, "_kernels_v4bf16 {\n"
                  "const char* Run(std::int64_t, const void* const*, void* const*, unsigned char*, const unsigned char*);\n"
                  "}\n#endif\n");
  absl::StrAppend(&src, "namespace {\n\nnamespace K = ::", kernel_ns, ";\n\n",
                  "constexpr std::uint64_t kWeightsHash = 0x", absl::Hex(hash), "ull;\n");
  if (o.embed_weights) absl::StrAppend(&src, EmbeddedWeights(p.weights));
  absl::StrAppend(&src,
                  "\nusing RunFn = const char* (*)(std::int64_t, const void* const*, void* const*, unsigned char*,\n"
                  "                                const unsigned char*);\n"
                  "struct Variant {\n  RunFn run;\n  const char* isa;\n};\n\n"
                  "// The x86-64-v4 variant where the CPU has AVX-512 F/BW/CD/DQ/VL, the v3 one\n"
                  "// where it has AVX2, FMA, BMI1/2 (and the OS saves the AVX state: checked\n"
                  "// by __builtin_cpu_supports), else this file's own build.\n"
                  "Variant Pick() {\n"
                  "#ifdef HEPML_DISPATCH\n"
                  "  __builtin_cpu_init();\n"
                  "  const bool v4 = __builtin_cpu_supports(\"avx512f\") && __builtin_cpu_supports(\"avx512bw\") &&\n"
                  "                  __builtin_cpu_supports(\"avx512cd\") && __builtin_cpu_supports(\"avx512dq\") &&\n"
                  "                  __builtin_cpu_supports(\"avx512vl\");\n"
                  "#ifdef HEPML_DISPATCH_BF16\n"
                  "  // bfloat16 weights: the variant with AVX512-BF16 dot products.\n"
                  "  if (v4 && __builtin_cpu_supports(\"avx512bf16\")) return {", N, "_kernels_v4bf16::Run, \"x86-64-v4+avx512bf16\"};\n"
                  "#endif\n"
                  "  if (v4) return {", N, "_kernels_v4::Run, \"x86-64-v4\"};\n"
                  "  if (__builtin_cpu_supports(\"avx2\") && __builtin_cpu_supports(\"fma\") && __builtin_cpu_supports(\"bmi\") &&\n"
                  "      __builtin_cpu_supports(\"bmi2\"))\n"
                  "    return {", N, "_kernels_v3::Run, \"x86-64-v3\"};\n"
                  "#endif\n"
                  "#ifdef HEPML_NATIVE\n  return {K::Run, \"native\"};\n#else\n  return {K::Run, \"baseline\"};\n#endif\n"
                  "}\n\n"
                  "// Chosen once, at the first use (not at static initialisation: a model\n"
                  "// built by another file's static initialiser still finds it).\n"
                  "const Variant& Chosen() {\n  static const Variant v = Pick();\n  return v;\n}\n");
  absl::StrAppend(&src, "\n}  // namespace\n\n");
  absl::StrAppend(&src, "const ", N, "::TensorSpec ", N, "::kInputs[", N, "::kNumInputs] = {\n", specs_in, "};\n");
  absl::StrAppend(&src, "const ", N, "::TensorSpec ", N, "::kOutputs[", N, "::kNumOutputs] = {\n", specs_out, "};\n\n");
  absl::StrAppend(&src, "const char* ", N, "::isa() { return Chosen().isa; }\n\n");
  if (o.embed_weights) {
    absl::StrAppend(&src, N, "::", N, "() {\n  weights_ = kEmbeddedWeights;\n  AllocateArena();\n}\n\n");
  } else {
    absl::StrAppend(&src, "#ifndef HEPML_WEIGHTS_FILE\n#define HEPML_WEIGHTS_FILE \"", N, ".weights\"\n#endif\n\n", N,
                    "::", N, "() : ", N, "(HEPML_WEIGHTS_FILE) {}\n\n");
  }
  absl::StrAppend(&src, N, "::", N, "(const char* weights_path) {\n  LoadWeights(weights_path);\n  if (error_.empty()) AllocateArena();\n}\n\n");
  absl::StrAppend(&src, "void ", N, "::AllocateArena() {\n"
                  "  arena_storage_.reset(new unsigned char[kArenaBytes + 64]);\n"
                  "  std::uintptr_t p = reinterpret_cast<std::uintptr_t>(arena_storage_.get());\n"
                  "  arena_ = arena_storage_.get() + ((64 - p % 64) % 64);\n"
                  "  ok_ = true;\n}\n\n");
  absl::StrAppend(&src, "void ", N, "::LoadWeights(const char* path) {\n"
                  "  // Layout: \"HEPMLW01\", u64 hash, u64 size, padding to 64, the bytes.\n"
                  "  std::ifstream in(path, std::ios::binary);\n"
                  "  if (!in) {\n    error_ = std::string(path) + \": cannot open the weights file\";\n    return;\n  }\n"
                  "  char header[64];\n"
                  "  std::uint64_t hash = 0, size = 0;\n"
                  "  if (!in.read(header, 64) || std::memcmp(header, \"HEPMLW01\", 8) != 0) {\n"
                  "    error_ = std::string(path) + \": not a hepml weights file\";\n    return;\n  }\n"
                  "  std::memcpy(&hash, header + 8, 8);\n  std::memcpy(&size, header + 16, 8);\n"
                  "  if (hash != kWeightsHash || size != kWeightBytes) {\n"
                  "    error_ = std::string(path) + \": weights of another compile (", N, " expects its own ", N, ".weights)\";\n    return;\n  }\n"
                  "  weight_storage_.reset(new unsigned char[kWeightBytes + 64]);\n"
                  "  std::uintptr_t p = reinterpret_cast<std::uintptr_t>(weight_storage_.get());\n"
                  "  unsigned char* w = weight_storage_.get() + ((64 - p % 64) % 64);\n"
                  "  if (kWeightBytes && !in.read(reinterpret_cast<char*>(w), static_cast<std::streamsize>(kWeightBytes))) {\n"
                  "    error_ = std::string(path) + \": truncated weights file\";\n    return;\n  }\n"
                  "  weights_ = w;\n}\n\n");
  absl::StrAppend(&src, "bool ", N, "::Fail(const char* message) {\n  error_ = message;\n  return false;\n}\n\n");
  absl::StrAppend(&src, "bool ", N, "::run(int batch, const void* const* in, void* const* out) {\n"
                  "  return run(batch, in, out, arena_);\n}\n\n");
  absl::StrAppend(&src, "bool ", N, "::run(int batch, const void* const* in, void* const* out, void* arena) {\n"
                  "  if (!ok_) return false;\n"
                  "  if (batch < 1 || batch > kMaxBatch) return Fail(\"batch outside 1..kMaxBatch\");\n"
                  "  if (kArenaBytes > 0 && (arena == nullptr || reinterpret_cast<std::uintptr_t>(arena) % kArenaAlignment != 0))\n"
                  "    return Fail(\"arena is null or not aligned to kArenaAlignment\");\n"
                  "  const char* failed = Chosen().run(batch, in, out, static_cast<unsigned char*>(arena), weights_);\n"
                  "  return failed == nullptr || Fail(failed);\n}\n\n}  // namespace ", o.cpp_namespace,
                  "\n#endif  // HEPML_ISA_VARIANT\n");
  return src;
}

std::string CMakeText(const CompileOptions& o, bool bf16_variant) {
  const std::string& N = o.name;
  const std::string bf16 = !bf16_variant ? "" : absl::StrCat(
      "    # bfloat16 weights: a variant with AVX512-BF16 dot products too.\n"
      "    check_cxx_compiler_flag(-mavx512bf16 ", N, "_HAS_AVX512BF16)\n"
      "    if(", N, "_HAS_AVX512BF16)\n"
      "      add_library(", N, "_v4bf16 OBJECT ", N, ".cc)\n"
      "      target_compile_definitions(", N, "_v4bf16 PRIVATE HEPML_ISA_VARIANT=v4bf16)\n"
      "      target_compile_options(", N, "_v4bf16 PRIVATE -march=x86-64-v4 -mavx512bf16)\n"
      "      target_sources(", N, " PRIVATE $<TARGET_OBJECTS:", N, "_v4bf16>)\n"
      "      target_compile_definitions(", N, " PRIVATE HEPML_DISPATCH_BF16=1)\n"
      "    endif()\n");
  std::string weights_def = o.embed_weights ? "" : absl::StrCat(
      "# ", N, "() reads this file; ", N, "(path) reads another copy of it.\n"
      "target_compile_definitions(", N, " PRIVATE HEPML_WEIGHTS_FILE=\"${CMAKE_CURRENT_SOURCE_DIR}/", N, ".weights\")\n");
  return absl::StrCat(
      "# Generated by `hepml compile`: the static library ", N, " and its runner ", N, "_run.\n"
      "# Needs only a C++17 compiler and its standard library.\n"
      "cmake_minimum_required(VERSION 3.16)\n"
      "project(", N, " LANGUAGES CXX)\n\n"
      "if(NOT CMAKE_BUILD_TYPE)\n  set(CMAKE_BUILD_TYPE Release)\nendif()\n"
      "set(CMAKE_CXX_STANDARD 17)\nset(CMAKE_CXX_STANDARD_REQUIRED ON)\nset(CMAKE_CXX_EXTENSIONS OFF)\n\n"
      "option(", N, "_NATIVE \"Compile for this machine's CPU (-march=native)\" OFF)\n"
      "# Without ", N, "_NATIVE, on x86-64: the model's code is compiled three times, for the\n"
      "# x86-64 baseline and for x86-64-v3 (AVX2, FMA) and -v4 (AVX-512), and run() takes the\n"
      "# best one this CPU has (", N, "::isa() names it). OFF: the baseline build alone.\n"
      "option(", N, "_DISPATCH \"Add x86-64-v3 and -v4 variants picked at run time\" ON)\n\n"
      "add_library(", N, " STATIC ", N, ".cc)\n"
      "target_include_directories(", N, " PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n", weights_def,
      "if(", N, "_NATIVE)\n"
      "  target_compile_options(", N, " PRIVATE -march=native)\n"
      "  target_compile_definitions(", N, " PRIVATE HEPML_NATIVE=1)\n"
      "elseif(", N, "_DISPATCH AND CMAKE_SYSTEM_PROCESSOR MATCHES \"^(x86_64|AMD64|amd64)$\")\n"
      "  include(CheckCXXCompilerFlag)\n"
      "  check_cxx_compiler_flag(-march=x86-64-v4 ", N, "_HAS_X86_64_V4)\n"
      "  if(", N, "_HAS_X86_64_V4)\n"
      "    foreach(isa v3 v4)\n"
      "      add_library(", N, "_${isa} OBJECT ", N, ".cc)\n"
      "      target_compile_definitions(", N, "_${isa} PRIVATE HEPML_ISA_VARIANT=${isa})\n"
      "      target_compile_options(", N, "_${isa} PRIVATE -march=x86-64-${isa})\n"
      "      target_sources(", N, " PRIVATE $<TARGET_OBJECTS:", N, "_${isa}>)\n"
      "    endforeach()\n"
      "    target_compile_definitions(", N, " PRIVATE HEPML_DISPATCH=1)\n", bf16,
      "  endif()\n"
      "endif()\n\n"
      "add_executable(", N, "_run ", N, "_run.cc)\n"
      "target_link_libraries(", N, "_run PRIVATE ", N, ")\n");
}

std::vector<uint8_t> WeightsFile(const std::vector<uint8_t>& w, uint64_t hash) {
  std::vector<uint8_t> out(64, 0);
  std::memcpy(out.data(), "HEPMLW01", 8);
  const uint64_t size = w.size();
  std::memcpy(out.data() + 8, &hash, 8);
  std::memcpy(out.data() + 16, &size, 8);
  out.insert(out.end(), w.begin(), w.end());
  return out;
}

// LSTM, GRU and RNN with layout = 1 (batch first: X [B, T, I], initial and
// final states [B, D, H], Y [B, T, D, H]) become layout 0 between Transpose
// nodes, so the emitted recurrent kernels see one layout only.
void LowerBatchFirstRecurrent(Graph& graph) {
  std::vector<Node> nodes;
  int fresh = 0;
  auto transpose = [&](const std::string& from, const std::string& to, std::vector<int64_t> perm, const Node& at) {
    Node t;
    t.name = absl::StrCat(at.name, "_layout", fresh++);
    t.op_type = "Transpose";
    t.opset = at.opset;
    t.inputs = {from};
    t.outputs = {to};
    Attribute a;
    a.name = "perm";
    a.type = Attribute::Type::kInts;
    a.ints = std::move(perm);
    t.attributes.push_back(std::move(a));
    return t;
  };
  for (Node& n : graph.nodes) {
    const bool recurrent = (n.op_type == "LSTM" || n.op_type == "GRU" || n.op_type == "RNN") && n.domain.empty();
    if (!recurrent || n.GetInt("layout", 0) != 1) {
      nodes.push_back(std::move(n));
      continue;
    }
    const std::string base = absl::StrCat("hepml_layout0_", nodes.size(), "_");
    // Inputs X (0), initial_h (5), initial_c (6).
    for (size_t i : {size_t{0}, size_t{5}, size_t{6}}) {
      if (!n.HasInput(i)) continue;
      const std::string t = absl::StrCat(base, "in", i);
      nodes.push_back(transpose(n.inputs[i], t, {1, 0, 2}, n));
      n.inputs[i] = t;
    }
    std::vector<Node> after;
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (!n.HasOutput(i)) continue;
      const std::string t = absl::StrCat(base, "out", i);
      // Y [T, D, B, H] -> [B, T, D, H]; Y_h, Y_c [D, B, H] -> [B, D, H].
      after.push_back(transpose(t, n.outputs[i], i == 0 ? std::vector<int64_t>{2, 0, 1, 3} : std::vector<int64_t>{1, 0, 2}, n));
      n.outputs[i] = t;
    }
    for (Attribute& a : n.attributes)
      if (a.name == "layout") a.i = 0;
    nodes.push_back(std::move(n));
    for (Node& t : after) nodes.push_back(std::move(t));
  }
  graph.nodes = std::move(nodes);
}

}  // namespace

std::string DefaultPackageName(const std::string& model_path) {
  std::string stem = fs::path(model_path).stem().string();
  for (char& c : stem)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
  if (stem.empty() || (stem[0] >= '0' && stem[0] <= '9')) stem = "model_" + stem;
  if (!IsIdentifier(stem)) stem += "_model";
  return stem;
}

std::string WeightPrecisionName(const WeightPrecision& p) {
  switch (p.kind) {
    case WeightPrecision::kFp32: return "fp32";
    case WeightPrecision::kFp16: return "fp16";
    case WeightPrecision::kBf16: return "bf16";
    case WeightPrecision::kInt8: return "int8";
    case WeightPrecision::kFixed: {
      codegen::FixedType t{p.width, p.integer, p.quant, p.overflow};
      return codegen::FixedTypeName(t);
    }
  }
  return "?";
}

absl::StatusOr<WeightPrecision> ParseWeightPrecision(const std::string& text) {
  if (text == "fp32") return WeightPrecision(WeightPrecision::kFp32);
  if (text == "fp16") return WeightPrecision(WeightPrecision::kFp16);
  if (text == "bf16") return WeightPrecision(WeightPrecision::kBf16);
  if (text == "int8") return WeightPrecision(WeightPrecision::kInt8);
  if (text.rfind("fixed", 0) == 0) {
    auto t = codegen::ParseFixedType(text);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--precision ", t.status().message()));
    WeightPrecision p(WeightPrecision::kFixed);
    p.width = t->width;
    p.integer = t->integer;
    p.quant = t->quant;
    p.overflow = t->overflow;
    return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--precision '", text, "': expected fp32, fp16, bf16, int8 or fixed<W,I[,Q[,O]]>"));
}

absl::StatusOr<GeneratedPackage> GeneratePackage(const std::string& model_path, const CompileOptions& options) {
  HEPML_RETURN_IF_ERROR(CheckOptions(options));
  codegen::PruneSpec prune;
  if (!options.prune.empty()) {
    HEPML_ASSIGN_OR_RETURN(prune, codegen::ParsePruneSpec(options.prune));
  } else if (!options.write_pruned.empty()) {
    return absl::InvalidArgumentError("--write-pruned needs --prune");
  }
  HEPML_ASSIGN_OR_RETURN(Model model, LoadModel(model_path));
  // Pruning works on the imported weights, before the passes fold anything
  // into them, so the pruned ONNX model is what the package computes.
  const std::vector<codegen::PrunedLayer> layers = codegen::PruneWeights(model.graph, prune);
  std::string pruned_model;
  if (!options.write_pruned.empty()) {
    std::ifstream in(model_path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    onnx::ModelProto proto;
    if (!proto.ParseFromString(bytes)) return absl::DataLossError(absl::StrCat(model_path, ": cannot reparse"));
    std::map<std::string, const Tensor*> changed;
    for (const auto& l : layers) changed[l.weight] = &model.graph.initializers.at(l.weight);
    for (onnx::TensorProto& t : *proto.mutable_graph()->mutable_initializer()) {
      auto it = changed.find(t.name());
      if (it == changed.end()) continue;
      onnx::TensorProto fresh;
      TensorToProto(*it->second, t.name(), &fresh);
      t = fresh;
    }
    pruned_model = proto.SerializeAsString();
  }
  // Int8 weights of a QDQ model, before constant folding makes them float.
  const std::vector<codegen::QdqWeight> qdq_weights = codegen::CollectQdqWeights(model.graph);
  // The emitted code has no pooled convolution: FusedConv's pool attribute
  // (fuse-conv-maxpool) is a runtime kernel of its own (the emitter pools in
  // its own 3x3 kernels instead).
  std::set<std::string> disabled_passes(options.disabled_passes.begin(), options.disabled_passes.end());
  disabled_passes.insert("fuse-conv-maxpool");
  // int8 layers calibrate their input's scale on the model's own values; the
  // values pointwise-conv-to-gemm and the EdgeConv rewrites make are not
  // among them.
  bool wants_int8 = options.precision.kind == WeightPrecision::kInt8;
  for (const auto& [name, p] : options.layer_precision) wants_int8 |= p.kind == WeightPrecision::kInt8;
  if (wants_int8) {
    disabled_passes.insert("pointwise-conv-to-gemm");
    disabled_passes.insert("fuse-edge-features");
  }
  auto reports = passes::PassManager::Default().Run(model.graph, disabled_passes);
  if (!reports.ok()) return reports.status();
  for (const Node& n : model.graph.nodes) {
    for (const Attribute& a : n.attributes) {
      if (a.type == Attribute::Type::kGraph || a.type == Attribute::Type::kGraphs) {
        return absl::UnimplementedError(absl::StrCat(n.Describe(), ": hepml compile cannot emit ", n.op_type,
                                                     " (control flow with subgraphs)"));
      }
    }
  }
  LowerBatchFirstRecurrent(model.graph);
  HEPML_ASSIGN_OR_RETURN(codegen::GraphShapes shapes,
                         codegen::ResolveShapes(model.graph, options.dims, options.max_batch));
  codegen::WeightFormats formats;
  auto format_of = [](const WeightPrecision& p) {
    switch (p.kind) {
      case WeightPrecision::kFp16: return hepml_emitted::kWeightF16;
      case WeightPrecision::kBf16: return hepml_emitted::kWeightBF16;
      case WeightPrecision::kInt8: return codegen::kWeightInt8;
      case WeightPrecision::kFixed: return codegen::kWeightFixed;
      default: return 0;
    }
  };
  auto fixed_of = [](const WeightPrecision& p) { return codegen::FixedType{p.width, p.integer, p.quant, p.overflow}; };
  formats.fallback = format_of(options.precision);
  formats.fixed_fallback = fixed_of(options.precision);
  formats.sparse_gemm = !options.prune.empty();
  if (!options.layer_precision.empty()) {
    std::set<std::string> names;
    for (const Node& n : model.graph.nodes) names.insert(n.name);
    for (const auto& [name, p] : options.layer_precision) {
      if (!names.count(name)) {
        return absl::InvalidArgumentError(absl::StrCat("--precision-file: '", name,
                                                       "' is not a node of the optimised graph (see `hepml info --optimized`)"));
      }
      formats.by_node[name] = format_of(p);
      formats.fixed_by_node[name] = fixed_of(p);
    }
  }
  codegen::PlanQdq(model.graph, qdq_weights, &formats, options.qdq_kernels);
  // int8 layers: the scale of each one's input, from the calibration data.
  std::vector<std::pair<std::string, Tensor>> calibration;
  if (!options.calibration.empty()) {
    HEPML_ASSIGN_OR_RETURN(calibration, codegen::ReadCalibration(model_path, options.calibration));
  }
  std::map<std::string, std::string> int8_inputs;  // node -> its input value
  for (const Node& n : model.graph.nodes) {
    if (formats.For(n.name) == codegen::kWeightInt8 && !formats.qdq.count(n.name) &&
        codegen::IsQuantizableLayer(model.graph, n)) {
      int8_inputs[n.name] = n.inputs[0];
    }
  }
  if (!int8_inputs.empty()) {
    if (calibration.empty()) {
      return absl::InvalidArgumentError(
          "--precision int8 needs --calibration NAME=FILE.npy (data for every model input: the int8 activation "
          "scales are calibrated on it)");
    }
    std::set<std::string> values;
    for (const auto& [node, v] : int8_inputs) values.insert(v);
    HEPML_ASSIGN_OR_RETURN(auto ranges, codegen::CalibrateMaxAbs(model_path, calibration, values));
    for (const auto& [node, v] : int8_inputs) {
      const float m = ranges.at(v);
      formats.input_scale[node] = m > 0.f && std::isfinite(m) ? m / 127.f : 1.f;
    }
  }
  HEPML_ASSIGN_OR_RETURN(EmittedProgram prog,
                         codegen::EmitProgram(model.graph, shapes, options.max_batch, formats));
  for (const auto* list : {&prog.inputs, &prog.outputs})
    for (const IoSpec& s : *list)
      if (s.shape.size() > 8) {
        return absl::UnimplementedError(absl::StrCat("'", s.name, "' has rank ", s.shape.size(), "; at most 8"));
      }
  const uint64_t hash = Fnv1a(prog.weights);
  GeneratedPackage pkg;
  const std::string& N = options.name;
  pkg.files.emplace_back(N + ".h", Header(options, model_path, prog));
  pkg.files.emplace_back(N + ".cc", Source(options, prog, hash));
  if (!options.embed_weights) {
    std::vector<uint8_t> w = WeightsFile(prog.weights, hash);
    pkg.files.emplace_back(N + ".weights", std::string(w.begin(), w.end()));
  }
  pkg.files.emplace_back(N + "_run.cc",
                         absl::StrReplaceAll(Embedded("runner.cc"), {{"@NAME@", N},
                                                                     {"@NS@", options.cpp_namespace},
                                                                     {"@PRECISION@", options.layer_precision.empty()
                                                                                         ? WeightPrecisionName(options.precision)
                                                                                         : "mixed"},
                                                                     {"@MODEL@", absl::CEscape(model_path)}}));
  pkg.files.emplace_back("CMakeLists.txt", CMakeText(options, UsesBf16Gemm(prog)));
  pkg.report.num_steps = prog.num_steps;
  pkg.report.arena_bytes = prog.arena_bytes;
  pkg.report.weight_bytes = prog.weights.size();
  pkg.pruned_model = std::move(pruned_model);
  pkg.report.sparse_layers.assign(prog.sparse_nodes.begin(), prog.sparse_nodes.end());
  pkg.report.quantized_layers = prog.quant_nodes;
  for (const auto& l : layers) {
    PrunedLayerReport r;
    r.node = l.node;
    r.weight = l.weight;
    r.size = l.size;
    r.zeros_before = l.zeros_before;
    r.zeros_after = l.zeros_after;
    pkg.report.layers.push_back(r);
  }
  pkg.report.kernel_files.assign(prog.kernel_files.begin(), prog.kernel_files.end());
  for (const auto& [name, text] : pkg.files) pkg.report.files.push_back(name);
  return pkg;
}

absl::StatusOr<CompileReport> CompileModel(const std::string& model_path, const std::string& out_dir,
                                           const CompileOptions& options) {
  HEPML_ASSIGN_OR_RETURN(GeneratedPackage pkg, GeneratePackage(model_path, options));
  fs::path target = fs::absolute(fs::path(out_dir)).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(target.parent_path().string(), ": ", ec.message()));
  if (fs::exists(target) && !fs::is_directory(target)) {
    return absl::AlreadyExistsError(absl::StrCat(target.string(), " exists and is not a folder"));
  }
  if (fs::is_directory(target) && !fs::is_empty(target)) {
    // Only a package an earlier compile wrote is replaced, never a folder of
    // other files.
    std::ifstream cmake(target / "CMakeLists.txt");
    std::string first;
    std::getline(cmake, first);
    if (first.rfind("# Generated by `hepml compile`", 0) != 0) {
      return absl::AlreadyExistsError(absl::StrCat(target.string(),
                                                   " exists and is not a package hepml compile wrote: remove it or "
                                                   "choose another folder"));
    }
  }
  std::string tmpl = (target.parent_path() / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(target.parent_path().string(), ": cannot create a folder"));
  }
  const fs::path tmp(tmpl);
  auto cleanup = [&] { fs::remove_all(tmp, ec); };
  for (const auto& [name, text] : pkg.files) {
    std::ofstream out(tmp / name, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      cleanup();
      return absl::ResourceExhaustedError(absl::StrCat((tmp / name).string(), ": write failed"));
    }
  }
  fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                           fs::perms::others_exec, ec);
  fs::path old;
  if (fs::exists(target)) {
    old = fs::path(tmpl + ".old");
    fs::rename(target, old, ec);
    if (ec) {
      cleanup();
      return absl::PermissionDeniedError(absl::StrCat(target.string(), ": cannot replace: ", ec.message()));
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::string msg = ec.message();
    if (!old.empty()) fs::rename(old, target, ec);
    cleanup();
    return absl::PermissionDeniedError(absl::StrCat(target.string(), ": ", msg));
  }
  if (!old.empty()) fs::remove_all(old, ec);
  if (!options.write_pruned.empty()) {
    const fs::path p(options.write_pruned);
    const fs::path t = p.parent_path() / ("." + p.filename().string() + ".tmp");
    {
      std::ofstream f(t, std::ios::binary);
      f.write(pkg.pruned_model.data(), static_cast<std::streamsize>(pkg.pruned_model.size()));
      if (!f) return absl::PermissionDeniedError(absl::StrCat(options.write_pruned, ": write failed"));
    }
    fs::rename(t, p, ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat(options.write_pruned, ": ", ec.message()));
  }
  return pkg.report;
}

}  // namespace hepml
