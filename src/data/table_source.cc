// In-memory sources: NumPy .npy/.npz and CSV files are read whole (bounded
// by DatasetOptions::max_object_bytes) into one tensor per column.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/npy.h"
#include "data/source.h"

namespace hepml::data {
namespace {

class TableSource final : public Source {
 public:
  TableSource(FileInfo info, std::vector<Column> columns, std::vector<Tensor> values, int64_t rows)
      : info_(std::move(info)), values_(std::move(values)), rows_(rows) {
    schema_.columns = std::move(columns);
    info_.num_entries = rows;
  }
  const Schema& schema() const override { return schema_; }
  int64_t num_entries() const override { return rows_; }
  FileInfo Info() const override { return info_; }

  absl::StatusOr<ColumnData> ReadColumn(int column, int64_t start, int64_t stop) override {
    const Tensor& t = values_[column];
    int64_t per_row = rows_ == 0 ? 0 : t.size() / std::max<int64_t>(rows_, 1);
    Shape shape = t.shape();
    shape[0] = stop - start;
    ColumnData out;
    out.values = Tensor::Empty(t.dtype(), shape);
    if (t.dtype() == DType::kString) {
      const std::string* src = t.data<std::string>();
      std::string* dst = out.values.mutable_data<std::string>();
      for (int64_t i = 0; i < (stop - start) * per_row; ++i) dst[i] = src[start * per_row + i];
    } else {
      size_t row_bytes = static_cast<size_t>(per_row) * DTypeSize(t.dtype());
      if (stop > start) {
        std::memcpy(out.values.raw_mutable_data(),
                    static_cast<const char*>(t.raw_data()) + start * row_bytes,
                    (stop - start) * row_bytes);
      }
    }
    return out;
  }

 private:
  Schema schema_;
  FileInfo info_;
  std::vector<Tensor> values_;
  int64_t rows_;
};

std::string Stem(const std::string& name) {
  size_t slash = name.find_last_of('/');
  std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  size_t dot = base.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

Column ColumnFor(const std::string& name, const Tensor& t) {
  Column c;
  c.name = name;
  c.dtype = t.dtype();
  for (int i = 1; i < t.rank(); ++i) c.shape.push_back(t.dim(i));
  const char* descr = DTypeNumpyDescr(t.dtype());
  c.source_type = descr && *descr ? descr : DTypeName(t.dtype());
  return c;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenNpySource(std::unique_ptr<RandomAccessFile> file,
                                                      const DatasetOptions& options, bool npz) {
  FileInfo info;
  info.url = file->name();
  info.format = npz ? Format::kNpz : Format::kNpy;
  info.file_bytes = file->size();
  std::vector<std::pair<std::string, Tensor>> arrays;
  if (npz) {
    auto bytes = ReadWholeFile(file.get(), options.max_object_bytes);
    if (!bytes.ok()) return bytes.status();
    auto r = ParseNpz(*bytes, file->name());
    if (!r.ok()) return r.status();
    arrays = std::move(*r);
  } else {
    auto bytes = ReadWholeFile(file.get(), options.max_object_bytes);
    if (!bytes.ok()) return bytes.status();
    auto t = ParseNpy(*bytes, file->name());
    if (!t.ok()) return t.status();
    arrays.emplace_back(Stem(file->name()), std::move(*t));
  }
  if (arrays.empty()) return absl::InvalidArgumentError(absl::StrCat(file->name(), ": no arrays"));
  int64_t rows = -1;
  std::vector<Column> cols;
  std::vector<Tensor> values;
  for (auto& [name, t] : arrays) {
    if (t.rank() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(file->name(), ": array '", name,
                                                     "' is a scalar; a column needs one row per entry"));
    }
    if (rows >= 0 && t.dim(0) != rows) {
      return absl::InvalidArgumentError(absl::StrCat(file->name(), ": array '", name, "' has ", t.dim(0),
                                                     " rows but '", arrays[0].first, "' has ", rows));
    }
    rows = t.dim(0);
    cols.push_back(ColumnFor(name, t));
    values.push_back(t);
  }
  info.object = npz ? "" : arrays[0].first;
  return std::unique_ptr<Source>(new TableSource(std::move(info), std::move(cols), std::move(values), rows));
}

namespace {

// Splits one CSV record starting at `pos` (RFC 4180 quoting); advances pos
// past the record's line end.
absl::Status NextRecord(const std::string& text, size_t* pos, char sep, std::vector<std::string>* fields,
                        int64_t line, const std::string& name) {
  fields->clear();
  std::string field;
  size_t i = *pos;
  bool quoted = false, was_quoted = false;
  while (i < text.size()) {
    char ch = text[i];
    if (quoted) {
      if (ch == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        ++i;
        continue;
      }
      field += ch;
      ++i;
      continue;
    }
    if (ch == '"' && field.empty() && !was_quoted) {
      quoted = was_quoted = true;
      ++i;
      continue;
    }
    if (ch == sep) {
      fields->push_back(std::move(field));
      field.clear();
      was_quoted = false;
      ++i;
      continue;
    }
    if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++i;
      break;
    }
    field += ch;
    ++i;
  }
  if (quoted) return absl::InvalidArgumentError(absl::StrCat(name, ": line ", line, ": unterminated quote"));
  fields->push_back(std::move(field));
  *pos = i;
  return absl::OkStatus();
}

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

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenCsvSource(std::unique_ptr<RandomAccessFile> file,
                                                      const DatasetOptions& options) {
  const std::string& name = file->name();
  auto bytes = ReadWholeFile(file.get(), options.max_object_bytes);
  if (!bytes.ok()) return bytes.status();
  const std::string& text = *bytes;
  char sep = options.csv_separator;
  if (sep == 0) sep = name.size() > 4 && name.substr(name.size() - 4) == ".tsv" ? '\t' : ',';
  size_t pos = 0;
  std::vector<std::string> header;
  absl::Status s = NextRecord(text, &pos, sep, &header, 1, name);
  if (!s.ok()) return s;
  if (header.empty() || (header.size() == 1 && header[0].empty())) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty CSV file (no header row)"));
  }
  for (size_t i = 0; i < header.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (header[i] == header[j]) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": column '", header[i], "' appears twice"));
      }
    }
  }
  std::vector<std::vector<std::string>> cells(header.size());
  std::vector<std::string> fields;
  int64_t line = 1;
  while (pos < text.size()) {
    ++line;
    s = NextRecord(text, &pos, sep, &fields, line, name);
    if (!s.ok()) return s;
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    if (fields.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": line ", line, " has ", fields.size(),
                                                     " fields, the header has ", header.size()));
    }
    for (size_t c = 0; c < fields.size(); ++c) cells[c].push_back(std::move(fields[c]));
  }
  int64_t rows = cells[0].size();
  std::vector<Column> cols;
  std::vector<Tensor> values;
  for (size_t c = 0; c < header.size(); ++c) {
    const auto& col = cells[c];
    bool all_int = true, all_num = true;
    for (const std::string& v : col) {
      int64_t iv;
      double dv;
      if (all_int && !ParseInt(v, &iv)) all_int = false;
      if (!all_int && all_num && !ParseDouble(v, &dv)) all_num = false;
      if (!all_num) break;
    }
    Column out;
    out.name = header[c];
    Tensor t;
    if (all_int && rows > 0) {
      t = Tensor::Empty(DType::kInt64, {rows});
      int64_t* d = t.mutable_data<int64_t>();
      for (int64_t r = 0; r < rows; ++r) ParseInt(col[r], &d[r]);
      out.source_type = "integer";
    } else if (all_num) {
      t = Tensor::Empty(DType::kFloat64, {rows});
      double* d = t.mutable_data<double>();
      for (int64_t r = 0; r < rows; ++r) ParseDouble(col[r], &d[r]);
      out.source_type = "number";
    } else {
      t = Tensor::Empty(DType::kString, {rows});
      std::string* d = t.mutable_data<std::string>();
      for (int64_t r = 0; r < rows; ++r) d[r] = col[r];
      out.source_type = "text";
    }
    out.dtype = t.dtype();
    cols.push_back(std::move(out));
    values.push_back(std::move(t));
  }
  FileInfo info;
  info.url = name;
  info.format = Format::kCsv;
  info.file_bytes = file->size();
  return std::unique_ptr<Source>(new TableSource(std::move(info), std::move(cols), std::move(values), rows));
}

}  // namespace hepml::data
