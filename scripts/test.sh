#!/usr/bin/env bash
# The whole test suite: set up, lint, type-check, import contracts, build the image (a no-op
# when it is up to date), then pytest (tests/containers run the image).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check rlops tests bench && ruff format --check rlops tests bench
echo "== mypy --strict"; mypy
echo "== import contracts"; lint-imports
echo "== image"; bash scripts/build-image.sh
echo "== pytest"
pytest "$@"
