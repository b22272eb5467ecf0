// NumPy .npy and .npz files (format versions 1.0, 2.0 and 3.0; C order; the
// little-endian numeric dtypes, bool and fixed-width unicode strings).
// .npz archives are read when stored uncompressed or deflated.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "hepml/tensor.h"

namespace hepml {

// Errors name the file and what is wrong (bad magic, truncated data, an
// unsupported dtype such as a Python object array or Fortran order).
absl::StatusOr<Tensor> ReadNpy(const std::string& path);
absl::StatusOr<Tensor> ParseNpy(std::string_view bytes, const std::string& what);

// A .npy header: what ParseNpy checks before it reads the data.
struct NpyHeader {
  DType dtype = DType::kUndefined;  // kString for 'U' (UTF-32) arrays
  Shape shape;
  int64_t count = 0;         // elements
  size_t data_offset = 0;    // bytes from the start of the .npy to the data
  int64_t string_width = -1; // code points per string for 'U' arrays
  std::string descr;         // '<f4'
  std::string shape_text;    // '(10, 3)'
};
// Parses the magic and header dict at the start of `bytes`, which may hold
// only the beginning of the file (at least the header).
absl::StatusOr<NpyHeader> ParseNpyHeader(std::string_view bytes, const std::string& what);
// Writes atomically (temporary file, then rename).
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);
std::string SerializeNpy(const Tensor& tensor);

// The arrays of an .npz archive, by name without the ".npy" suffix, in order.
absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadNpz(const std::string& path);
// The same from the archive's bytes; `what` names it in errors. A declared
// entry size beyond what its compressed bytes can expand to is an error.
absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> ParseNpz(std::string_view bytes,
                                                                    const std::string& what);

}  // namespace hepml
