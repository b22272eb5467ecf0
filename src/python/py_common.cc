// numpy <-> Tensor conversion and Status -> exception mapping shared by the
// parts of the `hepml` Python module (see py_common.h).
#include "py_common.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace hepml::python {

bool NumpyDType(DType dtype, py::dtype* out) {
  switch (dtype) {
    case DType::kFloat32: *out = py::dtype::of<float>(); return true;
    case DType::kFloat64: *out = py::dtype::of<double>(); return true;
    case DType::kFloat16: *out = py::dtype("float16"); return true;
    case DType::kInt8: *out = py::dtype::of<int8_t>(); return true;
    case DType::kInt16: *out = py::dtype::of<int16_t>(); return true;
    case DType::kInt32: *out = py::dtype::of<int32_t>(); return true;
    case DType::kInt64: *out = py::dtype::of<int64_t>(); return true;
    case DType::kUInt8: *out = py::dtype::of<uint8_t>(); return true;
    case DType::kUInt16: *out = py::dtype::of<uint16_t>(); return true;
    case DType::kUInt32: *out = py::dtype::of<uint32_t>(); return true;
    case DType::kUInt64: *out = py::dtype::of<uint64_t>(); return true;
    case DType::kBool: *out = py::dtype::of<bool>(); return true;
    case DType::kComplex64: *out = py::dtype("complex64"); return true;
    case DType::kComplex128: *out = py::dtype("complex128"); return true;
    default: return false;
  }
}

std::string NumpyName(DType dtype) {
  py::dtype dt;
  return NumpyDType(dtype, &dt) ? std::string(py::str(dt)) : std::string(DTypeName(dtype));
}

namespace {
[[noreturn]] void RaiseAs(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}
}  // namespace

void Raise(const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      throw py::value_error(message);
    case absl::StatusCode::kNotFound: RaiseAs(PyExc_FileNotFoundError, message);
    case absl::StatusCode::kUnimplemented: RaiseAs(PyExc_NotImplementedError, message);
    case absl::StatusCode::kDeadlineExceeded: RaiseAs(PyExc_TimeoutError, message);
    case absl::StatusCode::kUnavailable: RaiseAs(PyExc_ConnectionError, message);
    default:
      throw std::runtime_error(message);
  }
}

py::dict InfoDict(const TensorInfo& info) {
  py::dict d;
  d["name"] = info.name;
  d["dtype"] = NumpyName(info.dtype);
  py::list shape;
  for (size_t i = 0; i < info.shape.size(); ++i) {
    if (info.shape[i] >= 0) shape.append(info.shape[i]);
    else if (i < info.dim_names.size() && !info.dim_names[i].empty()) shape.append(info.dim_names[i]);
    else shape.append(py::none());
  }
  d["shape"] = info.has_shape ? py::object(shape) : py::object(py::none());
  d["kind"] = info.kind;
  return d;
}

py::list InfoList(const std::vector<TensorInfo>& infos) {
  py::list out;
  for (const TensorInfo& t : infos) out.append(InfoDict(t));
  return out;
}

Tensor WrapArray(const std::string& name, const TensorInfo* info, const py::array& array) {
  if (info != nullptr) {
    py::dtype want;
    if (!NumpyDType(info->dtype, &want))
      throw py::type_error(absl::StrCat("input '", name, "': the model expects ", DTypeName(info->dtype),
                                        ", which numpy has no dtype for"));
    if (!array.dtype().is(want) && !array.dtype().equal(want))
      throw py::type_error(absl::StrCat("input '", name, "': array dtype is ", std::string(py::str(array.dtype())),
                                        ", the model expects ", NumpyName(info->dtype),
                                        " (convert with .astype(numpy.", NumpyName(info->dtype), "))"));
  }
  const char byteorder = array.dtype().attr("byteorder").cast<std::string>()[0];
  if (byteorder == '>')
    throw py::value_error(absl::StrCat("input '", name, "': array is big-endian; convert with .astype(",
                                       std::string(py::str(array.dtype().attr("newbyteorder")("="))), ")"));
  if (!(array.flags() & py::array::c_style))
    throw py::value_error(absl::StrCat("input '", name,
                                       "': array is not C-contiguous; pass numpy.ascontiguousarray(x)"));
  DType dtype = DType::kUndefined;
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt8, DType::kInt16, DType::kInt32,
                  DType::kInt64, DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64, DType::kBool,
                  DType::kComplex64, DType::kComplex128}) {
    py::dtype dt;
    if (NumpyDType(d, &dt) && array.dtype().equal(dt)) dtype = d;
  }
  if (dtype == DType::kUndefined)
    throw py::type_error(absl::StrCat("input '", name, "': numpy dtype ", std::string(py::str(array.dtype())),
                                      " is not supported"));
  Shape shape(array.shape(), array.shape() + array.ndim());
  // The array stays referenced while any Tensor sharing its memory lives;
  // the reference is dropped under the GIL, whichever thread drops it.
  auto* ref = new py::object(array);
  std::shared_ptr<void> keep(ref, [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return Tensor::Wrap(dtype, shape, const_cast<void*>(array.data()), std::move(keep));
}

Session::NamedTensors WrapInputs(const py::dict& inputs, const std::vector<TensorInfo>& infos) {
  Session::NamedTensors named;
  for (const auto& [key, value] : inputs) {
    if (!py::isinstance<py::str>(key)) throw py::type_error("input names must be str");
    const std::string name = key.cast<std::string>();
    if (!py::isinstance<py::array>(value))
      throw py::type_error(absl::StrCat("input '", name, "' must be a numpy.ndarray, not ",
                                        std::string(py::str(py::type::of(value).attr("__name__")))));
    const TensorInfo* info = nullptr;
    for (const TensorInfo& t : infos)
      if (t.name == name) info = &t;
    named.emplace_back(name, WrapArray(name, info, value.cast<py::array>()));
  }
  return named;
}

py::array ToArray(Tensor t, bool writeable) {
  py::dtype dt;
  if (!NumpyDType(t.dtype(), &dt))
    throw py::type_error(absl::StrCat("output of type ", DTypeName(t.dtype()), " has no numpy dtype"));
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t stride = static_cast<py::ssize_t>(DTypeSize(t.dtype()));
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= shape[i];
  }
  void* data = t.raw_mutable_data();
  auto* owner = new Tensor(std::move(t));
  py::capsule capsule(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  py::array out(dt, shape, strides, data, capsule);
  // Read-only by default: a model output may be one of the model's constants.
  if (!writeable) py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return out;
}

}  // namespace hepml::python
