// Checks shared by the binding files (bindings*.cpp).
#pragma once
#include <pybind11/pybind11.h>

#include <string>

#include "qtypes.h"

namespace hi {

// The QType of a GGML type id; ValueError naming the id otherwise.
inline QType checked_type(uint32_t id) {
  const QTypeInfo* info = find_qtype(id);
  if (!info) throw pybind11::value_error("unsupported tensor type id " + std::to_string(id));
  return info->type;
}

}  // namespace hi
