// Turning CUDA runtime errors into hepgen::Status, with the message kept per thread.
#pragma once

#include <cuda_runtime.h>

#include "hepgen/core.h"
#include "op_args.h"

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

// The argument rules of a CUDA entry point: views on the current device, half types too.
inline Status cuda_backend(args::Backend* backend) {
  int device = 0;
  const cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    detail::set_last_cuda_error(err);
    return fail(Status::cuda_error, "no usable CUDA device: %s", cudaGetErrorString(err));
  }
  *backend = args::cuda(device);
  return Status::ok;
}

}  // namespace hepgen
