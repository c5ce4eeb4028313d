#!/usr/bin/env bash
# Builds the real CPU image with the documented command (`make image`) and runs it
# (.ci/image_check.py): read-only root, user 10001, readiness, the README's /predict and
# tritonclient calls, the demo and docs pages with their assets, SIGTERM with requests in flight.
# CI machines have no Docker engine and no image registry: podman builds on a bookworm base made
# with debootstrap (deploy/image/base.sh), cached under ~/.cache/fusionserve-image.
# Run from an environment with the dev extra (tritonclient[http], numpy), e.g. after .ci/run's
# install. Needs root for apt-get and debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in podman runc debootstrap make; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ] && ! docker info >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

make image
python .ci/image_check.py fusionserve:cpu
