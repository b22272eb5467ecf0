// ROOT file bytes (TFile, directories, TTree and its streamer info, baskets
// in every compression) through the dataset reader.
#include "dataset_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hepml::fuzz::FuzzDataset(data, size, hepml::data::Format::kRoot, "mem://input.root");
  return 0;
}
