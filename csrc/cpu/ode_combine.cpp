// Fused ODE stage/update combination on the CPU (see hepgen/ode_combine.h): one pass over
// the state, OpenMP over rows, the k_i read once each.
#include "hepgen/ode_combine.h"

#include "op_args.h"
#include "parallel.h"

namespace hepgen {
namespace {

template <typename T> void combine(const T* y, T y_coeff, const T* const* k, const T* a, int K, const T* h,
                                   const T* mask, int64_t S, int64_t R, int64_t F, T* out) {
  HEPGEN_PARALLEL_FOR(S * R * F)
  for (int64_t sr = 0; sr < S * R; ++sr) {
    const int64_t s = sr / R;
    T* o = out + sr * F;
    const T m = mask ? mask[sr] : T(1);
    if (m == T(0)) {  // padding stays zero and is not read
      for (int64_t f = 0; f < F; ++f) o[f] = T(0);
      continue;
    }
    const T hs = h[s];
    const T* yr = y + sr * F;
    for (int64_t f = 0; f < F; ++f) o[f] = T(0);
    for (int i = 0; i < K; ++i) {
      const T c = a[i];
      const T* kr = k[i] + sr * F;
      for (int64_t f = 0; f < F; ++f) o[f] += c * kr[f];
    }
    for (int64_t f = 0; f < F; ++f) o[f] = m * (y_coeff * yr[f] + hs * o[f]);
  }
}

template <typename T> void run(const TensorView& y, double y_coeff, const TensorView* k, const double* coeffs, int K,
                               const TensorView& h, const TensorView* mask, const TensorView& out) {
  const T* kk[kOdeMaxTerms];
  T a[kOdeMaxTerms];
  for (int i = 0; i < K; ++i) {
    kk[i] = k[i].data_as<const T>();
    a[i] = static_cast<T>(coeffs[i]);
  }
  combine(y.data_as<const T>(), static_cast<T>(y_coeff), kk, a, K, h.data_as<const T>(),
          mask ? mask->data_as<const T>() : nullptr, y.shape[0], y.shape[1], y.shape[2], out.data_as<T>());
}

}  // namespace

Status ode_combine(const TensorView& y, double y_coeff, const TensorView* k, const double* coeffs, int n_terms,
                   const TensorView& h, const TensorView* mask, const TensorView& out) {
  HEPGEN_TRY(args::ode_combine(args::cpu(), y, k, coeffs, n_terms, h, mask, out));
  if (y.numel() == 0) return Status::ok;
  if (y.dtype == DType::f32)
    run<float>(y, y_coeff, k, coeffs, n_terms, h, mask, out);
  else
    run<double>(y, y_coeff, k, coeffs, n_terms, h, mask, out);
  return Status::ok;
}

}  // namespace hepgen
