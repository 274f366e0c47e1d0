// Every entry point refuses bad views with a Status and a message naming the argument,
// instead of crashing or reading out of bounds. Run by tests/test_cpp_package.py; exits
// non-zero if any case is accepted or refused for the wrong reason.
#include <hepgen/dlpack.h>
#include <hepgen/epic_local.h>
#include <hepgen/masked_attention.h>
#include <hepgen/ode_combine.h>
#include <hepgen/rq_spline.h>
#include <hepgen/set_pool.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

using hepgen::DType;
using hepgen::Status;
using hepgen::TensorView;

namespace {

int failures = 0;

void expect(const char* what, Status got, Status want, const char* message_part) {
  const bool ok = got == want && (want == Status::ok || std::strstr(hepgen::last_error(), message_part));
  std::printf("%s %-44s %s%s%s\n", ok ? "ok  " : "FAIL", what, hepgen::status_string(got),
              got == Status::ok ? "" : ": ", got == Status::ok ? "" : hepgen::last_error());
  if (!ok) ++failures;
}

}  // namespace

int main() {
  const int64_t B = 4, N = 512, D = 8;
  std::vector<double> x(B * N * D, 1.0), mask(B * N, 1.0), out(B * 2 * D), wide(B * 4 * D), small(1);
  std::vector<float> maskf(B * N, 1.0f);
  const TensorView xv = TensorView::dense(x.data(), {B, N, D});
  const TensorView mv = TensorView::dense(mask.data(), {B, N});
  const TensorView ov = TensorView::dense(out.data(), {B, 2 * D});

  expect("valid call", hepgen::set_pool_forward(xv, mv, 0.01, ov), Status::ok, "");
  expect("strided mask (every other column)",
         hepgen::set_pool_forward(TensorView::dense(x.data(), {B, N / 2, D}),
                                  TensorView::strided(mask.data(), {B, N / 2}, {N, 2}), 0.01,
                                  TensorView::dense(out.data(), {B, 2 * D})),
         Status::ok, "");
  expect("wrong rank", hepgen::set_pool_forward(TensorView::dense(x.data(), {B, N * D}), mv, 0.01, ov),
         Status::invalid_argument, "x must have rank 3");
  expect("mismatched shapes (mask [1, 1])",
         hepgen::set_pool_forward(xv, TensorView::dense(small.data(), {1, 1}), 0.01, ov), Status::invalid_argument,
         "mask must have shape [4, 512]");
  expect("wrong dtype (float32 mask, float64 x)",
         hepgen::set_pool_forward(xv, TensorView::dense(maskf.data(), {B, N}), 0.01, ov), Status::invalid_argument,
         "mask must have the dtype of x");
  expect("half type on the CPU",
         hepgen::set_pool_forward(TensorView::dense(x.data(), DType::f16, {B, N, D}), mv, 0.01, ov),
         Status::unsupported_dtype, "x: this backend has no float16 kernel");
  expect("negative size", hepgen::set_pool_forward(TensorView::dense(x.data(), {B, -1, D}), mv, 0.01, ov),
         Status::invalid_argument, "x has a negative size");
  expect("null data with numel > 0",
         hepgen::set_pool_forward(TensorView::dense(static_cast<double*>(nullptr), {B, N, D}), mv, 0.01, ov),
         Status::invalid_argument, "x: null data");
  expect("empty set with null data",
         hepgen::set_pool_forward(TensorView::dense(static_cast<double*>(nullptr), {0, N, D}),
                                  TensorView::dense(static_cast<double*>(nullptr), {0, N}), 0.01,
                                  TensorView::dense(static_cast<double*>(nullptr), {0, 2 * D})),
         Status::ok, "");
  expect("overlapping output (out inside x)",
         hepgen::set_pool_forward(xv, mv, 0.01, TensorView::dense(x.data() + 5, {B, 2 * D})), Status::invalid_argument,
         "out is written by this kernel and shares memory with x");
  expect("non-contiguous output",
         hepgen::set_pool_forward(xv, mv, 0.01, TensorView::strided(wide.data(), {B, 2 * D}, {4 * D, 1})),
         Status::invalid_argument, "out must be contiguous");
  expect("strides that overflow int64",
         hepgen::set_pool_forward(TensorView::strided(x.data(), {B, N, D}, {int64_t(1) << 62, D, 1}), mv, 0.01, ov),
         Status::invalid_argument, "overflow");
  // Extreme strides: the reach of a view is computed without signed overflow (UBSan checks
  // this under tools/sanitize.sh), and a view whose byte extent overflows is refused.
  const int64_t lowest = INT64_MIN;
  expect("stride INT64_MIN",
         hepgen::set_pool_forward(TensorView::strided(x.data(), {2, 1, 1}, {lowest, 1, 1}),
                                  TensorView::dense(mask.data(), {2, 1}), 0.01, TensorView::dense(out.data(), {2, 2})),
         Status::invalid_argument, "overflow");
  std::vector<double> q1(2 * 2), out1(2 * 2), lse1(2 * 2);
  std::vector<uint8_t> keep(4, 1);
  const TensorView q1v = TensorView::dense(q1.data(), {2, 1, 2, 1});
  const TensorView far_mask = TensorView::strided(keep.data(), DType::u8, {2, 2}, {INT64_MAX, lowest + 1});
  expect("strides reaching both ends of int64 (uint8 mask)",
         hepgen::masked_attention_forward(q1v, q1v, q1v, &far_mask, false, 1.0,
                                          TensorView::dense(out1.data(), {2, 1, 2, 1}),
                                          TensorView::dense(lse1.data(), {2, 1, 2})),
         Status::invalid_argument, "overflow");
  expect("rank above kMaxRank",
         hepgen::set_pool_forward(TensorView::dense(x.data(), {1, 1, 1, 1, 1, 1, 1}), mv, 0.01, ov),
         Status::invalid_argument, "rank 0..6");
  expect("a CUDA view on the CPU entry point",
         hepgen::set_pool_forward(TensorView::dense(x.data(), {B, N, D}, {hepgen::DeviceKind::cuda, 0}), mv, 0.01, ov),
         Status::invalid_argument, "x must be on the cpu device");
  expect("backward: odd grad_out width",
         hepgen::set_pool_backward(TensorView::dense(out.data(), {B, 2 * D - 1}), mv, 0.01, xv),
         Status::invalid_argument, "grad_out must have shape [batch, 2 x features]");

  // Attention decode: an expanded (stride-0) KV cache would be written by several rows.
  const int64_t H = 2, L = 5, Dh = 4;
  std::vector<double> q(B * H * Dh), kn(B * H * Dh), vn(B * H * Dh), kc(B * H * L * Dh), vc(B * H * L * Dh),
      dout(B * H * Dh);
  std::vector<int64_t> lengths(B, 1);
  const TensorView qv = TensorView::dense(q.data(), {B, H, 1, Dh});
  const TensorView lv = TensorView::dense(lengths.data(), {B});
  expect("decode: valid call",
         hepgen::masked_attention_decode(
             qv, TensorView::dense(kn.data(), {B, H, 1, Dh}), TensorView::dense(vn.data(), {B, H, 1, Dh}),
             TensorView::dense(kc.data(), {B, H, L, Dh}), TensorView::dense(vc.data(), {B, H, L, Dh}), lv, 0.5,
             TensorView::dense(dout.data(), {B, H, 1, Dh})),
         Status::ok, "");
  expect("decode: expanded k_cache",
         hepgen::masked_attention_decode(
             qv, TensorView::dense(kn.data(), {B, H, 1, Dh}), TensorView::dense(vn.data(), {B, H, 1, Dh}),
             TensorView::strided(kc.data(), {B, H, L, Dh}, {0, L * Dh, Dh, 1}),
             TensorView::dense(vc.data(), {B, H, L, Dh}), lv, 0.5, TensorView::dense(dout.data(), {B, H, 1, Dh})),
         Status::invalid_argument, "k_cache is written by this kernel but its elements overlap");
  expect("decode: float lengths",
         hepgen::masked_attention_decode(
             qv, TensorView::dense(kn.data(), {B, H, 1, Dh}), TensorView::dense(vn.data(), {B, H, 1, Dh}),
             TensorView::dense(kc.data(), {B, H, L, Dh}), TensorView::dense(vc.data(), {B, H, L, Dh}),
             TensorView::dense(q.data(), {B}), 0.5, TensorView::dense(dout.data(), {B, H, 1, Dh})),
         Status::invalid_argument, "lengths must have dtype int64");

  // EPiC packed passes: offsets that disagree with the mask would walk past the packed rows.
  std::vector<double> packed(3 * D), padded(2 * 2 * D), emask = {1, 1, 1, 0};
  std::vector<int64_t> offsets = {0, 2, 4};
  expect("epic_unpack: offsets beyond the packed rows",
         hepgen::epic_unpack(TensorView::dense(packed.data(), {3, D}), TensorView::dense(emask.data(), {2, 2}),
                             TensorView::dense(offsets.data(), {3}), TensorView::dense(padded.data(), {2, 2, D})),
         Status::invalid_argument, "offsets span 4 packed rows");
  offsets = {0, 2, 3};
  emask = {1, 0, 1, 1};
  expect("epic_unpack: mask disagrees with offsets",
         hepgen::epic_unpack(TensorView::dense(packed.data(), {3, D}), TensorView::dense(emask.data(), {2, 2}),
                             TensorView::dense(offsets.data(), {3}), TensorView::dense(padded.data(), {2, 2, D})),
         Status::invalid_argument, "mask: set 0 has 1 real particles");

  // rq_spline: parameter rows must have unit inner stride and matching shapes.
  const int64_t n = 6, K = 4;
  std::vector<double> in(n), w(n * K), hgt(n * K), der(n * (K - 1)), o1(n), o2(n);
  const hepgen::RQSplineOptions opt;
  expect("rq_spline: valid call",
         hepgen::rq_spline_forward(opt, TensorView::dense(in.data(), {n}), TensorView::dense(w.data(), {n, K}),
                                   TensorView::dense(hgt.data(), {n, K}), TensorView::dense(der.data(), {n, K - 1}),
                                   TensorView::dense(o1.data(), {n}), TensorView::dense(o2.data(), {n})),
         Status::ok, "");
  expect("rq_spline: derivatives of the wrong width",
         hepgen::rq_spline_forward(opt, TensorView::dense(in.data(), {n}), TensorView::dense(w.data(), {n, K}),
                                   TensorView::dense(hgt.data(), {n, K}), TensorView::dense(der.data(), {n, K - 2}),
                                   TensorView::dense(o1.data(), {n}), TensorView::dense(o2.data(), {n})),
         Status::invalid_argument, "derivatives must have shape [6, 3]");
  expect("rq_spline: widths with a non-unit inner stride",
         hepgen::rq_spline_forward(
             opt, TensorView::dense(in.data(), {n / 2}), TensorView::strided(w.data(), {n / 2, K / 2}, {K, 2}),
             TensorView::dense(hgt.data(), {n / 2, K / 2}), TensorView::dense(der.data(), {n / 2, K / 2 - 1}),
             TensorView::dense(o1.data(), {n / 2}), TensorView::dense(o2.data(), {n / 2})),
         Status::invalid_argument, "widths must have unit stride in its last dimension");
  expect("rq_spline: outputs and logabsdet alias",
         hepgen::rq_spline_forward(opt, TensorView::dense(in.data(), {n}), TensorView::dense(w.data(), {n, K}),
                                   TensorView::dense(hgt.data(), {n, K}), TensorView::dense(der.data(), {n, K - 1}),
                                   TensorView::dense(o1.data(), {n}), TensorView::dense(o1.data(), {n})),
         Status::invalid_argument, "logabsdet is written by this kernel and shares memory with outputs");

  // ode_combine: term count and shapes.
  std::vector<double> y(2 * 3 * 4), hs(2), res(2 * 3 * 4);
  const TensorView yv = TensorView::dense(y.data(), {2, 3, 4});
  const double coeffs[1] = {1.0};
  expect("ode_combine: too many terms",
         hepgen::ode_combine(yv, 1.0, &yv, coeffs, 17, TensorView::dense(hs.data(), {2}), nullptr,
                             TensorView::dense(res.data(), {2, 3, 4})),
         Status::invalid_argument, "n_terms must lie in [0, 16]");
  expect("ode_combine: h of the wrong length",
         hepgen::ode_combine(yv, 1.0, &yv, coeffs, 1, TensorView::dense(hs.data(), {1}), nullptr,
                             TensorView::dense(res.data(), {2, 3, 4})),
         Status::invalid_argument, "h must have shape [2]");

  // DLPack: what the core cannot take is refused at conversion.
  int64_t shape7[7] = {1, 1, 1, 1, 1, 1, 1};
  DLTensor dl{};
  dl.data = x.data();
  dl.device = {kDLCPU, 0};
  dl.ndim = 7;
  dl.dtype = {kDLFloat, 64, 1};
  dl.shape = shape7;
  TensorView fromdl;
  expect("from_dlpack: rank 7", hepgen::from_dlpack(dl, "x", &fromdl), Status::invalid_argument,
         "x: rank 7, the core takes at most 6");
  dl.ndim = 1;
  dl.dtype = {kDLInt, 32, 1};
  expect("from_dlpack: int32", hepgen::from_dlpack(dl, "x", &fromdl), Status::invalid_argument, "x: DLPack dtype");
  dl.dtype = {kDLFloat, 64, 1};
  expect("from_dlpack: float64 vector", hepgen::from_dlpack(dl, "x", &fromdl), Status::ok, "");

  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
