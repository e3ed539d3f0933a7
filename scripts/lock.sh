#!/usr/bin/env bash
# `make lock`: refresh requirements/constraints.txt, the exact versions `make setup` installs (the quick start and CI).
# A scratch environment resolves the package with its test extras from the registry as it is today; its `pip freeze`
# becomes the lock (torch, installed first from $MNEMODYN_TORCH_SPEC, and the package itself left out). Commit the
# new file after `make test` passes with it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pip_quiet.sh
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${MNEMODYN_TORCH_SPEC:-torch==2.13.0}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PYTHON" -m venv "$scratch/venv"
pip_quiet "$scratch/venv" install -q --upgrade pip
pip_quiet "$scratch/venv" install -q "$TORCH_SPEC"
echo "$TORCH_SPEC" > "$scratch/torch.txt"  # the resolution must not swap the CPU wheel for a newer CUDA build
pip_quiet "$scratch/venv" install -q -c "$scratch/torch.txt" ".[test]"
{
  echo "# The versions \`make setup\` installs (pip install -c requirements/constraints.txt): resolved $(date -u +%Y-%m-%d)"
  echo "# by \`make lock\` (scripts/lock.sh) with $("$PYTHON" --version) and $TORCH_SPEC. pyproject.toml keeps the"
  echo "# loose ranges users install with; \`make test-compat\` tests their lower bounds and the newest releases."
  "$scratch/venv/bin/python" -m pip freeze --exclude-editable | grep -viE '^(torch|mnemodyn[-_]hf|nvidia-|triton)([=@ ]|$)'
} > requirements/constraints.txt.tmp
mv requirements/constraints.txt.tmp requirements/constraints.txt
echo "[lock] requirements/constraints.txt: $(grep -vc '^#' requirements/constraints.txt) pinned packages"
