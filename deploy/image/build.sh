#!/bin/sh
# `make image`: builds the Dockerfile's cpu target as fusionserve:cpu, with docker when present,
# podman otherwise. Prints the build time and the image size.
#   PYTHON_IMAGE=...   base image (docker: the Dockerfile's default, python:3.11-slim-bookworm;
#                      podman: a bookworm root made here by deploy/image/base.sh, for machines
#                      without a registry; set it to use the official base)
#   IMAGE_ENGINE=...   force docker or podman
# With podman, the build's pip reaches the package registry the way pip on this machine does:
# the registry part of its configuration and its CA bundle are mounted into the build steps
# (never into the image; see pip_build_conf.py). Always `--runtime runc` (crun fails on hybrid
# cgroups) and explicit ulimits (the defaults ask for limits some sandboxes refuse).
set -eu
cd "$(dirname "$0")/../.."
tag=fusionserve:cpu
# docker only when its daemon answers: a docker CLI alone (no engine) is common on CI machines.
engine=${IMAGE_ENGINE:-$(docker info >/dev/null 2>&1 && echo docker || echo podman)}
start=$(date +%s)

if [ "$engine" = docker ]; then
  set -- ${PYTHON_IMAGE:+--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"}
else
  engine="podman --runtime runc"
  python_image=${PYTHON_IMAGE:-$(sh deploy/image/base.sh "$engine")}
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # Both mounts go over paths every Debian base has (/root, the system CA bundle), so the
  # build's RUN steps leave no placeholder for them in the image. pip reads the first as its
  # user configuration; Debian's pip, truststore and `cert` read the second.
  ca=/etc/ssl/certs/ca-certificates.crt
  "${PYTHON:-python3}" deploy/image/pip_build_conf.py "$tmp/home/.config/pip/pip.conf" "$tmp/ca.crt" "$ca"
  # --format docker keeps the HEALTHCHECK (OCI images have none); --network host so the
  # build resolves and reaches the registry as this machine does.
  set -- --format docker --network host \
    --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    -v "$tmp/home:/root:ro" -v "$tmp/ca.crt:$ca:ro" \
    --build-arg "PYTHON_IMAGE=$python_image"
fi

# shellcheck disable=SC2086  # the engine is a command line
$engine build --target cpu -t "$tag" "$@" .
# shellcheck disable=SC2086
size=$($engine image inspect --format '{{.Size}}' "$tag")
echo "image: $tag built by ${engine%% *} in $(($(date +%s) - start)) s (base included)," \
  "size $((size / 1000000)) MB"
