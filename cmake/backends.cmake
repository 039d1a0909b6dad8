# Detects the toolchains of the optional backends and reports what will be
# built. The CPU backend is always built. HETINFER_CUDA / HETINFER_SYCL:
# AUTO builds a backend when its toolchain is found, ON fails without it.

# CUDA: nvcc. Without a GPU the build still works; the backend then reports
# itself unavailable at run time.
set(HETINFER_HAVE_CUDA_TOOLCHAIN OFF)
if(NOT HETINFER_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(HETINFER_HAVE_CUDA_TOOLCHAIN ON)
  elseif(HETINFER_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HETINFER_CUDA=ON but no CUDA compiler (nvcc) was found; install the CUDA toolkit or set HETINFER_CUDA=OFF")
  endif()
endif()

# SYCL: the headers and libsycl.so that PyPI's intel-sycl-rt installs (no oneAPI compiler).
set(HETINFER_HAVE_SYCL_TOOLCHAIN OFF)
if(NOT HETINFER_SYCL STREQUAL "OFF")
  find_path(HETINFER_SYCL_INCLUDE sycl/sycl.hpp HINTS ${Python_ROOT_DIR}/include ENV VIRTUAL_ENV PATH_SUFFIXES include)
  find_library(HETINFER_SYCL_LIBRARY sycl HINTS ENV VIRTUAL_ENV PATH_SUFFIXES lib)
  if(HETINFER_SYCL_INCLUDE AND HETINFER_SYCL_LIBRARY)
    set(HETINFER_HAVE_SYCL_TOOLCHAIN ON)
  elseif(HETINFER_SYCL STREQUAL "ON")
    message(FATAL_ERROR "HETINFER_SYCL=ON but sycl/sycl.hpp and libsycl.so were not found; pip install intel-sycl-rt or set HETINFER_SYCL=OFF")
  endif()
endif()

# The CUDA and SYCL backend sources arrive with their own issues; until then
# the toolchains are only detected, so the build reports what it found.
message(STATUS "hetinfer: CPU backend: ON")
message(STATUS "hetinfer: CUDA toolchain found: ${HETINFER_HAVE_CUDA_TOOLCHAIN} (HETINFER_CUDA=${HETINFER_CUDA}; backend sources not yet present)")
message(STATUS "hetinfer: SYCL toolchain found: ${HETINFER_HAVE_SYCL_TOOLCHAIN} (HETINFER_SYCL=${HETINFER_SYCL}; backend sources not yet present)")
