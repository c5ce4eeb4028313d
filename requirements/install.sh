#!/bin/sh
# The serving install, in one place: the Dockerfile runs it and .ci/replay_serve_install.sh
# replays it in a clean virtualenv, so CI proves the image's install path without a Docker engine.
#   install.sh deps VENV LOCKFILE   create VENV, pin pip + the build backend (build.lock), install
#                                   the pinned closure (wheels only, no dependency resolution)
#   install.sh app  VENV SRC_DIR    install fusionserve from SRC_DIR, check the closure, drop pip
#                                   and setuptools (the runtime installs nothing)
# Two steps so the image caches the dependency layer across source changes.
# PYTHON selects the interpreter that creates the venv (default python3).
set -eu
step=${1:-}
venv=${2:-}
src=${3:-}
pip_install() {
  "$venv/bin/python" -m pip install --disable-pip-version-check \
    --no-input --require-virtualenv --no-deps "$@"
}
[ -n "$venv" ] && [ -n "$src" ] || step=usage
case "$step" in
  deps)
    "${PYTHON:-python3}" -m venv "$venv"
    # Same pip and setuptools whatever the base image's ensurepip bundles.
    pip_install --only-binary=:all: -r "$(dirname "$0")/build.lock"
    pip_install --only-binary=:all: -r "$src"
    ;;
  app)
    # The pinned setuptools builds the wheel: no unpinned build tool is fetched.
    pip_install --no-build-isolation "$src"
    "$venv/bin/python" -m pip check
    "$venv/bin/python" -m pip uninstall --yes --quiet pip setuptools
    ;;
  *)
    echo "usage: install.sh deps VENV LOCKFILE | install.sh app VENV SRC_DIR" >&2
    exit 2
    ;;
esac
