// One file's reader behind hepml::data::Dataset. Each format implements
// Source; Dataset stitches several into one entry range and cuts batches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hepml/data.h"

namespace hepml::data {

// The values of one column over an entry range.
struct ColumnData {
  // Fixed: [entries, shape...]; jagged: [items, shape...].
  Tensor values;
  // Jagged only: entries + 1 offsets into values' first dimension, from 0.
  std::vector<int64_t> offsets;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual const Schema& schema() const = 0;
  virtual int64_t num_entries() const = 0;
  // REQUIRES: 0 <= column < schema().columns.size(), 0 <= start <= stop <=
  // num_entries().
  virtual absl::StatusOr<ColumnData> ReadColumn(int column, int64_t start, int64_t stop) = 0;
  virtual FileInfo Info() const = 0;
  // The most bytes this reader has held at once beyond the columns it
  // returned (buffers, indexes, members decoded whole); -1 where the format
  // does not keep count.
  virtual int64_t peak_held_bytes() const { return -1; }
};

// Format readers. Each names the file in its errors.
absl::StatusOr<std::unique_ptr<Source>> OpenRootSource(std::unique_ptr<RandomAccessFile> file,
                                                       const DatasetOptions& options);
absl::StatusOr<std::unique_ptr<Source>> OpenNpySource(std::unique_ptr<RandomAccessFile> file,
                                                      const DatasetOptions& options, bool npz);
absl::StatusOr<std::unique_ptr<Source>> OpenCsvSource(std::unique_ptr<RandomAccessFile> file,
                                                      const DatasetOptions& options);
absl::StatusOr<std::unique_ptr<Source>> OpenHdf5Source(const std::string& url,
                                                       const DatasetOptions& options);

// root:// and xroot:// URLs through the XRootD client (built in; other
// schemes come from RegisterFileScheme).
absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenXRootDFile(const std::string& url);

// A column's tensor, uninitialised (Tensor::Empty). Numeric tensors of 4 MiB
// or more are allocated on 2 MiB boundaries and marked for transparent huge
// pages (as numpy does), so filling a fresh batch costs a page fault per
// 2 MiB rather than per 4 KiB.
Tensor NewColumnTensor(DType dtype, Shape shape);
// The same for raw bytes (several columns of one batch cut from one block).
std::shared_ptr<void> AllocateBatchBytes(size_t bytes);

// Batch blocks handed back: a reader keeps the blocks of its last few
// batches and takes one again once every tensor cut from it is gone, so a
// long read reuses warm memory instead of having fresh pages zeroed by the
// kernel for every batch (a third of the time of a large compound batch).
// Holds at most `capacity` blocks; one thread uses a pool.
class BlockPool {
 public:
  explicit BlockPool(size_t capacity = 4) : capacity_(capacity) {}
  // A block of at least `bytes`: a free one of the pool's, or a new one
  // (AllocateBatchBytes) that the pool keeps in place of its oldest.
  std::shared_ptr<void> Get(size_t bytes);

 private:
  struct Entry {
    std::shared_ptr<void> block;
    size_t bytes = 0;
  };
  size_t capacity_;
  std::vector<Entry> entries_;  // oldest first
};

// Reads the whole file, refusing files over `limit` bytes.
absl::StatusOr<std::string> ReadWholeFile(RandomAccessFile* file, int64_t limit);

}  // namespace hepml::data
