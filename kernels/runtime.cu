// CUDA runtime queries of the core: device count and the last error message.
#include <string>

#include "cuda_check.cuh"

namespace hepgen {
namespace {
thread_local std::string last_error;
}  // namespace

namespace detail {
void set_last_cuda_error(cudaError_t err) {
  last_error = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
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

const char* last_cuda_error() { return last_error.c_str(); }

}  // namespace hepgen
