# The two quick-start commands: `make demo` (the main job) and `make test` (the suite).
# Both set up ./.venv on first use (scripts/setup_env.sh), at the versions of requirements/constraints.txt.
.PHONY: setup demo test minimal-install test-compat test-compat-newest lock bench

setup:
	@bash scripts/setup_env.sh

demo: setup
	.venv/bin/mnemodyn demo

# the suite on every core (pytest-xdist), one torch thread per worker so the workers do not oversubscribe the cores
test: setup
	.venv/bin/ruff check
	.venv/bin/ruff format --check
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest -q -n auto --dist loadfile
	bash scripts/check_minimal_install.sh

# a second venv with `pip install .` and no extras: --help, embed and evaluate run, demo names what to install
minimal-install:
	bash scripts/check_minimal_install.sh

# the smoke subset (pytest -m compat) at the declared lower bounds and at the newest releases (.venv-compat-*)
test-compat:
	bash scripts/compat.sh lower newest

# the newest-release smoke alone (CI runs it after `make test`)
test-compat-newest:
	bash scripts/compat.sh newest

# refresh requirements/constraints.txt from what the registry resolves today
lock:
	bash scripts/lock.sh

bench: setup
	.venv/bin/python -m benchmarks
