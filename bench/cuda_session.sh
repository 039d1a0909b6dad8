#!/usr/bin/env bash
# Everything the CUDA backend needs checked on a lent GPU, in one call of the
# device tool (a session gets about 15 minutes of device time, the machine's
# start included), ending by itself within DEADLINE seconds (default 520):
#   build  hetinfer with CUDA for the GPU present, and its build time
#   test   the CUDA op and model tests
#   bench  the copy bandwidth; random Llama-3-8B-shaped Q4_0 and Q4_K_M and
#          Gemma-3-270M-shaped Q4_K_M models (the real Gemma wheel is too
#          big to carry); hetinfer bench -p 512 -n 128, one run for each of
#          -np 1, 4 and 16, beside llama.cpp's llama-bench and
#          llama-batched-bench on the same files; for the Llama-shaped files
#          also one-sequence decode with the weights held as the file's blocks
#          (HETINFER_CUDA_WEIGHTS=blocks) instead of planar rows
#   depth  (not run unless named) one-sequence decode after DEPTH tokens
#          (default 4096) of the Llama-shaped Q4_0 file, hetinfer bench -d
#          beside llama-bench -d: the split-KV attention of long caches
#   sanitize  compute-sanitizer memcheck, then racecheck, over the CUDA op
#          tests, each with the time that is left (a timeout is reported)
#   profile  with what is still left, Nsight Compute over one decode step of
#          the Llama-shaped Q4_0 file: per kernel and matrix shape, time, DRAM
#          bytes and rate, load coalescing, occupancy (bench/ncu_summary.py)
# Prepare on a machine that reaches PyPI (the GPU machine reaches nothing):
#   bash bench/fetch_llamacpp.sh && bash bench/build_llamacpp_cuda.sh
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl gguf
# There, carrying .llamacpp/llama-cuda-sm90.tar.xz and .whl, with timeout_s 600:
#   bash bench/cuda_session.sh            (STEPS="build test bench sanitize profile" picks steps; add depth for -d)
# $OUT receives summary.md (the comparison table, made by bench/cuda_summary.py)
# and session.tar.gz (every log and JSON, packed again after every step, so a
# call killed at its limit still brings back what it measured): the tool
# brings back 8 files at most.
# A rehearsal without a GPU (the plumbing, not the numbers):
#   BENCH_DEVICES=cpu N_LAYER=1 N_PROMPT=32 N_GEN=8 PARALLEL=1,4 REPS=1 bash bench/cuda_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
DEADLINE="${DEADLINE:-520}"
OUT="${OUT:-/tmp/hetinfer-cuda}"
STEPS="${STEPS:-build test bench sanitize profile}"
# profile: a decode step of the 32-layer Q4_0 file launches 421 kernels (13 a
# layer, the first layer's norm, 1 for the embedding and 3 for the head:
# bench/RESULTS.md, "CUDA decode: 13 launches a layer"); two steps go by
# unprofiled (the first runs plain, the second is recorded).
NCU_SKIP="${NCU_SKIP:-842}" NCU_COUNT="${NCU_COUNT:-421}"
BENCH_DEVICES="${BENCH_DEVICES:-cuda:0}"
N_LAYER="${N_LAYER:-32}"                     # Llama-3-8B has 32; a rehearsal takes fewer
N_PROMPT="${N_PROMPT:-512}" N_GEN="${N_GEN:-128}" PARALLEL="${PARALLEL:-1,4,16}" REPS="${REPS:-3}"  # both engines
DEPTH="${DEPTH:-4096}"
WORK=/tmp/hetinfer-cuda-work                 # logs and JSON, packed into $OUT
MODELS=/tmp/hetinfer-models
LLAMA=/tmp/llama.cpp-bin
rm -rf "$WORK"   # a rerun on a warm machine must not report the last run's files
mkdir -p "$OUT" "$WORK" "$MODELS"
exec 3>&1   # log() writes here, so a step's redirected output holds only its own

log() { echo "== +$(( $(date +%s) - T0 ))s $*" | tee -a "$WORK/session.log" >&3; }
has() { [[ " $STEPS " == *" $1 "* ]]; }
seconds_left() { echo $(( DEADLINE - 25 - ($(date +%s) - T0) )); }
# Everything so far into $OUT after every step: a call killed at its limit
# still brings back what was measured before.
pack() { tar czf "$OUT/session.tar.gz" -C "$WORK" .; }
# step NAME MAX_SECONDS CMD...: runs CMD with at most MAX_SECONDS, fewer when
# the deadline is closer; skips it when under 20 s are left. Logs rc and time.
step() {
  local name=$1 limit=$2 left; shift 2
  left=$(seconds_left)
  (( left < limit )) && limit=$left
  if (( limit < 20 )); then log "$name: skipped, ${left}s left"; return 1; fi
  local start=$(date +%s) rc
  timeout -k 5 "$limit" "$@"; rc=$?
  local late=""; ((rc == 124 || rc == 137)) && late=", TIMED OUT"
  log "$name: rc=$rc in $(( $(date +%s) - start ))s (limit ${limit}s)$late"
  pack
  return $rc
}
# Waits for the models' writer (once), until the deadline at most.
wait_models() {
  [ -n "${writer:-}" ] || return 0
  while kill -0 "$writer" 2> /dev/null && (( $(seconds_left) > 20 )); do sleep 1; done
  kill "$writer" 2> /dev/null && log "models: writing stopped at the deadline"
  wait "$writer"; log "models written (rc=$?): $(ls "$MODELS" | tr '\n' ' ')"
  writer=""
}
finish() {
  log "done"
  [ -n "${models:-}" ] && python3 bench/cuda_summary.py "$WORK" $models > "$WORK/summary.md" 2>> "$WORK/session.log"
  [ -s "$WORK/ncu-decode.md" ] && printf '\nOne decode step, per kernel (ncu):\n\n' >> "$WORK/summary.md" &&
    cat "$WORK/ncu-decode.md" >> "$WORK/summary.md"
  cp "$WORK/summary.md" "$OUT/" 2>/dev/null && cat "$WORK/summary.md"
  pack
}
trap finish EXIT

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
    export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$WORK/session.log"
lib=$(find /usr/local /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -1)
for tarball in .llamacpp/llama-cuda-sm*.tar.xz; do   # prebuilt by bench/build_llamacpp_cuda.sh
  [ -f "$tarball" ] && mkdir -p "$LLAMA" && tar xJf "$tarball" -C "$LLAMA" &&
    log "llama.cpp from $tarball, cuBLAS ${lib:-not found}"
done
llama_libs="$LLAMA${lib:+:$(dirname "$lib")}"   # for llama.cpp's programs alone

if has build; then
  log "build (CUDA for the GPU present)"
  step build 240 env HETINFER_CUDA=ON HETINFER_SYCL=OFF python3 -m pip install -q --no-build-isolation --no-deps -e . \
    -Cbuild-dir=build/cuda > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
  python3 -m hetinfer devices 2>&1 | tee -a "$WORK/session.log"
fi

# Else the CUDA tests would skip, and a broken build read as skipped.
if [[ "$BENCH_DEVICES" == cuda* ]]; then
  python3 -c "from hetinfer import cuda_runtime as c; r = c.unavailable_reason()
print('CUDA backend:', r or 'available'); raise SystemExit(1 if r else 0)" 2>&1 | tee -a "$WORK/session.log"
  [ "${PIPESTATUS[0]}" = 0 ] || exit 1
fi

if has bench || has depth || has profile; then   # written while the tests run: CPU and disk, not the GPU
  models="$MODELS/llama8b-Q4_0.gguf $MODELS/llama8b-Q4_K_M.gguf $MODELS/gemma270m-Q4_K_M.gguf"   # as written below
  python3 -c "
from hetinfer.testing import write_model
llama8b = dict(n_embd=4096, n_layer=$N_LAYER, n_ff=14336, n_head=32, n_head_kv=8, n_vocab=32000, n_ctx_train=8192)
gemma270m = dict(n_embd=640, n_layer=18, n_head=4, n_head_kv=1, head_dim=256, n_ff=2048, n_vocab=262144,
                 sliding_window=512, n_ctx_train=32768)
for name, arch, quant, shape in (('llama8b-Q4_0', 'llama', 'Q4_0', llama8b),
                                 ('llama8b-Q4_K_M', 'llama', 'Q4_K_M', llama8b),
                                 ('gemma270m-Q4_K_M', 'gemma3', 'Q4_K_M', gemma270m)):
    write_model(f'$MODELS/{name}.gguf', arch, quant, random_codes=True, **shape)" > "$WORK/models.log" 2>&1 &
  writer=$!
fi

if has test; then
  for file in test_ops test_device_models; do   # a process each: a kernel fault ends one file's run, not both
    log "CUDA tests of $file"
    step "$file" 120 python3 -m pytest -q -p no:cacheprovider -k "cuda" "tests/$file.py" > "$WORK/$file.log" 2>&1
    grep -E "^(FAILED|ERROR)|passed|failed" "$WORK/$file.log" | tail -12
  done
fi

if has bench; then
  log "device-to-device copy bandwidth"
  step nvcc 60 nvcc -O3 -o /tmp/hbm_bandwidth bench/hbm_bandwidth.cu && step hbm 30 /tmp/hbm_bandwidth 4 20 \
    > "$WORK/hbm.json"
  cat "$WORK/hbm.json"
  wait_models
  for path in $models; do
    name=$(basename "${path%.gguf}")
    for p in ${PARALLEL//,/ }; do   # a run each, so one that times out loses only its own results
      n_prompt=$N_PROMPT; (( p > 1 )) && n_prompt=0
      step "hetinfer $name x$p" 60 python3 -m hetinfer bench "$path" --devices "$BENCH_DEVICES" -p "$n_prompt" \
        -n "$N_GEN" -np "$p" -r "$REPS" --json > "$WORK/hetinfer-$name-x$p.json" 2> "$WORK/hetinfer-$name-x$p.err"
    done
    if [[ "$name" == llama8b* ]]; then   # the same decode with the file's blocks (a CPU rehearsal: the same run)
      step "hetinfer $name blocks" 60 env HETINFER_CUDA_WEIGHTS=blocks python3 -m hetinfer bench "$path" \
        --devices "$BENCH_DEVICES" -p 0 -n "$N_GEN" -np 1 -r "$REPS" --json > "$WORK/blocks-$name-x1.json" \
        2> "$WORK/blocks-$name-x1.err"
    fi
    if [ -x "$LLAMA/llama-bench" ]; then
      step "llama-bench $name" 60 env LD_LIBRARY_PATH="$llama_libs" "$LLAMA/llama-bench" -m "$path" -ngl 99 -fa 1 \
        -p "$N_PROMPT" -n "$N_GEN" -r "$REPS" -o json > "$WORK/llamacpp-$name.json" 2> "$WORK/llamacpp-$name.err"
      step "llama-batched-bench $name" 60 env LD_LIBRARY_PATH="$llama_libs" "$LLAMA/llama-batched-bench" -m "$path" \
        -ngl 99 -fa on -c 4096 -npp 1 -ntg "$N_GEN" -npl "${PARALLEL#1,}" --output-format jsonl \
        > "$WORK/llamacpp-batched-$name.jsonl" 2>&1
    fi
    python3 bench/cuda_summary.py "$WORK" "$path" | tail -n +5   # this model's rows
  done
fi

if has depth; then
  wait_models
  path=$MODELS/llama8b-Q4_0.gguf name=llama8b-Q4_0
  step "hetinfer $name @ d$DEPTH" 90 python3 -m hetinfer bench "$path" --devices "$BENCH_DEVICES" -p 0 -n "$N_GEN" \
    -d "$DEPTH" -r "$REPS" --json > "$WORK/hetinfer-$name-x1-d$DEPTH.json" 2> "$WORK/hetinfer-$name-x1-d$DEPTH.err"
  if [ -x "$LLAMA/llama-bench" ]; then
    step "llama-bench $name @ d$DEPTH" 90 env LD_LIBRARY_PATH="$llama_libs" "$LLAMA/llama-bench" -m "$path" -ngl 99 \
      -fa 1 -p 0 -n "$N_GEN" -d "$DEPTH" -r "$REPS" -o json > "$WORK/llamacpp-$name-d$DEPTH.json" \
      2> "$WORK/llamacpp-$name-d$DEPTH.err"
  fi
fi

if has sanitize; then
  # racecheck looks at shared memory: the kernels that use it (mmq, attention, the norms' block sums)
  for check in "memcheck:cuda" "racecheck:cuda and (matmul or attention or norm)"; do
    tool=${check%%:*}
    log "compute-sanitizer $tool over the CUDA op tests"
    step "$tool" 150 compute-sanitizer --tool "$tool" --target-processes all --print-limit 20 \
      python3 -m pytest -q -x -p no:cacheprovider -k "${check#*:}" tests/test_ops.py > "$WORK/sanitize-$tool.log" 2>&1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" "$WORK/sanitize-$tool.log" | tail -3
  done
fi

if has profile; then   # what is left: which kernels a decode step spends its time in, for the next round
  wait_models
  log "ncu over one decode step of llama8b-Q4_0, after two unprofiled ones"
  step ncu 150 ncu --clock-control none --target-processes all --csv --page raw --print-units base \
    --print-kernel-base demangled \
    --metrics "$(python3 bench/ncu_summary.py --metrics)" --launch-skip "$NCU_SKIP" --launch-count "$NCU_COUNT" \
    python3 -m hetinfer bench "$MODELS/llama8b-Q4_0.gguf" --devices "$BENCH_DEVICES" -p 0 -n 4 -r 1 \
    > "$WORK/ncu-decode.csv" 2> "$WORK/ncu-decode.err"
  if python3 bench/ncu_summary.py "$WORK/ncu-decode.csv" > "$WORK/ncu-decode.md" 2>> "$WORK/session.log"; then
    head -24 "$WORK/ncu-decode.md"
  else
    log "profile: no table (ncu-decode.err says why)"; rm -f "$WORK/ncu-decode.md"
  fi
fi
