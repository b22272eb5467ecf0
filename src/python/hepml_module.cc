// The `hepml` Python module: hepml::Session over numpy arrays.
//
// Inputs: an array whose dtype is the model input's and whose memory is
// C-contiguous in native byte order is passed to the Session as it is (no
// copy, kept alive for the call); any other dtype, a non-contiguous array or
// a swapped byte order is refused with TypeError/ValueError naming the input
// and what to do, so no data is ever reinterpreted or silently converted.
// Outputs: numpy arrays over the Session's output buffers (no copy), marked
// read-only because an output may share memory with the model's constants.
// Run releases the GIL; one Session may be used from many Python threads.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hepml/session.h"

namespace py = pybind11;

namespace hepml {
namespace {

// numpy dtype for a hepml dtype; none for types numpy has no equal of.
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

// absl::Status -> the Python exception a user expects.
[[noreturn]] void Raise(const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      throw py::value_error(message);
    case absl::StatusCode::kNotFound: {
      PyErr_SetString(PyExc_FileNotFoundError, message.c_str());
      throw py::error_already_set();
    }
    case absl::StatusCode::kUnimplemented: {
      PyErr_SetString(PyExc_NotImplementedError, message.c_str());
      throw py::error_already_set();
    }
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

// A Tensor over the array's memory, holding a reference to the array.
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

py::array ToArray(Tensor t) {
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
  // Read-only: the buffer may be one of the model's constants.
  py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return out;
}

class PySession {
 public:
  PySession(const std::string& path, int num_threads, bool optimize, const std::string& precision,
            const std::vector<std::string>& disabled_passes) {
    SessionOptions options;
    options.num_threads = num_threads;
    options.optimize = optimize;
    options.disabled_passes.insert(disabled_passes.begin(), disabled_passes.end());
    auto p = ParsePrecision(precision);
    if (!p.ok()) Raise(p.status());
    options.precision = *p;
    absl::StatusOr<std::unique_ptr<Session>> session;
    {
      py::gil_scoped_release release;
      session = Session::Create(path, options);
    }
    if (!session.ok()) Raise(session.status());
    session_ = std::move(*session);
  }

  py::list Inputs() const {
    py::list out;
    for (const TensorInfo& t : session_->inputs()) out.append(InfoDict(t));
    return out;
  }
  py::list Outputs() const {
    py::list out;
    for (const TensorInfo& t : session_->outputs()) out.append(InfoDict(t));
    return out;
  }

  py::list Run(const py::dict& inputs, const std::optional<std::vector<std::string>>& output_names) const {
    Session::NamedTensors named;
    for (const auto& [key, value] : inputs) {
      if (!py::isinstance<py::str>(key)) throw py::type_error("input names must be str");
      const std::string name = key.cast<std::string>();
      if (!py::isinstance<py::array>(value))
        throw py::type_error(absl::StrCat("input '", name, "' must be a numpy.ndarray, not ",
                                          std::string(py::str(py::type::of(value).attr("__name__")))));
      const TensorInfo* info = nullptr;
      for (const TensorInfo& t : session_->inputs())
        if (t.name == name) info = &t;
      named.emplace_back(name, WrapArray(name, info, value.cast<py::array>()));
    }
    absl::StatusOr<std::vector<Tensor>> result;
    {
      py::gil_scoped_release release;
      result = session_->Run(named, output_names.value_or(std::vector<std::string>{}));
      named.clear();  // drop the array references (under the GIL, see WrapArray)
    }
    if (!result.ok()) Raise(result.status());
    py::list out;
    for (Tensor& t : *result) out.append(ToArray(std::move(t)));
    return out;
  }

  size_t WeightBytes() const { return session_->weight_bytes(); }

 private:
  std::unique_ptr<Session> session_;
};

}  // namespace
}  // namespace hepml

PYBIND11_MODULE(hepml, m) {
  m.doc() = "hepml: run ONNX models (hepml::Session) on numpy arrays.";
  py::class_<hepml::PySession>(m, "Session", R"doc(
An ONNX model ready to run.

Session(path, num_threads=0, optimize=True, precision="fp32", disabled_passes=[])

num_threads: intra-op threads (0: one per core). precision: "fp32", "fp16" or
"bf16" (mixed precision; inputs and outputs keep their declared types).
Raises FileNotFoundError for a missing file and ValueError for a malformed
model, naming the file and the reason. A Session may be used from several
Python threads at once (run releases the GIL).
)doc")
      .def(py::init<const std::string&, int, bool, const std::string&, const std::vector<std::string>&>(),
           py::arg("path"), py::arg("num_threads") = 0, py::arg("optimize") = true, py::arg("precision") = "fp32",
           py::arg("disabled_passes") = std::vector<std::string>{})
      .def_property_readonly("inputs", &hepml::PySession::Inputs, R"doc(
The model's inputs: a list of dicts with "name", "dtype" (numpy name),
"shape" (ints; the symbol as str or None for a free dimension; None when the
rank is not declared) and "kind" ("tensor", "sequence" or "optional").
)doc")
      .def_property_readonly("outputs", &hepml::PySession::Outputs, "The model's outputs, as `inputs`.")
      .def_property_readonly("weight_bytes", &hepml::PySession::WeightBytes,
                             "Bytes the Session keeps of the model's initializers.")
      .def("run", &hepml::PySession::Run, py::arg("inputs"), py::arg("output_names") = py::none(), R"doc(
Runs the model: inputs maps input names to numpy arrays; returns the outputs
(output_names, or every output in model order) as a list of read-only numpy
arrays over hepml's buffers (copy one to modify it).

Each array must already have the input's dtype and be C-contiguous in native
byte order; it is then used in place, without a copy. Anything else raises
TypeError (wrong dtype, not an ndarray) or ValueError (not contiguous,
big-endian), naming the input. A wrong shape, an unknown or missing input
raise ValueError with the model's message.
)doc");
}
