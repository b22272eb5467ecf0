// ONNX ModelProto -> hepml Model.
//
// Reads opsets 1 to 21 of the default domain (newer imports and unknown
// domains are refused with a clear error), initializers (also sparse ones), external data
// files next to the model, symbolic dimensions and subgraphs. Errors name the
// file and the node and say why.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "graph/graph.h"

namespace hepml {

struct ImportOptions {
  // Where external-data files are looked up (the model's folder by default).
  std::string external_data_dir;
  // Run libonnx's checker and shape inference when every imported opset is
  // one it knows (the default domain up to 17): adds declared types of
  // intermediate values and catches malformed nodes early.
  bool onnx_shape_inference = true;
};

absl::StatusOr<Model> LoadModel(const std::string& path, const ImportOptions& options = {});
absl::StatusOr<Model> LoadModelFromBytes(std::string_view bytes, const ImportOptions& options = {});

}  // namespace hepml
