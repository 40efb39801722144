// The DCGAN's strided convolutions (kernel 4, stride 2, padding 1; NCHW, float32) for MindSpore's
// CPU backend, as "aot" custom operators: patch extraction (im2col) plus one matrix product, done
// in one place. MindSpore's own CPU kernels for these layers take 1.1-1.5x the time (forward + backward).
//
// Three kernels cover the Discriminator's Conv2d and the Generator's Conv2dTranspose layers:
//   ConvForward(x[N,C,H,W], w[O,C,4,4])        -> y[N,O,H/2,W/2]   (Conv2d forward)
//   ConvInputGrad(dy[N,O,h,w], w[O,C,4,4])     -> dx[N,C,2h,2w]    (Conv2d input gradient)
//   ConvWeightGrad(x[N,C,H,W], dy[N,O,H/2,W/2]) -> dw[O,C,4,4]     (Conv2d weight gradient)
// A transposed conv with weight (in, out, 4, 4) is ConvInputGrad; its gradients are ConvForward
// (input) and ConvWeightGrad (weight). dcgan_ms/cpu_conv.py builds this file and wires the
// gradients; tests/test_models.py checks all of it against MindSpore's nn.Conv2d(Transpose).
//
// The matrix products call oneDNN's dnnl_sgemm from the libdnnl that ships inside MindSpore.
// Work is split over the batch: each thread takes a chunk of samples, extracts their patches
// into its own buffer and runs one single-threaded product on it.
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

typedef int64_t dim_t;
extern "C" int dnnl_sgemm(char transa, char transb, dim_t M, dim_t N, dim_t K, float alpha, const float *A,
                          dim_t lda, const float *B, dim_t ldb, float beta, float *C, dim_t ldc);

namespace {

const int KS = 4;  // kernel size; stride 2 and padding 1 are fixed too

// The four kernel columns kw read input columns 2*ow - 1 + kw of a row: with even[i] = x[2i] and
// odd[i] = x[2i + 1], kw = 1 and 2 are even[ow] and odd[ow], kw = 0 is odd[ow - 1] (0 at ow = 0:
// padding) and kw = 3 is even[ow + 1] (0 at the last ow). So each input row is split into its even
// and odd columns once, and the other two patch rows are shifted copies: no per-element tests or
// strided gathers, which on the small layers cost as much as the products.

// Patches of one sample x[C,H,W] as rows (c, kh, kw) of col, columns (oh, ow); row stride ld.
// Both are templates on the output width WO (0: any), so that the loops over a row of the small maps
// (2 to 32 wide) have constant bounds the compiler unrolls and vectorizes: with run-time bounds, the
// loop overhead of the 4-wide rows made col2im a fifth of the input gradient on the 4x4 maps.
template <int WO>
void im2col_t(const float *x, int C, int H, int W, float *col, dim_t ld) {
  const int Ho = H / 2, Wo = WO > 0 ? WO : W / 2;
  W = 2 * Wo;
  for (int c = 0; c < C; ++c)
    for (int kh = 0; kh < KS; ++kh) {
      float *rows = col + (dim_t)(c * KS + kh) * KS * ld;  // the rows of kw = 0 .. 3, ld apart
      for (int oh = 0; oh < Ho; ++oh) {
        float *r0 = rows + (dim_t)oh * Wo, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        const int ih = oh * 2 - 1 + kh;
        if (ih < 0 || ih >= H) {
          for (float *r : {r0, r1, r2, r3}) std::memset(r, 0, sizeof(float) * Wo);
          continue;
        }
        const float *xr = x + ((dim_t)c * H + ih) * W;
        for (int ow = 0; ow < Wo; ++ow) {
          r1[ow] = xr[2 * ow];
          r2[ow] = xr[2 * ow + 1];
        }
        r0[0] = 0.f;
        std::memcpy(r0 + 1, r2, sizeof(float) * (Wo - 1));
        std::memcpy(r3, r1 + 1, sizeof(float) * (Wo - 1));
        r3[Wo - 1] = 0.f;
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

void im2col(const float *x, int C, int H, int W, float *col, dim_t ld) {
  DISPATCH_ON_WIDTH(im2col_t, W, x, C, H, W, col, ld)
}

void col2im(const float *col, dim_t ld, int C, int H, int W, float *x, float *tmp) {
  DISPATCH_ON_WIDTH(col2im_t, W, col, ld, C, H, W, x, tmp)
}

// Copy per-sample maps a[n][O][P] of samples n0..n0+cnt to/from one matrix m[O][cnt*P].
void gather(const float *a, int n0, int cnt, int O, dim_t P, float *m) {
  for (int j = 0; j < cnt; ++j)
    for (int o = 0; o < O; ++o)
      std::memcpy(m + o * cnt * P + j * P, a + ((dim_t)(n0 + j) * O + o) * P, sizeof(float) * P);
}

// The maps of samples n0..n0+cnt as one matrix [O][cnt*P]: one sample's own maps as they lie, more
// gathered into buf.
const float *as_matrix(const float *a, int n0, int cnt, int O, dim_t P, float *buf) {
  if (cnt == 1) return a + (dim_t)n0 * O * P;
  gather(a, n0, cnt, O, P, buf);
  return buf;
}

void scatter(const float *m, int n0, int cnt, int O, dim_t P, float *a) {
  for (int j = 0; j < cnt; ++j)
    for (int o = 0; o < O; ++o)
      std::memcpy(a + ((dim_t)(n0 + j) * O + o) * P, m + o * cnt * P + j * P, sizeof(float) * P);
}

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// This thread's scratch buffer `which` with room for `size` floats, kept between calls (a step
// calls these kernels dozens of times: allocating and faulting in fresh buffers each time cost
// more than the small layers' products).
float *scratch(int which, dim_t size) {
  thread_local std::vector<float> buffers[3];
  if ((dim_t)buffers[which].size() < size) buffers[which].resize(size);
  return buffers[which].data();
}

// Worker threads started once and kept, waiting on a condition variable between calls (no spinning,
// which would take the cores from MindSpore's own kernels): starting threads for every call cost
// more than the small layers' products.
class Pool {
 public:
  static Pool &instance() {
    static Pool pool(available_cpus() - 1);
    return pool;
  }
  // Run work(0) .. work(threads - 1), work(0) on the calling thread; return when all are done.
  void run(int threads, const std::function<void(int)> &work) {
    threads = std::min<int>(threads, (int)workers_.size() + 1);
    if (threads <= 1) return work(0);
    std::unique_lock<std::mutex> lock(mutex_);
    task_ = &work;
    active_ = threads;
    pending_ = threads - 1;
    ++generation_;
    lock.unlock();
    wake_.notify_all();
    work(0);
    lock.lock();
    done_.wait(lock, [&] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  explicit Pool(int extra) {
    for (int i = 0; i < extra; ++i) workers_.emplace_back([this, i] { loop(i + 1); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto &w : workers_) w.join();
  }
  void loop(int id) {
    long seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (id >= active_) continue;
      const std::function<void(int)> *work = task_;
      lock.unlock();
      (*work)(id);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)> *task_ = nullptr;
  int active_ = 0, pending_ = 0;
  long generation_ = 0;
  bool stop_ = false;
};

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
  // Run body(thread, n0, cnt, col, mat) on every chunk; each thread has its own patch buffer col
  // (K x nb*P) and map buffer mat (O x nb*P). The chunks go to the threads as they become free, or,
  // with fixed_order, thread t takes chunks t, t + threads, ... in order: then what a thread sums up
  // is the same in every run, and so are the rounding errors (resumed runs rely on it).
  template <class F>
  void parallel(F body, bool fixed_order = false) const {
    std::atomic<int> next(0);
    const std::function<void(int)> work = [&](int t) {
      float *col = scratch(0, K * nb * P), *mat = scratch(1, (dim_t)O * nb * P);
      if (fixed_order) {
        for (int ch = t; ch < chunks; ch += threads) body(t, ch * nb, std::min(nb, N - ch * nb), col, mat);
        return;
      }
      for (int ch = next++; ch < chunks; ch = next++) body(t, ch * nb, std::min(nb, N - ch * nb), col, mat);
    };
    Pool::instance().run(threads, work);
  }
};

void conv_forward(const float *x, const float *w, float *y, const Conv &p) {
  p.parallel([&](int, int n0, int cnt, float *col, float *out) {
    const dim_t L = cnt * p.P;
    for (int j = 0; j < cnt; ++j) im2col(x + (dim_t)(n0 + j) * p.C * p.H * p.W, p.C, p.H, p.W, col + j * p.P, L);
    if (cnt == 1) {  // one sample: the product can be written where it belongs
      dnnl_sgemm('N', 'N', p.O, L, p.K, 1.f, w, p.K, col, L, 0.f, y + (dim_t)n0 * p.O * p.P, L);
      return;
    }
    dnnl_sgemm('N', 'N', p.O, L, p.K, 1.f, w, p.K, col, L, 0.f, out, L);
    scatter(out, n0, cnt, p.O, p.P, y);
  });
}

void conv_input_grad(const float *dy, const float *w, float *dx, const Conv &p) {
  p.parallel([&](int, int n0, int cnt, float *col, float *dyc) {
    const dim_t L = cnt * p.P;
    dnnl_sgemm('T', 'N', p.K, L, p.O, 1.f, w, p.K, as_matrix(dy, n0, cnt, p.O, p.P, dyc), L, 0.f, col, L);
    float *tmp = scratch(2, (dim_t)p.H * p.W);
    for (int j = 0; j < cnt; ++j)
      col2im(col + j * p.P, L, p.C, p.H, p.W, dx + (dim_t)(n0 + j) * p.C * p.H * p.W, tmp);
  });
}

void conv_weight_grad(const float *x, const float *dy, float *dw, const Conv &p) {
  const dim_t size = (dim_t)p.O * p.K;
  std::vector<std::vector<float>> partial(p.threads, std::vector<float>(size, 0.f));
  p.parallel([&](int t, int n0, int cnt, float *col, float *dyc) {
    const dim_t L = cnt * p.P;
    for (int j = 0; j < cnt; ++j) im2col(x + (dim_t)(n0 + j) * p.C * p.H * p.W, p.C, p.H, p.W, col + j * p.P, L);
    dnnl_sgemm('N', 'T', p.O, p.K, L, 1.f, as_matrix(dy, n0, cnt, p.O, p.P, dyc), L, col, L, 1.f, partial[t].data(),
               p.K);
  }, /*fixed_order=*/true);
  for (dim_t i = 0; i < size; ++i) {
    float s = 0.f;
    for (int t = 0; t < p.threads; ++t) s += partial[t][i];
    dw[i] = s;
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

extern "C" int ConvForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                           void *) {
  if (!valid(nparam, ndims, dtypes)) return 1;
  const int64_t *x = shapes[0], *w = shapes[1];
  if (w[1] != x[1] || w[2] != KS || w[3] != KS || x[2] % 2 || x[3] % 2) return 2;
  conv_forward((const float *)params[0], (const float *)params[1], (float *)params[2], Conv(x[0], x[1], x[2], x[3], w[0]));
  return 0;
}

extern "C" int ConvInputGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                             void *) {
  if (!valid(nparam, ndims, dtypes)) return 1;
  const int64_t *dy = shapes[0], *w = shapes[1];
  if (w[0] != dy[1] || w[2] != KS || w[3] != KS) return 2;
  conv_input_grad((const float *)params[0], (const float *)params[1], (float *)params[2],
                  Conv(dy[0], w[1], dy[2] * 2, dy[3] * 2, w[0]));
  return 0;
}

extern "C" int ConvWeightGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                              void *) {
  if (!valid(nparam, ndims, dtypes)) return 1;
  const int64_t *x = shapes[0], *dy = shapes[1];
  if (dy[0] != x[0] || dy[2] * 2 != x[2] || dy[3] * 2 != x[3]) return 2;
  conv_weight_grad((const float *)params[0], (const float *)params[1], (float *)params[2],
                   Conv(x[0], x[1], x[2], x[3], dy[1]));
  return 0;
}

// LeakyReLU(alpha) in one pass each way, for models.LeakyReLU on CPU. The result is bit for bit that of
// MindSpore's ops on the form alpha * x + (1 - alpha) * relu(x) (a = alpha, b = 1 - alpha, both
// float32, passed as ab[2]): forward a * x + b * relu(x); backward, as MindSpore's autodiff of that
// form adds its two terms, a * dy + (x > 0 ? b * dy : 0). Four or five passes over the tensor for
// MindSpore's kernels (Mul, ReLU, Mul, Add; Mul, Mul, ReluGrad, AddN), one here, split over the cores.
namespace {

template <class F>
void elementwise(int64_t n, F body) {  // body(begin, end) over [0, n), in chunks, one per core
  const int64_t min_chunk = 1 << 16;   // below that, waking another thread costs more than it saves
  const int threads = (int)std::max<int64_t>(1, std::min<int64_t>(available_cpus(), n / min_chunk));
  const int64_t per = (n + threads - 1) / threads;
  Pool::instance().run(threads, [&](int t) { body(t * per, std::min(n, (t + 1) * per)); });
}

// One element each way (also for the BatchNorm kernels below), the select as a bit mask.
inline float leaky_value(float x, float a, float b) {
  const float relu = x > 0.f ? x : 0.f;
  const float left = a * x, right = b * relu;  // two roundings, then the sum: no fused multiply-add
  return left + right;
}

inline float masked(float value, bool keep) {  // value where keep, else +0, without a branch
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  bits &= -(uint32_t)keep;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline float leaky_grad(float x, float dy, float a, float b) {
  const float left = a * dy, right = masked(b * dy, x > 0.f);
  return left + right;
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

// LeakyForward(x, ab) -> y
extern "C" int LeakyForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                            void *) {
  int64_t n;
  if (nparam != 3 || !same_shape(nparam, ndims, shapes, dtypes, &n)) return 1;
  const float *x = (const float *)params[0], *ab = (const float *)params[1];
  float *y = (float *)params[2];
  const float a = ab[0], b = ab[1];
  elementwise(n, [=](int64_t begin, int64_t end) { leaky_forward(x + begin, end - begin, a, b, y + begin); });
  return 0;
}

// LeakyBackward(x, ab, dy) -> dx
extern "C" int LeakyBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                             void *) {
  int64_t n;
  if (nparam != 4 || !same_shape(nparam, ndims, shapes, dtypes, &n)) return 1;
  const float *x = (const float *)params[0], *ab = (const float *)params[1], *dy = (const float *)params[2];
  float *dx = (float *)params[3];
  const float a = ab[0], b = ab[1];
  elementwise(n, [=](int64_t begin, int64_t end) { leaky_backward(x + begin, dy + begin, end - begin, a, b, dx + begin); });
  return 0;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))  // picked at load time by the CPU
#else
#define VECTOR_CLONES
#endif

// Batch normalization in training mode followed by its activation, ReLU (alpha = 0) or LeakyReLU(alpha) in
// the form above, for models.BatchNormActivation on CPU. MindSpore runs these as two or three kernels
// each way (BatchNorm, the activation; their gradients), and its BatchNorm is oneDNN's "ncsp" code,
// whose sums are chains of dependent additions: about a sixth of a quickstart step. Here one kernel each
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

// BatchNormForward(x, gamma, beta, moving_mean, moving_var, params) -> (y, mean, var, new_moving_mean,
// new_moving_var); params: float32 [eps, momentum, a, b] (a = alpha, b = 1 - alpha; a = 0: ReLU).
extern "C" int BatchNormForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *, void *) {
  BatchNormShape s;
  if (!batch_norm_args(nparam, 11, ndims, shapes, dtypes, &s)) return 1;
  const float *x = (const float *)params[0], *gamma = (const float *)params[1], *beta = (const float *)params[2];
  const float *moving_mean = (const float *)params[3], *moving_var = (const float *)params[4];
  const float *p = (const float *)params[5];
  float *y = (float *)params[6], *mean = (float *)params[7], *var = (float *)params[8];
  float *new_mean = (float *)params[9], *new_var = (float *)params[10];
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

// BatchNormBackward(x, gamma, beta, mean, var, dy, params) -> (dx, dgamma, dbeta), mean and var as the
// forward gave them.
extern "C" int BatchNormBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *, void *) {
  BatchNormShape s;
  if (!batch_norm_args(nparam, 10, ndims, shapes, dtypes, &s)) return 1;
  const float *x = (const float *)params[0], *gamma = (const float *)params[1], *beta = (const float *)params[2];
  const float *mean = (const float *)params[3], *var = (const float *)params[4], *dy = (const float *)params[5];
  const float *p = (const float *)params[6];
  float *dx = (float *)params[7], *dgamma = (float *)params[8], *dbeta = (float *)params[9];
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

// Standard normal numbers for the training loop's noise (z and instance noise), which NumPy draws at
// about 10 ns a number: 1.2 M of them (three batches of instance noise at batch 32) took a tenth of
// a quickstart step. Element i of the stream (key0, key1) is the normal quantile of a uniform made
// from a hash of (key, i), so the numbers are a pure function of the key and the position (the
// loop derives the key from seed, device and step; a resumed run draws the same numbers). The
// quantile is Acklam's rational approximation (relative error below 1.2e-9 in double precision;
// computed here in float32): a rational function in the centre, which the compiler vectorizes, and
// sqrt(-2 log p) in the two tails (p < 0.02425 or p > 0.97575), done in a second, scalar pass.
namespace {

inline uint32_t mix32(uint32_t x) {  // a 32-bit integer hash (Chris Wellons' "lowbias32")
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

inline float uniform(uint32_t key0, uint32_t key1, uint32_t i) {  // in (0, 1), 23 bits, never 0 or 1
  const uint32_t h = mix32(mix32(i ^ key0) + key1);
  return ((float)(int32_t)(h >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

const float P_LOW = 0.02425f;

inline float central_quantile(float p) {
  const float a[] = {-3.969683028665376e+01f, 2.209460984245205e+02f, -2.759285104469687e+02f,
                     1.383577518672690e+02f, -3.066479806614716e+01f, 2.506628277459239e+00f};
  const float b[] = {-5.447609879822406e+01f, 1.615858368580409e+02f, -1.556989798598866e+02f,
                     6.680131188771972e+01f, -1.328068155288572e+01f};
  const float q = p - 0.5f, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0f);
}

inline float tail_quantile(float p) {  // p < P_LOW; the upper tail is -tail_quantile(1 - p)
  const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00};
  const double q = std::sqrt(-2.0 * std::log((double)p));
  return (float)((((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                 ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0));
}

}  // namespace

extern "C" VECTOR_CLONES void StandardNormal(float *out, int64_t n, uint32_t key0, uint32_t key1) {
  const int64_t CHUNK = 1024;
  float p[CHUNK];
  for (int64_t start = 0; start < n; start += CHUNK) {
    const int64_t m = std::min(CHUNK, n - start);
    float *o = out + start;
    for (int64_t j = 0; j < m; ++j) p[j] = uniform(key0, key1, (uint32_t)(start + j));
    for (int64_t j = 0; j < m; ++j) o[j] = central_quantile(p[j]);
    for (int64_t j = 0; j < m; ++j) {
      if (p[j] < P_LOW) o[j] = tail_quantile(p[j]);
      else if (p[j] > 1.0f - P_LOW) o[j] = -tail_quantile(1.0f - p[j]);
    }
  }
}
