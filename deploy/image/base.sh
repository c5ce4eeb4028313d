#!/bin/sh
# Makes a python:3.11-slim-bookworm stand-in from Debian's own packages, for machines with
# podman but no image registry: debootstrap a bookworm root, then `podman import` it. Prints the
# image name, for the Dockerfile's PYTHON_IMAGE build argument.
#   sh deploy/image/base.sh [ENGINE]     ENGINE: the podman command line (default: podman)
# Needs root and debootstrap. The root is cached as a tarball keyed by this script's contents
# (suite, package list, clean-up), so a CI run after the first only imports it; delete
# $FUSIONSERVE_IMAGE_CACHE (default ~/.cache/fusionserve-image) to pick up newer packages.
# DEBIAN_MIRROR overrides debootstrap's default mirror.
set -eu
engine=${1:-podman}
suite=bookworm
# python3.11-venv for install.sh's venv; minbase does not resolve the virtual
# python3.11-distutils that the venv needs, so python3-distutils is named (it brings python3).
packages=python3.11,python3.11-venv,python3-distutils,ca-certificates
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

key=$(sha256sum "$0" | cut -c1-12)
image=localhost/fusionserve-base:$suite-py311-$key
cache=${FUSIONSERVE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fusionserve-image}
tarball=$cache/$suite-py311-$key.tar

# shellcheck disable=SC2086  # the engine is a command line
if $engine image exists "$image"; then
  echo "$image"
  exit 0
fi

if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/root.XXXXXX")
  # --one-file-system: a debootstrap killed midway may leave the host's /dev bound inside.
  trap 'rm -rf --one-file-system "$root"' EXIT
  echo "base: debootstrap $suite ($packages) into $root" >&2
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >&2
  # Security and point-release fixes, as the official slim image carries them.
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} $suite-security main
EOF
  # The chroot has no _apt user's view of the download directories, nor a /dev/pts for dpkg.
  chroot "$root" sh -c 'apt="apt-get -qq -o APT::Sandbox::User=root -o Dpkg::Use-Pty=0"
    $apt update && DEBIAN_FRONTEND=noninteractive $apt -y upgrade' >&2
  # What a slim image drops: package caches, docs (copyrights kept), man pages, translations.
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/tmp/*
  find "$root/usr/share/doc" -type f ! -name copyright -delete
  tar -C "$root" --numeric-owner -cf "$tarball.part" .
  rm -f "$cache/$suite"-py311-*.tar  # roots of older versions of this script
  mv "$tarball.part" "$tarball"
fi
echo "base: podman import $tarball as $image" >&2
# shellcheck disable=SC2086
$engine import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' "$tarball" "$image" >&2
echo "$image"
