"""Builds the CUDA kernels (kernels/cuda/*.cu) as host C++ against the CPU
emulation in this folder (cuda_runtime.h, emulator.cpp) into one shared
library for tests/test_cuda_emulated.py. Test machinery only: nothing here
is part of the package or its build.

Each .cu is copied with two source rewrites, nothing else:
- a launch `kernel<<<grid, block, shared, stream>>>(args);` becomes
  `::hi_emu::launch("kernel", grid, block, shared, stream, kernel, args);`
- a declaration `__shared__ T a[n], b;` becomes
  `static thread_local T a[n], b; ::hi_emu::shared_declared(&a, sizeof(a)); ...`
  (per-block shared memory: a worker thread runs one block at a time, and
  the first thread of a block to pass the declaration poisons it).
Both keep every line where it was, and a #line directive names the original
file, so compiler messages and the emulator's reports point into kernels/cuda.
The files compile in parallel with g++ (-std=c++20, -ffp-contract=off so
that only an explicit fmaf fuses, -fno-strict-aliasing for the kernels'
reinterpret_casts).

HI_EMU_SANITIZE=1 builds with AddressSanitizer and UBSan, which then see the
kernels' reads and writes of the tests' numpy buffers (out-of-bounds reads
included, which the tests' canaries cannot); Python must run with the
runtimes preloaded, as .ci/sanitize does:
  HI_EMU_SANITIZE=1 ASAN_OPTIONS=detect_leaks=0 \
  LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)" \
  python -m pytest tests/test_cuda_emulated.py
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
KERNELS = ROOT / "kernels" / "cuda"
# Host sources linked in: qtype_info (matmul.cu, rows.cu) and the CPU's own
# activation quantiser (the reference of quantize_act's blocks).
HOST_SOURCES = [ROOT / "csrc" / "qtypes.cpp", ROOT / "csrc" / "cpu" / "act_q8.cpp"]
INCLUDES = [HERE, ROOT / "kernels" / "common", KERNELS, ROOT / "kernels", ROOT / "csrc", ROOT / "csrc" / "device"]
FLAGS = ["-std=c++20", "-O1", "-fPIC", "-pthread", "-ffp-contract=off", "-fno-strict-aliasing",
         "-DHI_CUDA_EMULATOR=1", "-Wall", "-Wno-unknown-pragmas", "-Wno-unused-function"]

SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]

_LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;{}()]*>)?)\s*<<<")
_SHARED = re.compile(r"\b__shared__\b")


def compiler() -> str | None:
    """The C++ compiler to use (CXX, else g++), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


def _mask(src: str) -> str:
    """src with comments and string/char literals blanked (newlines kept), so
    the scanners below never match inside them; offsets stay the same."""
    out = list(src)
    i, n = 0, len(src)
    while i < n:
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif src[i] in "\"'":
            j = i + 1
            while j < n and src[j] != src[i]:
                j += 2 if src[j] == "\\" else 1
            j += 1
        else:
            i += 1
            continue
        for k in range(i, min(j, n)):
            if out[k] != "\n":
                out[k] = " "
        i = j
    return "".join(out)


def _close(text: str, i: int, stop: str) -> int:
    """Index of the first `stop` at bracket depth 0 from i (-1 if none)."""
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if depth == 0 and c in stop:
            return j
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
    return -1


def _split_top(text: str) -> list[str]:
    """text split at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for j, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:j])
            start = j + 1
    parts.append(text[start:])
    return parts


def _keep_lines(old: str, new: str) -> str:
    """new, padded with the newlines that old had beyond its own."""
    missing = old.count("\n") - new.count("\n")
    assert missing >= 0, "a rewrite may not add lines"
    return new + "\n" * missing


def rewrite(src: str, name: str = "<source>") -> tuple[str, int, int]:
    """(the rewritten source, launches rewritten, __shared__ declarations rewritten)."""
    masked = _mask(src)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) over src
    for m in _LAUNCH.finditer(masked):
        kernel, cfg_start = m.group(1), m.end()
        cfg_end = masked.find(">>>", cfg_start)
        if cfg_end < 0:
            raise ValueError(f"{name}: unterminated <<< at offset {m.start()}")
        paren = cfg_end + 3
        while masked[paren].isspace():
            paren += 1
        if masked[paren] != "(":
            raise ValueError(f"{name}: no argument list after {kernel}<<<...>>>")
        close = _close(masked, paren + 1, ")")
        semi = close + 1
        while masked[semi].isspace():
            semi += 1
        if close < 0 or masked[semi] != ";":
            raise ValueError(f"{name}: cannot parse the launch of {kernel}")
        cfg = [c.strip() for c in _split_top(masked[cfg_start:cfg_end])]
        if not 2 <= len(cfg) <= 4:
            raise ValueError(f"{name}: {kernel}<<<{', '.join(cfg)}>>> needs 2 to 4 launch parameters")
        cfg += ["0", "nullptr"][len(cfg) - 2:]
        args = masked[paren + 1:close].strip()
        new = (f'::hi_emu::launch("{" ".join(kernel.split())}", {cfg[0]}, {cfg[1]}, {cfg[2]}, {cfg[3]}, {kernel}'
               + (f", {args}" if args else "") + ");")
        edits.append((m.start(), semi + 1, _keep_lines(src[m.start():semi + 1], new)))
    n_launches = len(edits)
    for m in _SHARED.finditer(masked):
        end = _close(masked, m.end(), ";")
        if end < 0:
            raise ValueError(f"{name}: unterminated __shared__ declaration")
        names = []
        for part in _split_top(masked[m.end():end]):
            part = part.strip()
            while part.endswith("]"):  # drop the array bounds
                depth = 0
                for j in range(len(part) - 1, -1, -1):
                    depth += part[j] == "]"
                    depth -= part[j] == "["
                    if depth == 0:
                        part = part[:j].rstrip()
                        break
            ident = re.search(r"([A-Za-z_]\w*)$", part)
            if not ident:
                raise ValueError(f"{name}: cannot find the name in a __shared__ declaration")
            names.append(ident.group(1))
        new = ("static thread_local" + src[m.end():end + 1] + "".join(
            f" ::hi_emu::shared_declared(&{v}, sizeof({v}));" for v in names))
        edits.append((m.start(), end + 1, new))
    out, pos = [], 0
    for start, end, new in sorted(edits):
        out.append(src[pos:start])
        out.append(new)
        pos = end
    out.append(src[pos:])
    return "".join(out), n_launches, len(edits) - n_launches


def plugin_sources() -> list[Path]:
    """The CUDA plugin's host sources: those CMakeLists.txt's hetinfer_cuda target lists."""
    text = (ROOT / "CMakeLists.txt").read_text()
    target = re.search(r"add_library\(hetinfer_cuda MODULE(.*?)\)", text, re.S)
    if not target:
        raise ValueError("CMakeLists.txt: no add_library(hetinfer_cuda MODULE ...)")
    return [ROOT / f for f in target.group(1).split() if f.endswith(".cpp")]


def sanitized() -> bool:
    """Whether HI_EMU_SANITIZE asks for an AddressSanitizer build."""
    return os.environ.get("HI_EMU_SANITIZE", "") not in ("", "0")


def _compile(cxx: str, source: Path, obj: Path, defines: list[str]) -> str:
    cmd = [cxx, *FLAGS, *defines, *(SANITIZE if sanitized() else []), *(f"-I{p}" for p in INCLUDES), "-c",
           str(source), "-o", str(obj)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"compiling {source} failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stderr  # warnings


def build(out_dir: Path, jobs: int | None = None, plugin: bool = False) -> Path:
    """Rewrites and compiles every kernels/cuda/*.cu plus the emulator into
    out_dir/libhi_cuda_emu.so, whose C entry points (entry.cpp) call the
    kernels' launchers on host memory; or, with `plugin`, into
    out_dir/libhetinfer_cuda.so: the whole CUDA plugin of csrc/cuda, loaded as
    hetinfer loads the real one, on emulated device memory (runtime.cpp).
    Returns its path. Raises RuntimeError with the compiler's output when a
    file does not compile."""
    cxx = compiler()
    if cxx is None:
        raise FileNotFoundError("no C++ compiler (g++ or $CXX)")
    out_dir = Path(out_dir)
    gen = out_dir / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    sources: list[Path] = []
    # Test kernels: entry.cpp's C entry points, probe.cu's launches for the plugin's checks.
    kernels = sorted(KERNELS.glob("*.cu")) + [HERE / ("probe.cu" if plugin else "entry.cpp")]
    for cu in kernels:
        src = cu.read_text()
        text, launches, _ = rewrite(src, cu.name)
        if _mask(src).count("<<<") != launches:
            raise ValueError(f"{cu}: {_mask(src).count('<<<')} launches, {launches} recognised by the rewrite")
        dst = gen / (cu.stem + ".cpp")
        dst.write_text(f'#line 1 "{cu}"\n' + text)
        sources.append(dst)
    sources += [HERE / "emulator.cpp", HERE / "runtime.cpp", *(plugin_sources() if plugin else HOST_SOURCES)]
    defines = ["-DHI_EMU_DEVICE_MEMORY=1"] if plugin else []
    objs = [out_dir / f"{i:02d}_{s.stem}.o" for i, s in enumerate(sources)]
    # Biggest first (attention, the matmuls) so the pool ends together.
    order = sorted(range(len(sources)), key=lambda i: -sources[i].stat().st_size)
    with concurrent.futures.ThreadPoolExecutor(jobs or os.cpu_count() or 2) as pool:
        for f in [pool.submit(_compile, cxx, sources[i], objs[i], defines) for i in order]:
            f.result()
    lib = out_dir / ("libhetinfer_cuda.so" if plugin else "libhi_cuda_emu.so")
    cmd = [cxx, "-shared", "-pthread", "-Wl,-Bsymbolic", "-Wl,--no-undefined", *(SANITIZE if sanitized() else []),
           "-o", str(lib), *map(str, objs)]  # -Bsymbolic: its own hi:: symbols, whatever else the process has loaded
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"linking failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return lib


def use_plugin(lib: Path) -> None:
    """Makes hetinfer's cuda:N devices those of the plugin at `lib` from now on."""
    from hetinfer import cuda_runtime

    cuda_runtime.PLUGIN = Path(lib)
    cuda_runtime.unavailable_reason.cache_clear()
    cuda_runtime.devices.cache_clear()


def use_emulated_plugin() -> Path:
    """Makes hetinfer's cuda:N the emulated plugin: the one HI_EMU_PLUGIN
    names, else one built now into a temporary folder. Returns its path."""
    import tempfile

    lib = os.environ.get("HI_EMU_PLUGIN") or build(Path(tempfile.mkdtemp(prefix="hetinfer-cuda-emulated-")),
                                                   plugin=True)
    use_plugin(Path(lib))
    return Path(lib)
