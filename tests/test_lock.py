"""The lock files agree with pyproject.toml, and the environment running the tests is exactly the dev lock.

Offline: the transitive closure is computed from the metadata of the installed distributions, which
the last test proves are the locked ones. A dependency added to pyproject.toml without `make lock`,
a range the locked version falls outside, or a package the lock keeps after nothing needs it any
more all fail here, each naming the fix.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_FIX = "run `make lock`"


def roots(lock: Path) -> list[Requirement]:
    """What the lock was compiled from: the dependencies, the dev extra for the dev lock, the build backend."""
    project = PYPROJECT["project"]
    names = [*project["dependencies"], *PYPROJECT["build-system"]["requires"]]
    if lock == DEV_LOCK:
        names += project["optional-dependencies"]["dev"]
    return [Requirement(name) for name in names]


def pins(lock: Path) -> dict[NormalizedName, str]:
    found: dict[NormalizedName, str] = {}
    entry: str | None = None
    for line in lock.read_text().splitlines():
        if match := _PIN.match(line):
            entry = canonicalize_name(match.group(1))
            assert entry not in found, f"{lock.name} pins {entry} twice"
            found[entry] = match.group(2)
            assert line.endswith("\\"), f"{lock.name}: {entry} has no hashes; {_FIX}"
        elif entry and line.strip().startswith("--hash=sha256:"):
            continue
        elif line.strip() and not line.lstrip().startswith("#"):
            pytest.fail(f"{lock.name}: unexpected line {line!r}; {_FIX}")
    return found


def closure(requirements: Iterable[Requirement]) -> set[NormalizedName]:
    """Every distribution the requirements pull in, read from the installed packages' own metadata."""
    seen: set[tuple[NormalizedName, str]] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        # Each (distribution, extra) is expanded once; "" is the distribution without extras.
        for extra in {"", *requirement.extras} - {e for n, e in seen if n == name}:
            seen.add((name, extra))
            try:
                dist = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                dist = None
            if dist is None:
                pytest.fail(f"{name} (pulled in by pyproject.toml) is not installed, so not locked; {_FIX}")
            specs = map(Requirement, dist.requires or [])
            todo.extend(spec for spec in specs if spec.marker is None or spec.marker.evaluate({"extra": extra}))
    return {name for name, _ in seen}


LOCKS = [pytest.param(RUNTIME_LOCK, id="requirements.lock"), pytest.param(DEV_LOCK, id="requirements-dev.lock")]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_requirement_is_locked_within_its_range(lock: Path) -> None:
    locked = pins(lock)
    problems = []
    for requirement in roots(lock):
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} is not in {lock.name}")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} but {lock.name} pins {version}")
    assert not problems, "; ".join(problems) + f": pyproject.toml and the lock disagree, {_FIX}"


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_holds_exactly_what_pyproject_pulls_in(lock: Path) -> None:
    needed = closure(roots(lock))
    locked = set(pins(lock))
    assert not needed - locked, f"needed but not in {lock.name}: {sorted(needed - locked)}; {_FIX}"
    assert not locked - needed, f"in {lock.name} but needed by nothing: {sorted(locked - needed)}; {_FIX}"


def test_runtime_lock_pins_the_dev_locks_versions() -> None:
    dev = pins(DEV_LOCK)
    differ = {
        name: (version, dev.get(name)) for name, version in pins(RUNTIME_LOCK).items() if dev.get(name) != version
    }
    assert not differ, f"requirements.lock vs requirements-dev.lock: {differ}; {_FIX}"


def test_environment_is_exactly_the_dev_lock() -> None:
    """What `make test` installed: every locked version and nothing else (the project itself aside)."""
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
        if canonicalize_name(dist.metadata["Name"]) != "crm"
    }
    locked = pins(DEV_LOCK)
    wrong = {name: (installed.get(name), version) for name, version in locked.items() if installed.get(name) != version}
    extra = sorted(set(installed) - set(locked))
    assert not wrong, f"installed vs locked: {wrong}; run `make test` (it installs the lock)"
    assert not extra, f"installed but not locked: {extra}; run `make test` (it removes them)"
