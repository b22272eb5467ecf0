// The emitted kernel library (src/codegen/emitted/), compiled here as plain
// headers, against hepml's own operators on the same inputs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "codegen/emitted/common.h"
#include "codegen/emitted/conv.h"
#include "codegen/emitted/elementwise.h"
#include "codegen/emitted/gemm.h"
#include "codegen/emitted/loss.h"
#include "codegen/emitted/normalize.h"
#include "codegen/emitted/pool.h"
#include "codegen/emitted/recurrent.h"
#include "codegen/emitted/reduce.h"
#include "codegen/emitted/resize.h"
#include "codegen/emitted/shape.h"
#include "gtest/gtest.h"
#include "ops/op_test_util.h"

namespace hepml {
namespace {

namespace K = hepml_emitted;
using ops::testing::AttrFloat;
using ops::testing::AttrInt;
using ops::testing::AttrInts;
using ops::testing::AttrString;
using ops::testing::RunOp;

Tensor Random(Shape shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor t = Tensor::Empty(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.size(); ++i) t.mutable_data<float>()[i] = u(rng);
  return t;
}

void ExpectNear(const Tensor& expected, const std::vector<float>& got, float tol = 1e-5f) {
  ASSERT_EQ(expected.size(), static_cast<int64_t>(got.size()));
  for (int64_t i = 0; i < expected.size(); ++i)
    ASSERT_NEAR(expected.data<float>()[i], got[i], tol) << "element " << i;
}

TEST(EmittedKernels, GemmMatchesHepmlAcrossTileEdges) {
  // Sizes straddle the 4x16 register tile and the 256-deep K block.
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 5, 16}, {3, 16, 7}, {7, 37, 300}, {8, 64, 32}}) {
    Tensor a = Random({m, k}, 1), b = Random({k, n}, 2), c = Random({n}, 3);
    auto ref = RunOp("Gemm", 13, {a, b, c}, {AttrFloat("alpha", 0.5f)});
    ASSERT_TRUE(ref.ok()) << ref.status();
    std::vector<float> y(m * n);
    K::Gemm(m, n, k, a.data<float>(), false, b.data<float>(), false, 0.5f, 1.f, c.data<float>(), 1, n, K::Act::kNone,
            0.f, 0.f, y.data());
    ExpectNear((*ref)[0], y);
  }
}

TEST(EmittedKernels, PackedGemmMatchesHepml) {
  // Includes rows in blocks of 8 and 4 with a remainder over whole 64-column
  // panels and a partial one (the AVX-512 8-row tile when built for it).
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 5, 16}, {3, 40, 7}, {11, 37, 300}, {9, 64, 32},
                         {21, 160, 70}, {32, 64, 257}}) {
    Tensor a = Random({m, k}, 1), b = Random({k, n}, 2), c = Random({n}, 3);
    auto ref = RunOp("Gemm", 13, {a, b, c});
    ASSERT_TRUE(ref.ok()) << ref.status();
    std::vector<float> packed(k * n), y(m * n);
    K::PackB(k, n, b.data<float>(), packed.data());
    K::GemmPacked(m, n, k, a.data<float>(), packed.data(), 1.f, 1.f, c.data<float>(), 1, n, K::Act::kNone, 0.f, 0.f,
                  y.data());
    ExpectNear((*ref)[0], y);
  }
}

TEST(EmittedKernels, PackedGemvMatchesHepml) {
  // Batch 1 (the GEMV path): whole 64-column panels and a last partial one
  // of up to 16 columns (a masked vector with AVX-512, four interleaved sums
  // over k) or more; K odd and even; bias fused with the activation, no
  // bias, and beta != 1 (the general path).
  struct Case {
    int64_t n, k;
    bool bias;
    float beta;
    K::Act act;
  };
  for (const Case& t : {Case{266, 512, true, 1.f, K::Act::kSoftplus}, Case{128, 53, true, 1.f, K::Act::kLeakyRelu},
                        Case{200, 33, false, 1.f, K::Act::kRelu}, Case{90, 7, true, 1.f, K::Act::kNone},
                        Case{3, 64, true, 1.f, K::Act::kNone}, Case{64, 1, true, 0.5f, K::Act::kLeakyRelu}}) {
    Tensor a = Random({1, t.k}, 51), b = Random({t.k, t.n}, 52), c = Random({t.n}, 53);
    std::vector<Tensor> in = {a, b};
    if (t.bias) in.push_back(c);
    auto ref = RunOp("Gemm", 13, in, {AttrFloat("beta", t.beta)});
    ASSERT_TRUE(ref.ok()) << ref.status();
    Tensor r = (*ref)[0];
    for (int64_t i = 0; i < r.size(); ++i)
      r.mutable_data<float>()[i] = K::ApplyAct(t.act, r.data<float>()[i], 0.2f, 0.f);
    std::vector<float> packed(t.k * t.n), y(t.n, std::nanf(""));
    K::PackB(t.k, t.n, b.data<float>(), packed.data());
    K::GemmPacked(1, t.n, t.k, a.data<float>(), packed.data(), 1.f, t.beta, t.bias ? c.data<float>() : nullptr, 1,
                  t.n, t.act, 0.2f, 0.f, y.data());
    ExpectNear(r, y);
  }
}

TEST(EmittedKernels, BatchedMatMulMatchesHepml) {
  // Attention-shaped products, one per head: N of one vector at every ISA
  // (4, 8, 16: the four-row column tile where N equals the target's vector
  // width), rows past the last whole tile, a single row, and wider N.
  for (auto [count, m, n, k] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{4, 32, 16, 32}, {3, 7, 8, 5},
                                {2, 9, 4, 33}, {4, 1, 16, 32}, {2, 6, 40, 3}}) {
    Tensor a = Random({count, m, k}, 41), b = Random({count, k, n}, 42);
    auto ref = RunOp("MatMul", 13, {a, b});
    ASSERT_TRUE(ref.ok()) << ref.status();
    std::vector<float> y(count * m * n, -1.f);
    K::BatchedMatMul(count, m, n, k, a.data<float>(), m * k, b.data<float>(), k * n, y.data());
    ExpectNear((*ref)[0], y);
  }
}

TEST(EmittedKernels, Float16AndBFloat16StorageTypesRoundToNearestEven) {
  // The storage types of float16 / bfloat16 tensors agree with the weight
  // conversions on every half and on random floats across the range.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = K::Float16::ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(K::HalfToFloat(static_cast<uint16_t>(h))));
      ASSERT_TRUE(std::isnan(static_cast<float>(K::Float16(f))));
      continue;
    }
    ASSERT_EQ(f, K::HalfToFloat(static_cast<uint16_t>(h)));
    ASSERT_EQ(K::Float16(f).bits, h);
    ASSERT_EQ(K::BFloat16::ToFloat(static_cast<uint16_t>(h)), K::Bf16ToFloat(static_cast<uint16_t>(h)));
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f)) continue;
    ASSERT_EQ(K::Float16(f).bits, K::FloatToHalf(f)) << f;
    ASSERT_EQ(K::BFloat16(f).bits, K::FloatToBf16(f)) << f;
  }
  EXPECT_EQ(K::Float16(1.f + 0x1p-11f).bits, 0x3c00u);      // tie: to even
  EXPECT_EQ(K::Float16(1.f + 3 * 0x1p-11f).bits, 0x3c02u);  // tie: to even (up)
  EXPECT_EQ(K::Float16(65520.f).bits, 0x7c00u);
  EXPECT_EQ(K::Float16(-0x1p-25f).bits, 0x8000u);
  EXPECT_EQ(K::Float16(0x1.8p-24f).bits, 0x0002u);
  EXPECT_EQ(K::BFloat16(1.f + 0x1p-8f).bits, 0x3f80u);
  // From double: just above a tie rounds up, though float would round the
  // value onto the tie first (double rounding would then go to even, down).
  EXPECT_EQ(K::Float16(1.0 + 0x1p-11 + 0x1p-40).bits, 0x3c01u);
  EXPECT_EQ(K::Float16(1.0 + 0x1p-11 - 0x1p-40).bits, 0x3c00u);
  EXPECT_EQ(K::BFloat16(1.0 + 0x1p-8 + 0x1p-40).bits, 0x3f81u);
  EXPECT_EQ(K::Float16(int64_t{2049}).bits, 0x6800u);  // 2049 -> 2048 (tie to even)
  EXPECT_EQ(K::Float16(int64_t{2051}).bits, 0x6802u);  // 2051 -> 2052
  // Arithmetic goes through float.
  const K::Float16 a(1.5f), b(0.25f);
  EXPECT_EQ(static_cast<float>(K::Float16(a * b)), 0.375f);
}

// DecodeWeights (the CPU's conversion where the build has F16C / AVX-512)
// gives HalfToFloat's bits for every half, NaNs as NaNs, at every offset of a
// vector (the 65536 patterns start at an odd element).
TEST(EmittedKernels, DecodedHalfWeightsAreExact) {
  std::vector<uint16_t> h(65537);
  for (uint32_t i = 0; i < 65536; ++i) h[i + 1] = static_cast<uint16_t>(i);
  std::vector<float> got(h.size());
  K::DecodeWeights<K::kWeightF16>(static_cast<int64_t>(h.size()), h.data(), got.data());
  for (size_t i = 0; i < h.size(); ++i) {
    const float want = K::HalfToFloat(h[i]);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got[i])) << std::hex << h[i];
    } else {
      ASSERT_EQ(K::FloatToBits(got[i]), K::FloatToBits(want)) << std::hex << h[i];
    }
  }
}

TEST(EmittedKernels, HalfAndBfloat16Conversions) {
  // Every half round-trips through float (NaN stays NaN).
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = K::HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      ASSERT_EQ((h & 0x7c00u), 0x7c00u);
      ASSERT_TRUE(std::isnan(K::HalfToFloat(K::FloatToHalf(f))));
      continue;
    }
    ASSERT_EQ(K::FloatToHalf(f), h) << "half 0x" << std::hex << h;
    // bfloat16 keeps 8 significant bits: within half a unit (2^-8) relative.
    if (std::isinf(f)) ASSERT_EQ(K::Bf16ToFloat(K::FloatToBf16(f)), f);
    else ASSERT_LE(std::fabs(K::Bf16ToFloat(K::FloatToBf16(f)) - f), std::fabs(f) * 0x1p-8f) << f;
  }
  EXPECT_EQ(K::HalfToFloat(0x3c00u), 1.f);
  EXPECT_EQ(K::HalfToFloat(0x0001u), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(K::HalfToFloat(0xfbffu), -65504.f);
  // Round to nearest even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(K::FloatToHalf(1.f + 0x1p-11f), 0x3c00u);
  EXPECT_EQ(K::FloatToHalf(1.f + 3 * 0x1p-11f), 0x3c02u);
  EXPECT_EQ(K::FloatToHalf(65520.f), 0x7c00u);  // overflows to infinity
  EXPECT_EQ(K::FloatToHalf(65519.f), 0x7bffu);
  EXPECT_EQ(K::FloatToHalf(0x1p-25f), 0x0000u);  // halfway to the smallest subnormal: even
  EXPECT_EQ(K::FloatToHalf(0x1.8p-24f), 0x0002u);
  EXPECT_EQ(K::FloatToBf16(1.f + 0x1p-8f), 0x3f80u);
  EXPECT_EQ(K::FloatToBf16(1.f + 3 * 0x1p-8f), 0x3f82u);
  EXPECT_EQ(K::FloatToBf16(-2.f), 0xc000u);
}

// Sizes over the 4-row and 64-column tiles, odd K, K past one 256-deep block
// and, for the bfloat16 dot products, past one 1024-deep chunk.
TEST(EmittedKernels, Packed16GemmMatchesWidenedWeights) {
  for (int format : {K::kWeightF16, K::kWeightBF16}) {
    for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 5, 16}, {3, 70, 7}, {11, 37, 300}, {1, 128, 600},
                           {6, 83, 1031}, {20, 70, 517}}) {
      SCOPED_TRACE(testing::Message() << "format " << format << " m " << m << " n " << n << " k " << k);
      Tensor a = Random({m, k}, 1), b = Random({k, n}, 2), c = Random({n}, 3);
      // The reference: float GEMM on the weights rounded to 16 bits (and,
      // where the build has AVX512-BF16 dot products for bfloat16, on the
      // activations rounded too: the kernel rounds them).
      Tensor rounded = b;
      std::vector<uint16_t> h(k * n);
      for (int64_t i = 0; i < k * n; ++i) {
        h[i] = format == K::kWeightF16 ? K::FloatToHalf(b.data<float>()[i]) : K::FloatToBf16(b.data<float>()[i]);
        rounded.mutable_data<float>()[i] = format == K::kWeightF16 ? K::HalfToFloat(h[i]) : K::Bf16ToFloat(h[i]);
      }
      Tensor a_ref = a;
#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
      if (format == K::kWeightBF16) {
        a_ref = Tensor::Empty(DType::kFloat32, {m, k});
        for (int64_t i = 0; i < m * k; ++i)
          a_ref.mutable_data<float>()[i] = K::Bf16ToFloat(K::FloatToBf16(a.data<float>()[i]));
      }
#endif
      auto ref = RunOp("Gemm", 13, {a_ref, rounded, c});
      ASSERT_TRUE(ref.ok()) << ref.status();
      std::vector<float> packed(k * n), widened(k * n), y(m * n);
      K::PackB(k, n, rounded.data<float>(), widened.data());
      std::vector<uint16_t> packed16(k * n);
      std::vector<float> hf(h.begin(), h.end());
      K::PackB(k, n, hf.data(), packed.data());  // the same permutation on the raw bits
      for (int64_t i = 0; i < k * n; ++i) packed16[i] = static_cast<uint16_t>(packed[i]);
      if (format == K::kWeightF16)
        K::GemmPacked16<K::kWeightF16>(m, n, k, a.data<float>(), packed16.data(), 1.f, 1.f, c.data<float>(), 1, n,
                                       K::Act::kNone, 0.f, 0.f, y.data());
      else
        K::GemmPacked16<K::kWeightBF16>(m, n, k, a.data<float>(), packed16.data(), 1.f, 1.f, c.data<float>(), 1, n,
                                        K::Act::kNone, 0.f, 0.f, y.data());
      ExpectNear((*ref)[0], y, 1e-4f);
    }
  }
}

// The pruned-layer GEMM against hepml's dense Gemm on the same pruned
// weights: batches 1, 3, 17 and 256 (one, several and partial 64-row
// blocks of the batch-vectorised kernel) at odd sizes, each batch through
// the sparse kernel, the dense panels and the gathered dot products.
TEST(EmittedKernels, SparseGemmMatchesHepmlOnPrunedWeights) {
  for (auto [n, k] : {std::pair<int64_t, int64_t>{5, 16}, {70, 7}, {37, 301}, {130, 53}, {16, 16}}) {
    for (int64_t m : {1, 3, 17, 256}) {
      Tensor a = Random({m, k}, 4), b = Random({k, n}, 5), c = Random({n}, 6);
      float* bd = b.mutable_data<float>();
      for (int64_t i = 0; i < k * n; ++i)
        if (i % 5 != 0) bd[i] = 0.f;
      auto ref = RunOp("Gemm", 13, {a, b, c}, {AttrFloat("alpha", 0.5f)});
      ASSERT_TRUE(ref.ok()) << ref.status();
      for (int64_t i = 0; i < m * n; ++i)
        (*ref)[0].mutable_data<float>()[i] = std::max(0.f, (*ref)[0].data<float>()[i]);
      std::vector<int32_t> ptr(n + 1, 0), idx;
      std::vector<float> val, packed(k * n), at(k * K::kSpMBMax), ct(n * K::kSpMBMax);
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t kk = 0; kk < k; ++kk)
          if (bd[kk * n + j] != 0.f) {
            idx.push_back(static_cast<int32_t>(kk));
            val.push_back(bd[kk * n + j]);
          }
        ptr[j + 1] = static_cast<int32_t>(idx.size());
      }
      K::PackB(k, n, bd, packed.data());
      // Lane slots (K >= 16): per 16-column block, per 16-row chunk starting
      // at min(16c, K - 16), one slot per non-zero of the fullest column.
      std::vector<int32_t> sptr{0}, k0;
      std::vector<uint8_t> lidx;
      std::vector<float> lval;
      for (int64_t j = 0; k >= 16 && j < n; j += K::kSpLanes) {
        for (int64_t lo = 0; lo < k; lo += 16) {
          const int64_t start = std::min<int64_t>(lo, k - 16);
          for (size_t t = 0;; ++t) {
            bool any = false;
            std::vector<uint8_t> li(16, 0);
            std::vector<float> lv(16, 0.f);
            for (int64_t l = 0; l < K::kSpLanes && j + l < n; ++l) {
              size_t seen = 0;
              for (int64_t kk = lo; kk < std::min<int64_t>(k, lo + 16); ++kk)
                if (bd[kk * n + j + l] != 0.f && seen++ == t) {
                  li[l] = static_cast<uint8_t>(kk - start);
                  lv[l] = bd[kk * n + j + l];
                  any = true;
                }
            }
            if (!any) break;
            k0.push_back(static_cast<int32_t>(start));
            lidx.insert(lidx.end(), li.begin(), li.end());
            lval.insert(lval.end(), lv.begin(), lv.end());
          }
        }
        sptr.push_back(static_cast<int32_t>(k0.size()));
      }
      // batch_min 1: always the batch kernel; above m: rows one at a time
      // through the lane slots, the dense panels or the gathered dot products.
      enum Small { kLanes, kDense, kGather };
      for (auto [batch_min, small] : {std::pair<int64_t, Small>{1, kGather}, {m + 1, kLanes}, {m + 1, kDense},
                                      {m + 1, kGather}}) {
        if (small == kLanes && k < 16) continue;
        SCOPED_TRACE(testing::Message() << "m " << m << " n " << n << " k " << k << " batch_min " << batch_min
                                        << " small-batch kernel " << small);
        std::vector<float> y(m * n, -7.f);
        const bool lanes = small == kLanes;
        K::GemmSparse(m, n, k, a.data<float>(), lanes ? sptr.data() : nullptr, k0.data(), lidx.data(), lval.data(),
                      small == kDense ? packed.data() : nullptr, ptr.data(), idx.data(), val.data(), batch_min,
                      at.data(), ct.data(), 0.5f, 1.f, c.data<float>(), 1, n, K::Act::kRelu, 0.f, 0.f, y.data());
        ExpectNear((*ref)[0], y);
      }
    }
  }
}

// Linked pruned layers (GemmSparseLinked): a chain of three layers whose
// intermediate outputs stay in transposed blocks gives, bit for bit, the
// final output of the same layers unlinked (GemmSparse on the batch kernel),
// at batches below the chain's crossover (16 here: the unlinked path), of
// whole kSpMB-row blocks, and with a partial last block; biases per column, one for all
// (alpha, beta != 1) and none; ReLU, tanh and no activation.
TEST(EmittedKernels, LinkedSparseLayersGiveTheBitsOfUnlinkedOnes) {
  struct Layer {
    int64_t k, n;
    std::vector<int32_t> ptr, idx;
    std::vector<float> val, bias;
    int64_t c_cols;
    float alpha, beta;
    K::Act act;
  };
  const int64_t dims[] = {23, 70, 37, 5};
  std::vector<Layer> layers;
  for (int l = 0; l < 3; ++l) {
    Layer L;
    L.k = dims[l];
    L.n = dims[l + 1];
    Tensor w = Random({L.k, L.n}, 40 + l);
    L.ptr.assign(L.n + 1, 0);
    for (int64_t j = 0; j < L.n; ++j) {
      for (int64_t kk = 0; kk < L.k; ++kk)
        if ((kk * L.n + j) % 5 == l) {
          L.idx.push_back(static_cast<int32_t>(kk));
          L.val.push_back(w.data<float>()[kk * L.n + j]);
        }
      L.ptr[j + 1] = static_cast<int32_t>(L.idx.size());
    }
    Tensor b = Random({L.n}, 50 + l);
    L.bias.assign(b.data<float>(), b.data<float>() + L.n);
    L.c_cols = l == 0 ? L.n : 1;
    L.alpha = l == 1 ? 0.5f : 1.f;
    L.beta = l == 1 ? 0.75f : 1.f;
    L.act = l == 0 ? K::Act::kRelu : l == 1 ? K::Act::kTanh : K::Act::kNone;
    layers.push_back(std::move(L));
  }
  for (int64_t m : {9, 64, 141, 256}) {
    SCOPED_TRACE(testing::Message() << "batch " << m);
    Tensor x = Random({m, dims[0]}, 60);
    std::vector<std::vector<float>> plain(3), linked(3);
    for (int l = 0; l < 3; ++l) {
      const Layer& L = layers[l];
      std::vector<float> at(L.k * K::kSpMBMax), ct(L.n * K::kSpMBMax);
      const float* c = l == 2 ? nullptr : L.bias.data();
      plain[l].assign(m * L.n, -7.f);
      linked[l].assign(m * L.n, -7.f);
      const float* a_plain = l == 0 ? x.data<float>() : plain[l - 1].data();
      const float* a_linked = l == 0 ? x.data<float>() : linked[l - 1].data();
      K::GemmSparse(m, L.n, L.k, a_plain, nullptr, nullptr, nullptr, nullptr, nullptr, L.ptr.data(), L.idx.data(),
                    L.val.data(), 1, at.data(), ct.data(), L.alpha, L.beta, c, 1, L.c_cols, L.act, 0.f, 0.f,
                    plain[l].data());
      K::GemmSparseLinked(m, L.n, L.k, a_linked, l > 0, l < 2, 16, nullptr, nullptr, nullptr, nullptr, nullptr,
                          L.ptr.data(), L.idx.data(), L.val.data(), 1, at.data(), ct.data(), L.alpha, L.beta, c, 1,
                          L.c_cols, L.act, 0.f, 0.f, linked[l].data());
    }
    ASSERT_EQ(std::memcmp(plain[2].data(), linked[2].data(), plain[2].size() * sizeof(float)), 0);
    // Below the crossover nothing is transposed; from it, whole blocks of the
    // intermediate outputs are (and differ from the row-major ones).
    const bool transposed = std::memcmp(plain[0].data(), linked[0].data(), plain[0].size() * sizeof(float)) != 0;
    EXPECT_EQ(transposed, m >= 16 && m >= K::kSpMB);
    if (m % K::kSpMB != 0 && m > K::kSpMB) {  // the partial last block stays row-major
      const int64_t from = m / K::kSpMB * K::kSpMB * layers[0].n;
      EXPECT_EQ(std::memcmp(plain[0].data() + from, linked[0].data() + from,
                            (plain[0].size() - from) * sizeof(float)),
                0);
    }
  }
}

TEST(EmittedKernels, SoftplusWithoutLibmMatchesLog1p) {
  for (float v = -100.f; v <= 100.f; v += 0.0137f) {
    const double want = v > 0 ? v + std::log1p(std::exp(-static_cast<double>(v))) : std::log1p(std::exp(static_cast<double>(v)));
    ASSERT_NEAR(K::SoftplusF(v), want, 2e-7 * std::max(1.0, want)) << v;
  }
  EXPECT_EQ(K::SoftplusF(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_NEAR(K::SoftplusF(-std::numeric_limits<float>::infinity()), 0.f, 2e-38f);  // e^-87 at most
  EXPECT_TRUE(std::isnan(K::SoftplusF(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_NEAR(K::SoftplusF(0.f), std::log(2.0), 1e-7);
}

// Every 4099th float bit pattern (about a million values over the whole
// range: denormals, huge magnitudes, +-inf, NaNs) through f and against the
// double-precision reference: NaN in gives NaN; a reference beyond FLT_MAX
// gives +-inf; a denormal reference is met within denormal_ulps of 2^-149 or
// tol(x) relative;
// otherwise the relative error is at most tol(x). Returns the largest
// relative error seen, for the message.
template <typename F, typename Ref, typename Tol>
double ExpectFloatFunction(const char* name, F f, Ref ref, Tol tol, double denormal_ulps = 2) {
  double worst = 0;
  int failures = 0;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 4099) {
    const uint32_t bits = static_cast<uint32_t>(b);
    float x;
    std::memcpy(&x, &bits, sizeof x);
    const float y = f(x);
    const double r = ref(static_cast<double>(x));
    bool ok;
    if (std::isnan(x) || std::isnan(r)) {
      ok = std::isnan(y);
    } else if (std::fabs(r) > 3.4028235677973366e38) {
      ok = std::isinf(y) && (y > 0) == (r > 0);
    } else if (std::fabs(r) < 1.1754943508222875e-38) {
      ok = std::fabs(y - r) <= std::max(denormal_ulps * 1.401298464324817e-45, tol(static_cast<double>(x)) * std::fabs(r));
    } else {
      const double rel = std::fabs(y - r) / std::fabs(r);
      worst = std::max(worst, rel);
      ok = rel <= tol(static_cast<double>(x));
    }
    if (!ok && ++failures <= 5) ADD_FAILURE() << name << "(" << x << ") = " << y << ", want " << r;
  }
  return worst;
}

TEST(EmittedKernels, VecMathMatchesLibmOverTheFloatRange) {
  // Measured maxima (g++ -O2, no FMA): exp 7.9e-8, tanh 8.1e-8, erf 8.9e-8,
  // sigmoid 1.7e-7; GELU's error grows with the condition number of
  // e^(-x^2/2) (x^2 times the input's rounding), bounded here accordingly,
  // and its denormal results (x < -13) carry e^(-x^2/2)'s denormal rounding
  // times |x|.
  auto flat = [](double bound) { return [bound](double) { return bound; }; };
  EXPECT_LT(ExpectFloatFunction("ExpF", K::ExpF, [](double x) { return std::exp(x); }, flat(2e-7)), 2e-7);
  EXPECT_LT(ExpectFloatFunction("TanhF", K::TanhF, [](double x) { return std::tanh(x); }, flat(2e-7)), 2e-7);
  EXPECT_LT(ExpectFloatFunction("ErfF", K::ErfF, [](double x) { return std::erf(x); }, flat(2e-7)), 2e-7);
  EXPECT_LT(ExpectFloatFunction("SigmoidF", K::SigmoidF, [](double x) { return 1 / (1 + std::exp(-x)); }, flat(3e-7)),
            3e-7);
  ExpectFloatFunction(
      "GeluF", K::GeluF, [](double x) { return std::isinf(x) && x < 0 ? NAN : 0.5 * x * std::erfc(-x / std::sqrt(2.0)); },
      [](double x) { return 4e-7 + 1.5e-7 * x * x; }, 32);
  auto tanh_u2 = [](double x) { return 2 * 0.7978845608028654 * (x + 0.044715 * x * x * x); };
  ExpectFloatFunction(
      "GeluTanhF", K::GeluTanhF,
      [&](double x) { return std::isinf(x) && x < 0 ? NAN : x / (1 + std::exp(-tanh_u2(x))); },
      [&](double x) { return 4e-7 + 2e-7 * std::fabs(tanh_u2(x)); }, 32);

  // The values a user sees at the edges.
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(K::ExpF(-inf), 0.f);
  EXPECT_EQ(K::ExpF(inf), inf);
  EXPECT_EQ(K::ExpF(89.f), inf);
  EXPECT_EQ(K::ExpF(0.f), 1.f);
  EXPECT_GT(K::ExpF(-103.f), 0.f);  // a denormal, not flushed
  EXPECT_EQ(K::TanhF(inf), 1.f);
  EXPECT_EQ(K::TanhF(-inf), -1.f);
  EXPECT_TRUE(std::signbit(K::TanhF(-0.f)));
  EXPECT_EQ(K::SigmoidF(inf), 1.f);
  EXPECT_EQ(K::SigmoidF(-inf), 0.f);
  EXPECT_EQ(K::SigmoidF(0.f), 0.5f);
  EXPECT_EQ(K::ErfF(inf), 1.f);
  EXPECT_EQ(K::ErfF(-inf), -1.f);
  EXPECT_TRUE(std::signbit(K::ErfF(-0.f)));
  EXPECT_EQ(K::GeluF(inf), inf);
  EXPECT_EQ(K::GeluF(0.f), 0.f);
  // GELU's negative tail keeps its value where 1 + erf would cancel to 0.
  EXPECT_NEAR(K::GeluF(-6.f), 0.5 * -6.0 * std::erfc(6.0 / std::sqrt(2.0)), 1e-5 * 5.9e-9);
  for (float nan : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()}) {
    for (float (*f)(float) : {K::ExpF, K::TanhF, K::SigmoidF, K::ErfF, K::GeluF, K::GeluTanhF})
      EXPECT_TRUE(std::isnan(f(nan)));
  }
}

TEST(EmittedKernels, FusedActivationsMatchTheirFunctions) {
  // ActInPlace (the activation a dense or conv kernel applies to its output)
  // against the scalar ApplyAct and libm, across every vector-tail length.
  for (K::Act act : {K::Act::kSigmoid, K::Act::kTanh, K::Act::kGelu, K::Act::kSoftplus, K::Act::kRelu, K::Act::kLeakyRelu}) {
    for (int64_t n : {1, 7, 16, 37}) {
      std::vector<float> x(n), y(n);
      for (int64_t i = 0; i < n; ++i) x[i] = -9.f + 18.f * static_cast<float>(i) / static_cast<float>(n);
      y = x;
      K::ActInPlace(act, y.data(), n, 0.1f, 0.f);
      for (int64_t i = 0; i < n; ++i) {
        const double v = x[i];
        double want = v > 0 ? v : (act == K::Act::kLeakyRelu ? 0.1 * v : 0.0);
        if (act == K::Act::kSigmoid) want = 1 / (1 + std::exp(-v));
        if (act == K::Act::kTanh) want = std::tanh(v);
        if (act == K::Act::kGelu) want = 0.5 * v * std::erfc(-v / std::sqrt(2.0));
        if (act == K::Act::kSoftplus) want = std::log1p(std::exp(v));
        ASSERT_NEAR(y[i], want, 1e-6 * std::max(1.0, std::fabs(want))) << "act " << static_cast<int>(act) << " x " << v;
        ASSERT_EQ(y[i], K::ApplyAct(act, x[i], 0.1f, 0.f));
      }
    }
  }
}

TEST(EmittedKernels, TransposeRowsAtOddShapes) {
  // Shapes across the 16 x 16 blocks: one partial block, several whole and
  // partial ones in either direction.
  // Whole 16 x 16 and 8 x 8 register blocks (AVX-512, AVX) with partial
  // ones beside them: {16, 16}, {40, 24}, {64, 5}, {23, 31}, {48, 72}.
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 9}, {8, 4}, {17, 13}, {64, 33}, {50, 512}, {16, 16},
                            {40, 24}, {64, 5}, {23, 31}, {48, 72}}) {
    std::vector<float> x(cols * (rows + 2)), y(rows * (cols + 1), 0.f);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
    K::TransposeRows(rows, cols, x.data(), rows + 2, y.data(), cols + 1);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(y[r * (cols + 1) + c], x[c * (rows + 2) + r]) << r << "," << c;
  }
}

TEST(EmittedKernels, GemmTransposedOperandsAndColumnBias) {
  const int64_t m = 5, n = 6, k = 4;
  Tensor a = Random({k, m}, 4), b = Random({n, k}, 5), c = Random({m, 1}, 6);
  auto ref = RunOp("Gemm", 13, {a, b, c}, {AttrInt("transA", 1), AttrInt("transB", 1), AttrFloat("beta", 2.f)});
  ASSERT_TRUE(ref.ok()) << ref.status();
  std::vector<float> y(m * n);
  K::Gemm(m, n, k, a.data<float>(), true, b.data<float>(), true, 1.f, 2.f, c.data<float>(), m, 1, K::Act::kNone, 0.f,
          0.f, y.data());
  ExpectNear((*ref)[0], y);
}

TEST(EmittedKernels, ConvMatchesHepml) {
  // 2-D with padding, stride and dilation; 1-D grouped.
  {
    Tensor x = Random({2, 3, 9, 8}, 7), w = Random({4, 3, 3, 3}, 8), bias = Random({4}, 9);
    auto ref = RunOp("Conv", 11, {x, w, bias},
                     {AttrInts("pads", {1, 2, 1, 2}), AttrInts("strides", {2, 1}), AttrInts("dilations", {1, 2})});
    ASSERT_TRUE(ref.ok()) << ref.status();
    const Tensor& r = (*ref)[0];
    K::ConvGeometry g;
    g.spatial = 2;
    for (int i = 0; i < 2; ++i) {
      g.in[i] = x.dim(2 + i);
      g.out[i] = r.dim(2 + i);
      g.kernel[i] = 3;
    }
    g.stride[0] = 2;
    g.dilation[1] = 2;
    g.pad_begin[0] = 1;
    g.pad_begin[1] = 2;
    std::vector<float> col(3 * 9 * r.dim(2) * r.dim(3)), y(r.size());
    K::Conv(g, 2, 3, 4, 1, x.data<float>(), w.data<float>(), bias.data<float>(), K::Act::kNone, 0.f, 0.f, col.data(),
            y.data());
    ExpectNear(r, y);
  }
  // Stride, dilation and wide padding along the last axis (im2col's row
  // split into padding, the strided reads and padding again).
  for (int64_t stride : {1, 3}) {
    Tensor x = Random({1, 2, 5, 11}, 20), w = Random({3, 2, 2, 4}, 21);
    auto ref = RunOp("Conv", 11, {x, w},
                     {AttrInts("pads", {0, 7, 1, 5}), AttrInts("strides", {1, stride}), AttrInts("dilations", {1, 2})});
    ASSERT_TRUE(ref.ok()) << ref.status();
    const Tensor& r = (*ref)[0];
    K::ConvGeometry g;
    g.spatial = 2;
    g.in[0] = 5;
    g.in[1] = 11;
    g.out[0] = r.dim(2);
    g.out[1] = r.dim(3);
    g.kernel[0] = 2;
    g.kernel[1] = 4;
    g.stride[1] = stride;
    g.dilation[1] = 2;
    g.pad_begin[1] = 7;
    std::vector<float> col(2 * 8 * r.dim(2) * r.dim(3)), y(r.size());
    K::Conv(g, 1, 2, 3, 1, x.data<float>(), w.data<float>(), nullptr, K::Act::kNone, 0.f, 0.f, col.data(), y.data());
    ExpectNear(r, y);
  }
  {
    Tensor x = Random({3, 4, 10}, 10), w = Random({6, 2, 1}, 11);
    auto ref = RunOp("Conv", 11, {x, w}, {AttrInt("group", 2)});
    ASSERT_TRUE(ref.ok()) << ref.status();
    K::ConvGeometry g;
    g.in[0] = g.out[0] = 10;
    std::vector<float> y((*ref)[0].size());
    K::Conv(g, 3, 4, 6, 2, x.data<float>(), w.data<float>(), nullptr, K::Act::kRelu, 0.f, 0.f, nullptr, y.data());
    auto relu = RunOp("Relu", 14, {(*ref)[0]});
    ExpectNear((*relu)[0], y);
  }
}

// conv3x3(x) + bias with pads 1 by hepml's Conv, then `act` on each element.
Tensor ReferenceConv3x3(const Tensor& x, const Tensor& w, const Tensor* bias, K::Act act, float alpha) {
  std::vector<Tensor> in = {x, w};
  if (bias != nullptr) in.push_back(*bias);
  auto ref = RunOp("Conv", 11, in, {AttrInts("pads", {1, 1, 1, 1}), AttrInts("kernel_shape", {3, 3})});
  EXPECT_TRUE(ref.ok()) << ref.status();
  Tensor r = (*ref)[0];
  for (int64_t i = 0; i < r.size(); ++i)
    r.mutable_data<float>()[i] = K::ApplyAct(act, r.data<float>()[i], alpha, 0.f);
  return r;
}

// MaxPool 2x2 / 2 of r by hepml's MaxPool.
Tensor ReferencePool2x2(const Tensor& r) {
  auto p = RunOp("MaxPool", 12, {r}, {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
  EXPECT_TRUE(p.ok()) << p.status();
  return (*p)[0];
}

TEST(EmittedKernels, Conv3x3WinogradMatchesHepml) {
  // Odd sizes (partial tiles on the last row and column), a single row, a
  // calo_cnn layer; with and without bias, with Relu, LeakyRelu and none;
  // each also pooled 2x2 / 2 as it stores (odd sizes: the last row or
  // column in no window).
  struct Case {
    int64_t n, c, m, h, w;
    bool bias;
    K::Act act;
  };
  for (const Case& t : {Case{2, 8, 5, 7, 9, true, K::Act::kRelu}, Case{1, 16, 32, 16, 16, true, K::Act::kNone},
                        Case{1, 9, 17, 2, 3, false, K::Act::kLeakyRelu}, Case{3, 12, 4, 2, 2, true, K::Act::kRelu},
                        Case{1, 32, 64, 8, 8, true, K::Act::kRelu}}) {
    Tensor x = Random({t.n, t.c, t.h, t.w}, 31), w = Random({t.m, t.c, 3, 3}, 32), b = Random({t.m}, 33);
    const Tensor r = ReferenceConv3x3(x, w, t.bias ? &b : nullptr, t.act, 0.1f);
    const Tensor rp = ReferencePool2x2(r);
    std::vector<float> u(16 * t.c * K::WinogradPadded(t.m)), y(r.size(), std::nanf("")), yp(rp.size(), std::nanf(""));
    std::vector<float> scratch(K::WinogradScratchFloats(t.c, t.m, t.h, t.w));
    K::WinogradTransformWeights(t.m, t.c, w.data<float>(), u.data());
    K::Conv3x3Winograd(t.n, t.c, t.m, t.h, t.w, x.data<float>(), u.data(), t.bias ? b.data<float>() : nullptr, t.act,
                       0.1f, 0.f, false, scratch.data(), y.data());
    // Winograd's transforms round differently from the direct sum.
    ExpectNear(r, y, 1e-4f);
    K::Conv3x3Winograd(t.n, t.c, t.m, t.h, t.w, x.data<float>(), u.data(), t.bias ? b.data<float>() : nullptr, t.act,
                       0.1f, 0.f, true, scratch.data(), yp.data());
    ExpectNear(rp, yp, 1e-4f);
  }
}

TEST(EmittedKernels, Conv3x3DirectMatchesHepml) {
  // Rows shorter and longer than the kernel's 32-column block, and not a
  // multiple of it; one to seven input channels; output channels not a
  // multiple of the 4-channel tile; each also pooled 2x2 / 2.
  struct Case {
    int64_t n, c, m, h, w;
    bool bias;
    K::Act act;
  };
  for (const Case& t : {Case{1, 1, 16, 32, 32, true, K::Act::kRelu}, Case{2, 3, 5, 5, 17, false, K::Act::kNone},
                        Case{1, 2, 3, 2, 2, true, K::Act::kSigmoid}, Case{1, 7, 6, 7, 67, true, K::Act::kRelu}}) {
    Tensor x = Random({t.n, t.c, t.h, t.w}, 34), w = Random({t.m, t.c, 3, 3}, 35), b = Random({t.m}, 36);
    const Tensor r = ReferenceConv3x3(x, w, t.bias ? &b : nullptr, t.act, 0.f);
    const Tensor rp = ReferencePool2x2(r);
    std::vector<float> y(r.size(), std::nanf("")), yp(rp.size(), std::nanf(""));
    std::vector<float> scratch(K::ConvDirectScratchFloats(t.c, t.h, t.w));
    K::Conv3x3Direct(t.n, t.c, t.m, t.h, t.w, x.data<float>(), w.data<float>(), t.bias ? b.data<float>() : nullptr,
                     t.act, 0.f, 0.f, false, scratch.data(), y.data());
    ExpectNear(r, y);
    K::Conv3x3Direct(t.n, t.c, t.m, t.h, t.w, x.data<float>(), w.data<float>(), t.bias ? b.data<float>() : nullptr,
                     t.act, 0.f, 0.f, true, scratch.data(), yp.data());
    ExpectNear(rp, yp);
  }
}

TEST(EmittedKernels, ConvPointwiseMatchesHepml) {
  // EdgeConv's layer ([c, points, neighbours]); output channels not a
  // multiple of the 4-row block; positions not a multiple of the tile's
  // columns (the scalar edge); one input channel; with and without bias.
  struct Case {
    int64_t n, c, m, h, w;
    bool bias;
    K::Act act;
  };
  for (const Case& t : {Case{1, 16, 32, 64, 8, true, K::Act::kRelu}, Case{2, 5, 7, 37, 1, true, K::Act::kNone},
                        Case{1, 1, 3, 3, 3, false, K::Act::kLeakyRelu}, Case{3, 33, 9, 5, 11, true, K::Act::kRelu}}) {
    Tensor x = Random({t.n, t.c, t.h, t.w}, 39), w = Random({t.m, t.c, 1, 1}, 40), b = Random({t.m}, 41);
    std::vector<Tensor> in = {x, w};
    if (t.bias) in.push_back(b);
    auto ref = RunOp("Conv", 11, in, {});
    ASSERT_TRUE(ref.ok()) << ref.status();
    Tensor r = (*ref)[0];
    for (int64_t i = 0; i < r.size(); ++i)
      r.mutable_data<float>()[i] = K::ApplyAct(t.act, r.data<float>()[i], 0.1f, 0.f);
    std::vector<float> packed(K::PointwisePackedFloats(t.m, t.c)), y(r.size(), std::nanf(""));
    std::vector<float> scratch(K::ConvPointwiseScratchFloats(t.c));
    K::PackPointwiseWeights(t.m, t.c, w.data<float>(), packed.data());
    K::ConvPointwise(t.n, t.c, t.m, t.h * t.w, x.data<float>(), packed.data(), t.bias ? b.data<float>() : nullptr,
                     t.act, 0.1f, 0.f, scratch.data(), y.data());
    ExpectNear(r, y);
  }
}

TEST(EmittedKernels, MaxPool2x2MatchesHepml) {
  // The 2x2 / 2 path of Pool: even sizes, and odd ones whose last row and
  // column no window covers.
  for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 6}, {7, 9}, {3, 2}}) {
    Tensor x = Random({2, 3, h, w}, 37);
    auto ref = RunOp("MaxPool", 12, {x}, {AttrInts("kernel_shape", {2, 2}), AttrInts("strides", {2, 2})});
    ASSERT_TRUE(ref.ok()) << ref.status();
    const Tensor& r = (*ref)[0];
    K::ConvGeometry g;
    g.spatial = 2;
    g.in[0] = h;
    g.in[1] = w;
    g.out[0] = r.dim(2);
    g.out[1] = r.dim(3);
    g.kernel[0] = g.kernel[1] = 2;
    g.stride[0] = g.stride[1] = 2;
    std::vector<float> y(r.size());
    K::Pool(g, 6, true, false, x.data<float>(), y.data());
    ExpectNear(r, y, 0.f);
  }
}

TEST(EmittedKernels, TopKMatchesHepmlWithTies) {
  // Few of many (the insertion path: the k-NN of a point cloud) and many of
  // few (the sort), largest and smallest, along the last and a middle axis;
  // values on a coarse grid so that ties are common and go to the lower index.
  for (auto [n, k, inner] : {std::tuple<int64_t, int64_t, int64_t>{64, 9, 1}, {37, 5, 3}, {12, 7, 1}, {9, 1, 2}}) {
    for (int64_t largest : {1, 0}) {
      Tensor x = Random({3, n, inner}, 38);
      for (int64_t i = 0; i < x.size(); ++i)
        x.mutable_data<float>()[i] = std::round(x.data<float>()[i] * 4.f) / 4.f;
      Tensor kt = Tensor::Empty(DType::kInt64, {1});
      kt.mutable_data<int64_t>()[0] = k;
      auto ref = RunOp("TopK", 11, {x, kt}, {AttrInt("axis", 1), AttrInt("largest", largest)}, 2);
      ASSERT_TRUE(ref.ok()) << ref.status();
      std::vector<float> values(3 * k * inner);
      std::vector<int64_t> indices(values.size()), order(n);
      K::TopK<float>(3, n, inner, k, largest != 0, x.data<float>(), values.data(), indices.data(), order.data());
      ExpectNear((*ref)[0], values, 0.f);
      for (size_t i = 0; i < indices.size(); ++i)
        ASSERT_EQ((*ref)[1].data<int64_t>()[i], indices[i]) << "n " << n << " k " << k << " index " << i;
    }
  }
}

TEST(EmittedKernels, PoolingMatchesHepml) {
  Tensor x = Random({2, 3, 7, 6}, 12);
  auto ref = RunOp("MaxPool", 12, {x}, {AttrInts("kernel_shape", {3, 2}), AttrInts("strides", {2, 2}),
                                         AttrInts("pads", {1, 0, 1, 0})});
  ASSERT_TRUE(ref.ok()) << ref.status();
  const Tensor& r = (*ref)[0];
  K::ConvGeometry g;
  g.spatial = 2;
  g.in[0] = 7;
  g.in[1] = 6;
  g.out[0] = r.dim(2);
  g.out[1] = r.dim(3);
  g.kernel[0] = 3;
  g.kernel[1] = 2;
  g.stride[0] = g.stride[1] = 2;
  g.pad_begin[0] = 1;
  std::vector<float> y(r.size());
  K::Pool(g, 6, true, false, x.data<float>(), y.data());
  ExpectNear(r, y);
  auto avg = RunOp("GlobalAveragePool", 1, {x});
  std::vector<float> ya(6);
  K::GlobalPool(6, 42, false, x.data<float>(), ya.data());
  ExpectNear((*avg)[0], ya);
}

TEST(EmittedKernels, SoftmaxLayerNormReduceMatchHepml) {
  Tensor x = Random({3, 5, 4}, 13);
  auto sm = RunOp("Softmax", 13, {x}, {AttrInt("axis", 1)});
  std::vector<float> y(60);
  K::Softmax(3, 5, 4, x.data<float>(), y.data(), false);
  ExpectNear((*sm)[0], y);
  auto lsm = RunOp("LogSoftmax", 13, {x}, {AttrInt("axis", -1)});
  K::Softmax(15, 4, 1, x.data<float>(), y.data(), true);
  ExpectNear((*lsm)[0], y);
  Tensor scale = Random({4}, 14), bias = Random({4}, 15);
  auto ln = RunOp("LayerNormalization", 17, {x, scale, bias}, {AttrFloat("epsilon", 1e-5f)});
  ASSERT_TRUE(ln.ok()) << ln.status();
  K::LayerNorm(15, 4, x.data<float>(), scale.data<float>(), bias.data<float>(), 1e-5f, y.data());
  ExpectNear((*ln)[0], y);
  auto mean = RunOp("ReduceMean", 13, {x}, {AttrInts("axes", {1}), AttrInt("keepdims", 0)});
  std::vector<float> ym(12);
  K::Reduce(3, 5, 4, 1, x.data<float>(), ym.data());
  ExpectNear((*mean)[0], ym);
  auto mx = RunOp("ReduceMax", 13, {x}, {AttrInts("axes", {1, 2}), AttrInt("keepdims", 1)});
  std::vector<float> yx(3);
  K::Reduce(3, 20, 1, 2, x.data<float>(), yx.data());
  ExpectNear((*mx)[0], yx);
}

TEST(EmittedKernels, ShortSoftmaxRowsInBlocksAreTheBitsOfOneRowAtATime) {
  // A classifier's few classes (n < 8) go 16 rows at a time; 37 rows: two
  // blocks and a tail. The same bits as each row alone, and hepml's values.
  for (int64_t n : {1, 2, 5, 7}) {
    Tensor x = Random({37, n}, 40 + n);
    float* px = x.mutable_data<float>();
    px[3] = -std::numeric_limits<float>::infinity();
    px[n * 20] = 60.f;
    for (bool log : {false, true}) {
      std::vector<float> y(37 * n), one(37 * n);
      K::Softmax(37, n, 1, x.data<float>(), y.data(), log);
      for (int64_t r = 0; r < 37; ++r) K::Softmax(1, n, 1, x.data<float>() + r * n, one.data() + r * n, log);
      auto ref = RunOp(log ? "LogSoftmax" : "Softmax", 13, {x}, {AttrInt("axis", -1)});
      ASSERT_TRUE(ref.ok()) << ref.status();
      for (int64_t i = 0; i < 37 * n; ++i) {
        ASSERT_EQ(std::memcmp(&y[i], &one[i], sizeof(float)), 0) << "n " << n << (log ? " log " : " ") << i;
        const float want = (*ref)[0].data<float>()[i];
        if (std::isnan(want)) EXPECT_TRUE(std::isnan(y[i])) << i;  // a row of one -inf
        else if (std::isinf(want)) EXPECT_EQ(y[i], want) << i;
        else EXPECT_NEAR(y[i], want, 1e-6f * std::max(1.f, std::fabs(want))) << (log ? "log " : "") << i;
      }
    }
  }
}

TEST(EmittedKernels, VectorisedSoftmaxAndLayerNormMatchHepml) {
  // Rows longer than the 8 accumulator lanes with a tail (37) and exactly
  // lanes (64); softmax rows with masked (-inf) and very negative scores as
  // attention masks make them; layer norm rows whose mean is far above their
  // spread.
  for (int64_t n : {37, 64}) {
    Tensor x = Random({3, n}, 31);
    float* px = x.mutable_data<float>();
    px[2] = -std::numeric_limits<float>::infinity();
    px[n + 5] = -1e9f;
    px[2 * n + n - 1] = 30.f;
    for (bool log : {false, true}) {
      auto ref = RunOp(log ? "LogSoftmax" : "Softmax", 13, {x}, {AttrInt("axis", -1)});
      ASSERT_TRUE(ref.ok()) << ref.status();
      std::vector<float> y(3 * n);
      K::Softmax(3, n, 1, x.data<float>(), y.data(), log);
      for (int64_t i = 0; i < 3 * n; ++i) {
        const float want = (*ref)[0].data<float>()[i];
        if (std::isinf(want)) EXPECT_EQ(y[i], want) << i;
        else EXPECT_NEAR(y[i], want, 1e-6f * std::max(1.f, std::fabs(want))) << (log ? "log " : "") << i;
      }
    }
    Tensor z = Random({4, n}, 32), scale = Random({n}, 33), bias = Random({n}, 34);
    for (int64_t i = 0; i < 4 * n; ++i) z.mutable_data<float>()[i] += 1000.f;
    auto ln = RunOp("LayerNormalization", 17, {z, scale, bias}, {AttrFloat("epsilon", 1e-5f)});
    ASSERT_TRUE(ln.ok()) << ln.status();
    std::vector<float> y(4 * n), mean(4), inv(4);
    K::LayerNorm(4, n, z.data<float>(), scale.data<float>(), bias.data<float>(), 1e-5f, y.data(), mean.data(), inv.data());
    // The inputs carry 1000's rounding (6e-5); the statistics may not add to it.
    ExpectNear((*ln)[0], y, 2e-4f);
    for (int64_t r = 0; r < 4; ++r) {
      double m = 0, v = 0;
      for (int64_t k = 0; k < n; ++k) m += z.data<float>()[r * n + k];
      m /= n;
      for (int64_t k = 0; k < n; ++k) v += (z.data<float>()[r * n + k] - m) * (z.data<float>()[r * n + k] - m);
      v /= n;
      EXPECT_NEAR(mean[r], m, 1e-4);
      EXPECT_NEAR(inv[r], 1 / std::sqrt(v + 1e-5), 1e-3 / std::sqrt(v + 1e-5));
    }
  }
}

TEST(EmittedKernels, BroadcastBinaryMatchesHepml) {
  Tensor a = Random({2, 1, 4}, 16), b = Random({3, 1}, 17);
  auto ref = RunOp("Sub", 14, {a, b});
  ASSERT_TRUE(ref.ok()) << ref.status();
  const int64_t dy[] = {2, 3, 4}, da[] = {2, 1, 4}, db[] = {3, 1};
  std::vector<float> y(24);
  K::Binary(3, dy, a.data<float>(), 3, da, b.data<float>(), 2, db, y.data(), [](float x, float z) { return x - z; });
  ExpectNear((*ref)[0], y);
}

TEST(EmittedKernels, DataMovementMatchesHepml) {
  Tensor x = Random({2, 3, 4}, 18);
  auto tr = RunOp("Transpose", 13, {x}, {AttrInts("perm", {2, 0, 1})});
  const int64_t dx[] = {2, 3, 4}, perm[] = {2, 0, 1};
  std::vector<float> y(24);
  K::Transpose<float>(3, dx, perm, x.data<float>(), y.data());
  ExpectNear((*tr)[0], y);

  Tensor idx = Tensor::FromVector<int64_t>({2, 2}, {2, -1, 0, 1});
  auto g = RunOp("Gather", 13, {x, idx}, {AttrInt("axis", 1)});
  std::vector<float> yg(2 * 4 * 4);
  ASSERT_TRUE(K::Gather(2, 3, 4, x.data<float>(), 4, idx.data<int64_t>(), yg.data()));
  ExpectNear((*g)[0], yg);
  const int64_t bad[] = {3};
  EXPECT_FALSE(K::Gather(2, 3, 4, x.data<float>(), 1, bad, yg.data()));

  Tensor starts = Tensor::FromVector<int64_t>({2}, {1, -1}), ends = Tensor::FromVector<int64_t>({2}, {3, -5}),
         axes = Tensor::FromVector<int64_t>({2}, {1, 2}), steps = Tensor::FromVector<int64_t>({2}, {1, -2});
  auto sl = RunOp("Slice", 13, {x, starts, ends, axes, steps});
  ASSERT_TRUE(sl.ok()) << sl.status();
  const int64_t st[] = {0, 1, 3}, sp[] = {1, 1, -2}, dy[] = {2, 2, 2};
  std::vector<float> ys(8);
  K::Slice<float>(3, dx, st, sp, dy, x.data<float>(), ys.data());
  ExpectNear((*sl)[0], ys);

  Tensor data = Random({3, 4}, 19), upd = Random({2, 4}, 20);
  Tensor sidx = Tensor::FromVector<int64_t>({2, 4}, {0, 2, 1, 0, 2, 2, 0, 1});
  auto sc = RunOp("ScatterElements", 16, {data, sidx, upd}, {ops::testing::AttrString("reduction", "add")});
  ASSERT_TRUE(sc.ok()) << sc.status();
  std::vector<float> ysc(data.data<float>(), data.data<float>() + 12);
  const int64_t d34[] = {3, 4}, d24[] = {2, 4};
  ASSERT_TRUE(K::ScatterElements(2, d34, d24, 0, sidx.data<int64_t>(), upd.data<float>(), 1, ysc.data()));
  ExpectNear((*sc)[0], ysc);
  auto ge = RunOp("GatherElements", 13, {data, sidx}, {AttrInt("axis", 0)});
  std::vector<float> yge(8);
  ASSERT_TRUE(K::GatherElements(2, d34, d24, 0, data.data<float>(), sidx.data<int64_t>(), yge.data()));
  ExpectNear((*ge)[0], yge);
}

TEST(EmittedKernels, GatherElementsRowsAlongEveryAxis) {
  // Rank 4 as EdgeConv gathers neighbours ([batch, channels, points, k]
  // indices into [batch, channels, points, points]), along each axis, with
  // negative indices; an index out of range is reported, not read.
  const int64_t xd[] = {2, 3, 5, 4}, id[] = {2, 3, 5, 3};
  Tensor data = Random({2, 3, 5, 4}, 42);
  for (int axis = 0; axis < 4; ++axis) {
    std::vector<int64_t> iv(2 * 3 * 5 * 3);
    for (size_t i = 0; i < iv.size(); ++i)
      iv[i] = static_cast<int64_t>((i * 7 + 3) % xd[axis]) - (i % 5 == 0 ? xd[axis] : 0);
    Tensor idx = Tensor::FromVector<int64_t>({2, 3, 5, 3}, iv);
    auto ref = RunOp("GatherElements", 13, {data, idx}, {AttrInt("axis", axis)});
    ASSERT_TRUE(ref.ok()) << ref.status();
    std::vector<float> y(iv.size());
    ASSERT_TRUE(K::GatherElements(4, xd, id, axis, data.data<float>(), idx.data<int64_t>(), y.data()));
    ExpectNear((*ref)[0], y, 0.f);
    iv[17] = xd[axis];
    Tensor bad = Tensor::FromVector<int64_t>({2, 3, 5, 3}, iv);
    EXPECT_FALSE(K::GatherElements(4, xd, id, axis, data.data<float>(), bad.data<int64_t>(), y.data()));
  }
}

TEST(EmittedKernels, EdgeConvKernelsMatchHepml) {
  // ai.hepml EdgeFeatures and EdgeGatherAdd (what fuse-edge-features and
  // factor-edge-conv write for an EdgeConv block) against the runtime's
  // kernels, with negative indices, a point among its own neighbours, and an
  // index out of range reported rather than read.
  const int64_t N = 2, C = 3, P = 7, K = 4;
  Tensor x = Random({N, C, P}, 61), h = Random({N, 2 * C, P}, 62);
  std::vector<int64_t> iv(N * P * K);
  for (size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<int64_t>((i * 5 + 2) % P) - (i % 3 == 0 ? P : 0);
  Tensor idx = Tensor::FromVector<int64_t>({N, P, K}, iv);
  auto features = ops::testing::RunOpValues({"EdgeFeatures", 1, "ai.hepml", {}, 1},
                                            {Value::FromTensor(x), Value::FromTensor(idx)});
  ASSERT_TRUE(features.ok()) << features.status();
  std::vector<float> y(N * 2 * C * P * K);
  ASSERT_TRUE(K::EdgeFeatures(N, C, P, K, x.data<float>(), idx.data<int64_t>(), y.data()));
  ExpectNear((*features)[0].tensor, y, 0.f);
  for (const char* act : {"", "Relu", "LeakyRelu"}) {
    SCOPED_TRACE(act);
    std::vector<Attribute> attrs;
    if (*act) attrs.push_back(ops::testing::AttrString("activation", act));
    if (std::string(act) == "LeakyRelu") attrs.push_back(ops::testing::AttrFloat("activation_alpha", 0.1f));
    auto summed = ops::testing::RunOpValues({"EdgeGatherAdd", 1, "ai.hepml", attrs, 1},
                                            {Value::FromTensor(h), Value::FromTensor(idx)});
    ASSERT_TRUE(summed.ok()) << summed.status();
    std::vector<float> z(N * C * P * K);
    const K::Act a = !*act ? K::Act::kNone : std::string(act) == "Relu" ? K::Act::kRelu : K::Act::kLeakyRelu;
    ASSERT_TRUE(K::EdgeGatherAdd(N, C, P, K, h.data<float>(), idx.data<int64_t>(), z.data(), a, 0.1f, 0.f));
    ExpectNear((*summed)[0].tensor, z, 0.f);
  }
  iv[9] = P;
  Tensor bad = Tensor::FromVector<int64_t>({N, P, K}, iv);
  EXPECT_FALSE(K::EdgeFeatures(N, C, P, K, x.data<float>(), bad.data<int64_t>(), y.data()));
  EXPECT_FALSE(K::EdgeGatherAdd(N, C, P, K, h.data<float>(), bad.data<int64_t>(), y.data(), K::Act::kNone, 0.f, 0.f));
}

TEST(EmittedKernels, LstmMatchesHepml) {
  // Bidirectional with bias, initial state and peepholes, then without
  // peepholes (the vectorised gate pass) at a hidden size with a vector tail;
  // W and R transposed as the compiler stores them.
  for (bool peepholes : {true, false}) {
  SCOPED_TRACE(peepholes ? "peepholes" : "no peepholes");
  const int64_t T = 4, B = 3, I = 5, H = peepholes ? 6 : 19, G = 4 * H;
  Tensor x = Random({T, B, I}, 21), w = Random({2, G, I}, 22), r = Random({2, G, H}, 23), bias = Random({2, 2 * G}, 24);
  Tensor h0 = Random({2, B, H}, 25), c0 = Random({2, B, H}, 26), p = Random({2, 3 * H}, 27);
  auto ref = ops::testing::RunOpValues(
      {"LSTM", 14, "", {ops::testing::AttrString("direction", "bidirectional"), AttrInt("hidden_size", H)}, 3},
      {Value::FromTensor(x), Value::FromTensor(w), Value::FromTensor(r), Value::FromTensor(bias), Value{},
       Value::FromTensor(h0), Value::FromTensor(c0), peepholes ? Value::FromTensor(p) : Value{}});
  ASSERT_TRUE(ref.ok()) << ref.status();
  std::vector<float> y(T * 2 * B * H), yh(2 * B * H), yc(2 * B * H), gates(B * G), hs(B * H), cs(B * H);
  for (int64_t d = 0; d < 2; ++d) {
    std::vector<float> wt(I * G), rt(H * G), bs(G);
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t i = 0; i < I; ++i) wt[i * G + g] = w.data<float>()[(d * G + g) * I + i];
      for (int64_t i = 0; i < H; ++i) rt[i * G + g] = r.data<float>()[(d * G + g) * H + i];
      bs[g] = bias.data<float>()[d * 2 * G + g] + bias.data<float>()[d * 2 * G + G + g];
    }
    K::Lstm(T, B, I, H, x.data<float>(), wt.data(), rt.data(), bs.data(), h0.data<float>() + d * B * H,
            c0.data<float>() + d * B * H, peepholes ? p.data<float>() + d * 3 * H : nullptr, d == 1, y.data() + d * B * H, 2 * B * H,
            yh.data() + d * B * H, yc.data() + d * B * H, gates.data(), hs.data(), cs.data());
  }
  ExpectNear((*ref)[0].tensor, y);
  ExpectNear((*ref)[1].tensor, yh);
  ExpectNear((*ref)[2].tensor, yc);
  }
}

Tensor Ints(Shape shape, std::vector<int64_t> v) {
  Tensor t = Tensor::Empty(DType::kInt64, shape);
  std::copy(v.begin(), v.end(), t.mutable_data<int64_t>());
  return t;
}

TEST(EmittedKernels, ReduceOverNonContiguousAxesMatchesHepml) {
  Tensor x = Random({3, 4, 5}, 21);
  // Axes {0, 2} kept out: output [4], strides {0, 1, 0}.
  const int64_t dims[] = {3, 4, 5}, so[] = {0, 1, 0};
  std::vector<double> acc(4), mx(4);
  for (auto [op, kind] : {std::pair<const char*, int>{"ReduceL1", K::kReduceL1}, {"ReduceLogSumExp", K::kReduceLogSumExp},
                          {"ReduceMax", K::kReduceMax}, {"ReduceMean", K::kReduceMean}, {"ReduceProd", K::kReduceProd}}) {
    auto ref = RunOp(op, 13, {x}, {AttrInts("axes", {0, 2}), AttrInt("keepdims", 0)});
    ASSERT_TRUE(ref.ok()) << ref.status();
    std::vector<float> y(4);
    K::ReduceAxes<float>(3, dims, so, 4, kind, x.data<float>(), y.data(), acc.data(), mx.data());
    ExpectNear((*ref)[0], y, 1e-4f);
  }
}

TEST(EmittedKernels, ArgReduceAndCumSumMatchHepml) {
  Tensor x = Random({2, 6, 3}, 22);
  x.mutable_data<float>()[3] = x.mutable_data<float>()[0] = 5.f;  // a tie along axis 1
  for (int last = 0; last < 2; ++last) {
    auto ref = RunOp("ArgMax", 13, {x}, {AttrInt("axis", 1), AttrInt("keepdims", 0), AttrInt("select_last_index", last)});
    ASSERT_TRUE(ref.ok()) << ref.status();
    std::vector<int64_t> y(6);
    K::ArgReduce<float>(2, 6, 3, true, last != 0, x.data<float>(), y.data());
    for (int i = 0; i < 6; ++i) EXPECT_EQ((*ref)[0].data<int64_t>()[i], y[i]) << "element " << i;
  }
  auto cs = RunOp("CumSum", 14, {x, Ints({}, {1})}, {AttrInt("exclusive", 1), AttrInt("reverse", 1)});
  ASSERT_TRUE(cs.ok()) << cs.status();
  std::vector<float> y(36);
  K::CumSum<float>(2, 6, 3, true, true, x.data<float>(), y.data());
  ExpectNear((*cs)[0], y);
}

TEST(EmittedKernels, TriluPadAndLossMatchHepml) {
  Tensor x = Random({2, 4, 5}, 23);
  for (int64_t k : {-1, 0, 2}) {
    auto ref = RunOp("Trilu", 14, {x, Ints({}, {k})}, {AttrInt("upper", 0)});
    ASSERT_TRUE(ref.ok()) << ref.status();
    std::vector<float> y(40);
    K::Trilu<float>(2, 4, 5, k, false, x.data<float>(), y.data());
    ExpectNear((*ref)[0], y);
  }
  for (const char* mode : {"reflect", "edge", "wrap"}) {
    auto ref = RunOp("Pad", mode == std::string("wrap") ? 19 : 13, {x, Ints({6}, {0, 2, 1, 0, 1, 3})},
                     {AttrString("mode", mode)});
    ASSERT_TRUE(ref.ok()) << ref.status();
    const int64_t dx[] = {2, 4, 5}, dy[] = {2, 7, 9}, pb[] = {0, 2, 1};
    std::vector<float> y(2 * 7 * 9);
    K::Pad<float>(3, dx, dy, pb, mode == std::string("reflect") ? 1 : mode == std::string("edge") ? 2 : 3, 0.f,
                  x.data<float>(), y.data());
    ExpectNear((*ref)[0], y);
  }
  // NLL over [N=2, C=4, D=5] log-probabilities with a weight and an ignored class.
  Tensor t = Ints({2, 5}, {0, 1, 2, 3, 1, 3, 3, 0, 2, 1});
  Tensor w = Random({4}, 24);
  for (int64_t c = 0; c < 4; ++c) w.mutable_data<float>()[c] = std::fabs(w.data<float>()[c]) + 0.1f;
  auto ref = RunOp("NegativeLogLikelihoodLoss", 13, {x, t, w},
                   {AttrString("reduction", "mean"), AttrInt("ignore_index", 3)});
  ASSERT_TRUE(ref.ok()) << ref.status();
  std::vector<float> y(1);
  ASSERT_TRUE((K::NllLoss<float, int64_t>(2, 4, 5, x.data<float>(), t.data<int64_t>(), w.data<float>(), true, 3, 2,
                                          y.data())));
  ExpectNear((*ref)[0], y);
  Tensor bad = Ints({2, 5}, {0, 1, 2, 3, 1, 3, 3, 0, 2, 9});
  EXPECT_FALSE((K::NllLoss<float, int64_t>(2, 4, 5, x.data<float>(), bad.data<int64_t>(), nullptr, false, 0, 1,
                                           y.data())));
}

TEST(EmittedKernels, ConvTransposeMatchesHepml) {
  Tensor x = Random({1, 4, 3, 5}, 25), w = Random({4, 3, 3, 2}, 26), b = Random({6}, 27);
  auto ref = RunOp("ConvTranspose", 11, {x, w, b},
                   {AttrInt("group", 2), AttrInts("strides", {2, 1}), AttrInts("pads", {1, 0, 0, 1})});
  ASSERT_TRUE(ref.ok()) << ref.status();
  const Tensor& r = (*ref)[0];
  K::ConvGeometry g;
  g.spatial = 2;
  g.in[0] = 3;
  g.in[1] = 5;
  g.out[0] = r.dim(2);
  g.out[1] = r.dim(3);
  g.kernel[0] = 3;
  g.kernel[1] = 2;
  g.stride[0] = 2;
  g.pad_begin[0] = 1;
  std::vector<float> y(r.size());
  K::ConvTranspose(g, 1, 4, 6, 2, x.data<float>(), w.data<float>(), b.data<float>(), y.data());
  ExpectNear(r, y);
}

}  // namespace
}  // namespace hepml
