// Unit tests of ImageDecoder. PNG streams are built here from raw scanlines
// with zlib (independently of libpng), so the decoded pixels are known
// exactly. JPEG streams are made with libjpeg's encoder at quality 100 from
// uniform 8x8 blocks: a gray block then decodes exactly (only the DC term, with
// quantizer 1), a color block to within the YCbCr round trip (+-2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <jpeglib.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

using Bytes = std::vector<uint8_t>;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

void PutU32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

void Chunk(Bytes& png, const char* tag, const Bytes& data) {
  PutU32(png, static_cast<uint32_t>(data.size()));
  Bytes body(tag, tag + 4);
  body.insert(body.end(), data.begin(), data.end());
  png.insert(png.end(), body.begin(), body.end());
  PutU32(png, static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
}

// A PNG from already filtered scanlines (each starting with its filter byte).
Bytes MakePng(uint32_t w, uint32_t h, int depth, int color, const Bytes& filtered, int interlace = 0,
              const Bytes& plte = {}, const Bytes& trns = {}) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  PutU32(ihdr, w);
  PutU32(ihdr, h);
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(depth), static_cast<uint8_t>(color), 0, 0,
                           static_cast<uint8_t>(interlace)});
  Chunk(png, "IHDR", ihdr);
  if (!plte.empty()) Chunk(png, "PLTE", plte);
  if (!trns.empty()) Chunk(png, "tRNS", trns);
  uLongf len = compressBound(static_cast<uLong>(filtered.size()));
  Bytes z(len);
  EXPECT_EQ(compress2(z.data(), &len, filtered.data(), static_cast<uLong>(filtered.size()), 9), Z_OK);
  z.resize(len);
  Chunk(png, "IDAT", z);
  Chunk(png, "IEND", {});
  return png;
}

// Unfiltered scanlines (filter byte 0) of rows of `row_bytes` bytes.
Bytes Unfiltered(const Bytes& raw, size_t row_bytes) {
  Bytes out;
  for (size_t i = 0; i < raw.size(); i += row_bytes) {
    out.push_back(0);
    out.insert(out.end(), raw.begin() + i, raw.begin() + i + row_bytes);
  }
  return out;
}

absl::StatusOr<std::vector<Tensor>> Decode(const Bytes& stream, const char* fmt = nullptr) {
  std::vector<Attribute> attrs;
  if (fmt != nullptr) attrs.push_back(AttrString("pixel_format", fmt));
  return RunOp("ImageDecoder", 20, {T_<uint8_t>({static_cast<int64_t>(stream.size())}, stream)}, attrs);
}

// 2x3 RGB pixels: red, green, blue / white, (10,20,30), (100,150,200).
const Bytes kRgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30, 100, 150, 200};
// BT.601 luma, rounded: 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1,
// 255, 2.99 + 11.74 + 3.42 = 18.15, 29.9 + 88.05 + 22.8 = 140.75.
const Bytes kRgbLuma = {76, 150, 29, 255, 18, 141};

TEST(ImageDecoderTest, PngRgbToRgbBgrAndGrayscale) {
  // Row 0 unfiltered, row 1 with the Sub filter (each byte minus the byte 3 to its left).
  Bytes filtered = {0, 255, 0, 0, 0, 255, 0, 0, 0, 255};
  filtered.push_back(1);
  for (int i = 0; i < 9; ++i) {
    const int left = i >= 3 ? kRgb[9 + i - 3] : 0;
    filtered.push_back(static_cast<uint8_t>(kRgb[9 + i] - left));
  }
  const Bytes png = MakePng(3, 2, 8, 2, filtered);

  auto rgb = Decode(png);  // RGB is the default
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->at(0).dtype(), DType::kUInt8);
  EXPECT_EQ(rgb->at(0).shape(), Shape({2, 3, 3}));
  EXPECT_THAT(Values<uint8_t>(rgb->at(0)), ElementsAreArray(kRgb));

  auto bgr = Decode(png, "BGR");
  ASSERT_TRUE(bgr.ok()) << bgr.status();
  Bytes want_bgr;
  for (size_t i = 0; i < kRgb.size(); i += 3) want_bgr.insert(want_bgr.end(), {kRgb[i + 2], kRgb[i + 1], kRgb[i]});
  EXPECT_THAT(Values<uint8_t>(bgr->at(0)), ElementsAreArray(want_bgr));

  auto gray = Decode(png, "Grayscale");
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->at(0).shape(), Shape({2, 3, 1}));
  EXPECT_THAT(Values<uint8_t>(gray->at(0)), ElementsAreArray(kRgbLuma));
}

TEST(ImageDecoderTest, PngGrayToGrayscaleAndRgb) {
  const Bytes pixels = {0, 7, 128, 200, 254, 255};
  const Bytes png = MakePng(2, 3, 8, 0, Unfiltered(pixels, 2));
  auto gray = Decode(png, "Grayscale");
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->at(0).shape(), Shape({3, 2, 1}));
  EXPECT_THAT(Values<uint8_t>(gray->at(0)), ElementsAreArray(pixels));
  auto rgb = Decode(png, "RGB");
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->at(0).shape(), Shape({3, 2, 3}));
  Bytes want;
  for (uint8_t v : pixels) want.insert(want.end(), {v, v, v});
  EXPECT_THAT(Values<uint8_t>(rgb->at(0)), ElementsAreArray(want));
}

TEST(ImageDecoderTest, PngOneBitGrayExpandsTo0And255) {
  // 10 pixels wide: 1 0 1 1 0 0 0 1 | 1 0 -> bytes 0b10110001, 0b10000000.
  const Bytes png = MakePng(10, 1, 1, 0, {0, 0xB1, 0x80});
  auto out = Decode(png, "Grayscale");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 10, 1}));
  EXPECT_THAT(Values<uint8_t>(out->at(0)), ElementsAre(255, 0, 255, 255, 0, 0, 0, 255, 255, 0));
}

TEST(ImageDecoderTest, PngPaletteWithTransparencyGivesRgbWithoutAlpha) {
  const Bytes plte = {1, 2, 3, 200, 100, 50, 9, 9, 9};
  const Bytes png = MakePng(3, 1, 8, 3, {0, 1, 0, 2}, 0, plte, {0, 128});
  auto out = Decode(png, "RGB");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 3, 3}));
  EXPECT_THAT(Values<uint8_t>(out->at(0)), ElementsAre(200, 100, 50, 1, 2, 3, 9, 9, 9));
}

TEST(ImageDecoderTest, PngAlphaIsDroppedAnd16BitKeepsHighByte) {
  // RGBA 2x1: (1,2,3,0), (4,5,6,255) -> alpha dropped, not composited.
  auto rgba = Decode(MakePng(2, 1, 8, 6, {0, 1, 2, 3, 0, 4, 5, 6, 255}));
  ASSERT_TRUE(rgba.ok()) << rgba.status();
  EXPECT_EQ(rgba->at(0).shape(), Shape({1, 2, 3}));
  EXPECT_THAT(Values<uint8_t>(rgba->at(0)), ElementsAre(1, 2, 3, 4, 5, 6));
  // 16-bit gray 0x1234, 0xFFFF (big-endian samples) -> 0x12, 0xFF.
  auto g16 = Decode(MakePng(2, 1, 16, 0, {0, 0x12, 0x34, 0xFF, 0xFF}), "Grayscale");
  ASSERT_TRUE(g16.ok()) << g16.status();
  EXPECT_THAT(Values<uint8_t>(g16->at(0)), ElementsAre(0x12, 0xFF));
  // Gray + alpha asked for as RGB.
  auto ga = Decode(MakePng(1, 1, 8, 4, {0, 77, 3}), "BGR");
  ASSERT_TRUE(ga.ok()) << ga.status();
  EXPECT_THAT(Values<uint8_t>(ga->at(0)), ElementsAre(77, 77, 77));
}

TEST(ImageDecoderTest, PngAdam7InterlacedIsDeinterlaced) {
  // 3x3 gray, pixel (y, x) = 10 * y + x + 1. Adam7 passes that hold pixels of
  // a 3x3 image: 1 (0,0); 4 (0,2); 5 (2,0),(2,2); 6 (0,1),(2,1); 7 rows 1: (1,0..2).
  const auto px = [](int y, int x) { return static_cast<uint8_t>(10 * y + x + 1); };
  Bytes f;
  f.insert(f.end(), {0, px(0, 0)});                        // pass 1: 1x1
  f.insert(f.end(), {0, px(0, 2)});                        // pass 4: 1x1
  f.insert(f.end(), {0, px(2, 0), px(2, 2)});              // pass 5: 2x1
  f.insert(f.end(), {0, px(0, 1), 0, px(2, 1)});           // pass 6: 1x2
  f.insert(f.end(), {0, px(1, 0), px(1, 1), px(1, 2)});    // pass 7: 3x1
  auto out = Decode(MakePng(3, 3, 8, 0, f, /*interlace=*/1), "Grayscale");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<uint8_t>(out->at(0)), ElementsAre(1, 2, 3, 11, 12, 13, 21, 22, 23));
}

TEST(ImageDecoderTest, BadPngIsAnErrorNeverACrash) {
  const Bytes png = MakePng(3, 2, 8, 2, Unfiltered(kRgb, 9));
  ASSERT_TRUE(Decode(png).ok());
  // Every truncation of the stream fails cleanly (8 bytes and up are seen as PNG).
  for (size_t n = 0; n < png.size(); ++n) {
    auto out = Decode(Bytes(png.begin(), png.begin() + n));
    EXPECT_FALSE(out.ok()) << "prefix of " << n << " bytes";
  }
  auto cut = Decode(Bytes(png.begin(), png.begin() + png.size() / 2));
  EXPECT_THAT(std::string(cut.status().message()), HasSubstr("cannot decode the PNG stream"));
  // A flipped byte inside IHDR breaks its CRC.
  Bytes bad = png;
  bad[18] ^= 0x40;
  EXPECT_FALSE(Decode(bad).ok());
  // Too little image data for the declared size.
  EXPECT_FALSE(Decode(MakePng(3, 4, 8, 2, Unfiltered(kRgb, 9))).ok());
  // An invalid color type / depth pair.
  EXPECT_FALSE(Decode(MakePng(1, 1, 3, 2, {0, 0, 0, 0})).ok());
}

// ---- JPEG ----

// Encodes w x h pixels of `components` (1 gray, 3 RGB) at quality 100, 4:4:4.
Bytes EncodeJpeg(int w, int h, int components, const Bytes& pixels) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  for (int i = 0; i < c.num_components; ++i) {
    c.comp_info[i].h_samp_factor = 1;
    c.comp_info[i].v_samp_factor = 1;
  }
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels.data()) + static_cast<size_t>(c.next_scanline) * w * components;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  Bytes out(buf, buf + size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

// 16x16 made of four uniform 8x8 blocks with the given values (per channel).
Bytes Blocks(int components, const std::vector<Bytes>& block_values) {
  Bytes px;
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      const Bytes& v = block_values[(y / 8) * 2 + x / 8];
      px.insert(px.end(), v.begin(), v.begin() + components);
    }
  }
  return px;
}

TEST(ImageDecoderTest, GrayJpegDecodesExactly) {
  const Bytes pixels = Blocks(1, {{0}, {77}, {128}, {255}});
  const Bytes jpeg = EncodeJpeg(16, 16, 1, pixels);
  auto gray = Decode(jpeg, "Grayscale");
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->at(0).shape(), Shape({16, 16, 1}));
  EXPECT_THAT(Values<uint8_t>(gray->at(0)), ElementsAreArray(pixels));
  auto rgb = Decode(jpeg, "RGB");
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->at(0).shape(), Shape({16, 16, 3}));
  const std::vector<uint8_t> v = Values<uint8_t>(rgb->at(0));
  for (size_t i = 0; i < pixels.size(); ++i) {
    ASSERT_EQ(v[3 * i], pixels[i]);
    ASSERT_EQ(v[3 * i + 1], pixels[i]);
    ASSERT_EQ(v[3 * i + 2], pixels[i]);
  }
}

TEST(ImageDecoderTest, ColorJpegRgbBgrAndGrayscale) {
  const Bytes pixels = Blocks(3, {{200, 30, 40}, {20, 180, 60}, {30, 60, 220}, {250, 250, 250}});
  const Bytes jpeg = EncodeJpeg(16, 16, 3, pixels);
  auto rgb = Decode(jpeg);
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->at(0).shape(), Shape({16, 16, 3}));
  const std::vector<uint8_t> v = Values<uint8_t>(rgb->at(0));
  for (size_t i = 0; i < pixels.size(); ++i) ASSERT_NEAR(v[i], pixels[i], 2) << "byte " << i;

  auto bgr = Decode(jpeg, "BGR");
  ASSERT_TRUE(bgr.ok()) << bgr.status();
  const std::vector<uint8_t> b = Values<uint8_t>(bgr->at(0));
  for (size_t i = 0; i < v.size(); i += 3) {
    ASSERT_EQ(b[i], v[i + 2]);
    ASSERT_EQ(b[i + 1], v[i + 1]);
    ASSERT_EQ(b[i + 2], v[i]);
  }

  auto gray = Decode(jpeg, "Grayscale");
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->at(0).shape(), Shape({16, 16, 1}));
  const std::vector<uint8_t> g = Values<uint8_t>(gray->at(0));
  for (size_t i = 0; i < g.size(); ++i) {
    const double luma = 0.299 * v[3 * i] + 0.587 * v[3 * i + 1] + 0.114 * v[3 * i + 2];
    ASSERT_NEAR(g[i], std::round(luma), 1) << "pixel " << i;  // BT.601 of the decoded RGB
  }
}

TEST(ImageDecoderTest, BadJpegIsAnErrorNeverACrash) {
  const Bytes jpeg = EncodeJpeg(16, 16, 3, Blocks(3, {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}}));
  ASSERT_TRUE(Decode(jpeg).ok());
  for (size_t n = 0; n < jpeg.size(); ++n) {
    auto out = Decode(Bytes(jpeg.begin(), jpeg.begin() + n));
    EXPECT_FALSE(out.ok()) << "prefix of " << n << " bytes";
  }
  auto cut = Decode(Bytes(jpeg.begin(), jpeg.begin() + jpeg.size() / 2));
  EXPECT_THAT(std::string(cut.status().message()), HasSubstr("cannot decode the JPEG stream"));
  // The start of image followed by garbage.
  EXPECT_FALSE(Decode({0xFF, 0xD8, 0xFF, 0x00, 0x12, 0x34, 0x56}).ok());
}

TEST(ImageDecoderTest, OtherFormatsAndBadArgumentsAreRejectedClearly) {
  const auto message = [](const Bytes& stream) {
    auto out = Decode(stream);
    EXPECT_FALSE(out.ok());
    return std::string(out.status().message());
  };
  const auto bytes = [](const std::string& s) { return Bytes(s.begin(), s.end()); };
  EXPECT_THAT(message(bytes("BM\x3a\0\0\0\0\0\0\0")), HasSubstr("BMP streams are not supported"));
  EXPECT_THAT(message(bytes(std::string("II*\0\x08\0\0\0", 8))), HasSubstr("TIFF"));
  EXPECT_THAT(message(bytes(std::string("MM\0*\0\0\0\x08", 8))), HasSubstr("TIFF"));
  EXPECT_THAT(message(bytes(std::string("RIFF\x24\0\0\0WEBPVP8 ", 16))), HasSubstr("WebP"));
  EXPECT_THAT(message(bytes(std::string("\0\0\0\x0cjP  \r\n\x87\n", 12))), HasSubstr("JPEG 2000"));
  EXPECT_THAT(message(bytes("\xff\x4f\xff\x51\0\0")), HasSubstr("JPEG 2000"));
  EXPECT_THAT(message(bytes("P6\n2 1\n255\n\1\2\3\4\5\6")), HasSubstr("portable anymap"));
  EXPECT_THAT(message(bytes("P5\n1 1\n255\n\7")), HasSubstr("portable anymap"));
  EXPECT_THAT(message(bytes("GIF89a")), HasSubstr("is not a PNG or JPEG image"));
  EXPECT_THAT(message({}), HasSubstr("is not a PNG or JPEG image"));

  const Bytes png = MakePng(1, 1, 8, 0, {0, 5});
  auto bad_fmt = Decode(png, "RGBA");
  ASSERT_FALSE(bad_fmt.ok());
  EXPECT_THAT(std::string(bad_fmt.status().message()), HasSubstr("pixel_format 'RGBA'"));
  // The stream must be 1-D uint8.
  EXPECT_FALSE(RunOp("ImageDecoder", 20, {T_<uint8_t>({1, static_cast<int64_t>(png.size())}, png)}).ok());
  EXPECT_FALSE(RunOp("ImageDecoder", 20, {T_<int32_t>({2}, {1, 2})}).ok());
  // New in opset 20.
  EXPECT_FALSE(RunOp("ImageDecoder", 19, {T_<uint8_t>({static_cast<int64_t>(png.size())}, png)}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing
