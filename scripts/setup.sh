#!/usr/bin/env bash
# Set up this checkout: Debian packages (SLURM, munge, Prometheus; podman, runc and
# debootstrap for the image, scripts/build-image.sh), a virtualenv in .venv
# with torch (CPU, pinned, installed before Ray) and every pinned dependency, and rlops.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2: the multi-node test clusters (network namespaces)
APT_PACKAGES=(slurm-wlm slurmrestd munge prometheus podman runc debootstrap zsh fish chromium iproute2)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.rlops-setup
want=$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  # torch first and pinned: any other spec pulls gigabytes of CUDA wheels.
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -r requirements/lock.txt
  .venv/bin/pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
# Helm's Go library (helm-sdkpy, used by the chart tests) needs Python >= 3.12: its own venv.
if [ ! -x .venv-helm/bin/python ]; then
  PY312=$(PYENV_VERSION=3.12.1 pyenv which python 2>/dev/null || command -v python3.12 || true)
  [ -n "$PY312" ] || { echo "setup: no Python 3.12 for .venv-helm (pyenv 3.12.1 or python3.12)" >&2; exit 1; }
  "$PY312" -m venv .venv-helm
fi
helm_stamp=.venv-helm/.rlops-setup
helm_want=$(sha256sum requirements/helm.txt | cut -d' ' -f1)
if [ ! -f "$helm_stamp" ] || [ "$(cat "$helm_stamp")" != "$helm_want" ]; then
  echo "setup: installing helm-sdkpy into .venv-helm"
  .venv-helm/bin/pip install -q -r requirements/helm.txt
  echo "$helm_want" > "$helm_stamp"
fi
# A test server in a virtualenv of its own, (re)installed when its requirements change:
#   server_venv VENV REQUIREMENTS WHAT
server_venv() {
  local venv=$1 requirements=$2 what=$3 want
  if [ ! -x "$venv/bin/python" ]; then
    "$PY" -m venv "$venv"
  fi
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -f "$venv/.rlops-setup" ] || [ "$(cat "$venv/.rlops-setup")" != "$want" ]; then
    echo "setup: installing $what into $venv"
    "$venv/bin/pip" install -q -r "$requirements"
    echo "$want" > "$venv/.rlops-setup"
  fi
}
# The MLflow server of the tracking tests: its pins (pyarrow < 26) clash with Ray's.
server_venv .venv-mlflow requirements/mlflow-server.txt "the MLflow server"
# The S3-compatible server (moto) of the object-store storage tests: botocore pins
# python-dateutil < 3, the kubernetes client needs >= 3.
server_venv .venv-moto requirements/moto-server.txt "the S3 test server (moto)"
# The Google Cloud Storage emulator of the gs:// storage tests.
server_venv .venv-gcs requirements/gcs-server.txt "the GCS test server (gcp-storage-emulator)"
echo "setup: ready (.venv/bin/rlops)"
