// Dataset: several files of one format as one entry range, cut into
// batches; jagged columns optionally padded.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/source.h"
#include "hepml/data.h"

namespace hepml::data {

const char* FormatName(Format format) {
  switch (format) {
    case Format::kAuto: return "auto";
    case Format::kRoot: return "root";
    case Format::kNpy: return "npy";
    case Format::kNpz: return "npz";
    case Format::kCsv: return "csv";
    case Format::kHdf5: return "hdf5";
  }
  return "auto";
}

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  for (Format f : {Format::kAuto, Format::kRoot, Format::kNpy, Format::kNpz, Format::kCsv,
                   Format::kHdf5}) {
    if (name == FormatName(f)) return f;
  }
  if (name == "h5") return Format::kHdf5;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", name, "' (root, npy, npz, csv, hdf5)"));
}

Format FormatFromExtension(const std::string& url) {
  std::string path = url;
  // Drop a query string (root://host//file.root?opt).
  size_t q = path.find('?');
  if (q != std::string::npos) path.resize(q);
  std::string lower = absl::AsciiStrToLower(path);
  if (absl::EndsWith(lower, ".root")) return Format::kRoot;
  if (absl::EndsWith(lower, ".npy")) return Format::kNpy;
  if (absl::EndsWith(lower, ".npz")) return Format::kNpz;
  if (absl::EndsWith(lower, ".csv") || absl::EndsWith(lower, ".tsv")) return Format::kCsv;
  if (absl::EndsWith(lower, ".h5") || absl::EndsWith(lower, ".hdf5") || absl::EndsWith(lower, ".he5")) {
    return Format::kHdf5;
  }
  return Format::kAuto;
}

int Schema::IndexOf(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

const ColumnBatch* Batch::Find(const std::string& name) const {
  for (const ColumnBatch& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Dataset::~Dataset() = default;

int64_t Dataset::peak_reader_bytes() const {
  int64_t total = 0;
  for (const auto& s : sources_) {
    int64_t b = s->peak_held_bytes();
    if (b < 0) return -1;
    total += b;
  }
  return total;
}

namespace {

absl::StatusOr<std::unique_ptr<Source>> OpenOne(const std::string& url, DatasetOptions options) {
  Format format = options.format;
  if (format == Format::kAuto) format = FormatFromExtension(url);
  if (format == Format::kHdf5) return OpenHdf5Source(url, options);
  auto file = OpenFile(url);
  if (!file.ok()) return file.status();
  if (format == Format::kAuto) {
    // Sniff the magic bytes.
    char magic[8] = {0};
    uint64_t n = std::min<uint64_t>((*file)->size(), 8);
    absl::Status s = (*file)->ReadAt(0, n, magic);
    if (!s.ok()) return s;
    if (n >= 4 && std::memcmp(magic, "root", 4) == 0) {
      format = Format::kRoot;
    } else if (n >= 6 && std::memcmp(magic, "\x93NUMPY", 6) == 0) {
      format = Format::kNpy;
    } else if (n >= 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0) {
      format = Format::kNpz;
    } else if (n >= 8 && std::memcmp(magic, "\x89HDF\r\n\x1a\n", 8) == 0) {
      return OpenHdf5Source(url, options);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          url, ": cannot tell the format from the name or the first bytes; pass it explicitly "
               "(root, npy, npz, csv, hdf5)"));
    }
  }
  switch (format) {
    case Format::kRoot: return OpenRootSource(std::move(*file), options);
    case Format::kNpy: return OpenNpySource(std::move(*file), options, false);
    case Format::kNpz: return OpenNpySource(std::move(*file), options, true);
    case Format::kCsv: return OpenCsvSource(std::move(*file), options);
    default: break;
  }
  return absl::InternalError("unhandled format");
}

bool SameColumn(const Column& a, const Column& b) {
  return a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.jagged == b.jagged;
}

std::string Describe(const Column& c) {
  return absl::StrCat(c.name, " ", DTypeName(c.dtype), c.jagged ? "[var]" : "",
                      c.shape.empty() ? "" : ShapeToString(c.shape));
}

// Concatenates per-source pieces of one column.
absl::StatusOr<ColumnData> Concat(const Column& col, std::vector<ColumnData>& parts) {
  if (parts.size() == 1) return std::move(parts[0]);
  ColumnData out;
  int64_t rows = 0;
  for (const ColumnData& p : parts) rows += p.values.defined() ? p.values.dim(0) : 0;
  Shape shape = parts[0].values.shape();
  shape[0] = rows;
  out.values = NewColumnTensor(col.dtype, shape);
  int64_t per_row = NumElements(col.shape);
  int64_t row = 0;
  if (col.jagged) out.offsets.push_back(0);
  for (ColumnData& p : parts) {
    int64_t r = p.values.dim(0);
    if (col.dtype == DType::kString) {
      const std::string* src = p.values.data<std::string>();
      std::string* dst = out.values.mutable_data<std::string>();
      for (int64_t i = 0; i < r * per_row; ++i) dst[row * per_row + i] = src[i];
    } else {
      size_t bytes = static_cast<size_t>(r * per_row) * DTypeSize(col.dtype);
      if (bytes) {
        std::memcpy(static_cast<char*>(out.values.raw_mutable_data()) +
                        static_cast<size_t>(row * per_row) * DTypeSize(col.dtype),
                    p.values.raw_data(), bytes);
      }
    }
    if (col.jagged) {
      int64_t base = out.offsets.back();
      for (size_t i = 1; i < p.offsets.size(); ++i) out.offsets.push_back(base + p.offsets[i]);
    }
    row += r;
  }
  return out;
}

// Pads a jagged column to `pad` items per entry with a mask.
void Pad(const Column& col, const ColumnData& data, int64_t entries, int64_t pad, ColumnBatch* out) {
  Shape shape{entries, pad};
  for (int64_t d : col.shape) shape.push_back(d);
  out->values = Tensor::Zeros(col.dtype, shape);
  out->mask = Tensor::Zeros(DType::kBool, {entries, pad});
  int64_t per_item = NumElements(col.shape);
  size_t item_bytes = static_cast<size_t>(per_item) * DTypeSize(col.dtype);
  bool* mask = out->mask.mutable_data<bool>();
  for (int64_t e = 0; e < entries; ++e) {
    int64_t a = data.offsets[e];
    int64_t n = std::min(pad, data.offsets[e + 1] - a);
    for (int64_t i = 0; i < n; ++i) mask[e * pad + i] = true;
    if (col.dtype == DType::kString) {
      const std::string* src = data.values.data<std::string>();
      std::string* dst = out->values.mutable_data<std::string>();
      for (int64_t i = 0; i < n * per_item; ++i) dst[(e * pad) * per_item + i] = src[a * per_item + i];
    } else if (n > 0) {
      std::memcpy(static_cast<char*>(out->values.raw_mutable_data()) + (e * pad) * item_bytes,
                  static_cast<const char*>(data.values.raw_data()) + a * item_bytes, n * item_bytes);
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dataset>> Dataset::Open(const std::vector<std::string>& urls,
                                                       const DatasetOptions& options) {
  if (urls.empty()) return absl::InvalidArgumentError("no files given");
  std::unique_ptr<Dataset> ds(new Dataset());
  for (const std::string& url : urls) {
    auto src = OpenOne(url, options);
    if (!src.ok()) return src.status();
    const Schema& s = (*src)->schema();
    if (ds->sources_.empty()) {
      ds->schema_ = s;
    } else {
      // Same columns, same types, in any order.
      if (s.columns.size() != ds->schema_.columns.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            url, ": has ", s.columns.size(), " columns but ", urls[0], " has ",
            ds->schema_.columns.size(), "; every file of a dataset needs the same columns"));
      }
      for (const Column& c : ds->schema_.columns) {
        int j = s.IndexOf(c.name);
        if (j < 0 || !SameColumn(c, s.columns[j])) {
          return absl::InvalidArgumentError(absl::StrCat(
              url, ": column '", c.name, "' is ", j < 0 ? "missing" : Describe(s.columns[j]),
              " but ", urls[0], " has ", Describe(c)));
        }
      }
      for (size_t i = 0; i < ds->schema_.columns.size(); ++i) {
        const Column& c = s.columns[s.IndexOf(ds->schema_.columns[i].name)];
        Column& mine = ds->schema_.columns[i];
        if (mine.compressed_bytes >= 0 && c.compressed_bytes >= 0) mine.compressed_bytes += c.compressed_bytes;
        if (mine.uncompressed_bytes >= 0 && c.uncompressed_bytes >= 0) mine.uncompressed_bytes += c.uncompressed_bytes;
      }
    }
    ds->starts_.push_back(ds->num_entries_);
    ds->num_entries_ += (*src)->num_entries();
    ds->files_.push_back((*src)->Info());
    ds->sources_.push_back(std::move(*src));
  }
  return ds;
}

absl::StatusOr<Batch> Dataset::Read(int64_t start, int64_t stop, const ReadOptions& options) {
  if (start < 0 || stop < start || stop > num_entries_) {
    return absl::OutOfRangeError(absl::StrCat("entry range [", start, ", ", stop,
                                              ") is outside the dataset's ", num_entries_,
                                              " entries"));
  }
  if (options.pad_length < 0) return absl::InvalidArgumentError("pad length must be >= 0");
  std::lock_guard<std::mutex> lock(read_mu_);
  std::vector<int> selected;
  if (options.columns.empty()) {
    for (size_t i = 0; i < schema_.columns.size(); ++i) selected.push_back(static_cast<int>(i));
  } else {
    for (const std::string& name : options.columns) {
      int i = schema_.IndexOf(name);
      if (i < 0) {
        std::vector<std::string> names;
        for (const Column& c : schema_.columns) names.push_back(c.name);
        return absl::NotFoundError(absl::StrCat("no column '", name, "' (columns: ",
                                                absl::StrJoin(names, ", "), ")"));
      }
      selected.push_back(i);
    }
  }
  Batch batch;
  batch.entry_start = start;
  batch.num_entries = stop - start;
  for (int ci : selected) {
    const Column& col = schema_.columns[ci];
    std::vector<ColumnData> parts;
    for (size_t s = 0; s < sources_.size(); ++s) {
      int64_t s_begin = starts_[s], s_end = s_begin + sources_[s]->num_entries();
      int64_t a = std::max(start, s_begin), z = std::min(stop, s_end);
      if (a >= z && !(parts.empty() && s + 1 == sources_.size())) continue;
      if (a > z) a = z = s_begin;
      int local = sources_[s]->schema().IndexOf(col.name);
      auto part = sources_[s]->ReadColumn(local, a - s_begin, z - s_begin);
      if (!part.ok()) return part.status();
      parts.push_back(std::move(*part));
    }
    if (parts.empty()) {
      // Empty range: read nothing from the first source.
      auto part = sources_[0]->ReadColumn(sources_[0]->schema().IndexOf(col.name), 0, 0);
      if (!part.ok()) return part.status();
      parts.push_back(std::move(*part));
    }
    auto data = Concat(col, parts);
    if (!data.ok()) return data.status();
    ColumnBatch cb;
    cb.name = col.name;
    if (!col.jagged) {
      cb.values = std::move(data->values);
    } else if (options.pad_length > 0) {
      Pad(col, *data, batch.num_entries, options.pad_length, &cb);
    } else {
      cb.values = std::move(data->values);
      cb.offsets = Tensor::FromVector<int64_t>({static_cast<int64_t>(data->offsets.size())},
                                               data->offsets);
    }
    batch.columns.push_back(std::move(cb));
  }
  return batch;
}

BatchIterator Dataset::Batches(const BatchOptions& options) { return BatchIterator(this, options); }

// The read-ahead thread and its bounded queue. `ahead` counts the batches
// queued plus the one being decoded; the thread starts a batch only while
// ahead < depth, so at most `depth` decoded batches exist beyond the
// caller's.
struct BatchIterator::ReadAhead {
  struct Item {
    absl::Status status;  // not OK: the read failed here (no batch)
    Batch batch;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> queue;
  int64_t depth = 1;
  int64_t ahead = 0;
  int64_t max_ahead = 0;
  int64_t decoded = 0;
  bool stop = false;      // the iterator is going away
  bool finished = false;  // the thread read the last batch or failed
  // Who is blocked on `cv`: a wake-up (a futex call and, across cores, an
  // interrupt) is sent only to a side that waits, not once per batch.
  bool reader_waiting = false;
  bool caller_waiting = false;
  absl::Status error;     // the failure, returned again after it was delivered
  std::thread thread;

  ~ReadAhead() {
    {
      std::lock_guard<std::mutex> l(mu);
      stop = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }

  void Loop(Dataset* ds, BatchOptions options, int64_t next, int64_t stop_entry) {
    while (next < stop_entry) {
      {
        std::unique_lock<std::mutex> l(mu);
        reader_waiting = true;
        cv.wait(l, [&] { return ahead < depth || stop; });
        reader_waiting = false;
        if (stop) break;
        ++ahead;
        max_ahead = std::max(max_ahead, ahead);
      }
      int64_t end = std::min(stop_entry, next + options.batch_size);
      auto b = ds->Read(next, end, options);
      if (b.ok() && options.prepare) {
        absl::Status p = options.prepare(*b);
        if (!p.ok()) b = p;
      }
      std::lock_guard<std::mutex> l(mu);
      if (!b.ok()) {
        queue.push_back({b.status(), Batch()});
        error = b.status();
        break;
      }
      ++decoded;
      queue.push_back({absl::OkStatus(), std::move(*b)});
      next = end;
      if (caller_waiting) cv.notify_all();
    }
    std::lock_guard<std::mutex> l(mu);
    finished = true;
    cv.notify_all();
  }
};

BatchIterator::BatchIterator(Dataset* dataset, BatchOptions options)
    : dataset_(dataset), options_(std::move(options)) {
  next_ = options_.entry_start;
  stop_ = options_.entry_stop < 0 ? dataset_->num_entries() : options_.entry_stop;
}

BatchIterator::BatchIterator(BatchIterator&&) noexcept = default;
BatchIterator& BatchIterator::operator=(BatchIterator&&) noexcept = default;
BatchIterator::~BatchIterator() = default;  // ~ReadAhead stops and joins the thread

absl::Status BatchIterator::CheckOptions() const {
  if (options_.batch_size <= 0) return absl::InvalidArgumentError("batch size must be > 0");
  if (options_.read_ahead_batches < 0) return absl::InvalidArgumentError("read-ahead must be >= 0 batches");
  if (options_.entry_start < 0 || stop_ > dataset_->num_entries() || stop_ < options_.entry_start) {
    return absl::OutOfRangeError(absl::StrCat("entry range [", options_.entry_start, ", ", stop_,
                                              ") is outside the dataset's ",
                                              dataset_->num_entries(), " entries"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> BatchIterator::ReadNext(Batch* batch) {
  if (next_ >= stop_) return false;
  int64_t end = std::min(stop_, next_ + options_.batch_size);
  auto b = dataset_->Read(next_, end, options_);
  if (!b.ok()) return b.status();
  if (options_.prepare) {
    absl::Status p = options_.prepare(*b);
    if (!p.ok()) return p;
  }
  *batch = std::move(*b);
  next_ = end;
  ++batches_read_;
  return true;
}

absl::StatusOr<bool> BatchIterator::Next(Batch* batch) {
  absl::Status s = CheckOptions();
  if (!s.ok()) return s;
  if (options_.read_ahead_batches == 0) return ReadNext(batch);
  if (!ahead_) {
    if (next_ >= stop_) return false;
    ahead_ = std::make_unique<ReadAhead>();
    ahead_->depth = options_.read_ahead_batches;
    ahead_->thread = std::thread(&ReadAhead::Loop, ahead_.get(), dataset_, options_, next_, stop_);
  }
  ReadAhead& ra = *ahead_;
  std::unique_lock<std::mutex> l(ra.mu);
  ra.caller_waiting = true;
  ra.cv.wait(l, [&] { return !ra.queue.empty() || ra.finished; });
  ra.caller_waiting = false;
  if (ra.queue.empty()) {
    if (!ra.error.ok()) return ra.error;
    return false;
  }
  ReadAhead::Item item = std::move(ra.queue.front());
  ra.queue.pop_front();
  --ra.ahead;
  if (ra.reader_waiting) ra.cv.notify_all();
  if (!item.status.ok()) return item.status;
  *batch = std::move(item.batch);
  next_ = batch->entry_start + batch->num_entries;  // prepare keeps these
  ++batches_read_;
  return true;
}

BatchIterator::Stats BatchIterator::stats() const {
  Stats st;
  st.batches_read = batches_read_;
  if (ahead_) {
    std::lock_guard<std::mutex> l(ahead_->mu);
    st.batches_read = ahead_->decoded;
    st.max_batches_ahead = ahead_->max_ahead;
  }
  return st;
}

}  // namespace hepml::data
