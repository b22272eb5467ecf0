#include "common/npy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace hepml {
namespace {

namespace fs = std::filesystem;

std::string TempPath(const std::string& name) {
  return (fs::temp_directory_path() / ("hepml_npy_test_" + std::to_string(getpid()) + "_" + name)).string();
}

TEST(NpyTest, RoundTripsEveryNumericType) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt8, DType::kInt16,
                  DType::kInt32, DType::kInt64, DType::kUInt8, DType::kUInt16, DType::kUInt32,
                  DType::kUInt64, DType::kBool}) {
    Tensor t = Tensor::Zeros(d, {2, 3});
    auto* bytes = static_cast<uint8_t*>(t.raw_mutable_data());
    for (size_t i = 0; i < t.nbytes(); i += DTypeSize(d)) bytes[i] = static_cast<uint8_t>(d == DType::kBool ? 1 : i);
    std::string path = TempPath("rt.npy");
    ASSERT_TRUE(WriteNpy(path, t).ok());
    auto back = ReadNpy(path);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->dtype(), d);
    EXPECT_EQ(back->shape(), Shape({2, 3}));
    EXPECT_EQ(std::memcmp(back->raw_data(), t.raw_data(), t.nbytes()), 0) << DTypeName(d);
    fs::remove(path);
  }
}

TEST(NpyTest, TypesNumpyLacksAreAClearError) {
  for (DType d : {DType::kFloat8E4M3FN, DType::kFloat8E5M2FNUZ, DType::kInt4, DType::kUInt4}) {
    std::string path = TempPath("f8.npy");
    absl::Status st = WriteNpy(path, Tensor::Zeros(d, {2}));
    ASSERT_FALSE(st.ok()) << DTypeName(d);
    EXPECT_NE(st.message().find(DTypeName(d)), std::string::npos) << st;
    EXPECT_NE(st.message().find("numpy has no such type"), std::string::npos) << st;
    EXPECT_FALSE(fs::exists(path));
  }
}

TEST(NpyTest, ScalarAndOneDimensionalShapes) {
  for (Shape shape : {Shape{}, Shape{5}, Shape{0, 4}}) {
    Tensor t = Tensor::Zeros(DType::kFloat32, shape);
    auto back = ParseNpy(SerializeNpy(t), "mem");
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->shape(), shape);
  }
}

TEST(NpyTest, StringsRoundTrip) {
  Tensor t = Tensor::FromVector<std::string>({3}, {"a", "jet", ""});
  auto back = ParseNpy(SerializeNpy(t), "mem");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->data<std::string>()[1], "jet");
  EXPECT_EQ(back->data<std::string>()[2], "");
}

TEST(NpyTest, NonAsciiStringsKeepTheirCharacters) {
  Tensor t = Tensor::FromVector<std::string>({2}, {"pre_\xce\xb1", "\xe2\x82\xac" "5"});  // "pre_alpha", "euro5"
  std::string bytes = SerializeNpy(t);
  EXPECT_NE(bytes.find("<U5"), std::string::npos);  // five characters, not seven bytes
  auto back = ParseNpy(bytes, "mem");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->data<std::string>()[0], "pre_\xce\xb1");
  EXPECT_EQ(back->data<std::string>()[1], "\xe2\x82\xac" "5");
}

TEST(NpyTest, TruncatedDataIsAnError) {
  std::string bytes = SerializeNpy(Tensor::Zeros(DType::kFloat64, {100}));
  auto back = ParseNpy(bytes.substr(0, bytes.size() - 8), "cut.npy");
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("truncated"), std::string::npos) << back.status();
  EXPECT_NE(back.status().message().find("cut.npy"), std::string::npos);
}

TEST(NpyTest, BadMagicAndUnsupportedLayoutsAreErrors) {
  EXPECT_FALSE(ParseNpy("hello world, not numpy", "x").ok());
  std::string fortran = SerializeNpy(Tensor::Zeros(DType::kFloat32, {2, 2}));
  fortran.replace(fortran.find("False"), 5, "True ");
  auto back = ParseNpy(fortran, "f.npy");
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("Fortran"), std::string::npos);
}

TEST(NpyTest, HugeShapeInHeaderIsRefused) {
  std::string bytes = SerializeNpy(Tensor::Zeros(DType::kFloat32, {2}));
  size_t p = bytes.find("(2,)");
  bytes.replace(p, 4, "(99999999999,99999999,)");
  EXPECT_FALSE(ParseNpy(bytes, "huge.npy").ok());
}

TEST(NpyTest, MissingFileIsNotFound) {
  auto back = ReadNpy("/nonexistent/file.npy");
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), absl::StatusCode::kNotFound);
}


// Inputs found by fuzz/fuzz_npy: each must be a clear error, never a crash or
// an allocation the file's bytes do not back.
namespace {

std::string NpyWithHeader(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

std::string ReadRegression(const std::string& name) {
  std::ifstream in(std::string(HEPML_SOURCE_DIR) + "/fuzz/regressions/fuzz_npy/" + name, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(NpyFuzzRegressionTest, EmptyDescrIsMalformedHeader) {
  std::string bytes = ReadRegression("empty-descr.npy");
  ASSERT_FALSE(bytes.empty());
  auto back = ParseNpy(bytes, "e.npy");
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("malformed header"), std::string::npos) << back.status();
  EXPECT_FALSE(ParseNpy(NpyWithHeader("{'descr': '', 'fortran_order': False, 'shape': (1,), }", ""), "e").ok());
  EXPECT_FALSE(ParseNpy(NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': 3, }", ""), "e").ok());
}

TEST(NpyFuzzRegressionTest, ShapeBeyondTheDataIsRefusedBeforeAllocating) {
  // 2^40 floats (4 TiB) declared, 4 bytes present.
  auto back = ParseNpy(NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }",
                                     std::string(4, '\0')),
                       "big.npy");
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("truncated data"), std::string::npos) << back.status();
}

TEST(NpyFuzzRegressionTest, ManyZeroWidthStringsAreRefused) {
  auto back = ParseNpy(NpyWithHeader("{'descr': '<U0', 'fortran_order': False, 'shape': (1099511627776,), }", ""),
                       "u0.npy");
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("larger than the file"), std::string::npos) << back.status();
}

}  // namespace
}  // namespace hepml
