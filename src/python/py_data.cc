// hepml.open_dataset: columnar reads of ROOT TTrees and RNTuples, .npy/.npz,
// CSV and HDF5 files (include/hepml/data.h) as batches of numpy arrays.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hepml/data.h"
#include "py_common.h"

namespace hepml::python {
namespace {

namespace data = hepml::data;

// A column's values as numpy: the batch's own buffer (no copy, writable:
// every batch is freshly read), or an object array of str for text columns.
py::object ColumnArray(Tensor t) {
  if (t.dtype() == DType::kString) {
    py::list items;
    const std::string* s = t.data<std::string>();
    for (int64_t i = 0; i < t.size(); ++i) items.append(py::str(s[i]));
    py::object array = py::module_::import("numpy").attr("array")(items, "object");
    std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
    return array.attr("reshape")(shape);
  }
  return ToArray(std::move(t), /*writeable=*/true);
}

py::dict BatchDict(data::Batch batch) {
  py::dict out;
  for (data::ColumnBatch& c : batch.columns) {
    py::object values = ColumnArray(std::move(c.values));
    if (c.offsets.dtype() != DType::kUndefined) {
      out[py::str(c.name)] = py::make_tuple(values, ColumnArray(std::move(c.offsets)));
    } else if (c.mask.dtype() != DType::kUndefined) {
      out[py::str(c.name)] = py::make_tuple(values, ColumnArray(std::move(c.mask)));
    } else {
      out[py::str(c.name)] = values;
    }
  }
  return out;
}

// urls: a str / os.PathLike or a list of them.
std::vector<std::string> UrlList(const py::object& urls) {
  std::vector<std::string> out;
  if (py::isinstance<py::str>(urls) || py::hasattr(urls, "__fspath__")) {
    out.push_back(py::str(urls));
  } else {
    for (const py::handle u : urls) out.push_back(py::str(u));
  }
  if (out.empty()) throw py::value_error("open_dataset needs at least one file");
  return out;
}

class PyDataset {
 public:
  PyDataset(const py::object& urls, const std::optional<std::vector<std::string>>& columns, const std::string& tree,
            const std::string& format, int64_t batch_size, int64_t pad_length, int64_t entry_start,
            int64_t entry_stop, const std::optional<std::string>& csv_separator) {
    data::DatasetOptions options;
    options.format = Unwrap(data::ParseFormat(format));
    options.tree = tree;
    if (csv_separator) {
      if (csv_separator->size() != 1)
        throw py::value_error(absl::StrCat("csv_separator must be one character, not '", *csv_separator, "'"));
      options.csv_separator = (*csv_separator)[0];
    }
    defaults_.columns = columns.value_or(std::vector<std::string>{});
    defaults_.pad_length = pad_length;
    defaults_.batch_size = batch_size;
    defaults_.entry_start = entry_start;
    defaults_.entry_stop = entry_stop;
    CheckOptions(defaults_);
    const std::vector<std::string> list = UrlList(urls);
    absl::StatusOr<std::unique_ptr<data::Dataset>> ds;
    {
      py::gil_scoped_release release;
      ds = data::Dataset::Open(list, options);
    }
    dataset_ = Unwrap(std::move(ds));
    // An unknown column is an error now, not at the first batch.
    for (const std::string& c : defaults_.columns)
      if (dataset_->schema().IndexOf(c) < 0) {
        std::string names;
        for (const data::Column& col : dataset_->schema().columns) absl::StrAppend(&names, names.empty() ? "" : ", ", col.name);
        throw py::key_error(absl::StrCat("column '", c, "' is not in the dataset (columns: ", names, ")"));
      }
  }

  static void CheckOptions(const data::BatchOptions& o) {
    if (o.batch_size <= 0) throw py::value_error(absl::StrCat("batch_size must be > 0, not ", o.batch_size));
    if (o.pad_length < 0) throw py::value_error(absl::StrCat("pad_length must be >= 0, not ", o.pad_length));
  }

  py::list Schema() const {
    py::list out;
    for (const data::Column& c : dataset_->schema().columns) {
      py::dict d;
      d["name"] = c.name;
      d["dtype"] = NumpyName(c.dtype);
      d["shape"] = std::vector<int64_t>(c.shape.begin(), c.shape.end());
      d["jagged"] = c.jagged;
      d["source_type"] = c.source_type;
      out.append(d);
    }
    return out;
  }

  py::list Files() const {
    py::list out;
    for (const data::FileInfo& f : dataset_->files()) {
      py::dict d;
      d["url"] = f.url;
      d["format"] = data::FormatName(f.format);
      d["object"] = f.object;
      d["num_entries"] = f.num_entries;
      d["file_bytes"] = f.file_bytes;
      out.append(d);
    }
    return out;
  }

  int64_t NumEntries() const { return dataset_->num_entries(); }

  py::dict Read(int64_t start, int64_t stop, const std::optional<std::vector<std::string>>& columns,
                std::optional<int64_t> pad_length) {
    data::ReadOptions options = defaults_;
    if (columns) options.columns = *columns;
    if (pad_length) options.pad_length = *pad_length;
    absl::StatusOr<data::Batch> batch;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(*mutex_);
      batch = dataset_->Read(start, stop, options);
    }
    return BatchDict(Unwrap(std::move(batch)));
  }

  data::BatchIterator Batches(const data::BatchOptions& options) { return dataset_->Batches(options); }
  const data::BatchOptions& defaults() const { return defaults_; }
  const std::shared_ptr<std::mutex>& mutex() const { return mutex_; }

 private:
  std::unique_ptr<data::Dataset> dataset_;
  // A Dataset and its iterators share the files' readers, which are not
  // synchronised: reads from several Python threads take turns.
  std::shared_ptr<std::mutex> mutex_ = std::make_shared<std::mutex>();
  data::BatchOptions defaults_;
};

class PyBatchIterator {
 public:
  PyBatchIterator(data::BatchIterator it, std::shared_ptr<std::mutex> mutex)
      : it_(std::move(it)), mutex_(std::move(mutex)) {}
  py::dict Next() {
    if (done_) throw py::stop_iteration();
    data::Batch batch;
    absl::StatusOr<bool> more;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(*mutex_);
      more = it_.Next(&batch);
    }
    if (!more.ok() || !*more) done_ = true;
    if (!Unwrap(std::move(more))) throw py::stop_iteration();
    return BatchDict(std::move(batch));
  }

 private:
  data::BatchIterator it_;
  std::shared_ptr<std::mutex> mutex_;
  bool done_ = false;
};

}  // namespace

void RegisterData(py::module_& m) {
  py::class_<PyBatchIterator>(m, "BatchIterator", "Batches of a Dataset (see Dataset.batches).")
      .def("__iter__", [](PyBatchIterator& it) -> PyBatchIterator& { return it; })
      .def("__next__", &PyBatchIterator::Next);

  py::class_<PyDataset>(m, "Dataset", R"doc(
Files read as one dataset of typed columns (see open_dataset). Iterating
yields one dict per batch: column name -> numpy array of the batch's
entries ([entries, shape...]). A jagged column (a variable number of items
per entry) is a tuple (values, offsets): the flat items and int64 offsets
[entries + 1], item i of entry e at values[offsets[e] + i]; with pad_length
> 0 it is (values, mask) instead: values [entries, pad_length, ...] (zero
where unused) and a bool mask of the items present. Arrays are the batch's
own memory (writable, no copy); text columns are object arrays of str.
Reads release the GIL; threads sharing one Dataset take turns.
)doc")
      .def_property_readonly("schema", &PyDataset::Schema, R"doc(
The columns: a list of dicts with "name", "dtype" (numpy name), "shape" (per
entry, or per item for a jagged column), "jagged" and "source_type" (the
type as the file spells it).
)doc")
      .def_property_readonly("num_entries", &PyDataset::NumEntries, "Entries in all files together.")
      .def_property_readonly("files", &PyDataset::Files,
                             "Per file: \"url\", \"format\", \"object\" (tree or group), \"num_entries\", \"file_bytes\".")
      .def("__len__", &PyDataset::NumEntries)
      .def("read", &PyDataset::Read, py::arg("start"), py::arg("stop"), py::kw_only(),
           py::arg("columns") = py::none(), py::arg("pad_length") = py::none(),
           "Entries [start, stop) as one batch dict (columns and pad_length default to open_dataset's).")
      .def(
          "batches",
          [](PyDataset& d, std::optional<int64_t> batch_size, const std::optional<std::vector<std::string>>& columns,
             std::optional<int64_t> pad_length, std::optional<int64_t> entry_start,
             std::optional<int64_t> entry_stop) {
            data::BatchOptions o = d.defaults();
            if (batch_size) o.batch_size = *batch_size;
            if (columns) o.columns = *columns;
            if (pad_length) o.pad_length = *pad_length;
            if (entry_start) o.entry_start = *entry_start;
            if (entry_stop) o.entry_stop = *entry_stop;
            PyDataset::CheckOptions(o);
            return PyBatchIterator(d.Batches(o), d.mutex());
          },
          py::keep_alive<0, 1>(), py::kw_only(), py::arg("batch_size") = py::none(), py::arg("columns") = py::none(),
          py::arg("pad_length") = py::none(), py::arg("entry_start") = py::none(), py::arg("entry_stop") = py::none(),
          R"doc(
An iterator of batch dicts over [entry_start, entry_stop) with these options
(each defaults to open_dataset's). A read error raises from the iteration
with the file's name and what is wrong.
)doc")
      .def(
          "__iter__", [](PyDataset& d) { return PyBatchIterator(d.Batches(d.defaults()), d.mutex()); }, py::keep_alive<0, 1>());

  m.def(
      "open_dataset",
      [](const py::object& urls, const std::optional<std::vector<std::string>>& columns, const std::string& tree,
         const std::string& format, int64_t batch_size, int64_t pad_length, int64_t entry_start, int64_t entry_stop,
         const std::optional<std::string>& csv_separator) {
        return std::make_unique<PyDataset>(urls, columns, tree, format, batch_size, pad_length, entry_start,
                                           entry_stop, csv_separator);
      },
      py::arg("urls"), py::kw_only(), py::arg("columns") = py::none(), py::arg("tree") = "",
      py::arg("format") = "auto", py::arg("batch_size") = 1024, py::arg("pad_length") = 0,
      py::arg("entry_start") = 0, py::arg("entry_stop") = -1, py::arg("csv_separator") = py::none(), R"doc(
Opens files as one Dataset (their entries follow each other; every file must
have the same columns): ROOT TTrees and RNTuples, .npy, .npz, CSV/TSV and
HDF5, by path, file:// URL or root:// (XRootD).

urls: a path/URL or a list of them. columns: the columns to read, in this
order (default: all; an unknown one raises KeyError listing the columns).
tree: the ROOT TTree/RNTuple path or HDF5 group (default: the file's only
tree). format: "auto" (from the extension), "root", "npy", "npz", "csv" or
"hdf5". batch_size: entries per batch when iterating. pad_length: 0 gives
jagged columns as (values, offsets), > 0 pads or cuts them to that many items
with a mask. entry_start/entry_stop: the entry range iterated (-1: the end).

Raises FileNotFoundError for a missing file and ValueError (or
NotImplementedError, RuntimeError) naming the file and what is wrong with it.
)doc");
}

}  // namespace hepml::python
