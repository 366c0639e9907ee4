#!/usr/bin/env bash
# The whole test suite: set up, lint, type-check, import contracts, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check rlops tests bench && ruff format --check rlops tests bench
echo "== mypy --strict"; mypy
echo "== import contracts"; lint-imports
echo "== pytest"
pytest "$@"
