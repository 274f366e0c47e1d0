// Causal multi-head attention with a key-padding mask, and its KV-cache decode step.
//
// q, k, v are [B, H, L, Dh] with any strides (in elements). key_padding_mask is [B, L]
// bytes (nonzero = real token) with strides, or nullptr for "all real". Query i of sequence b
// may see key j when mask[b, j] != 0 and (j <= i or !causal). Then
//   s_ij = scale * q_i . k_j,   lse_i = log sum_j exp(s_ij),   out_i = sum_j exp(s_ij - lse_i) v_j.
// A query with no admissible key gets out_i = 0 and lse_i = +inf (so exp(s - lse) = 0 in the
// backward). Padded keys are never read.
//
// Outputs are dense: out [B, H, L, Dh] in the input dtype; lse [B, H, L] in float for
// f32/f16/bf16 and double for f64 (the accumulation type).
//
// Backward (flash-attention style, recomputing p from lse): with dO = grad_out (dense),
//   dv_j = sum_i p_ij dO_i,  ds_ij = p_ij (dO_i . v_j - dO_i . out_i),
//   dq_i = scale sum_j ds_ij k_j,  dk_j = scale sum_i ds_ij q_i.
// out and lse are the forward's (dense). Gradients are dense [B, H, L, Dh]; padded keys
// get 0.
//
// Decode: q, k_new, v_new [B, H, 1, Dh] (strides), k_cache, v_cache [B, H, Lmax, Dh]
// (strides), lengths [B] int64 (dense). Writes k_new, v_new at cache position lengths[b],
// then attends q over positions 0..lengths[b]; out is dense [B, H, 1, Dh]. A row with
// lengths[b] outside [0, Lmax) writes nothing and gets NaN.
#pragma once

#include "hepgen/tensor_view.h"

namespace hepgen {

// q, k, v [B, H, L, Dh] any strides; key_padding_mask [B, L] bool/uint8 any strides, or
// nullptr; out [B, H, L, Dh] dense; lse [B, H, L] dense (float, double for f64).
// CPU (OpenMP over batch x heads). dtypes: f32, f64.
HEPGEN_API Status masked_attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                                           const TensorView* key_padding_mask, bool causal, double scale,
                                           const TensorView& out, const TensorView& lse);

// grad_out, out dense [B, H, L, Dh], lse dense; gradients dense [B, H, L, Dh].
HEPGEN_API Status masked_attention_backward(const TensorView& grad_out, const TensorView& q, const TensorView& k,
                                            const TensorView& v, const TensorView* key_padding_mask,
                                            const TensorView& out, const TensorView& lse, bool causal, double scale,
                                            const TensorView& grad_q, const TensorView& grad_k,
                                            const TensorView& grad_v);

// q, k_new, v_new [B, H, 1, Dh] any strides; k_cache, v_cache [B, H, Lmax, Dh] any strides
// that do not overlap (written in place); lengths [B] int64 dense; out [B, H, 1, Dh] dense.
HEPGEN_API Status masked_attention_decode(const TensorView& q, const TensorView& k_new, const TensorView& v_new,
                                          const TensorView& k_cache, const TensorView& v_cache,
                                          const TensorView& lengths, double scale, const TensorView& out);

namespace cuda {

// CUDA, asynchronous on `stream` (a cudaStream_t); views on the current device. dtypes: f32,
// f64, f16, bf16 (half types accumulate in float). head_dim <= 128. Status::not_built
// without CUDA.
HEPGEN_API Status masked_attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                                           const TensorView* key_padding_mask, bool causal, double scale,
                                           const TensorView& out, const TensorView& lse, void* stream);

HEPGEN_API Status masked_attention_backward(const TensorView& grad_out, const TensorView& q, const TensorView& k,
                                            const TensorView& v, const TensorView* key_padding_mask,
                                            const TensorView& out, const TensorView& lse, bool causal, double scale,
                                            const TensorView& grad_q, const TensorView& grad_k,
                                            const TensorView& grad_v, void* stream);

HEPGEN_API Status masked_attention_decode(const TensorView& q, const TensorView& k_new, const TensorView& v_new,
                                          const TensorView& k_cache, const TensorView& v_cache,
                                          const TensorView& lengths, double scale, const TensorView& out, void* stream);

}  // namespace cuda
}  // namespace hepgen
