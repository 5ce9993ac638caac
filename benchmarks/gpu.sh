#!/usr/bin/env bash
# One short GPU run of the benchmark (ResNet-50, 224x224, batch 256, bf16, JAX/XLA), on a
# machine with an NVIDIA GPU and JAX with CUDA:
#   bash benchmarks/gpu.sh            # writes bench-gpu.json and bench-gpu.md (OUT=dir: there)
# Keras comes from the environment (pip install keras). A machine without network access
# can take it as wheels in .whl/ of the checkout, downloaded elsewhere with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl keras namex optree
set -euo pipefail
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
out=${OUT:-.}
python3 benchmarks/bench.py --gpu --backends jax --rounds 2 --out "$out/bench-gpu.json" \
  | tee "$out/bench-gpu.md"
