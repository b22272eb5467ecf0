// Shared pieces of the `hepml` Python module: numpy <-> Tensor conversion,
// absl::Status -> Python exceptions, and the registration of each part.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "hepml/session.h"
#include "hepml/status.h"
#include "hepml/tensor.h"

namespace hepml::python {

namespace py = pybind11;

// numpy dtype for a hepml dtype; false for types numpy has no equal of.
bool NumpyDType(DType dtype, py::dtype* out);
// The numpy name of a dtype ("float32"), else hepml's name.
std::string NumpyName(DType dtype);

// absl::Status -> the Python exception a user expects: ValueError for
// INVALID_ARGUMENT/OUT_OF_RANGE, FileNotFoundError for NOT_FOUND,
// NotImplementedError for UNIMPLEMENTED, TimeoutError for DEADLINE_EXCEEDED,
// ConnectionError for UNAVAILABLE, RuntimeError otherwise; the message is the
// C++ one.
[[noreturn]] void Raise(const absl::Status& status);
template <typename T>
T Unwrap(absl::StatusOr<T> value) {
  if (!value.ok()) Raise(value.status());
  return std::move(*value);
}
inline void Check(const absl::Status& status) {
  if (!status.ok()) Raise(status);
}
// f() with the GIL released; the result is raised (Unwrap/Check) after the
// GIL is back, since setting a Python error needs it.
template <typename F>
auto WithoutGil(F&& f) {
  py::gil_scoped_release release;
  return f();
}

// {"name", "dtype", "shape", "kind"} of a model input or output.
py::dict InfoDict(const TensorInfo& info);
py::list InfoList(const std::vector<TensorInfo>& infos);

// A Tensor over the array's memory (no copy), holding a reference to the
// array. With `info`, the dtype must be the input's; the array must be
// C-contiguous in native byte order. TypeError/ValueError name `name`.
Tensor WrapArray(const std::string& name, const TensorInfo* info, const py::array& array);
// dict[str, ndarray] -> named Tensors checked against `inputs` (see WrapArray).
Session::NamedTensors WrapInputs(const py::dict& inputs, const std::vector<TensorInfo>& infos);
// A numpy array over the Tensor's buffer (no copy); read-only unless
// `writeable` (a buffer nothing else shares).
py::array ToArray(Tensor t, bool writeable = false);

void RegisterSession(py::module_& m);
void RegisterRemoteSession(py::module_& m);
void RegisterCompiler(py::module_& m);
void RegisterRegistry(py::module_& m);
void RegisterData(py::module_& m);

}  // namespace hepml::python
