"""Modular composition: experts grown on one frozen substrate, merged by averaging their outputs (no router).

A composed folder holds composition.json (mode, weights, experts with content hashes, shared substrate and
tokenizer), a copy of the tokenizer files (so AutoTokenizer.from_pretrained(folder) works) and a growlm.json
marked "composed". Experts are referenced by path (relative to the composed folder, so a run directory can move as
a whole) and verified by hash on every load; `copy=True` copies them into the folder instead, making it
self-contained.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from transformers import AutoModelForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast

from growlm.errors import GrowlmError
from growlm.io import atomic_dir, atomic_write_json, sha256_dir, sha256_file

FORMAT = "growlm-composition-v1"
MODEL_FORMAT = "growlm-model-v1"
MODES = ("mean_logits", "mean_probs")
COMPOSITION_FILE = "composition.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "growlm_tokenizer.json")


def combine_logits(expert_logits: Sequence[torch.Tensor], weights: torch.Tensor, mode: str) -> torch.Tensor:
    """Weighted mean of logits, or log of the weighted mean of probabilities; weights sum to 1. Float32 out.

    Accumulated expert by expert: at full vocabulary the logits are the largest tensors in play.
    """
    weights = weights.float()
    if mode == "mean_logits":
        return sum(w * z.float() for w, z in zip(weights, expert_logits))
    # log sum_i w_i p_i in log space; a zero weight adds log 0 = -inf, which logaddexp ignores.
    terms = (torch.log(w) + torch.log_softmax(z.float(), dim=-1) for w, z in zip(weights, expert_logits))
    return functools.reduce(torch.logaddexp, terms)


@dataclass
class ComposedConfig:
    vocab_size: int
    max_position_embeddings: int
    mode: str
    num_experts: int
    expert_depths: list[int]


class ComposedModel(nn.Module):
    """Frozen experts behind the causal-LM call signature growlm's evaluation and generation use.

    Its `cache` is a tuple with one cache per expert, in expert order.
    """

    def __init__(self, experts: Sequence[nn.Module], weights: Sequence[float], mode: str):
        super().__init__()
        if mode not in MODES:
            raise GrowlmError(f"unknown composition mode {mode!r}; use one of {', '.join(MODES)}")
        self.experts = nn.ModuleList(experts)
        self.mode = mode
        self.register_buffer("weights", torch.tensor(normalize_weights(weights, len(experts)), dtype=torch.float32))
        self.requires_grad_(False)
        configs = [e.config for e in experts]
        vocab = {c.vocab_size for c in configs}
        if len(vocab) != 1:
            raise GrowlmError(f"experts have different vocabulary sizes {sorted(vocab)}; compose experts of one vocab")
        self.config = ComposedConfig(
            vocab_size=vocab.pop(),
            max_position_embeddings=min(c.max_position_embeddings for c in configs),
            mode=mode,
            num_experts=len(experts),
            expert_depths=[c.num_hidden_layers for c in configs],
        )

    @property
    def device(self) -> torch.device:
        return self.weights.device

    def expert_logits(self, input_ids, attention_mask=None, cache=None, use_cache=False, logits_to_keep=0):
        """Each expert's output on the same input; returns (logits list, per-expert caches or None)."""
        caches = cache if cache is not None else [None] * len(self.experts)
        if len(caches) != len(self.experts):
            raise ValueError(f"cache holds {len(caches)} caches for {len(self.experts)} experts")
        outs = [
            expert(input_ids=input_ids, attention_mask=attention_mask, cache=past, use_cache=use_cache,
                   logits_to_keep=logits_to_keep)
            for expert, past in zip(self.experts, caches)
        ]
        return [o.logits for o in outs], (tuple(o.cache for o in outs) if use_cache else None)

    def forward(self, input_ids, attention_mask=None, cache=None, use_cache=False, logits_to_keep=0):
        logits, caches = self.expert_logits(input_ids, attention_mask, cache, use_cache, logits_to_keep)
        return CausalLMOutputWithPast(logits=combine_logits(logits, self.weights, self.mode), cache=caches)


def normalize_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise GrowlmError(f"got {len(weights)} weights for {n} experts; give one weight per expert")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise GrowlmError(f"weights {weights} must be finite and non-negative")
    total = sum(weights)
    if total <= 0:
        raise GrowlmError("weights are all zero; give at least one expert a positive weight")
    return [w / total for w in weights]


# ---- expert folders ---------------------------------------------------------------------------------------


def read_model_manifest(path: Path) -> dict[str, Any]:
    """growlm.json of an exported model folder, refusing anything that is not one."""
    manifest_file = path / "growlm.json"
    if not path.is_dir() or not manifest_file.is_file():
        raise GrowlmError(f"{path} is not a growlm model folder (no growlm.json); export one with `growlm export`")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    if manifest.get("format") != MODEL_FORMAT:
        raise GrowlmError(f"{manifest_file}: format {manifest.get('format')!r} is not {MODEL_FORMAT!r}")
    return manifest


def _weight_files(path: Path) -> list[str]:
    names = sorted(p.name for p in path.iterdir() if p.suffix == ".safetensors" or p.name.endswith(".index.json"))
    if not names or not (path / "config.json").is_file():
        raise GrowlmError(f"{path} has no config.json or *.safetensors weights; it is not an exported model")
    return ["config.json", *names]


def expert_sha256(path: Path) -> str:
    """Content hash of an expert's weights and config (what composition depends on)."""
    return sha256_dir(path, _weight_files(path))


def _read_expert(path: Path) -> dict[str, Any]:
    manifest = read_model_manifest(path)
    if manifest.get("composed"):
        raise GrowlmError(f"{path} is itself a composed model; compose its experts directly")
    _weight_files(path)
    if not (path / "tokenizer.json").is_file():
        raise GrowlmError(f"{path} has no tokenizer.json; re-export the model with `growlm export`")
    actual = sha256_file(path / "tokenizer.json")
    if actual != manifest.get("tokenizer_sha256"):
        raise GrowlmError(f"{path}: tokenizer.json hashes to {actual}, growlm.json says "
                          f"{manifest.get('tokenizer_sha256')}; re-export the model")
    if not manifest.get("substrate", {}).get("sha256"):
        kind = manifest.get("substrate", {}).get("kind")
        raise GrowlmError(f"{path} has no frozen substrate (kind {kind!r}); only experts sharing one frozen "
                          "substrate can be composed")
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
                    "only experts grown on the same frozen substrate, tokenizer and vocabulary can be composed")


def _reference(expert: Path, out: Path) -> str:
    return os.path.relpath(expert.resolve(), out.resolve())


def compose(
    expert_dirs: Sequence[str | Path],
    out: str | Path,
    mode: str = "mean_logits",
    weights: Sequence[float] | None = None,
    force: bool = False,
    copy: bool = False,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a composed model folder; returns its composition.json content.

    `calibration` (from growlm.calibrate) is recorded as-is; its learned weights replace `weights`.
    """
    if mode not in MODES:
        raise GrowlmError(f"unknown --mode {mode!r}; use one of {', '.join(MODES)}")
    paths = [Path(p) for p in expert_dirs]
    manifests = check_experts(paths)
    weights = normalize_weights(calibration["weights"] if calibration else weights, len(paths))
    out = Path(out)
    first = manifests[0]
    with atomic_dir(out, force) as tmp:
        experts = []
        for i, path in enumerate(paths):
            ref = _reference(path, out)
            if copy:
                ref = f"experts/{i:02d}"
                shutil.copytree(path, tmp / ref)
            experts.append({"path": ref, "sha256": expert_sha256(tmp / ref if copy else path),
                            "depth": manifests[i].get("depth")})
        composition = {
            "format": FORMAT,
            "mode": mode,
            "weights": weights,
            "experts": experts,
            "substrate": first["substrate"],
            "tokenizer_sha256": first["tokenizer_sha256"],
            "vocab_size": first["vocab_size"],
            "calibration": calibration,
        }
        for name in TOKENIZER_FILES:
            if (paths[0] / name).is_file():
                shutil.copyfile(paths[0] / name, tmp / name)
        atomic_write_json(tmp / COMPOSITION_FILE, composition)
        atomic_write_json(tmp / "growlm.json", {
            "format": MODEL_FORMAT,
            "composed": True,
            "substrate": first["substrate"],
            "tokenizer_sha256": first["tokenizer_sha256"],
            "vocab_size": first["vocab_size"],
            "depth": None,
            "expert_depths": [m.get("depth") for m in manifests],
            "stage": None,
            "run": None,
        })
    return composition


def is_composition(path: str | Path) -> bool:
    return (Path(path) / COMPOSITION_FILE).is_file()


def read_composition(path: str | Path) -> dict[str, Any]:
    file = Path(path) / COMPOSITION_FILE
    if not file.is_file():
        raise GrowlmError(f"{path} is not a composed model (no {COMPOSITION_FILE}); create one with `growlm compose`")
    composition = json.loads(file.read_text(encoding="utf-8"))
    if composition.get("format") != FORMAT:
        raise GrowlmError(f"{file}: format {composition.get('format')!r} is not {FORMAT!r}")
    return composition


def verified_expert_paths(path: str | Path) -> list[Path]:
    """Expert folders of a composition, each checked against the hash recorded when it was composed."""
    path = Path(path)
    experts = []
    for entry in read_composition(path)["experts"]:
        expert = path / entry["path"]
        if not expert.is_dir():
            raise GrowlmError(f"{path}: expert {entry['path']} not found at {expert}; restore it or recompose")
        actual = expert_sha256(expert)
        if actual != entry["sha256"]:
            raise GrowlmError(f"{path}: expert {expert} changed since composition (sha256 {actual}, recorded "
                              f"{entry['sha256']}); recompose with `growlm compose`")
        experts.append(expert)
    return experts


def load_experts(paths: Sequence[str | Path], device: str | torch.device = "cpu") -> list[nn.Module]:
    return [AutoModelForCausalLM.from_pretrained(p, local_files_only=True).to(device).eval() for p in paths]


def load_composed(path: str | Path, device: str | torch.device = "cpu") -> ComposedModel:
    composition = read_composition(path)
    experts = load_experts(verified_expert_paths(path), device)
    return ComposedModel(experts, composition["weights"], composition["mode"]).to(device).eval()
