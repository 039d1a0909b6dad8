"""Start-up cost of a SYCL device: the runtime's start, then building its
kernels or loading them from the runtime's persistent cache. Each measurement
is a fresh process on one cache folder: "cold" starts with it empty; the
runtime caches the kernels' SPIR-V in the first process and the device
binaries only in the second, so "second" still compiles for the device and
"warm" (the third and later) loads everything.

    python bench/sycl_start.py [--device sycl:0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

PROBE = """
import json, time
t0 = time.perf_counter()
from hetinfer import devices, sycl_runtime
why = sycl_runtime.unavailable_reason()      # loads the runtime and counts its devices
assert not why, why
t1 = time.perf_counter()
devices.make_device({device!r})             # kernels: built, or loaded from the cache
t2 = time.perf_counter()
print(json.dumps({{"runtime_s": t1 - t0, "kernels_s": t2 - t1}}))
"""


def measure(device: str, cache: str) -> dict:
    env = dict(os.environ, SYCL_CACHE_DIR=cache, SYCL_CACHE_PERSISTENT="1")
    out = subprocess.run([sys.executable, "-c", PROBE.format(device=device)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="sycl:0")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    runs = {"cold": [], "second": [], "warm": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            for kind in runs:
                runs[kind].append(measure(args.device, cache))
    for name, runs in runs.items():
        print(f"{name}: runtime start {statistics.median(r['runtime_s'] for r in runs):.2f} s, "
              f"kernels {statistics.median(r['kernels_s'] for r in runs):.2f} s (median of {len(runs)})")


if __name__ == "__main__":
    main()
