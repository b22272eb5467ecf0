#include "ops/evaluate.h"

#include "absl/strings/str_cat.h"
#include "ops/kernel_context.h"
#include "ops/op_registry.h"

namespace hepml::ops {
namespace {

class EvalContext final : public KernelContext {
 public:
  EvalContext(const Node& node, const std::vector<const Value*>& inputs, const KernelState* state)
      : node_(node), inputs_(inputs), state_(state), outputs_(node.outputs.size()) {}

  const Node& node() const override { return node_; }
  int opset() const override { return node_.opset; }
  size_t num_inputs() const override { return inputs_.size(); }
  bool HasInput(size_t i) const override { return i < inputs_.size() && inputs_[i] != nullptr; }
  const Tensor& Input(size_t i) const override { return inputs_[i]->tensor; }
  const Value& InputValue(size_t i) const override { return *inputs_[i]; }
  size_t num_outputs() const override { return outputs_.size(); }
  bool HasOutput(size_t i) const override { return i < outputs_.size() && !node_.outputs[i].empty(); }
  Tensor* Output(size_t i, DType dtype, Shape shape) override {
    outputs_[i] = Value::FromTensor(Tensor::Empty(dtype, std::move(shape)));
    return &outputs_[i].tensor;
  }
  void SetOutput(size_t i, Tensor tensor) override { outputs_[i] = Value::FromTensor(std::move(tensor)); }
  void SetOutputValue(size_t i, Value value) override { outputs_[i] = std::move(value); }
  const KernelState* state() const override { return state_; }
  absl::StatusOr<std::vector<Value>> RunSubgraph(const std::string& attr, std::vector<Value>) override {
    return absl::UnimplementedError(absl::StrCat("cannot evaluate subgraph '", attr, "' ahead of time"));
  }
  void ParallelFor(int64_t begin, int64_t end, int64_t,
                   const std::function<void(int64_t, int64_t)>& fn) const override {
    if (end > begin) fn(begin, end);
  }
  std::vector<Value>& outputs() { return outputs_; }

 private:
  const Node& node_;
  const std::vector<const Value*>& inputs_;
  const KernelState* state_;
  std::vector<Value> outputs_;
};

}  // namespace

absl::StatusOr<std::vector<Value>> EvaluateNode(const Node& node, const std::vector<const Value*>& inputs) {
  const OpDef* op = OpRegistry::Global().Find(node.domain, node.op_type, node.opset);
  if (op == nullptr) {
    return absl::UnimplementedError(absl::StrCat(node.Describe(), ": operator not available"));
  }
  std::unique_ptr<KernelState> state;
  if (op->prepare) {
    PrepareContext pctx{node, node.opset, {}};
    for (const Value* v : inputs) pctx.constant_inputs.push_back(v && v->is_tensor() ? &v->tensor : nullptr);
    auto st = op->prepare(pctx);
    if (!st.ok()) return st.status();
    state = std::move(*st);
  }
  EvalContext ctx(node, inputs, state.get());
  absl::Status st = op->compute(ctx);
  if (!st.ok()) return st;
  return std::move(ctx.outputs());
}

}  // namespace hepml::ops
