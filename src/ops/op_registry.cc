#include "ops/op_registry.h"

#include <algorithm>

#include "absl/strings/str_join.h"

namespace hepml::ops {

std::string DTypeSetToString(DTypeSet set) {
  std::vector<std::string> names;
  for (int d = 1; d <= 22; ++d) {
    if (set & Bit(static_cast<DType>(d))) names.push_back(DTypeName(static_cast<DType>(d)));
  }
  return absl::StrJoin(names, ", ");
}

OpRegistry& OpRegistry::Global() {
  static OpRegistry* registry = new OpRegistry();
  return *registry;
}

void OpRegistry::Register(const OpDef& def) { rows_.push_back(std::make_unique<OpDef>(def)); }

const OpDef* OpRegistry::Find(std::string_view domain, std::string_view name, int opset) const {
  if (domain == "ai.onnx") domain = "";
  for (const auto& row : rows_) {
    if (row->name == name && row->domain == domain && row->since <= opset && opset <= row->until) {
      return row.get();
    }
  }
  return nullptr;
}

std::vector<const OpDef*> OpRegistry::All() const {
  std::vector<const OpDef*> out;
  for (const auto& row : rows_) out.push_back(row.get());
  std::sort(out.begin(), out.end(), [](const OpDef* a, const OpDef* b) {
    if (a->domain != b->domain) return a->domain < b->domain;
    if (a->name != b->name) return a->name < b->name;
    return a->since < b->since;
  });
  return out;
}

OpTableRegistration::OpTableRegistration(std::initializer_list<OpDef> rows) {
  for (const OpDef& row : rows) OpRegistry::Global().Register(row);
}

}  // namespace hepml::ops
