#!/usr/bin/env bash
# Build the project's Dockerfile with podman and print the image reference as the last line.
#
#   scripts/build-image.sh            # -> localhost/rlops:<version>
#   RLOPS_IMAGE=reg/rlops:x scripts/build-image.sh
#
# - Rebuilds only when the build's inputs changed: the Dockerfile, .dockerignore, the
#   requirements (lock.txt, image.txt), pyproject.toml, README.md, rlops/ and the build
#   arguments. Their hash is a label of the image, read back with `podman image inspect`.
# - The base: RLOPS_BASE_IMAGE, else python:3.11-slim when present or pullable, else a
#   Debian bookworm base made here with debootstrap from the mirror apt already uses
#   (localhost/rlops-base:bookworm, made once).
# - pip inside the build reaches packages the way this machine's pip does: its
#   configuration (`pip config list`: files and PIP_* variables) is written to the build's
#   /etc/pip.conf, and the local paths it names (wheel folders, file:// indexes, the CA
#   bundle, constraints) are mounted read-only. torch then comes from that configuration
#   (TORCH_INDEX_URL empty); with no pip configuration the Dockerfile's CPU index is used.
# - Installs podman, runc and debootstrap with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "build-image: $*" >&2; }

need=()
for tool in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)
IMAGE=${RLOPS_IMAGE:-localhost/rlops:$VERSION}
BASE_LOCAL=localhost/rlops-base:bookworm
HOST_PIP=${RLOPS_HOST_PIP:-$(command -v pip3 || command -v pip || true)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The host's pip configuration as one file, and the local paths it names.
mounts=()
torch_index=${RLOPS_TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
if [ -n "$HOST_PIP" ] && "$HOST_PIP" config list >"$work/pip.list" 2>/dev/null && [ -s "$work/pip.list" ]; then
  python3 - "$work/pip.list" "$work/pip.conf" "$work/pip.paths" <<'EOF'
import configparser
import sys
from pathlib import Path

# `pip config list` prints `section.key='value'`; variables (:env:) win over files.
values: dict[tuple[str, str], str] = {}
for line in sorted(Path(sys.argv[1]).read_text().splitlines(), key=lambda l: l.startswith(":env:")):
    name, _, value = line.partition("=")
    section, _, key = name.rpartition(".")
    section = "global" if section in ("", ":env:") else section
    values[(section, key)] = value.strip().strip("'\"")
conf = configparser.ConfigParser()
paths = set()
for (section, key), value in values.items():
    conf.setdefault(section, {})[key] = value
    for token in value.split():
        # A file:// index links to its files beside it (../files/...): mount its parent.
        path = str(Path(token[7:]).parent) if token.startswith("file://") else token
        if path.startswith("/") and Path(path).exists():
            paths.add(path)
with open(sys.argv[2], "w") as out:
    conf.write(out)
Path(sys.argv[3]).write_text("".join(f"{p}\n" for p in sorted(paths)))
EOF
  mounts+=(--volume "$work/pip.conf:/etc/pip.conf:ro")
  while read -r path; do mounts+=(--volume "$path:$path:ro"); done <"$work/pip.paths"
  torch_index=${RLOPS_TORCH_INDEX_URL-}
  log "passing this machine's pip configuration into the build"
fi

base_image() {
  if [ -n "${RLOPS_BASE_IMAGE:-}" ]; then echo "$RLOPS_BASE_IMAGE"; return; fi
  local ref
  for ref in python:3.11-slim "$BASE_LOCAL"; do
    if podman image exists "$ref"; then echo "$ref"; return; fi
  done
  if timeout 60 podman pull -q python:3.11-slim >/dev/null 2>&1; then
    echo python:3.11-slim; return
  fi
  make_local_base
  echo "$BASE_LOCAL"
}

make_local_base() {
  local mirror root
  mirror=${RLOPS_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(SITE) $(RELEASE)' 'Identifier: Packages' 2>/dev/null \
    | awk '$2 == "bookworm" { print $1; exit }')}
  [ -n "$mirror" ] || { log "no registry answers and apt has no bookworm mirror: set RLOPS_DEBIAN_MIRROR or RLOPS_BASE_IMAGE"; exit 1; }
  log "no registry answers: making $BASE_LOCAL with debootstrap from $mirror"
  root="$work/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_LOCAL" >/dev/null
}

BASE=$(base_image)

# Everything the build reads, and the arguments it gets.
inputs_hash=$(
  {
    printf 'format=docker base=%s version=%s torch-index=%s\n' "$BASE" "$VERSION" "$torch_index"
    find Dockerfile .dockerignore requirements/lock.txt requirements/image.txt pyproject.toml README.md rlops -type f \
      ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)
built=$(podman image inspect --format '{{ index .Config.Labels "io.rlops.inputs-hash" }}' "$IMAGE" 2>/dev/null || true)
previous=$(podman image inspect --format '{{ .Id }}' "$IMAGE" 2>/dev/null || true)
if [ "$built" = "$inputs_hash" ]; then
  log "$IMAGE is up to date"
else
  log "building $IMAGE on $BASE"
  start=$(date +%s)
  # docker format: OCI images drop SHELL (the Dockerfile's pipefail).
  podman build --isolation chroot --network host --format docker --file Dockerfile \
    --build-arg "PYTHON_IMAGE=$BASE" --build-arg "VERSION=$VERSION" \
    --build-arg "TORCH_INDEX_URL=$torch_index" \
    --label "io.rlops.inputs-hash=$inputs_hash" \
    "${mounts[@]}" --tag "$IMAGE" . >&2
  log "built $IMAGE in $(($(date +%s) - start)) s"
  # The image this one replaces (gigabytes; its build cache stays): gone unless still in use.
  if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{ .Id }}' "$IMAGE")" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
fi
echo "$IMAGE"
