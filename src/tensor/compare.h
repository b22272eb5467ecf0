// Element-wise comparison of tensors with numpy.testing.assert_allclose's rule:
// |actual - expected| <= atol + rtol * |expected|, NaN equal to NaN, infinities
// equal to infinities of the same sign. Used by the conformance harness and tests.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "hepml/tensor.h"

namespace hepml {

struct Tolerance {
  double rtol = 1e-3;
  double atol = 1e-7;
};

// OK if dtypes, shapes and all values agree within `tol` (exactly for integers,
// bools and strings); otherwise an error naming the first mismatches.
absl::Status AllClose(const Tensor& actual, const Tensor& expected, Tolerance tol = {});

// The same for runtime values (sequences compared element by element).
absl::Status AllClose(const Value& actual, const Value& expected, Tolerance tol = {});

}  // namespace hepml
