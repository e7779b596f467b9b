#!/usr/bin/env bash
# Set everything up and run every check and every test tier. In CI (CI=true) no tier may skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
echo "== lint"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== types"
.venv/bin/mypy
echo "== tier 1: unit and fake-backend workflow"
$PY -m pytest -q -p no:cacheprovider
