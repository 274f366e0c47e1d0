// Argument checks of ode_combine (see hepgen/ode_combine.h and op_args.h).
#include <cstdio>

#include "op_args.h"

namespace hepgen {
namespace args {

Status ode_combine(const Backend& be, const TensorView& y, const TensorView* k, const double* coeffs, int n_terms,
                   const TensorView& h, const TensorView* mask, const TensorView& out) {
  HEPGEN_TRY(data(be, "y", y, 3));
  HEPGEN_TRY(check_contiguous("y", y));
  const int64_t S = y.shape[0], R = y.shape[1], F = y.shape[2];
  if (n_terms < 0 || n_terms > kOdeMaxTerms)
    return fail(Status::invalid_argument, "n_terms must lie in [0, %d], got %d", kOdeMaxTerms, n_terms);
  if (n_terms > 0 && (k == nullptr || coeffs == nullptr))
    return fail(Status::invalid_argument, "k and coeffs must hold n_terms = %d entries, got a null array", n_terms);
  char name[32];
  for (int i = 0; i < n_terms; ++i) {
    std::snprintf(name, sizeof name, "k[%d]", i);
    HEPGEN_TRY(like(be, name, k[i], 3, "y", y));
    HEPGEN_TRY(check_shape(name, k[i], {S, R, F}, "the shape of y"));
    HEPGEN_TRY(check_contiguous(name, k[i]));
  }
  HEPGEN_TRY(like(be, "h", h, 1, "y", y));
  HEPGEN_TRY(check_shape("h", h, {S}, "samples of y"));
  HEPGEN_TRY(check_contiguous("h", h));
  if (mask) {
    HEPGEN_TRY(like(be, "mask", *mask, 2, "y", y));
    HEPGEN_TRY(check_shape("mask", *mask, {S, R}, "samples and rows of y"));
    HEPGEN_TRY(check_contiguous("mask", *mask));
  }
  HEPGEN_TRY(output(be, "out", out, {S, R, F}, "the shape of y", "y", y, {{"y", &y}, {"h", &h}, {"mask", mask}}));
  for (int i = 0; i < n_terms; ++i) {
    std::snprintf(name, sizeof name, "k[%d]", i);
    HEPGEN_TRY(check_no_overlap("out", out, name, k[i]));
  }
  return Status::ok;
}

}  // namespace args
}  // namespace hepgen
