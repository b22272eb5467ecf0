#include "hepml/tensor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hepml {
namespace {

constexpr size_t kAlignment = 64;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

std::shared_ptr<void> AllocateAligned(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return std::shared_ptr<void>(p, AlignedFree());
}

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kUInt8: return 1;
    case DType::kInt8: return 1;
    case DType::kUInt16: return 2;
    case DType::kInt16: return 2;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kString: return sizeof(std::string);
    case DType::kBool: return 1;
    case DType::kFloat16: return 2;
    case DType::kFloat64: return 8;
    case DType::kUInt32: return 4;
    case DType::kUInt64: return 8;
    case DType::kComplex64: return 8;
    case DType::kComplex128: return 16;
    case DType::kBFloat16: return 2;
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ:
    case DType::kUInt4:
    case DType::kInt4: return 1;
    case DType::kUndefined: return 0;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kUInt16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kString: return "string";
    case DType::kBool: return "bool";
    case DType::kFloat16: return "float16";
    case DType::kFloat64: return "float64";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kComplex64: return "complex64";
    case DType::kComplex128: return "complex128";
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat8E4M3FN: return "float8e4m3fn";
    case DType::kFloat8E4M3FNUZ: return "float8e4m3fnuz";
    case DType::kFloat8E5M2: return "float8e5m2";
    case DType::kFloat8E5M2FNUZ: return "float8e5m2fnuz";
    case DType::kUInt4: return "uint4";
    case DType::kInt4: return "int4";
    case DType::kUndefined: return "undefined";
  }
  return "undefined";
}

const char* DTypeNumpyDescr(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "<f4";
    case DType::kUInt8: return "|u1";
    case DType::kInt8: return "|i1";
    case DType::kUInt16: return "<u2";
    case DType::kInt16: return "<i2";
    case DType::kInt32: return "<i4";
    case DType::kInt64: return "<i8";
    case DType::kBool: return "|b1";
    case DType::kFloat16: return "<f2";
    case DType::kFloat64: return "<f8";
    case DType::kUInt32: return "<u4";
    case DType::kUInt64: return "<u8";
    case DType::kComplex64: return "<c8";
    case DType::kComplex128: return "<c16";
    // numpy has no bfloat16; it is stored as its 16 raw bits.
    case DType::kBFloat16: return "<u2";
    default: return "";
  }
}

bool IsFloatingPoint(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16 ||
         d == DType::kBFloat16;
}
bool IsSignedInteger(DType d) {
  return d == DType::kInt8 || d == DType::kInt16 || d == DType::kInt32 || d == DType::kInt64;
}
bool IsInteger(DType d) {
  return IsSignedInteger(d) || d == DType::kUInt8 || d == DType::kUInt16 ||
         d == DType::kUInt32 || d == DType::kUInt64;
}
bool IsFloat8(DType d) {
  return d == DType::kFloat8E4M3FN || d == DType::kFloat8E4M3FNUZ || d == DType::kFloat8E5M2 ||
         d == DType::kFloat8E5M2FNUZ;
}
bool Is4BitInt(DType d) { return d == DType::kInt4 || d == DType::kUInt4; }
bool IsKnownDType(int32_t v) { return v >= 1 && v <= 22; }

Float16::Float16(float value) {
  uint32_t x = FloatBits(value);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) {  // Inf or NaN
    bits = static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
    return;
  }
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) {  // overflow to infinity
    bits = static_cast<uint16_t>(sign | 0x7c00u);
    return;
  }
  if (e <= 0) {  // subnormal or zero
    if (e < -10) {
      bits = static_cast<uint16_t>(sign);
      return;
    }
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    bits = static_cast<uint16_t>(sign | half);
    return;
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into exp: correct
  bits = static_cast<uint16_t>(half);
}

Float16::operator float() const {
  uint32_t sign = (static_cast<uint32_t>(bits) & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1fu;
  uint32_t mant = bits & 0x3ffu;
  uint32_t out;
  if (exp == 0) {
    if (mant == 0) {
      out = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      out = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    out = sign | 0x7f800000u | (mant << 13);
  } else {
    out = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return BitsFloat(out);
}

BFloat16::BFloat16(float value) {
  uint32_t x = FloatBits(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it quiet
    bits = static_cast<uint16_t>((x >> 16) | 0x40u);
    return;
  }
  uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  bits = static_cast<uint16_t>((x + rounding) >> 16);
}

BFloat16::operator float() const { return BitsFloat(static_cast<uint32_t>(bits) << 16); }

// ---- float8 -----------------------------------------------------------------

namespace {

// The layout of one float8 type. Codes are sign | magnitude; the magnitude
// (code & 0x7f) orders values like the unsigned integers.
struct Float8Format {
  int mantissa_bits;
  int bias;
  bool fnuz;           // no negative zero; 0x80 is the only NaN
  bool has_inf;        // E5M2: 0x7c is infinity, 0x7d..0x7f NaN
  uint8_t max_code;    // magnitude code of the largest finite value
  uint8_t nan_code;    // magnitude code of NaN (for the non-FNUZ types)
};

constexpr Float8Format kE4M3FN{3, 7, false, false, 0x7e, 0x7f};
constexpr Float8Format kE4M3FNUZ{3, 8, true, false, 0x7f, 0};
constexpr Float8Format kE5M2{2, 15, false, true, 0x7b, 0x7f};
constexpr Float8Format kE5M2FNUZ{2, 16, true, false, 0x7f, 0};

bool Float8IsNaN(const Float8Format& f, uint8_t code) {
  if (f.fnuz) return code == 0x80;
  const uint8_t mag = code & 0x7f;
  return f.has_inf ? mag > 0x7c : mag == 0x7f;
}

bool Float8IsInf(const Float8Format& f, uint8_t code) { return f.has_inf && (code & 0x7f) == 0x7c; }

float DecodeFloat8(const Float8Format& f, uint8_t code) {
  if (Float8IsNaN(f, code)) return std::numeric_limits<float>::quiet_NaN();
  const bool negative = (code & 0x80) != 0;
  if (Float8IsInf(f, code)) {
    return negative ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }
  const int m = f.mantissa_bits;
  const int exponent = (code & 0x7f) >> m;
  const int mantissa = code & ((1 << m) - 1);
  // Subnormals (exponent 0) share the scale of the smallest normal binade.
  const float magnitude = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), 1 - f.bias - m)
                                        : std::ldexp(static_cast<float>((1 << m) + mantissa), exponent - f.bias - m);
  return negative ? -magnitude : magnitude;
}

// Decoding through a table of the 256 codes (built once per type).
template <const Float8Format& F>
float DecodeFloat8Cached(uint8_t code) {
  static const auto* table = [] {
    auto* t = new std::array<float, 256>;
    for (int c = 0; c < 256; ++c) (*t)[c] = DecodeFloat8(F, static_cast<uint8_t>(c));
    return t;
  }();
  return (*table)[code];
}

uint8_t EncodeFloat8(const Float8Format& f, double x, bool saturate) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  const uint8_t nan = f.fnuz ? 0x80 : static_cast<uint8_t>(sign | f.nan_code);
  // What a value beyond the largest finite one becomes.
  const uint8_t overflow = saturate    ? static_cast<uint8_t>(sign | f.max_code)
                           : f.has_inf ? static_cast<uint8_t>(sign | 0x7c)
                                       : nan;
  if (std::isnan(x)) return nan;
  if (std::isinf(x)) return overflow;
  const uint8_t zero = f.fnuz ? 0 : sign;
  const double a = std::fabs(x);
  if (a == 0) return zero;
  const int m = f.mantissa_bits;
  const int min_exponent = 1 - f.bias;  // of the normal numbers
  int e2 = 0;
  std::frexp(a, &e2);  // a = frac * 2^e2, frac in [0.5, 1)
  int exponent = std::max(e2 - 1, min_exponent);
  // a in units of the last mantissa bit at that exponent: exact in double.
  const double scaled = std::ldexp(a, m - exponent);
  double units = std::floor(scaled);
  const double rest = scaled - units;
  if (rest > 0.5 || (rest == 0.5 && std::fmod(units, 2.0) != 0)) units += 1;  // nearest, ties to even
  int64_t n = static_cast<int64_t>(units);
  if (n == 0) return zero;
  if (n == (int64_t{2} << m)) {  // rounded up into the next binade
    n >>= 1;
    ++exponent;
  }
  int64_t magnitude;
  if (n < (int64_t{1} << m)) {
    magnitude = n;  // subnormal (only at min_exponent)
  } else {
    magnitude = (static_cast<int64_t>(exponent + f.bias) << m) | (n - (int64_t{1} << m));
  }
  if (magnitude > f.max_code) return overflow;
  return static_cast<uint8_t>(sign | magnitude);
}

}  // namespace

#define HEPML_DEFINE_FLOAT8(Name, kFormat)                                                   \
  Name::Name(double value, bool saturate) : bits(EncodeFloat8(kFormat, value, saturate)) {} \
  Name::operator float() const { return DecodeFloat8Cached<kFormat>(bits); }               \
  bool Name::IsNaN() const { return Float8IsNaN(kFormat, bits); }                          \
  bool Name::IsInf() const { return Float8IsInf(kFormat, bits); }
HEPML_DEFINE_FLOAT8(Float8E4M3FN, kE4M3FN)
HEPML_DEFINE_FLOAT8(Float8E4M3FNUZ, kE4M3FNUZ)
HEPML_DEFINE_FLOAT8(Float8E5M2, kE5M2)
HEPML_DEFINE_FLOAT8(Float8E5M2FNUZ, kE5M2FNUZ)
#undef HEPML_DEFINE_FLOAT8

int64_t NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

Tensor Tensor::Empty(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.size_ = NumElements(shape);
  t.shape_ = std::move(shape);
  if (dtype == DType::kString) {
    auto* strings = new std::vector<std::string>(static_cast<size_t>(t.size_));
    t.data_ = strings->data();
    t.storage_ = std::shared_ptr<void>(strings, [](void* p) {
      delete static_cast<std::vector<std::string>*>(p);
    });
    return t;
  }
  t.storage_ = AllocateAligned(t.nbytes());
  t.data_ = t.storage_.get();
  return t;
}

Tensor Tensor::Zeros(DType dtype, Shape shape) {
  Tensor t = Empty(dtype, std::move(shape));
  if (dtype != DType::kString) std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::Wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> keep_alive) {
  Tensor t;
  t.dtype_ = dtype;
  t.size_ = NumElements(shape);
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.storage_ = std::move(keep_alive);
  return t;
}

Tensor Tensor::Reshaped(Shape shape) const {
  Tensor t = *this;
  t.size_ = NumElements(shape);
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Empty(dtype_, shape_);
  if (dtype_ == DType::kString) {
    const auto* src = data<std::string>();
    auto* dst = t.mutable_data<std::string>();
    for (int64_t i = 0; i < size_; ++i) dst[i] = src[i];
  } else if (nbytes() > 0) {
    std::memcpy(t.data_, data_, nbytes());
  }
  return t;
}

namespace {
template <typename T>
void AppendValue(std::ostringstream& os, const T& v) {
  if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
    os << static_cast<int>(v);
  } else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16> ||
                       std::is_same_v<T, Float8E4M3FN> || std::is_same_v<T, Float8E4M3FNUZ> ||
                       std::is_same_v<T, Float8E5M2> || std::is_same_v<T, Float8E5M2FNUZ>) {
    os << static_cast<float>(v);
  } else {
    os << v;
  }
}
template <typename T>
void AppendValues(std::ostringstream& os, const Tensor& t, int max_values) {
  const T* p = t.data<T>();
  int64_t n = std::min<int64_t>(t.size(), max_values);
  for (int64_t i = 0; i < n; ++i) {
    if (i) os << ", ";
    AppendValue(os, p[i]);
  }
  if (t.size() > n) os << ", ...";
}
}  // namespace

std::string Tensor::DebugString(int max_values) const {
  std::ostringstream os;
  os << DTypeName(dtype_) << ShapeToString(shape_) << " {";
  switch (dtype_) {
    case DType::kFloat32: AppendValues<float>(os, *this, max_values); break;
    case DType::kFloat64: AppendValues<double>(os, *this, max_values); break;
    case DType::kFloat16: AppendValues<Float16>(os, *this, max_values); break;
    case DType::kBFloat16: AppendValues<BFloat16>(os, *this, max_values); break;
    case DType::kInt8: AppendValues<int8_t>(os, *this, max_values); break;
    case DType::kInt16: AppendValues<int16_t>(os, *this, max_values); break;
    case DType::kInt32: AppendValues<int32_t>(os, *this, max_values); break;
    case DType::kInt64: AppendValues<int64_t>(os, *this, max_values); break;
    case DType::kUInt8: AppendValues<uint8_t>(os, *this, max_values); break;
    case DType::kUInt16: AppendValues<uint16_t>(os, *this, max_values); break;
    case DType::kUInt32: AppendValues<uint32_t>(os, *this, max_values); break;
    case DType::kUInt64: AppendValues<uint64_t>(os, *this, max_values); break;
    case DType::kBool: AppendValues<bool>(os, *this, max_values); break;
    case DType::kString: AppendValues<std::string>(os, *this, max_values); break;
    case DType::kComplex64: AppendValues<std::complex<float>>(os, *this, max_values); break;
    case DType::kComplex128: AppendValues<std::complex<double>>(os, *this, max_values); break;
    case DType::kFloat8E4M3FN: AppendValues<Float8E4M3FN>(os, *this, max_values); break;
    case DType::kFloat8E4M3FNUZ: AppendValues<Float8E4M3FNUZ>(os, *this, max_values); break;
    case DType::kFloat8E5M2: AppendValues<Float8E5M2>(os, *this, max_values); break;
    case DType::kFloat8E5M2FNUZ: AppendValues<Float8E5M2FNUZ>(os, *this, max_values); break;
    case DType::kInt4: AppendValues<int8_t>(os, *this, max_values); break;
    case DType::kUInt4: AppendValues<uint8_t>(os, *this, max_values); break;
    case DType::kUndefined: break;
  }
  os << "}";
  return os.str();
}

}  // namespace hepml
