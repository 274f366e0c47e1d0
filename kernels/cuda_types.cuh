// Storage/accumulator types shared by hepgen's CUDA kernels: half types accumulate in float.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "hepgen/core.h"

namespace hepgen {
namespace cuda {

template <typename T> struct Acc {
  using type = float;
};
template <> struct Acc<double> {
  using type = double;
};

template <typename T> __device__ __forceinline__ typename Acc<T>::type to_acc(T v) {
  return static_cast<typename Acc<T>::type>(v);
}
template <> __device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T, typename A> __device__ __forceinline__ T from_acc(A v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __half from_acc<__half, float>(float v) { return __float2half(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16, float>(float v) {
  return __float2bfloat16(v);
}

// Pointer forms of the same conversions.
template <typename T> __device__ __forceinline__ typename Acc<T>::type load(const T* p) { return to_acc(*p); }
template <typename T, typename A> __device__ __forceinline__ T store(A v) { return from_acc<T, A>(v); }

}  // namespace cuda
}  // namespace hepgen
