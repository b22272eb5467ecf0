// NumPy bytes: .npy through ParseNpy, .npz (a zip, "PK" first) through
// ParseNpz, and either through the dataset reader.
#include "common/npy.h"
#include "dataset_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bool npz = bytes.substr(0, 2) == "PK";
  if (npz) {
    (void)hepml::ParseNpz(bytes, "input.npz");
    hepml::fuzz::FuzzDataset(data, size, hepml::data::Format::kNpz, "mem://input.npz");
  } else {
    (void)hepml::ParseNpy(bytes, "input.npy");
    hepml::fuzz::FuzzDataset(data, size, hepml::data::Format::kNpy, "mem://input.npy");
  }
  return 0;
}
