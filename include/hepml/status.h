// Error handling at every hepml boundary: absl::Status and absl::StatusOr.
//
// Bad user input (a malformed model, a wrong shape, a broken request, a corrupt
// file) returns a Status naming the thing and the reason; nothing in hepml's
// public API throws or aborts on it.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define HEPML_STATUS_CONCAT_INNER(a, b) a##b
#define HEPML_STATUS_CONCAT(a, b) HEPML_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define HEPML_RETURN_IF_ERROR(expr)                 \
  do {                                              \
    ::absl::Status hepml_status_ = (expr);          \
    if (!hepml_status_.ok()) return hepml_status_;  \
  } while (0)

// `lhs = value of expr` (an absl::StatusOr<T>), or returns its error.
#define HEPML_ASSIGN_OR_RETURN(lhs, expr)                                       \
  HEPML_ASSIGN_OR_RETURN_IMPL(HEPML_STATUS_CONCAT(hepml_statusor_, __LINE__), \
                              lhs, expr)
#define HEPML_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
