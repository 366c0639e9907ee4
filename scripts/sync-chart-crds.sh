#!/usr/bin/env bash
# Copy the generated CRDs (crds/, written by `rlops crds` from the models) into the Helm chart
# and the kustomize base, byte for byte. tests/packaging fails when a copy drifts.
#   scripts/sync-chart-crds.sh           copy
#   scripts/sync-chart-crds.sh --check   exit 1, naming the files, when a copy differs
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(charts/rlops/crds manifests/base/crds)
check=false
[ "${1:-}" = "--check" ] && check=true

status=0
for target in "${TARGETS[@]}"; do
  if $check; then
    if ! diff -r -q crds "$target"; then
      echo "sync-chart-crds: $target differs from crds/; run scripts/sync-chart-crds.sh" >&2
      status=1
    fi
    continue
  fi
  mkdir -p "$target"
  find "$target" -maxdepth 1 -name '*.yaml' -delete
  cp crds/*.yaml "$target"/
  echo "sync-chart-crds: $target <- crds/"
done
exit $status
