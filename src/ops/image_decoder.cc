// ImageDecoder (20): decodes one encoded image (a 1-D uint8 tensor) into a
// uint8 tensor [height, width, channels], channel-last.
//
// Formats: PNG (libpng) and JPEG (libjpeg-turbo). The spec also lists BMP,
// JPEG 2000, TIFF, WebP and the portable formats (PBM, PGM, PPM, PAM, PFM);
// those are recognised by their signature and rejected with an error naming
// the format, as is any stream that is neither.
//
// pixel_format (default "RGB"): "RGB" and "BGR" give 3 channels, "Grayscale"
// 1. A grayscale image asked for as RGB/BGR repeats its value in all three
// channels. A color image asked for as Grayscale is converted with ITU-R
// BT.601 luma, L = 0.299 R + 0.587 G + 0.114 B rounded to nearest, computed as
// (19595 R + 38470 G + 7471 B + 32768) >> 16; the spec states no formula, and
// this is what onnx's reference implementation gets from Pillow's convert("L").
// A grayscale JPEG decodes to its luma plane as is.
//
// PNG: palette images expand to RGB; gray below 8 bits expands to 8 bits;
// 16-bit samples keep their high byte; alpha (an alpha channel or tRNS) is
// dropped, not composited; interlaced images are deinterlaced. JPEG: baseline
// and progressive, libjpeg-turbo's defaults (accurate integer IDCT, "fancy"
// chroma upsampling, which is the upsampling the spec describes); CMYK/YCCK
// JPEGs are rejected.
//
// Errors: a stream that cannot be decoded completely (corrupt, truncated, or
// any decoder warning such as "premature end of data") is an error, never a
// partial image and never a crash. The spec says a decoder "will return an
// empty matrix" instead; hepml reports the error so that a bad input cannot
// flow silently into the rest of a model. Images above 2^28 pixels are refused
// before anything is allocated.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <png.h>

#include "absl/strings/str_cat.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"

namespace hepml::ops {
namespace {

constexpr int64_t kMaxPixels = int64_t{1} << 28;

enum class PixelFormat { kRGB, kBGR, kGrayscale };

// A decoded image: 1 (gray) or 3 (RGB) interleaved 8-bit channels.
struct Decoded {
  int64_t height = 0, width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

bool StartsWith(const uint8_t* p, size_t n, const char* sig, size_t len) {
  return n >= len && std::memcmp(p, sig, len) == 0;
}

// The name of a format the spec lists that hepml does not decode, or "".
std::string UnsupportedFormat(const uint8_t* p, size_t n) {
  if (StartsWith(p, n, "BM", 2)) return "BMP";
  if (StartsWith(p, n, "\x00\x00\x00\x0cjP  \r\n\x87\n", 12) || StartsWith(p, n, "\xff\x4f\xff\x51", 4)) {
    return "JPEG 2000";
  }
  if (StartsWith(p, n, "II*\x00", 4) || StartsWith(p, n, "MM\x00*", 4)) return "TIFF";
  if (n >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBP", 4) == 0) return "WebP";
  if (n >= 2 && p[0] == 'P' && ((p[1] >= '1' && p[1] <= '7') || p[1] == 'f' || p[1] == 'F')) {
    return "portable anymap (PBM/PGM/PPM/PAM/PFM)";
  }
  return "";
}

// ---- PNG ----

struct PngReader {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  std::string error;
};

void PngRead(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "truncated PNG stream");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

void PngError(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  if (r != nullptr && r->error.empty()) r->error = msg;
  png_longjmp(png, 1);
}

void PngWarning(png_structp png, png_const_charp msg) {}  // warnings are not errors

// What ReadPng works on. It lives in DecodePng's frame, outside ReadPng's
// setjmp scope, so a longjmp cannot leave it in an indeterminate state.
struct PngJob {
  PngReader reader;
  std::vector<png_bytep> rows;
  Decoded* out;
  std::string error;
};

// The setjmp scope: only pointers and scalars set before setjmp live here.
bool ReadPng(PngJob* job) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job->reader, PngError, PngWarning);
  if (png == nullptr) {
    job->error = "libpng could not start";
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    job->error = "libpng could not start";
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    job->error = job->reader.error.empty() ? "corrupt PNG stream" : job->reader.error;
    return false;
  }
  png_set_read_fn(png, &job->reader, PngRead);
  png_read_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info);
  const png_uint_32 height = png_get_image_height(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (static_cast<int64_t>(width) * height > kMaxPixels) {
    job->reader.error = absl::StrCat("image of ", width, "x", height, " pixels is larger than the ", kMaxPixels,
                                     " pixels ImageDecoder accepts");
    png_longjmp(png, 1);
  }
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  // Also strips the alpha that palette expansion makes from a tRNS chunk.
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  if (channels != 1 && channels != 3) png_error(png, "unexpected PNG channel layout");
  if (png_get_rowbytes(png, info) != static_cast<size_t>(width) * channels) {
    png_error(png, "unexpected PNG row size");
  }
  Decoded* out = job->out;
  out->height = height;
  out->width = width;
  out->channels = channels;
  out->pixels.assign(static_cast<size_t>(width) * height * channels, 0);
  job->rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) {
    job->rows[y] = out->pixels.data() + static_cast<size_t>(y) * width * channels;
  }
  png_read_image(png, job->rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// Decodes a PNG into gray or RGB (see the file comment). Returns "" or an error.
std::string DecodePng(const uint8_t* data, size_t size, Decoded* out) {
  PngJob job{PngReader{data, size}, {}, out, ""};
  return ReadPng(&job) ? "" : job.error;
}

// ---- JPEG ----

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  std::string message;
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  if (err->message.empty()) err->message = buf;
  std::longjmp(err->jump, 1);
}

// A warning (msg_level -1: corrupt or truncated data that libjpeg would paper
// over) is an error here; trace messages (>= 0) are ignored.
void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0) JpegErrorExit(cinfo);
}

// What ReadJpeg works on, outside its setjmp scope (see PngJob).
struct JpegJob {
  jpeg_decompress_struct cinfo;
  JpegError err;
  Decoded* out;
  std::string error;
};

bool ReadJpeg(JpegJob* job, const uint8_t* data, size_t size) {
  jpeg_decompress_struct& cinfo = job->cinfo;
  cinfo.err = jpeg_std_error(&job->err.mgr);
  job->err.mgr.error_exit = JpegErrorExit;
  job->err.mgr.emit_message = JpegEmitMessage;
  if (setjmp(job->err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    job->error = job->err.message.empty() ? "corrupt JPEG stream" : job->err.message;
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    job->error = "CMYK/YCCK JPEG is not supported";
    return false;
  }
  if (static_cast<int64_t>(cinfo.image_width) * cinfo.image_height > kMaxPixels) {
    job->error = absl::StrCat("image of ", cinfo.image_width, "x", cinfo.image_height, " pixels is larger than the ",
                              kMaxPixels, " pixels ImageDecoder accepts");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int channels = cinfo.output_components;
  if (channels != 1 && channels != 3) {
    jpeg_destroy_decompress(&cinfo);
    job->error = "unexpected JPEG channel layout";
    return false;
  }
  Decoded* out = job->out;
  out->height = cinfo.output_height;
  out->width = cinfo.output_width;
  out->channels = channels;
  out->pixels.assign(static_cast<size_t>(cinfo.output_width) * cinfo.output_height * channels, 0);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() + static_cast<size_t>(cinfo.output_scanline) * cinfo.output_width * channels;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

// Decodes a JPEG into gray or RGB. Returns "" or an error.
std::string DecodeJpeg(const uint8_t* data, size_t size, Decoded* out) {
  auto job = std::make_unique<JpegJob>();
  job->out = out;
  return ReadJpeg(job.get(), data, size) ? "" : job->error;
}

// ---- the operator ----

absl::StatusOr<PixelFormat> ReadPixelFormat(const Node& node) {
  const std::string s = node.GetString("pixel_format", "RGB");
  if (s == "RGB") return PixelFormat::kRGB;
  if (s == "BGR") return PixelFormat::kBGR;
  if (s == "Grayscale") return PixelFormat::kGrayscale;
  return absl::InvalidArgumentError(
      absl::StrCat("pixel_format '", s, "' is not one of RGB, BGR, Grayscale"));
}

absl::Status ComputeImageDecoder(KernelContext& ctx) {
  if (!ctx.HasInput(0) || !ctx.InputValue(0).is_tensor()) return ctx.Error("input 'encoded_stream' is required");
  const Tensor& in = ctx.Input(0);
  if (in.dtype() != DType::kUInt8) return ctx.Error("encoded_stream must be uint8, got ", DTypeName(in.dtype()));
  if (in.rank() != 1) return ctx.Error("encoded_stream must be 1-D, got shape ", ShapeToString(in.shape()));
  auto fmt = ReadPixelFormat(ctx.node());
  if (!fmt.ok()) return ctx.Error(fmt.status().message());
  const uint8_t* p = in.data<uint8_t>();
  const size_t n = static_cast<size_t>(in.size());

  Decoded img;
  std::string problem;
  if (StartsWith(p, n, "\x89PNG\r\n\x1a\n", 8)) {
    problem = DecodePng(p, n, &img);
    if (!problem.empty()) return ctx.Error("cannot decode the PNG stream: ", problem);
  } else if (StartsWith(p, n, "\xff\xd8\xff", 3)) {
    problem = DecodeJpeg(p, n, &img);
    if (!problem.empty()) return ctx.Error("cannot decode the JPEG stream: ", problem);
  } else if (std::string other = UnsupportedFormat(p, n); !other.empty()) {
    return ctx.Error(other, " streams are not supported (hepml decodes PNG and JPEG)");
  } else {
    return ctx.Error("encoded_stream (", n, " bytes) is not a PNG or JPEG image");
  }

  const int out_channels = *fmt == PixelFormat::kGrayscale ? 1 : 3;
  Tensor* y = ctx.Output(0, DType::kUInt8, {img.height, img.width, out_channels});
  uint8_t* py = y->mutable_data<uint8_t>();
  const int64_t count = img.height * img.width;
  const uint8_t* src = img.pixels.data();
  if (img.channels == 1) {
    for (int64_t i = 0; i < count; ++i) {
      for (int c = 0; c < out_channels; ++c) py[i * out_channels + c] = src[i];
    }
  } else if (*fmt == PixelFormat::kGrayscale) {
    for (int64_t i = 0; i < count; ++i) {
      const uint32_t r = src[3 * i], g = src[3 * i + 1], b = src[3 * i + 2];
      py[i] = static_cast<uint8_t>((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
    }
  } else if (*fmt == PixelFormat::kBGR) {
    for (int64_t i = 0; i < count; ++i) {
      py[3 * i] = src[3 * i + 2];
      py[3 * i + 1] = src[3 * i + 1];
      py[3 * i + 2] = src[3 * i];
    }
  } else {
    std::memcpy(py, src, static_cast<size_t>(count) * 3);
  }
  return absl::OkStatus();
}

// [?, ?, 3] or [?, ?, 1] for Grayscale.
absl::Status InferImageDecoder(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  auto fmt = ReadPixelFormat(ctx.node);
  if (!fmt.ok()) return fmt.status();
  outputs[0] = TypeInfo::Tensor(DType::kUInt8, {Dim{}, Dim{}, Dim{*fmt == PixelFormat::kGrayscale ? 1 : 3}});
  return absl::OkStatus();
}

const OpTableRegistration kImageDecoderOps({
    {.name = "ImageDecoder", .since = 20, .types = Bit(DType::kUInt8), .infer = InferImageDecoder,
     .compute = ComputeImageDecoder},
});

}  // namespace
}  // namespace hepml::ops
