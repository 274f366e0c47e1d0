// Pools random sets through hepgen::set_pool_forward/backward and checks them against a
// naive loop; exits non-zero on any mismatch. Run by tests/test_cpp_package.py. The arrays
// are caller-owned std::vectors, passed as hepgen::TensorView.
#include <hepgen/set_pool.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  const int64_t B = 37, N = 23, D = 5;
  const double scale = 0.01;
  std::mt19937 rng(12345);
  std::normal_distribution<double> normal;
  std::bernoulli_distribution keep(0.6);
  std::vector<double> x(B * N * D), mask(B * N), out(B * 2 * D), grad_x(B * N * D);
  for (auto& v : x) v = normal(rng);
  for (int64_t i = 0; i < B * N; ++i) mask[i] = (i / N == 3) ? 0.0 : (keep(rng) ? 1.0 : 0.0);
  using hepgen::TensorView;
  const TensorView xv = TensorView::dense(x.data(), {B, N, D});
  const TensorView mv = TensorView::dense(mask.data(), {B, N});

  hepgen::Status s = hepgen::set_pool_forward(xv, mv, scale, TensorView::dense(out.data(), {B, 2 * D}));
  if (s != hepgen::Status::ok) {
    std::printf("forward failed: %s: %s\n", hepgen::status_string(s), hepgen::last_error());
    return 1;
  }
  std::vector<double> grad_out(B * 2 * D);
  for (auto& v : grad_out) v = normal(rng);
  s = hepgen::set_pool_backward(TensorView::dense(grad_out.data(), {B, 2 * D}), mv, scale,
                                TensorView::dense(grad_x.data(), {B, N, D}));
  if (s != hepgen::Status::ok) {
    std::printf("backward failed: %s: %s\n", hepgen::status_string(s), hepgen::last_error());
    return 1;
  }

  double worst = 0;
  for (int64_t b = 0; b < B; ++b) {
    double count = 0;
    for (int64_t n = 0; n < N; ++n) count += mask[b * N + n];
    for (int64_t d = 0; d < D; ++d) {
      double total = 0;
      for (int64_t n = 0; n < N; ++n) total += mask[b * N + n] * x[(b * N + n) * D + d];
      const double mean = count > 0 ? total / count : 0.0;
      worst = std::fmax(worst, std::fabs(out[b * 2 * D + d] - mean));
      worst = std::fmax(worst, std::fabs(out[b * 2 * D + D + d] - total * scale));
      const double coef = (count > 0 ? grad_out[b * 2 * D + d] / count : 0.0) + grad_out[b * 2 * D + D + d] * scale;
      for (int64_t n = 0; n < N; ++n)
        worst = std::fmax(worst, std::fabs(grad_x[(b * N + n) * D + d] - mask[b * N + n] * coef));
    }
  }
  const hepgen::BuildInfo info = hepgen::build_info();
  // A CUDA entry point must answer (not_built, or a real status) without crashing.
  const hepgen::Device gpu{hepgen::DeviceKind::cuda, 0};
  hepgen::Status cs =
      hepgen::cuda::set_pool_forward(TensorView::dense(nullptr, hepgen::DType::f64, {0, N, D}, gpu),
                                     TensorView::dense(nullptr, hepgen::DType::f64, {0, N}, gpu), scale,
                                     TensorView::dense(nullptr, hepgen::DType::f64, {0, 2 * D}, gpu), nullptr);
  std::printf("hepgen %s: max error %.3g, cuda built %d, cuda call status '%s'\n", info.version, worst, int(info.cuda),
              hepgen::status_string(cs));
  return worst < 1e-12 ? 0 : 1;
}
