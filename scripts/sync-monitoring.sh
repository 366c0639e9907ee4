#!/usr/bin/env bash
# Copy the alert rules (monitoring/rules.yaml, the one source) into the Helm chart, byte for
# byte; the chart's PrometheusRule renders the copy. tests/metrics fails when it drifts.
#   scripts/sync-monitoring.sh           copy
#   scripts/sync-monitoring.sh --check   exit 1 when the copy differs
set -euo pipefail
cd "$(dirname "$0")/.."

SOURCE=monitoring/rules.yaml
COPY=charts/rlops/files/prometheus-rules.yaml

if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$SOURCE" "$COPY"; then
    echo "sync-monitoring: $COPY differs from $SOURCE; run scripts/sync-monitoring.sh" >&2
    exit 1
  fi
  exit 0
fi
mkdir -p "$(dirname "$COPY")"
cp "$SOURCE" "$COPY"
echo "sync-monitoring: $COPY <- $SOURCE"
