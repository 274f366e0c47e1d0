// Argument validation of every op entry point, shared by the CPU and CUDA backends: one
// function per entry point checks every view against the others (ranks, shapes, dtypes,
// devices, the layouts each kernel needs, outputs that overlap nothing). Internal to the core.
#pragma once

#include <initializer_list>

#include "hepgen/ode_combine.h"
#include "hepgen/rq_spline.h"
#include "hepgen/tensor_view.h"

namespace hepgen {
namespace args {

// What a backend accepts: its device (index < 0: any) and whether it has half-type kernels.
struct Backend {
  DeviceKind kind;
  int32_t index;
  bool half_types;
};
inline Backend cpu() { return {DeviceKind::cpu, -1, false}; }
inline Backend cuda(int32_t current_device) { return {DeviceKind::cuda, current_device, true}; }

struct Named {
  const char* name;
  const TensorView* view;
};

// A floating data argument of the given rank on the backend's device.
Status data(const Backend& be, const char* name, const TensorView& t, int rank);
// Another data argument with ref's dtype.
Status like(const Backend& be, const char* name, const TensorView& t, int rank, const char* ref_name,
            const TensorView& ref);
// An output of ref's dtype: the shape, contiguous, overlapping none of `inputs`.
Status output(const Backend& be, const char* name, const TensorView& t, std::initializer_list<int64_t> shape,
              const char* what, const char* ref_name, const TensorView& ref, std::initializer_list<Named> inputs);
// a * b, or -1 when it overflows (a shape nothing matches).
int64_t product(int64_t a, int64_t b);

Status set_pool_forward(const Backend& be, const TensorView& x, const TensorView& mask, const TensorView& out);
Status set_pool_backward(const Backend& be, const TensorView& grad_out, const TensorView& mask,
                         const TensorView& grad_x);

Status rq_spline_forward(const Backend& be, const RQSplineOptions& o, const TensorView& inputs,
                         const TensorView& widths, const TensorView& heights, const TensorView& derivatives,
                         const TensorView& outputs, const TensorView& logabsdet);
Status rq_spline_backward(const Backend& be, const RQSplineOptions& o, const TensorView& inputs,
                          const TensorView& widths, const TensorView& heights, const TensorView& derivatives,
                          const TensorView& grad_outputs, const TensorView& grad_logabsdet,
                          const TensorView& grad_inputs, const TensorView& grad_widths, const TensorView& grad_heights,
                          const TensorView& grad_derivatives);

Status ode_combine(const Backend& be, const TensorView& y, const TensorView* k, const double* coeffs, int n_terms,
                   const TensorView& h, const TensorView* mask, const TensorView& out);

Status attention_forward(const Backend& be, const TensorView& q, const TensorView& k, const TensorView& v,
                         const TensorView* mask, const TensorView& out, const TensorView& lse);
Status attention_backward(const Backend& be, const TensorView& grad_out, const TensorView& q, const TensorView& k,
                          const TensorView& v, const TensorView* mask, const TensorView& out, const TensorView& lse,
                          const TensorView& grad_q, const TensorView& grad_k, const TensorView& grad_v);
// The score scale of every attention entry point: finite (an inf or NaN scale makes every score NaN).
Status attention_scale(double scale);
Status attention_decode(const Backend& be, const TensorView& q, const TensorView& k_new, const TensorView& v_new,
                        const TensorView& k_cache, const TensorView& v_cache, const TensorView& lengths,
                        const TensorView& out);

// EPiC local update. CPU passes on packed rows: `relative` offsets index rows from offsets[0]
// (a chunk of whole sets), absolute ones from row 0.
Status epic_bias_act(const TensorView& z, const TensorView& bias, const TensorView& offsets);
Status epic_residual_pool(const TensorView& z2, const TensorView& x, const TensorView& bias2, const TensorView& mask,
                          const TensorView& offsets, const TensorView& y, const TensorView& pooled);
Status epic_output_grad(const TensorView& grad_y, const TensorView& grad_pooled, const TensorView& y,
                        const TensorView& mask, const TensorView& offsets, const TensorView& dz2,
                        const TensorView& grad_bias2);
Status epic_act_grad(const TensorView& dh, const TensorView& h, const TensorView& offsets,
                     const TensorView& grad_bias1);
Status epic_unpack(const TensorView& packed, const TensorView& mask, const TensorView& offsets,
                   const TensorView& padded);
Status epic_local_forward(const Backend& be, const TensorView& x, const TensorView& mask, const TensorView& w1t,
                          const TensorView& bias1, const TensorView& w2t, const TensorView& bias2, const TensorView& y,
                          const TensorView& pooled);
Status epic_local_backward(const Backend& be, const TensorView& grad_y, const TensorView& grad_pooled,
                           const TensorView& x, const TensorView& y, const TensorView& mask, const TensorView& w1,
                           const TensorView& w1t, const TensorView& bias1, const TensorView& w2, const TensorView& dx,
                           const TensorView& dz1, const TensorView& h, const TensorView& dz2,
                           const TensorView& grad_bias1, const TensorView& grad_bias2);

}  // namespace args
}  // namespace hepgen
