"""The layout rules of docs/ARCHITECTURE.md, checked on the source: layers import downward only (function-level
imports included, so no package-level cycle can hide behind a lazy import), short files, short functions."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import growlm

PACKAGE = Path(growlm.__file__).parent
# Lowest first: a component may import only components listed before it (and itself).
LAYERS = [
    "errors",
    "io",
    "provenance",
    "precision",  # shared basics
    "tokenizer",
    "substrate",
    "data",  # inputs
    "model",  # the Llama decoder, growth operators, the exported folder
    "config",  # the run config, validated against the registries below it
    "train",  # plan, loop, checkpoints, metrics, run directory, recipe
    "composition",
    "loading",
    "decode",
    "generation",
    "evals",
    "analysis",
    "study",
    "api",
    "commands",
    "cli",
    "__main__",
    "__init__",
]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def component(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_components(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "growlm" else [f"growlm.{a.name}" for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("growlm.")}
    return found - {"__version__"}


def test_every_component_has_a_layer():
    assert {component(p) for p in sources()} <= set(LAYERS)


def test_imports_go_downward_only():
    upward = []
    for path in sources():
        here = LAYERS.index(component(path))
        upward += [
            f"{path.relative_to(PACKAGE)} imports growlm.{c}"
            for c in imported_components(path)
            if c in LAYERS and LAYERS.index(c) > here
        ]
    assert not upward, "\n".join(upward)


def test_files_and_functions_are_short():
    long = []
    for path in sources():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_FILE_LINES:
            long.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and not _is_argument_table(node):
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {length} lines")
    assert not long, "\n".join(long)


def _is_argument_table(node: ast.FunctionDef) -> bool:
    """An argparse `register` function is a table of arguments, exempt from the length rule."""
    return node.name == "register"


def test_registries_are_what_config_validation_reads():
    from pydantic import ValidationError

    from growlm.config import GrowthConfig, SubstrateConfig
    from growlm.model.growth import INIT_OPERATORS
    from growlm.substrate import KINDS

    for init in INIT_OPERATORS:
        GrowthConfig(init=init)
    for kind in [*KINDS, "trainable"]:
        SubstrateConfig(kind=kind)
    for bad in (lambda: GrowthConfig(init="nope"), lambda: SubstrateConfig(kind="nope")):
        try:
            bad()
        except ValidationError as err:
            assert "must be one of" in str(err)
        else:
            raise AssertionError("an unregistered name passed validation")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_the_tree_is_ruff_clean(command):
    """`make lint`: ruff's lint and format checks (pyproject.toml [tool.ruff]) pass on the whole tree."""
    out = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "."], cwd=PACKAGE.parents[1], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
