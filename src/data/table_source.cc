// NumPy .npy/.npz and CSV sources, read on demand through RandomAccessFile.
//
// .npy (and .npz members stored uncompressed): only the header is read when
// the file is opened; a batch is one positional read of its rows' byte range
// straight into the batch's tensor. Deflated .npz members and 'U' string
// arrays are decoded whole (bounded by DatasetOptions::max_object_bytes).
//
// CSV: one pass when the file is opened finds the header, checks every
// record, infers the column types and keeps the byte offset of every
// kCsvIndexStride-th record; a batch re-reads its records from the nearest
// indexed offset through a buffer of DatasetOptions::read_buffer_bytes (grown
// only for a record longer than that), parsing all columns at once and
// keeping them for the other columns of the same batch.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/npy.h"
#include "data/source.h"

namespace hepml::data {
namespace {

constexpr int64_t kCsvIndexStride = 1024;
// Largest .npy header read (numpy writes a few hundred bytes).
constexpr uint64_t kMaxNpyHeader = 1 << 20;

std::string Stem(const std::string& name) {
  size_t slash = name.find_last_of('/');
  std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  size_t dot = base.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

Column ColumnFor(const std::string& name, DType dtype, const Shape& shape) {
  Column c;
  c.name = name;
  c.dtype = dtype;
  for (size_t i = 1; i < shape.size(); ++i) c.shape.push_back(shape[i]);
  const char* descr = DTypeNumpyDescr(dtype);
  c.source_type = descr && *descr ? descr : DTypeName(dtype);
  return c;
}

// Rows [start, stop) of an in-memory tensor.
ColumnData SliceRows(const Tensor& t, int64_t start, int64_t stop) {
  int64_t rows = t.dim(0);
  int64_t per_row = rows == 0 ? 0 : t.size() / rows;
  Shape shape = t.shape();
  shape[0] = stop - start;
  ColumnData out;
  out.values = Tensor::Empty(t.dtype(), shape);
  if (t.dtype() == DType::kString) {
    const std::string* src = t.data<std::string>();
    std::string* dst = out.values.mutable_data<std::string>();
    for (int64_t i = 0; i < (stop - start) * per_row; ++i) dst[i] = src[start * per_row + i];
  } else if (stop > start) {
    size_t row_bytes = static_cast<size_t>(per_row) * DTypeSize(t.dtype());
    std::memcpy(out.values.raw_mutable_data(), static_cast<const char*>(t.raw_data()) + start * row_bytes,
                (stop - start) * row_bytes);
  }
  return out;
}

// One array of a .npy or .npz: either rows in the file at `data_offset`, or
// decoded whole into `whole`.
struct NpyArray {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
  uint64_t data_offset = 0;
  uint64_t row_bytes = 0;
  Tensor whole;  // defined when held in memory
};

class NpySource final : public Source {
 public:
  NpySource(std::unique_ptr<RandomAccessFile> file, FileInfo info, std::vector<NpyArray> arrays, int64_t rows,
            int64_t held)
      : file_(std::move(file)), info_(std::move(info)), arrays_(std::move(arrays)), rows_(rows), held_(held) {
    for (const NpyArray& a : arrays_) {
      schema_.columns.push_back(ColumnFor(a.name, a.dtype, a.shape));
    }
    info_.num_entries = rows;
  }
  const Schema& schema() const override { return schema_; }
  int64_t num_entries() const override { return rows_; }
  FileInfo Info() const override { return info_; }
  int64_t peak_held_bytes() const override { return held_; }

  absl::StatusOr<ColumnData> ReadColumn(int column, int64_t start, int64_t stop) override {
    const NpyArray& a = arrays_[column];
    if (a.whole.defined()) return SliceRows(a.whole, start, stop);
    Shape shape = a.shape;
    shape[0] = stop - start;
    ColumnData out;
    out.values = NewColumnTensor(a.dtype, shape);
    const uint64_t n = static_cast<uint64_t>(stop - start) * a.row_bytes;
    if (n == 0) return out;
    char* dst = static_cast<char*>(out.values.raw_mutable_data());
    absl::Status s = file_->ReadAt(a.data_offset + static_cast<uint64_t>(start) * a.row_bytes, n, dst);
    if (!s.ok()) return s;
    if (a.dtype == DType::kBool) {  // normalise to 0/1
      for (uint64_t i = 0; i < n; ++i) dst[i] = dst[i] != 0;
    }
    return out;
  }

 private:
  std::unique_ptr<RandomAccessFile> file_;
  Schema schema_;
  FileInfo info_;
  std::vector<NpyArray> arrays_;
  int64_t rows_;
  int64_t held_;
};

// Reads the .npy header at `offset` (the member spans `length` bytes) and
// describes its rows in place. String arrays are decoded whole.
absl::StatusOr<NpyArray> OpenNpyAt(RandomAccessFile* file, uint64_t offset, uint64_t length,
                                   const std::string& name, const std::string& what,
                                   const DatasetOptions& options, int64_t* held) {
  std::string head(std::min<uint64_t>(length, 4096), '\0');
  absl::Status s = file->ReadAt(offset, head.size(), head.data());
  if (!s.ok()) return s;
  auto h = ParseNpyHeader(head, what);
  if (!h.ok() && head.size() >= 12 && head.size() < length) {
    // A header longer than the first read: its length is in bytes 8-11
    // (version 2/3) or 8-9 (version 1).
    uint64_t need = std::min<uint64_t>(length, kMaxNpyHeader);
    head.resize(need);
    s = file->ReadAt(offset, head.size(), head.data());
    if (!s.ok()) return s;
    h = ParseNpyHeader(head, what);
  }
  if (!h.ok()) return h.status();
  NpyArray a;
  a.name = name;
  a.dtype = h->dtype;
  a.shape = h->shape;
  a.data_offset = offset + h->data_offset;
  if (a.shape.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": array '", name, "' is a scalar; a column needs one row per entry"));
  }
  uint64_t data_bytes = length - h->data_offset;
  if (h->string_width >= 0) {
    if (length > static_cast<uint64_t>(options.max_object_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(what, ": a string array of ", length,
                                                       " bytes is more than the limit of ",
                                                       options.max_object_bytes));
    }
    std::string bytes(length, '\0');
    s = file->ReadAt(offset, length, bytes.data());
    if (!s.ok()) return s;
    auto t = ParseNpy(bytes, what);
    if (!t.ok()) return t.status();
    a.whole = std::move(*t);
    *held += static_cast<int64_t>(length);
    return a;
  }
  uint64_t itemsize = DTypeSize(a.dtype);
  if (static_cast<uint64_t>(h->count) > data_bytes / itemsize) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": truncated data: ", data_bytes, " bytes, shape ",
                                                   h->shape_text, " needs ",
                                                   static_cast<uint64_t>(h->count) * itemsize));
  }
  a.row_bytes = a.shape[0] == 0 ? 0 : static_cast<uint64_t>(h->count / a.shape[0]) * itemsize;
  *held += static_cast<int64_t>(head.size());
  return a;
}

// The members of an .npz archive: stored ones in place, deflated ones
// decoded whole.
absl::Status OpenNpzMembers(RandomAccessFile* file, const DatasetOptions& options, std::vector<NpyArray>* out,
                            int64_t* held) {
  const std::string& path = file->name();
  const uint64_t size = file->size();
  auto bad = [&](const std::string& why) { return absl::InvalidArgumentError(absl::StrCat(path, ": ", why)); };
  uint64_t pos = 0;
  while (pos + 30 <= size) {
    unsigned char h[30];
    absl::Status s = file->ReadAt(pos, 30, reinterpret_cast<char*>(h));
    if (!s.ok()) return s;
    auto u16 = [&](const unsigned char* p) { return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8); };
    auto u32 = [&](const unsigned char* p) { return u16(p) | (u16(p + 2) << 16); };
    if (u32(h) != 0x04034b50) break;
    uint32_t flags = u16(h + 6), method = u16(h + 8);
    uint64_t csize = u32(h + 18), usize = u32(h + 22);
    uint32_t name_len = u16(h + 26), extra_len = u16(h + 28);
    if (pos + 30 + name_len + extra_len > size) return bad("truncated zip entry");
    std::string meta(name_len + extra_len, '\0');
    s = file->ReadAt(pos + 30, meta.size(), meta.data());
    if (!s.ok()) return s;
    std::string name = meta.substr(0, name_len);
    if (csize == 0xffffffffu || usize == 0xffffffffu) {  // zip64: sizes in the extra field
      const unsigned char* e = reinterpret_cast<const unsigned char*>(meta.data()) + name_len;
      const unsigned char* end = e + extra_len;
      while (e + 4 <= end) {
        uint32_t id = u16(e), len = u16(e + 2);
        if (id == 1 && len >= 16 && e + 4 + 16 <= end) {
          usize = u32(e + 4) | (static_cast<uint64_t>(u32(e + 8)) << 32);
          csize = u32(e + 12) | (static_cast<uint64_t>(u32(e + 16)) << 32);
        }
        e += 4 + len;
      }
    }
    if (flags & 0x8) return bad("zip entries with data descriptors are not supported");
    uint64_t data = pos + 30 + name_len + extra_len;
    if (csize > size - data) return bad("truncated zip data");
    std::string key = name;
    if (key.size() > 4 && key.substr(key.size() - 4) == ".npy") key.resize(key.size() - 4);
    std::string what = absl::StrCat(path, "[", name, "]");
    if (method == 0) {
      auto a = OpenNpyAt(file, data, csize, key, what, options, held);
      if (!a.ok()) return a.status();
      out->push_back(std::move(*a));
    } else if (method == 8) {
      // Deflated: the member is decoded whole.
      if (usize > 1032 * csize + 1024) {
        return bad(absl::StrCat("entry '", name, "' declares ", usize, " bytes from ", csize,
                                " compressed: more than deflate can expand to"));
      }
      if (usize > static_cast<uint64_t>(options.max_object_bytes) ||
          csize > static_cast<uint64_t>(options.max_object_bytes)) {
        return absl::ResourceExhaustedError(absl::StrCat(what, ": a deflated member of ", usize,
                                                         " bytes is more than the limit of ",
                                                         options.max_object_bytes,
                                                         " (store it uncompressed: numpy.savez)"));
      }
      std::string entry(data + csize - pos, '\0');
      s = file->ReadAt(pos, entry.size(), entry.data());
      if (!s.ok()) return s;
      auto arrays = ParseNpz(entry, path);
      if (!arrays.ok()) return arrays.status();
      for (auto& [k, t] : *arrays) {
        if (t.rank() == 0) {
          return bad(absl::StrCat("array '", k, "' is a scalar; a column needs one row per entry"));
        }
        NpyArray a;
        a.name = k;
        a.dtype = t.dtype();
        a.shape = t.shape();
        a.whole = std::move(t);
        *held += static_cast<int64_t>(entry.size() + usize);
        out->push_back(std::move(a));
      }
    } else {
      return bad(absl::StrCat("unsupported zip compression method ", method));
    }
    pos = data + csize;
  }
  if (out->empty()) return bad("not an .npz archive (no zip entries)");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenNpySource(std::unique_ptr<RandomAccessFile> file,
                                                      const DatasetOptions& options, bool npz) {
  FileInfo info;
  info.url = file->name();
  info.format = npz ? Format::kNpz : Format::kNpy;
  info.file_bytes = file->size();
  std::vector<NpyArray> arrays;
  int64_t held = 0;
  if (npz) {
    absl::Status s = OpenNpzMembers(file.get(), options, &arrays, &held);
    if (!s.ok()) return s;
  } else {
    auto a = OpenNpyAt(file.get(), 0, file->size(), Stem(file->name()), file->name(), options, &held);
    if (!a.ok()) return a.status();
    arrays.push_back(std::move(*a));
  }
  int64_t rows = -1;
  for (const NpyArray& a : arrays) {
    if (rows >= 0 && a.shape[0] != rows) {
      return absl::InvalidArgumentError(absl::StrCat(file->name(), ": array '", a.name, "' has ", a.shape[0],
                                                     " rows but '", arrays[0].name, "' has ", rows));
    }
    rows = a.shape[0];
  }
  info.object = npz ? "" : arrays[0].name;
  return std::unique_ptr<Source>(new NpySource(std::move(file), std::move(info), std::move(arrays), rows, held));
}

namespace {

// Reads CSV records from a file through a bounded buffer: buf_ holds the
// file's bytes [base_, base_ + buf_.size()), the next record starts at
// base_ + pos_.
class CsvReader {
 public:
  CsvReader(RandomAccessFile* file, char sep, uint64_t chunk, int64_t max_record, int64_t* peak)
      : file_(file), sep_(sep), chunk_(std::max<uint64_t>(chunk, 64)), max_record_(max_record), peak_(peak) {}

  void Seek(uint64_t offset) {
    base_ = offset;
    buf_.clear();
    pos_ = 0;
  }
  // File offset of the next record.
  uint64_t offset() const { return base_ + pos_; }
  bool at_end() const { return offset() >= file_->size(); }

  // Splits the next record (RFC 4180 quoting) into `fields`.
  absl::Status Next(std::vector<std::string>* fields, int64_t line) {
    while (true) {
      size_t end = 0;
      bool complete = Parse(fields, &end);
      const bool eof = base_ + buf_.size() >= file_->size();
      if (complete || eof) {
        if (!complete && quoted_) {
          return absl::InvalidArgumentError(absl::StrCat(file_->name(), ": line ", line, ": unterminated quote"));
        }
        pos_ = end;
        return absl::OkStatus();
      }
      // The record runs past the buffer: drop what was consumed, read more.
      if (static_cast<int64_t>(buf_.size() - pos_) > max_record_) {
        return absl::ResourceExhaustedError(absl::StrCat(file_->name(), ": line ", line, " is longer than ",
                                                         max_record_, " bytes"));
      }
      buf_.erase(0, pos_);
      base_ += pos_;
      pos_ = 0;
      uint64_t at = base_ + buf_.size();
      uint64_t n = std::min<uint64_t>(chunk_, file_->size() - at);
      size_t old = buf_.size();
      buf_.resize(old + n);
      absl::Status s = file_->ReadAt(at, n, buf_.data() + old);
      if (!s.ok()) return s;
      *peak_ = std::max<int64_t>(*peak_, static_cast<int64_t>(buf_.capacity()));
    }
  }

 private:
  // Parses one record from buf_ at pos_; false if the buffer ended first
  // (no line end seen).
  bool Parse(std::vector<std::string>* fields, size_t* end) {
    fields->clear();
    std::string field;
    size_t i = pos_;
    quoted_ = false;
    bool was_quoted = false;
    const std::string& text = buf_;
    const bool eof = base_ + text.size() >= file_->size();
    while (i < text.size()) {
      char ch = text[i];
      if (quoted_) {
        if (ch == '"') {
          if (i + 1 >= text.size() && !eof) break;  // need the next byte to tell "" from "
          if (text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          quoted_ = false;
          ++i;
          continue;
        }
        field += ch;
        ++i;
        continue;
      }
      if (ch == '"' && field.empty() && !was_quoted) {
        quoted_ = was_quoted = true;
        ++i;
        continue;
      }
      if (ch == sep_) {
        fields->push_back(std::move(field));
        field.clear();
        was_quoted = false;
        ++i;
        continue;
      }
      if (ch == '\n' || ch == '\r') {
        if (ch == '\r') {
          if (i + 1 >= text.size() && !eof) break;  // \r\n split
          if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        }
        fields->push_back(std::move(field));
        *end = i + 1;
        return true;
      }
      field += ch;
      ++i;
    }
    // End of the buffer: at the end of the file this is the last record.
    if (i >= text.size() && eof && !quoted_) {
      fields->push_back(std::move(field));
      *end = text.size();
      return false;
    }
    *end = i;
    return false;
  }

  RandomAccessFile* file_;
  char sep_;
  uint64_t chunk_;
  int64_t max_record_;
  int64_t* peak_;
  std::string buf_;
  uint64_t base_ = 0;
  size_t pos_ = 0;
  bool quoted_ = false;
};

bool ParseInt(const std::string& s, int64_t* v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  *v = x;
  return true;
}

bool ParseDouble(const std::string& s, double* v) {
  if (s.empty()) {
    *v = std::nan("");
    return true;
  }
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

bool Blank(const std::vector<std::string>& fields) { return fields.size() == 1 && fields[0].empty(); }

class CsvSource final : public Source {
 public:
  CsvSource(std::unique_ptr<RandomAccessFile> file, const DatasetOptions& options, char sep)
      : file_(std::move(file)), options_(options), sep_(sep) {}

  // The pass over the file: header, record checks, types, the sparse index.
  absl::Status Scan() {
    const std::string& name = file_->name();
    CsvReader reader(file_.get(), sep_, options_.read_buffer_bytes, options_.max_object_bytes, &peak_buffer_);
    std::vector<std::string> header;
    absl::Status s = reader.Next(&header, 1);
    if (!s.ok()) return s;
    if (header.empty() || Blank(header)) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": empty CSV file (no header row)"));
    }
    for (size_t i = 0; i < header.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (header[i] == header[j]) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": column '", header[i], "' appears twice"));
        }
      }
    }
    const size_t ncols = header.size();
    std::vector<bool> all_int(ncols, true), all_num(ncols, true);
    std::vector<std::string> fields;
    int64_t line = 1;
    rows_ = 0;
    while (!reader.at_end()) {
      ++line;
      uint64_t at = reader.offset();
      s = reader.Next(&fields, line);
      if (!s.ok()) return s;
      if (Blank(fields)) continue;
      if (fields.size() != ncols) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": line ", line, " has ", fields.size(),
                                                       " fields, the header has ", ncols));
      }
      if (rows_ % kCsvIndexStride == 0) index_.push_back({at, line});
      for (size_t c = 0; c < ncols; ++c) {
        if (!all_num[c]) continue;
        int64_t iv;
        double dv;
        if (all_int[c] && !ParseInt(fields[c], &iv)) all_int[c] = false;
        if (!all_int[c] && !ParseDouble(fields[c], &dv)) all_num[c] = false;
      }
      ++rows_;
    }
    for (size_t c = 0; c < ncols; ++c) {
      Column out;
      out.name = header[c];
      if (all_int[c] && rows_ > 0) {
        out.dtype = DType::kInt64;
        out.source_type = "integer";
      } else if (all_num[c]) {
        out.dtype = DType::kFloat64;
        out.source_type = "number";
      } else {
        out.dtype = DType::kString;
        out.source_type = "text";
      }
      schema_.columns.push_back(std::move(out));
    }
    info_.url = name;
    info_.format = Format::kCsv;
    info_.file_bytes = file_->size();
    info_.num_entries = rows_;
    return absl::OkStatus();
  }

  const Schema& schema() const override { return schema_; }
  int64_t num_entries() const override { return rows_; }
  FileInfo Info() const override { return info_; }
  int64_t peak_held_bytes() const override {
    return peak_buffer_ + peak_cache_ + static_cast<int64_t>(index_.capacity() * sizeof(IndexEntry));
  }

  absl::StatusOr<ColumnData> ReadColumn(int column, int64_t start, int64_t stop) override {
    if (!(cache_start_ == start && cache_stop_ == stop)) {
      absl::Status s = Parse(start, stop);
      if (!s.ok()) {
        cache_start_ = cache_stop_ = -1;
        return s;
      }
    }
    ColumnData out;
    out.values = cache_[column];
    return out;
  }

 private:
  struct IndexEntry {
    uint64_t offset;  // of record kCsvIndexStride * i
    int64_t line;
  };

  // Parses records [start, stop) into one tensor per column (kept for the
  // other columns of the same range).
  absl::Status Parse(int64_t start, int64_t stop) {
    const size_t ncols = schema_.columns.size();
    cache_.assign(ncols, Tensor());
    cache_start_ = cache_stop_ = -1;
    const int64_t n = stop - start;
    for (size_t c = 0; c < ncols; ++c) cache_[c] = Tensor::Empty(schema_.columns[c].dtype, {n});
    if (n == 0) {
      cache_start_ = start, cache_stop_ = stop;
      return absl::OkStatus();
    }
    const IndexEntry& at = index_[static_cast<size_t>(start / kCsvIndexStride)];
    CsvReader reader(file_.get(), sep_, options_.read_buffer_bytes, options_.max_object_bytes, &peak_buffer_);
    reader.Seek(at.offset);
    int64_t row = start / kCsvIndexStride * kCsvIndexStride;
    int64_t line = at.line;
    std::vector<std::string> fields;
    int64_t bytes = 0;
    while (row < stop) {
      if (reader.at_end()) {
        return absl::DataLossError(absl::StrCat(file_->name(), ": ended before row ", row,
                                                " (the file changed since it was opened?)"));
      }
      absl::Status s = reader.Next(&fields, line);
      if (!s.ok()) return s;
      ++line;
      if (Blank(fields)) continue;
      if (fields.size() != ncols) {
        return absl::DataLossError(absl::StrCat(file_->name(), ": line ", line - 1, " has ", fields.size(),
                                                " fields, the header has ", ncols,
                                                " (the file changed since it was opened?)"));
      }
      if (row >= start) {
        const int64_t r = row - start;
        for (size_t c = 0; c < ncols; ++c) {
          Tensor& t = cache_[c];
          switch (schema_.columns[c].dtype) {
            case DType::kInt64:
              if (!ParseInt(fields[c], &t.mutable_data<int64_t>()[r])) {
                return absl::DataLossError(absl::StrCat(file_->name(), ": line ", line - 1, ": '", fields[c],
                                                        "' in integer column '", schema_.columns[c].name,
                                                        "' (the file changed since it was opened?)"));
              }
              break;
            case DType::kFloat64:
              if (!ParseDouble(fields[c], &t.mutable_data<double>()[r])) {
                return absl::DataLossError(absl::StrCat(file_->name(), ": line ", line - 1, ": '", fields[c],
                                                        "' in number column '", schema_.columns[c].name,
                                                        "' (the file changed since it was opened?)"));
              }
              break;
            default:
              bytes += static_cast<int64_t>(fields[c].size());
              t.mutable_data<std::string>()[r] = std::move(fields[c]);
              break;
          }
        }
      }
      ++row;
    }
    for (const Tensor& t : cache_) bytes += static_cast<int64_t>(t.nbytes());
    peak_cache_ = std::max(peak_cache_, bytes);
    cache_start_ = start, cache_stop_ = stop;
    return absl::OkStatus();
  }

  std::unique_ptr<RandomAccessFile> file_;
  DatasetOptions options_;
  char sep_;
  Schema schema_;
  FileInfo info_;
  int64_t rows_ = 0;
  std::vector<IndexEntry> index_;
  std::vector<Tensor> cache_;
  int64_t cache_start_ = -1, cache_stop_ = -1;
  int64_t peak_buffer_ = 0;
  int64_t peak_cache_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenCsvSource(std::unique_ptr<RandomAccessFile> file,
                                                      const DatasetOptions& options) {
  const std::string& name = file->name();
  char sep = options.csv_separator;
  if (sep == 0) sep = name.size() > 4 && name.substr(name.size() - 4) == ".tsv" ? '\t' : ',';
  auto source = std::make_unique<CsvSource>(std::move(file), options, sep);
  absl::Status s = source->Scan();
  if (!s.ok()) return s;
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace hepml::data
