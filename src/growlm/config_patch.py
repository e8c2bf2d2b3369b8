"""Patches: changes to a config nested like its TOML, and the dotted `KEY=VALUE` form a user types. Generic over
the pydantic model (growlm.config applies them to the run config: `overlay`, `load_config`).
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from growlm.config_schema import key_shape, known_keys, leaf_fields, unknown_key
from growlm.errors import GrowlmError

Patch = Mapping[str, Any]
"""Changes to a config, nested like its TOML: {"model": {"d_model": 128}, "growth": {"stages": {0: {"tokens": 4096}}}}.
A list entry is patched by a mapping from index to patch (the index one past the end appends); a list value
replaces the list, and so does a mapping a key's value is (a stage's `data` mixture), but for a dotted key's
path into it (`dotted_patch("growth.stages.1.data.books", 0.5)` sets one weight)."""


class _Path(dict):
    """The levels of a dotted key: they walk into a value, where a plain mapping replaces it."""


def merge(node: dict | list, patch: Patch, model: type[BaseModel], at: tuple = ()) -> None:
    """Apply `patch` to `node` (a config of `model` as raw data) in place."""
    for key, value in patch.items():
        where = (*at, key)
        if isinstance(node, list):
            if not isinstance(key, int) or not 0 <= key <= len(node):
                raise GrowlmError(
                    f"{_dotted(where)}: {key!r} is not an index of {_dotted(at)}, which has {len(node)} entries "
                    f"(0 to {len(node) - 1}; {len(node)} appends one)"
                )
            if key == len(node):
                node.append({})
        elif not isinstance(key, str):
            if key_shape(at) not in known_keys(model):
                raise GrowlmError(unknown_key(model, _dotted(at)))
            raise GrowlmError(f"{_dotted(where)}: {_dotted(at)} is a table; its keys are names, not {key!r}")
        current = node[key] if isinstance(node, list) else node.get(key)
        if (
            isinstance(value, Mapping)
            and isinstance(current, dict)
            and _holds_a_value(where, model)
            and type(value) is not _Path
        ):
            node[key] = copy.deepcopy(dict(value))
        elif isinstance(value, Mapping) and isinstance(current, (dict, list)):
            merge(current, value, model, where)
        elif isinstance(value, Mapping) and isinstance(current, dict | None) and not isinstance(node, list):
            node[key] = {}
            merge(node[key], value, model, where)
        elif isinstance(value, Mapping) and current is not None:
            raise GrowlmError(f"{_dotted(where)} is a single value, not a table; set it directly")
        else:
            node[key] = copy.deepcopy(value)


def combine(*patches: Patch) -> Patch:
    """One patch doing what `patches` do in order (a later value wins; tables and list-index patches merge)."""
    out: dict = {}
    for patch in patches:
        for key, value in patch.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = combine(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def _holds_a_value(path: tuple, model: type[BaseModel]) -> bool:
    """Whether `path` is a key of `model` (a stage's `data` mixture: a mapping), not a table of keys."""
    return key_shape(path) in {key for key, _ in leaf_fields(model)}


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def dotted_patch(key: str, value: Any) -> Patch:
    """The patch that sets `value` at a dotted key as a user types it (`growth.stages.0.tokens`)."""
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts):
        raise GrowlmError(f"{key!r} is not a dotted config key; write e.g. train.lr or growth.stages.0.tokens")
    patch: Any = value
    for part in reversed(parts):
        patch = _Path({int(part) if part.isdigit() else part: patch})
    return patch


def parse_assignment(assignment: str) -> Patch:
    """One `KEY=VALUE` override (VALUE read as a TOML value, else as a string) as a patch."""
    # "override", in words: the CLI verbs hand their --set strings over as `overrides` (grow, plan) or as a
    # study's `sets`, so neither backticked name would read as the flag in every verb; the word reads right for
    # both, as it does for a caller of load_config.
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise GrowlmError(f"override {assignment!r}: expected KEY=VALUE, e.g. train.lr=1e-3")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return dotted_patch(key, parsed)
