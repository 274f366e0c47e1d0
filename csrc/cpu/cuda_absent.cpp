// The CUDA entry points of a library built without CUDA: they exist, so the symbol set is
// the same in every build, and say Status::not_built (with a message in last_error()).
#ifndef HEPGEN_WITH_CUDA

#include "hepgen/core.h"
#include "hepgen/epic_local.h"
#include "hepgen/masked_attention.h"
#include "hepgen/ode_combine.h"
#include "hepgen/rq_spline.h"
#include "hepgen/set_pool.h"

namespace hepgen {

int cuda_device_count() { return 0; }
const char* last_cuda_error() { return ""; }

namespace cuda {
namespace {
Status absent(const char* entry) {
  return fail(Status::not_built, "%s: this library was built without CUDA (HEPGEN_CUDA=OFF or no nvcc)", entry);
}
}  // namespace

using TV = TensorView;

Status set_pool_forward(const TV&, const TV&, double, const TV&, void*) { return absent("cuda::set_pool_forward"); }
Status set_pool_backward(const TV&, const TV&, double, const TV&, void*) { return absent("cuda::set_pool_backward"); }

Status masked_attention_forward(const TV&, const TV&, const TV&, const TV*, bool, double, const TV&, const TV&, void*) {
  return absent("cuda::masked_attention_forward");
}
Status masked_attention_backward(const TV&, const TV&, const TV&, const TV&, const TV*, const TV&, const TV&, bool,
                                 double, const TV&, const TV&, const TV&, void*) {
  return absent("cuda::masked_attention_backward");
}
Status masked_attention_decode(const TV&, const TV&, const TV&, const TV&, const TV&, const TV&, double, const TV&,
                               void*) {
  return absent("cuda::masked_attention_decode");
}

Status epic_local_forward(const TV&, const TV&, const TV&, const TV&, const TV&, const TV&, double, double, const TV&,
                          const TV&, void*) {
  return absent("cuda::epic_local_forward");
}
Status epic_local_backward(const TV&, const TV&, const TV&, const TV&, const TV&, const TV&, const TV&, const TV&,
                           const TV&, double, double, const TV&, const TV&, const TV&, const TV&, const TV&, const TV&,
                           void*) {
  return absent("cuda::epic_local_backward");
}

Status ode_combine(const TV&, double, const TV*, const double*, int, const TV&, const TV*, const TV&, void*) {
  return absent("cuda::ode_combine");
}

Status rq_spline_forward(const RQSplineOptions&, const TV&, const TV&, const TV&, const TV&, const TV&, const TV&,
                         void*) {
  return absent("cuda::rq_spline_forward");
}
Status rq_spline_backward(const RQSplineOptions&, const TV&, const TV&, const TV&, const TV&, const TV&, const TV&,
                          const TV&, const TV&, const TV&, const TV&, void*) {
  return absent("cuda::rq_spline_backward");
}

}  // namespace cuda
}  // namespace hepgen

#endif  // HEPGEN_WITH_CUDA
