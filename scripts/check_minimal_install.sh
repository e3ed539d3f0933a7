#!/usr/bin/env bash
# A fresh virtual environment with `pip install .` and no extras (CPU torch first, as scripts/setup_env.sh does):
# `mnemodyn --help`, `embed` and `evaluate` work and `demo` names what to install (scripts/minimal_install_smoke.py).
# Usage: bash scripts/check_minimal_install.sh [VENV_DIR]     (default: a temporary folder, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pip_quiet.sh
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${MNEMODYN_TORCH_SPEC:-torch==2.13.0}
if [ $# -ge 1 ]; then
  VENV=$1
else
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  VENV=$scratch/venv
fi
echo "[minimal install] pip install . (no extras) into $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip_quiet "$VENV" install -q "$TORCH_SPEC"
pip_quiet "$VENV" install -q .
"$VENV/bin/python" scripts/minimal_install_smoke.py
