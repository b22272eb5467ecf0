// RNTuple reader behind the ROOT source (rntuple.cc).
#pragma once

#include <memory>
#include <string>

#include "data/source.h"

namespace hepml::data {

// Opens the RNTuple whose anchor (the ROOT::RNTuple object's streamed
// bytes) is `anchor`. `file` must outlive the source.
absl::StatusOr<std::unique_ptr<Source>> OpenRNTuple(RandomAccessFile* file, const std::string& anchor,
                                                    const std::string& name, const DatasetOptions& options);

}  // namespace hepml::data
