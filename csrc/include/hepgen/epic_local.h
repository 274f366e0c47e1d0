// The local update of an EPiC layer fused with the pooling the next global update needs.
//
// Per particle n of set b (H features in, H1 hidden), with per-set biases that carry the
// global vector, time and conditioning (computed once per set by the caller):
//   z1 = W1 x + bias1[b]              h  = act(z1)            act = LeakyReLU(slope)
//   z2 = W2 h + bias2[b] + x          y  = mask[b, n] * act(z2)
//   pooled[b] = [ Σ_n m y / Σ_n m ,  sum_scale · Σ_n m y ]   (mean 0 for an empty set)
// Padded particles (mask 0) are not computed; their y is 0.
//
// The CPU core does not multiply matrices: on the CPU a BLAS GEMM over the packed real
// particles is faster than any portable hand-written loop (measured: docs/epic.md), so the
// caller runs the two GEMMs and these passes fuse everything around them. "Packed" means
// the real particles only, set after set, particle order kept; set b's rows are
// [offsets[b], offsets[b + 1]). The padded layout is [B, N, ·] with the mask [B, N].
// CUDA runs the whole forward in one kernel per set (weights passed transposed).
#pragma once

#include "hepgen/core.h"

namespace hepgen {

// h = act(z + bias[set]) in place on packed rows z [M, F] (dense); bias [B, F] dense.
HEPGEN_API Status epic_bias_act(DType dtype, void* z, const void* bias, const int64_t* offsets,
                                int64_t batch, int64_t features, double slope);

// The forward epilogue: from packed z2 = W2 h (no bias) [M, H] and packed x [M, H],
// y (padded [B, N, H], dense, zero on padding) and pooled [B, 2H].
// mask [B, N] strided, same dtype as the data.
HEPGEN_API Status epic_residual_pool(DType dtype, const void* z2, const void* x, const void* bias2,
                                     const void* mask, const int64_t mask_strides[2],
                                     const int64_t* offsets, int64_t batch, int64_t set_size,
                                     int64_t features, double slope, double sum_scale, void* y,
                                     void* pooled);

// Backward, first pass: from grad_y (padded, dense), grad_pooled [B, 2H] and the forward's
// y (padded, dense), dz2 on packed rows [M, H] and grad_bias2 [B, H] (= Σ_n dz2).
HEPGEN_API Status epic_output_grad(DType dtype, const void* grad_y, const void* grad_pooled,
                                   const void* y, const void* mask, const int64_t mask_strides[2],
                                   const int64_t* offsets, int64_t batch, int64_t set_size,
                                   int64_t features, double slope, double sum_scale, void* dz2,
                                   void* grad_bias2);

// Backward, second pass: dz1 = dh * act'(z1) in place on packed dh [M, F] (h = act(z1) is
// given; its sign is z1's), and grad_bias1 [B, F] = Σ_n dz1.
HEPGEN_API Status epic_act_grad(DType dtype, void* dh, const void* h, const int64_t* offsets,
                                int64_t batch, int64_t features, double slope, void* grad_bias1);

// Scatter packed rows [M, F] into the padded layout [B, N, F] (dense), zero on padding.
HEPGEN_API Status epic_unpack(DType dtype, const void* packed, const void* mask,
                              const int64_t mask_strides[2], const int64_t* offsets, int64_t batch,
                              int64_t set_size, int64_t features, void* padded);

namespace cuda {

// The whole forward on the padded layout, one block per set. x [B, N, H] strided;
// w1t = W1ᵀ [H, H1] and w2t = W2ᵀ [H1, H] dense; bias1 [B, H1], bias2 [B, H] dense; y dense.
// dtypes f32, f64, f16, bf16 (half types accumulate in f32). H, H1 ≤ 1024.
HEPGEN_API Status epic_local_forward(DType dtype, const void* x, const int64_t x_strides[3],
                                     const void* mask, const int64_t mask_strides[2],
                                     const void* w1t, const void* bias1, const void* w2t,
                                     const void* bias2, int64_t batch, int64_t set_size,
                                     int64_t features, int64_t hidden, double slope,
                                     double sum_scale, void* y, void* pooled, void* stream);

// The backward on the padded layout, one block per set: dx [B, N, H], and for the weight
// gradients (GEMMs left to the caller) dz1 [B, N, H1], h [B, N, H1], dz2 [B, N, H] with
// zeros on padding; grad_bias1 [B, H1], grad_bias2 [B, H]. x as in the forward; grad_y, y
// dense; w1 = W1 [H1, H] and w2 = W2 [H, H1] dense (not transposed: the backward reads them
// the other way round).
HEPGEN_API Status epic_local_backward(DType dtype, const void* grad_y, const void* grad_pooled,
                                      const void* x, const int64_t x_strides[3], const void* y,
                                      const void* mask, const int64_t mask_strides[2],
                                      const void* w1, const void* w1t, const void* bias1,
                                      const void* w2, int64_t batch, int64_t set_size,
                                      int64_t features, int64_t hidden, double slope,
                                      double sum_scale, void* dx, void* dz1, void* h, void* dz2,
                                      void* grad_bias1, void* grad_bias2, void* stream);

}  // namespace cuda
}  // namespace hepgen
