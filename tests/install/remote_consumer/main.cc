// A framework-style user of the installed hepml::remote: runs MODEL on the
// servers given (in order), with FALLBACK.onnx as the local fallback ("-"
// for none), on the same input as tests/install/consumer (sin(0.1 * i), free
// dimensions BATCH), through RunAsync's future. Prints every output as
//   output NAME DTYPE [d0,d1,...] v0 v1 ...
// then "stats remote=R fallback=F". Exit 0 on success; 1 with the Status on
// stderr otherwise.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hepml/remote_session.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL FALLBACK.onnx|- BATCH HOST:PORT [HOST:PORT...]\n", argv[0]);
    return 2;
  }
  hepml::RemoteSessionOptions options;
  options.model = argv[1];
  if (std::string(argv[2]) != "-") options.fallback_model_path = argv[2];
  const int64_t batch = std::atoll(argv[3]);
  for (int i = 4; i < argc; ++i) options.servers.push_back(argv[i]);
  auto session = hepml::RemoteSession::Create(options);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().ToString().c_str());
    return 1;
  }
  hepml::Session::NamedTensors inputs;
  for (const hepml::TensorInfo& info : (*session)->inputs()) {
    hepml::Shape shape;
    for (int64_t d : info.shape) shape.push_back(d < 0 ? batch : d);
    hepml::Tensor t = hepml::Tensor::Empty(hepml::DType::kFloat32, shape);
    float* data = t.mutable_data<float>();
    for (int64_t i = 0; i < t.size(); ++i) data[i] = std::sin(0.1f * static_cast<float>(i));
    inputs.emplace_back(info.name, t);
  }
  auto outputs = (*session)->RunAsync(inputs).get();
  if (!outputs.ok()) {
    std::fprintf(stderr, "%s\n", outputs.status().ToString().c_str());
    return 1;
  }
  for (size_t k = 0; k < outputs->size(); ++k) {
    const hepml::Tensor& out = (*outputs)[k];
    std::printf("output %s %s %s", (*session)->outputs()[k].name.c_str(), hepml::DTypeName(out.dtype()),
                hepml::ShapeToString(out.shape()).c_str());
    if (out.dtype() == hepml::DType::kFloat32)
      for (int64_t i = 0; i < out.size(); ++i) std::printf(" %.9g", out.data<float>()[i]);
    std::printf("\n");
  }
  auto stats = (*session)->stats();
  std::printf("stats remote=%llu fallback=%llu\n", static_cast<unsigned long long>(stats.remote),
              static_cast<unsigned long long>(stats.fallback));
  return 0;
}
