// `hepml data info URL... [--tree NAME] [--format F] [--json]`: a dataset's
// schema, entries, compression and sizes.
// `hepml data head URL... [-n 5] [--columns a,b] [--tree NAME] [--pad N]`:
// its first entries, one line per entry.
#include <cmath>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "hepml/data.h"
#include "nlohmann/json.hpp"

namespace hepml::cli {
namespace {

using nlohmann::ordered_json;

struct DataArgs {
  std::vector<std::string> urls;
  std::string tree;
  std::string format = "auto";
  std::string columns;
  int64_t n = 5;
  int64_t pad = 0;
  bool json = false;
};

absl::StatusOr<std::unique_ptr<data::Dataset>> OpenDataset(const DataArgs& a) {
  data::DatasetOptions options;
  auto f = data::ParseFormat(a.format);
  if (!f.ok()) return f.status();
  options.format = *f;
  options.tree = a.tree;
  return data::Dataset::Open(a.urls, options);
}

std::string TypeText(const data::Column& c) {
  std::string t = DTypeName(c.dtype);
  if (c.jagged) t += "[var]";
  for (int64_t d : c.shape) t += absl::StrCat("[", d, "]");
  return t;
}

std::string Bytes(int64_t b) {
  if (b < 0) return "-";
  if (b < 10 * 1024) return absl::StrCat(b, " B");
  if (b < 10 * 1024 * 1024) return absl::StrFormat("%.1f KiB", b / 1024.0);
  return absl::StrFormat("%.1f MiB", b / (1024.0 * 1024.0));
}

int RunInfo(const DataArgs& a) {
  auto ds = OpenDataset(a);
  if (!ds.ok()) {
    PrintError("data info", ds.status().message());
    return kExitFailure;
  }
  const data::Dataset& d = **ds;
  if (a.json) {
    ordered_json j;
    j["entries"] = d.num_entries();
    ordered_json files = ordered_json::array();
    for (const data::FileInfo& f : d.files()) {
      ordered_json fj;
      fj["url"] = f.url;
      fj["format"] = data::FormatName(f.format);
      fj["object"] = f.object;
      fj["entries"] = f.num_entries;
      fj["bytes"] = f.file_bytes;
      for (const auto& [k, v] : f.facts) fj[k] = v;
      fj["other_objects"] = f.other_objects;
      files.push_back(fj);
    }
    j["files"] = files;
    ordered_json cols = ordered_json::array();
    for (const data::Column& c : d.schema().columns) {
      ordered_json cj;
      cj["name"] = c.name;
      cj["dtype"] = DTypeName(c.dtype);
      cj["shape"] = std::vector<int64_t>(c.shape.begin(), c.shape.end());
      cj["jagged"] = c.jagged;
      cj["source_type"] = c.source_type;
      if (c.compressed_bytes >= 0) cj["compressed_bytes"] = c.compressed_bytes;
      if (c.uncompressed_bytes >= 0) cj["uncompressed_bytes"] = c.uncompressed_bytes;
      cols.push_back(cj);
    }
    j["columns"] = cols;
    std::cout << j.dump(2) << std::endl;
    return kExitOk;
  }
  for (const data::FileInfo& f : d.files()) {
    std::cout << f.url << "\n  format: " << data::FormatName(f.format);
    if (!f.object.empty()) std::cout << "\n  object: " << f.object;
    std::cout << "\n  entries: " << f.num_entries << "\n  file size: " << Bytes(f.file_bytes);
    for (const auto& [k, v] : f.facts) std::cout << "\n  " << k << ": " << v;
    if (!f.other_objects.empty()) {
      std::cout << "\n  other objects: " << absl::StrJoin(f.other_objects, ", ");
    }
    std::cout << "\n";
  }
  if (d.files().size() > 1) std::cout << "total entries: " << d.num_entries() << "\n";
  size_t w = 6;
  for (const data::Column& c : d.schema().columns) w = std::max(w, c.name.size());
  std::cout << absl::StrFormat("%-*s  %-16s  %-22s  %12s  %12s  %s\n", static_cast<int>(w), "column",
                               "type", "stored as", "compressed", "uncompressed", "ratio");
  for (const data::Column& c : d.schema().columns) {
    std::string ratio = "-";
    if (c.compressed_bytes > 0 && c.uncompressed_bytes > 0) {
      ratio = absl::StrFormat("%.2f", static_cast<double>(c.uncompressed_bytes) / c.compressed_bytes);
    }
    std::cout << absl::StrFormat("%-*s  %-16s  %-22s  %12s  %12s  %s\n", static_cast<int>(w), c.name,
                                 TypeText(c), c.source_type, Bytes(c.compressed_bytes),
                                 Bytes(c.uncompressed_bytes), ratio);
  }
  return kExitOk;
}

std::string Scalar(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kBool: return t.data<bool>()[i] ? "true" : "false";
    case DType::kInt8: return absl::StrCat(t.data<int8_t>()[i]);
    case DType::kUInt8: return absl::StrCat(t.data<uint8_t>()[i]);
    case DType::kInt16: return absl::StrCat(t.data<int16_t>()[i]);
    case DType::kUInt16: return absl::StrCat(t.data<uint16_t>()[i]);
    case DType::kInt32: return absl::StrCat(t.data<int32_t>()[i]);
    case DType::kUInt32: return absl::StrCat(t.data<uint32_t>()[i]);
    case DType::kInt64: return absl::StrCat(t.data<int64_t>()[i]);
    case DType::kUInt64: return absl::StrCat(t.data<uint64_t>()[i]);
    case DType::kFloat32: return absl::StrCat(t.data<float>()[i]);
    case DType::kFloat64: return absl::StrCat(t.data<double>()[i]);
    case DType::kString: return ordered_json(t.data<std::string>()[i]).dump(-1, ' ', false,
                                                                          ordered_json::error_handler_t::replace);
    default: return "?";
  }
}

// Items [a, b) of the flat values as "[x, y, ...]" (or a bare value).
std::string Items(const Tensor& values, int64_t a, int64_t b, int64_t per_item, bool list) {
  std::vector<std::string> parts;
  for (int64_t i = a; i < b; ++i) {
    if (per_item == 1) {
      parts.push_back(Scalar(values, i));
    } else {
      std::vector<std::string> inner;
      for (int64_t k = 0; k < per_item; ++k) inner.push_back(Scalar(values, i * per_item + k));
      parts.push_back("[" + absl::StrJoin(inner, ", ") + "]");
    }
  }
  if (!list && parts.size() == 1) return parts[0];
  return "[" + absl::StrJoin(parts, ", ") + "]";
}

int RunHead(const DataArgs& a) {
  auto ds = OpenDataset(a);
  if (!ds.ok()) {
    PrintError("data head", ds.status().message());
    return kExitFailure;
  }
  data::ReadOptions ro;
  if (!a.columns.empty()) ro.columns = absl::StrSplit(a.columns, ',', absl::SkipEmpty());
  ro.pad_length = a.pad;
  if (a.n < 0) {
    PrintError("data head", "-n must be >= 0");
    return kExitUsage;
  }
  int64_t n = std::min(a.n, (*ds)->num_entries());
  auto batch = (*ds)->Read(0, n, ro);
  if (!batch.ok()) {
    PrintError("data head", batch.status().message());
    return kExitFailure;
  }
  const data::Schema& schema = (*ds)->schema();
  for (int64_t e = 0; e < n; ++e) {
    std::vector<std::string> fields;
    for (const data::ColumnBatch& cb : batch->columns) {
      const data::Column& c = schema.columns[schema.IndexOf(cb.name)];
      int64_t per_item = NumElements(c.shape);
      std::string v;
      if (cb.offsets.defined()) {
        const int64_t* off = cb.offsets.data<int64_t>();
        v = Items(cb.values, off[e], off[e + 1], per_item, true);
      } else if (cb.mask.defined()) {
        int64_t pad = cb.mask.dim(1);
        v = Items(cb.values, e * pad, (e + 1) * pad, per_item, true);
        std::vector<std::string> m;
        for (int64_t i = 0; i < pad; ++i) m.push_back(cb.mask.data<bool>()[e * pad + i] ? "1" : "0");
        v += " mask=" + absl::StrJoin(m, "");
      } else if (per_item == 1) {
        v = Scalar(cb.values, e);
      } else {
        v = Items(cb.values, e, e + 1, per_item, true);
        v = v.substr(1, v.size() - 2);
      }
      fields.push_back(absl::StrCat(cb.name, "=", v));
    }
    std::cout << e << ": " << absl::StrJoin(fields, "  ") << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddDataCommand(CLI::App& app, int* exit_code) {
  CLI::App* data = app.add_subcommand("data", "Inspect datasets (ROOT TTree, npy/npz, CSV, HDF5)");
  data->require_subcommand(1);
  auto args = std::make_shared<DataArgs>();

  auto common = [args](CLI::App* c) {
    c->add_option("urls", args->urls, "Files or URLs (file://, root://), read as one dataset")
        ->required();
    c->add_option("--tree", args->tree, "ROOT: the TTree's path (e.g. dir/events); HDF5: the group");
    c->add_option("--format", args->format, "root, npy, npz, csv, hdf5 (default: by extension)");
  };
  CLI::App* info = data->add_subcommand("info", "Schema, entries, compression and sizes");
  common(info);
  info->add_flag("--json", args->json, "Print JSON");
  info->callback([args, exit_code]() { *exit_code = RunInfo(*args); });

  CLI::App* head = data->add_subcommand("head", "Print the first entries");
  common(head);
  head->add_option("-n", args->n, "Number of entries (default 5)");
  head->add_option("--columns", args->columns, "Comma-separated columns (default all)");
  head->add_option("--pad", args->pad, "Pad jagged columns to this length with a mask");
  head->callback([args, exit_code]() { *exit_code = RunHead(*args); });
}

}  // namespace hepml::cli
