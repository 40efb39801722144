// Sorting rows of float32 numbers, for the SWD (swd.py sorts 3 levels x 2 sets x 512 directions of up to
// 32,768 projections for each score): a least-significant-digit radix sort on the numbers' bits, three
// passes of 11, 11 and 10 bits over keys that order as the floats do (the sign bit flipped for positive
// numbers, every bit for negative ones). A sorted row of values is unique, so the result is NumPy's
// np.sort to the bit (-0.0 goes before 0.0, which compare equal); no NaN reaches it from the SWD.
#include "common.h"

namespace {

const int BITS[3] = {11, 11, 10};
const int SHIFT[3] = {0, 11, 22};

inline uint32_t to_key(uint32_t bits) { return bits ^ ((bits >> 31) ? 0xFFFFFFFFu : 0x80000000u); }
inline uint32_t from_key(uint32_t key) { return key ^ ((key >> 31) ? 0x80000000u : 0xFFFFFFFFu); }

void sort_row(uint32_t *row, uint32_t *spare, int64_t n) {
  std::vector<int64_t> count(3 << 11, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t key = to_key(row[i]);
    row[i] = key;
    for (int p = 0; p < 3; ++p) ++count[(p << 11) + ((key >> SHIFT[p]) & ((1u << BITS[p]) - 1))];
  }
  uint32_t *from = row, *to = spare;
  for (int p = 0; p < 3; ++p) {
    int64_t *offset = &count[p << 11], total = 0;
    for (int d = 0; d < (1 << BITS[p]); ++d) {
      const int64_t c = offset[d];
      offset[d] = total;
      total += c;
    }
    const uint32_t mask = (1u << BITS[p]) - 1;
    for (int64_t i = 0; i < n; ++i) to[offset[(from[i] >> SHIFT[p]) & mask]++] = from[i];
    std::swap(from, to);
  }
  for (int64_t i = 0; i < n; ++i) row[i] = from_key(from[i]);  // three passes: the keys are in `spare`
}

}  // namespace

// Sort each of the `rows` rows of `data` (rows x cols float32, C order) in place, on the calling thread
// (swd.py calls it from several threads at once; ctypes lets go of Python's lock during the call).
extern "C" void SortRows(float *data, int64_t rows, int64_t cols) {
  std::vector<uint32_t> spare(cols);
  for (int64_t r = 0; r < rows; ++r) sort_row(reinterpret_cast<uint32_t *>(data + r * cols), spare.data(), cols);
}
