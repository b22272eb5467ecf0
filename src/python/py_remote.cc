// hepml.RemoteSession: hepml::RemoteSession (include/hepml/remote_session.h)
// over numpy arrays, with the input checks and output arrays of Session.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hepml/remote_session.h"
#include "py_common.h"

namespace hepml::python {
namespace {

template <typename Duration>
Duration Seconds(const char* what, double seconds) {
  if (!(seconds >= 0))
    throw py::value_error(absl::StrCat(what, " must be a number of seconds >= 0, not ", seconds));
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

class PyRemoteSession {
 public:
  PyRemoteSession(const std::vector<std::string>& servers, const std::string& model,
                  const std::string& model_version, int max_batch_size, double max_delay, double deadline,
                  double retry_after, const std::string& fallback_model_path, int fallback_num_threads) {
    RemoteSessionOptions options;
    options.servers = servers;
    options.model = model;
    options.model_version = model_version;
    if (max_batch_size < 0)
      throw py::value_error(absl::StrCat("max_batch_size must be >= 0, not ", max_batch_size));
    options.max_batch_size = max_batch_size;
    options.max_delay = Seconds<std::chrono::microseconds>("max_delay", max_delay);
    options.deadline = Seconds<std::chrono::milliseconds>("deadline", deadline);
    options.retry_after = Seconds<std::chrono::milliseconds>("retry_after", retry_after);
    options.fallback_model_path = fallback_model_path;
    options.fallback_options.num_threads = fallback_num_threads;
    absl::StatusOr<std::unique_ptr<RemoteSession>> remote;
    {
      py::gil_scoped_release release;
      remote = RemoteSession::Create(options);
    }
    session_ = std::shared_ptr<RemoteSession>(Unwrap(std::move(remote)));
  }

  py::list Inputs() const { return InfoList(session_->inputs()); }
  py::list Outputs() const { return InfoList(session_->outputs()); }

  py::list Run(const py::dict& inputs, const std::optional<std::vector<std::string>>& output_names) const {
    // A reference for the call, so close() from another thread cannot free
    // the session under it.
    std::shared_ptr<RemoteSession> session = session_;
    Session::NamedTensors named = WrapInputs(inputs, session->inputs());
    RemoteSession::Result result;
    {
      py::gil_scoped_release release;
      result = session->Run(named, output_names.value_or(std::vector<std::string>{}));
      named.clear();    // drop the array references (under the GIL, see WrapArray)
      session.reset();  // the last reference after a close(): destroyed without the GIL (see Close)
    }
    py::list out;
    for (Tensor& t : Unwrap(std::move(result))) out.append(ToArray(std::move(t)));
    return out;
  }

  py::dict Stats() const {
    const RemoteSessionStats s = session_->stats();
    py::dict d;
    d["calls"] = s.calls;
    d["remote"] = s.remote;
    d["fallback"] = s.fallback;
    d["failed"] = s.failed;
    d["batches"] = s.batches;
    d["mean_batch_size"] = s.mean_batch_size();
    return d;
  }

  ~PyRemoteSession() { Close(); }

  // The RemoteSession's destructor waits for its completion thread, which
  // may hold the last reference to an input array and then needs the GIL to
  // drop it: the GIL is released meanwhile.
  void Close() {
    std::shared_ptr<RemoteSession> session = std::move(session_);
    if (session == nullptr) return;
    py::gil_scoped_release release;
    session.reset();
  }
  void CheckOpen() const {
    if (session_ == nullptr) throw py::value_error("RemoteSession is closed");
  }

 private:
  std::shared_ptr<RemoteSession> session_;
};

}  // namespace

void RegisterRemoteSession(py::module_& m) {
  py::class_<PyRemoteSession>(m, "RemoteSession", R"doc(
A model run by inference servers (`hepml serve`, Triton, KServe: the Open
Inference Protocol over gRPC), with the run interface of Session.

RemoteSession(servers, model, model_version="", max_batch_size=0,
              max_delay=0.0005, deadline=10.0, retry_after=1.0,
              fallback_model_path="", fallback_num_threads=0)

servers: gRPC addresses "HOST:PORT", tried in order; a server that fails is
skipped for retry_after seconds. deadline: seconds from a run call to its
answer, all servers together. max_batch_size > 1 coalesces calls made at the
same time from several threads into one request of up to that many rows
(the first call of a batch waits at most max_delay seconds for others).
fallback_model_path: the same model as an ONNX file, run locally when no
server answers (counted in stats()["fallback"]); it also gives the
signature the servers must have.

Raises ValueError for options that cannot work (no model, no server, a
malformed address), ConnectionError when the signature has to come from a
server and none answers, RuntimeError for a server whose model has another
signature; the message names the server and the reason.
)doc")
      .def(py::init<const std::vector<std::string>&, const std::string&, const std::string&, int, double, double,
                    double, const std::string&, int>(),
           py::arg("servers"), py::arg("model"), py::arg("model_version") = "", py::arg("max_batch_size") = 0,
           py::arg("max_delay") = 0.0005, py::arg("deadline") = 10.0, py::arg("retry_after") = 1.0,
           py::arg("fallback_model_path") = "", py::arg("fallback_num_threads") = 0)
      .def_property_readonly(
          "inputs", [](const PyRemoteSession& s) { s.CheckOpen(); return s.Inputs(); },
          "The model's inputs, as Session.inputs.")
      .def_property_readonly(
          "outputs", [](const PyRemoteSession& s) { s.CheckOpen(); return s.Outputs(); },
          "The model's outputs, as Session.outputs.")
      .def(
          "run",
          [](const PyRemoteSession& s, const py::dict& inputs,
             const std::optional<std::vector<std::string>>& output_names) {
            s.CheckOpen();
            return s.Run(inputs, output_names);
          },
          py::arg("inputs"), py::arg("output_names") = py::none(), R"doc(
Runs the model on the servers (or the fallback): as Session.run, a list of
read-only numpy arrays, one per output (output_names, or every output in
signature order). Inputs are checked before anything is sent (TypeError or
ValueError naming the input). When no server answers and there is no
fallback: ConnectionError naming every server and its error, or
TimeoutError after the deadline. Releases the GIL; safe from many threads.
)doc")
      .def(
          "stats", [](const PyRemoteSession& s) { s.CheckOpen(); return s.Stats(); }, R"doc(
Counters since the RemoteSession was made: a dict with "calls", "remote"
(answered by a server), "fallback" (answered locally), "failed", "batches"
(requests a server answered) and "mean_batch_size" (remote / batches).
)doc")
      .def("close", &PyRemoteSession::Close,
           "Waits for the calls in flight and closes the connections; later calls raise ValueError.")
      .def("__enter__", [](PyRemoteSession& s) -> PyRemoteSession& { return s; }, py::return_value_policy::reference)
      .def("__exit__", [](PyRemoteSession& s, py::args) { s.Close(); });
}

}  // namespace hepml::python
