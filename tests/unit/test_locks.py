"""The locks (requirements/*.txt, `make lock`) pin every dependency pyproject.toml names, each with its hashes,
the same version in every lock, and `make` installed exactly those versions here."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(\\)?$")


def pins(lock: Path) -> dict[str, tuple[Version, list[str]]]:
    """name -> (version, hashes) of every requirement in a pip-compile lock; fails on a line it cannot read."""
    found: dict[str, tuple[Version, list[str]]] = {}
    current: str | None = None
    for number, raw in enumerate(lock.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash="):
            assert current is not None, f"{lock.name}:{number}: a hash with no requirement"
            algorithm, _, digest = line.removeprefix("--hash=").rstrip(" \\").partition(":")
            assert algorithm == "sha256" and re.fullmatch(r"[0-9a-f]{64}", digest), f"{lock.name}:{number}: {line}"
            found[current][1].append(digest)
            continue
        match = _PIN.match(line)
        assert match, f"{lock.name}:{number}: not name==version: {line!r}"
        current = canonicalize_name(match[1])
        assert current not in found, f"{lock.name}: {current} pinned twice"
        found[current] = (Version(match[2]), [])
    return found


def declared(*extras: str) -> list[Requirement]:
    """pyproject.toml's dependencies, and those of the extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(r) for r in listed]


def protoc_in() -> list[Requirement]:
    """What requirements/protoc.in asks for (the image's builder)."""
    lines = (LOCKS / "protoc.in").read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


CASES = {"runtime.txt": lambda: declared(), "dev.txt": lambda: declared("dev"),
         "fallback-postgres.txt": lambda: declared("dev", "fallback-postgres"), "protoc.txt": protoc_in}


@pytest.mark.parametrize("lock", sorted(CASES))
def test_the_lock_pins_every_dependency_within_its_range_and_every_pin_has_a_hash(lock: str) -> None:
    locked = pins(LOCKS / lock)
    assert locked, f"{lock} pins nothing"
    assert [name for name, (_, hashes) in locked.items() if not hashes] == []
    missing, outside = [], []
    for requirement in CASES[lock]():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            missing.append(name)
        elif not requirement.specifier.contains(locked[name][0], prereleases=True):
            outside.append(f"{name}=={locked[name][0]} (pyproject: {requirement.specifier})")
    assert missing == [], f"{lock} lacks {missing}: run `make lock`"
    assert outside == [], f"{lock} pins outside pyproject.toml's range: {outside}: run `make lock`"


def test_every_lock_pins_a_package_at_the_same_version() -> None:
    versions: dict[str, dict[str, Version]] = {}
    for lock in CASES:
        for name, (version, _) in pins(LOCKS / lock).items():
            versions.setdefault(name, {})[lock] = version
    assert {name: seen for name, seen in versions.items() if len(set(seen.values())) > 1} == {}


def test_the_environment_has_exactly_the_locked_versions() -> None:
    """What `make` installed (the dev lock): a lock edited since is installed by the next `make`."""
    wrong = {}
    for name, (version, _) in pins(LOCKS / "dev.txt").items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            wrong[name] = f"{version} locked, not installed"
            continue
        if installed != version:
            wrong[name] = f"{version} locked, {installed} installed"
    assert wrong == {}, "run `make install` (it installs the locks)"
