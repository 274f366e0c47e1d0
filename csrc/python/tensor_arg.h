// Tensor arguments of hepgen._C: a hepgen::TensorView of any Python array, without linking
// the array's library.
//
// Three ways in, cheapest first (measured on a CPU torch tensor, torch 2.13: see
// hepgen/ops/_compiled.py for the figures):
//  1. DLPack's C exchange API (`type(obj).__dlpack_c_exchange_api__`, torch >= 2.10): the
//     producer fills a DLTensor on our stack, borrowing its own shape and strides -- no
//     capsule, no allocation, no deleter. Valid while obj is alive and unchanged, i.e. for
//     the call. This is how torch tensors arrive.
//  2. A DLPack capsule ("dltensor" / "dltensor_versioned", e.g. from
//     torch.utils.dlpack.to_dlpack): consumed by the rules of the DLPack Python
//     specification -- renamed "used_dltensor[_versioned]" so no one else frees it, and its
//     deleter called when the TensorArg is destroyed (after the kernel returns).
//  3. A torch tensor of a torch without the exchange API (torch < 2.10):
//     torch.utils.dlpack.to_dlpack's capsule, as in 2. Not torch's Python-level __dlpack__:
//     it costs ~2 us and refuses tensors that require grad.
//  4. Any other object with __dlpack__ (numpy, cupy, jax, ...): its capsule, as in 2.
#pragma once

#include <pybind11/pybind11.h>

#include <dlpack/dlpack.h>

#include "hepgen/tensor_view.h"

namespace hepgen_python {

namespace py = pybind11;

class TensorArg {
 public:
  TensorArg() = default;
  // `name` names the argument in errors; `writable` refuses read-only DLPack tensors;
  // `cuda_stream` is passed to a generic object's __dlpack__(stream=...) (0: none/CPU).
  TensorArg(py::handle obj, const char* name, bool writable = false, std::uintptr_t cuda_stream = 0);
  TensorArg(const TensorArg&) = delete;
  TensorArg& operator=(const TensorArg&) = delete;
  TensorArg(TensorArg&& other) noexcept { *this = std::move(other); }
  TensorArg& operator=(TensorArg&& other) noexcept;
  ~TensorArg() { release(); }

  const hepgen::TensorView& view() const { return view_; }

 private:
  void from_capsule(py::handle capsule, const char* name, bool writable);
  void refuse_owned(hepgen::Status status);  // release the capsule's tensor and throw, unless ok
  void release();

  hepgen::TensorView view_{};
  DLManagedTensor* managed_ = nullptr;                     // owned, from an unversioned capsule
  DLManagedTensorVersioned* managed_versioned_ = nullptr;  // owned, from a versioned one
};

// None -> no view (nullptr), else a TensorArg.
class OptionalTensorArg {
 public:
  OptionalTensorArg(py::handle obj, const char* name, std::uintptr_t cuda_stream = 0) {
    if (!obj.is_none()) {
      arg_ = TensorArg(obj, name, false, cuda_stream);
      present_ = true;
    }
  }
  const hepgen::TensorView* view() const { return present_ ? &arg_.view() : nullptr; }

 private:
  TensorArg arg_;
  bool present_ = false;
};

}  // namespace hepgen_python
