# Sourced by the set-up scripts: `pip_quiet VENV ARGS...` runs VENV's pip with its messages in VENV/setup.log,
# shown only when the step fails.
pip_quiet() {
  local venv=$1
  shift
  if ! "$venv/bin/python" -m pip "$@" >>"$venv/setup.log" 2>&1; then
    tail -n 40 "$venv/setup.log"
    echo "[setup] pip $* failed (full log: $venv/setup.log)"
    exit 1
  fi
}
