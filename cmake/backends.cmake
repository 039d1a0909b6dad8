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

# SYCL: the headers and libsycl.so that PyPI's intel-sycl-rt installs (no
# oneAPI compiler): asked of the Python that builds, so pip's isolated build
# environment (intel-sycl-rt is a build requirement) is found as well as a venv.
set(HETINFER_HAVE_SYCL_TOOLCHAIN OFF)
if(NOT HETINFER_SYCL STREQUAL "OFF")
  execute_process(
    COMMAND ${Python_EXECUTABLE} -c "import importlib.metadata as m, os\nfiles = m.files('intel-sycl-rt') or []\nhpp = [f.locate() for f in files if str(f).endswith('include/sycl/sycl.hpp')]\nlib = [f.locate() for f in files if f.name == 'libsycl.so']\nprint(os.path.realpath(os.path.dirname(os.path.dirname(hpp[0]))) if hpp else '', os.path.realpath(os.path.dirname(lib[0])) if lib else '', sep=';', end='')"
    OUTPUT_VARIABLE sycl_paths RESULT_VARIABLE sycl_found ERROR_QUIET)
  list(GET sycl_paths 0 sycl_include)
  list(GET sycl_paths 1 sycl_libdir)
  if(sycl_found EQUAL 0 AND EXISTS "${sycl_include}/sycl/sycl.hpp" AND EXISTS "${sycl_libdir}/libsycl.so")
    set(HETINFER_HAVE_SYCL_TOOLCHAIN ON)
    set(HETINFER_SYCL_INCLUDE ${sycl_include})
    set(HETINFER_SYCL_LIBRARY ${sycl_libdir}/libsycl.so)
  elseif(HETINFER_SYCL STREQUAL "ON")
    message(FATAL_ERROR "HETINFER_SYCL=ON but PyPI's intel-sycl-rt (sycl/sycl.hpp, libsycl.so) was not found in ${Python_EXECUTABLE}'s environment; pip install intel-sycl-rt or set HETINFER_SYCL=OFF")
  endif()
endif()

message(STATUS "hetinfer: CPU backend: ON")
message(STATUS "hetinfer: SYCL backend: ${HETINFER_HAVE_SYCL_TOOLCHAIN} (HETINFER_SYCL=${HETINFER_SYCL}) ${HETINFER_SYCL_INCLUDE}")
message(STATUS "hetinfer: CUDA toolchain found: ${HETINFER_HAVE_CUDA_TOOLCHAIN} (HETINFER_CUDA=${HETINFER_CUDA}; backend sources not yet present)")
