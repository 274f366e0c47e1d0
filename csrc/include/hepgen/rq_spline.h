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

#include "hepgen/core.h"

namespace hepgen {

struct RQSplineOptions {
  int64_t bins = 8;             // K >= 1
  bool inverse = false;
  double tail_bound = 1.0;      // B > 0
  double min_bin_width = 1e-3;  // in [0, 1/K]
  double min_bin_height = 1e-3; // in [0, 1/K]
  double min_derivative = 1e-3; // in [0, 1)
};

// CPU (OpenMP). dtypes: f32, f64. Status::invalid_argument for n < 0, K < 1, a bad option
// or a null pointer with n > 0.
HEPGEN_API Status rq_spline_forward(DType dtype, int64_t n, const RQSplineOptions& options,
                                    const void* inputs, const void* widths, int64_t widths_row_stride,
                                    const void* heights, int64_t heights_row_stride,
                                    const void* derivatives, int64_t derivatives_row_stride,
                                    void* outputs, void* logabsdet);

HEPGEN_API Status rq_spline_backward(DType dtype, int64_t n, const RQSplineOptions& options,
                                     const void* inputs, const void* widths, int64_t widths_row_stride,
                                     const void* heights, int64_t heights_row_stride,
                                     const void* derivatives, int64_t derivatives_row_stride,
                                     const void* grad_outputs, const void* grad_logabsdet,
                                     void* grad_inputs, void* grad_widths, void* grad_heights,
                                     void* grad_derivatives);

namespace cuda {

// CUDA, asynchronous on `stream` (a cudaStream_t; nullptr = legacy default stream); device
// pointers. dtypes: f32, f64, f16, bf16 (half types computed in f32). Status::not_built in a
// library built without CUDA.
HEPGEN_API Status rq_spline_forward(DType dtype, int64_t n, const RQSplineOptions& options,
                                    const void* inputs, const void* widths, int64_t widths_row_stride,
                                    const void* heights, int64_t heights_row_stride,
                                    const void* derivatives, int64_t derivatives_row_stride,
                                    void* outputs, void* logabsdet, void* stream);

HEPGEN_API Status rq_spline_backward(DType dtype, int64_t n, const RQSplineOptions& options,
                                     const void* inputs, const void* widths, int64_t widths_row_stride,
                                     const void* heights, int64_t heights_row_stride,
                                     const void* derivatives, int64_t derivatives_row_stride,
                                     const void* grad_outputs, const void* grad_logabsdet,
                                     void* grad_inputs, void* grad_widths, void* grad_heights,
                                     void* grad_derivatives, void* stream);

}  // namespace cuda
}  // namespace hepgen
