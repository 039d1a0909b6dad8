#include "kv_cache.h"

#include <algorithm>
#include <stdexcept>
#include <string>


namespace hi {

size_t KVCache::bytes_for(int64_t n_layers, int64_t n_cells, int64_t n_head_kv, int64_t head_dim_k,
                          int64_t head_dim_v, QType type_k, QType type_v) {
  return size_t(n_layers * n_cells * n_head_kv) * (row_bytes(type_k, head_dim_k) + row_bytes(type_v, head_dim_v));
}

KVCache::KVCache(Device& device, int64_t n_layers, int64_t n_cells, int64_t n_head_kv, int64_t head_dim_k,
                 int64_t head_dim_v, QType type_k, QType type_v)
    : device_(device), n_layers_(n_layers), n_cells_(n_cells), n_head_kv_(n_head_kv), dk_(head_dim_k), dv_(head_dim_v),
      type_k_(type_k), type_v_(type_v),
      k_cell_bytes_(size_t(n_head_kv) * row_bytes(type_k, head_dim_k)),
      v_cell_bytes_(size_t(n_head_kv) * row_bytes(type_v, head_dim_v)),
      cell_seq_(size_t(n_cells), -1),
      cell_pos_(size_t(n_cells), 0) {
  for (QType t : {type_k, type_v})
    if (t != QType::F32 && t != QType::F16 && t != QType::Q8_0 && t != QType::Q4_0)
      throw std::invalid_argument(std::string("KV cache type ") + qtype_info(t).name +
                                  " is not one of f32, f16, q8_0, q4_0");
  k_ = DeviceBuffer(device, size_t(n_layers * n_cells) * k_cell_bytes_, MemKind::KV);
  v_ = DeviceBuffer(device, size_t(n_layers * n_cells) * v_cell_bytes_, MemKind::KV);
  device.fill_zero(k_.as<uint8_t>(), k_.bytes());  // free cells are never read; zeros keep dumps readable
  device.fill_zero(v_.as<uint8_t>(), v_.bytes());
}

std::vector<int32_t> KVCache::allocate(const int32_t* seq, const int32_t* pos, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (seq[i] < 0) throw std::invalid_argument("sequence ids must be >= 0");
  std::vector<int32_t> cells;
  cells.reserve(size_t(n));
  for (int64_t c = 0; c < n_cells_ && int64_t(cells.size()) < n; ++c)
    if (cell_seq_[size_t(c)] < 0) cells.push_back(int32_t(c));
  if (int64_t(cells.size()) < n)
    throw std::runtime_error("KV cache full: " + std::to_string(n) + " tokens need cells, " +
                             std::to_string(cells.size()) + " of " + std::to_string(n_cells_) + " are free");
  for (int64_t i = 0; i < n; ++i) {
    cell_seq_[size_t(cells[size_t(i)])] = seq[i];
    cell_pos_[size_t(cells[size_t(i)])] = pos[i];
  }
  return cells;
}

void KVCache::write(int64_t layer, const int32_t* cells, int64_t n, const float* k, const float* v) {
  device_.set_rows_pair({type_k_, k_layer(layer), n_head_kv_ * dk_, k}, {type_v_, v_layer(layer), n_head_kv_ * dv_, v},
                        cells, n);
}

void KVCache::write_keys(int64_t layer, const int32_t* cells, int64_t n, const float* k) {
  device_.set_rows(type_k_, k_layer(layer), n_head_kv_ * dk_, cells, n, k);
}

void KVCache::read_keys(int64_t layer, const int32_t* cells, int64_t n, float* out) {
  device_.get_rows(type_k_, Table::Cache, k_layer(layer), n_head_kv_ * dk_, cells, n, 1.0f, out);
}

KVView KVCache::keys(int64_t layer) const {
  return {type_k_, k_layer(layer), n_cells_, n_head_kv_, dk_};
}

KVView KVCache::values(int64_t layer) const {
  return {type_v_, v_layer(layer), n_cells_, n_head_kv_, dv_};
}

void KVCache::release(const std::vector<int32_t>& cells) {
  for (int32_t c : cells) cell_seq_[size_t(c)] = -1;
}

void KVCache::clear() { std::fill(cell_seq_.begin(), cell_seq_.end(), -1); }

bool KVCache::holds(int64_t cell, int32_t seq, int32_t p0, int32_t p1) const {
  const int32_t pos = cell_pos_[size_t(cell)];
  return cell_seq_[size_t(cell)] == seq && pos >= p0 && (p1 < 0 || pos < p1);
}

void KVCache::remove_sequence(int32_t seq, int32_t p0, int32_t p1) {
  for (int64_t c = 0; c < n_cells_; ++c)
    if (holds(c, seq, p0, p1)) cell_seq_[size_t(c)] = -1;
}

std::vector<int32_t> KVCache::shift_positions(int32_t seq, int32_t p0, int32_t p1, int32_t delta) {
  std::vector<int32_t> cells;
  for (int64_t c = 0; c < n_cells_; ++c)
    if (holds(c, seq, p0, p1)) cells.push_back(int32_t(c));
  for (int32_t c : cells) {
    const int64_t moved = int64_t(cell_pos_[size_t(c)]) + delta;
    if (moved < 0) throw std::invalid_argument("shifting by " + std::to_string(delta) + " moves position " +
                                               std::to_string(cell_pos_[size_t(c)]) + " below 0");
  }
  for (int32_t c : cells) cell_pos_[size_t(c)] += delta;
  return cells;
}

void KVCache::copy_sequence(int32_t src, int32_t dst) {
  std::vector<int32_t> from, pos;  // cells of src and their positions
  for (int64_t c = 0; c < n_cells_; ++c)
    if (cell_seq_[size_t(c)] == src) {
      from.push_back(int32_t(c));
      pos.push_back(cell_pos_[size_t(c)]);
    }
  const std::vector<int32_t> seq(from.size(), dst);
  const std::vector<int32_t> to = allocate(seq.data(), pos.data(), int64_t(from.size()));
  for (int64_t l = 0; l < n_layers_; ++l)
    for (size_t i = 0; i < from.size(); ++i) {
      device_.copy(k_layer(l) + size_t(to[i]) * k_cell_bytes_, k_layer(l) + size_t(from[i]) * k_cell_bytes_,
                   k_cell_bytes_);
      device_.copy(v_layer(l) + size_t(to[i]) * v_cell_bytes_, v_layer(l) + size_t(from[i]) * v_cell_bytes_,
                   v_cell_bytes_);
    }
}

int64_t KVCache::used_cells() const {
  return int64_t(std::count_if(cell_seq_.begin(), cell_seq_.end(), [](int32_t s) { return s >= 0; }));
}

}  // namespace hi
