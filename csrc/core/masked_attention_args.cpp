// Argument checks of masked_attention and its decode step (see hepgen/masked_attention.h and
// op_args.h).
#include <cmath>

#include "op_args.h"

namespace hepgen {
namespace args {
namespace {

Status qkv(const Backend& be, const TensorView& q, const TensorView& k, const TensorView& v, const TensorView* mask) {
  HEPGEN_TRY(data(be, "q", q, 4));
  const int64_t B = q.shape[0], H = q.shape[1], L = q.shape[2], Dh = q.shape[3];
  if (Dh < 1) return fail(Status::invalid_argument, "q must have head_dim >= 1, got 0");
  HEPGEN_TRY(like(be, "k", k, 4, "q", q));
  HEPGEN_TRY(check_shape("k", k, {B, H, L, Dh}, "the shape of q"));
  HEPGEN_TRY(like(be, "v", v, 4, "q", q));
  HEPGEN_TRY(check_shape("v", v, {B, H, L, Dh}, "the shape of q"));
  if (mask) {
    HEPGEN_TRY(check_view("key_padding_mask", *mask, 2));
    HEPGEN_TRY(check_device("key_padding_mask", *mask, be.kind, be.index));
    if (mask->dtype != DType::u8 && mask->dtype != DType::boolean)
      return fail(Status::invalid_argument, "key_padding_mask must be bool or uint8, got %s", dtype_name(mask->dtype));
    HEPGEN_TRY(check_shape("key_padding_mask", *mask, {B, L}, "batch and length of q"));
  }
  return Status::ok;
}

// lse [B, H, L], dense, in the accumulation type (float64 for float64 q, float32 otherwise).
Status lse_like(const Backend& be, const char* name, const TensorView& lse, const TensorView& q) {
  const DType acc = q.dtype == DType::f64 ? DType::f64 : DType::f32;
  HEPGEN_TRY(check_view(name, lse, 3));
  HEPGEN_TRY(check_device(name, lse, be.kind, be.index));
  HEPGEN_TRY(check_dtype(name, lse, acc));
  HEPGEN_TRY(check_shape(name, lse, {q.shape[0], q.shape[1], q.shape[2]}, "batch, heads and length of q"));
  return check_contiguous(name, lse);
}

}  // namespace

Status attention_scale(double scale) {
  if (std::isfinite(scale)) return Status::ok;
  return fail(Status::invalid_argument, "scale must be finite, got %g", scale);
}

Status attention_forward(const Backend& be, const TensorView& q, const TensorView& k, const TensorView& v,
                         const TensorView* mask, const TensorView& out, const TensorView& lse) {
  HEPGEN_TRY(qkv(be, q, k, v, mask));
  const std::initializer_list<Named> in = {{"q", &q}, {"k", &k}, {"v", &v}, {"key_padding_mask", mask}};
  HEPGEN_TRY(output(be, "out", out, {q.shape[0], q.shape[1], q.shape[2], q.shape[3]}, "the shape of q", "q", q, in));
  HEPGEN_TRY(lse_like(be, "lse", lse, q));
  for (const Named& i : in)
    if (i.view) HEPGEN_TRY(check_no_overlap("lse", lse, i.name, *i.view));
  return check_no_overlap("lse", lse, "out", out);
}

Status attention_backward(const Backend& be, const TensorView& grad_out, const TensorView& q, const TensorView& k,
                          const TensorView& v, const TensorView* mask, const TensorView& out, const TensorView& lse,
                          const TensorView& grad_q, const TensorView& grad_k, const TensorView& grad_v) {
  HEPGEN_TRY(qkv(be, q, k, v, mask));
  const int64_t B = q.shape[0], H = q.shape[1], L = q.shape[2], Dh = q.shape[3];
  HEPGEN_TRY(like(be, "grad_out", grad_out, 4, "q", q));
  HEPGEN_TRY(check_shape("grad_out", grad_out, {B, H, L, Dh}, "the shape of q"));
  HEPGEN_TRY(check_contiguous("grad_out", grad_out));
  HEPGEN_TRY(like(be, "out", out, 4, "q", q));
  HEPGEN_TRY(check_shape("out", out, {B, H, L, Dh}, "the shape of q"));
  HEPGEN_TRY(check_contiguous("out", out));
  HEPGEN_TRY(lse_like(be, "lse", lse, q));
  const std::initializer_list<Named> in = {{"grad_out", &grad_out},    {"q", &q},     {"k", &k},    {"v", &v},
                                           {"key_padding_mask", mask}, {"out", &out}, {"lse", &lse}};
  HEPGEN_TRY(output(be, "grad_q", grad_q, {B, H, L, Dh}, "the shape of q", "q", q, in));
  HEPGEN_TRY(output(be, "grad_k", grad_k, {B, H, L, Dh}, "the shape of q", "q", q, in));
  HEPGEN_TRY(output(be, "grad_v", grad_v, {B, H, L, Dh}, "the shape of q", "q", q, in));
  HEPGEN_TRY(check_no_overlap("grad_q", grad_q, "grad_k", grad_k));
  HEPGEN_TRY(check_no_overlap("grad_q", grad_q, "grad_v", grad_v));
  return check_no_overlap("grad_k", grad_k, "grad_v", grad_v);
}

Status attention_decode(const Backend& be, const TensorView& q, const TensorView& k_new, const TensorView& v_new,
                        const TensorView& k_cache, const TensorView& v_cache, const TensorView& lengths,
                        const TensorView& out) {
  HEPGEN_TRY(data(be, "q", q, 4));
  const int64_t B = q.shape[0], H = q.shape[1], Dh = q.shape[3];
  if (q.shape[2] != 1)
    return fail(Status::invalid_argument,
                "q must hold one token per sequence, [batch, heads, 1, head_dim], got length %lld",
                static_cast<long long>(q.shape[2]));
  if (Dh < 1) return fail(Status::invalid_argument, "q must have head_dim >= 1, got 0");
  HEPGEN_TRY(like(be, "k_new", k_new, 4, "q", q));
  HEPGEN_TRY(check_shape("k_new", k_new, {B, H, 1, Dh}, "the shape of q"));
  HEPGEN_TRY(like(be, "v_new", v_new, 4, "q", q));
  HEPGEN_TRY(check_shape("v_new", v_new, {B, H, 1, Dh}, "the shape of q"));
  HEPGEN_TRY(like(be, "k_cache", k_cache, 4, "q", q));
  const int64_t Lmax = k_cache.shape[2];
  HEPGEN_TRY(check_shape("k_cache", k_cache, {B, H, Lmax, Dh}, "batch, heads, head_dim of q"));
  HEPGEN_TRY(like(be, "v_cache", v_cache, 4, "q", q));
  HEPGEN_TRY(check_shape("v_cache", v_cache, {B, H, Lmax, Dh}, "the shape of k_cache"));
  HEPGEN_TRY(check_view("lengths", lengths, 1));
  HEPGEN_TRY(check_device("lengths", lengths, be.kind, be.index));
  HEPGEN_TRY(check_dtype("lengths", lengths, DType::i64));
  HEPGEN_TRY(check_shape("lengths", lengths, {B}, "batch of q"));
  HEPGEN_TRY(check_contiguous("lengths", lengths));
  // The caches are written in place at any strides: each must own its elements, and share
  // memory with no other argument.
  HEPGEN_TRY(check_no_self_overlap("k_cache", k_cache));
  HEPGEN_TRY(check_no_self_overlap("v_cache", v_cache));
  const Named reads[] = {{"q", &q}, {"k_new", &k_new}, {"v_new", &v_new}, {"lengths", &lengths}};
  for (const Named& r : reads) {
    HEPGEN_TRY(check_no_overlap("k_cache", k_cache, r.name, *r.view));
    HEPGEN_TRY(check_no_overlap("v_cache", v_cache, r.name, *r.view));
  }
  HEPGEN_TRY(check_no_overlap("k_cache", k_cache, "v_cache", v_cache));
  return output(be, "out", out, {B, H, 1, Dh}, "the shape of q", "q", q,
                {{"q", &q},
                 {"k_new", &k_new},
                 {"v_new", &v_new},
                 {"k_cache", &k_cache},
                 {"v_cache", &v_cache},
                 {"lengths", &lengths}});
}

}  // namespace args
}  // namespace hepgen
