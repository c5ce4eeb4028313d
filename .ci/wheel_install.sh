#!/usr/bin/env bash
# The README's install, as a user gets it: builds the wheel from the tracked files, installs it
# with the serve lock into a clean venv outside the checkout, serves BUNDLE_DIR from there,
# checks the pages' assets and runs the Chromium page test against it. Non-zero on any failure.
# Usage: bash .ci/wheel_install.sh BUNDLE_DIR   (run from the CI venv: pytest + playwright)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python .ci/wheel_install.py "$@"
