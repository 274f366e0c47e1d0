// The stage and update arithmetic of explicit ODE/SDE solvers, fused into one pass:
//
//   out[s, r, f] = mask[s, r] * ( y_coeff * y[s, r, f] + h[s] * Σ_i coeffs[i] * k_i[s, r, f] )
//
// for a state of S samples × R rows (particles) × F features, a per-sample step h [S] (so
// adaptive solvers can step each sample on its own), and n_terms derivatives k_i. Euler,
// midpoint, Heun, RK4 and Dormand–Prince stages, their updates and error estimates,
// Euler–Maruyama (a noise term) and DDIM (y_coeff ≠ 1) are all of this form. mask may be
// null (no mask); with a mask, padded particles stay exactly zero and their inputs are not
// read. All arrays are dense; mask has the data's dtype.
#pragma once

#include "hepgen/tensor_view.h"

namespace hepgen {

constexpr int kOdeMaxTerms = 16;

// y, each k[i] and out [S, R, F] dense (the caller views a state [S, ...] as rows R of F
// features); h [S] dense; mask [S, R] dense or nullptr; all one dtype. n_terms in
// [0, kOdeMaxTerms]; k and coeffs hold n_terms entries.
// CPU (OpenMP). dtypes: f32, f64.
HEPGEN_API Status ode_combine(const TensorView& y, double y_coeff, const TensorView* k, const double* coeffs,
                              int n_terms, const TensorView& h, const TensorView* mask, const TensorView& out);

namespace cuda {
// CUDA, asynchronous on `stream`; views on the current device (the k array itself and coeffs
// are host memory, passed by value to the kernel). dtypes: f32, f64, f16, bf16.
HEPGEN_API Status ode_combine(const TensorView& y, double y_coeff, const TensorView* k, const double* coeffs,
                              int n_terms, const TensorView& h, const TensorView* mask, const TensorView& out,
                              void* stream);
}  // namespace cuda
}  // namespace hepgen
