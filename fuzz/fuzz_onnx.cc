// ONNX model bytes through Session::CreateFromBytes: protobuf parsing, the
// importer (initializers, attributes, subgraphs, opsets), libonnx's checker
// and shape inference, the graph passes (constant folding runs kernels) and
// memory planning. Errors are fine; crashes and unbounded allocations are
// findings.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <string>

#include "hepml/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  hepml::SessionOptions options;
  auto session = hepml::Session::CreateFromBytes(bytes, options);
  // HEPML_FUZZ_VERBOSE=1: say what became of each input (replaying seeds).
  if (std::getenv("HEPML_FUZZ_VERBOSE") != nullptr)
    std::fprintf(stderr, "%s\n", session.ok() ? "session created" : std::string(session.status().message()).c_str());
  if (session.ok()) {
    (void)(*session)->inputs();
    (void)(*session)->outputs();
  }
  return 0;
}
