// LeakyReLU(alpha) in one pass each way: bit for bit MindSpore's ops on the form
// alpha * x + (1 - alpha) * relu(x) (a = alpha, b = 1 - alpha, float32, passed as ab[2]): forward
// a * x + b * relu(x); backward, as MindSpore's autodiff of that form adds its two terms,
// a * dy + (x > 0 ? b * dy : 0). MindSpore's kernels take four or five passes (Mul, ReLU, Mul, Add).
#include "common.h"

namespace dcgan_kernels {
namespace {

template <class F>
void elementwise(int64_t n, F body) {  // body(begin, end) over [0, n), in chunks, one per core
  const int64_t min_chunk = 1 << 16;   // below that, waking another thread costs more than it saves
  const int threads = (int)std::max<int64_t>(1, std::min<int64_t>(available_cpus(), n / min_chunk));
  const int64_t per = (n + threads - 1) / threads;
  Pool::instance().run(threads, [&](int t) { body(t * per, std::min(n, (t + 1) * per)); });
}

// The loops, on restrict pointers and local factors, so that the compiler vectorizes them (with the
// factors read through references and the select as a branch, the backward ran 15x slower).
void leaky_forward(const float *__restrict x, int64_t n, float a, float b, float *__restrict y) {
  for (int64_t i = 0; i < n; ++i) y[i] = leaky_value(x[i], a, b);
}

void leaky_backward(const float *__restrict x, const float *__restrict dy, int64_t n, float a, float b,
                    float *__restrict dx) {
  for (int64_t i = 0; i < n; ++i) dx[i] = leaky_grad(x[i], dy[i], a, b);
}

bool same_shape(int nparam, int *ndims, int64_t **shapes, const char **dtypes, int64_t *n) {
  *n = 1;
  for (int d = 0; d < ndims[0]; ++d) *n *= shapes[0][d];
  for (int i = 0; i < nparam; ++i) {
    if (std::strcmp(dtypes[i], "float32") != 0) return false;
    if (i == 1 || ndims[i] != ndims[0]) continue;  // params[1] is ab
    for (int d = 0; d < ndims[0]; ++d)
      if (shapes[i][d] != shapes[0][d]) return false;
  }
  return true;
}

}  // namespace
}  // namespace dcgan_kernels

using namespace dcgan_kernels;

// LeakyForward(x, ab) -> y
AOT_KERNEL(LeakyForward) {
  int64_t n;
  if (nparam != 3 || !same_shape(nparam, ndims, shapes, dtypes, &n)) return 1;
  const float *x = (const float *)params[0], *ab = (const float *)params[1];
  float *y = (float *)params[2];
  const float a = ab[0], b = ab[1];
  elementwise(n, [=](int64_t begin, int64_t end) { leaky_forward(x + begin, end - begin, a, b, y + begin); });
  return 0;
}

// LeakyBackward(x, ab, dy) -> dx
AOT_KERNEL(LeakyBackward) {
  int64_t n;
  if (nparam != 4 || !same_shape(nparam, ndims, shapes, dtypes, &n)) return 1;
  const float *x = (const float *)params[0], *ab = (const float *)params[1], *dy = (const float *)params[2];
  float *dx = (float *)params[3];
  const float a = ab[0], b = ab[1];
  elementwise(n, [=](int64_t begin, int64_t end) { leaky_backward(x + begin, dy + begin, end - begin, a, b, dx + begin); });
  return 0;
}

