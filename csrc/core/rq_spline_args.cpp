// Argument checks of rq_spline (see hepgen/rq_spline.h and op_args.h).
#include <cmath>

#include "op_args.h"

namespace hepgen {
namespace args {
namespace {

Status options(const RQSplineOptions& o, int64_t K) {
  const double k = static_cast<double>(K);
  if (!(std::isfinite(o.tail_bound) && o.tail_bound > 0))
    return fail(Status::invalid_argument, "tail_bound must be finite and > 0, got %g", o.tail_bound);
  if (!(o.min_bin_width >= 0 && o.min_bin_width * k <= 1.0))
    return fail(Status::invalid_argument, "min_bin_width must lie in [0, 1/bins] with %lld bins, got %g",
                static_cast<long long>(K), o.min_bin_width);
  if (!(o.min_bin_height >= 0 && o.min_bin_height * k <= 1.0))
    return fail(Status::invalid_argument, "min_bin_height must lie in [0, 1/bins] with %lld bins, got %g",
                static_cast<long long>(K), o.min_bin_height);
  if (!(o.min_derivative >= 0 && o.min_derivative < 1))
    return fail(Status::invalid_argument, "min_derivative must lie in [0, 1), got %g", o.min_derivative);
  return Status::ok;
}

// inputs [n] dense; widths, heights [n, K] and derivatives [n, K - 1] with unit stride in a row.
Status parameters(const Backend& be, const TensorView& inputs, const TensorView& widths, const TensorView& heights,
                  const TensorView& derivatives, const RQSplineOptions& o) {
  HEPGEN_TRY(data(be, "inputs", inputs, 1));
  HEPGEN_TRY(check_contiguous("inputs", inputs));
  const int64_t n = inputs.shape[0];
  HEPGEN_TRY(like(be, "widths", widths, 2, "inputs", inputs));
  const int64_t K = widths.shape[1];
  if (K < 1)
    return fail(Status::invalid_argument, "widths must have at least one bin, got shape [%lld, 0]",
                static_cast<long long>(widths.shape[0]));
  HEPGEN_TRY(check_shape("widths", widths, {n, K}, "elements of inputs"));
  HEPGEN_TRY(like(be, "heights", heights, 2, "inputs", inputs));
  HEPGEN_TRY(check_shape("heights", heights, {n, K}, "the shape of widths"));
  HEPGEN_TRY(like(be, "derivatives", derivatives, 2, "inputs", inputs));
  HEPGEN_TRY(check_shape("derivatives", derivatives, {n, K - 1}, "elements of inputs, bins - 1"));
  HEPGEN_TRY(check_unit_inner_stride("widths", widths));
  HEPGEN_TRY(check_unit_inner_stride("heights", heights));
  HEPGEN_TRY(check_unit_inner_stride("derivatives", derivatives));
  return options(o, K);
}

}  // namespace

Status rq_spline_forward(const Backend& be, const RQSplineOptions& o, const TensorView& inputs,
                         const TensorView& widths, const TensorView& heights, const TensorView& derivatives,
                         const TensorView& outputs, const TensorView& logabsdet) {
  HEPGEN_TRY(parameters(be, inputs, widths, heights, derivatives, o));
  const int64_t n = inputs.shape[0];
  const std::initializer_list<Named> in = {
      {"inputs", &inputs}, {"widths", &widths}, {"heights", &heights}, {"derivatives", &derivatives}};
  HEPGEN_TRY(output(be, "outputs", outputs, {n}, "the shape of inputs", "inputs", inputs, in));
  HEPGEN_TRY(output(be, "logabsdet", logabsdet, {n}, "the shape of inputs", "inputs", inputs, in));
  return check_no_overlap("logabsdet", logabsdet, "outputs", outputs);
}

Status rq_spline_backward(const Backend& be, const RQSplineOptions& o, const TensorView& inputs,
                          const TensorView& widths, const TensorView& heights, const TensorView& derivatives,
                          const TensorView& grad_outputs, const TensorView& grad_logabsdet,
                          const TensorView& grad_inputs, const TensorView& grad_widths, const TensorView& grad_heights,
                          const TensorView& grad_derivatives) {
  HEPGEN_TRY(parameters(be, inputs, widths, heights, derivatives, o));
  const int64_t n = inputs.shape[0], K = widths.shape[1];
  HEPGEN_TRY(like(be, "grad_outputs", grad_outputs, 1, "inputs", inputs));
  HEPGEN_TRY(check_shape("grad_outputs", grad_outputs, {n}, "the shape of inputs"));
  HEPGEN_TRY(check_contiguous("grad_outputs", grad_outputs));
  HEPGEN_TRY(like(be, "grad_logabsdet", grad_logabsdet, 1, "inputs", inputs));
  HEPGEN_TRY(check_shape("grad_logabsdet", grad_logabsdet, {n}, "the shape of inputs"));
  HEPGEN_TRY(check_contiguous("grad_logabsdet", grad_logabsdet));
  const std::initializer_list<Named> in = {{"inputs", &inputs},
                                           {"widths", &widths},
                                           {"heights", &heights},
                                           {"derivatives", &derivatives},
                                           {"grad_outputs", &grad_outputs},
                                           {"grad_logabsdet", &grad_logabsdet}};
  HEPGEN_TRY(output(be, "grad_inputs", grad_inputs, {n}, "the shape of inputs", "inputs", inputs, in));
  HEPGEN_TRY(output(be, "grad_widths", grad_widths, {n, K}, "the shape of widths", "inputs", inputs, in));
  HEPGEN_TRY(output(be, "grad_heights", grad_heights, {n, K}, "the shape of heights", "inputs", inputs, in));
  HEPGEN_TRY(
      output(be, "grad_derivatives", grad_derivatives, {n, K - 1}, "the shape of derivatives", "inputs", inputs, in));
  const Named outs[] = {{"grad_inputs", &grad_inputs},
                        {"grad_widths", &grad_widths},
                        {"grad_heights", &grad_heights},
                        {"grad_derivatives", &grad_derivatives}};
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      HEPGEN_TRY(check_no_overlap(outs[i].name, *outs[i].view, outs[j].name, *outs[j].view));
  return Status::ok;
}

}  // namespace args
}  // namespace hepgen
