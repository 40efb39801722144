// Shared by the kernels of dcgan_ms/kernels: oneDNN's matrix products, the thread pool, the CPU count,
// the activations' element-wise formulas and the vector clones. All inline: the kernels are compiled
// into one library, where every source shares the one pool.
#pragma once
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
// The same with bfloat16 operands (uint16_t: the upper halves of float32s) and float32 sums and result.
extern "C" int dnnl_gemm_bf16bf16f32(char transa, char transb, dim_t M, dim_t N, dim_t K, float alpha,
                                     const uint16_t *A, dim_t lda, const uint16_t *B, dim_t ldb, float beta, float *C,
                                     dim_t ldc);

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))  // picked at load time by the CPU
// For templates, which target_clones cannot take: a function compiled for AVX-512 with every call in it
// inlined (so the templates it calls are vectorized with 512-bit registers too), called where the CPU
// has AVX-512 (has_avx512). Same operations, same order: the results are the same bits.
#define AVX512_COPY __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"), flatten))
inline bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return yes;
}
#else
#define VECTOR_CLONES
#define AVX512_COPY
inline bool has_avx512() { return false; }
#endif

namespace dcgan_kernels {

inline int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
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

// LeakyReLU(alpha) as alpha * x + (1 - alpha) * relu(x), a = alpha and b = 1 - alpha in float32, one element
// each way, the select as a bit mask: the rounding of MindSpore's separate Mul and Add kernels.
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

// MindSpore's "aot" calling convention: inputs, then outputs, in params; non-zero return: MindSpore raises.
#define AOT_KERNEL(name) \
  extern "C" int name(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *)

}  // namespace dcgan_kernels
