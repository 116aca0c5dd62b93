"""environment.yml (conda users) and pyproject.toml (make lab/test) must pin the same packages."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    return dict(_split(r) for r in reqs)


def _environment_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)\s*==\s*(\S+)\s*$", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _split(req: str) -> tuple[str, str]:
    name, _, version = req.partition("==")
    return name.strip().lower().replace("_", "-"), version.strip()


def test_environment_yml_matches_pyproject():
    py, env = _pyproject_pins(), _environment_pins()
    missing = sorted(set(py) - set(env))
    extra = sorted(set(env) - set(py))
    differ = {k: (py[k], env[k]) for k in set(py) & set(env) if py[k] != env[k]}
    assert not (missing or extra or differ), (
        "environment.yml and pyproject.toml disagree.\n"
        f"  in pyproject only: {missing}\n  in environment.yml only: {extra}\n"
        f"  different pins (pyproject, environment.yml): {differ}\n"
        "Edit both files together: conda users get environment.yml, make lab/test get pyproject."
    )


def test_every_pyproject_dependency_is_pinned():
    unpinned = [n for n, v in _pyproject_pins().items() if not v]
    assert not unpinned, f"pin these with == in pyproject.toml (and environment.yml): {unpinned}"


def test_environment_installs_labkit_itself():
    assert re.search(r"^\s*-\s+-e \.\s*$", (ROOT / "environment.yml").read_text(), re.M), (
        "environment.yml's pip section must install labkit with '-e .'"
    )
