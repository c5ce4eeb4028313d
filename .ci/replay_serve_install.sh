#!/usr/bin/env bash
# Proves the CPU image's install path without a Docker engine: replays the Dockerfile's
# build-cpu/cpu stages in a clean venv (same lock, same requirements/install.sh, serve extra only),
# asserts torch is absent, serves BUNDLE_DIR and answers a real /predict. Non-zero on any failure.
# Usage: bash .ci/replay_serve_install.sh [BUNDLE_DIR]   (default exported/)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
command -v python3.11 >/dev/null 2>&1 && PY=python3.11
exec "$PY" .ci/replay_serve_install.py "$@"
