"""The composition record, typed: a composed folder's composition.json (format "growlm-composition-v1"), as
folder.py writes it and every reader reads it back.

- `ExpertRef`: one expert: its path (relative to the composed folder; experts/NN when copied in), the content
  hash of its weights and config, its depth.
- `CalibrationSource`: one text file calibrated on, with its hash.
- `Calibration`: what calibration learned (the weights; in the posterior mode also the switch rate) and on what
  (loss before and after in nats/token, steps, learning rate, windows, tokens, the text files).
- `Composition`: the whole record: mode, weights (the prior in the posterior mode), switch rate, experts, the
  substrate, tokenizer hash and vocabulary size the experts share, the calibration, the hash of the tokenizer
  files the folder carries.

Each has `to_json()` and `from_json()`; to_json() of a loaded record gives the file back. Keys a file lacks take
their defaults, keys this version does not know are ignored; a missing required key is a one-line GrowlmError.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from growlm.errors import GrowlmError
from growlm.io.atomic import known_fields

FORMAT = "growlm-composition-v1"


def _floats(value: Any, where: str, name: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) for v in value):
        raise GrowlmError(f"{where}: {name} must be a list of numbers, got {value!r}")
    return tuple(value)


def _without_none(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys or v is not None}


@dataclass(frozen=True)
class ExpertRef:
    path: str  # relative to the composed folder
    sha256: str  # growlm.model.folder.content_sha256 of the expert when it was composed
    depth: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "expert") -> "ExpertRef":
        return cls(**known_fields(cls, data, where))


@dataclass(frozen=True)
class CalibrationSource:
    path: str
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "source") -> "CalibrationSource":
        return cls(**known_fields(cls, data, where))


@dataclass(frozen=True)
class Calibration:
    weights: tuple[float, ...]  # learned (before the composition renormalises them)
    initial_weights: tuple[float, ...]
    loss_before: float  # nats/token over the calibration windows
    loss_after: float
    steps: int
    lr: float
    windows: int
    tokens: int
    switch_rate: float | None = None  # the posterior mode: the learned fixed-share rate
    initial_switch_rate: float | None = None
    sources: tuple[CalibrationSource, ...] | None = None  # the text files (None: windows given directly)

    def to_json(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        row.update(weights=list(self.weights), initial_weights=list(self.initial_weights))
        if self.sources is not None:
            row["sources"] = [s.to_json() for s in self.sources]
        return _without_none(row, "switch_rate", "initial_switch_rate", "sources")

    @classmethod
    def from_json(cls, data: Any, where: str = "calibration") -> "Calibration":
        values = known_fields(cls, data, where)
        values["weights"] = _floats(values["weights"], where, "weights")
        values["initial_weights"] = _floats(values["initial_weights"], where, "initial_weights")
        if values.get("sources") is not None:
            sources = values["sources"]
            if not isinstance(sources, list):
                raise GrowlmError(f"{where}: sources must be a list")
            values["sources"] = tuple(
                CalibrationSource.from_json(s, f"{where} source {i}") for i, s in enumerate(sources)
            )
        return cls(**values)


@dataclass(frozen=True)
class Composition:
    mode: str  # growlm.composition.mixing.MODES
    weights: tuple[float, ...]  # sum 1; the prior in the posterior mode
    experts: tuple[ExpertRef, ...]
    switch_rate: float = 0.0  # the posterior mode's fixed-share rate
    substrate: dict[str, Any] | None = None  # the experts' shared substrate record (kind, sha256, ...)
    tokenizer_sha256: str | None = None
    vocab_size: int | None = None
    calibration: Calibration | None = None
    files_sha256: str | None = None  # the tokenizer files the folder carries (None: written before they were hashed)

    def to_json(self) -> dict[str, Any]:
        row = {
            "format": FORMAT,
            "mode": self.mode,
            "weights": list(self.weights),
            "switch_rate": self.switch_rate,
            "experts": [e.to_json() for e in self.experts],
            "substrate": self.substrate,
            "tokenizer_sha256": self.tokenizer_sha256,
            "vocab_size": self.vocab_size,
            "calibration": self.calibration.to_json() if self.calibration is not None else None,
            "files_sha256": self.files_sha256,
        }
        return _without_none(row, "files_sha256")

    @classmethod
    def from_json(cls, data: Any, where: str = "composition") -> "Composition":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise GrowlmError(f"{where}: not a {FORMAT!r} file")
        values = known_fields(cls, data, where)
        values["weights"] = _floats(values["weights"], where, "weights")
        experts = values["experts"]
        if not isinstance(experts, list):
            raise GrowlmError(f"{where}: experts must be a list")
        values["experts"] = tuple(ExpertRef.from_json(e, f"{where} expert {i}") for i, e in enumerate(experts))
        if values.get("calibration") is not None:
            values["calibration"] = Calibration.from_json(values["calibration"], f"{where} calibration")
        return cls(**values)
