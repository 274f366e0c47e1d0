// Monotonic rational-quadratic spline with linear tails (Neural Spline Flows), the
// nflows-compatible `unconstrained_rational_quadratic_spline(..., tails="linear")`.
//
// n elements; element i has an input inputs[i] and K bins described by three rows of
// unconstrained parameters: widths[i * widths_row_stride + j] (j < K), heights (same, K) and
// derivatives (K - 1 interior knots). Parameter rows are read with unit stride inside a row
// and any row stride, so slices of one [n, 3K - 1] conditioner output need no copy.
//
//   bin sizes   w_j = min_bin_width  + (1 - K min_bin_width)  softmax(widths)_j       (same for heights)
//   knots       X_0 = -B, X_j = -B + 2B (w_0 + ... + w_{j-1}), X_K = B      (B = tail_bound)
//   derivatives D_0 = D_K = min_derivative + softplus(log(exp(1 - min_derivative) - 1)) = 1,
//               D_j = min_derivative + softplus(derivatives_{j-1})
//   inside [-B, B] (inclusive): bin k = number of interior knots <= the value (so a value on a
//   knot belongs to the bin on its right), the RQ spline of that bin (forward: x -> y;
//   inverse: y -> x) and logabsdet = log|dy/dx| (inverse: log|dx/dy|);
//   outside (also NaN and +-inf): the identity, logabsdet = 0.
// The bin index is clamped to [0, K-1], so no input or parameter value makes a kernel read
// outside its row. Outputs are dense [n].
//
// Backward: given grad_outputs and grad_logabsdet (dense [n]), writes dense
// grad_inputs [n], grad_widths [n, K], grad_heights [n, K], grad_derivatives [n, K - 1].
#pragma once

#include "hepgen/tensor_view.h"

namespace hepgen {

// K, the number of bins, is widths.shape[1].
struct RQSplineOptions {
  bool inverse = false;
  double tail_bound = 1.0;       // B > 0
  double min_bin_width = 1e-3;   // in [0, 1/K]
  double min_bin_height = 1e-3;  // in [0, 1/K]
  double min_derivative = 1e-3;  // in [0, 1)
};

// inputs [n] dense; widths, heights [n, K] and derivatives [n, K - 1] with unit stride in a
// row (any row stride); outputs, logabsdet [n] dense. CPU (OpenMP). dtypes: f32, f64.
HEPGEN_API Status rq_spline_forward(const RQSplineOptions& options, const TensorView& inputs, const TensorView& widths,
                                    const TensorView& heights, const TensorView& derivatives, const TensorView& outputs,
                                    const TensorView& logabsdet);

// grad_outputs, grad_logabsdet [n] dense; the gradients are dense, shaped as their inputs.
HEPGEN_API Status rq_spline_backward(const RQSplineOptions& options, const TensorView& inputs, const TensorView& widths,
                                     const TensorView& heights, const TensorView& derivatives,
                                     const TensorView& grad_outputs, const TensorView& grad_logabsdet,
                                     const TensorView& grad_inputs, const TensorView& grad_widths,
                                     const TensorView& grad_heights, const TensorView& grad_derivatives);

namespace cuda {

// CUDA, asynchronous on `stream` (a cudaStream_t; nullptr = legacy default stream); views on
// the current device. dtypes: f32, f64, f16, bf16 (half types computed in f32).
// Status::not_built in a library built without CUDA.
HEPGEN_API Status rq_spline_forward(const RQSplineOptions& options, const TensorView& inputs, const TensorView& widths,
                                    const TensorView& heights, const TensorView& derivatives, const TensorView& outputs,
                                    const TensorView& logabsdet, void* stream);

HEPGEN_API Status rq_spline_backward(const RQSplineOptions& options, const TensorView& inputs, const TensorView& widths,
                                     const TensorView& heights, const TensorView& derivatives,
                                     const TensorView& grad_outputs, const TensorView& grad_logabsdet,
                                     const TensorView& grad_inputs, const TensorView& grad_widths,
                                     const TensorView& grad_heights, const TensorView& grad_derivatives, void* stream);

}  // namespace cuda
}  // namespace hepgen
