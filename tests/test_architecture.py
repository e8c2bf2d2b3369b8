"""The layout rules of docs/ARCHITECTURE.md, checked on the source: layers import downward only (function-level
imports included, so no package-level cycle can hide behind a lazy import), short files, short functions."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import growlm

PACKAGE = Path(growlm.__file__).parent
# Lowest first: a component may import only components listed before it (and itself).
LAYERS = [
    "errors",
    "faults",  # tests only: the crash points production code marks
    "legacy_folders",  # frozen: how folders made before folder marks are recognised
    "io",  # a package by concern, its modules ordered by IO_MODULES
    "provenance",
    "precision",  # shared basics
    "tokenizer",
    "substrate",
    "data",  # inputs
    "model",  # the Llama decoder, growth operators, the exported folder
    "config_schema",  # what a pydantic config model accepts, key by key (generic; growlm.config uses it)
    "config_patch",  # changes to a config nested like its TOML, and dotted KEY=VALUE (generic over the model)
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
# The modules of the io package, lowest first: each imports only io modules listed before it, and io/__init__.py
# imports nothing (it re-exports nothing: a name is imported from the module that owns it).
IO_MODULES = ["temporaries", "atomic", "ownership", "hashing", "outputs"]
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


def io_modules_imported(path: Path) -> set[str]:
    """The io modules a module of the io package imports (absolute or relative imports, function-level included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            package = "growlm.io" if node.level == 1 else "growlm" if node.level == 2 else ""
            module = ".".join(filter(None, (package, node.module)))
            found |= {f"{module}.{a.name}" for a in node.names} if module in ("growlm", "growlm.io") else {module}
    return {m.split(".")[2] for m in found if m.startswith("growlm.io.")}


def test_io_modules_import_downward_only():
    io = PACKAGE / "io"
    assert {p.stem for p in io.glob("*.py")} == {*IO_MODULES, "__init__"}
    assert [type(n) for n in ast.parse((io / "__init__.py").read_text(encoding="utf-8")).body] == [ast.Expr]
    upward = [
        f"io/{name}.py imports io.{used}"
        for name in IO_MODULES
        for used in io_modules_imported(io / f"{name}.py")
        if used not in IO_MODULES[: IO_MODULES.index(name)]
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


# The files each owner writes. No other module spells these names: it asks the owner (a constant, a path method),
# so renaming a file is one edit. legacy_folders.py is a frozen record of what old versions wrote.
OWNED_NAMES = {
    "train/rundir.py": ("config.resolved.toml", "metrics.jsonl", "resumes.jsonl", "summary.json", "frozen_hashes"),
    "train/checkpoint.py": ("optimizer.pt", "rng.pt"),  # state.json is also a `datasets` folder's file
    "model/folder.py": ("growlm.json",),
    "composition/folder.py": ("composition.json",),
    "evals/by_depth.py": ("eval_by_depth",),
    "analysis/report.py": ("report.html",),  # report.md is derived from it
    "analysis/tsne.py": ("tsne.json",),
    "analysis/substrate.py": ("substrate.json",),
    "analysis/runs.py": ("study.json",),  # read there, written by study/output.py
    "io/ownership.py": (".growlm-folder.json",),
    "io/temporaries.py": (".growlm.lock",),
}
NAME_RECORDS = {"legacy_folders.py"}


def string_constants(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the string literals of a module, documentation left out (docstrings and argparse help
    may describe any file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    docstrings |= {id(n) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "help" for n in ast.walk(k)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_module_spells_another_owners_file_names():
    found = []
    for path in sources():
        here = path.relative_to(PACKAGE).as_posix()
        if here in NAME_RECORDS:
            continue
        for owner, names in OWNED_NAMES.items():
            if owner == here:
                continue
            found += [
                f"{here}:{line} names {name} (owned by {owner})"
                for line, text in string_constants(path)
                for name in names
                if name in text
            ]
    assert not found, "\n".join(found)


def test_owned_names_are_spelled_by_their_owners():
    for owner, names in OWNED_NAMES.items():
        texts = " ".join(text for _, text in string_constants(PACKAGE / owner))
        assert all(name in texts for name in names), owner


TESTS = Path(__file__).parent
# What a test file tests follows from its name (test_<component>[_<module>].py); end-to-end files are exempt.
ENTRY_POINTS = {"cli", "__main__"}  # how a user runs a component: a test may drive it through the command line
END_TO_END = {"test_api.py", "test_errors.py", "test_recovery.py", "test_golden_loss.py", "test_cuda.py"}


def component_under_test(path: Path) -> str | None:
    parts = path.stem.removeprefix("test_").split("_")
    return next((c for c in ("_".join(parts[:n]) for n in (2, 1)) if c in LAYERS), None)


def test_no_test_imports_a_layer_above_what_it_tests():
    upward = []
    for path in sorted(TESTS.glob("test_*.py")):
        component = component_under_test(path)
        if component is None or path.name in END_TO_END:
            continue
        upward += [
            f"{path.name} (tests {component}) imports growlm.{c}"
            for c in imported_components(path) - ENTRY_POINTS
            if c in LAYERS and LAYERS.index(c) > LAYERS.index(component)
        ]
    assert not upward, "\n".join(upward)


SHELL = {"commands", "cli", "__main__"}  # the command line: the only place that spells flags
FLAG = re.compile(r"(?<![\w`-])--[a-z][a-z0-9-]+")


def flags_in_errors(source: str) -> list[tuple[int, str]]:
    """(line, flag) of every command-line flag spelled in a GrowlmError(...) call's text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "GrowlmError":
            for part in (n for arg in node.args for n in ast.walk(arg)):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    found += [(part.lineno, flag) for flag in FLAG.findall(part.value)]
    return found


def test_flags_in_errors_finds_a_flag():
    assert flags_in_errors('raise GrowlmError(f"{p} exists; pass --force")') == [(1, "--force")]
    assert flags_in_errors('raise GrowlmError(f"{p} exists; pass `force`")') == []


def test_no_library_error_names_a_flag():
    """Library errors name the API parameter (`out`) or the config key; the CLI renders the flag (errors.py)."""
    found = [
        f"{path.relative_to(PACKAGE)}:{line}: {flag}"
        for path in sources()
        if component(path) not in SHELL
        for line, flag in flags_in_errors(path.read_text(encoding="utf-8"))
    ]
    assert not found, "library errors spelling command-line flags:\n" + "\n".join(found)


def test_no_study_is_named_in_the_commands():
    """The study verb lists the registry: adding a study never touches commands/."""
    from growlm.study.registry import ENTRIES

    found = []
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        found += [f"{path.name}: imports {m}" for m in re.findall(r"growlm\.study\.(\w+)", text) if m != "registry"]
        if path.name == "study.py":
            found += [f"{path.name}:{line}: {s!r}" for line, s in string_constants(path) if s in ENTRIES]
    assert not found, "\n".join(found)


def test_no_public_api_function_returns_a_dict():
    import inspect

    from growlm import api

    public = [f for name, f in vars(api).items() if inspect.isfunction(f) and not name.startswith("_")]
    public = [f for f in public if f.__module__ == api.__name__]
    loose = [f.__name__ for f in public if f.__annotations__.get("return") in (None, "dict", "Any", "object")]
    loose += [
        f.__name__ for f in public if re.match(r"(dict|Mapping|typing\.Dict)\b", str(f.__annotations__.get("return")))
    ]
    assert len(public) >= 8 and not loose, f"api functions returning untyped or dict values: {loose}"
