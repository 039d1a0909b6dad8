# Detects the toolchains of the optional backends and reports what will be
# built. The CPU backend is always built. HETINFER_CUDA / HETINFER_SYCL:
# AUTO builds a backend when its toolchain is found, ON fails without it.

# CUDA: nvcc. Without a GPU the build still works; the backend then reports
# itself unavailable at run time. Architectures: CMAKE_CUDA_ARCHITECTURES or
# the CUDAARCHS environment variable when given (CI: one, to stay fast), else
# those of the GPUs nvidia-smi reports, else 80;86;89;90 (A100, RTX 30xx,
# RTX 40xx, H100; PTX for 90 so newer GPUs can compile it). The kernels use
# sm_80 instructions (int8 mma.sync), so older GPUs are left out.
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
if(HETINFER_HAVE_CUDA_TOOLCHAIN AND NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND "$ENV{CUDAARCHS}" STREQUAL "")
  set(cuda_archs "")
  execute_process(COMMAND nvidia-smi --query-gpu=compute_cap --format=csv,noheader
                  OUTPUT_VARIABLE gpu_caps RESULT_VARIABLE smi_failed ERROR_QUIET)
  if(smi_failed EQUAL 0)
    string(REGEX MATCHALL "[0-9]+\\.[0-9]+" gpu_caps "${gpu_caps}")
    foreach(cap ${gpu_caps})
      string(REPLACE "." "" arch ${cap})
      if(arch LESS 80)
        message(WARNING "hetinfer: a GPU of compute capability ${cap} is left out: the CUDA kernels need 8.0 or newer")
      else()
        list(APPEND cuda_archs ${arch})
      endif()
    endforeach()
    list(REMOVE_DUPLICATES cuda_archs)
  endif()
  if(NOT cuda_archs)
    set(cuda_archs 80-real 86-real 89-real 90)
  endif()
  set(CMAKE_CUDA_ARCHITECTURES ${cuda_archs})
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
message(STATUS "hetinfer: CUDA backend: ${HETINFER_HAVE_CUDA_TOOLCHAIN} (HETINFER_CUDA=${HETINFER_CUDA}) architectures: ${CMAKE_CUDA_ARCHITECTURES}$ENV{CUDAARCHS}")
