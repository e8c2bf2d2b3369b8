"""The composed model folder: composition.json, written and read here alone.

A composed folder holds composition.json (mode, weights, switch_rate, experts with content hashes, shared
substrate and tokenizer; in the posterior mode the weights are the prior and switch_rate the fixed-share rate),
a copy of the tokenizer files (so AutoTokenizer.from_pretrained(folder) works) and a growlm.json
marked "composed". Experts are referenced by path (relative to the composed folder, so a run directory can move as
a whole) and verified by hash on every load; `copy=True` copies them into the folder instead, making it
self-contained. The record itself is typed in record.py (Composition); compose() returns it, read_composition()
reads it back.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from growlm.composition.mixing import ComposedModel, check_mode, normalize_weights
from growlm.composition.record import FORMAT, Calibration, Composition, ExpertRef
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json
from growlm.io.hashing import sha256_dir, sha256_file
from growlm.io.outputs import atomic_dir, check_output
from growlm.model.folder import (
    META_FILE,
    TOKENIZER_FILES,
    check_loadable,
    content_sha256,
    copy_tokenizer,
    load_model,
    read_meta,
    write_meta,
)

COMPOSITION_FILE = "composition.json"


def expert_sha256(path: Path) -> str:
    """Content hash of an expert's weights and config (what composition depends on)."""
    return content_sha256(path)


def _read_expert(path: Path) -> dict[str, Any]:
    manifest = read_meta(path)
    if manifest.get("composed"):
        raise GrowlmError(f"{path} is itself a composed model; compose its experts directly")
    check_loadable(path)
    if not (path / "tokenizer.json").is_file():
        raise GrowlmError(f"{path} has no tokenizer.json; re-export the model with `growlm export`")
    actual = sha256_file(path / "tokenizer.json")
    if actual != manifest.get("tokenizer_sha256"):
        raise GrowlmError(
            f"{path}: tokenizer.json hashes to {actual}, {META_FILE} says "
            f"{manifest.get('tokenizer_sha256')}; re-export the model"
        )
    if not manifest.get("substrate", {}).get("sha256"):
        kind = manifest.get("substrate", {}).get("kind")
        raise GrowlmError(
            f"{path} has no frozen substrate (kind {kind!r}); only experts sharing one frozen substrate can be composed"
        )
    return manifest


def check_experts(expert_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The experts' growlm.json manifests, refusing fewer than two, non-models and mismatched substrates."""
    paths = [Path(p) for p in expert_dirs]
    if len(paths) < 2:
        raise GrowlmError(f"composition needs at least two experts, got {len(paths)}")
    manifests = [_read_expert(p) for p in paths]
    _check_compatible(paths, manifests)
    return manifests


def _check_compatible(paths: Sequence[Path], manifests: Sequence[dict[str, Any]]) -> None:
    fields = {
        "substrate sha256": lambda m: m["substrate"]["sha256"],
        "substrate kind": lambda m: m["substrate"].get("kind"),
        "tokenizer sha256": lambda m: m.get("tokenizer_sha256"),
        "vocab size": lambda m: m.get("vocab_size"),
    }
    for what, get in fields.items():
        for path, manifest in zip(paths[1:], manifests[1:]):
            if get(manifest) != get(manifests[0]):
                raise GrowlmError(
                    f"experts {paths[0]} and {path} have different {what} ({get(manifests[0])} vs {get(manifest)}); "
                    "only experts grown on the same frozen substrate, tokenizer and vocabulary can be composed"
                )


def check_out_not_expert(out: str | Path, expert_dirs: Sequence[str | Path]) -> None:
    """`out` may not be (or hold, or lie inside) one of the experts: `force` would replace what it reads."""
    target = Path(out).resolve()
    for expert in map(Path, expert_dirs):
        e = expert.resolve()
        if target == e or e in target.parents or target in e.parents:
            raise GrowlmError(
                f"`out` {out} would overwrite the expert {expert} (the same folder, one holding it or "
                "one inside it); write the composition to another folder"
            )


def _reference(expert: Path, out: Path) -> str:
    return os.path.relpath(expert.resolve(), out.resolve())


def compose(
    expert_dirs: Sequence[str | Path],
    out: str | Path,
    mode: str = "mean_logits",
    weights: Sequence[float] | None = None,
    force: bool = False,
    copy: bool = False,
    calibration: Calibration | None = None,
    switch_rate: float = 0.0,
    calibrate: Callable[[], Calibration] | None = None,
) -> Composition:
    """Write a composed model folder; returns its record (what composition.json holds). The one place a
    composition request is checked (the API and the CLI pass through): mode and switch rate, `out`, the experts,
    the weights, each once.

    `calibrate` (e.g. growlm.composition.calibrate.calibrate_on_files bound to its arguments) runs after the checks,
    so bad input fails before it; its result, or a given `calibration`, is recorded as-is, and its learned weights
    (and, in the posterior mode, its switch rate) replace `weights` (and `switch_rate`).
    """
    switch_rate = check_mode(mode, switch_rate)
    paths = [Path(p) for p in expert_dirs]
    check_out_not_expert(out, paths)
    check_output(out, force)
    manifests = check_experts(paths)
    weights = normalize_weights(weights, len(paths))
    if calibrate is not None:
        calibration = calibrate()
    if calibration is not None:
        weights = normalize_weights(calibration.weights, len(paths))
        rate = calibration.switch_rate
        switch_rate = check_mode(mode, switch_rate if rate is None else rate)
    out = Path(out)
    shared = {key: manifests[0][key] for key in ("substrate", "tokenizer_sha256", "vocab_size")}
    with atomic_dir(out, force, kind="composition folder") as tmp:
        experts = _place_experts(paths, manifests, out, tmp, copy)
        copy_tokenizer(paths[0], tmp)
        composition = Composition(
            mode,
            tuple(weights),
            experts,
            switch_rate,
            **shared,
            calibration=calibration,
            files_sha256=own_files_sha256(tmp),
        )
        atomic_write_json(tmp / COMPOSITION_FILE, composition.to_json())
        write_meta(
            tmp, {"composed": True, **shared, "depth": None, "expert_depths": [m.get("depth") for m in manifests]}
        )
    return composition


def _place_experts(
    paths: list[Path], manifests: list[dict[str, Any]], out: Path, tmp: Path, copy: bool
) -> tuple[ExpertRef, ...]:
    """Each expert referenced from `out` by relative path, or copied into the folder being built (`tmp`)."""
    experts = []
    for i, path in enumerate(paths):
        ref = _reference(path, out)
        if copy:
            ref = f"experts/{i:02d}"
            shutil.copytree(path, tmp / ref)
        experts.append(ExpertRef(ref, expert_sha256(tmp / ref if copy else path), manifests[i].get("depth")))
    return tuple(experts)


def is_composition(path: str | Path) -> bool:
    return (Path(path) / COMPOSITION_FILE).is_file()


def read_composition(path: str | Path) -> Composition:
    file = Path(path) / COMPOSITION_FILE
    if not file.is_file():
        raise GrowlmError(f"{path} is not a composed model (no {COMPOSITION_FILE}); create one with `growlm compose`")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GrowlmError(f"{file} is not valid JSON ({err}); recompose with `growlm compose`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GrowlmError(f"{file}: not a {FORMAT!r} file; recompose with `growlm compose`")
    try:
        return Composition.from_json(data, str(file))
    except GrowlmError as err:
        raise GrowlmError(f"{err}: the file is damaged; recompose with `growlm compose`") from None


def own_files_sha256(path: Path) -> str:
    """Hash of the tokenizer files a composed folder carries itself (its experts are hashed one by one)."""
    return sha256_dir(path, [n for n in TOKENIZER_FILES if (path / n).is_file()])


def verified_expert_paths(path: str | Path) -> list[Path]:
    """Expert folders of a composition, each checked against the hash recorded when it was composed."""
    path = Path(path)
    experts, composition = [], read_composition(path)
    if composition.files_sha256 not in (None, own_files_sha256(path)):
        raise GrowlmError(f"{path}: its tokenizer files changed since composition; recompose with `growlm compose`")
    for entry in composition.experts:
        expert = path / entry.path
        if not expert.is_dir():
            raise GrowlmError(f"{path}: expert {entry.path} not found at {expert}; restore it or recompose")
        actual = expert_sha256(expert)
        if actual != entry.sha256:
            raise GrowlmError(
                f"{path}: expert {expert} changed since composition (sha256 {actual}, recorded "
                f"{entry.sha256}); recompose with `growlm compose`"
            )
        experts.append(expert)
    return experts


def load_experts(paths: Sequence[str | Path], device: str | torch.device = "cpu") -> list[nn.Module]:
    return [load_model(p, device) for p in paths]


def load_composed(path: str | Path, device: str | torch.device = "cpu") -> ComposedModel:
    composition = read_composition(path)
    experts = load_experts(verified_expert_paths(path), device)
    try:
        model = ComposedModel(experts, list(composition.weights), composition.mode, composition.switch_rate)
    except GrowlmError as err:
        raise GrowlmError(f"{path}: {err}; upgrade growlm or recompose") from None
    return model.to(device).eval()
