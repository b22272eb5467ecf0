// Datasets: columnar reads of ROOT TTrees and RNTuples, NumPy .npy/.npz, CSV and HDF5
// files, local (`file://` or a plain path) or remote through a pluggable
// positional-read backend (`root://` XRootD).
//
//   auto ds = hepml::data::Dataset::Open({"file:///data/run1.root"}, {.tree = "events"});
//   hepml::data::BatchOptions opts;
//   opts.batch_size = 4096;
//   opts.columns = {"pt", "eta"};
//   auto it = (*ds)->Batches(opts);
//   hepml::data::Batch batch;
//   while (true) {
//     auto more = it.Next(&batch);  // absl::StatusOr<bool>
//     if (!more.ok() || !*more) break;
//     const hepml::data::ColumnBatch* pt = batch.Find("pt");
//   }
//
// Columns are typed (hepml::DType) with a per-entry shape. A fixed column
// holds the same number of values in every entry (a scalar, or a fixed
// array such as float[3]); a jagged column holds a variable number (a ROOT
// array with a counter branch, a std::vector). Jagged columns come back as
// their flat values plus int64 offsets, or padded to a length with a mask.
//
// Errors: every function returns absl::Status / StatusOr. A truncated,
// corrupt or hostile file gives an error that names the file and what is
// wrong; allocations are bounded by the file's size and by
// DatasetOptions::max_object_bytes, never by a size read from the file alone.
//
// Read-ahead: a BatchIterator decodes the next batches on a background
// thread while the caller works on the current one
// (BatchOptions::read_ahead_batches, 1 by default; 0 reads in Next). At
// most that many decoded batches wait ahead of the caller; a read error is
// returned by Next at the batch where it happened, after the batches before
// it. Destroying the iterator (or the end of the loop) stops and joins the
// thread.
//
// Thread safety: Dataset::Read and the iterators' reads take turns on the
// dataset's files (one lock per Dataset), so a read-ahead thread and Read
// from the caller may overlap; beyond that a Dataset and an iterator are not
// synchronised: one thread uses each. An iterator must not outlive its
// Dataset.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "hepml/tensor.h"

namespace hepml::data {

// ---------------------------------------------------------------------------
// Byte access. Every reader goes through this interface, so a remote backend
// (XRootD, HTTP) plugs in by registering a scheme.

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;

  // Size of the file in bytes.
  virtual uint64_t size() const = 0;
  // The URL or path, for error messages.
  virtual const std::string& name() const = 0;

  // Reads exactly `length` bytes at `offset` into `out`. Reading past the
  // end is an OutOfRange error naming the file.
  virtual absl::Status ReadAt(uint64_t offset, uint64_t length, char* out) = 0;

  struct Range {
    uint64_t offset = 0;
    uint64_t length = 0;
    char* out = nullptr;
  };
  // Reads several ranges at once. The default calls ReadAt for each; remote
  // backends override it with one vectored request (XRootD's readv).
  virtual absl::Status ReadV(absl::Span<const Range> ranges);
};

using FileOpener =
    std::function<absl::StatusOr<std::unique_ptr<RandomAccessFile>>(const std::string& url)>;

// Opens `url`: a plain path, `file://PATH`, or `SCHEME://...` for a scheme
// registered with RegisterFileScheme. Unknown schemes are an error that says
// which schemes are available.
absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenFile(const std::string& url);
// Makes `scheme` ("root", "https", ...) open through `opener`. Thread-safe;
// a later registration replaces an earlier one.
void RegisterFileScheme(const std::string& scheme, FileOpener opener);

// ---------------------------------------------------------------------------
// Schema

enum class Format { kAuto, kRoot, kNpy, kNpz, kCsv, kHdf5 };

// "root", "npy", "npz", "csv", "hdf5" (and "auto").
const char* FormatName(Format format);
// The inverse of FormatName; an error for an unknown name.
absl::StatusOr<Format> ParseFormat(const std::string& name);
// From the URL's extension (.root, .npy, .npz, .csv/.tsv, .h5/.hdf5);
// kAuto if none matches.
Format FormatFromExtension(const std::string& url);

struct Column {
  std::string name;
  DType dtype = DType::kUndefined;
  // Per-entry shape after the jagged dimension, if any: {} for a scalar,
  // {3} for float[3]; for a jagged column, the shape of each item.
  Shape shape;
  bool jagged = false;
  // The type as the file spells it ("Float_t", "Int_t[n]", "vector<float>",
  // "<f4", "H5T_IEEE_F32LE"), for display.
  std::string source_type;
  // Stored sizes where the format knows them (ROOT: per branch); -1 if not.
  int64_t compressed_bytes = -1;
  int64_t uncompressed_bytes = -1;
};

struct Schema {
  std::vector<Column> columns;
  // Index of the column called `name`, or -1.
  int IndexOf(const std::string& name) const;
};

// ---------------------------------------------------------------------------
// Batches

struct ColumnBatch {
  std::string name;
  // Fixed column: [entries, shape...].
  // Jagged, unpadded: the flat items [total_items, shape...].
  // Jagged, padded: [entries, pad_length, shape...], unused slots zero.
  Tensor values;
  // Jagged, unpadded: int64 [entries + 1], offsets[0] == 0, item i of entry
  // e at values[offsets[e] + i]. Undefined otherwise.
  Tensor offsets;
  // Jagged, padded: bool [entries, pad_length], true where an item is
  // present. Undefined otherwise.
  Tensor mask;
};

struct Batch {
  int64_t entry_start = 0;  // global entry number of the first entry
  int64_t num_entries = 0;
  std::vector<ColumnBatch> columns;
  // The column called `name`, or nullptr.
  const ColumnBatch* Find(const std::string& name) const;
};

struct ReadOptions {
  // Columns to read, in this order; empty reads all.
  std::vector<std::string> columns;
  // 0: jagged columns as values + offsets. > 0: padded (or cut) to this many
  // items per entry, with a mask.
  int64_t pad_length = 0;
};

struct BatchOptions : ReadOptions {
  int64_t batch_size = 1024;
  // Entry range [entry_start, entry_stop); entry_stop < 0 means the end.
  int64_t entry_start = 0;
  int64_t entry_stop = -1;
  // Batches decoded ahead on a background thread (bounded: at most this many
  // decoded or being decoded beyond the one Next last returned). 0: no
  // thread, Next reads the batch itself.
  int read_ahead_batches = 1;
  // Called with each batch before Next returns it, on the read-ahead thread
  // (so the work overlaps the caller's), in entry order; it may replace the
  // batch's columns (e.g. with model inputs built from them). An error is
  // returned by Next at that batch.
  std::function<absl::Status(Batch&)> prepare;
};

struct DatasetOptions {
  Format format = Format::kAuto;
  // ROOT: the TTree or RNTuple path ("events", "dir/sub/events"); HDF5: the group
  // holding the datasets ("/" if empty). Empty for ROOT: the file's only
  // TTree (an error if there are several).
  std::string tree;
  // CSV: the field separator (',' by default; '\t' for .tsv).
  char csv_separator = 0;
  // Largest single object or basket to decompress; a larger declared size
  // is an error (a guard against decompression bombs).
  int64_t max_object_bytes = int64_t{1} << 30;
  // CSV: bytes read from the file at a time (a record longer than this
  // grows the buffer, up to max_object_bytes).
  int64_t read_buffer_bytes = int64_t{1} << 20;
  // HDF5 compounds: whether the gathering of one large batch (4 MiB or more
  // of rows) into member columns is split between the reading thread and a
  // helper thread the source keeps (the two share memory bandwidth, so more
  // threads would not pay). 0: split when the machine has two cores or
  // more; 1: the reading thread alone (a framework that keeps every core
  // busy itself); 2 or more: always split.
  int gather_threads = 0;
};

class Source;  // one file's reader (src/data/source.h)
class BatchIterator;

// Per-file facts for `hepml data info`.
struct FileInfo {
  std::string url;
  Format format = Format::kAuto;
  std::string object;       // the tree or group read
  int64_t num_entries = 0;
  uint64_t file_bytes = 0;
  // Free-form facts: ("compression", "zstd level 5"), ("root version", ...).
  std::vector<std::pair<std::string, std::string>> facts;
  // Other objects found (trees in other directories, other datasets).
  std::vector<std::string> other_objects;
};

class Dataset {
 public:
  // Opens the files as one dataset: their entries follow each other in the
  // given order; every file must have the same columns (names and types).
  static absl::StatusOr<std::unique_ptr<Dataset>> Open(
      const std::vector<std::string>& urls, const DatasetOptions& options = {});
  ~Dataset();

  const Schema& schema() const { return schema_; }
  int64_t num_entries() const { return num_entries_; }
  const std::vector<FileInfo>& files() const { return files_; }
  // The most bytes the files' readers have held at once beyond the batches
  // they returned (buffers, row indexes, members decoded whole), summed over
  // the files; -1 if a format does not keep count (ROOT, HDF5). npy/npz and
  // CSV readers keep it flat in the file's size.
  int64_t peak_reader_bytes() const;

  // Reads entries [start, stop) of the selected columns.
  absl::StatusOr<Batch> Read(int64_t start, int64_t stop, const ReadOptions& options = {});

  // Iterates batches of options.batch_size entries over the entry range.
  // Invalid options (unknown column, bad range) surface at the first Next.
  BatchIterator Batches(const BatchOptions& options);

 private:
  Dataset() = default;
  friend class BatchIterator;

  Schema schema_;
  int64_t num_entries_ = 0;
  std::vector<FileInfo> files_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<int64_t> starts_;  // global first entry of each source
  std::mutex read_mu_;           // the sources are read by one thread at a time
};

class BatchIterator {
 public:
  BatchIterator(BatchIterator&&) noexcept;
  BatchIterator& operator=(BatchIterator&&) noexcept;
  // Stops the read-ahead thread (a batch being decoded is finished and
  // dropped) and joins it.
  ~BatchIterator();

  // Fills `batch` with the next batch: true if one was read, false at the
  // end, an error if reading failed (the same error again on later calls
  // with read-ahead).
  absl::StatusOr<bool> Next(Batch* batch);

  struct Stats {
    int64_t batches_read = 0;  // decoded so far (including queued ones)
    // Most batches that were decoded or being decoded ahead of the caller
    // at one time (<= read_ahead_batches).
    int64_t max_batches_ahead = 0;
  };
  Stats stats() const;

 private:
  friend class Dataset;
  struct ReadAhead;
  BatchIterator(Dataset* dataset, BatchOptions options);
  absl::Status CheckOptions() const;
  absl::StatusOr<bool> ReadNext(Batch* batch);
  Dataset* dataset_;
  BatchOptions options_;
  int64_t next_ = 0;
  int64_t stop_ = 0;
  int64_t batches_read_ = 0;
  std::unique_ptr<ReadAhead> ahead_;
};

}  // namespace hepml::data
