// CUDA runtime queries of the core: device count and the last error message.
#include <string>

#include "cuda_check.cuh"
#include "hepgen/tensor_view.h"

namespace hepgen {
namespace {
thread_local std::string cuda_message;
}  // namespace

namespace detail {
void set_last_cuda_error(cudaError_t err) {
  cuda_message = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  fail(Status::cuda_error, "CUDA error %s", cuda_message.c_str());  // also in last_error()
}
}  // namespace detail

int cuda_device_count() {
  int count = 0;
  // Without a driver this returns cudaErrorInsufficientDriver/NoDevice: that is 0 devices.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later launches don't report it
    return 0;
  }
  return count;
}

const char* last_cuda_error() { return cuda_message.c_str(); }

}  // namespace hepgen
