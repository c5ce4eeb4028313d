# syntax=docker/dockerfile:1
# fusionserve images. Pick one with --target:
#   docker build --target cpu -t fusionserve:cpu .   # python:3.11-slim + onnxruntime
#   docker build --target gpu -t fusionserve:gpu .   # CUDA 13 + cuDNN 9 runtime + onnxruntime-gpu
# Without --target the last stage, cpu, is built. Base images are build args (PYTHON_IMAGE,
# CUDA_IMAGE) so a mirror or a newer patch release needs no edit.
# Both install only the `serve` extra (no torch, no transformers) from a pinned lock, through
# requirements/install.sh -- the script CI replays in a clean venv (.ci/replay_serve_install.sh).
# Bundles come from exported/ (teachers are left out by .dockerignore; mount them if wanted).
# Give the container more than FUSIONSERVE_DRAIN_TIMEOUT_S (20 s) to stop:
#   docker run --stop-timeout 30 ...   (compose: stop_grace_period; k8s: terminationGracePeriodSeconds)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu22.04

# ---------------------------------------------------------------- GPU: CUDA runtime + Python 3.11
FROM ${CUDA_IMAGE} AS gpu-base
ENV DEBIAN_FRONTEND=noninteractive
# Ubuntu 22.04 ships CPython 3.11 in universe; the lock is resolved for 3.11.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# ---------------------------------------------------------------- GPU: build the venv
FROM gpu-base AS build-gpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHON=python3.11
WORKDIR /src
COPY requirements/install.sh requirements/build.lock requirements/serve-gpu.lock requirements/
RUN sh requirements/install.sh deps /opt/venv requirements/serve-gpu.lock
COPY pyproject.toml README.md ./
COPY app/ app/
COPY fusionserve/ fusionserve/
RUN sh requirements/install.sh app /opt/venv /src

# ---------------------------------------------------------------- GPU: runtime image
FROM gpu-base AS gpu
LABEL org.opencontainers.image.title="fusionserve (GPU)" \
      org.opencontainers.image.description="Multi-modal, multi-task medical classifier serving (ONNX Runtime, CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0"
# CUDA first, CPU as the fallback the service logs and reports in /models.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    FUSIONSERVE_BUNDLE_DIR=/srv/exported \
    FUSIONSERVE_HOST=0.0.0.0 \
    FUSIONSERVE_PORT=8000 \
    FUSIONSERVE_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider
RUN groupadd --system --gid 10001 fusionserve \
    && useradd --system --uid 10001 --gid fusionserve --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin fusionserve
COPY --from=build-gpu /opt/venv /opt/venv
COPY exported/ /srv/exported/
WORKDIR /srv
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('FUSIONSERVE_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["fusionserve"]
CMD ["serve"]

# ---------------------------------------------------------------- CPU: build the venv
FROM ${PYTHON_IMAGE} AS build-cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/install.sh requirements/build.lock requirements/serve.lock requirements/
RUN sh requirements/install.sh deps /opt/venv requirements/serve.lock
COPY pyproject.toml README.md ./
COPY app/ app/
COPY fusionserve/ fusionserve/
RUN sh requirements/install.sh app /opt/venv /src

# ---------------------------------------------------------------- CPU: runtime image
FROM ${PYTHON_IMAGE} AS cpu
LABEL org.opencontainers.image.title="fusionserve (CPU)" \
      org.opencontainers.image.description="Multi-modal, multi-task medical classifier serving (ONNX Runtime, CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FUSIONSERVE_BUNDLE_DIR=/srv/exported \
    FUSIONSERVE_HOST=0.0.0.0 \
    FUSIONSERVE_PORT=8000 \
    FUSIONSERVE_PROVIDERS=CPUExecutionProvider
RUN groupadd --system --gid 10001 fusionserve \
    && useradd --system --uid 10001 --gid fusionserve --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin fusionserve
COPY --from=build-cpu /opt/venv /opt/venv
COPY exported/ /srv/exported/
WORKDIR /srv
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('FUSIONSERVE_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["fusionserve"]
CMD ["serve"]
