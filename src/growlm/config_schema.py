"""What a pydantic config model accepts, key by key: the dotted keys a user writes (a list of tables as
`growth.stages.N.tokens`), each key's type, default, allowed values and description, and the known keys closest
to a mistyped one. Generic over the model class, so that growlm.config (above) can use it for its own messages;
`growlm.config.explain` is the run config's table.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

INDEX = "N"  # how a key spells "any entry" of a list of tables
BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="), (annotated_types.Lt, "lt", "<"))
BOUNDS += ((annotated_types.Le, "le", "<="),)


@dataclass(frozen=True)
class KeyRow:
    """One key of a config, every field already text (a table row)."""

    key: str
    type: str
    default: str
    allowed: str
    description: str
    value: str | None = None  # in a given config (None: no config given)


def submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field's annotation nests (a table, or a list of tables: then True), else (None, False)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], True
    return None, False


def leaf_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """(dotted key, field) of every value a config of `model` holds, in declaration order."""
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        nested, is_list = submodel(info.annotation)
        if nested is None:
            yield key, info
        else:
            yield from leaf_fields(nested, f"{key}.{INDEX}." if is_list else f"{key}.")


def key_shape(path: Sequence) -> str:
    """A concrete path (`growth`, `stages`, 0, `tokens`) as its key (growth.stages.N.tokens)."""
    return ".".join(INDEX if isinstance(p, int) or str(p).isdigit() else str(p) for p in path)


def known_keys(model: type[BaseModel]) -> list[str]:
    """Every key of `model` (leaf_fields), then every table holding keys (`growth`, `growth.stages`)."""
    leaves = [k for k, _ in leaf_fields(model)]
    tables = {k.rsplit(".", i)[0] for k in leaves for i in (1, 2)} - set(leaves)
    return leaves + sorted(t for t in tables if not t.endswith(f".{INDEX}"))


def close_keys(model: type[BaseModel], key: str, n: int = 3) -> list[str]:
    """The known keys nearest to a mistyped dotted `key`, its list indices kept. Under a known table: an
    abbreviation's expansion (learning_rate -> lr), then its keys by spelling; else the whole key by spelling;
    then a key of that name in another table."""
    known = known_keys(model)
    shape = key_shape(key.split("."))
    parent, _, last = shape.rpartition(".")
    under = f"{parent}." if parent else ""
    if not parent or any(k.startswith(under) for k in known):
        initials = "".join(word[:1] for word in last.split("_"))
        found = [k for k in known if "_" in last and k == under + initials]
        siblings = [k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == parent]
        found += [under + s for s in difflib.get_close_matches(last, siblings, n=n, cutoff=0.6)]
    else:
        found = difflib.get_close_matches(shape, known, n=n, cutoff=0.75)
    found += [k for k in known if "." in k and k.rpartition(".")[2] == last]
    unique = [k for k in dict.fromkeys(found) if k != shape][:n]
    return [_fill_indices(k, key) for k in unique]


def unknown_key(model: type[BaseModel], key: str) -> str:
    """The message for a key `model` does not have, with the closest known keys."""
    hint = did_you_mean(close_keys(model, key))
    return f"unknown key {key!r}{'; ' + hint if hint else ''} (growlm config explain lists every key)"


def _fill_indices(known: str, typed: str) -> str:
    """`known`'s Ns written as the indices `typed` gave, in order (growth.stages.N.lr -> growth.stages.2.lr)."""
    indices = iter(p for p in typed.split(".") if p.isdigit())
    return ".".join(next(indices, p) if p == INDEX else p for p in known.split("."))


def did_you_mean(keys: Sequence[str]) -> str:
    """`did you mean a, b or c?`, or "" for no keys."""
    if not keys:
        return ""
    return "did you mean " + (f"{', '.join(keys[:-1])} or {keys[-1]}" if len(keys) > 1 else keys[0]) + "?"


def toml_value(v: Any) -> str:
    """A value written as TOML (an inline table's keys quoted, as source names may be paths)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v)} to TOML")


def shown(v: Any) -> str:
    """A value for a table: TOML, with `unset` for None (a key left out)."""
    if isinstance(v, list):
        return "[" + ", ".join(shown(x) for x in v) + "]"
    return "unset" if v is None else toml_value(v)


def type_name(annotation: Any) -> str:
    """A field's type as a reader of TOML thinks of it: int, float, str, bool, list[str], optional float."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return type_name(type(args[0]))
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        return ("optional " if type(None) in args else "") + " | ".join(named)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def allowed(info: FieldInfo, choices: Sequence[str] | None = None) -> str:
    """The values a field accepts beyond its type: registered names, Literal choices, numeric bounds."""
    if choices is not None:
        return ", ".join(choices)
    annotation = info.annotation
    if typing.get_origin(annotation) is list:  # a list of choices (train.loggers): the entries' choices
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Literal:
        return ", ".join(str(a) for a in typing.get_args(annotation))
    return ", ".join(
        f"{sign} {getattr(m, attr):g}" for m in info.metadata for kind, attr, sign in BOUNDS if isinstance(m, kind)
    )


def key_rows(
    model: type[BaseModel],
    choices: Mapping[str, Callable[[], Sequence[str]]] | None = None,
    config: BaseModel | None = None,
) -> list[KeyRow]:
    """Every key of `model`: type, default, allowed values (`choices`: key -> the registry's names, read when
    called) and description; with `config`, its value there (a list of tables: one value per entry)."""
    data = config.model_dump() if config is not None else None
    rows = []
    for key, info in leaf_fields(model):
        value = None if data is None else shown(_values_at(data, key.split(".")))
        rows.append(
            KeyRow(
                key,
                type_name(info.annotation),
                shown(info.get_default(call_default_factory=True)),
                allowed(info, choices[key]() if key in (choices or {}) else None),
                info.description or "",
                value,
            )
        )
    return rows


def _values_at(data: Any, parts: list[str]) -> Any:
    """The value at a key's parts; under an N, the list of the entries' values."""
    if not parts:
        return data
    head, rest = parts[0], parts[1:]
    if head == INDEX:
        return [_values_at(entry, rest) for entry in data]
    return _values_at(data[head], rest)
