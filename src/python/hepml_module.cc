// The `hepml` Python module: hepml::Session over numpy arrays, plus
// RemoteSession (py_remote.cc), compile (py_compiler.cc), Registry
// (py_registry.cc) and open_dataset (py_data.cc).
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

#include "hepml/session.h"
#include "py_common.h"

namespace hepml::python {
namespace {

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

  py::list Inputs() const { return InfoList(session_->inputs()); }
  py::list Outputs() const { return InfoList(session_->outputs()); }

  py::list Run(const py::dict& inputs, const std::optional<std::vector<std::string>>& output_names) const {
    Session::NamedTensors named = WrapInputs(inputs, session_->inputs());
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

void RegisterSession(py::module_& m) {
  py::class_<PySession>(m, "Session", R"doc(
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
      .def_property_readonly("inputs", &PySession::Inputs, R"doc(
The model's inputs: a list of dicts with "name", "dtype" (numpy name),
"shape" (ints; the symbol as str or None for a free dimension; None when the
rank is not declared) and "kind" ("tensor", "sequence" or "optional").
)doc")
      .def_property_readonly("outputs", &PySession::Outputs, "The model's outputs, as `inputs`.")
      .def_property_readonly("weight_bytes", &PySession::WeightBytes,
                             "Bytes the Session keeps of the model's initializers.")
      .def("run", &PySession::Run, py::arg("inputs"), py::arg("output_names") = py::none(), R"doc(
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

}  // namespace hepml::python

PYBIND11_MODULE(hepml, m) {
  m.doc() = "hepml: run ONNX models locally or on inference servers, compile them to C++, keep them in a registry and read datasets, over numpy arrays.";
  hepml::python::RegisterSession(m);
#ifdef HEPML_PYTHON_SERVICES
  hepml::python::RegisterRemoteSession(m);
  hepml::python::RegisterCompiler(m);
  hepml::python::RegisterRegistry(m);
  hepml::python::RegisterData(m);
#endif
}
