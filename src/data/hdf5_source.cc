#include "absl/strings/str_cat.h"
#include "data/source.h"

namespace hepml::data {

absl::StatusOr<std::unique_ptr<Source>> OpenHdf5Source(const std::string& url,
                                                       const DatasetOptions& options) {
  return absl::UnimplementedError(absl::StrCat(url, ": HDF5 is not supported yet"));
}

}  // namespace hepml::data
