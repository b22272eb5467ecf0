// Unit tests of the sequence and optional operators. Expected values are
// worked out by hand from the inputs (the operators only move data).
#include <gtest/gtest.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

// Asserts that `result` failed with a message containing `fragment`.
template <typename R>
void ExpectError(const R& result, const std::string& fragment) {
  ASSERT_FALSE(result.ok()) << "expected an error mentioning: " << fragment;
  EXPECT_NE(result.status().message().find(fragment), std::string::npos) << result.status();
}

Value Seq(std::vector<Tensor> items, DType elem) { return Value::FromSequence(std::move(items), elem); }
Value Ten(Tensor t) { return Value::FromTensor(std::move(t)); }
Value Absent() { return Value(); }  // kTensor with no tensor: an omitted input

absl::StatusOr<std::vector<Value>> Exec(const std::string& op, int opset, std::vector<Value> inputs,
                                        std::vector<Attribute> attrs = {}, int num_outputs = 1) {
  OpSpec spec;
  spec.op_type = op;
  spec.opset = opset;
  spec.attributes = std::move(attrs);
  spec.num_outputs = num_outputs;
  return RunOpValues(spec, std::move(inputs));
}

Attribute AttrType(const std::string& name, TypeInfo type) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kTypeProto;
  a.type_proto = std::move(type);
  return a;
}

TEST(SequenceTest, EmptyHasTheRequestedElementType) {
  auto out = Exec("SequenceEmpty", 11, {});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).kind, Value::Kind::kSequence);
  EXPECT_TRUE(out->at(0).sequence.empty());
  EXPECT_EQ(out->at(0).element_dtype, DType::kFloat32);  // the default

  out = Exec("SequenceEmpty", 21, {}, {AttrInt("dtype", static_cast<int>(DType::kInt64))});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).element_dtype, DType::kInt64);

  ExpectError(Exec("SequenceEmpty", 11, {}, {AttrInt("dtype", 99)}), "attribute 'dtype' = 99 is not a known tensor");
}

TEST(SequenceTest, ConstructKeepsOrderAndRejectsMixedTypes) {
  auto out = Exec("SequenceConstruct", 11, {Ten(T_<int32_t>({2}, {1, 2})), Ten(T_<int32_t>({}, {7}))});
  ASSERT_TRUE(out.ok()) << out.status();
  const Value& s = out->at(0);
  ASSERT_EQ(s.sequence.size(), 2u);
  EXPECT_EQ(s.element_dtype, DType::kInt32);
  EXPECT_EQ(Values<int32_t>(s.sequence[0]), std::vector<int32_t>({1, 2}));
  EXPECT_EQ(s.sequence[1].shape(), Shape({}));
  EXPECT_EQ(Values<int32_t>(s.sequence[1]), std::vector<int32_t>({7}));

  ExpectError(Exec("SequenceConstruct", 11, {Ten(T_<int32_t>({1}, {1})), Ten(T_<float>({1}, {1}))}),
              "all inputs must have one type: input 0 is");
}

TEST(SequenceTest, InsertAtBackFrontAndNegativePositions) {
  Value seq = Seq({T_<int64_t>({1}, {1}), T_<int64_t>({1}, {2})}, DType::kInt64);
  auto back = Exec("SequenceInsert", 11, {seq, Ten(T_<int64_t>({1}, {9}))});
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->at(0).sequence.size(), 3u);
  EXPECT_EQ(Values<int64_t>(back->at(0).sequence[2]), std::vector<int64_t>({9}));

  auto front = Exec("SequenceInsert", 11, {seq, Ten(T_<int64_t>({1}, {9})), Ten(T_<int32_t>({}, {0}))});
  ASSERT_TRUE(front.ok()) << front.status();
  EXPECT_EQ(Values<int64_t>(front->at(0).sequence[0]), std::vector<int64_t>({9}));

  // -1 inserts before the last element: [1, 9, 2].
  auto neg = Exec("SequenceInsert", 11, {seq, Ten(T_<int64_t>({1}, {9})), Ten(T_<int64_t>({}, {-1}))});
  ASSERT_TRUE(neg.ok()) << neg.status();
  EXPECT_EQ(Values<int64_t>(neg->at(0).sequence[1]), std::vector<int64_t>({9}));
  EXPECT_EQ(Values<int64_t>(neg->at(0).sequence[2]), std::vector<int64_t>({2}));
}

TEST(SequenceTest, InsertRejectsBadPositionAndType) {
  Value seq = Seq({T_<int64_t>({1}, {1})}, DType::kInt64);
  ExpectError(Exec("SequenceInsert", 11, {seq, Ten(T_<int64_t>({1}, {9})), Ten(T_<int64_t>({}, {2}))}),
              "position 2 is out of range [-1, 1]");
  ExpectError(Exec("SequenceInsert", 11, {seq, Ten(T_<int64_t>({1}, {9})), Ten(T_<int64_t>({}, {-2}))}),
              "position -2 is out of range [-1, 1]");
  ExpectError(Exec("SequenceInsert", 11, {seq, Ten(T_<int64_t>({1}, {9})), Ten(T_<float>({}, {0}))}),
              "position must be int32 or int64, got float32");
  ExpectError(Exec("SequenceInsert", 11, {seq, Ten(T_<float>({1}, {9}))}),
              "cannot insert a float32 tensor into a sequence");
  // A tensor where the sequence belongs.
  ExpectError(Exec("SequenceInsert", 11, {Ten(T_<int64_t>({1}, {1})), Ten(T_<int64_t>({1}, {9}))}),
              "input 0 must be a sequence of tensors, got a");
  // An empty sequence of a declared type takes only that type.
  Value empty = Seq({}, DType::kFloat64);
  ExpectError(Exec("SequenceInsert", 11, {empty, Ten(T_<float>({1}, {1}))}),
              "cannot insert a float32 tensor into a sequence");
  auto ok = Exec("SequenceInsert", 11, {empty, Ten(T_<double>({1}, {1}))});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->at(0).sequence.size(), 1u);
}

TEST(SequenceTest, AtHandlesNegativePositionsAndStrings) {
  Value seq = Seq({T_<std::string>({1}, {"a"}), T_<std::string>({2}, {"b", "c"})}, DType::kString);
  auto out = Exec("SequenceAt", 11, {seq, Ten(T_<int32_t>({}, {-1}))});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0).tensor), std::vector<std::string>({"b", "c"}));
  ExpectError(Exec("SequenceAt", 11, {seq, Ten(T_<int32_t>({}, {2}))}),
              "position 2 is out of range for a sequence of 2");
  ExpectError(Exec("SequenceAt", 11, {seq, Ten(T_<int32_t>({}, {-3}))}),
              "position -3 is out of range for a sequence of 2");
  ExpectError(Exec("SequenceAt", 11, {seq, Ten(T_<int32_t>({2}, {0, 1}))}),
              "position must be a scalar, got shape [2]");  // not a scalar
  ExpectError(Exec("SequenceAt", 11, {Seq({}, DType::kFloat32), Ten(T_<int32_t>({}, {0}))}),
              "position 0 is out of range for a sequence of 0");
}

TEST(SequenceTest, OmittedRequiredInputsAreErrors) {
  Value seq = Seq({T_<float>({1}, {1})}, DType::kFloat32);
  ExpectError(Exec("SequenceAt", 11, {seq, Absent()}), "input 'position' is missing");
  ExpectError(Exec("SequenceInsert", 11, {Absent(), Ten(T_<float>({1}, {1}))}), "input 0 is missing");
  ExpectError(Exec("SequenceInsert", 11, {seq, Absent()}), "input 'tensor' is missing");
  ExpectError(Exec("SplitToSequence", 11, {Absent()}), "input 0 is missing");
  ExpectError(Exec("ConcatFromSequence", 11, {Absent()}, {AttrInt("axis", 0)}), "input 0 is missing");
  ExpectError(Exec("OptionalGetElement", 18, {Absent()}), "input 'input' is missing");
}

TEST(SequenceTest, EraseDefaultsToTheLastElement) {
  Value seq = Seq({T_<float>({1}, {1}), T_<float>({1}, {2}), T_<float>({1}, {3})}, DType::kFloat32);
  auto out = Exec("SequenceErase", 11, {seq});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).sequence.size(), 2u);
  EXPECT_EQ(Values<float>(out->at(0).sequence[1]), std::vector<float>({2}));

  out = Exec("SequenceErase", 11, {seq, Ten(T_<int64_t>({}, {0}))});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0).sequence[0]), std::vector<float>({2}));

  ExpectError(Exec("SequenceErase", 11, {seq, Ten(T_<int64_t>({}, {3}))}),
              "position 3 is out of range for a sequence of 3");
  auto empty = Exec("SequenceErase", 11, {Seq({}, DType::kFloat32)});
  ExpectError(empty, "position -1 is out of range for a sequence of 0");
}

TEST(SequenceTest, LengthIsAnInt64Scalar) {
  auto out = Exec("SequenceLength", 11, {Seq({T_<bool>({1}, {true}), T_<bool>({0}, {})}, DType::kBool)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.shape(), Shape({}));
  EXPECT_EQ(Values<int64_t>(out->at(0).tensor), std::vector<int64_t>({2}));
  out = Exec("SequenceLength", 11, {Seq({}, DType::kFloat32)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0).tensor), std::vector<int64_t>({0}));
  ExpectError(Exec("SequenceLength", 11, {Ten(T_<float>({1}, {1}))}), "input 0 must be a sequence of tensors, got a");
}

TEST(SequenceTest, SplitWithoutSplitMakesUnitChunks) {
  Tensor x = T_<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto keep = Exec("SplitToSequence", 11, {Ten(x)}, {AttrInt("axis", 1)});
  ASSERT_TRUE(keep.ok()) << keep.status();
  ASSERT_EQ(keep->at(0).sequence.size(), 3u);
  EXPECT_EQ(keep->at(0).sequence[1].shape(), Shape({2, 1}));
  EXPECT_EQ(Values<int64_t>(keep->at(0).sequence[1]), std::vector<int64_t>({2, 5}));

  auto drop = Exec("SplitToSequence", 11, {Ten(x)}, {AttrInt("axis", -1), AttrInt("keepdims", 0)});
  ASSERT_TRUE(drop.ok()) << drop.status();
  EXPECT_EQ(drop->at(0).sequence[2].shape(), Shape({2}));
  EXPECT_EQ(Values<int64_t>(drop->at(0).sequence[2]), std::vector<int64_t>({3, 6}));
}

TEST(SequenceTest, SplitByScalarLeavesASmallerLastChunk) {
  Tensor x = T_<float>({5}, {1, 2, 3, 4, 5});
  // keepdims is ignored when split is given.
  auto out = Exec("SplitToSequence", 11, {Ten(x), Ten(T_<int64_t>({}, {2}))}, {AttrInt("keepdims", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  const auto& s = out->at(0).sequence;
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(Values<float>(s[0]), std::vector<float>({1, 2}));
  EXPECT_EQ(Values<float>(s[2]), std::vector<float>({5}));
  EXPECT_EQ(s[2].shape(), Shape({1}));
}

TEST(SequenceTest, SplitByListAllowsZeroLengthParts) {
  Tensor x = T_<std::string>({3, 1}, {"a", "b", "c"});
  auto out = Exec("SplitToSequence", 11, {Ten(x), Ten(T_<int32_t>({3}, {1, 0, 2}))});
  ASSERT_TRUE(out.ok()) << out.status();
  const auto& s = out->at(0).sequence;
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1].shape(), Shape({0, 1}));
  EXPECT_EQ(Values<std::string>(s[2]), std::vector<std::string>({"b", "c"}));
}

TEST(SequenceTest, SplitRejectsBadInput) {
  Tensor x = T_<float>({4}, {1, 2, 3, 4});
  ExpectError(Exec("SplitToSequence", 11, {Ten(x), Ten(T_<int64_t>({2}, {1, 2}))}),
              "'split' values sum to 3 but axis 0 has size 4");  // sums to 3
  ExpectError(Exec("SplitToSequence", 11, {Ten(x), Ten(T_<int64_t>({2}, {5, -1}))}),
              "'split' values must be >= 0, got -1");
  ExpectError(Exec("SplitToSequence", 11, {Ten(x), Ten(T_<int64_t>({}, {0}))}),
              "scalar 'split' must be positive, got 0");
  ExpectError(Exec("SplitToSequence", 11, {Ten(x), Ten(T_<float>({}, {2}))}),
              "'split' must be int32 or int64, got float32");
  ExpectError(Exec("SplitToSequence", 11, {Ten(x)}, {AttrInt("axis", 1)}),
              "attribute 'axis': axis 1 is out of range for");
  ExpectError(Exec("SplitToSequence", 11, {Ten(T_<float>({}, {1}))}), "cannot split a scalar");  // a scalar
}

TEST(SequenceTest, SplitOfAnEmptyAxisIsAnEmptySequence) {
  auto out = Exec("SplitToSequence", 11, {Ten(Tensor::Zeros(DType::kFloat32, {0, 2}))});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->at(0).sequence.empty());
  EXPECT_EQ(out->at(0).element_dtype, DType::kFloat32);
}

TEST(SequenceTest, ConcatAlongAnExistingAxis) {
  Value seq = Seq({T_<int32_t>({2, 1}, {1, 2}), T_<int32_t>({2, 2}, {3, 4, 5, 6})}, DType::kInt32);
  auto out = Exec("ConcatFromSequence", 11, {seq}, {AttrInt("axis", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).tensor.shape(), Shape({2, 3}));
  EXPECT_EQ(Values<int32_t>(out->at(0).tensor), std::vector<int32_t>({1, 3, 4, 2, 5, 6}));
}

TEST(SequenceTest, ConcatWithNewAxisStacks) {
  Value seq = Seq({T_<double>({2}, {1, 2}), T_<double>({2}, {3, 4})}, DType::kFloat64);
  auto last = Exec("ConcatFromSequence", 11, {seq}, {AttrInt("axis", -1), AttrInt("new_axis", 1)});
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->at(0).tensor.shape(), Shape({2, 2}));
  EXPECT_EQ(Values<double>(last->at(0).tensor), std::vector<double>({1, 3, 2, 4}));
  auto first = Exec("ConcatFromSequence", 11, {seq}, {AttrInt("axis", 0), AttrInt("new_axis", 1)});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Values<double>(first->at(0).tensor), std::vector<double>({1, 2, 3, 4}));
  // Scalars stack into a vector.
  Value scalars = Seq({T_<float>({}, {5}), T_<float>({}, {6})}, DType::kFloat32);
  auto vec = Exec("ConcatFromSequence", 11, {scalars}, {AttrInt("axis", 0), AttrInt("new_axis", 1)});
  ASSERT_TRUE(vec.ok()) << vec.status();
  EXPECT_EQ(Values<float>(vec->at(0).tensor), std::vector<float>({5, 6}));
}

TEST(SequenceTest, ConcatRejectsBadInput) {
  Value mismatched = Seq({T_<float>({2, 1}, {1, 2}), T_<float>({3, 1}, {3, 4, 5})}, DType::kFloat32);
  ExpectError(Exec("ConcatFromSequence", 11, {mismatched}, {AttrInt("axis", 1)}),
              "sequence element 1 has shape [3,1], element 0");
  EXPECT_TRUE(Exec("ConcatFromSequence", 11, {mismatched}, {AttrInt("axis", 0)}).ok());
  ExpectError(Exec("ConcatFromSequence", 11, {mismatched}, {AttrInt("axis", 0), AttrInt("new_axis", 1)}),
              "sequence element 1 has shape [3,1], element 0");
  ExpectError(Exec("ConcatFromSequence", 11, {mismatched}, {AttrInt("axis", 2)}),
              "attribute 'axis': axis 2 is out of range for");
  ExpectError(Exec("ConcatFromSequence", 11, {mismatched}), "attribute 'axis' is required");  // axis is required
  ExpectError(Exec("ConcatFromSequence", 11, {Seq({}, DType::kFloat32)}, {AttrInt("axis", 0)}),
              "cannot concatenate an empty sequence");
  Value scalars = Seq({T_<float>({}, {5})}, DType::kFloat32);
  ExpectError(Exec("ConcatFromSequence", 11, {scalars}, {AttrInt("axis", 0)}),
              "cannot concatenate scalars without new_axis");
}

// body(a, b) = a + b
Graph AddBody() {
  Graph g;
  g.name = "add_body";
  g.inputs = {ValueInfo{"a", {}, ""}, ValueInfo{"b", {}, ""}};
  Node n;
  n.op_type = "Add";
  n.opset = 17;
  n.inputs = {"a", "b"};
  n.outputs = {"sum"};
  g.nodes.push_back(n);
  g.outputs = {ValueInfo{"sum", TypeInfo::Tensor(DType::kInt32), ""}};
  return g;
}

TEST(SequenceTest, MapAppliesTheBodyToEachElement) {
  Value seq = Seq({T_<int32_t>({2}, {1, 2}), T_<int32_t>({1}, {3})}, DType::kInt32);
  auto with_tensor = Exec("SequenceMap", 17, {seq, Ten(T_<int32_t>({}, {10}))}, {AttrGraph("body", AddBody())});
  ASSERT_TRUE(with_tensor.ok()) << with_tensor.status();
  const auto& s = with_tensor->at(0).sequence;
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(Values<int32_t>(s[0]), std::vector<int32_t>({11, 12}));
  EXPECT_EQ(Values<int32_t>(s[1]), std::vector<int32_t>({13}));

  Value other = Seq({T_<int32_t>({2}, {5, 5}), T_<int32_t>({1}, {-3})}, DType::kInt32);
  auto two = Exec("SequenceMap", 21, {seq, other}, {AttrGraph("body", AddBody())});
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(Values<int32_t>(two->at(0).sequence[0]), std::vector<int32_t>({6, 7}));
  EXPECT_EQ(Values<int32_t>(two->at(0).sequence[1]), std::vector<int32_t>({0}));
}

TEST(SequenceTest, MapOfAnEmptySequenceUsesTheDeclaredType) {
  auto out =
      Exec("SequenceMap", 17, {Seq({}, DType::kInt32), Ten(T_<int32_t>({}, {1}))}, {AttrGraph("body", AddBody())});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->at(0).sequence.empty());
  EXPECT_EQ(out->at(0).element_dtype, DType::kInt32);
}

TEST(SequenceTest, MapRejectsSequencesOfDifferentLengths) {
  Value a = Seq({T_<int32_t>({1}, {1}), T_<int32_t>({1}, {2})}, DType::kInt32);
  Value b = Seq({T_<int32_t>({1}, {1})}, DType::kInt32);
  ExpectError(Exec("SequenceMap", 17, {a, b}, {AttrGraph("body", AddBody())}),
              "input sequence 1 has 1 elements, input 0 has 2");
  ExpectError(Exec("SequenceMap", 17, {Ten(T_<int32_t>({1}, {1})), b}, {AttrGraph("body", AddBody())}),
              "input 0 must be a sequence of tensors, got a");
  ExpectError(Exec("SequenceMap", 17, {a, b}), "attribute 'body' is required");  // no body
}

TEST(SequenceTest, OptionalWrapsItsInputOrIsEmpty) {
  auto full = Exec("Optional", 15, {Ten(T_<uint8_t>({2}, {1, 2}))});
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_EQ(full->at(0).kind, Value::Kind::kTensor);
  EXPECT_EQ(Values<uint8_t>(full->at(0).tensor), std::vector<uint8_t>({1, 2}));

  auto empty_tensor = Exec("Optional", 21, {}, {AttrType("type", TypeInfo::Tensor(DType::kFloat16))});
  ASSERT_TRUE(empty_tensor.ok()) << empty_tensor.status();
  EXPECT_EQ(empty_tensor->at(0).kind, Value::Kind::kNone);
  EXPECT_EQ(empty_tensor->at(0).element_dtype, DType::kFloat16);
  EXPECT_FALSE(empty_tensor->at(0).none_is_sequence);

  TypeInfo seq_type;
  seq_type.kind = TypeInfo::Kind::kSequence;
  seq_type.element = std::make_shared<TypeInfo>(TypeInfo::Tensor(DType::kInt8));
  auto empty_seq = Exec("Optional", 15, {}, {AttrType("type", seq_type)});
  ASSERT_TRUE(empty_seq.ok()) << empty_seq.status();
  EXPECT_EQ(empty_seq->at(0).kind, Value::Kind::kNone);
  EXPECT_TRUE(empty_seq->at(0).none_is_sequence);
  EXPECT_EQ(empty_seq->at(0).element_dtype, DType::kInt8);

  ExpectError(Exec("Optional", 15, {}), "an Optional without input needs the 'type'");  // neither input nor type
}

TEST(SequenceTest, OptionalHasElementPerVersion) {
  auto has = [](int opset, Value v) -> absl::StatusOr<bool> {
    auto out = Exec("OptionalHasElement", opset, {std::move(v)});
    if (!out.ok()) return out.status();
    return out->at(0).tensor.data<bool>()[0];
  };
  EXPECT_EQ(*has(15, Value::None(DType::kFloat32)), false);
  EXPECT_EQ(*has(15, Ten(T_<float>({1}, {0}))), true);
  EXPECT_EQ(*has(18, Seq({}, DType::kFloat32)), true);  // a plain (empty) sequence
  EXPECT_EQ(*has(21, Value::None(DType::kInt64, true)), false);
  // Opset 18 lets the input be omitted (false); opset 15 requires it.
  EXPECT_EQ(*has(18, Absent()), false);
  ExpectError(has(15, Absent()), "input 'input' is required before opset 18");
}

TEST(SequenceTest, OptionalGetElementUnwrapsOrFails) {
  auto t = Exec("OptionalGetElement", 18, {Ten(T_<int16_t>({2}, {4, 5}))});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(Values<int16_t>(t->at(0).tensor), std::vector<int16_t>({4, 5}));
  auto s = Exec("OptionalGetElement", 15, {Seq({T_<int16_t>({1}, {1})}, DType::kInt16)});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->at(0).kind, Value::Kind::kSequence);
  ExpectError(Exec("OptionalGetElement", 15, {Value::None(DType::kFloat32)}), "the optional input is empty");
  ExpectError(Exec("OptionalGetElement", 21, {Value::None(DType::kFloat32, true)}), "the optional input is empty");
}

}  // namespace
}  // namespace hepml::ops::testing
