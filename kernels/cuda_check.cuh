// Turning CUDA runtime errors into hepgen::Status, with the message kept per thread.
#pragma once

#include <cuda_runtime.h>

#include "hepgen/core.h"

namespace hepgen {
namespace detail {
void set_last_cuda_error(cudaError_t err);
}  // namespace detail

// Status of the last launch on this thread (launch-configuration errors only: execution
// errors surface asynchronously, at the caller's next synchronisation).
inline Status launch_status() {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return Status::ok;
  detail::set_last_cuda_error(err);
  return Status::cuda_error;
}

}  // namespace hepgen
