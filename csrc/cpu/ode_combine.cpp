// Fused ODE stage/update combination on the CPU (see hepgen/ode_combine.h): one pass over
// the state, OpenMP over rows, the k_i read once each.
#include "hepgen/ode_combine.h"

#include "parallel.h"

namespace hepgen {
namespace {

template <typename T>
void combine(const T* y, T y_coeff, const T* const* k, const T* a, int K, const T* h,
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

template <typename T>
Status run(const void* y, double y_coeff, const void* const* k, const double* coeffs, int K,
           const void* h, const void* mask, int64_t S, int64_t R, int64_t F, void* out) {
  const T* kk[kOdeMaxTerms];
  T a[kOdeMaxTerms];
  for (int i = 0; i < K; ++i) {
    kk[i] = static_cast<const T*>(k[i]);
    a[i] = static_cast<T>(coeffs[i]);
  }
  combine(static_cast<const T*>(y), static_cast<T>(y_coeff), kk, a, K, static_cast<const T*>(h),
          static_cast<const T*>(mask), S, R, F, static_cast<T*>(out));
  return Status::ok;
}

}  // namespace

Status ode_combine(DType dtype, const void* y, double y_coeff, const void* const* k,
                   const double* coeffs, int n_terms, const void* h, const void* mask,
                   int64_t samples, int64_t rows, int64_t features, void* out) {
  if (samples < 0 || rows < 0 || features < 0 || n_terms < 0 || n_terms > kOdeMaxTerms)
    return Status::invalid_argument;
  if (samples * rows * features == 0) return Status::ok;
  if (!y || !h || !out || (n_terms > 0 && (!k || !coeffs))) return Status::invalid_argument;
  switch (dtype) {
    case DType::f32: return run<float>(y, y_coeff, k, coeffs, n_terms, h, mask, samples, rows, features, out);
    case DType::f64: return run<double>(y, y_coeff, k, coeffs, n_terms, h, mask, samples, rows, features, out);
    default: return Status::unsupported_dtype;
  }
}

}  // namespace hepgen
