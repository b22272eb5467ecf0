// `hepml run MODEL.onnx --data URL... --map INPUT=COL,... --out FILE.npy`:
// batch inference over a dataset (src/cli/run_data.cc).
#pragma once

#include <string>
#include <vector>

namespace hepml::cli {

struct RunDataArgs {
  std::string model;
  std::vector<std::string> data;  // URLs, one dataset
  std::string tree;
  std::string format = "auto";
  std::vector<std::string> maps;  // INPUT=COL[,COL...]
  std::vector<std::string> pads;  // INPUT=LEN
  int64_t batch_size = 1024;
  std::string out;                // FILE.npy (one output) or a stem (several)
  std::string shard;              // "I/N", empty: everything
  bool resume = false;
  // Seconds between checkpoints (fsync of the outputs, then the progress
  // file); 0: after every batch.
  double checkpoint_seconds = 1.0;
  int threads = 1;
  std::string precision = "fp32";
};

// Returns the process exit code (kExitOk, kExitFailure, kExitUsage).
int RunOverDataset(const RunDataArgs& args);

}  // namespace hepml::cli
