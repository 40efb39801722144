// Standard normal numbers for the training loop's noise (z and instance noise), three times as fast as NumPy's
// generator. Element i of the stream (key0, key1) is the normal quantile of a uniform made
// from a hash of (key, i), so the numbers are a pure function of the key and the position (the
// loop derives the key from seed, device and step; a resumed run draws the same numbers). The
// quantile is Acklam's rational approximation (relative error below 1.2e-9 in double precision;
// computed here in float32): a rational function in the centre, which the compiler vectorizes, and
// sqrt(-2 log p) in the two tails (p < 0.02425 or p > 0.97575), done in a second, scalar pass.
#include "common.h"

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
