#include "planar_rows.h"

#include <cstring>
#include <type_traits>
#include <utility>

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

// PlanarAt::half loads uint16: a row of blocks starts 2-aligned when the block
// size is even, and a half's plane when its offset is.
template <typename T>
constexpr bool halves_stay_aligned() {
  for (const Field& f : Planar<T>::fields)
    if (f.size == 2 && f.offset % 2 != 0) return false;
  return sizeof(T) % 2 == 0;
}

// Field I of every block of a row: in (nb, sizeof(T)) blocks -> out's plane
// of (nb, size) values. The field is a constant, so each copy is a fixed-size move.
template <typename T, size_t I>
void copy_plane(const uint8_t* in, uint8_t* out, int64_t nb) {
  constexpr Field f = Planar<T>::fields[I];
  uint8_t* plane = out + size_t(nb) * size_t(f.offset);
  for (int64_t b = 0; b < nb; ++b)
    std::memcpy(plane + size_t(b) * size_t(f.size), in + size_t(b) * sizeof(T) + size_t(f.offset), size_t(f.size));
}

template <typename T, size_t... I>
void planar_typed(const uint8_t* src, uint8_t* dst, int64_t rows, int64_t nb, std::index_sequence<I...>) {
  static_assert(fields_tile_the_block<T>(), "Planar<T>::fields must tile T in declaration order");
  static_assert(halves_stay_aligned<T>(), "Planar<T>'s halves must stay 2-byte aligned");
  const size_t rb = size_t(nb) * sizeof(T);
  for (int64_t r = 0; r < rows; ++r)
    (copy_plane<T, I>(src + size_t(r) * rb, dst + size_t(r) * rb, nb), ...);
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
      planar_typed<T>(src, dst, rows, nb, std::make_index_sequence<Planar<T>::kFields>{});
  });
}

}  // namespace hi
