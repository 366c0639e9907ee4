# syntax=docker/dockerfile:1
# One image for everything rlops runs: the training runtime (Ray RLlib, PyTorch CPU), the
# operator and the SLURM bridge. `docker build -t rlops:0.1.0 .`, or scripts/build-image.sh
# (podman; makes a Debian bookworm base locally when no registry answers).
#
# Apptainer-friendly: nothing depends on USER or ENTRYPOINT at run time. `apptainer exec
# docker://rlops:0.1.0 rlops train ...` runs as the calling user: PATH reaches the venv,
# and everything written goes to $HOME or /tmp.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Build tools for any dependency that ships no wheel for this platform.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/rlops
ENV PATH=/opt/rlops/bin:$PATH
# torch first, pinned, from the CPU index: any other spec pulls gigabytes of CUDA wheels.
# An empty TORCH_INDEX_URL leaves the choice to the build's pip configuration (a local
# wheel: scripts/build-image.sh passes the host's pip configuration in).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN if [ -n "$TORCH_INDEX_URL" ]; then export PIP_INDEX_URL="$TORCH_INDEX_URL"; fi \
    && pip install torch==2.13.0
COPY requirements/lock.txt /src/requirements/lock.txt
RUN pip install -r /src/requirements/lock.txt
# The rest of ray[default]: the dashboard and its job API, which KubeRay submits through.
COPY requirements/image.txt /src/requirements/image.txt
RUN pip install -r /src/requirements/image.txt
COPY pyproject.toml README.md /src/
COPY rlops /src/rlops
RUN pip wheel --no-deps --wheel-dir /wheels /src \
    && pip install --no-deps /wheels/rlops-*.whl \
    && rlops --help > /dev/null

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="rlops" \
      org.opencontainers.image.description="Declarative RL experiments and sweeps: runtime, operator and SLURM bridge" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/rlops /opt/rlops
# A login shell (KubeRay starts Ray pods with `bash -lc`) resets PATH from /etc/profile:
# profile.d puts the image's interpreter and `ray` first again.
# A home any uid can write to (Apptainer and OpenShift run as arbitrary users; Kubernetes
# with a read-only root filesystem sets HOME=/tmp instead).
# hadolint ignore=SC2016
RUN groupadd --gid 10001 rlops \
    && useradd --uid 10001 --gid 10001 --home-dir /home/rlops --create-home --shell /usr/sbin/nologin rlops \
    && chmod 1777 /home/rlops \
    && echo 'export PATH=/opt/rlops/bin:$PATH' > /etc/profile.d/rlops.sh
ENV PATH=/opt/rlops/bin:$PATH \
    HOME=/home/rlops \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RAY_USAGE_STATS_ENABLED=0
WORKDIR /tmp
USER 10001:10001
CMD ["rlops", "--help"]
