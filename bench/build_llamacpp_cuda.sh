#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-batched-bench with CUDA for one
# architecture here, with no GPU, so that the lent GPU machine spends none of
# its few minutes compiling llama.cpp's 144 CUDA files (48 min on this
# 2-core VM). Packs the two programs and llama.cpp's shared libraries into
# .llamacpp/llama-cuda-sm$ARCH.tar.xz (22 MB), which bench/cuda_session.sh unpacks.
#   bash bench/fetch_llamacpp.sh && bash bench/build_llamacpp_cuda.sh [ARCH]   (default 90: H100, H200)
# Linking needs cuBLAS, which this machine's nvcc lacks: PyPI's nvidia-cublas
# gives it (on the GPU machine its own libcublas.so.13 is found at run time).
# There is no libcuda.so to link here either, so the build uses
# GGML_CUDA_NO_VMM: llama.cpp's memory pool then grows by cudaMalloc instead
# of virtual-memory mapping, which changes allocation, not kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-90}"
src=.llamacpp/llama.cpp.tar.gz
[ -f "$src" ] || { echo "no $src: run bash bench/fetch_llamacpp.sh first" >&2; exit 1; }
work="${LLAMACPP_WORK:-/tmp/llamacpp-cuda-build}"
mkdir -p "$work/src" "$work/cublas"
[ -f "$work/src/CMakeLists.txt" ] || tar xzf "$src" -C "$work/src"   # once: new mtimes would rebuild it all
cublas="$work/cublas/nvidia/cu13"
if [ ! -f "$cublas/lib/libcublas.so" ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$work/cublas" "nvidia-cublas>=13,<14"
  (cd "$work/cublas" && python3 -m zipfile -e nvidia_cublas-*.whl .)
  ln -sf libcublas.so.13 "$cublas/lib/libcublas.so"
  ln -sf libcublasLt.so.13 "$cublas/lib/libcublasLt.so"
fi
cmake -S "$work/src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DGGML_CUDA_NO_VMM=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch-real" -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF \
  -DCUDA_cublas_LIBRARY="$cublas/lib/libcublas.so" -DCUDA_cublasLt_LIBRARY="$cublas/lib/libcublasLt.so" \
  -DCMAKE_CUDA_FLAGS="-I$cublas/include" -DCMAKE_CXX_FLAGS="-I$cublas/include" > "$work/configure.log"
start=$(date +%s)
cmake --build "$work/build" -j "$(nproc)" --target llama-bench llama-batched-bench
echo "llama.cpp built in $(( $(date +%s) - start )) s"
# With the CUDA runtime and OpenMP libraries it was linked against, which the
# GPU machine may keep off the loader's path; cuBLAS (600 MB) is found there.
pack="$work/pack"
rm -rf "$pack" && mkdir -p "$pack"
cp -P "$work"/build/bin/{llama-bench,llama-batched-bench} "$work"/build/bin/lib*.so* "$pack/"
for lib in libcudart.so.13 libgomp.so.1; do
  cp -L "$(LD_LIBRARY_PATH="$cublas/lib" ldd "$pack/llama-bench" | awk -v l="$lib" '$1 == l {print $3}')" "$pack/"
done
strip --strip-unneeded "$pack"/*
out=".llamacpp/llama-cuda-sm$arch.tar.xz"
tar cJf "$out" -C "$pack" .
ls -la "$out"
