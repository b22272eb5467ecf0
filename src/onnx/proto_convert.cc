#include "onnx/proto_convert.h"

#include <filesystem>
#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "onnx/onnx-data_pb.h"
#include "onnx/onnx_pb.h"

namespace hepml {
namespace {

namespace fs = std::filesystem;

// Refuses tensors whose element count overflows or exceeds what fits in memory.
absl::StatusOr<Shape> CheckedShape(const onnx::TensorProto& proto) {
  Shape shape;
  int64_t n = 1;
  for (int64_t d : proto.dims()) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has negative dimension ", d));
    }
    if (d != 0 && n > (int64_t{1} << 46) / d) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' is too large"));
    }
    n *= d;
    shape.push_back(d);
  }
  return shape;
}

absl::StatusOr<std::string> ReadExternalData(const onnx::TensorProto& proto, const std::string& base_dir,
                                             size_t expected_bytes) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : proto.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::strtoll(kv.value().c_str(), nullptr, 10);
    else if (kv.key() == "length") length = std::strtoll(kv.value().c_str(), nullptr, 10);
  }
  const std::string what = absl::StrCat("external data of tensor '", proto.name(), "'");
  if (location.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no location"));
  if (base_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": model was loaded from bytes; no folder to read '", location, "' from"));
  }
  fs::path rel(location);
  if (rel.is_absolute()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": location '", location, "' must be relative to the model"));
  }
  for (const auto& part : rel) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(what, ": location '", location, "' leaves the model's folder"));
    }
  }
  fs::path path = fs::path(base_dir) / rel;
  std::error_code ec;
  auto file_size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(what, ": cannot open '", path.string(), "': ", ec.message()));
  if (offset < 0) return absl::InvalidArgumentError(absl::StrCat(what, ": negative offset"));
  if (length < 0) length = static_cast<int64_t>(expected_bytes);
  if (static_cast<size_t>(length) != expected_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": length ", length, " but shape and type need ", expected_bytes, " bytes"));
  }
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > file_size) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", path.string(), "' has ", file_size,
                                                   " bytes, fewer than offset ", offset, " + length ", length));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, ": cannot open '", path.string(), "'"));
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  if (!in) return absl::DataLossError(absl::StrCat(what, ": short read from '", path.string(), "'"));
  return bytes;
}

template <typename Dst, typename Src>
absl::Status CopyTyped(const onnx::TensorProto& proto, const Src& field, Tensor& t, int per_element = 1) {
  if (static_cast<int64_t>(field.size()) != t.size() * per_element) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has ", field.size(),
                                                   " values for shape ", ShapeToString(t.shape())));
  }
  Dst* out = t.mutable_data<Dst>();
  for (int64_t i = 0; i < t.size(); ++i) {
    if constexpr (std::is_same_v<Dst, Float16> || std::is_same_v<Dst, BFloat16>) {
      out[i] = Dst::FromBits(static_cast<uint16_t>(field.Get(static_cast<int>(i))));
    } else if constexpr (std::is_same_v<Dst, std::complex<float>> || std::is_same_v<Dst, std::complex<double>>) {
      out[i] = Dst(field.Get(static_cast<int>(2 * i)), field.Get(static_cast<int>(2 * i + 1)));
    } else {
      out[i] = static_cast<Dst>(field.Get(static_cast<int>(i)));
    }
  }
  return absl::OkStatus();
}

// Bytes a tensor's values take in raw_data / external data: int4 and uint4
// pack two per byte (an odd count pads the last high nibble), everything else
// is stored as in memory.
size_t StoredBytes(const Tensor& t) {
  if (Is4BitInt(t.dtype())) return static_cast<size_t>((t.size() + 1) / 2);
  return t.nbytes();
}

// Unpacks 4-bit values, low nibble first, into one byte each: int4 sign-extended
// to int8, uint4 as uint8. `byte(i)` gives packed byte i.
template <typename ByteAt>
void Unpack4Bit(ByteAt byte, Tensor& t) {
  const bool is_signed = t.dtype() == DType::kInt4;
  auto* out = static_cast<uint8_t*>(t.raw_mutable_data());
  for (int64_t i = 0; i < t.size(); ++i) {
    uint8_t nibble = static_cast<uint8_t>((byte(i / 2) >> ((i % 2) * 4)) & 0x0f);
    if (is_signed && (nibble & 0x08)) nibble |= 0xf0;
    out[i] = nibble;
  }
}

}  // namespace

std::string Pack4Bit(const Tensor& t) {
  std::string packed((t.size() + 1) / 2, '\0');
  const auto* in = static_cast<const uint8_t*>(t.raw_data());
  for (int64_t i = 0; i < t.size(); ++i) {
    packed[i / 2] = static_cast<char>(static_cast<uint8_t>(packed[i / 2]) | ((in[i] & 0x0f) << ((i % 2) * 4)));
  }
  return packed;
}

absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& base_dir) {
  if (!IsKnownDType(proto.data_type())) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has unsupported data type ",
                                                   proto.data_type()));
  }
  DType dtype = static_cast<DType>(proto.data_type());
  auto shape = CheckedShape(proto);
  if (!shape.ok()) return shape.status();
  const bool external = proto.data_location() == onnx::TensorProto::EXTERNAL;
  // Before allocating: the shape must not ask for more elements than the
  // proto holds values for (each encoding takes at least one byte or one
  // repeated entry per two elements), so a few bytes of model cannot
  // allocate gigabytes. External data is checked against its file below.
  const int64_t n = NumElements(*shape);
  if (!external && n > 0) {
    uint64_t held = proto.raw_data().size() + static_cast<uint64_t>(proto.float_data_size()) +
                    static_cast<uint64_t>(proto.double_data_size()) + static_cast<uint64_t>(proto.int32_data_size()) +
                    static_cast<uint64_t>(proto.int64_data_size()) + static_cast<uint64_t>(proto.uint64_data_size()) +
                    static_cast<uint64_t>(proto.string_data_size());
    // (With some slack: a small mismatch gets the precise message below.)
    if (static_cast<uint64_t>(n) > 2 * held + 4096) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has shape ", ShapeToString(*shape),
                                                     " (", n, " elements) but holds data for at most ", 2 * held));
    }
  }
  std::string external_bytes;
  if (external && dtype != DType::kString) {
    size_t stored = Is4BitInt(dtype) ? static_cast<size_t>((n + 1) / 2) : static_cast<size_t>(n) * DTypeSize(dtype);
    auto bytes = ReadExternalData(proto, base_dir, stored);
    if (!bytes.ok()) return bytes.status();
    external_bytes = std::move(*bytes);
  }
  Tensor t = Tensor::Empty(dtype, *shape);
  if (dtype == DType::kString) {
    if (proto.string_data_size() != t.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has ", proto.string_data_size(),
                                                     " strings for shape ", ShapeToString(t.shape())));
    }
    auto* out = t.mutable_data<std::string>();
    for (int64_t i = 0; i < t.size(); ++i) out[i] = proto.string_data(static_cast<int>(i));
    return t;
  }
  if (external || proto.has_raw_data()) {
    const std::string* raw = external ? &external_bytes : &proto.raw_data();
    if (raw->size() != StoredBytes(t)) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has ", raw->size(),
                                                     " bytes of raw data; shape ", ShapeToString(t.shape()),
                                                     " of ", DTypeName(dtype), " needs ", StoredBytes(t)));
    }
    if (Is4BitInt(dtype)) {
      Unpack4Bit([raw](int64_t b) { return static_cast<uint8_t>((*raw)[static_cast<size_t>(b)]); }, t);
    } else if (!raw->empty()) {
      std::memcpy(t.raw_mutable_data(), raw->data(), raw->size());
    }
    return t;
  }
  absl::Status st;
  switch (dtype) {
    case DType::kFloat32: st = CopyTyped<float>(proto, proto.float_data(), t); break;
    case DType::kFloat64: st = CopyTyped<double>(proto, proto.double_data(), t); break;
    case DType::kInt64: st = CopyTyped<int64_t>(proto, proto.int64_data(), t); break;
    case DType::kInt32: st = CopyTyped<int32_t>(proto, proto.int32_data(), t); break;
    case DType::kInt16: st = CopyTyped<int16_t>(proto, proto.int32_data(), t); break;
    case DType::kInt8: st = CopyTyped<int8_t>(proto, proto.int32_data(), t); break;
    case DType::kUInt16: st = CopyTyped<uint16_t>(proto, proto.int32_data(), t); break;
    case DType::kUInt8: st = CopyTyped<uint8_t>(proto, proto.int32_data(), t); break;
    case DType::kBool: st = CopyTyped<bool>(proto, proto.int32_data(), t); break;
    case DType::kFloat16: st = CopyTyped<Float16>(proto, proto.int32_data(), t); break;
    case DType::kBFloat16: st = CopyTyped<BFloat16>(proto, proto.int32_data(), t); break;
    case DType::kUInt32: st = CopyTyped<uint32_t>(proto, proto.uint64_data(), t); break;
    case DType::kUInt64: st = CopyTyped<uint64_t>(proto, proto.uint64_data(), t); break;
    case DType::kComplex64: st = CopyTyped<std::complex<float>>(proto, proto.float_data(), t, 2); break;
    case DType::kComplex128: st = CopyTyped<std::complex<double>>(proto, proto.double_data(), t, 2); break;
    // float8: one code per int32 (the value's bits, as onnx.helper.make_tensor writes them).
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ: st = CopyTyped<uint8_t>(proto, proto.int32_data(), t); break;
    // int4/uint4: int32_data holds the packed bytes, two values per entry.
    case DType::kInt4:
    case DType::kUInt4: {
      const auto& field = proto.int32_data();
      if (static_cast<size_t>(field.size()) != StoredBytes(t)) {
        st = absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has ", field.size(),
                                                     " packed int32_data entries for shape ", ShapeToString(t.shape()),
                                                     " of ", DTypeName(dtype), "; needs ", StoredBytes(t)));
        break;
      }
      Unpack4Bit([&field](int64_t b) { return static_cast<uint8_t>(field.Get(static_cast<int>(b))); }, t);
      break;
    }
    default: st = absl::InvalidArgumentError("unsupported tensor type");
  }
  if (!st.ok()) return st;
  return t;
}

void TensorToProto(const Tensor& tensor, const std::string& name, onnx::TensorProto* proto) {
  proto->Clear();
  proto->set_name(name);
  proto->set_data_type(static_cast<int32_t>(tensor.dtype()));
  for (int64_t d : tensor.shape()) proto->add_dims(d);
  if (tensor.dtype() == DType::kString) {
    const auto* s = tensor.data<std::string>();
    for (int64_t i = 0; i < tensor.size(); ++i) proto->add_string_data(s[i]);
  } else if (Is4BitInt(tensor.dtype())) {
    proto->set_raw_data(Pack4Bit(tensor));
  } else {
    proto->set_raw_data(tensor.raw_data(), tensor.nbytes());
  }
}

TypeInfo TypeFromProto(const onnx::TypeProto& proto) {
  TypeInfo t;
  switch (proto.value_case()) {
    case onnx::TypeProto::kTensorType: {
      t.kind = TypeInfo::Kind::kTensor;
      const auto& tt = proto.tensor_type();
      t.dtype = IsKnownDType(tt.elem_type()) ? static_cast<DType>(tt.elem_type()) : DType::kUndefined;
      if (tt.has_shape()) {
        t.has_shape = true;
        for (const auto& d : tt.shape().dim()) {
          Dim dim;
          if (d.has_dim_value()) dim.value = d.dim_value();
          else if (d.has_dim_param()) dim.param = d.dim_param();
          t.shape.push_back(dim);
        }
      }
      break;
    }
    case onnx::TypeProto::kSequenceType:
      t.kind = TypeInfo::Kind::kSequence;
      t.element = std::make_shared<TypeInfo>(TypeFromProto(proto.sequence_type().elem_type()));
      break;
    case onnx::TypeProto::kOptionalType:
      t.kind = TypeInfo::Kind::kOptional;
      t.element = std::make_shared<TypeInfo>(TypeFromProto(proto.optional_type().elem_type()));
      break;
    case onnx::TypeProto::kMapType:
      t.kind = TypeInfo::Kind::kMap;
      break;
    default:
      break;
  }
  return t;
}

namespace {

absl::StatusOr<Value> ValueFromSequence(const onnx::SequenceProto& seq, const std::string& base_dir) {
  std::vector<Tensor> items;
  DType elem = DType::kUndefined;
  if (seq.elem_type() != onnx::SequenceProto::TENSOR && seq.elem_type() != onnx::SequenceProto::UNDEFINED) {
    return absl::UnimplementedError("sequences of non-tensors are not supported");
  }
  for (const auto& tp : seq.tensor_values()) {
    auto t = TensorFromProto(tp, base_dir);
    if (!t.ok()) return t.status();
    elem = t->dtype();
    items.push_back(std::move(*t));
  }
  return Value::FromSequence(std::move(items), elem);
}

template <typename Msg>
absl::Status ParseFile(const std::string& path, Msg* msg) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!msg->ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a valid ", msg->GetTypeName()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Value> ReadValueFile(const std::string& path, const TypeInfo* declared) {
  std::string base_dir = fs::path(path).parent_path().string();
  TypeInfo::Kind kind = declared ? declared->kind : TypeInfo::Kind::kTensor;
  if (kind == TypeInfo::Kind::kSequence) {
    onnx::SequenceProto seq;
    absl::Status st = ParseFile(path, &seq);
    if (!st.ok()) return st;
    auto v = ValueFromSequence(seq, base_dir);
    if (v.ok() && declared->element && declared->element->kind == TypeInfo::Kind::kTensor) {
      v->element_dtype = declared->element->dtype;
    }
    return v;
  }
  if (kind == TypeInfo::Kind::kOptional) {
    onnx::OptionalProto opt;
    absl::Status st = ParseFile(path, &opt);
    if (!st.ok()) return st;
    const bool elem_is_seq = declared->element && declared->element->kind == TypeInfo::Kind::kSequence;
    if (opt.has_tensor_value()) {
      auto t = TensorFromProto(opt.tensor_value(), base_dir);
      if (!t.ok()) return t.status();
      return Value::FromTensor(std::move(*t));
    }
    if (opt.has_sequence_value()) return ValueFromSequence(opt.sequence_value(), base_dir);
    DType elem = DType::kUndefined;
    if (declared->element) {
      const TypeInfo* e = declared->element.get();
      if (e->kind == TypeInfo::Kind::kSequence && e->element) e = e->element.get();
      elem = e->dtype;
    }
    return Value::None(elem, elem_is_seq);
  }
  onnx::TensorProto tp;
  absl::Status st = ParseFile(path, &tp);
  if (!st.ok()) return st;
  auto t = TensorFromProto(tp, base_dir);
  if (!t.ok()) return t.status();
  // ONNX before 1.14 wrote bfloat16 test data as uint16 holding the same bits.
  if (declared && declared->kind == TypeInfo::Kind::kTensor && declared->dtype == DType::kBFloat16 &&
      t->dtype() == DType::kUInt16) {
    auto holder = std::make_shared<Tensor>(*t);
    return Value::FromTensor(Tensor::Wrap(DType::kBFloat16, holder->shape(), holder->raw_mutable_data(), holder));
  }
  return Value::FromTensor(std::move(*t));
}

}  // namespace hepml
