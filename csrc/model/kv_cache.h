// The KV cache of a range of layers: per layer, K and V rows for n_cells
// cells in their cache types (f16, q8_0, q4_0, f32), and per cell the
// sequence and position it holds. Cells of all sequences share one pool.
#pragma once
#include <cstdint>
#include <vector>

#include "../device/device.h"
#include "../qtypes.h"

namespace hi {

class KVCache {
 public:
  // K and V live in `device` memory (counted as MemKind::KV).
  KVCache(Device& device, int64_t n_layers, int64_t n_cells, int64_t n_head_kv, int64_t head_dim_k,
          int64_t head_dim_v, QType type_k, QType type_v);
  // Bytes the constructor allocates for these arguments (the planner's KV figure).
  static size_t bytes_for(int64_t n_layers, int64_t n_cells, int64_t n_head_kv, int64_t head_dim_k,
                          int64_t head_dim_v, QType type_k, QType type_v);

  // Claims one free cell per token (sequence seq[i], position pos[i]); throws
  // when fewer than n are free. Returns the cell indices.
  std::vector<int32_t> allocate(const int32_t* seq, const int32_t* pos, int64_t n);
  // Device memory: cells (n,); k (n, n_head_kv * head_dim_k), v (n, n_head_kv * head_dim_v).
  void write(int64_t layer, const int32_t* cells, int64_t n, const float* k, const float* v);
  // Keys of `cells` (n,) as floats, out: (n, n_head_kv * head_dim_k); write_keys
  // stores them back. All device memory.
  void read_keys(int64_t layer, const int32_t* cells, int64_t n, float* out);
  void write_keys(int64_t layer, const int32_t* cells, int64_t n, const float* k);

  KVView keys(int64_t layer) const;
  KVView values(int64_t layer) const;
  const int32_t* cell_seq() const { return cell_seq_.data(); }  // (n_cells,) -1 = free
  const int32_t* cell_pos() const { return cell_pos_.data(); }  // (n_cells,)

  // Frees cells claimed by allocate() for a batch that then failed.
  void release(const std::vector<int32_t>& cells);
  void clear();
  // Frees the cells of `seq` with p0 <= position < p1 (p1 < 0: no upper bound).
  void remove_sequence(int32_t seq, int32_t p0 = 0, int32_t p1 = -1);
  // Adds delta to the positions of the cells of `seq` in [p0, p1); returns those
  // cells. The keys still carry their old rotation: Stage::shift_sequence fixes them.
  std::vector<int32_t> shift_positions(int32_t seq, int32_t p0, int32_t p1, int32_t delta);
  // Copies every cell of `src` into free cells tagged `dst`.
  void copy_sequence(int32_t src, int32_t dst);
  int64_t used_cells() const;
  int64_t n_cells() const { return n_cells_; }
  size_t bytes() const { return k_.bytes() + v_.bytes(); }

 private:
  bool holds(int64_t cell, int32_t seq, int32_t p0, int32_t p1) const;
  uint8_t* k_layer(int64_t layer) const { return k_.as<uint8_t>() + size_t(layer * n_cells_) * k_cell_bytes_; }
  uint8_t* v_layer(int64_t layer) const { return v_.as<uint8_t>() + size_t(layer * n_cells_) * v_cell_bytes_; }

  Device& device_;
  int64_t n_layers_, n_cells_, n_head_kv_, dk_, dv_;
  QType type_k_, type_v_;
  size_t k_cell_bytes_, v_cell_bytes_;  // one cell of one layer
  DeviceBuffer k_, v_;                  // (n_layers, n_cells, k_cell_bytes / v_cell_bytes)
  std::vector<int32_t> cell_seq_;       // (n_cells,) -1 = free
  std::vector<int32_t> cell_pos_;       // (n_cells,)
};

}  // namespace hi
