// The CUDA entry points of a library built without CUDA: they exist, so the symbol set is
// the same in every build, and say Status::not_built.
#ifndef HEPGEN_WITH_CUDA

#include "hepgen/core.h"
#include "hepgen/epic_local.h"
#include "hepgen/ode_combine.h"
#include "hepgen/rq_spline.h"
#include "hepgen/set_pool.h"
#include "hepgen/masked_attention.h"

namespace hepgen {

int cuda_device_count() { return 0; }
const char* last_cuda_error() { return ""; }

namespace cuda {

Status set_pool_forward(DType, const void*, const int64_t*, const void*, const int64_t*,
                        int64_t, int64_t, int64_t, double, void*, void*) {
  return Status::not_built;
}

Status set_pool_backward(DType, const void*, const void*, const int64_t*, int64_t, int64_t,
                         int64_t, double, void*, void*) {
  return Status::not_built;
}

Status masked_attention_forward(DType, const void*, const int64_t*, const void*, const int64_t*,
                                const void*, const int64_t*, const uint8_t*, const int64_t*,
                                int64_t, int64_t, int64_t, int64_t, bool, double, void*, void*,
                                void*) {
  return Status::not_built;
}

Status masked_attention_backward(DType, const void*, const void*, const int64_t*, const void*,
                                 const int64_t*, const void*, const int64_t*, const uint8_t*,
                                 const int64_t*, const void*, const void*, int64_t, int64_t,
                                 int64_t, int64_t, bool, double, void*, void*, void*, void*) {
  return Status::not_built;
}

Status masked_attention_decode(DType, const void*, const int64_t*, const void*, const int64_t*,
                               const void*, const int64_t*, void*, const int64_t*, void*,
                               const int64_t*, const int64_t*, int64_t, int64_t, int64_t, int64_t,
                               double, void*, void*) {
  return Status::not_built;
}

Status epic_local_forward(DType, const void*, const int64_t*, const void*, const int64_t*,
                          const void*, const void*, const void*, const void*, int64_t, int64_t,
                          int64_t, int64_t, double, double, void*, void*, void*) {
  return Status::not_built;
}

Status epic_local_backward(DType, const void*, const void*, const void*, const int64_t*,
                           const void*, const void*, const int64_t*, const void*, const void*,
                           const void*, const void*, int64_t, int64_t, int64_t, int64_t, double,
                           double, void*, void*, void*, void*, void*, void*, void*) {
  return Status::not_built;
}

Status ode_combine(DType, const void*, double, const void* const*, const double*, int,
                   const void*, const void*, int64_t, int64_t, int64_t, void*, void*) {
  return Status::not_built;
}

Status rq_spline_forward(DType, int64_t, const RQSplineOptions&, const void*, const void*, int64_t,
                         const void*, int64_t, const void*, int64_t, void*, void*, void*) {
  return Status::not_built;
}

Status rq_spline_backward(DType, int64_t, const RQSplineOptions&, const void*, const void*, int64_t,
                          const void*, int64_t, const void*, int64_t, const void*, const void*,
                          void*, void*, void*, void*, void*) {
  return Status::not_built;
}

}  // namespace cuda
}  // namespace hepgen

#endif  // HEPGEN_WITH_CUDA
