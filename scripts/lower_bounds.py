"""Print `name==version` for each `>=` lower bound that pyproject.toml declares for users: the runtime dependencies
and the plots / cp / pretrain / denoise extras (torch aside: it is installed first, from $MNEMODYN_TORCH_SPEC).
These are the constraints of `make test-compat`'s lower-bound environment, so the floors in pyproject are the ones
it tests."""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        sys.exit("lower_bounds.py reads pyproject.toml with tomllib: use Python >= 3.11 or `pip install tomli`.")

USER_EXTRAS = ("plots", "cp", "pretrain", "denoise")
NOT_CONSTRAINED = {"torch"}
LOWER_BOUND = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*>=\s*([0-9][^,;\s]*)")


def lower_bounds(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    requirements += [spec for extra in USER_EXTRAS for spec in project["optional-dependencies"][extra]]
    pins = []
    for spec in requirements:
        match = LOWER_BOUND.match(spec)
        if match is None:
            if "mnemodyn-hf" not in spec:
                sys.exit(f"{spec!r} in {pyproject} has no '>=' lower bound; give it one so that it can be tested.")
            continue
        if match[1] not in NOT_CONSTRAINED:
            pins.append(f"{match[1]}=={match[2]}")
    return pins


if __name__ == "__main__":
    print("\n".join(lower_bounds(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
