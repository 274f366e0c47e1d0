// Validation of hepgen::TensorView arguments and the per-thread error message (see
// hepgen/tensor_view.h). Nothing here allocates: messages go to a fixed per-thread buffer.
#include "hepgen/tensor_view.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace hepgen {
namespace {

thread_local char message[512] = "";

// "[2, 3, 4]" into buf.
const char* shape_text(const int64_t* shape, int rank, char* buf, size_t size) {
  size_t used = static_cast<size_t>(std::snprintf(buf, size, "["));
  for (int d = 0; d < rank && d < kMaxRank && used < size; ++d)
    used += static_cast<size_t>(
        std::snprintf(buf + used, size - used, d ? ", %lld" : "%lld", static_cast<long long>(shape[d])));
  if (used < size) std::snprintf(buf + used, size - used, "]");
  return buf;
}

const char* device_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::cpu: return "cpu";
    case DeviceKind::cuda: return "cuda";
  }
  return "an unknown device";
}

// Element offsets [lo, hi] a non-empty view reaches; false if they overflow int64.
bool span(const TensorView& t, int64_t* lo, int64_t* hi) {
  int64_t l = 0, h = 0;
  for (int d = 0; d < t.rank; ++d) {
    int64_t reach;
    if (__builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &reach)) return false;
    if (reach < 0 ? __builtin_add_overflow(l, reach, &l) : __builtin_add_overflow(h, reach, &h)) return false;
  }
  *lo = l;
  *hi = h;
  return true;
}

// |v| for a stride of a view that passed check_view (which bounds it, so v != INT64_MIN).
int64_t magnitude(int64_t v) { return v < 0 ? -v : v; }

}  // namespace

Status fail(Status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof message, format, args);
  va_end(args);
  return status;
}

const char* last_error() { return message; }

int dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::u8: return 1;
    case DType::boolean: return 1;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::u8: return "uint8";
    case DType::boolean: return "bool";
    case DType::i64: return "int64";
  }
  return "an unknown dtype";
}

Status check_view(const char* name, const TensorView& t, int rank) {
  if (t.rank < 0 || t.rank > kMaxRank)
    return fail(Status::invalid_argument, "%s: a view has rank 0..%d, got %d", name, kMaxRank,
                static_cast<int>(t.rank));
  char buf[160];
  if (t.rank != rank)
    return fail(Status::invalid_argument, "%s must have rank %d, got rank %d (shape %s)", name, rank,
                static_cast<int>(t.rank), shape_text(t.shape, t.rank, buf, sizeof buf));
  const int item = dtype_size(t.dtype);
  if (item == 0)
    return fail(Status::invalid_argument, "%s has an unknown dtype code %d", name, static_cast<int>(t.dtype));
  int64_t count = 1;
  for (int d = 0; d < t.rank; ++d) {
    if (t.shape[d] < 0)
      return fail(Status::invalid_argument, "%s has a negative size in dimension %d (shape %s)", name, d,
                  shape_text(t.shape, t.rank, buf, sizeof buf));
    if (__builtin_mul_overflow(count, t.shape[d], &count))
      return fail(Status::invalid_argument, "%s: the element count of shape %s overflows int64", name,
                  shape_text(t.shape, t.rank, buf, sizeof buf));
  }
  if (count == 0) return Status::ok;  // an empty view reads nothing: any data and strides
  // The bytes from the lowest to the highest element the view reaches must fit int64: every
  // offset computed later from this view (kernels' indexing, the overlap checks below, which
  // add and scale span ends) lies within that extent, so none of them overflows.
  int64_t lo, hi, extent, bytes;
  if (!span(t, &lo, &hi) || __builtin_sub_overflow(hi, lo, &extent) || __builtin_add_overflow(extent, 1, &extent) ||
      __builtin_mul_overflow(extent, static_cast<int64_t>(item), &bytes) ||
      __builtin_mul_overflow(count, static_cast<int64_t>(item), &bytes))
    return fail(Status::invalid_argument, "%s: the strides of shape %s reach offsets that overflow int64", name,
                shape_text(t.shape, t.rank, buf, sizeof buf));
  if (t.data == nullptr)
    return fail(Status::invalid_argument, "%s: null data for a non-empty view of shape %s", name,
                shape_text(t.shape, t.rank, buf, sizeof buf));
  return Status::ok;
}

Status check_dtype(const char* name, const TensorView& t, DType expected) {
  if (t.dtype == expected) return Status::ok;
  return fail(Status::invalid_argument, "%s must have dtype %s, got %s", name, dtype_name(expected),
              dtype_name(t.dtype));
}

Status check_same_dtype(const char* name, const TensorView& t, const char* other_name, const TensorView& other) {
  if (t.dtype == other.dtype) return Status::ok;
  return fail(Status::invalid_argument, "%s must have the dtype of %s (%s), got %s", name, other_name,
              dtype_name(other.dtype), dtype_name(t.dtype));
}

Status check_float_dtype(const char* name, const TensorView& t, bool half_types) {
  switch (t.dtype) {
    case DType::f32:
    case DType::f64: return Status::ok;
    case DType::f16:
    case DType::bf16:
      if (half_types) return Status::ok;
      return fail(Status::unsupported_dtype, "%s: this backend has no %s kernel (float32, float64)", name,
                  dtype_name(t.dtype));
    default: return fail(Status::invalid_argument, "%s must be floating point, got %s", name, dtype_name(t.dtype));
  }
}

Status check_device(const char* name, const TensorView& t, DeviceKind kind, int32_t index) {
  if (t.device.kind == kind && (index < 0 || t.device.index == index)) return Status::ok;
  if (t.device.kind != kind)
    return fail(Status::invalid_argument, "%s must be on the %s device, got %s:%d", name, device_name(kind),
                device_name(t.device.kind), static_cast<int>(t.device.index));
  return fail(Status::invalid_argument, "%s must be on %s:%d, got %s:%d", name, device_name(kind),
              static_cast<int>(index), device_name(t.device.kind), static_cast<int>(t.device.index));
}

Status check_shape(const char* name, const TensorView& t, std::initializer_list<int64_t> expected, const char* what) {
  bool same = static_cast<size_t>(t.rank) == expected.size();
  int d = 0;
  for (int64_t e : expected) same = same && d < kMaxRank && t.shape[d++] == e;
  if (same) return Status::ok;
  int64_t want[kMaxRank] = {};
  d = 0;
  for (int64_t e : expected)
    if (d < kMaxRank) want[d++] = e;
  char a[160], b[160];
  return fail(Status::invalid_argument, "%s must have shape %s (%s), got %s", name,
              shape_text(want, static_cast<int>(expected.size()), a, sizeof a), what,
              shape_text(t.shape, t.rank, b, sizeof b));
}

Status check_contiguous(const char* name, const TensorView& t) {
  if (t.numel() == 0 || t.is_contiguous()) return Status::ok;
  char a[160], b[160];
  return fail(Status::invalid_argument,
              "%s must be contiguous (row-major dense) for this kernel, got shape %s strides %s", name,
              shape_text(t.shape, t.rank, a, sizeof a), shape_text(t.strides, t.rank, b, sizeof b));
}

Status check_unit_inner_stride(const char* name, const TensorView& t) {
  if (t.rank == 0 || t.numel() == 0 || t.shape[t.rank - 1] <= 1 || t.strides[t.rank - 1] == 1) return Status::ok;
  return fail(Status::invalid_argument, "%s must have unit stride in its last dimension, got %lld", name,
              static_cast<long long>(t.strides[t.rank - 1]));
}

Status check_no_self_overlap(const char* name, const TensorView& t) {
  if (t.numel() <= 1) return Status::ok;
  // Dimensions of size > 1 by increasing |stride|: each stride must step past everything the
  // smaller ones reach. Sufficient for no overlap; it refuses a few exotic interleaved layouts.
  int order[kMaxRank];
  int n = 0;
  for (int d = 0; d < t.rank; ++d)
    if (t.shape[d] > 1) order[n++] = d;
  for (int i = 1; i < n; ++i)
    for (int j = i; j > 0 && magnitude(t.strides[order[j]]) < magnitude(t.strides[order[j - 1]]); --j) {
      const int tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  int64_t reach = 0;  // largest offset the smaller dimensions reach (check_view bounded it)
  for (int i = 0; i < n; ++i) {
    const int d = order[i];
    if (magnitude(t.strides[d]) <= reach) {
      char a[160], b[160];
      return fail(Status::invalid_argument,
                  "%s is written by this kernel but its elements overlap (shape %s strides %s, "
                  "e.g. an expanded view): pass a tensor that owns its memory",
                  name, shape_text(t.shape, t.rank, a, sizeof a), shape_text(t.strides, t.rank, b, sizeof b));
    }
    reach += (t.shape[d] - 1) * magnitude(t.strides[d]);
  }
  return Status::ok;
}

Status check_no_overlap(const char* out_name, const TensorView& out, const char* in_name, const TensorView& in) {
  if (out.numel() == 0 || in.numel() == 0) return Status::ok;
  int64_t olo = 0, ohi = 0, ilo = 0, ihi = 0;
  span(out, &olo, &ohi);  // both views passed check_view: no overflow
  span(in, &ilo, &ihi);
  const char* ob = static_cast<const char*>(out.data);
  const char* ib = static_cast<const char*>(in.data);
  const int64_t os = dtype_size(out.dtype), is = dtype_size(in.dtype);
  // Half-open byte ranges, compared as integers (pointers into different arrays).
  const uintptr_t o0 = reinterpret_cast<uintptr_t>(ob) + olo * os;
  const uintptr_t o1 = reinterpret_cast<uintptr_t>(ob) + (ohi + 1) * os;
  const uintptr_t i0 = reinterpret_cast<uintptr_t>(ib) + ilo * is;
  const uintptr_t i1 = reinterpret_cast<uintptr_t>(ib) + (ihi + 1) * is;
  if (o0 < i1 && i0 < o1)
    return fail(Status::invalid_argument,
                "%s is written by this kernel and shares memory with %s: pass a separate output", out_name, in_name);
  return Status::ok;
}

}  // namespace hepgen
