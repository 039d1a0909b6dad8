#!/usr/bin/env bash
# Fetches llama.cpp's source as PyPI's llama-cpp-python sdist vendors it, and
# keeps only what llama-bench and llama-batched-bench need to build (about
# 8 MB instead of 77), in .llamacpp/llama.cpp.tar.gz: small enough to carry
# to the lent GPU machine, which cannot reach PyPI. Run on a machine that can.
#   bash bench/fetch_llamacpp.sh [VERSION]     (default 0.3.36)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-0.3.36}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --no-binary=:all: --no-build-isolation "llama-cpp-python==$version" -d "$work" \
  || python3 - "$version" "$work" <<'PY'
import json, sys, urllib.parse, urllib.request
version, folder = sys.argv[1], sys.argv[2]
index = f"https://pypi.org/pypi/llama-cpp-python/{version}/json"
sdist = next(f for f in json.load(urllib.request.urlopen(index))["urls"] if f["packagetype"] == "sdist")
urllib.request.urlretrieve(urllib.parse.urljoin(index, sdist["url"]), f"{folder}/{sdist['filename']}")
PY
tar xzf "$work"/llama_cpp_python-"$version".tar.gz -C "$work"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"
mkdir -p .llamacpp
tar czf .llamacpp/llama.cpp.tar.gz -C "$src" --exclude=./models --exclude=./docs --exclude=./tests \
  --exclude=./.github --exclude=./media --exclude=./tools/ui --exclude=./benches --exclude=./conversion \
  --exclude=./gguf-py .
echo "$version" > .llamacpp/VERSION
ls -la .llamacpp
