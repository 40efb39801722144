// The DCGAN's strided convolutions (kernel 4, stride 2, padding 1; NCHW, float32) as patch extraction
// (im2col) plus one oneDNN matrix product, split over the batch: each thread takes a chunk of samples,
// extracts their patches into its own buffer and runs one single-threaded product on it.
// Each kernel comes twice: in float32, and with a "Bf16" suffix, whose matrix products take bfloat16
// operands (rounded from float32 as they are laid out for the product) and sum in float32 (oneDNN's
// gemm_bf16bf16f32: twice the float32 rate or more on CPUs with AVX512_BF16 or AMX). Inputs, outputs
// and the sums are float32 either way.
//   ConvForward(x[N,C,H,W], w[O,C,4,4])        -> y[N,O,H/2,W/2]   (Conv2d forward)
//   ConvInputGrad(dy[N,O,h,w], w[O,C,4,4])     -> dx[N,C,2h,2w]    (Conv2d input gradient)
//   ConvWeightGrad(x[N,C,H,W], dy[N,O,H/2,W/2]) -> dw[O,C,4,4]     (Conv2d weight gradient)
// A transposed conv with weight (in, out, 4, 4) is ConvInputGrad; its gradients are ConvForward (input)
// and ConvWeightGrad (weight). conv.py wires them; tests/test_models.py checks them against MindSpore's.
#include "common.h"

namespace dcgan_kernels {
namespace {

const int KS = 4;  // kernel size; stride 2 and padding 1 are fixed too

typedef uint16_t bf16;  // bfloat16: the upper half of a float32

// float32 -> bfloat16, rounded to nearest even; a NaN stays a NaN (rounding could carry it into infinity).
inline bf16 to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (bf16)((bits >> 16) | 0x40u);
  return (bf16)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// An operand of the matrix products, from float32: itself, or rounded to bfloat16.
template <class T>
inline T operand(float value);
template <>
inline float operand<float>(float value) { return value; }
template <>
inline bf16 operand<bf16>(float value) { return to_bf16(value); }

// C[M,N] = A[M,K] B[K,N] + beta C (row-major, op() by trans flags), single-threaded on the caller's thread.
inline void gemm(char ta, char tb, dim_t M, dim_t N, dim_t K, const float *A, dim_t lda, const float *B, dim_t ldb,
                 float beta, float *C, dim_t ldc) {
  dnnl_sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(char ta, char tb, dim_t M, dim_t N, dim_t K, const bf16 *A, dim_t lda, const bf16 *B, dim_t ldb,
                 float beta, float *C, dim_t ldc) {
  dnnl_gemm_bf16bf16f32(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
}

// n float32 values as operands of type T: the same memory for float32, a converted copy in buf for bfloat16.
template <class T>
const T *as_operands(const float *a, dim_t n, std::vector<T> &buf);
template <>
const float *as_operands<float>(const float *a, dim_t, std::vector<float> &) { return a; }
template <>
VECTOR_CLONES const bf16 *as_operands<bf16>(const float *a, dim_t n, std::vector<bf16> &buf) {
  buf.resize(n);
  for (dim_t i = 0; i < n; ++i) buf[i] = to_bf16(a[i]);
  return buf.data();
}

// The four kernel columns kw read input columns 2*ow - 1 + kw of a row: with even[i] = x[2i] and
// odd[i] = x[2i + 1], kw = 1 and 2 are even[ow] and odd[ow], kw = 0 is odd[ow - 1] (0 at ow = 0:
// padding) and kw = 3 is even[ow + 1] (0 at the last ow). So each input row is split into its even
// and odd columns once, and the other two patch rows are shifted copies: no per-element tests or
// strided gathers, which on the small layers cost as much as the products.

// Patches of one sample x[C,H,W] as rows (c, kh, kw) of col, columns (oh, ow); row stride ld.
// Both are templates on the output width WO (0: any), so that the loops over a row of the small maps
// (2 to 32 wide) have constant bounds the compiler unrolls and vectorizes: with run-time bounds, the
// loop overhead of the 4-wide rows made col2im a fifth of the input gradient on the 4x4 maps.
template <int WO, class T>
void im2col_t(const float *x, int C, int H, int W, T *col, dim_t ld) {
  const int Ho = H / 2, Wo = WO > 0 ? WO : W / 2;
  W = 2 * Wo;
  for (int c = 0; c < C; ++c)
    for (int kh = 0; kh < KS; ++kh) {
      T *rows = col + (dim_t)(c * KS + kh) * KS * ld;  // the rows of kw = 0 .. 3, ld apart
      for (int oh = 0; oh < Ho; ++oh) {
        T *r0 = rows + (dim_t)oh * Wo, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        const int ih = oh * 2 - 1 + kh;
        if (ih < 0 || ih >= H) {
          for (T *r : {r0, r1, r2, r3}) std::memset(r, 0, sizeof(T) * Wo);  // 0 in both types
          continue;
        }
        const float *xr = x + ((dim_t)c * H + ih) * W;
        for (int ow = 0; ow < Wo; ++ow) {
          r1[ow] = operand<T>(xr[2 * ow]);
          r2[ow] = operand<T>(xr[2 * ow + 1]);
        }
        r0[0] = T(0);
        std::memcpy(r0 + 1, r2, sizeof(T) * (Wo - 1));
        std::memcpy(r3, r1 + 1, sizeof(T) * (Wo - 1));
        r3[Wo - 1] = T(0);
      }
    }
}

// The adjoint of im2col: x[C,H,W] = sum of each patch entry back where it came from. Each channel
// is summed into its even and odd columns apart (tmp: 2 x H x W/2 floats), where every sum is a
// contiguous vector loop, and then interleaved into x: strided adds, one element at a time, took as
// long as the matrix product on the small layers. Each x element gets its terms in (kh, kw) order,
// as a loop over the kernel would add them (and as MindSpore's own transposed convolution does: the
// tests compare bit for bit).
template <int WO>
void col2im_t(const float *col, dim_t ld, int C, int H, int W, float *x, float *tmp) {
  const int Ho = H / 2, Wo = WO > 0 ? WO : W / 2;
  W = 2 * Wo;
  float *even = tmp, *odd = tmp + (dim_t)H * Wo;
  for (int c = 0; c < C; ++c) {
    std::memset(tmp, 0, sizeof(float) * 2 * H * Wo);
    for (int kh = 0; kh < KS; ++kh) {
      const float *rows = col + (dim_t)(c * KS + kh) * KS * ld;
      for (int oh = 0; oh < Ho; ++oh) {
        const int ih = oh * 2 - 1 + kh;
        if (ih < 0 || ih >= H) continue;
        const float *r0 = rows + (dim_t)oh * Wo, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        float *e = even + (dim_t)ih * Wo, *o = odd + (dim_t)ih * Wo;
        for (int ow = 0; ow + 1 < Wo; ++ow) o[ow] += r0[ow + 1];  // kw = 0 reads odd[ow - 1]
        for (int ow = 0; ow < Wo; ++ow) e[ow] += r1[ow];
        for (int ow = 0; ow < Wo; ++ow) o[ow] += r2[ow];
        for (int ow = 1; ow < Wo; ++ow) e[ow] += r3[ow - 1];  // kw = 3 reads even[ow + 1]
      }
    }
    float *xc = x + (dim_t)c * H * W;
    for (dim_t i = 0; i < (dim_t)H * Wo; ++i) {
      xc[2 * i] = even[i];
      xc[2 * i + 1] = odd[i];
    }
  }
}

#define DISPATCH_ON_WIDTH(function, W, ...)      \
  switch ((W) / 2) {                              \
    case 2: return function<2>(__VA_ARGS__);      \
    case 4: return function<4>(__VA_ARGS__);      \
    case 8: return function<8>(__VA_ARGS__);      \
    case 16: return function<16>(__VA_ARGS__);    \
    case 32: return function<32>(__VA_ARGS__);    \
    default: return function<0>(__VA_ARGS__);     \
  }

// Copy per-sample maps a[n][O][P] of samples n0..n0+cnt to/from one matrix m[O][cnt*P].
template <class T>
void gather_any(const float *a, int n0, int cnt, int O, dim_t P, T *m) {
  for (int j = 0; j < cnt; ++j)
    for (int o = 0; o < O; ++o) {
      const float *from = a + ((dim_t)(n0 + j) * O + o) * P;
      T *to = m + o * cnt * P + j * P;
      for (dim_t i = 0; i < P; ++i) to[i] = operand<T>(from[i]);
    }
}

// Each of the three also compiled for AVX-512 (common.h), used where the CPU has it: the even/odd splits
// and the bfloat16 rounding were 128-bit loops, a sixth of a bf16 step.
template <class T>
AVX512_COPY void im2col_avx512(const float *x, int C, int H, int W, T *col, dim_t ld) {
  DISPATCH_ON_WIDTH(im2col_t, W, x, C, H, W, col, ld)
}
template <class T>
void im2col(const float *x, int C, int H, int W, T *col, dim_t ld) {
  if (has_avx512()) return im2col_avx512(x, C, H, W, col, ld);
  DISPATCH_ON_WIDTH(im2col_t, W, x, C, H, W, col, ld)
}
AVX512_COPY void col2im_avx512(const float *col, dim_t ld, int C, int H, int W, float *x, float *tmp) {
  DISPATCH_ON_WIDTH(col2im_t, W, col, ld, C, H, W, x, tmp)
}
void col2im(const float *col, dim_t ld, int C, int H, int W, float *x, float *tmp) {
  if (has_avx512()) return col2im_avx512(col, ld, C, H, W, x, tmp);
  DISPATCH_ON_WIDTH(col2im_t, W, col, ld, C, H, W, x, tmp)
}
template <class T>
AVX512_COPY void gather_avx512(const float *a, int n0, int cnt, int O, dim_t P, T *m) {
  gather_any(a, n0, cnt, O, P, m);
}
template <class T>
void gather(const float *a, int n0, int cnt, int O, dim_t P, T *m) {
  has_avx512() ? gather_avx512(a, n0, cnt, O, P, m) : gather_any(a, n0, cnt, O, P, m);
}

// The maps of samples n0..n0+cnt as one matrix [O][cnt*P] of operands T: in float32, one sample's own
// maps as they lie; else gathered (and converted) into buf.
template <class T>
const T *as_matrix(const float *a, int n0, int cnt, int O, dim_t P, T *buf) {
  if (cnt == 1 && sizeof(T) == sizeof(float)) return (const T *)(a + (dim_t)n0 * O * P);
  gather(a, n0, cnt, O, P, buf);
  return buf;
}

void scatter(const float *m, int n0, int cnt, int O, dim_t P, float *a) {
  for (int j = 0; j < cnt; ++j)
    for (int o = 0; o < O; ++o)
      std::memcpy(a + ((dim_t)(n0 + j) * O + o) * P, m + o * cnt * P + j * P, sizeof(float) * P);
}

// This thread's scratch buffer `which` with room for `size` values of T, kept between calls (a step
// calls these kernels dozens of times: allocating and faulting in fresh buffers each time cost
// more than the small layers' products).
template <class T>
T *scratch(int which, dim_t size) {
  thread_local std::vector<float> buffers[3];
  const dim_t floats = (size * (dim_t)sizeof(T) + sizeof(float) - 1) / sizeof(float);
  if ((dim_t)buffers[which].size() < floats) buffers[which].resize(floats);
  return (T *)buffers[which].data();
}

// One problem: batch N of x[C,H,W] against O filters; chunks of nb samples, so that each matrix
// product has at least ~512 columns even on the 4x4 feature maps (unless that would leave a core
// idle, as at batch 32 on the 4x4 maps), shared by `threads` threads.
struct Conv {
  int N, C, H, W, O;
  dim_t P, K;
  int nb, chunks, threads;
  Conv(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o) : N(n), C(c), H(h), W(w), O(o) {
    P = (dim_t)(H / 2) * (W / 2);
    K = (dim_t)C * KS * KS;
    const int cpus = available_cpus();
    nb = (int)std::min<dim_t>(N, std::max<dim_t>(1, (512 + P - 1) / P));
    nb = std::min(nb, (N + cpus - 1) / cpus);  // at least one chunk per core: small batches too
    chunks = (N + nb - 1) / nb;
    threads = std::min(cpus, chunks);
  }
  // Run body(thread, n0, cnt) on every chunk (its buffers: scratch(0..2), its thread's own). The chunks
  // go to the threads as they become free, or, with fixed_order, thread t takes chunks t, t + threads, ...
  // in order: then what a thread sums up is the same in every run, and so are the rounding errors.
  template <class F>
  void parallel(F body, bool fixed_order = false) const {
    std::atomic<int> next(0);
    const std::function<void(int)> work = [&](int t) {
      if (fixed_order) {
        for (int ch = t; ch < chunks; ch += threads) body(t, ch * nb, std::min(nb, N - ch * nb));
        return;
      }
      for (int ch = next++; ch < chunks; ch = next++) body(t, ch * nb, std::min(nb, N - ch * nb));
    };
    Pool::instance().run(threads, work);
  }
};

// T: the type of the products' operands, float (float32) or bf16.
template <class T>
void conv_forward(const float *x, const float *w, float *y, const Conv &p) {
  std::vector<T> w_buf;
  const T *wt = as_operands<T>(w, (dim_t)p.O * p.K, w_buf);
  p.parallel([&](int, int n0, int cnt) {
    const dim_t L = cnt * p.P;
    T *col = scratch<T>(0, p.K * L);
    for (int j = 0; j < cnt; ++j) im2col(x + (dim_t)(n0 + j) * p.C * p.H * p.W, p.C, p.H, p.W, col + j * p.P, L);
    if (cnt == 1) {  // one sample: the product can be written where it belongs
      gemm('N', 'N', p.O, L, p.K, wt, p.K, col, L, 0.f, y + (dim_t)n0 * p.O * p.P, L);
      return;
    }
    float *out = scratch<float>(1, (dim_t)p.O * L);
    gemm('N', 'N', p.O, L, p.K, wt, p.K, col, L, 0.f, out, L);
    scatter(out, n0, cnt, p.O, p.P, y);
  });
}

template <class T>
void conv_input_grad(const float *dy, const float *w, float *dx, const Conv &p) {
  std::vector<T> w_buf;
  const T *wt = as_operands<T>(w, (dim_t)p.O * p.K, w_buf);
  p.parallel([&](int, int n0, int cnt) {
    const dim_t L = cnt * p.P;
    float *col = scratch<float>(0, p.K * L);
    gemm('T', 'N', p.K, L, p.O, wt, p.K, as_matrix(dy, n0, cnt, p.O, p.P, scratch<T>(1, (dim_t)p.O * L)), L, 0.f,
         col, L);
    float *tmp = scratch<float>(2, (dim_t)p.H * p.W);
    for (int j = 0; j < cnt; ++j)
      col2im(col + j * p.P, L, p.C, p.H, p.W, dx + (dim_t)(n0 + j) * p.C * p.H * p.W, tmp);
  });
}

template <class T>
void conv_weight_grad(const float *x, const float *dy, float *dw, const Conv &p) {
  const dim_t size = (dim_t)p.O * p.K;
  // dw^T = col dy^T where the filters are few: oneDNN's product with 16-64 rows and a long sum ran up to 3x
  // slower than this one (benchmarks/bench_kernels.py); from 128 filters on, this one was the slower.
  const bool transposed = p.O <= 64 && p.O < p.K;
  std::vector<std::vector<float>> partial(p.threads, std::vector<float>(size, 0.f));
  p.parallel([&](int t, int n0, int cnt) {
    const dim_t L = cnt * p.P;
    T *col = scratch<T>(0, p.K * L);
    for (int j = 0; j < cnt; ++j) im2col(x + (dim_t)(n0 + j) * p.C * p.H * p.W, p.C, p.H, p.W, col + j * p.P, L);
    const T *dy_chunk = as_matrix(dy, n0, cnt, p.O, p.P, scratch<T>(1, (dim_t)p.O * L));
    if (transposed)
      gemm('N', 'T', p.K, p.O, L, col, L, dy_chunk, L, 1.f, partial[t].data(), p.O);
    else
      gemm('N', 'T', p.O, p.K, L, dy_chunk, L, col, L, 1.f, partial[t].data(), p.K);
  }, /*fixed_order=*/true);
  for (dim_t o = 0; o < p.O; ++o)
    for (dim_t k = 0; k < p.K; ++k) {
      const dim_t i = transposed ? k * p.O + o : o * p.K + k;
      float s = 0.f;
      for (int t = 0; t < p.threads; ++t) s += partial[t][i];
      dw[o * p.K + k] = s;
    }
}

// MindSpore passes inputs then the output; returns non-zero (MindSpore then raises) on a misuse.
bool valid(int nparam, int *ndims, const char **dtypes) {
  if (nparam != 3) return false;
  for (int i = 0; i < 3; ++i)
    if (ndims[i] != 4 || std::strcmp(dtypes[i], "float32") != 0) return false;
  return true;
}

}  // namespace
}  // namespace dcgan_kernels

using namespace dcgan_kernels;

namespace {

template <class T>
int conv_forward_kernel(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  if (!valid(nparam, ndims, dtypes)) return 1;
  const int64_t *x = shapes[0], *w = shapes[1];
  if (w[1] != x[1] || w[2] != KS || w[3] != KS || x[2] % 2 || x[3] % 2) return 2;
  conv_forward<T>((const float *)params[0], (const float *)params[1], (float *)params[2],
                  Conv(x[0], x[1], x[2], x[3], w[0]));
  return 0;
}

template <class T>
int conv_input_grad_kernel(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  if (!valid(nparam, ndims, dtypes)) return 1;
  const int64_t *dy = shapes[0], *w = shapes[1];
  if (w[0] != dy[1] || w[2] != KS || w[3] != KS) return 2;
  conv_input_grad<T>((const float *)params[0], (const float *)params[1], (float *)params[2],
                     Conv(dy[0], w[1], dy[2] * 2, dy[3] * 2, w[0]));
  return 0;
}

template <class T>
int conv_weight_grad_kernel(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  if (!valid(nparam, ndims, dtypes)) return 1;
  const int64_t *x = shapes[0], *dy = shapes[1];
  if (dy[0] != x[0] || dy[2] * 2 != x[2] || dy[3] * 2 != x[3]) return 2;
  conv_weight_grad<T>((const float *)params[0], (const float *)params[1], (float *)params[2],
                      Conv(x[0], x[1], x[2], x[3], dy[1]));
  return 0;
}

}  // namespace

AOT_KERNEL(ConvForward) { return conv_forward_kernel<float>(nparam, params, ndims, shapes, dtypes); }
AOT_KERNEL(ConvInputGrad) { return conv_input_grad_kernel<float>(nparam, params, ndims, shapes, dtypes); }
AOT_KERNEL(ConvWeightGrad) { return conv_weight_grad_kernel<float>(nparam, params, ndims, shapes, dtypes); }
AOT_KERNEL(ConvForwardBf16) { return conv_forward_kernel<bf16>(nparam, params, ndims, shapes, dtypes); }
AOT_KERNEL(ConvInputGradBf16) { return conv_input_grad_kernel<bf16>(nparam, params, ndims, shapes, dtypes); }
AOT_KERNEL(ConvWeightGradBf16) { return conv_weight_grad_kernel<bf16>(nparam, params, ndims, shapes, dtypes); }
