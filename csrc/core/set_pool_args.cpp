// Argument checks of set_pool (see hepgen/set_pool.h and op_args.h).
#include "op_args.h"

namespace hepgen {
namespace args {

Status set_pool_forward(const Backend& be, const TensorView& x, const TensorView& mask, const TensorView& out) {
  HEPGEN_TRY(data(be, "x", x, 3));
  const int64_t B = x.shape[0], N = x.shape[1], D = x.shape[2];
  HEPGEN_TRY(like(be, "mask", mask, 2, "x", x));
  HEPGEN_TRY(check_shape("mask", mask, {B, N}, "batch and set size of x"));
  return output(be, "out", out, {B, product(2, D)}, "batch and 2 x features of x", "x", x,
                {{"x", &x}, {"mask", &mask}});
}

Status set_pool_backward(const Backend& be, const TensorView& grad_out, const TensorView& mask,
                         const TensorView& grad_x) {
  HEPGEN_TRY(data(be, "grad_out", grad_out, 2));
  HEPGEN_TRY(check_contiguous("grad_out", grad_out));
  HEPGEN_TRY(like(be, "mask", mask, 2, "grad_out", grad_out));
  const int64_t B = mask.shape[0], N = mask.shape[1], D2 = grad_out.shape[1];
  if (D2 % 2 != 0)
    return fail(Status::invalid_argument, "grad_out must have shape [batch, 2 x features], got an odd width %lld",
                static_cast<long long>(D2));
  HEPGEN_TRY(check_shape("grad_out", grad_out, {B, D2}, "batch of mask"));
  return output(be, "grad_x", grad_x, {B, N, D2 / 2}, "batch and set size of mask, features of grad_out", "grad_out",
                grad_out, {{"grad_out", &grad_out}, {"mask", &mask}});
}

}  // namespace args
}  // namespace hepgen
