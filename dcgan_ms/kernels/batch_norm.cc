// Batch normalization in training mode followed by its activation, ReLU (alpha = 0) or LeakyReLU(alpha) in
// leaky_value's form (common.h), for layers.BatchNormActivation. MindSpore runs these as two or three kernels
// each way (BatchNorm, the activation; their gradients), and its BatchNorm is oneDNN's "ncsp" code,
// whose sums are chains of dependent additions, slow on small maps. Here one kernel each
// way, bit for bit what MindSpore gives: the sums are added in the very order oneDNN adds them (as
// MindSpore 2.10's libdnnl was compiled), but rows are summed side by side instead of one after another.
//   forward:  per channel, the mean, then the mean of (x - mean)^2, each over the N rows of H*W values:
//             every row in 4 lanes (element i into lane i % 4, each lane from 0 in order), the row's
//             lanes then added in order to the channel's total; total / (N*H*W). Then
//             y = act(gamma / sqrtf(var + eps) * (x - mean) + beta), and the moving statistics as
//             MindSpore updates them (moving * (1 - momentum) + batch * momentum, the variance's with
//             the unbiased factor N*H*W / (N*H*W - 1)).
//   backward: dh = the activation's gradient (h recomputed from x); per channel, sum(dh) and
//             sum((x - mean) * dh), every row one chain from 0, the rows added in order; then
//             dx = (dh - (dbeta / NHW + (x - mean) * dgamma * istd / NHW)) * (gamma * istd).
// tests/test_models.py compares all of it with MindSpore's nn.BatchNorm2d and activations bit for bit.
#include "common.h"

namespace dcgan_kernels {
namespace {

typedef float v4 __attribute__((vector_size(16)));  // oneDNN's four lanes (SSE), on any CPU

struct BatchNormShape {
  int64_t N, C, SP;                          // SP: values per row (H * W)
  const float *row(const float *base, int64_t n, int64_t c) const { return base + (n * C + c) * SP; }
};

// Sum of f(x) over channel c in oneDNN's forward order (see above); R rows at a time, side by side.
template <int R, class F>
void lanes_rows(const float *x, const BatchNormShape &s, int64_t c, int64_t n0, F f, float &total) {
  v4 acc[R] = {};
  const float *rows[R];
  for (int r = 0; r < R; ++r) rows[r] = s.row(x, n0 + r, c);
  for (int64_t i = 0; i < s.SP; i += 4)
    for (int r = 0; r < R; ++r) {
      v4 v;
      std::memcpy(&v, rows[r] + i, sizeof v);
      acc[r] += f(v);
    }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < 4; ++k) total += acc[r][k];
}

template <class F>
float lanes_sum(const float *x, const BatchNormShape &s, int64_t c, F f) {
  float total = 0.f;
  int64_t n = 0;
  for (; n + 8 <= s.N; n += 8) lanes_rows<8>(x, s, c, n, f, total);
  for (; n < s.N; ++n) lanes_rows<1>(x, s, c, n, f, total);
  return total;
}

// sum(dh) and sum((x - mean) * dh) over channel c in oneDNN's backward order (see above).
template <int R>
void chains_rows(const float *x, const float *dh, const BatchNormShape &s, int64_t c, int64_t n0, float mean,
                 float &sum_dh, float &sum_xdh) {
  float a[R] = {}, b[R] = {};
  const float *xr[R], *dr[R];
  for (int r = 0; r < R; ++r) xr[r] = s.row(x, n0 + r, c), dr[r] = s.row(dh, n0 + r, c);
  for (int64_t i = 0; i < s.SP; ++i)
    for (int r = 0; r < R; ++r) {
      const float d = dr[r][i], centred = xr[r][i] - mean, product = centred * d;
      b[r] += product;
      a[r] += d;
    }
  for (int r = 0; r < R; ++r) sum_xdh += b[r], sum_dh += a[r];
}

void chains_sum(const float *x, const float *dh, const BatchNormShape &s, int64_t c, float mean, float &sum_dh,
                float &sum_xdh) {
  sum_dh = sum_xdh = 0.f;
  int64_t n = 0;
  for (; n + 4 <= s.N; n += 4) chains_rows<4>(x, dh, s, c, n, mean, sum_dh, sum_xdh);
  for (; n < s.N; ++n) chains_rows<1>(x, dh, s, c, n, mean, sum_dh, sum_xdh);
}

struct Normalized {  // y = act(scale * (x - mean) + shift), alpha = a, 1 - alpha = b (a = 0: ReLU)
  float mean, scale, shift, a, b;
  float pre(float x) const {
    const float centred = x - mean, scaled = scale * centred;
    return scaled + shift;
  }
};

// The element-wise passes over one channel: `rows` rows of n values, `stride` apart (the loops over a
// row vectorize; AVX2 where the CPU has it, which matters for the division in input_grad).
VECTOR_CLONES void normalize(const float *__restrict x, int64_t rows, int64_t stride, int64_t n, Normalized k,
                             float *__restrict y) {
  for (int64_t r = 0; r < rows; ++r, x += stride, y += stride) {
    if (k.a == 0.f) {
      for (int64_t i = 0; i < n; ++i) {
        const float h = k.pre(x[i]);
        y[i] = h > 0.f ? h : 0.f;
      }
      continue;
    }
    for (int64_t i = 0; i < n; ++i) y[i] = leaky_value(k.pre(x[i]), k.a, k.b);
  }
}

VECTOR_CLONES void activation_grad(const float *__restrict x, const float *__restrict dy, int64_t rows,
                                   int64_t stride, int64_t n, Normalized k, float *__restrict dh) {
  for (int64_t r = 0; r < rows; ++r, x += stride, dy += stride, dh += stride) {
    if (k.a == 0.f) {  // ReLU's gradient: dy where h > 0, else +0
      for (int64_t i = 0; i < n; ++i) dh[i] = masked(dy[i], k.pre(x[i]) > 0.f);
      continue;
    }
    for (int64_t i = 0; i < n; ++i) dh[i] = leaky_grad(k.pre(x[i]), dy[i], k.a, k.b);
  }
}

// dx from dh (in place) once dgamma and dbeta are known; the division is oneDNN's, not a multiplication.
VECTOR_CLONES void input_grad(const float *__restrict x, int64_t rows, int64_t stride, int64_t n, float mean,
                              float dg, float istd, float count, float shift, float factor, float *__restrict d) {
  for (int64_t r = 0; r < rows; ++r, x += stride, d += stride)
    for (int64_t i = 0; i < n; ++i) {
      const float centred = x[i] - mean, t1 = centred * dg, t2 = t1 * istd, t3 = t2 / count;
      const float sub = shift + t3, v = d[i] - sub;
      d[i] = v * factor;
    }
}

// Channels split over the cores (each channel's sums stay on one thread, in the order above).
template <class F>
void over_channels(const BatchNormShape &s, F body) {
  const int64_t min_values = 1 << 15;  // below that, waking another thread costs more than it saves
  const int threads = (int)std::max<int64_t>(1, std::min<int64_t>({(int64_t)available_cpus(), s.C,
                                                                    s.N * s.C * s.SP / min_values}));
  const int64_t per = (s.C + threads - 1) / threads;
  Pool::instance().run(threads, [&](int t) {
    for (int64_t c = t * per; c < std::min(s.C, (t + 1) * per); ++c) body(c);
  });
}

bool batch_norm_args(int nparam, int expected, int *ndims, int64_t **shapes, const char **dtypes,
                     BatchNormShape *s) {
  if (nparam != expected || ndims[0] != 4) return false;
  for (int i = 0; i < nparam; ++i)
    if (std::strcmp(dtypes[i], "float32") != 0) return false;
  *s = BatchNormShape{shapes[0][0], shapes[0][1], shapes[0][2] * shapes[0][3]};
  return s->SP % 4 == 0 && s->N * s->SP > 1;
}

}  // namespace
}  // namespace dcgan_kernels

using namespace dcgan_kernels;

// BatchNormForward(x, gamma, beta, moving_mean, moving_var, params) -> (y, batch_stats, new_moving_mean,
// new_moving_var); batch_stats[2][C]: the batch's mean and variance, for the backward;
// params: float32 [eps, momentum, a, b] (a = alpha, b = 1 - alpha; a = 0: ReLU).
AOT_KERNEL(BatchNormForward) {
  BatchNormShape s;
  if (!batch_norm_args(nparam, 10, ndims, shapes, dtypes, &s)) return 1;
  const float *x = (const float *)params[0], *gamma = (const float *)params[1], *beta = (const float *)params[2];
  const float *moving_mean = (const float *)params[3], *moving_var = (const float *)params[4];
  const float *p = (const float *)params[5];
  float *y = (float *)params[6], *mean = (float *)params[7], *var = mean + s.C;
  float *new_mean = (float *)params[8], *new_var = (float *)params[9];
  const float eps = p[0], momentum = p[1], count = (float)(s.N * s.SP);
  const float unbiased = (float)((double)(s.N * s.SP) / (double)(s.N * s.SP - 1));
  over_channels(s, [&](int64_t c) {
    float m = 0.f, v = 0.f;
    m += lanes_sum(x, s, c, [](v4 a) { return a; });
    m /= count;
    const v4 mv = {m, m, m, m};
    v += lanes_sum(x, s, c, [mv](v4 a) { const v4 d = a - mv; return d * d; });
    v /= count;
    mean[c] = m, var[c] = v;
    const float keep = 1.f - momentum, old_m = moving_mean[c] * keep, old_v = moving_var[c] * keep;
    const float batch_m = m * momentum, corrected = v * unbiased, batch_v = corrected * momentum;
    new_mean[c] = old_m + batch_m, new_var[c] = old_v + batch_v;
    const float std_dev = sqrtf(v + eps);
    const Normalized k{m, gamma[c] / std_dev, beta[c], p[2], p[3]};
    normalize(s.row(x, 0, c), s.N, s.C * s.SP, s.SP, k, (float *)s.row(y, 0, c));
  });
  return 0;
}

// BatchNormBackward(x, gamma, beta, batch_stats, dy, params) -> (dx, dgamma, dbeta), batch_stats as the
// forward gave them.
AOT_KERNEL(BatchNormBackward) {
  BatchNormShape s;
  if (!batch_norm_args(nparam, 9, ndims, shapes, dtypes, &s)) return 1;
  const float *x = (const float *)params[0], *gamma = (const float *)params[1], *beta = (const float *)params[2];
  const float *mean = (const float *)params[3], *var = mean + s.C, *dy = (const float *)params[4];
  const float *p = (const float *)params[5];
  float *dx = (float *)params[6], *dgamma = (float *)params[7], *dbeta = (float *)params[8];
  const float eps = p[0], count = (float)(s.N * s.SP);
  over_channels(s, [&](int64_t c) {
    const float m = mean[c], std_dev = sqrtf(var[c] + eps), istd = 1.0f / std_dev;
    const Normalized k{m, gamma[c] / std_dev, beta[c], p[2], p[3]};
    activation_grad(s.row(x, 0, c), s.row(dy, 0, c), s.N, s.C * s.SP, s.SP, k, (float *)s.row(dx, 0, c));  // dh, in dx
    float sum_dh, sum_xdh;
    chains_sum(x, dx, s, c, m, sum_dh, sum_xdh);
    float dg = 0.f, db = 0.f;
    dg += sum_xdh;
    dg *= istd;
    db += sum_dh;
    dgamma[c] = dg, dbeta[c] = db;
    const float shift = db / count, factor = gamma[c] * istd;
    input_grad(s.row(x, 0, c), s.N, s.C * s.SP, s.SP, m, dg, istd, count, shift, factor, (float *)s.row(dx, 0, c));
  });
  return 0;
}
