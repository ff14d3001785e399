#!/usr/bin/env bash
# The GPU table of benchmarks/pretrain_throughput.py (see its docstring) on
# one NVIDIA GPU, electra_small then electra_base, in under 8 minutes.
#
# The GPU machine has PyTorch, JAX, transformers and NumPy but neither Keras
# nor keras-hub, and no network, so the wheels travel with the repository:
#
#   bash benchmarks/gpu_throughput.sh --prepare   # here: wheels into .whl/
#   bash benchmarks/gpu_throughput.sh             # there, from the root
#
# Results (JSON, and the printed tables as markdown) go to
# ${OUT:-benchmarks/results}/pretrain_throughput_gpu_<preset>.{json,md}.
# BUDGET (seconds, default 470) bounds the whole run: each preset runs under
# a time limit, so a hang in electra_base leaves electra_small's table.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
WHEELS=.whl

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "$0"
    echo "Usage: bash benchmarks/gpu_throughput.sh [--prepare | --help]"
}

# The wheels that Keras and keras-hub need beyond the GPU image's packages
# (absl-py, rich, numpy, h5py, ml-dtypes, packaging, regex, requests, tqdm,
# pyyaml, protobuf, tokenizers): the versions in .venv, for CPython 3.12;
# typing-extensions (optree's) too, should the image's be older. Not
# tensorflow-text or sentencepiece, which keras-hub lists: keras-hub and
# keras_electra import on JAX and PyTorch without them (tensorflow-text
# would bring TensorFlow).
prepare() {
    local requirements
    requirements=$(.venv/bin/python -c '
from importlib.metadata import version
names = ("keras", "keras-hub", "namex", "optree", "typing-extensions",
         "kagglehub", "kagglesdk")
print(" ".join(f"{name}=={version(name)}" for name in names))')
    rm -rf "$WHEELS"
    "$PYTHON" -m pip download --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any \
        -d "$WHEELS" $requirements
    ls -l "$WHEELS"
}

# One preset under a time limit: the script stops the variant that runs
# past it (the others keep their rows); `timeout` is the backstop.
run_preset() {
    local preset=$1 limit=$2
    echo "=== $preset (time limit ${limit} s)"
    if ! timeout -k 10 $((limit + 30)) "$PYTHON" \
        benchmarks/pretrain_throughput.py --gpu-table --device cuda \
        --preset "$preset" --time-limit "$limit" \
        --output "$OUT/pretrain_throughput_gpu_$preset.json" \
        | tee "$OUT/pretrain_throughput_gpu_$preset.md"; then
        echo "=== $preset did not finish cleanly (see above)"
    fi
}

case "${1:-}" in
    --prepare) prepare; exit 0 ;;
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) usage >&2; exit 2 ;;
esac

ls "$WHEELS"/*.whl >/dev/null || {
    echo "No wheels in $WHEELS/: run 'bash $0 --prepare' first." >&2
    exit 1
}
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
export PYTHONPATH=/tmp/site:$PWD
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version \
    --format=csv || true

BUDGET=${BUDGET:-470}
# electra_small takes most of its time compiling, as electra_base does (the
# same 12 layers): it gets a little under half of what is left.
run_preset electra_small $(((BUDGET - SECONDS) * 9 / 20))
run_preset electra_base $((BUDGET - SECONDS - 40))
echo "=== done in $SECONDS s"
