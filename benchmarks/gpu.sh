#!/usr/bin/env bash
# One short GPU run of the benchmark (ResNet-50, 224x224, batch 256, bf16, JAX/XLA).
#
# The lent GPU machine has JAX but neither TensorFlow nor Keras, so Keras travels as
# wheels. Here, in the repository root (once):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl keras namex optree
# then call the device tool's run with carry=[".whl"] and the command
#   bash benchmarks/gpu.sh
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
out=${OUT:-.}
python3 benchmarks/bench.py --gpu --backends jax --rounds 2 --out "$out/bench-gpu.json" \
  | tee "$out/bench-gpu.md"
