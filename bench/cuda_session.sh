#!/usr/bin/env bash
# Everything the CUDA backend needs checked on a lent GPU machine, in one
# call (the device tool's `run`; output and JSON land in $OUT):
#   build with CUDA for the GPU present (and its build time), the CUDA op and
#   model tests, compute-sanitizer memcheck and racecheck over the op tests,
#   the device-to-device copy bandwidth, random Llama-3-8B-shaped models in
#   Q4_0 and Q4_K_M, then hetinfer bench and llama.cpp's llama-bench and
#   llama-batched-bench on the same files.
# Before the call, on a machine that reaches PyPI: bash bench/fetch_llamacpp.sh,
# and carry .llamacpp and .whl (gguf and the test extra's wheels for Python 3.12).
#   STEPS="build test sanitize bench" bash bench/cuda_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/hetinfer-cuda}"
mkdir -p "$OUT"
STEPS="${STEPS:-build test sanitize bench}"
MODELS="${MODELS:-/tmp/hetinfer-models}"
log() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$OUT/session.log"; }
has() { [[ " $STEPS " == *" $1 "* ]]; }

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee -a "$OUT/session.log"

if has build; then
  log "build (CUDA for the GPU present)"
  start=$(date +%s)
  HETINFER_CUDA=ON python3 -m pip install -q --no-build-isolation --no-deps -e . -Cbuild-dir=build/cuda \
    -Ccmake.verbose=false > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
  log "build took $(( $(date +%s) - start )) s"
  python3 -m hetinfer devices | tee -a "$OUT/session.log"
fi

if has test; then
  log "CUDA op and model tests"
  python3 -m pytest -q -k "cuda" tests/test_ops.py tests/test_device_models.py 2>&1 | tee "$OUT/test.log" | tail -30
fi

if has sanitize; then
  for tool in memcheck racecheck; do
    log "compute-sanitizer $tool over the CUDA op tests"
    compute-sanitizer --tool "$tool" --target-processes all --print-limit 20 \
      python3 -m pytest -q -x -k "cuda" tests/test_ops.py > "$OUT/sanitize-$tool.log" 2>&1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" "$OUT/sanitize-$tool.log" | tail -5
  done
fi

if has bench; then
  log "device-to-device copy bandwidth"
  nvcc -O3 -o /tmp/hbm_bandwidth bench/hbm_bandwidth.cu && /tmp/hbm_bandwidth 4 20 | tee "$OUT/hbm.json"
  log "random Llama-3-8B-shaped models"
  mkdir -p "$MODELS"
  for q in Q4_0 Q4_K_M; do
    [ -f "$MODELS/llama8b-$q.gguf" ] || python3 -c "
from hetinfer.testing import write_model
write_model('$MODELS/llama8b-$q.gguf', 'llama', '$q', random_codes=True, n_embd=4096, n_layer=32, n_ff=14336,
            n_head=32, n_head_kv=8, n_vocab=32000, n_ctx_train=8192)"
  done
  if [ -f .llamacpp/llama.cpp.tar.gz ] && [ ! -x /tmp/llama.cpp/build/bin/llama-bench ]; then
    log "build llama.cpp (llama-bench, llama-batched-bench) with CUDA"
    mkdir -p /tmp/llama.cpp && tar xzf .llamacpp/llama.cpp.tar.gz -C /tmp/llama.cpp
    cmake -S /tmp/llama.cpp -B /tmp/llama.cpp/build -DGGML_CUDA=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
      -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release > "$OUT/llamacpp-build.log" 2>&1 &&
      cmake --build /tmp/llama.cpp/build -j 16 --target llama-bench llama-batched-bench >> "$OUT/llamacpp-build.log" 2>&1 ||
      tail -30 "$OUT/llamacpp-build.log"
  fi
  for model in "$MODELS"/llama8b-Q4_0.gguf "$MODELS"/llama8b-Q4_K_M.gguf gemma; do
    path="$model"; [ "$model" = gemma ] && path=""
    name=$(basename "${model%.gguf}")
    log "hetinfer bench $name"
    python3 -m hetinfer bench $path --devices cuda:0 -p 512 -n 128 -np 1,4,16 -r 3 --json > "$OUT/hetinfer-$name.json"
    python3 -c "import json; [print(r['test'], round(r['tokens_per_second'], 1)) for r in json.load(open('$OUT/hetinfer-$name.json'))]"
    if [ -x /tmp/llama.cpp/build/bin/llama-bench ]; then
      [ -z "$path" ] && path=$(python3 -c "from hetinfer.cli import default_model_path; print(default_model_path())")
      log "llama-bench $name"
      /tmp/llama.cpp/build/bin/llama-bench -m "$path" -ngl 99 -fa 1 -p 512 -n 128 -r 3 -o json > "$OUT/llamacpp-$name.json"
      python3 -c "import json; [print(r['n_prompt'], r['n_gen'], round(r['avg_ts'], 1)) for r in json.load(open('$OUT/llamacpp-$name.json'))]"
      /tmp/llama.cpp/build/bin/llama-batched-bench -m "$path" -ngl 99 -fa on -c 4096 -npp 1 -ntg 128 -npl 1,4,16 \
        > "$OUT/llamacpp-batched-$name.txt" 2>&1
      grep -E "^\|" "$OUT/llamacpp-batched-$name.txt" | tail -4
    fi
  done
fi
log "done"
