// Masked set pooling, as in the global update of an EPiC layer.
//
// For x [B, N, D] and a mask [B, N] (0/1 or non-negative weights, same dtype as x):
//   count[b]    = sum_n mask[b, n]
//   total[b, d] = sum_n mask[b, n] * x[b, n, d]
//   out[b, :D]  = total / count   (0 where count == 0: an empty set has mean 0, not NaN)
//   out[b, D:]  = total * sum_scale
// out is dense [B, 2D]. Rows with mask == 0 are never read, so padding costs nothing.
//
// Backward (the mask gets no gradient): for grad_out [B, 2D], dense,
//   grad_x[b, n, d] = mask[b, n] * (grad_out[b, d] / count[b] + grad_out[b, D + d] * sum_scale)
// with the first term dropped where count == 0. grad_x is dense [B, N, D].
#pragma once

#include "hepgen/tensor_view.h"

namespace hepgen {

// x [B, N, D] any strides; mask [B, N] any strides, x's dtype; out [B, 2D] dense.
// CPU (OpenMP): dtypes f32, f64.
HEPGEN_API Status set_pool_forward(const TensorView& x, const TensorView& mask, double sum_scale,
                                   const TensorView& out);

// grad_out [B, 2D] dense; mask [B, N] any strides; grad_x [B, N, D] dense.
HEPGEN_API Status set_pool_backward(const TensorView& grad_out, const TensorView& mask, double sum_scale,
                                    const TensorView& grad_x);

namespace cuda {

// CUDA, asynchronous on `stream` (a cudaStream_t; nullptr = legacy default stream); views on
// the current CUDA device. dtypes: f32, f64, f16, bf16 (accumulated in f32 for the half
// types). Returns Status::not_built in a library built without CUDA.
HEPGEN_API Status set_pool_forward(const TensorView& x, const TensorView& mask, double sum_scale, const TensorView& out,
                                   void* stream);

HEPGEN_API Status set_pool_backward(const TensorView& grad_out, const TensorView& mask, double sum_scale,
                                    const TensorView& grad_x, void* stream);

}  // namespace cuda
}  // namespace hepgen
