#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

using ::testing::ElementsAre;

Tensor Strings(Shape shape, std::vector<std::string> v) { return T_<std::string>(std::move(shape), std::move(v)); }

// Expected strings as Python's str.upper()/lower() give them (simple mappings).
TEST(StringOpsTest, NormalizerChangesUtf8Case) {
  auto up = RunOp("StringNormalizer", 10, {Strings({3}, {"Σίσυφος", "été", "Привет"})},
                  {AttrString("case_change_action", "UPPER")});
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_THAT(Values<std::string>(up->at(0)), ElementsAre("ΣΊΣΥΦΟΣ", "ÉTÉ", "ПРИВЕТ"));
  auto low = RunOp("StringNormalizer", 10, {Strings({2}, {"ÀÉÎ Ÿ", "ABC\xff"})},
                   {AttrString("case_change_action", "LOWER"), AttrString("locale", "fr_FR")});
  ASSERT_TRUE(low.ok()) << low.status();
  EXPECT_THAT(Values<std::string>(low->at(0)), ElementsAre("àéî ÿ", "abc\xff"));  // invalid byte kept
}

TEST(StringOpsTest, NormalizerStopwordsCaseInsensitive) {
  auto out = RunOp("StringNormalizer", 10, {Strings({1, 4}, {"Été", "hiver", "ÉTÉ", "x"})},
                   {AttrStrings("stopwords", {"été", "X"})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1}));
  EXPECT_THAT(Values<std::string>(out->at(0)), ElementsAre("hiver"));
  auto none_left = RunOp("StringNormalizer", 10, {Strings({1, 2}, {"a", "A"})},
                         {AttrStrings("stopwords", {"a"})});
  ASSERT_TRUE(none_left.ok()) << none_left.status();
  EXPECT_EQ(none_left->at(0).shape(), Shape({1, 1}));
  EXPECT_THAT(Values<std::string>(none_left->at(0)), ElementsAre(""));
  auto empty = RunOp("StringNormalizer", 10, {Strings({0}, {})});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({1}));
}

TEST(StringOpsTest, NormalizerBadInput) {
  EXPECT_FALSE(RunOp("StringNormalizer", 10, {Strings({2, 2}, {"a", "b", "c", "d"})}).ok());
  EXPECT_FALSE(RunOp("StringNormalizer", 10, {Strings({}, {"a"})}).ok());
  EXPECT_FALSE(RunOp("StringNormalizer", 10, {Strings({1}, {"a"})}, {AttrString("case_change_action", "TITLE")}).ok());
  EXPECT_FALSE(RunOp("StringNormalizer", 10, {T_<int64_t>({1}, {1})}).ok());
}

std::vector<Attribute> StringPoolAttrs(const std::string& mode) {
  return {AttrString("mode", mode),
          AttrInt("min_gram_length", 1),
          AttrInt("max_gram_length", 2),
          AttrInt("max_skip_count", 0),
          AttrStrings("pool_strings", {"a", "b", "c", "a", "b", "b", "c"}),
          AttrInts("ngram_counts", {0, 3}),
          AttrInts("ngram_indexes", {0, 1, 2, 3, 4}),
          AttrFloats("weights", {1, 2, 3, 4, 5})};
}

// Tokens a b c a b: unigrams a:2 b:2 c:1, bigrams ab:2 bc:1.
TEST(StringOpsTest, TfIdfModesWithStringPool) {
  const Tensor x = Strings({5}, {"a", "b", "c", "a", "b"});
  auto tf = RunOp("TfIdfVectorizer", 9, {x}, StringPoolAttrs("TF"));
  ASSERT_TRUE(tf.ok()) << tf.status();
  EXPECT_EQ(Values<float>(tf->at(0)), std::vector<float>({2, 2, 1, 2, 1}));
  auto idf = RunOp("TfIdfVectorizer", 9, {x}, StringPoolAttrs("IDF"));
  ASSERT_TRUE(idf.ok()) << idf.status();
  EXPECT_EQ(Values<float>(idf->at(0)), std::vector<float>({1, 2, 3, 4, 5}));
  auto tfidf = RunOp("TfIdfVectorizer", 21, {x}, StringPoolAttrs("TFIDF"));
  ASSERT_TRUE(tfidf.ok()) << tfidf.status();
  EXPECT_EQ(Values<float>(tfidf->at(0)), std::vector<float>({2, 4, 3, 8, 5}));
}

// Bigram (1, 2) with up to 2 skipped tokens, per row.
TEST(StringOpsTest, TfIdfSkipGramsPerRow) {
  auto out = RunOp("TfIdfVectorizer", 9, {T_<int64_t>({2, 4}, {1, 3, 2, 2, 2, 1, 9, 9})},
                   {AttrString("mode", "TF"), AttrInt("min_gram_length", 2), AttrInt("max_gram_length", 2),
                    AttrInt("max_skip_count", 2), AttrInts("pool_int64s", {1, 2}), AttrInts("ngram_counts", {0, 0}),
                    AttrInts("ngram_indexes", {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 1}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({2, 0}));
}

// Unigrams count once whatever the skip; bigram (5, 5) at distances 1 and 2.
TEST(StringOpsTest, TfIdfUnigramsCountOnce) {
  auto out = RunOp("TfIdfVectorizer", 9, {T_<int32_t>({3}, {5, 5, 5})},
                   {AttrString("mode", "TF"), AttrInt("min_gram_length", 1), AttrInt("max_gram_length", 2),
                    AttrInt("max_skip_count", 1), AttrInts("pool_int64s", {5, 5, 5}), AttrInts("ngram_counts", {0, 1}),
                    AttrInts("ngram_indexes", {0, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({3, 3}));
  auto empty = RunOp("TfIdfVectorizer", 9, {T_<int32_t>({0}, {})},
                     {AttrString("mode", "TF"), AttrInt("min_gram_length", 1), AttrInt("max_gram_length", 1),
                      AttrInt("max_skip_count", 0), AttrInts("pool_int64s", {5}), AttrInts("ngram_counts", {0}),
                      AttrInts("ngram_indexes", {0})});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(Values<float>(empty->at(0)), std::vector<float>({0}));
}

TEST(StringOpsTest, TfIdfBadAttributesAndInputs) {
  std::vector<Attribute> attrs = StringPoolAttrs("TF");
  attrs[6] = AttrInts("ngram_indexes", {0, 1});  // 5 n-grams in the pool
  EXPECT_FALSE(RunOp("TfIdfVectorizer", 9, {Strings({1}, {"a"})}, attrs).ok());
  attrs = StringPoolAttrs("TF");
  attrs[5] = AttrInts("ngram_counts", {0, 9});
  EXPECT_FALSE(RunOp("TfIdfVectorizer", 9, {Strings({1}, {"a"})}, attrs).ok());
  EXPECT_FALSE(RunOp("TfIdfVectorizer", 9, {Strings({1}, {"a"})}, StringPoolAttrs("BM25")).ok());
  EXPECT_FALSE(RunOp("TfIdfVectorizer", 9, {T_<int64_t>({1}, {1})}, StringPoolAttrs("TF")).ok());
  EXPECT_FALSE(RunOp("TfIdfVectorizer", 9, {Strings({1, 1, 1}, {"a"})}, StringPoolAttrs("TF")).ok());
}

TEST(StringOpsTest, RegexFullMatch) {
  auto out = RunOp("RegexFullMatch", 20, {Strings({2, 2}, {"ab@cd.com", "x@y.org", "ab@cd.com.au", ""})},
                   {AttrString("pattern", "[a-z]+@[a-z]+\\.com")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_THAT(Values<bool>(out->at(0)), ElementsAre(true, false, false, false));
  auto icase = RunOp("RegexFullMatch", 20, {Strings({}, {"ABC"})}, {AttrString("pattern", "(?i)abc")});
  ASSERT_TRUE(icase.ok()) << icase.status();
  EXPECT_THAT(Values<bool>(icase->at(0)), ElementsAre(true));
  EXPECT_FALSE(RunOp("RegexFullMatch", 20, {Strings({1}, {"a"})}, {AttrString("pattern", "(")}).ok());
  // RE2 has no backreferences.
  EXPECT_FALSE(RunOp("RegexFullMatch", 20, {Strings({1}, {"aa"})}, {AttrString("pattern", "(a)\\1")}).ok());
  EXPECT_FALSE(RunOp("RegexFullMatch", 20, {Strings({1}, {"a"})}).ok());
  EXPECT_FALSE(RunOp("RegexFullMatch", 19, {Strings({1}, {"a"})}, {AttrString("pattern", "a")}).ok());
}

// RE2 semantics in UTF-8: \d is ASCII [0-9] only (Arabic-Indic "١٢٣" is not
// matched), \pL is any Unicode letter ("ü"), "." is one code point ("é" is two
// bytes, "ab" two code points).
TEST(StringOpsTest, RegexFullMatchUsesRe2Utf8Semantics) {
  auto out = RunOp("RegexFullMatch", 20, {Strings({4}, {"12345", "12a45", "١٢٣", "Zürich-42"})},
                   {AttrString("pattern", "\\d+|\\pL+-\\d+")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<bool>(out->at(0)), ElementsAre(true, false, false, true));
  auto dot = RunOp("RegexFullMatch", 20, {Strings({3}, {"é", "ab", "€"})}, {AttrString("pattern", ".")});
  ASSERT_TRUE(dot.ok()) << dot.status();
  EXPECT_THAT(Values<bool>(dot->at(0)), ElementsAre(true, false, true));
  auto greek = RunOp("RegexFullMatch", 20, {Strings({2}, {"αβγ", "abc"})}, {AttrString("pattern", "\\p{Greek}+")});
  ASSERT_TRUE(greek.ok()) << greek.status();
  EXPECT_THAT(Values<bool>(greek->at(0)), ElementsAre(true, false));
}

TEST(StringOpsTest, StringConcatBroadcasts) {
  auto out = RunOp("StringConcat", 20, {Strings({2}, {"a", "b"}), Strings({2, 1}, {"x", "yz"})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2}));
  EXPECT_THAT(Values<std::string>(out->at(0)), ElementsAre("ax", "bx", "ayz", "byz"));
  EXPECT_FALSE(RunOp("StringConcat", 20, {Strings({2}, {"a", "b"}), Strings({3}, {"x", "y", "z"})}).ok());
  EXPECT_FALSE(RunOp("StringConcat", 20, {Strings({1}, {"a"}), T_<int64_t>({1}, {1})}).ok());
}

// An empty string has no substrings: count 0 (ONNX Runtime), padded with "".
TEST(StringOpsTest, StringSplitWithDelimiter) {
  auto out = RunOp("StringSplit", 20, {Strings({3}, {"a-b-c", "d", ""})}, {AttrString("delimiter", "-")}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({3, 3}));
  EXPECT_THAT(Values<std::string>(out->at(0)), ElementsAre("a", "b", "c", "d", "", "", "", "", ""));
  EXPECT_EQ(Values<int64_t>(out->at(1)), std::vector<int64_t>({3, 1, 0}));
  // The differential case: ["a-b-c", "d", "e-f", ""], maxsplit 1 -> counts 2, 1, 2, 0.
  auto once = RunOp("StringSplit", 20, {Strings({4}, {"a-b-c", "d", "e-f", ""})},
                    {AttrString("delimiter", "-"), AttrInt("maxsplit", 1)}, 2);
  ASSERT_TRUE(once.ok()) << once.status();
  EXPECT_EQ(once->at(0).shape(), Shape({4, 2}));
  EXPECT_THAT(Values<std::string>(once->at(0)), ElementsAre("a", "b-c", "d", "", "e", "f", "", ""));
  EXPECT_EQ(Values<int64_t>(once->at(1)), std::vector<int64_t>({2, 1, 2, 0}));
  // Only empty strings: the substring axis has length 0.
  auto none = RunOp("StringSplit", 20, {Strings({2}, {"", ""})}, {AttrString("delimiter", ",")}, 2);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->at(0).shape(), Shape({2, 0}));
  EXPECT_EQ(Values<int64_t>(none->at(1)), std::vector<int64_t>({0, 0}));
  auto limited = RunOp("StringSplit", 20, {Strings({}, {"a--b--c"})},
                       {AttrString("delimiter", "--"), AttrInt("maxsplit", 1)}, 2);
  ASSERT_TRUE(limited.ok()) << limited.status();
  EXPECT_EQ(limited->at(0).shape(), Shape({2}));
  EXPECT_THAT(Values<std::string>(limited->at(0)), ElementsAre("a", "b--c"));
  EXPECT_EQ(Values<int64_t>(limited->at(1)), std::vector<int64_t>({2}));
}

// Python: " a b  c ".split(None, 1) -> ['a', 'b  c ']; "".split() -> [].
TEST(StringOpsTest, StringSplitOnWhitespace) {
  auto out = RunOp("StringSplit", 20, {Strings({3}, {"  hello \t world\n", "", "x\xc2\xa0y"})}, {}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({3, 2}));
  EXPECT_THAT(Values<std::string>(out->at(0)), ElementsAre("hello", "world", "", "", "x", "y"));
  EXPECT_EQ(Values<int64_t>(out->at(1)), std::vector<int64_t>({2, 0, 2}));
  auto limited = RunOp("StringSplit", 20, {Strings({1}, {" a b  c "})}, {AttrInt("maxsplit", 1)}, 2);
  ASSERT_TRUE(limited.ok()) << limited.status();
  EXPECT_THAT(Values<std::string>(limited->at(0)), ElementsAre("a", "b  c "));
  auto empty = RunOp("StringSplit", 20, {Strings({0}, {})}, {}, 2);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({0, 0}));
}

TEST(StringOpsTest, MissingRequiredInputsAreErrors) {
  EXPECT_FALSE(RunOp("StringConcat", 20, {Strings({1}, {"a"})}).ok());
  EXPECT_FALSE(RunOp("StringSplit", 20, {}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing
