// Device memory bandwidth as a device-to-device copy measures it: the
// ceiling the decode targets of bench/RESULTS.md are quoted against.
//   nvcc -O3 -o hbm_bandwidth bench/hbm_bandwidth.cu && ./hbm_bandwidth [GiB] [repeats]
// Prints the median over repeats of (read + written bytes) / time, in GB/s.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK(call)                                                              \
  do {                                                                           \
    cudaError_t e_ = (call);                                                     \
    if (e_ != cudaSuccess) {                                                     \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e_));    \
      return 1;                                                                  \
    }                                                                            \
  } while (0)

int main(int argc, char** argv) {
  const double gib = argc > 1 ? std::atof(argv[1]) : 4.0;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 20;
  const size_t bytes = size_t(gib * (1ull << 30));
  void *src = nullptr, *dst = nullptr;
  CHECK(cudaMalloc(&src, bytes));
  CHECK(cudaMalloc(&dst, bytes));
  CHECK(cudaMemset(src, 1, bytes));
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));  // warm-up
  std::vector<double> rates;  // (repeats,) GB/s
  for (int i = 0; i < repeats; ++i) {
    CHECK(cudaEventRecord(start));
    CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
    CHECK(cudaEventRecord(stop));
    CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    rates.push_back(2.0 * double(bytes) / (ms * 1e-3) / 1e9);  // each byte is read once and written once
  }
  std::sort(rates.begin(), rates.end());
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("{\"device\": \"%s\", \"bytes\": %zu, \"repeats\": %d, \"median_GBps\": %.1f, \"max_GBps\": %.1f}\n",
              prop.name, bytes, repeats, rates[rates.size() / 2], rates.back());
  return 0;
}
