// hepgen::TensorView: how every entry point of the core receives an array.
//
// A view is a plain struct (no allocation, no virtual calls, trivially copyable): a data
// pointer, a dtype, a device, and up to kMaxRank sizes and strides (in elements, not bytes,
// any sign). The caller owns the memory. Entry points validate every view they get -- rank,
// sizes, dtype, device, strides that stay inside int64, no null data for a non-empty array,
// outputs that do not overlap their inputs or themselves -- and return a non-ok Status with
// a message naming the argument (hepgen::last_error()) instead of reading out of bounds.
//
// From C++:   hepgen::TensorView x = hepgen::TensorView::dense(ptr, {B, N, D});
// From DLPack: hepgen::from_dlpack(dl_tensor, &view)   (hepgen/dlpack.h)
#pragma once

#include <cstdint>
#include <initializer_list>

#include "hepgen/core.h"

namespace hepgen {

// Enough for every op of the core (attention is rank 4); a view of higher rank is refused.
constexpr int kMaxRank = 6;

// Codes are DLPack's DLDeviceType (kDLCPU, kDLCUDA), so conversions are a cast.
enum class DeviceKind : int32_t { cpu = 1, cuda = 2 };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int32_t index = 0;
};

template <typename T> struct dtype_of;
template <> struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <> struct dtype_of<double> {
  static constexpr DType value = DType::f64;
};
template <> struct dtype_of<uint8_t> {
  static constexpr DType value = DType::u8;
};
template <> struct dtype_of<bool> {
  static constexpr DType value = DType::boolean;
};
template <> struct dtype_of<int64_t> {
  static constexpr DType value = DType::i64;
};

HEPGEN_API int dtype_size(DType dtype);  // bytes per element; 0 for an unknown code
HEPGEN_API const char* dtype_name(DType dtype);

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  Device device{};
  int32_t rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};  // in elements

  // Size and stride of dimension d, counted from the end when negative. A dimension outside
  // the view reads as size 1, stride 0 (broadcasting's convention), so an unchecked index can
  // never make a kernel stride outside the data.
  int64_t size(int d) const {
    if (d < 0) d += rank;
    return d >= 0 && d < rank && d < kMaxRank ? shape[d] : 1;
  }
  int64_t stride(int d) const {
    if (d < 0) d += rank;
    return d >= 0 && d < rank && d < kMaxRank ? strides[d] : 0;
  }
  // Product of the sizes (of a validated view: check_view bounds it).
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < rank && d < kMaxRank; ++d) n *= shape[d];
    return n;
  }
  // Row-major dense; dimensions of size 1 may have any stride.
  bool is_contiguous() const {
    int64_t expected = 1;
    for (int d = (rank < kMaxRank ? rank : kMaxRank) - 1; d >= 0; --d) {
      if (shape[d] != 1 && strides[d] != expected) return false;
      expected *= shape[d];
    }
    return true;
  }
  template <typename T> T* data_as() const { return static_cast<T*>(data); }

  // A row-major dense view. More than kMaxRank sizes give a view that every check refuses.
  static TensorView dense(const void* data, DType dtype, std::initializer_list<int64_t> shape, Device device = {}) {
    TensorView t = shaped(data, dtype, shape, device);
    int64_t step = 1;
    for (int d = (t.rank < kMaxRank ? t.rank : kMaxRank) - 1; d >= 0; --d) {
      t.strides[d] = step;
      step *= t.shape[d];
    }
    return t;
  }
  template <typename T>
  static TensorView dense(const T* data, std::initializer_list<int64_t> shape, Device device = {}) {
    return dense(data, dtype_of<T>::value, shape, device);
  }
  // Any strides, in elements. A strides list of another length than shape gives an invalid view.
  static TensorView strided(const void* data, DType dtype, std::initializer_list<int64_t> shape,
                            std::initializer_list<int64_t> strides, Device device = {}) {
    TensorView t = shaped(data, dtype, shape, device);
    if (strides.size() != shape.size()) t.rank = kMaxRank + 1;
    int d = 0;
    for (int64_t s : strides)
      if (d < kMaxRank) t.strides[d++] = s;
    return t;
  }
  template <typename T> static TensorView strided(const T* data, std::initializer_list<int64_t> shape,
                                                  std::initializer_list<int64_t> strides, Device device = {}) {
    return strided(data, dtype_of<T>::value, shape, strides, device);
  }

 private:
  static TensorView shaped(const void* data, DType dtype, std::initializer_list<int64_t> shape, Device device) {
    TensorView t;
    t.data = const_cast<void*>(data);  // one pointer type for inputs and outputs, as in DLPack
    t.dtype = dtype;
    t.device = device;
    t.rank = static_cast<int32_t>(shape.size());
    int d = 0;
    for (int64_t s : shape)
      if (d < kMaxRank) t.shape[d++] = s;
    return t;
  }
};

// ---- validation: each returns Status::ok, or sets last_error() and returns the failure ----

// rank == expected rank (<= kMaxRank); sizes >= 0; every element offset and the element count
// fit in int64 (also in bytes); data non-null when the view is not empty; known dtype.
HEPGEN_API Status check_view(const char* name, const TensorView& t, int rank);
HEPGEN_API Status check_dtype(const char* name, const TensorView& t, DType expected);
// Same dtype as another argument.
HEPGEN_API Status check_same_dtype(const char* name, const TensorView& t, const char* other_name,
                                   const TensorView& other);
// f32/f64, plus f16/bf16 when half_types: Status::unsupported_dtype for another float type.
HEPGEN_API Status check_float_dtype(const char* name, const TensorView& t, bool half_types);
// On this device (index < 0: any index of the kind).
HEPGEN_API Status check_device(const char* name, const TensorView& t, DeviceKind kind, int32_t index = -1);
// sizes == expected (the rank was checked by check_view); `what` says where they come from.
HEPGEN_API Status check_shape(const char* name, const TensorView& t, std::initializer_list<int64_t> expected,
                              const char* what);
HEPGEN_API Status check_contiguous(const char* name, const TensorView& t);
// Unit stride in the last dimension (where it has more than one element).
HEPGEN_API Status check_unit_inner_stride(const char* name, const TensorView& t);
// A view written by a kernel: no two of its indices reach the same element (an expanded,
// stride-0 view is refused).
HEPGEN_API Status check_no_self_overlap(const char* name, const TensorView& t);
// The memory an output spans does not intersect the memory an input spans.
HEPGEN_API Status check_no_overlap(const char* out_name, const TensorView& out, const char* in_name,
                                   const TensorView& in);

// Message of the last non-ok Status returned on this thread by any entry point ("" if none).
HEPGEN_API const char* last_error();

// Sets last_error() (printf format; truncated at 511 characters) and returns `status`: for
// entry points that refuse an argument outside the checks above.
HEPGEN_API Status fail(Status status, const char* format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

}  // namespace hepgen

// Returns from the enclosing function with the status of a failed check.
#define HEPGEN_TRY(expr)                                                       \
  do {                                                                         \
    const ::hepgen::Status hepgen_try_status_ = (expr);                        \
    if (hepgen_try_status_ != ::hepgen::Status::ok) return hepgen_try_status_; \
  } while (0)
