// ROOT files holding an RNTuple (anchor, header, footer, page lists, pages).
// The same entry point as fuzz_root; its own corpus of RNTuple files keeps
// the mutations on the RNTuple reader.
#include "dataset_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hepml::fuzz::FuzzDataset(data, size, hepml::data::Format::kRoot, "mem://input.root");
  return 0;
}
