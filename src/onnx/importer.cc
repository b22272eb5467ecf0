#include "onnx/importer.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/coded_stream.h"
#include "graph/verifier.h"
#include "hepml/status.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"
#include "onnx/proto_convert.h"
#include "onnx/shape_inference/implementation.h"

namespace hepml {
namespace {

namespace fs = std::filesystem;

// Domains whose operators hepml knows of (it may still lack some of their
// operators; those are reported per node, not refused at import). "ai.hepml"
// holds hepml's own fused operators (src/ops/fused.cc), which optimised
// models hepml writes contain.
bool IsKnownDomain(std::string_view domain) {
  return domain.empty() || domain == "ai.onnx" || domain == "ai.onnx.ml" ||
         domain == "ai.onnx.preview.training" || domain == "com.microsoft" || domain == "ai.hepml";
}

// The highest opset of each known domain that hepml reads.
int MaxOpsetOf(std::string_view domain) {
  if (domain.empty() || domain == "ai.onnx") return kMaxOpset;
  if (domain == "ai.onnx.ml") return 5;
  if (domain == "ai.onnx.preview.training") return 1;
  return 1;
}

class Converter {
 public:
  Converter(const std::map<std::string, int64_t>& opsets, std::string base_dir,
            const onnx::ModelProto* model = nullptr)
      : opsets_(opsets), base_dir_(std::move(base_dir)) {
    if (model) {
      for (const auto& f : model->functions()) functions_[{f.domain(), f.name()}] = &f;
    }
  }

  absl::StatusOr<Graph> ConvertGraph(const onnx::GraphProto& gp) {
    Graph g;
    g.name = gp.name();
    g.doc = gp.doc_string();
    for (const auto& vi : gp.input()) g.inputs.push_back(ConvertValueInfo(vi));
    for (const auto& vi : gp.output()) g.outputs.push_back(ConvertValueInfo(vi));
    for (const auto& vi : gp.value_info()) g.value_info.push_back(ConvertValueInfo(vi));
    for (const auto& tp : gp.initializer()) {
      auto t = TensorFromProto(tp, base_dir_);
      if (!t.ok()) return Annotate(t.status(), absl::StrCat("initializer '", tp.name(), "'"));
      g.initializers[tp.name()] = std::move(*t);
    }
    for (const auto& sp : gp.sparse_initializer()) {
      auto t = Densify(sp);
      if (!t.ok()) return Annotate(t.status(), absl::StrCat("sparse initializer '", sp.values().name(), "'"));
      g.initializers[sp.values().name()] = std::move(*t);
    }
    g.nodes.reserve(gp.node_size());
    for (int i = 0; i < gp.node_size(); ++i) {
      HEPML_RETURN_IF_ERROR(AppendNode(gp.node(i), i, opsets_, g.nodes, 0));
    }
    return g;
  }

 private:
  static absl::Status Annotate(const absl::Status& st, const std::string& where) {
    return absl::Status(st.code(), absl::StrCat(where, ": ", st.message()));
  }

  ValueInfo ConvertValueInfo(const onnx::ValueInfoProto& vi) {
    ValueInfo out;
    out.name = vi.name();
    out.doc = vi.doc_string();
    if (vi.has_type()) out.type = TypeFromProto(vi.type());
    return out;
  }

  absl::StatusOr<Tensor> Densify(const onnx::SparseTensorProto& sp) {
    auto values = TensorFromProto(sp.values(), base_dir_);
    if (!values.ok()) return values.status();
    auto indices = TensorFromProto(sp.indices(), base_dir_);
    if (!indices.ok()) return indices.status();
    Shape shape(sp.dims().begin(), sp.dims().end());
    for (int64_t d : shape) {
      if (d < 0) return absl::InvalidArgumentError("negative dimension");
    }
    Tensor dense = Tensor::Zeros(values->dtype(), shape);
    if (values->dtype() == DType::kString) return absl::UnimplementedError("sparse string tensors");
    const int64_t nnz = values->size();
    const int64_t total = dense.size();
    const size_t elem = DTypeSize(values->dtype());
    if (indices->dtype() != DType::kInt64) return absl::InvalidArgumentError("indices must be int64");
    const int64_t* idx = indices->data<int64_t>();
    const int64_t rank = static_cast<int64_t>(shape.size());
    const bool linear = indices->rank() == 1;
    if ((linear && indices->size() != nnz) || (!linear && indices->size() != nnz * rank)) {
      return absl::InvalidArgumentError("indices do not match the number of values");
    }
    for (int64_t k = 0; k < nnz; ++k) {
      int64_t pos = 0;
      if (linear) {
        pos = idx[k];
      } else {
        for (int64_t d = 0; d < rank; ++d) {
          int64_t c = idx[k * rank + d];
          if (c < 0 || c >= shape[d]) return absl::InvalidArgumentError("index out of range");
          pos = pos * shape[d] + c;
        }
      }
      if (pos < 0 || pos >= total) return absl::InvalidArgumentError("index out of range");
      std::memcpy(static_cast<char*>(dense.raw_mutable_data()) + pos * elem,
                  static_cast<const char*>(values->raw_data()) + k * elem, elem);
    }
    return dense;
  }

  absl::StatusOr<Attribute> ConvertAttribute(const onnx::AttributeProto& ap, const std::string& where) {
    Attribute a;
    a.name = ap.name();
    using AP = onnx::AttributeProto;
    auto type = ap.type();
    if (type == AP::UNDEFINED) {  // very old models: infer from the field that is set
      if (ap.has_f()) type = AP::FLOAT;
      else if (ap.has_i()) type = AP::INT;
      else if (ap.has_s()) type = AP::STRING;
      else if (ap.has_t()) type = AP::TENSOR;
      else if (ap.has_g()) type = AP::GRAPH;
      else if (ap.floats_size()) type = AP::FLOATS;
      else if (ap.ints_size()) type = AP::INTS;
      else if (ap.strings_size()) type = AP::STRINGS;
      else if (ap.graphs_size()) type = AP::GRAPHS;
    }
    switch (type) {
      case AP::FLOAT: a.type = Attribute::Type::kFloat; a.f = ap.f(); break;
      case AP::INT: a.type = Attribute::Type::kInt; a.i = ap.i(); break;
      case AP::STRING: a.type = Attribute::Type::kString; a.s = ap.s(); break;
      case AP::TENSOR: {
        a.type = Attribute::Type::kTensor;
        auto t = TensorFromProto(ap.t(), base_dir_);
        if (!t.ok()) return Annotate(t.status(), where);
        a.t = std::move(*t);
        break;
      }
      case AP::SPARSE_TENSOR: {
        a.type = Attribute::Type::kSparseTensor;
        auto t = Densify(ap.sparse_tensor());
        if (!t.ok()) return Annotate(t.status(), where);
        a.t = std::move(*t);
        break;
      }
      case AP::GRAPH: {
        a.type = Attribute::Type::kGraph;
        auto g = ConvertGraph(ap.g());
        if (!g.ok()) return Annotate(g.status(), absl::StrCat(where, ", subgraph '", ap.name(), "'"));
        a.g = std::make_shared<Graph>(std::move(*g));
        break;
      }
      case AP::FLOATS: a.type = Attribute::Type::kFloats; a.floats.assign(ap.floats().begin(), ap.floats().end()); break;
      case AP::INTS: a.type = Attribute::Type::kInts; a.ints.assign(ap.ints().begin(), ap.ints().end()); break;
      case AP::STRINGS: a.type = Attribute::Type::kStrings; a.strings.assign(ap.strings().begin(), ap.strings().end()); break;
      case AP::TENSORS:
        a.type = Attribute::Type::kTensors;
        for (const auto& tp : ap.tensors()) {
          auto t = TensorFromProto(tp, base_dir_);
          if (!t.ok()) return Annotate(t.status(), where);
          a.tensors.push_back(std::move(*t));
        }
        break;
      case AP::GRAPHS:
        a.type = Attribute::Type::kGraphs;
        for (const auto& gp : ap.graphs()) {
          auto g = ConvertGraph(gp);
          if (!g.ok()) return g.status();
          a.graphs.push_back(std::make_shared<Graph>(std::move(*g)));
        }
        break;
      case AP::TYPE_PROTO: a.type = Attribute::Type::kTypeProto; a.type_proto = TypeFromProto(ap.tp()); break;
      case AP::TYPE_PROTOS:
        a.type = Attribute::Type::kTypeProtos;
        for (const auto& tp : ap.type_protos()) a.type_protos.push_back(TypeFromProto(tp));
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(where, ": attribute '", ap.name(), "' has unsupported type ",
                                                       static_cast<int>(ap.type())));
    }
    return a;
  }

  // Converts one node, or inlines the body of the model-local function it calls.
  absl::Status AppendNode(const onnx::NodeProto& np, int index, const std::map<std::string, int64_t>& opsets,
                          std::vector<Node>& out, int depth) {
    std::string domain = np.domain() == "ai.onnx" ? "" : np.domain();
    auto fn = functions_.find({np.domain(), np.op_type()});
    if (fn == functions_.end()) {
      auto node = ConvertNode(np, index, opsets);
      if (!node.ok()) return node.status();
      out.push_back(std::move(*node));
      return absl::OkStatus();
    }
    const onnx::FunctionProto& f = *fn->second;
    if (depth > 32) {
      return absl::InvalidArgumentError(absl::StrCat("function '", f.name(), "' calls itself too deeply (recursion?)"));
    }
    // Inside the body, names are prefixed to stay unique; formal inputs and
    // outputs map to the call's actual ones.
    const std::string prefix = absl::StrCat(np.name().empty() ? f.name() : np.name(), "/", inline_counter_++, "/");
    std::map<std::string, std::string> rename;
    for (int i = 0; i < f.input_size(); ++i) rename[f.input(i)] = i < np.input_size() ? np.input(i) : "";
    for (int i = 0; i < f.output_size(); ++i) rename[f.output(i)] = i < np.output_size() ? np.output(i) : "";
    std::map<std::string, int64_t> body_opsets = opsets;
    for (const auto& op : f.opset_import()) body_opsets[op.domain() == "ai.onnx" ? "" : op.domain()] = op.version();
    std::map<std::string, const onnx::AttributeProto*> call_attrs;
    for (const auto& a : np.attribute()) call_attrs[a.name()] = &a;
    for (int i = 0; i < f.node_size(); ++i) {
      onnx::NodeProto body = f.node(i);
      auto map_name = [&](std::string* name) {
        if (name->empty()) return;
        auto it = rename.find(*name);
        *name = it != rename.end() ? it->second : prefix + *name;
      };
      for (auto& in : *body.mutable_input()) map_name(&in);
      for (auto& o : *body.mutable_output()) map_name(&o);
      body.set_name(prefix + body.name());
      google::protobuf::RepeatedPtrField<onnx::AttributeProto> attrs;
      for (const auto& a : body.attribute()) {
        if (a.ref_attr_name().empty()) {
          *attrs.Add() = a;
          continue;
        }
        auto it = call_attrs.find(a.ref_attr_name());
        if (it == call_attrs.end()) continue;  // unset optional attribute
        onnx::AttributeProto* copy = attrs.Add();
        *copy = *it->second;
        copy->set_name(a.name());
      }
      *body.mutable_attribute() = attrs;
      HEPML_RETURN_IF_ERROR(AppendNode(body, i, body_opsets, out, depth + 1));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Node> ConvertNode(const onnx::NodeProto& np, int index,
                                   const std::map<std::string, int64_t>& opsets) {
    Node n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    std::string where = n.op_type.empty() ? absl::StrCat("node ", index) : absl::StrCat("node ", n.Describe());
    if (n.op_type.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty op_type"));
    auto it = opsets.find(n.domain);
    if (it == opsets.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": domain '", n.DomainName(),
                                                     "' is not among the model's opset imports"));
    }
    n.opset = static_cast<int>(it->second);
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    // The operator's arity, where libonnx knows the opset (ai.onnx <= 17):
    // a kernel reads the inputs its schema guarantees (constant folding runs
    // kernels at load time), so too few or too many is an error here. Which
    // inputs are required is checked against the newest schema libonnx has
    // (17) for later opsets too: no ai.onnx operator has made one optional since.
    if (n.domain.empty()) {
      const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(n.op_type, std::min(n.opset, 17), "");
      if (schema != nullptr) {
        if (n.opset <= 17 && (np.input_size() < schema->min_input() || np.input_size() > schema->max_input())) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": has ", np.input_size(), " inputs; ", n.op_type,
                                                         "-", schema->since_version(), " takes ", schema->min_input(),
                                                         schema->max_input() == schema->min_input()
                                                             ? std::string()
                                                             : absl::StrCat(" to ", schema->max_input())));
        }
        // A required (single or variadic) input named "" is absent, which
        // only optional inputs may be.
        const auto& formal = schema->inputs();
        for (int i = 0; i < np.input_size() && !formal.empty(); ++i) {
          const auto& param = formal[std::min<size_t>(static_cast<size_t>(i), formal.size() - 1)];
          if (np.input(i).empty() && param.GetOption() != onnx::OpSchema::Optional) {
            return absl::InvalidArgumentError(absl::StrCat(where, ": input ", i, " ('", param.GetName(), "' of ",
                                                           n.op_type, "-", schema->since_version(),
                                                           ") is required but has an empty name"));
          }
        }
        if (n.opset <= 17 && (np.output_size() < schema->min_output() || np.output_size() > schema->max_output())) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": has ", np.output_size(), " outputs; ", n.op_type,
                                                         "-", schema->since_version(), " gives ", schema->min_output(),
                                                         schema->max_output() == schema->min_output()
                                                             ? std::string()
                                                             : absl::StrCat(" to ", schema->max_output())));
        }
      }
    }
    for (const auto& ap : np.attribute()) {
      auto a = ConvertAttribute(ap, where);
      if (!a.ok()) return a.status();
      n.attributes.push_back(std::move(*a));
    }
    return n;
  }

  const std::map<std::string, int64_t>& opsets_;
  std::string base_dir_;
  std::map<std::pair<std::string, std::string>, const onnx::FunctionProto*> functions_;
  int inline_counter_ = 0;
};

// libonnx 1.12's convolution and pooling shape inference indexes the input
// shape by the weight's rank and by the lengths of kernel_shape, strides,
// pads and dilations without checking them (a segfault on a malformed
// model) and divides by strides and dilations. Returns false when a
// Conv/Pool node in `g` (or a subgraph) has a zero or negative kernel size,
// stride or dilation, or a mismatch among ranks the graph declares (inputs, value_info,
// initializers, and the outputs of Conv/Pool nodes themselves, which keep
// their input's rank); its shape inference is then skipped, and hepml's own
// checks report the node.
bool SafeForOnnxConvPoolInference(const onnx::GraphProto& g, std::unordered_map<std::string, int> ranks) {
  static const std::set<std::string> kConvPool = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv",
                                                  "AveragePool", "MaxPool", "LpPool", "MaxUnpool", "MaxRoiPool"};
  auto declare = [&](const onnx::ValueInfoProto& vi) {
    if (vi.type().has_tensor_type() && vi.type().tensor_type().has_shape())
      ranks[vi.name()] = vi.type().tensor_type().shape().dim_size();
  };
  for (const auto& vi : g.input()) declare(vi);
  for (const auto& vi : g.value_info()) declare(vi);
  for (const auto& t : g.initializer()) ranks[t.name()] = t.dims_size();
  auto rank_of = [&](const onnx::NodeProto& n, int i) {
    if (i >= n.input_size()) return -1;
    auto it = ranks.find(n.input(i));
    return it == ranks.end() ? -1 : it->second;
  };
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      if (a.has_g() && !SafeForOnnxConvPoolInference(a.g(), ranks)) return false;
      for (const auto& sg : a.graphs())
        if (!SafeForOnnxConvPoolInference(sg, ranks)) return false;
    }
    if (!(n.domain().empty() || n.domain() == "ai.onnx") || !kConvPool.count(n.op_type())) continue;
    const int x = rank_of(n, 0);
    const int w = rank_of(n, n.op_type() == "QLinearConv" ? 3 : 1);
    const bool has_weight = n.op_type().find("Conv") != std::string::npos;
    if (x >= 0 && x < 3) return false;
    if (has_weight && x >= 0 && w >= 0 && x != w) return false;
    const int spatial = x >= 0 ? x - 2 : (has_weight && w >= 0 ? w - 2 : -1);
    for (const auto& a : n.attribute()) {
      const int len = a.ints_size();
      if (a.name() == "kernel_shape" || a.name() == "strides" || a.name() == "dilations" ||
          a.name() == "output_shape" || a.name() == "output_padding") {
        if (spatial >= 0 ? len != spatial : len == 0) return false;
        // libonnx divides by strides and dilations.
        if (a.name() != "output_shape" && a.name() != "output_padding")
          for (int64_t v : a.ints())
            if (v <= 0) return false;
      } else if (a.name() == "pads") {
        if (spatial >= 0 ? len != 2 * spatial : len % 2 != 0) return false;
        for (int64_t v : a.ints())
          if (v < 0) return false;
      }
    }
    if (x >= 0)
      for (const auto& out : n.output()) ranks[out] = x;
  }
  return true;
}

// Declared types for intermediate values from libonnx's shape inference, for
// models whose opsets it knows (ai.onnx <= 17). Failures only mean fewer
// declared types: hepml's own operator table infers the rest.
void AddOnnxShapeInference(onnx::ModelProto& mp, Graph& graph) {
  if (!SafeForOnnxConvPoolInference(mp.graph(), {})) return;
  // libonnx's inference functions trust what its checker verifies (required
  // attributes present, attribute types, arity): a Scan without its body
  // segfaulted in ScanInferenceFunction. Models the checker refuses skip
  // the pass.
  try {
    onnx::checker::check_model(mp);
  } catch (const std::exception&) {
    return;
  }
  try {
    onnx::ShapeInferenceOptions options{/*check_type=*/false, /*error_mode=*/0, /*enable_data_propagation=*/false};
    onnx::shape_inference::InferShapes(mp, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception&) {
    return;
  }
  std::unordered_map<std::string, bool> known;
  for (const ValueInfo& vi : graph.value_info) known[vi.name] = true;
  for (const auto& vi : mp.graph().value_info()) {
    if (known.count(vi.name()) || !vi.has_type()) continue;
    ValueInfo out;
    out.name = vi.name();
    out.type = TypeFromProto(vi.type());
    graph.value_info.push_back(std::move(out));
  }
}

absl::StatusOr<Model> Import(onnx::ModelProto& mp, const ImportOptions& options, const std::string& what) {
  auto fail = [&](const absl::Status& st) {
    return absl::Status(st.code(), absl::StrCat(what, ": ", st.message()));
  };
  if (!mp.has_graph()) return fail(absl::InvalidArgumentError("not an ONNX model (no graph)"));
  if (mp.ir_version() <= 0) return fail(absl::InvalidArgumentError("not an ONNX model (no ir_version)"));
  Model model;
  model.ir_version = mp.ir_version();
  model.producer_name = mp.producer_name();
  model.producer_version = mp.producer_version();
  model.domain = mp.domain();
  model.model_version = mp.model_version();
  model.doc = mp.doc_string();
  for (const auto& kv : mp.metadata_props()) model.metadata[kv.key()] = kv.value();
  std::set<std::string> function_domains;
  for (const auto& f : mp.functions()) function_domains.insert(f.domain());
  for (const auto& op : mp.opset_import()) {
    std::string domain = op.domain() == "ai.onnx" ? "" : op.domain();
    if (!IsKnownDomain(domain) && !function_domains.count(domain)) {
      return fail(absl::InvalidArgumentError(absl::StrCat("unknown operator domain '", op.domain(), "'")));
    }
    if (IsKnownDomain(domain) && (op.version() < 1 || op.version() > MaxOpsetOf(domain))) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
          "opset ", op.version(), " of domain '", domain.empty() ? "ai.onnx" : domain,
          "' is not supported (hepml reads 1 to ", MaxOpsetOf(domain), ")")));
    }
    model.opset_imports[domain] = op.version();
  }
  if (model.opset_imports.empty()) {
    // IR version 2 models may omit opset_import; ONNX then means opset 1.
    model.opset_imports[""] = 1;
  }
  auto converted = Converter(model.opset_imports, options.external_data_dir, &mp).ConvertGraph(mp.graph());
  if (!converted.ok()) return fail(converted.status());
  model.graph = std::move(*converted);
  absl::Status st = VerifyAndSortGraph(model.graph);
  if (!st.ok()) return fail(st);
  bool libonnx_knows = model.OpsetOf("") <= 17;
  for (const auto& [domain, version] : model.opset_imports) {
    if (!(domain.empty() || domain == "ai.onnx.ml" || domain == "ai.onnx.preview.training")) libonnx_knows = false;
  }
  if (options.onnx_shape_inference && libonnx_knows) AddOnnxShapeInference(mp, model.graph);
  return model;
}

bool ParseModel(std::string_view bytes, onnx::ModelProto* mp) {
  google::protobuf::io::CodedInputStream stream(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                static_cast<int>(bytes.size()));
  stream.SetTotalBytesLimit(std::numeric_limits<int>::max());
  return mp->ParseFromCodedStream(&stream) && stream.ConsumedEntireMessage();
}

}  // namespace

absl::StatusOr<Model> LoadModel(const std::string& path, const ImportOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  if (fs::is_directory(path, ec)) return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory"));
  auto size = fs::file_size(path, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(path, ": ", ec.message()));
  if (size >= (uint64_t{1} << 31)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", size, " bytes; ONNX files over 2 GiB must keep weights as external data"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (!in) return absl::DataLossError(absl::StrCat(path, ": short read"));
  ImportOptions opts = options;
  if (opts.external_data_dir.empty()) {
    opts.external_data_dir = fs::absolute(path, ec).parent_path().string();
  }
  onnx::ModelProto mp;
  if (!ParseModel(bytes, &mp)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a valid ONNX model (protobuf parse failed; truncated or not ONNX)"));
  }
  return Import(mp, opts, path);
}

absl::StatusOr<Model> LoadModelFromBytes(std::string_view bytes, const ImportOptions& options) {
  onnx::ModelProto mp;
  if (!ParseModel(bytes, &mp)) {
    return absl::InvalidArgumentError("model bytes: not a valid ONNX model (protobuf parse failed; truncated or not ONNX)");
  }
  return Import(mp, options, "model bytes");
}

}  // namespace hepml
