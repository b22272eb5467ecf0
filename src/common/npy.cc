#include "common/npy.h"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"

namespace hepml {
namespace {

absl::Status Bad(const std::string& what, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", why));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Finds 'key': <value> in the header dict.
std::string HeaderField(const std::string& header, const std::string& key) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t colon = header.find(':', k);
  if (colon == std::string::npos) return "";
  size_t start = header.find_first_not_of(' ', colon + 1);
  if (start == std::string::npos) return "";
  if (header[start] == '(') {
    size_t end = header.find(')', start);
    return end == std::string::npos ? "" : header.substr(start, end - start + 1);
  }
  size_t end = header.find_first_of(",}", start);
  return header.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace

absl::StatusOr<NpyHeader> ParseNpyHeader(std::string_view bytes, const std::string& what) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != "\x93NUMPY") return Bad(what, "not a .npy file (bad magic)");
  uint8_t major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Bad(what, "truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    return Bad(what, absl::StrCat("unsupported .npy version ", major));
  }
  if (offset + header_len > bytes.size()) return Bad(what, "truncated header");
  std::string header(bytes.substr(offset, header_len));
  std::string descr = std::string(absl::StripAsciiWhitespace(HeaderField(header, "descr")));
  std::string fortran = std::string(absl::StripAsciiWhitespace(HeaderField(header, "fortran_order")));
  std::string shape_str = HeaderField(header, "shape");
  // descr is a quoted byte order and type code ('<f4'); shape a tuple.
  if (descr.size() < 4 || (descr.front() != '\'' && descr.front() != '"') || descr.back() != descr.front() ||
      shape_str.size() < 2 || shape_str.front() != '(' || shape_str.back() != ')') {
    return Bad(what, "malformed header");
  }
  descr = descr.substr(1, descr.size() - 2);  // strip quotes
  if (fortran == "True") return Bad(what, "Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  Shape shape;
  std::string inner = shape_str.substr(1, shape_str.size() - 2);
  int64_t count = 1;
  for (absl::string_view part : absl::StrSplit(inner, ',', absl::SkipWhitespace())) {
    int64_t d;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d) || d < 0) {
      return Bad(what, absl::StrCat("malformed shape ", shape_str));
    }
    if (d != 0 && count > (int64_t{1} << 46) / d) return Bad(what, "shape too large");
    count *= d;
    shape.push_back(d);
  }
  // Map the numpy descr to a dtype.
  DType dtype = DType::kUndefined;
  char order = descr[0];
  std::string code = descr.substr(1);
  if (order == '>' && code != "u1" && code != "i1" && code != "b1") {
    return Bad(what, "big-endian arrays are not supported");
  }
  if (code == "f4") dtype = DType::kFloat32;
  else if (code == "f8") dtype = DType::kFloat64;
  else if (code == "f2") dtype = DType::kFloat16;
  else if (code == "i1") dtype = DType::kInt8;
  else if (code == "i2") dtype = DType::kInt16;
  else if (code == "i4") dtype = DType::kInt32;
  else if (code == "i8") dtype = DType::kInt64;
  else if (code == "u1") dtype = DType::kUInt8;
  else if (code == "u2") dtype = DType::kUInt16;
  else if (code == "u4") dtype = DType::kUInt32;
  else if (code == "u8") dtype = DType::kUInt64;
  else if (code == "b1") dtype = DType::kBool;
  else if (code == "c8") dtype = DType::kComplex64;
  else if (code == "c16") dtype = DType::kComplex128;
  NpyHeader h;
  h.dtype = dtype;
  h.shape = std::move(shape);
  h.count = count;
  h.data_offset = offset + header_len;
  h.descr = descr;
  h.shape_text = shape_str;
  if (!code.empty() && code[0] == 'U') {
    int64_t width;
    if (!absl::SimpleAtoi(code.substr(1), &width) || width < 0) return Bad(what, "malformed string dtype");
    h.dtype = DType::kString;
    h.string_width = width;
  } else if (dtype == DType::kUndefined) {
    return Bad(what, absl::StrCat("unsupported dtype '", descr, "'"));
  }
  return h;
}

absl::StatusOr<Tensor> ParseNpy(std::string_view bytes, const std::string& what) {
  auto h = ParseNpyHeader(bytes, what);
  if (!h.ok()) return h.status();
  const Shape& shape = h->shape;
  const int64_t count = h->count;
  const std::string& shape_str = h->shape_text;
  const DType dtype = h->dtype;
  std::string_view data = bytes.substr(h->data_offset);
  if (h->string_width >= 0) {  // fixed-width UTF-32 strings
    int64_t width = h->string_width;
    if (width > 0 && static_cast<uint64_t>(count) > data.size() / 4 / static_cast<uint64_t>(width)) {
      return Bad(what, "truncated data");
    }
    // Zero-width strings take no bytes: still bound the element count by the
    // header, so a few bytes cannot ask for billions of strings.
    if (width == 0 && count > static_cast<int64_t>(bytes.size())) {
      return Bad(what, absl::StrCat("shape ", shape_str, " of empty strings is larger than the file"));
    }
    Tensor t = Tensor::Empty(DType::kString, shape);
    auto* out = t.mutable_data<std::string>();
    for (int64_t i = 0; i < count; ++i) {
      std::string s;
      for (int64_t c = 0; c < width; ++c) {
        uint32_t cp;
        std::memcpy(&cp, data.data() + (i * width + c) * 4, 4);
        if (cp == 0) break;
        if (cp < 0x80) s += static_cast<char>(cp);
        else if (cp < 0x800) { s += static_cast<char>(0xC0 | (cp >> 6)); s += static_cast<char>(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) { s += static_cast<char>(0xE0 | (cp >> 12)); s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); s += static_cast<char>(0x80 | (cp & 0x3F)); }
        else { s += static_cast<char>(0xF0 | (cp >> 18)); s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F)); s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); s += static_cast<char>(0x80 | (cp & 0x3F)); }
      }
      out[i] = std::move(s);
    }
    return t;
  }
  // Check the size before allocating: the header alone must not make us
  // allocate more than the file holds.
  uint64_t itemsize = DTypeSize(dtype);
  if (static_cast<uint64_t>(count) > data.size() / itemsize) {
    return Bad(what, absl::StrCat("truncated data: ", data.size(), " bytes, shape ", shape_str, " needs ",
                                  static_cast<uint64_t>(count) * itemsize));
  }
  Tensor t = Tensor::Empty(dtype, shape);
  if (t.nbytes() > 0) std::memcpy(t.raw_mutable_data(), data.data(), t.nbytes());
  if (dtype == DType::kBool) {  // normalise to 0/1
    auto* b = t.mutable_data<uint8_t>();
    for (int64_t i = 0; i < t.size(); ++i) b[i] = b[i] != 0;
  }
  return t;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return ParseNpy(*bytes, path);
}

// UTF-8 to code points; invalid bytes are kept as code points 0x80-0xFF.
namespace {
std::vector<uint32_t> DecodeUtf8(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<uint8_t>(s[i + k]) & 0xC0) == 0x80;
    if (!ok) {
      out.push_back(c);
      ++i;
      continue;
    }
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}
}  // namespace

std::string SerializeNpy(const Tensor& tensor) {
  std::string descr(DTypeNumpyDescr(tensor.dtype()));
  size_t max_len = 0;
  std::vector<std::vector<uint32_t>> code_points;
  if (tensor.dtype() == DType::kString) {
    const auto* s = tensor.data<std::string>();
    for (int64_t i = 0; i < tensor.size(); ++i) {
      code_points.push_back(DecodeUtf8(s[i]));
      max_len = std::max(max_len, code_points.back().size());
    }
    descr = absl::StrCat("<U", std::max<size_t>(max_len, 1));
  }
  std::string shape = "(";
  for (int64_t d : tensor.shape()) absl::StrAppend(&shape, d, ",");
  if (tensor.rank() > 1) shape.pop_back();
  shape += ")";
  std::string header = absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  size_t total = 10 + header.size() + 1;
  size_t pad = (64 - total % 64) % 64;
  header.append(pad, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  if (tensor.dtype() == DType::kString) {
    size_t width = std::max<size_t>(max_len, 1);
    for (const auto& cps : code_points) {  // numpy stores UTF-32 code units
      for (size_t c = 0; c < width; ++c) {
        uint32_t cp = c < cps.size() ? cps[c] : 0;
        out.append(reinterpret_cast<const char*>(&cp), 4);
      }
    }
  } else {
    out.append(static_cast<const char*>(tensor.raw_data()), tensor.nbytes());
  }
  return out;
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  if (*DTypeNumpyDescr(tensor.dtype()) == 0 && tensor.dtype() != DType::kString) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot store ", DTypeName(tensor.dtype()),
                                                   " as .npy: numpy has no such type (Cast the output to a numpy "
                                                   "type, e.g. float32 or int8, in the model)"));
  }
  std::string bytes = SerializeNpy(tensor);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::ResourceExhaustedError(absl::StrCat(path, ": write failed (disk full?)"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": rename failed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadNpz(const std::string& path) {
  auto file = ReadFile(path);
  if (!file.ok()) return file.status();
  return ParseNpz(*file, path);
}

absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> ParseNpz(std::string_view z, const std::string& path) {
  std::vector<std::pair<std::string, Tensor>> out;
  auto u16 = [&](size_t p) { return static_cast<uint32_t>(static_cast<uint8_t>(z[p])) | (static_cast<uint32_t>(static_cast<uint8_t>(z[p + 1])) << 8); };
  auto u32 = [&](size_t p) { return u16(p) | (u16(p + 2) << 16); };
  size_t pos = 0;
  while (pos + 30 <= z.size() && u32(pos) == 0x04034b50) {
    uint32_t flags = u16(pos + 6), method = u16(pos + 8);
    uint64_t csize = u32(pos + 18), usize = u32(pos + 22);
    uint32_t name_len = u16(pos + 26), extra_len = u16(pos + 28);
    if (pos + 30 + name_len + extra_len > z.size()) return Bad(path, "truncated zip entry");
    std::string name(z.substr(pos + 30, name_len));
    // zip64: sizes in the extra field.
    size_t extra = pos + 30 + name_len;
    if (csize == 0xffffffffu || usize == 0xffffffffu) {
      size_t e = extra;
      while (e + 4 <= extra + extra_len) {
        uint32_t id = u16(e), len = u16(e + 2);
        if (id == 1 && len >= 16 && e + 4 + 16 <= extra + extra_len) {
          usize = u32(e + 4) | (static_cast<uint64_t>(u32(e + 8)) << 32);
          csize = u32(e + 12) | (static_cast<uint64_t>(u32(e + 16)) << 32);
        }
        e += 4 + len;
      }
    }
    if (flags & 0x8) return Bad(path, "zip entries with data descriptors are not supported");
    size_t data = extra + extra_len;
    if (csize > z.size() - data) return Bad(path, "truncated zip data");
    std::string npy;
    if (method == 0) {
      npy = z.substr(data, csize);
    } else if (method == 8) {
      // Deflate expands at most 1032:1; a larger declared size is corrupt (and
      // would make a small archive allocate without bound).
      if (usize > 1032 * csize + 1024 || csize > std::numeric_limits<uInt>::max() ||
          usize > std::numeric_limits<uInt>::max())
        return Bad(path, absl::StrCat("entry '", name, "' declares ", usize, " bytes from ", csize,
                                      " compressed: more than deflate can expand to"));
      npy.resize(usize);
      z_stream strm{};
      if (inflateInit2(&strm, -MAX_WBITS) != Z_OK) return Bad(path, "zlib init failed");
      strm.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(z.data() + data));
      strm.avail_in = static_cast<uInt>(csize);
      strm.next_out = reinterpret_cast<Bytef*>(npy.data());
      strm.avail_out = static_cast<uInt>(usize);
      int rc = inflate(&strm, Z_FINISH);
      inflateEnd(&strm);
      if (rc != Z_STREAM_END) return Bad(path, absl::StrCat("corrupt deflate data in '", name, "'"));
    } else {
      return Bad(path, absl::StrCat("unsupported zip compression method ", method));
    }
    std::string key = name;
    if (key.size() > 4 && key.substr(key.size() - 4) == ".npy") key.resize(key.size() - 4);
    auto t = ParseNpy(npy, absl::StrCat(path, "[", name, "]"));
    if (!t.ok()) return t.status();
    out.emplace_back(key, std::move(*t));
    pos = data + csize;
  }
  if (out.empty()) return Bad(path, "not an .npz archive (no zip entries)");
  return out;
}

}  // namespace hepml
