"""constraints.txt pins every dependency pyproject.toml names, at a version its floor allows."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ROOT


def _pins() -> dict[str, list[Requirement]]:
    """The pinned requirements of constraints.txt by name (one name may have a pin per marker)."""
    pins: dict[str, list[Requirement]] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            pins.setdefault(canonicalize_name(req.name), []).append(req)
    return pins


def _declared() -> list[Requirement]:
    """Every requirement of pyproject.toml: the package's own and those of each extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        names.extend(extra)
    return [Requirement(name) for name in names]


def test_every_pin_is_exact() -> None:
    for reqs in _pins().values():
        for req in reqs:
            (spec,) = req.specifier
            assert spec.operator == "==", req


def test_every_declared_dependency_is_pinned_within_its_floor() -> None:
    pins = _pins()
    for wanted in _declared():
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{wanted.name} is not in constraints.txt: regenerate it (README)"
        here = [pin for pin in pins[name] if pin.marker is None or pin.marker.evaluate()]
        assert len(here) == 1, pins[name]
        (pin,) = here[0].specifier
        assert wanted.specifier.contains(pin.version), f"{here[0]} does not satisfy {wanted}"
