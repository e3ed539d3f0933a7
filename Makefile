# The two quick-start commands: `make demo` (the main job) and `make test` (the suite).
# Both set up ./.venv on first use (scripts/setup_env.sh).
.PHONY: setup demo test bench

setup:
	@bash scripts/setup_env.sh

demo: setup
	.venv/bin/mnemodyn demo

test: setup
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python -m benchmarks
