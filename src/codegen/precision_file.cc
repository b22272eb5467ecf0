// `hepml compile --precision-file FILE.yaml`: per-layer weight precision.
//
//   default: bf16            # optional: replaces --precision
//   layers:                  # node name of the optimised graph -> precision
//     /net/net.3/Gemm: fixed<16,6,RND,SAT>
//     /net/net.4/Gemm: int8  # needs --calibration
//     /net/net.1/Relu: fp16
//     /net/net.6/Gemm: fp32
//
// yaml-cpp parses; every problem (syntax, an unknown key, a precision that is
// not fp32/fp16/bf16) is an error naming the file and the entry. Whether a
// name is a node of the graph is checked later, by GeneratePackage.
#include "hepml/compiler.h"

#include <yaml-cpp/yaml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace hepml {

absl::StatusOr<PrecisionFile> ReadPrecisionFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("--precision-file ", path, ": cannot open"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("--precision-file ", path, ": ", e.what()));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--precision-file ", path, ": expected a mapping with 'layers' (and optionally 'default')"));
  }
  PrecisionFile out;
  auto precision = [&](const YAML::Node& v, const std::string& what) -> absl::StatusOr<WeightPrecision> {
    if (!v.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat("--precision-file ", path, ": ", what, ": expected fp32, fp16, bf16, int8 or fixed<W,I[,Q[,O]]>"));
    }
    auto p = ParseWeightPrecision(v.Scalar());
    if (!p.ok()) {
      absl::string_view why = p.status().message();
      absl::ConsumePrefix(&why, "--precision ");
      return absl::InvalidArgumentError(absl::StrCat("--precision-file ", path, ": ", what, ": ", why));
    }
    return *p;
  };
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (key == "default") {
        HEPML_ASSIGN_OR_RETURN(WeightPrecision p, precision(kv.second, "default"));
        out.fallback = p;
      } else if (key == "layers") {
        if (kv.second.IsNull()) continue;
        if (!kv.second.IsMap()) {
          return absl::InvalidArgumentError(
              absl::StrCat("--precision-file ", path, ": 'layers' must map node names to precisions"));
        }
        for (const auto& layer : kv.second) {
          const std::string name = layer.first.as<std::string>();
          HEPML_ASSIGN_OR_RETURN(WeightPrecision p, precision(layer.second, absl::StrCat("layer '", name, "'")));
          out.layers[name] = p;
        }
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--precision-file ", path, ": unknown key '", key, "' (expected 'default' and 'layers')"));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("--precision-file ", path, ": ", e.what()));
  }
  return out;
}

}  // namespace hepml
