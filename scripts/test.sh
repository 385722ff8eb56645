#!/usr/bin/env bash
# Set up .venv (idempotent) and run the test suite (slow end-to-end tests are
# deselected by default; `scripts/test.sh -m slow` runs only those, and
# `scripts/test.sh -m ''` runs everything).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONWARNINGS="ignore::UserWarning:pkg_resources,ignore:pkg_resources is deprecated"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
