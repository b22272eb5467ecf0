// Batch inference over a dataset: `hepml run MODEL.onnx --data URL... --map
// INPUT=COL,... --batch-size N --out FILE.npy [--shard I/N] [--resume]`.
//
// The Dataset's read-ahead thread decodes the next two batches and builds
// their model inputs (so I/O, decompression and conversion overlap compute);
// the main thread runs the Session and appends each batch's outputs to
// FILE.npy.partial. After each chunk (the batches of --checkpoint-seconds, 1 s
// by default) the partial files are fsync'ed and then the sidecar
// FILE.npy.progress (entries done, bytes of each output) is replaced
// atomically, so a killed job resumes from the last complete chunk:
// `--resume` truncates the partial files to the recorded sizes and reads on
// from the next entry. When every entry is done the .npy headers are
// rewritten with the final shapes and the partial files renamed; an
// interrupted job never leaves a file under the final name.
#include "cli/run_data.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "hepml/data.h"
#include "hepml/session.h"

namespace hepml::cli {
namespace {

namespace fs = std::filesystem;
constexpr const char* kCmd = "run";
// Bytes reserved for the .npy header (magic, version, length, dict, padding):
// enough for any shape of rank <= 8 with 20-digit dims.
constexpr size_t kNpyHeaderBytes = 256;

std::string Sanitize(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

// ---------------------------------------------------------------------------
// Element conversion (column dtype -> model input dtype), strided destination.

template <typename D, typename S>
void ConvertLoop(D* dst, int64_t dst_stride, const S* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i * dst_stride] = static_cast<D>(src[i]);
}

template <typename D>
absl::Status ConvertFrom(D* dst, int64_t dst_stride, const Tensor& src, int64_t n) {
  switch (src.dtype()) {
    case DType::kFloat32: ConvertLoop(dst, dst_stride, src.data<float>(), n); break;
    case DType::kFloat64: ConvertLoop(dst, dst_stride, src.data<double>(), n); break;
    case DType::kInt8: ConvertLoop(dst, dst_stride, src.data<int8_t>(), n); break;
    case DType::kInt16: ConvertLoop(dst, dst_stride, src.data<int16_t>(), n); break;
    case DType::kInt32: ConvertLoop(dst, dst_stride, src.data<int32_t>(), n); break;
    case DType::kInt64: ConvertLoop(dst, dst_stride, src.data<int64_t>(), n); break;
    case DType::kUInt8: ConvertLoop(dst, dst_stride, src.data<uint8_t>(), n); break;
    case DType::kUInt16: ConvertLoop(dst, dst_stride, src.data<uint16_t>(), n); break;
    case DType::kUInt32: ConvertLoop(dst, dst_stride, src.data<uint32_t>(), n); break;
    case DType::kUInt64: ConvertLoop(dst, dst_stride, src.data<uint64_t>(), n); break;
    case DType::kBool: ConvertLoop(dst, dst_stride, src.data<bool>(), n); break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("columns of type ", DTypeName(src.dtype()),
                                                     " cannot feed a model input"));
  }
  return absl::OkStatus();
}

// dst[offset + i * stride] = src[i] for i < n, converted to `dst`'s dtype.
absl::Status ConvertInto(Tensor* dst, int64_t offset, int64_t stride, const Tensor& src, int64_t n) {
  void* base = dst->raw_mutable_data();
  switch (dst->dtype()) {
    case DType::kFloat32: return ConvertFrom(static_cast<float*>(base) + offset, stride, src, n);
    case DType::kFloat64: return ConvertFrom(static_cast<double*>(base) + offset, stride, src, n);
    case DType::kInt8: return ConvertFrom(static_cast<int8_t*>(base) + offset, stride, src, n);
    case DType::kInt16: return ConvertFrom(static_cast<int16_t*>(base) + offset, stride, src, n);
    case DType::kInt32: return ConvertFrom(static_cast<int32_t*>(base) + offset, stride, src, n);
    case DType::kInt64: return ConvertFrom(static_cast<int64_t*>(base) + offset, stride, src, n);
    case DType::kUInt8: return ConvertFrom(static_cast<uint8_t*>(base) + offset, stride, src, n);
    case DType::kUInt16: return ConvertFrom(static_cast<uint16_t*>(base) + offset, stride, src, n);
    case DType::kUInt32: return ConvertFrom(static_cast<uint32_t*>(base) + offset, stride, src, n);
    case DType::kUInt64: return ConvertFrom(static_cast<uint64_t*>(base) + offset, stride, src, n);
    case DType::kBool: return ConvertFrom(static_cast<bool*>(base) + offset, stride, src, n);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("model inputs of type ", DTypeName(dst->dtype()), " cannot be fed from columns"));
  }
}

// ---------------------------------------------------------------------------
// Mapping columns to model inputs.

enum class Layout {
  kStackScalars,  // scalar columns -> [B, ncols] (or [B] for one column and a rank-1 input)
  kFixedArray,    // one fixed-array column -> [B, shape...]
  kJaggedOne,     // one jagged column padded -> [B, LEN]
  kJaggedColsLen, // jagged columns padded -> [B, ncols, LEN]
  kJaggedLenCols, // jagged columns padded -> [B, LEN, ncols]
};

struct InputMap {
  std::string input;
  DType dtype = DType::kUndefined;
  std::vector<std::string> columns;
  Layout layout = Layout::kStackScalars;
  int64_t pad = 0;
  Shape entry_shape;       // per entry, without the batch dim
  int64_t fixed_batch = -1;  // the model's fixed batch dim, if any
};

std::string DeclaredShape(const TensorInfo& info) {
  if (!info.has_shape) return "(rank not declared)";
  std::vector<std::string> dims;
  for (size_t i = 0; i < info.shape.size(); ++i) {
    if (info.shape[i] >= 0) dims.push_back(absl::StrCat(info.shape[i]));
    else dims.push_back(i < info.dim_names.size() && !info.dim_names[i].empty() ? info.dim_names[i] : "?");
  }
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

// Does [B, entry...] fit the declared shape?
bool Fits(const TensorInfo& info, const Shape& entry) {
  if (!info.has_shape) return true;
  if (info.shape.size() != entry.size() + 1) return false;
  for (size_t i = 0; i < entry.size(); ++i) {
    int64_t d = info.shape[i + 1];
    if (d >= 0 && d != entry[i]) return false;
  }
  return true;
}

absl::StatusOr<std::vector<InputMap>> PlanInputs(const Session& session, const data::Schema& schema,
                                                 const std::vector<std::string>& maps,
                                                 const std::vector<std::string>& pads) {
  std::vector<std::string> input_names;
  for (const auto& in : session.inputs()) input_names.push_back(in.name);
  auto find_input = [&](const std::string& name) -> const TensorInfo* {
    for (const auto& in : session.inputs())
      if (in.name == name) return &in;
    return nullptr;
  };
  std::vector<std::pair<std::string, int64_t>> pad_of;
  for (const std::string& p : pads) {
    size_t eq = p.find('=');
    int64_t len = 0;
    if (eq == std::string::npos || !absl::SimpleAtoi(p.substr(eq + 1), &len) || len <= 0)
      return absl::InvalidArgumentError(absl::StrCat("--pad '", p, "': expected INPUT=LEN with LEN > 0"));
    if (!find_input(p.substr(0, eq)))
      return absl::InvalidArgumentError(absl::StrCat("--pad '", p, "': the model has no input '", p.substr(0, eq),
                                                     "' (inputs: ", absl::StrJoin(input_names, ", "), ")"));
    pad_of.emplace_back(p.substr(0, eq), len);
  }
  std::vector<std::string> all_columns;
  for (const auto& c : schema.columns) all_columns.push_back(c.name);

  std::vector<InputMap> plan;
  for (const std::string& m : maps) {
    size_t eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
      return absl::InvalidArgumentError(absl::StrCat("--map '", m, "': expected INPUT=COL[,COL...]"));
    InputMap im;
    im.input = m.substr(0, eq);
    const TensorInfo* info = find_input(im.input);
    if (!info)
      return absl::InvalidArgumentError(absl::StrCat("--map '", m, "': the model has no input '", im.input,
                                                     "' (inputs: ", absl::StrJoin(input_names, ", "), ")"));
    for (const auto& p : plan)
      if (p.input == im.input) return absl::InvalidArgumentError(absl::StrCat("input '", im.input, "' is mapped twice"));
    if (info->kind != "tensor")
      return absl::InvalidArgumentError(absl::StrCat("input '", im.input, "' is a ", info->kind, ", not a tensor"));
    im.dtype = info->dtype;
    im.columns = absl::StrSplit(m.substr(eq + 1), ',');
    for (const auto& [name, len] : pad_of)
      if (name == im.input) im.pad = len;
    int njagged = 0, nscalar = 0, narray = 0;
    std::vector<const data::Column*> cols;
    for (const std::string& c : im.columns) {
      int idx = schema.IndexOf(c);
      if (idx < 0)
        return absl::InvalidArgumentError(absl::StrCat("--map '", m, "': unknown column '", c,
                                                       "' (columns: ", absl::StrJoin(all_columns, ", "), ")"));
      const data::Column& col = schema.columns[idx];
      if (col.dtype == DType::kString || col.dtype == DType::kUndefined)
        return absl::InvalidArgumentError(absl::StrCat("column '", c, "' holds ", col.source_type,
                                                       " values, not numbers"));
      cols.push_back(&col);
      if (col.jagged) {
        ++njagged;
        if (!col.shape.empty())
          return absl::InvalidArgumentError(absl::StrCat("column '", c, "' is jagged with items of shape ",
                                                         ShapeToString(col.shape), "; only jagged numbers can be padded"));
      } else if (col.shape.empty()) {
        ++nscalar;
      } else {
        ++narray;
      }
    }
    const int64_t ncols = static_cast<int64_t>(cols.size());
    std::string wants = absl::StrCat("input '", im.input, "' is declared ", DTypeName(info->dtype),
                                     DeclaredShape(*info));
    if (njagged > 0) {
      if (njagged != ncols)
        return absl::InvalidArgumentError(absl::StrCat("--map '", m, "': jagged and fixed columns cannot be mixed in one input"));
      if (im.pad == 0)
        return absl::InvalidArgumentError(absl::StrCat("--map '", m, "': column '", cols[0]->name,
                                                       "' is jagged; give --pad ", im.input, "=LEN"));
      if (ncols == 1 && Fits(*info, {im.pad})) {
        im.layout = Layout::kJaggedOne;
        im.entry_shape = {im.pad};
      } else if (Fits(*info, {ncols, im.pad})) {
        im.layout = Layout::kJaggedColsLen;
        im.entry_shape = {ncols, im.pad};
      } else if (Fits(*info, {im.pad, ncols})) {
        im.layout = Layout::kJaggedLenCols;
        im.entry_shape = {im.pad, ncols};
      } else {
        return absl::InvalidArgumentError(absl::StrCat(wants, "; ", ncols, " jagged column(s) padded to ", im.pad,
                                                       " give [batch,", ncols == 1 ? "" : absl::StrCat(ncols, ","),
                                                       im.pad, "]", ncols == 1 ? "" : absl::StrCat(" or [batch,", im.pad, ",", ncols, "]")));
      }
    } else {
      if (im.pad != 0)
        return absl::InvalidArgumentError(absl::StrCat("--pad ", im.input, ": no column of '", m, "' is jagged"));
      if (narray > 0) {
        if (ncols != 1)
          return absl::InvalidArgumentError(absl::StrCat("--map '", m, "': a fixed-array column (", cols[0]->name,
                                                         ") must be the only column of its input"));
        im.layout = Layout::kFixedArray;
        im.entry_shape = cols[0]->shape;
        if (!Fits(*info, im.entry_shape))
          return absl::InvalidArgumentError(absl::StrCat(wants, "; column '", cols[0]->name, "' gives [batch,",
                                                         absl::StrJoin(im.entry_shape, ","), "]"));
      } else {
        im.layout = Layout::kStackScalars;
        if (ncols == 1 && info->has_shape && info->shape.size() == 1) {
          im.entry_shape = {};
        } else {
          im.entry_shape = {ncols};
          if (!Fits(*info, im.entry_shape))
            return absl::InvalidArgumentError(absl::StrCat(wants, "; ", ncols, " scalar column(s) give [batch,", ncols, "]"));
        }
      }
    }
    if (info->has_shape && !info->shape.empty() && info->shape[0] >= 0) im.fixed_batch = info->shape[0];
    plan.push_back(std::move(im));
  }
  for (const auto& in : session.inputs()) {
    bool mapped = false;
    for (const auto& p : plan) mapped |= p.input == in.name;
    if (!mapped)
      return absl::InvalidArgumentError(absl::StrCat("model input '", in.name, "' (", DTypeName(in.dtype),
                                                     DeclaredShape(in), ") is not mapped: add --map ", in.name,
                                                     "=COL[,COL...]"));
  }
  return plan;
}

// Scalar columns of the input's own dtype (4 or 8 bytes) stacked into
// [n, ncols] a block of rows at a time, so that the block's rows stay in L1
// while every column is written into them (column by column over the whole
// batch, each column's pass touched every cache line of the input again).
// False (nothing written) where a column needs a conversion.
bool StackSameType(const InputMap& im, const data::Batch& batch, int64_t n, Tensor* t) {
  const size_t size = DTypeSize(im.dtype);
  if (size != 4 && size != 8) return false;
  std::vector<const char*> src;
  for (const std::string& name : im.columns) {
    const data::ColumnBatch* cb = batch.Find(name);
    if (!cb || cb->values.dtype() != im.dtype || cb->values.size() != n) return false;
    src.push_back(static_cast<const char*>(cb->values.raw_data()));
  }
  const int64_t ncols = static_cast<int64_t>(src.size());
  char* dst = static_cast<char*>(t->raw_mutable_data());
  constexpr int64_t kBlockRows = 64;
  auto stack = [&](auto size_tag) {
    constexpr size_t k = decltype(size_tag)::value;
    for (int64_t e0 = 0; e0 < n; e0 += kBlockRows) {
      const int64_t e1 = std::min(n, e0 + kBlockRows);
      for (int64_t c = 0; c < ncols; ++c) {
        const char* from = src[c];
        for (int64_t e = e0; e < e1; ++e) std::memcpy(dst + (e * ncols + c) * k, from + e * k, k);
      }
    }
  };
  if (size == 4) {
    stack(std::integral_constant<size_t, 4>());
  } else {
    stack(std::integral_constant<size_t, 8>());
  }
  return true;
}

// Builds one input tensor of `rows` entries (rows >= batch.num_entries; the
// rest zero) from the batch's columns.
absl::StatusOr<Tensor> BuildInput(const InputMap& im, const data::Batch& batch, int64_t rows) {
  Shape shape = {rows};
  for (int64_t d : im.entry_shape) shape.push_back(d);
  Tensor t = rows == batch.num_entries ? Tensor::Empty(im.dtype, shape) : Tensor::Zeros(im.dtype, shape);
  const int64_t n = batch.num_entries;
  const int64_t ncols = static_cast<int64_t>(im.columns.size());
  if (im.layout == Layout::kStackScalars && ncols > 1 && StackSameType(im, batch, n, &t)) return t;
  for (int64_t c = 0; c < ncols; ++c) {
    const data::ColumnBatch* cb = batch.Find(im.columns[c]);
    if (!cb) return absl::InternalError(absl::StrCat("column '", im.columns[c], "' missing from the batch"));
    absl::Status st;
    switch (im.layout) {
      case Layout::kStackScalars: st = ConvertInto(&t, c, ncols, cb->values, n); break;
      case Layout::kFixedArray:
      case Layout::kJaggedOne: st = ConvertInto(&t, 0, 1, cb->values, cb->values.size()); break;
      case Layout::kJaggedColsLen:
        // entry e, column c, slot k at (e * ncols + c) * LEN + k.
        for (int64_t e = 0; e < n && st.ok(); ++e) {
          Tensor row = cb->values;  // [n, LEN]
          const size_t es = DTypeSize(row.dtype());
          Tensor view = Tensor::Wrap(row.dtype(), {im.pad},
                                     static_cast<char*>(row.raw_mutable_data()) + e * im.pad * es);
          st = ConvertInto(&t, (e * ncols + c) * im.pad, 1, view, im.pad);
        }
        break;
      case Layout::kJaggedLenCols:
        // entry e, slot k, column c at (e * LEN + k) * ncols + c: flat [n*LEN] strided by ncols.
        st = ConvertInto(&t, c, ncols, cb->values, n * im.pad);
        break;
    }
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("column '", im.columns[c], "': ", st.message()));
  }
  return t;
}

// ---------------------------------------------------------------------------
// Output files.

struct OutFile {
  std::string name;       // graph output name
  std::string final_path;
  std::string partial_path;
  int fd = -1;
  uint64_t bytes = 0;     // data bytes written after the header
  DType dtype = DType::kUndefined;
  Shape row_shape;        // per entry
  bool known = false;     // row_shape/dtype known
};

std::string NpyHeader(DType dtype, int64_t rows, const Shape& row_shape) {
  std::string shape = absl::StrCat("(", rows, row_shape.empty() ? ",)" : "");
  for (int64_t d : row_shape) absl::StrAppend(&shape, ", ", d);
  if (!row_shape.empty()) shape += ")";
  std::string dict = absl::StrCat("{'descr': '", DTypeNumpyDescr(dtype), "', 'fortran_order': False, 'shape': ", shape, ", }");
  std::string header("\x93NUMPY\x01\x00", 8);
  const size_t len = kNpyHeaderBytes - 10;
  dict.resize(len - 1, ' ');
  dict += '\n';
  header += static_cast<char>(len & 0xff);
  header += static_cast<char>(len >> 8);
  header += dict;
  return header;
}

absl::Status WriteAll(int fd, const char* p, size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

struct Progress {
  std::string job;
  int64_t done = 0;
  struct Out {
    std::string name;
    uint64_t bytes = 0;
    int dtype = 0;
    std::vector<int64_t> row_shape;
    bool known = false;
  };
  std::vector<Out> outs;
};

std::string SerializeProgress(const Progress& p) {
  std::string s = absl::StrCat("hepml-run-progress 1\njob ", p.job, "\ndone ", p.done, "\n");
  for (const auto& o : p.outs)
    absl::StrAppend(&s, "out ", o.bytes, " ", o.known ? 1 : 0, " ", o.dtype, " ", o.row_shape.size(),
                    o.row_shape.empty() ? "" : " ", absl::StrJoin(o.row_shape, " "), " ", o.name, "\n");
  return s;
}

absl::StatusOr<Progress> ParseProgress(const std::string& text, const std::string& path) {
  Progress p;
  std::istringstream in(text);
  std::string line;
  auto bad = [&] { return absl::DataLossError(absl::StrCat(path, ": not a progress file of hepml run")); };
  if (!std::getline(in, line) || line != "hepml-run-progress 1") return bad();
  if (!std::getline(in, line) || line.rfind("job ", 0) != 0) return bad();
  p.job = line.substr(4);
  if (!std::getline(in, line) || line.rfind("done ", 0) != 0 || !absl::SimpleAtoi(line.substr(5), &p.done)) return bad();
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag;
    Progress::Out o;
    int known = 0;
    size_t rank = 0;
    if (!(ls >> tag >> o.bytes >> known >> o.dtype >> rank) || tag != "out" || rank > 16) return bad();
    o.known = known != 0;
    o.row_shape.resize(rank);
    for (auto& d : o.row_shape)
      if (!(ls >> d)) return bad();
    ls.get();
    std::getline(ls, o.name);
    p.outs.push_back(std::move(o));
  }
  return p;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat(tmp, ": ", std::strerror(errno)));
  absl::Status st = WriteAll(fd, content.data(), content.size(), tmp);
  if (st.ok() && ::fsync(fd) != 0) st = absl::InternalError(absl::StrCat(tmp, ": fsync: ", std::strerror(errno)));
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  return st;
}

void SyncDir(const std::string& file) {
  std::string dir = fs::path(file).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// One batch's model inputs.
struct Ready {
  int64_t entry_start = 0;
  int64_t num_entries = 0;
  uint64_t input_bytes = 0;
  Session::NamedTensors inputs;
};

absl::Status BuildInputs(const std::vector<InputMap>& plan, const data::Batch& batch, Ready* r) {
  r->entry_start = batch.entry_start;
  r->num_entries = batch.num_entries;
  r->input_bytes = 0;
  r->inputs.clear();
  for (const auto& cb : batch.columns) r->input_bytes += cb.values.nbytes();
  for (const InputMap& im : plan) {
    int64_t rows = im.fixed_batch > 0 ? im.fixed_batch : batch.num_entries;
    auto t = BuildInput(im, batch, rows);
    if (!t.ok()) return t.status();
    r->inputs.emplace_back(im.input, std::move(*t));
  }
  return absl::OkStatus();
}

std::string HumanSeconds(double s) {
  if (s < 0 || s > 1e7) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return absl::StrCat(t / 3600, "h", (t / 60) % 60, "m");
  if (t >= 60) return absl::StrCat(t / 60, "m", t % 60, "s");
  return absl::StrCat(t, "s");
}

hid_t H5TypeOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return H5T_NATIVE_FLOAT;
    case DType::kFloat64: return H5T_NATIVE_DOUBLE;
    case DType::kInt8: return H5T_NATIVE_INT8;
    case DType::kInt16: return H5T_NATIVE_INT16;
    case DType::kInt32: return H5T_NATIVE_INT32;
    case DType::kInt64: return H5T_NATIVE_INT64;
    case DType::kUInt8: return H5T_NATIVE_UINT8;
    case DType::kBool: return H5T_NATIVE_UINT8;
    case DType::kUInt16: return H5T_NATIVE_UINT16;
    case DType::kUInt32: return H5T_NATIVE_UINT32;
    case DType::kUInt64: return H5T_NATIVE_UINT64;
    default: return -1;
  }
}

// Copies the completed .npy outputs into one HDF5 file (a dataset per output,
// named after it), written as PATH.partial and renamed: HDF5 files are not
// safe against a kill mid-write, so the resumable state stays in .npy files
// and the HDF5 file appears only complete. Reads 16 MiB at a time.
absl::Status WriteHdf5(const std::string& path, const std::vector<OutFile>& outs, int64_t rows) {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
  const std::string partial = path + ".partial";
  hid_t file = H5Fcreate(partial.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return absl::InternalError(absl::StrCat(partial, ": HDF5 cannot create the file"));
  absl::Status st;
  std::vector<char> buf;
  for (const OutFile& o : outs) {
    hid_t type = H5TypeOf(o.dtype);
    if (type < 0) {
      st = absl::InvalidArgumentError(absl::StrCat("output '", o.name, "' is ", DTypeName(o.dtype), ", which --out .h5 cannot hold"));
      break;
    }
    std::vector<hsize_t> dims = {static_cast<hsize_t>(rows)};
    int64_t row_elems = 1;
    for (int64_t d : o.row_shape) dims.push_back(static_cast<hsize_t>(d)), row_elems *= d;
    const size_t row_bytes = static_cast<size_t>(row_elems) * DTypeSize(o.dtype);
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t dset = H5Dcreate2(file, Sanitize(o.name).c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int fd = ::open(o.final_path.c_str(), O_RDONLY);
    if (dset < 0 || fd < 0) {
      st = absl::InternalError(absl::StrCat(partial, ": cannot write dataset '", o.name, "'"));
    } else if (rows > 0 && row_bytes > 0) {
      const int64_t step = std::max<int64_t>(1, static_cast<int64_t>((16 << 20) / row_bytes));
      buf.resize(static_cast<size_t>(step) * row_bytes);
      for (int64_t r = 0; r < rows && st.ok(); r += step) {
        const int64_t n = std::min(step, rows - r);
        const size_t nb = static_cast<size_t>(n) * row_bytes;
        if (::pread(fd, buf.data(), nb, static_cast<off_t>(kNpyHeaderBytes + r * row_bytes)) != static_cast<ssize_t>(nb)) {
          st = absl::InternalError(absl::StrCat(o.final_path, ": short read"));
          break;
        }
        std::vector<hsize_t> start(dims.size(), 0), count = dims;
        start[0] = static_cast<hsize_t>(r);
        count[0] = static_cast<hsize_t>(n);
        hid_t mem = H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr);
        H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
        if (H5Dwrite(dset, type, mem, space, H5P_DEFAULT, buf.data()) < 0)
          st = absl::InternalError(absl::StrCat(partial, ": HDF5 write of '", o.name, "' failed"));
        H5Sclose(mem);
      }
    }
    if (fd >= 0) ::close(fd);
    if (dset >= 0) H5Dclose(dset);
    H5Sclose(space);
    if (!st.ok()) break;
  }
  if (H5Fclose(file) < 0 && st.ok()) st = absl::InternalError(absl::StrCat(partial, ": HDF5 close failed"));
  if (st.ok()) {
    int fd = ::open(partial.c_str(), O_RDONLY);
    if (fd >= 0) ::fsync(fd), ::close(fd);
    if (::rename(partial.c_str(), path.c_str()) != 0) st = absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  if (!st.ok()) ::unlink(partial.c_str());
  return st;
}

int Fail(absl::string_view message, int code = kExitFailure) {
  PrintError(kCmd, message);
  return code;
}

}  // namespace

int RunOverDataset(const RunDataArgs& a) {
  if (a.batch_size <= 0) return Fail("--batch-size must be > 0", kExitUsage);
  if (a.out.empty()) return Fail("--data needs --out FILE.npy", kExitUsage);
  if (a.maps.empty()) return Fail("--data needs --map INPUT=COL[,COL...] for the model's inputs", kExitUsage);
  const bool h5 = absl::EndsWith(a.out, ".h5") || absl::EndsWith(a.out, ".hdf5");
  int64_t shard_i = 0, shard_n = 1;
  if (!a.shard.empty()) {
    std::vector<std::string> parts = absl::StrSplit(a.shard, '/');
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &shard_i) || !absl::SimpleAtoi(parts[1], &shard_n) ||
        shard_n < 1 || shard_i < 0 || shard_i >= shard_n)
      return Fail(absl::StrCat("--shard '", a.shard, "': expected I/N with 0 <= I < N"), kExitUsage);
  }
  auto format = data::ParseFormat(a.format);
  if (!format.ok()) return Fail(absl::StrCat("--format: ", format.status().message()), kExitUsage);

  SessionOptions sopts;
  sopts.num_threads = a.threads;
  auto precision = ParsePrecision(a.precision);
  if (!precision.ok()) return Fail(absl::StrCat("--precision: ", precision.status().message()), kExitUsage);
  sopts.precision = *precision;
  auto session = Session::Create(a.model, sopts);
  if (!session.ok()) return Fail(session.status().message());

  // Sharding: several files split by file (contiguous blocks), otherwise by entries.
  std::vector<std::string> urls = a.data;
  const bool by_files = shard_n > 1 && static_cast<int64_t>(urls.size()) >= shard_n;
  if (by_files) {
    int64_t nf = static_cast<int64_t>(urls.size());
    urls.assign(a.data.begin() + shard_i * nf / shard_n, a.data.begin() + (shard_i + 1) * nf / shard_n);
  }
  data::DatasetOptions dopts;
  dopts.format = *format;
  dopts.tree = a.tree;
  auto ds = data::Dataset::Open(urls, dopts);
  if (!ds.ok()) return Fail(ds.status().message());
  int64_t start = 0, stop = (*ds)->num_entries();
  if (shard_n > 1 && !by_files) {
    int64_t e = (*ds)->num_entries();
    start = shard_i * e / shard_n;
    stop = (shard_i + 1) * e / shard_n;
  }

  auto plan = PlanInputs(**session, (*ds)->schema(), a.maps, a.pads);
  if (!plan.ok()) return Fail(plan.status().message(), kExitUsage);
  for (const InputMap& im : *plan)
    if (im.fixed_batch > 0 && im.fixed_batch < a.batch_size)
      return Fail(absl::StrCat("input '", im.input, "' has a fixed batch dimension of ", im.fixed_batch,
                               "; use --batch-size ", im.fixed_batch),
                  kExitUsage);
  int64_t batch_size = a.batch_size;
  for (const InputMap& im : *plan)
    if (im.fixed_batch > 0) batch_size = im.fixed_batch;

  // Output files: one output -> --out as given; several -> STEM.<output>.npy.
  const auto& out_infos = (*session)->outputs();
  std::string stem = a.out;
  if (stem.size() > 4 && stem.substr(stem.size() - 4) == ".npy") stem.resize(stem.size() - 4);
  std::vector<OutFile> outs(out_infos.size());
  for (size_t i = 0; i < out_infos.size(); ++i) {
    if (out_infos[i].kind != "tensor")
      return Fail(absl::StrCat("output '", out_infos[i].name, "' is a ", out_infos[i].kind, ", not a tensor"));
    outs[i].name = out_infos[i].name;
    outs[i].final_path = h5 ? absl::StrCat(a.out, ".", Sanitize(out_infos[i].name), ".npy")
                         : out_infos.size() == 1 ? a.out
                                                 : absl::StrCat(stem, ".", Sanitize(out_infos[i].name), ".npy");
    outs[i].partial_path = outs[i].final_path + ".partial";
  }
  const std::string progress_path = a.out + ".progress";
  // The job's identity: resuming with other arguments would mix two jobs.
  std::string job = absl::StrCat("model=", a.model, ";data=", absl::StrJoin(a.data, ","), ";tree=", a.tree,
                                 ";map=", absl::StrJoin(a.maps, " "), ";pad=", absl::StrJoin(a.pads, " "),
                                 ";batch=", batch_size, ";shard=", a.shard, ";range=", start, "-", stop);
  for (char& c : job)
    if (c == '\n') c = ' ';

  Progress progress;
  progress.job = job;
  bool resumed = false;
  if (a.resume && fs::exists(progress_path)) {
    std::ifstream in(progress_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto p = ParseProgress(ss.str(), progress_path);
    if (!p.ok()) return Fail(p.status().message());
    if (p->job != job)
      return Fail(absl::StrCat(progress_path, ": records a job with other arguments (", p->job,
                               "); rerun with the same arguments, or without --resume to start again"),
                  kExitUsage);
    if (p->outs.size() != outs.size() || p->done < 0 || p->done > stop - start)
      return Fail(absl::StrCat(progress_path, ": does not match the model's outputs"));
    for (size_t i = 0; i < outs.size(); ++i) {
      const auto& po = p->outs[i];
      if (po.name != outs[i].name) return Fail(absl::StrCat(progress_path, ": does not match the model's outputs"));
      outs[i].bytes = po.bytes;
      outs[i].known = po.known;
      outs[i].dtype = static_cast<DType>(po.dtype);
      outs[i].row_shape.assign(po.row_shape.begin(), po.row_shape.end());
      if (!fs::exists(outs[i].partial_path) && p->done == stop - start && fs::exists(outs[i].final_path)) {
        outs[i].fd = -2;  // finished before the interruption
        continue;
      }
      outs[i].fd = ::open(outs[i].partial_path.c_str(), O_RDWR);
      if (outs[i].fd < 0)
        return Fail(absl::StrCat(outs[i].partial_path, ": ", std::strerror(errno), " (cannot resume; rerun without --resume)"));
      struct stat stt;
      if (::fstat(outs[i].fd, &stt) != 0 || static_cast<uint64_t>(stt.st_size) < kNpyHeaderBytes + po.bytes)
        return Fail(absl::StrCat(outs[i].partial_path, ": shorter than the progress file records; rerun without --resume"));
      // Drop whatever was written after the last complete batch.
      if (::ftruncate(outs[i].fd, static_cast<off_t>(kNpyHeaderBytes + po.bytes)) != 0 ||
          ::lseek(outs[i].fd, 0, SEEK_END) < 0)
        return Fail(absl::StrCat(outs[i].partial_path, ": ", std::strerror(errno)));
    }
    progress.done = p->done;
    resumed = true;
  } else {
    for (auto& o : outs) {
      std::error_code ec;
      fs::path dir = fs::path(o.final_path).parent_path();
      if (!dir.empty()) fs::create_directories(dir, ec);
      o.fd = ::open(o.partial_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
      if (o.fd < 0) return Fail(absl::StrCat(o.partial_path, ": ", std::strerror(errno)));
      std::string header(kNpyHeaderBytes, ' ');  // rewritten when the job completes
      absl::Status st = WriteAll(o.fd, header.data(), header.size(), o.partial_path);
      if (!st.ok()) return Fail(st.message());
    }
  }
  auto close_all = [&] {
    for (auto& o : outs)
      if (o.fd >= 0) ::close(o.fd), o.fd = -1;
  };
  auto checkpoint = [&]() -> absl::Status {
    for (auto& o : outs)
      if (o.fd >= 0 && ::fsync(o.fd) != 0)
        return absl::InternalError(absl::StrCat("checkpoint: ", o.partial_path, ": fsync: ", std::strerror(errno)));
    progress.outs.clear();
    for (auto& o : outs) {
      Progress::Out po;
      po.name = o.name;
      po.bytes = o.bytes;
      po.known = o.known;
      po.dtype = static_cast<int>(o.dtype);
      po.row_shape.assign(o.row_shape.begin(), o.row_shape.end());
      progress.outs.push_back(po);
    }
    absl::Status st = WriteFileAtomically(progress_path, SerializeProgress(progress));
    if (!st.ok()) return absl::InternalError(absl::StrCat("checkpoint: ", st.message()));
    return st;
  };
  if (!resumed) {
    absl::Status st = checkpoint();
    if (!st.ok()) return close_all(), Fail(st.message());
  }

  data::BatchOptions bopts;
  bopts.batch_size = batch_size;
  bopts.entry_start = start + progress.done;
  bopts.entry_stop = stop;
  for (const InputMap& im : *plan) {
    for (const std::string& c : im.columns)
      if (std::find(bopts.columns.begin(), bopts.columns.end(), c) == bopts.columns.end()) bopts.columns.push_back(c);
    if (im.pad > 0) bopts.pad_length = std::max(bopts.pad_length, im.pad);
  }
  // Columns of one read share one pad length; inputs padded differently would
  // need separate reads.
  for (const InputMap& im : *plan)
    if (im.pad > 0 && im.pad != bopts.pad_length)
      return close_all(), Fail("every --pad must give the same length (one read pads all jagged columns alike)", kExitUsage);

  const bool tty = ::isatty(2);
  const auto t0 = std::chrono::steady_clock::now();
  auto last_print = t0;
  auto last_checkpoint = t0;
  const auto checkpoint_every = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::max(a.checkpoint_seconds, 0.0)));
  int64_t entries_this_run = 0;
  uint64_t bytes_this_run = 0;
  const int64_t total = stop - start;
  absl::Status failure;
  {
    // The dataset's read-ahead thread decodes the next two batches and builds
    // their model inputs (the batch's columns become the inputs, by input
    // name) while the model runs on this one.
    bopts.read_ahead_batches = 2;
    bopts.prepare = [&plan = *plan](data::Batch& b) -> absl::Status {
      Ready ready;
      absl::Status st = BuildInputs(plan, b, &ready);
      if (!st.ok()) return st;
      b.columns.clear();
      for (auto& [name, t] : ready.inputs) {
        data::ColumnBatch cb;
        cb.name = name;
        cb.values = std::move(t);
        b.columns.push_back(std::move(cb));
      }
      return absl::OkStatus();
    };
    data::BatchIterator reader = (*ds)->Batches(bopts);
    data::Batch batch;
    Ready r;
    while (progress.done < total) {
      auto more = reader.Next(&batch);
      if (!more.ok()) {
        failure = more.status();
        break;
      }
      if (!*more) break;
      r.entry_start = batch.entry_start;
      r.num_entries = batch.num_entries;
      r.input_bytes = 0;
      r.inputs.clear();
      for (auto& cb : batch.columns) {
        r.input_bytes += cb.values.nbytes();
        r.inputs.emplace_back(cb.name, std::move(cb.values));
      }
      auto outputs = (*session)->Run(r.inputs);
      if (!outputs.ok()) {
        failure = absl::Status(outputs.status().code(),
                               absl::StrCat("entries ", r.entry_start, "-", r.entry_start + r.num_entries, ": ",
                                            outputs.status().message()));
        break;
      }
      const int64_t rows = r.inputs.empty() ? r.num_entries : r.inputs[0].second.dim(0);
      std::vector<uint64_t> bytes_before;
      for (const OutFile& o : outs) bytes_before.push_back(o.bytes);
      for (size_t i = 0; i < outs.size() && failure.ok(); ++i) {
        const Tensor& t = (*outputs)[i];
        OutFile& o = outs[i];
        if (t.rank() == 0 || t.dim(0) != rows) {
          failure = absl::InvalidArgumentError(absl::StrCat("output '", o.name, "' has shape ", ShapeToString(t.shape()),
                                                            ": its first dimension is not the batch (", rows,
                                                            "), so it cannot be split per entry"));
          break;
        }
        Shape row(t.shape().begin() + 1, t.shape().end());
        if (!o.known) {
          if (DTypeNumpyDescr(t.dtype())[0] == '\0' || t.dtype() == DType::kString) {
            failure = absl::InvalidArgumentError(absl::StrCat("output '", o.name, "' is ", DTypeName(t.dtype()),
                                                              ", which .npy cannot hold"));
            break;
          }
          o.known = true;
          o.dtype = t.dtype();
          o.row_shape = row;
        } else if (row != o.row_shape || t.dtype() != o.dtype) {
          failure = absl::InvalidArgumentError(absl::StrCat("output '", o.name, "' changed shape from [batch,",
                                                            absl::StrJoin(o.row_shape, ","), "] to ",
                                                            ShapeToString(t.shape()), " between batches"));
          break;
        }
        const size_t n = t.nbytes() / static_cast<size_t>(rows) * static_cast<size_t>(r.num_entries);
        absl::Status st = WriteAll(o.fd, static_cast<const char*>(t.raw_data()), n, o.partial_path);
        if (!st.ok()) failure = st;
        o.bytes += n;
      }
      if (!failure.ok()) {
        // This batch is incomplete: the next checkpoint records the sizes before it.
        for (size_t i = 0; i < outs.size(); ++i) outs[i].bytes = bytes_before[i];
        break;
      }
      progress.done += r.num_entries;
      entries_this_run += r.num_entries;
      bytes_this_run += r.input_bytes;
      auto now = std::chrono::steady_clock::now();
      // A chunk ends after checkpoint_seconds (fsync costs milliseconds per call;
      // once per batch would dominate small models) or at the last entry.
      if (progress.done == total || now - last_checkpoint >= checkpoint_every) {
        absl::Status st = checkpoint();
        if (!st.ok()) {
          failure = st;
          break;
        }
        last_checkpoint = now;
      }
      if (tty && (now - last_print > std::chrono::milliseconds(500) || progress.done == total)) {
        last_print = now;
        double secs = std::chrono::duration<double>(now - t0).count();
        double rate = entries_this_run / std::max(secs, 1e-9);
        std::fprintf(stderr, "\r%lld/%lld entries  %.0f entries/s  %.1f MB/s  ETA %s   ",
                     static_cast<long long>(progress.done), static_cast<long long>(total), rate,
                     bytes_this_run / std::max(secs, 1e-9) / 1e6,
                     HumanSeconds((total - progress.done) / std::max(rate, 1e-9)).c_str());
        std::fflush(stderr);
      }
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  if (failure.ok() && progress.done != total)
    failure = absl::DataLossError(absl::StrCat("the dataset ended after ", start + progress.done, " of ", stop, " entries"));
  if (!failure.ok()) {
    // Record the complete batches so that --resume continues after them.
    if (progress.done > 0 && !absl::StartsWith(failure.message(), "checkpoint:")) {
      absl::Status st = checkpoint();
      if (!st.ok()) progress.done = 0;
    }
    close_all();
    return Fail(absl::StrCat(failure.message(), " (", progress.done, " of ", total,
                             " entries written; rerun with --resume to continue)"));
  }

  // Complete: final headers, then rename.
  for (size_t i = 0; i < outs.size(); ++i) {
    OutFile& o = outs[i];
    if (o.fd == -2) continue;
    if (!o.known) {  // no entries: shape from the model's declaration
      o.dtype = out_infos[i].dtype;
      for (size_t d = 1; d < out_infos[i].shape.size(); ++d) o.row_shape.push_back(std::max<int64_t>(out_infos[i].shape[d], 0));
    }
    std::string header = NpyHeader(o.dtype, total, o.row_shape);
    if (::pwrite(o.fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size()) || ::fsync(o.fd) != 0) {
      close_all();
      return Fail(absl::StrCat(o.partial_path, ": ", std::strerror(errno)));
    }
    ::close(o.fd);
    o.fd = -1;
    if (::rename(o.partial_path.c_str(), o.final_path.c_str()) != 0) {
      close_all();
      return Fail(absl::StrCat(o.final_path, ": ", std::strerror(errno)));
    }
    SyncDir(o.final_path);
  }
  std::error_code ec;
  if (h5) {
    absl::Status st = WriteHdf5(a.out, outs, total);
    if (!st.ok()) return Fail(absl::StrCat(st.message(), " (rerun with --resume to retry)"));
    for (const OutFile& o : outs) fs::remove(o.final_path, ec);
  }
  fs::remove(progress_path, ec);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const OutFile& o : outs)
    std::cout << o.name << ": " << DTypeName(o.dtype) << "[" << total
              << (o.row_shape.empty() ? "" : ",") << absl::StrJoin(o.row_shape, ",") << "] -> "
              << (h5 ? absl::StrCat(a.out, ":/", Sanitize(o.name)) : o.final_path) << "\n";
  std::cout << entries_this_run << " entries in " << secs << " s" << (resumed ? " (resumed)" : "") << "\n";
  return kExitOk;
}

}  // namespace hepml::cli
