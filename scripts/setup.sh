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
# The MLflow server of the tracking tests: its pins (pyarrow < 26) clash with Ray's.
if [ ! -x .venv-mlflow/bin/python ]; then
  "$PY" -m venv .venv-mlflow
fi
mlflow_stamp=.venv-mlflow/.rlops-setup
mlflow_want=$(sha256sum requirements/mlflow-server.txt | cut -d' ' -f1)
if [ ! -f "$mlflow_stamp" ] || [ "$(cat "$mlflow_stamp")" != "$mlflow_want" ]; then
  echo "setup: installing the MLflow server into .venv-mlflow"
  .venv-mlflow/bin/pip install -q -r requirements/mlflow-server.txt
  echo "$mlflow_want" > "$mlflow_stamp"
fi
# The S3-compatible server (moto) of the object-store storage tests: botocore pins
# python-dateutil < 3, the kubernetes client needs >= 3.
if [ ! -x .venv-moto/bin/python ]; then
  "$PY" -m venv .venv-moto
fi
moto_stamp=.venv-moto/.rlops-setup
moto_want=$(sha256sum requirements/moto-server.txt | cut -d' ' -f1)
if [ ! -f "$moto_stamp" ] || [ "$(cat "$moto_stamp")" != "$moto_want" ]; then
  echo "setup: installing the S3 test server (moto) into .venv-moto"
  .venv-moto/bin/pip install -q -r requirements/moto-server.txt
  echo "$moto_want" > "$moto_stamp"
fi
# The Google Cloud Storage emulator of the gs:// storage tests, beside moto: its own venv.
if [ ! -x .venv-gcs/bin/python ]; then
  "$PY" -m venv .venv-gcs
fi
gcs_stamp=.venv-gcs/.rlops-setup
gcs_want=$(sha256sum requirements/gcs-server.txt | cut -d' ' -f1)
if [ ! -f "$gcs_stamp" ] || [ "$(cat "$gcs_stamp")" != "$gcs_want" ]; then
  echo "setup: installing the GCS test server (gcp-storage-emulator) into .venv-gcs"
  .venv-gcs/bin/pip install -q -r requirements/gcs-server.txt
  echo "$gcs_want" > "$gcs_stamp"
fi
echo "setup: ready (.venv/bin/rlops)"
