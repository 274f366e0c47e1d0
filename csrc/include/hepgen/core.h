// hepgen core: types shared by every op of the torch-free C++ API.
//
// Every op takes its arrays as hepgen::TensorView (hepgen/tensor_view.h): data pointer,
// dtype, device, shape and strides in elements. The caller owns all memory. Functions return
// a Status instead of throwing, with a message naming the bad argument in last_error(), so
// the library can be called from any C++ code (and from C through a thin shim).
#pragma once

#include <cstdint>

#if defined(_WIN32)
#define HEPGEN_API __declspec(dllexport)
#else
#define HEPGEN_API __attribute__((visibility("default")))
#endif

namespace hepgen {

// Floating types are the data of the ops; u8/boolean masks and i64 offsets and lengths are
// their index arguments.
enum class DType : int { f32 = 0, f64 = 1, f16 = 2, bf16 = 3, u8 = 4, boolean = 5, i64 = 6 };

enum class Status : int {
  ok = 0,
  invalid_argument = 1,   // a wrong shape, stride, device, overlap, ...: see last_error()
  unsupported_dtype = 2,  // this backend has no kernel for the dtype
  not_built = 3,          // the library was built without this backend (e.g. CUDA)
  cuda_error = 4,         // a CUDA runtime call failed; see last_cuda_error()
};

HEPGEN_API const char* status_string(Status status);

struct BuildInfo {
  const char* version;
  bool openmp;             // CPU kernels are parallelised with OpenMP
  int openmp_max_threads;  // omp_get_max_threads() now (1 without OpenMP)
  bool cuda;               // CUDA kernels were compiled in
  const char* cuda_archs;  // e.g. "80,90"; "" without CUDA
  const char* compiler;
};

HEPGEN_API BuildInfo build_info();

// Number of CUDA devices the driver reports; 0 when CUDA was not built, or there is no
// driver or no device. Never fails.
HEPGEN_API int cuda_device_count();

// Message of the last CUDA error seen by this thread ("" if none).
HEPGEN_API const char* last_cuda_error();

}  // namespace hepgen
