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

#include "hepgen/core.h"

namespace hepgen {

// CPU (OpenMP). dtypes: f32, f64.
HEPGEN_API Status set_pool_forward(DType dtype, const void* x, const int64_t x_strides[3],
                                   const void* mask, const int64_t mask_strides[2],
                                   int64_t batch, int64_t set_size, int64_t features,
                                   double sum_scale, void* out);

HEPGEN_API Status set_pool_backward(DType dtype, const void* grad_out, const void* mask,
                                    const int64_t mask_strides[2], int64_t batch,
                                    int64_t set_size, int64_t features, double sum_scale,
                                    void* grad_x);

namespace cuda {

// CUDA, asynchronous on `stream` (a cudaStream_t; nullptr = legacy default stream).
// Pointers are device pointers. dtypes: f32, f64, f16, bf16 (accumulated in f32 for the
// half types). Returns Status::not_built in a library built without CUDA.
HEPGEN_API Status set_pool_forward(DType dtype, const void* x, const int64_t x_strides[3],
                                   const void* mask, const int64_t mask_strides[2],
                                   int64_t batch, int64_t set_size, int64_t features,
                                   double sum_scale, void* out, void* stream);

HEPGEN_API Status set_pool_backward(DType dtype, const void* grad_out, const void* mask,
                                    const int64_t mask_strides[2], int64_t batch,
                                    int64_t set_size, int64_t features, double sum_scale,
                                    void* grad_x, void* stream);

}  // namespace cuda
}  // namespace hepgen
