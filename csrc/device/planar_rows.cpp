#include "planar_rows.h"

#include <cstring>
#include <type_traits>

#include "../../kernels/common/planar_blocks.h"

namespace hi {

namespace {

// The fields cover T in declaration order with no gaps, so field f's stream in
// a row of nb blocks starts at nb * offset.
template <typename T>
constexpr bool fields_tile_the_block() {
  int end = 0;
  for (const Field& f : Planar<T>::fields) {
    if (f.offset != end) return false;
    end += f.size;
  }
  return end == int(sizeof(T));
}

template <typename T>
void planar_typed(const uint8_t* src, uint8_t* dst, int64_t rows, int64_t nb) {
  static_assert(fields_tile_the_block<T>(), "Planar<T>::fields must tile T in declaration order");
  const size_t rb = size_t(nb) * sizeof(T);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* in = src + size_t(r) * rb;  // (nb, sizeof(T)) blocks
    uint8_t* out = dst + size_t(r) * rb;       // per field: (nb, size) values
    for (const Field& f : Planar<T>::fields) {
      uint8_t* stream = out + size_t(nb) * size_t(f.offset);
      for (int64_t b = 0; b < nb; ++b)
        std::memcpy(stream + size_t(b) * size_t(f.size), in + size_t(b) * sizeof(T) + size_t(f.offset), size_t(f.size));
    }
  }
}

template <typename Tag>
constexpr bool is_float_tag() {
  return std::is_same<Tag, F32Tag>::value || std::is_same<Tag, F16Tag>::value || std::is_same<Tag, BF16Tag>::value;
}

}  // namespace

bool has_planar_rows(QType type) {
  return visit_qtype(type, [](auto tag) { return !is_float_tag<decltype(tag)>(); });
}

void make_planar_rows(QType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t cols) {
  const size_t rb = row_bytes(type, cols);  // throws unless cols is whole blocks
  const int64_t nb = cols / qtype_info(type).block_values;
  visit_qtype(type, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (is_float_tag<T>())
      std::memcpy(dst, src, size_t(rows) * rb);
    else
      planar_typed<T>(src, dst, rows, nb);
  });
}

}  // namespace hi
