#!/usr/bin/env bash
# GPU readiness, measured on a host with an NVIDIA GPU (never by CI): the student graph on
# onnxruntime's CUDA execution provider with and without I/O binding against the CPU, its outputs
# against the CPU's, and the served pipeline on CUDA against max_batch_size (python -m fusionserve.bench.gpu).
# Needs onnxruntime-gpu instead of the CPU wheel, built for the CUDA and cuDNN present; the
# CUDA/cuDNN libraries of pip's nvidia-* packages are put on LD_LIBRARY_PATH for the served
# process, which never imports torch.
#
#   bench/gpu.sh [OUT_DIR] [python -m fusionserve.bench.gpu options...]     (OUT_DIR default: bench/gpu-out)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-bench/gpu-out}
shift || true
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}

NV_LIBS=$("$PY" - <<'PYEOF'
import glob, os, site, sys
roots = {*site.getsitepackages(), site.getusersitepackages(), *sys.path}
dirs = {
    d
    for r in roots
    if r and os.path.isdir(os.path.join(r, "nvidia"))
    for d in glob.glob(os.path.join(r, "nvidia", "**", "lib"), recursive=True)
}
print(":".join(sorted(dirs)))
PYEOF
)
export LD_LIBRARY_PATH="${NV_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import onnxruntime as o, sys; p = o.get_available_providers(); \
print('onnxruntime', o.__version__, p); \
sys.exit(0 if 'CUDAExecutionProvider' in p else 'no CUDAExecutionProvider: install onnxruntime-gpu')"
PYTHONUNBUFFERED=1 "$PY" -m fusionserve.bench.gpu --require-provider CUDAExecutionProvider \
  --out "$OUT_DIR/GPU.md" --json "$OUT_DIR/gpu.json" "$@"
