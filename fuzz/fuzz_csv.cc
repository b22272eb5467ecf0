// CSV bytes through the dataset reader (header, type inference, every batch).
#include "dataset_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hepml::fuzz::FuzzDataset(data, size, hepml::data::Format::kCsv, "mem://input.csv");
  return 0;
}
