// A framework-style user of an installed hepml: only <hepml/session.h>, linked
// through find_package(hepml) or pkg-config. Runs MODEL on a float32 input
// whose free dimensions are BATCH and whose values are
// sin(0.1 * i) for element i, and prints every output as
//   output NAME DTYPE [d0,d1,...] v0 v1 ...
// Exit 0 on success; 1 with the Status on stderr otherwise.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hepml/session.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.onnx [BATCH]\n", argv[0]);
    return 2;
  }
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 4;
  auto session = hepml::Session::Create(argv[1]);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().ToString().c_str());
    return 1;
  }
  hepml::Session::NamedTensors inputs;
  for (const hepml::TensorInfo& info : (*session)->inputs()) {
    if (info.dtype != hepml::DType::kFloat32) {
      std::fprintf(stderr, "input %s is %s, not float32\n", info.name.c_str(), hepml::DTypeName(info.dtype));
      return 1;
    }
    hepml::Shape shape;
    for (int64_t d : info.shape) shape.push_back(d < 0 ? batch : d);
    hepml::Tensor t = hepml::Tensor::Empty(hepml::DType::kFloat32, shape);
    float* data = t.mutable_data<float>();
    for (int64_t i = 0; i < t.size(); ++i) data[i] = std::sin(0.1f * static_cast<float>(i));
    inputs.emplace_back(info.name, t);
  }
  auto outputs = (*session)->Run(inputs);
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
  return 0;
}
