// Argument checks of the EPiC local update (see hepgen/epic_local.h and op_args.h). The CPU
// passes walk packed rows by the offsets, so the offsets are checked against the rows they
// index, and the mask's real particles per set against the offsets.
#include "op_args.h"

namespace hepgen {
namespace args {
namespace {

const Backend kCpu = cpu();

// offsets [B + 1] int64, dense, non-decreasing, from >= 0, spanning exactly `rows` rows
// (counted from offsets[0] when relative, from 0 otherwise).
Status offsets_of(const TensorView& offsets, int64_t B, int64_t rows, bool relative) {
  HEPGEN_TRY(check_view("offsets", offsets, 1));
  HEPGEN_TRY(check_device("offsets", offsets, DeviceKind::cpu));
  HEPGEN_TRY(check_dtype("offsets", offsets, DType::i64));
  HEPGEN_TRY(check_shape("offsets", offsets, {B + 1}, "batch + 1"));
  HEPGEN_TRY(check_contiguous("offsets", offsets));
  const int64_t* off = offsets.data_as<const int64_t>();
  if (off[0] < 0 || (!relative && off[0] != 0))
    return fail(Status::invalid_argument, "offsets[0] must be %s, got %lld", relative ? ">= 0" : "0",
                static_cast<long long>(off[0]));
  for (int64_t b = 0; b < B; ++b)
    if (off[b + 1] < off[b])
      return fail(Status::invalid_argument, "offsets must be non-decreasing, offsets[%lld] > offsets[%lld]",
                  static_cast<long long>(b), static_cast<long long>(b + 1));
  const int64_t spanned = off[B] - (relative ? off[0] : 0);
  if (spanned != rows)
    return fail(Status::invalid_argument, "offsets span %lld packed rows, the packed array has %lld",
                static_cast<long long>(spanned), static_cast<long long>(rows));
  return Status::ok;
}

// Set b's real particles (mask != 0) are exactly its offsets[b + 1] - offsets[b] packed rows.
template <typename T> Status mask_matches(const TensorView& mask, const int64_t* off) {
  const T* m = mask.data_as<const T>();
  const int64_t B = mask.shape[0], N = mask.shape[1], s0 = mask.strides[0], s1 = mask.strides[1];
  for (int64_t b = 0; b < B; ++b) {
    int64_t real = 0;
    for (int64_t n = 0; n < N; ++n) real += m[b * s0 + n * s1] == T(0) ? 0 : 1;
    if (real != off[b + 1] - off[b])
      return fail(Status::invalid_argument,
                  "mask: set %lld has %lld real particles but offsets give it %lld packed rows",
                  static_cast<long long>(b), static_cast<long long>(real), static_cast<long long>(off[b + 1] - off[b]));
  }
  return Status::ok;
}

Status mask_of(const TensorView& mask, const TensorView& ref, const char* ref_name, int64_t B,
               const TensorView& offsets) {
  HEPGEN_TRY(like(kCpu, "mask", mask, 2, ref_name, ref));
  if (mask.shape[0] != B)
    return fail(Status::invalid_argument, "mask must have %lld sets (batch of %s), got %lld", static_cast<long long>(B),
                ref_name, static_cast<long long>(mask.shape[0]));
  const int64_t* off = offsets.data_as<const int64_t>();
  return mask.dtype == DType::f32 ? mask_matches<float>(mask, off) : mask_matches<double>(mask, off);
}

Status packed(const char* name, const TensorView& t, const TensorView& ref, const char* ref_name) {
  HEPGEN_TRY(like(kCpu, name, t, 2, ref_name, ref));
  return check_contiguous(name, t);
}

}  // namespace

Status epic_bias_act(const TensorView& z, const TensorView& bias, const TensorView& offsets) {
  HEPGEN_TRY(data(kCpu, "z", z, 2));
  HEPGEN_TRY(check_contiguous("z", z));
  HEPGEN_TRY(packed("bias", bias, z, "z"));
  HEPGEN_TRY(check_shape("bias", bias, {bias.shape[0], z.shape[1]}, "features of z"));
  HEPGEN_TRY(offsets_of(offsets, bias.shape[0], z.shape[0], true));
  return check_no_overlap("z", z, "bias", bias);
}

Status epic_residual_pool(const TensorView& z2, const TensorView& x, const TensorView& bias2, const TensorView& mask,
                          const TensorView& offsets, const TensorView& y, const TensorView& pooled) {
  HEPGEN_TRY(data(kCpu, "z2", z2, 2));
  HEPGEN_TRY(check_contiguous("z2", z2));
  const int64_t M = z2.shape[0], H = z2.shape[1];
  HEPGEN_TRY(packed("x", x, z2, "z2"));
  HEPGEN_TRY(check_shape("x", x, {M, H}, "the shape of z2"));
  HEPGEN_TRY(packed("bias2", bias2, z2, "z2"));
  const int64_t B = bias2.shape[0];
  HEPGEN_TRY(check_shape("bias2", bias2, {B, H}, "features of z2"));
  HEPGEN_TRY(offsets_of(offsets, B, M, true));
  HEPGEN_TRY(mask_of(mask, z2, "z2", B, offsets));
  const int64_t N = mask.shape[1];
  const std::initializer_list<Named> in = {
      {"z2", &z2}, {"x", &x}, {"bias2", &bias2}, {"mask", &mask}, {"offsets", &offsets}};
  HEPGEN_TRY(output(kCpu, "y", y, {B, N, H}, "sets and set size of mask, features of z2", "z2", z2, in));
  HEPGEN_TRY(output(kCpu, "pooled", pooled, {B, product(2, H)}, "sets, 2 x features of z2", "z2", z2, in));
  return check_no_overlap("pooled", pooled, "y", y);
}

Status epic_output_grad(const TensorView& grad_y, const TensorView& grad_pooled, const TensorView& y,
                        const TensorView& mask, const TensorView& offsets, const TensorView& dz2,
                        const TensorView& grad_bias2) {
  HEPGEN_TRY(data(kCpu, "grad_y", grad_y, 3));
  HEPGEN_TRY(check_contiguous("grad_y", grad_y));
  const int64_t B = grad_y.shape[0], N = grad_y.shape[1], H = grad_y.shape[2];
  HEPGEN_TRY(like(kCpu, "grad_pooled", grad_pooled, 2, "grad_y", grad_y));
  HEPGEN_TRY(check_shape("grad_pooled", grad_pooled, {B, product(2, H)}, "batch, 2 x features of grad_y"));
  HEPGEN_TRY(check_contiguous("grad_pooled", grad_pooled));
  HEPGEN_TRY(like(kCpu, "y", y, 3, "grad_y", grad_y));
  HEPGEN_TRY(check_shape("y", y, {B, N, H}, "the shape of grad_y"));
  HEPGEN_TRY(check_contiguous("y", y));
  HEPGEN_TRY(check_view("dz2", dz2, 2));
  HEPGEN_TRY(offsets_of(offsets, B, dz2.shape[0], false));
  HEPGEN_TRY(mask_of(mask, grad_y, "grad_y", B, offsets));
  HEPGEN_TRY(check_shape("mask", mask, {B, N}, "batch and set size of grad_y"));
  const std::initializer_list<Named> in = {
      {"grad_y", &grad_y}, {"grad_pooled", &grad_pooled}, {"y", &y}, {"mask", &mask}, {"offsets", &offsets}};
  HEPGEN_TRY(output(kCpu, "dz2", dz2, {dz2.shape[0], H}, "packed rows, features of grad_y", "grad_y", grad_y, in));
  HEPGEN_TRY(output(kCpu, "grad_bias2", grad_bias2, {B, H}, "batch, features of grad_y", "grad_y", grad_y, in));
  return check_no_overlap("grad_bias2", grad_bias2, "dz2", dz2);
}

Status epic_act_grad(const TensorView& dh, const TensorView& h, const TensorView& offsets,
                     const TensorView& grad_bias1) {
  HEPGEN_TRY(data(kCpu, "dh", dh, 2));
  HEPGEN_TRY(check_contiguous("dh", dh));
  HEPGEN_TRY(packed("h", h, dh, "dh"));
  HEPGEN_TRY(check_shape("h", h, {dh.shape[0], dh.shape[1]}, "the shape of dh"));
  HEPGEN_TRY(check_view("grad_bias1", grad_bias1, 2));
  const int64_t B = grad_bias1.shape[0];
  HEPGEN_TRY(offsets_of(offsets, B, dh.shape[0], false));
  HEPGEN_TRY(check_no_overlap("dh", dh, "h", h));
  return output(kCpu, "grad_bias1", grad_bias1, {B, dh.shape[1]}, "sets of offsets, features of dh", "dh", dh,
                {{"dh", &dh}, {"h", &h}, {"offsets", &offsets}});
}

Status epic_unpack(const TensorView& packed_rows, const TensorView& mask, const TensorView& offsets,
                   const TensorView& padded) {
  HEPGEN_TRY(data(kCpu, "packed", packed_rows, 2));
  HEPGEN_TRY(check_contiguous("packed", packed_rows));
  HEPGEN_TRY(check_view("mask", mask, 2));
  const int64_t B = mask.shape[0], N = mask.shape[1], F = packed_rows.shape[1];
  HEPGEN_TRY(offsets_of(offsets, B, packed_rows.shape[0], false));
  HEPGEN_TRY(mask_of(mask, packed_rows, "packed", B, offsets));
  return output(kCpu, "padded", padded, {B, N, F}, "sets and set size of mask, features of packed", "packed",
                packed_rows, {{"packed", &packed_rows}, {"mask", &mask}, {"offsets", &offsets}});
}

Status epic_local_forward(const Backend& be, const TensorView& x, const TensorView& mask, const TensorView& w1t,
                          const TensorView& bias1, const TensorView& w2t, const TensorView& bias2, const TensorView& y,
                          const TensorView& pooled) {
  HEPGEN_TRY(data(be, "x", x, 3));
  const int64_t B = x.shape[0], N = x.shape[1], H = x.shape[2];
  HEPGEN_TRY(like(be, "mask", mask, 2, "x", x));
  HEPGEN_TRY(check_shape("mask", mask, {B, N}, "batch and set size of x"));
  HEPGEN_TRY(like(be, "w1t", w1t, 2, "x", x));
  const int64_t H1 = w1t.shape[1];
  HEPGEN_TRY(check_shape("w1t", w1t, {H, H1}, "features of x, hidden"));
  HEPGEN_TRY(check_contiguous("w1t", w1t));
  HEPGEN_TRY(like(be, "w2t", w2t, 2, "x", x));
  HEPGEN_TRY(check_shape("w2t", w2t, {H1, H}, "hidden of w1t, features of x"));
  HEPGEN_TRY(check_contiguous("w2t", w2t));
  HEPGEN_TRY(like(be, "bias1", bias1, 2, "x", x));
  HEPGEN_TRY(check_shape("bias1", bias1, {B, H1}, "batch of x, hidden of w1t"));
  HEPGEN_TRY(check_contiguous("bias1", bias1));
  HEPGEN_TRY(like(be, "bias2", bias2, 2, "x", x));
  HEPGEN_TRY(check_shape("bias2", bias2, {B, H}, "batch and features of x"));
  HEPGEN_TRY(check_contiguous("bias2", bias2));
  const std::initializer_list<Named> in = {{"x", &x},         {"mask", &mask}, {"w1t", &w1t},
                                           {"bias1", &bias1}, {"w2t", &w2t},   {"bias2", &bias2}};
  HEPGEN_TRY(output(be, "y", y, {B, N, H}, "the shape of x", "x", x, in));
  HEPGEN_TRY(output(be, "pooled", pooled, {B, product(2, H)}, "batch, 2 x features of x", "x", x, in));
  return check_no_overlap("pooled", pooled, "y", y);
}

Status epic_local_backward(const Backend& be, const TensorView& grad_y, const TensorView& grad_pooled,
                           const TensorView& x, const TensorView& y, const TensorView& mask, const TensorView& w1,
                           const TensorView& w1t, const TensorView& bias1, const TensorView& w2, const TensorView& dx,
                           const TensorView& dz1, const TensorView& h, const TensorView& dz2,
                           const TensorView& grad_bias1, const TensorView& grad_bias2) {
  HEPGEN_TRY(data(be, "x", x, 3));
  const int64_t B = x.shape[0], N = x.shape[1], H = x.shape[2];
  HEPGEN_TRY(like(be, "mask", mask, 2, "x", x));
  HEPGEN_TRY(check_shape("mask", mask, {B, N}, "batch and set size of x"));
  HEPGEN_TRY(like(be, "w1", w1, 2, "x", x));
  const int64_t H1 = w1.shape[0];
  const auto dense = [&](const char* name, const TensorView& t, std::initializer_list<int64_t> shape,
                         const char* what) {
    HEPGEN_TRY(like(be, name, t, static_cast<int>(shape.size()), "x", x));
    HEPGEN_TRY(check_shape(name, t, shape, what));
    return check_contiguous(name, t);
  };
  HEPGEN_TRY(dense("grad_y", grad_y, {B, N, H}, "the shape of x"));
  HEPGEN_TRY(dense("grad_pooled", grad_pooled, {B, product(2, H)}, "batch, 2 x features of x"));
  HEPGEN_TRY(dense("y", y, {B, N, H}, "the shape of x"));
  HEPGEN_TRY(dense("w1", w1, {H1, H}, "hidden, features of x"));
  HEPGEN_TRY(dense("w1t", w1t, {H, H1}, "the transpose of w1"));
  HEPGEN_TRY(dense("bias1", bias1, {B, H1}, "batch of x, hidden of w1"));
  HEPGEN_TRY(dense("w2", w2, {H, H1}, "features of x, hidden of w1"));
  const std::initializer_list<Named> in = {{"grad_y", &grad_y}, {"grad_pooled", &grad_pooled},
                                           {"x", &x},           {"y", &y},
                                           {"mask", &mask},     {"w1", &w1},
                                           {"w1t", &w1t},       {"bias1", &bias1},
                                           {"w2", &w2}};
  HEPGEN_TRY(output(be, "dx", dx, {B, N, H}, "the shape of x", "x", x, in));
  HEPGEN_TRY(output(be, "dz1", dz1, {B, N, H1}, "batch and set size of x, hidden", "x", x, in));
  HEPGEN_TRY(output(be, "h", h, {B, N, H1}, "batch and set size of x, hidden", "x", x, in));
  HEPGEN_TRY(output(be, "dz2", dz2, {B, N, H}, "the shape of x", "x", x, in));
  HEPGEN_TRY(output(be, "grad_bias1", grad_bias1, {B, H1}, "batch of x, hidden", "x", x, in));
  HEPGEN_TRY(output(be, "grad_bias2", grad_bias2, {B, H}, "batch and features of x", "x", x, in));
  const Named outs[] = {
      {"dx", &dx}, {"dz1", &dz1}, {"h", &h}, {"dz2", &dz2}, {"grad_bias1", &grad_bias1}, {"grad_bias2", &grad_bias2}};
  for (int i = 0; i < 6; ++i)
    for (int j = i + 1; j < 6; ++j)
      HEPGEN_TRY(check_no_overlap(outs[i].name, *outs[i].view, outs[j].name, *outs[j].view));
  return Status::ok;
}

}  // namespace args
}  // namespace hepgen
