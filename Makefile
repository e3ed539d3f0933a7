# The two quick-start commands: `make demo` (the main job) and `make test` (the suite).
# Both set up ./.venv on first use (scripts/setup_env.sh).
.PHONY: setup demo test minimal-install bench

setup:
	@bash scripts/setup_env.sh

demo: setup
	.venv/bin/mnemodyn demo

test: setup
	.venv/bin/ruff check
	.venv/bin/ruff format --check
	.venv/bin/python -m pytest -q
	bash scripts/check_minimal_install.sh

# a second venv with `pip install .` and no extras: --help, embed and evaluate run, demo names what to install
minimal-install:
	bash scripts/check_minimal_install.sh

bench: setup
	.venv/bin/python -m benchmarks
