"""A run directory and its inputs: the tokenizer, data shards and substrate a growth run trains on.

Each input is either given by path in the config or built into the run (RUN/tokenizer, RUN/data,
RUN/substrate). manifest.json records their hashes; a resumed run refuses inputs whose hashes changed.
"""

from __future__ import annotations

import itertools
import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

import growlm
from growlm.config import RunConfig, to_toml
from growlm.errors import GrowlmError
from growlm.io import atomic_dir, atomic_write_json, atomic_write_text, sha256_bytes
from growlm.tokenizer import BvvTokenizer, build_tokenizer, load_tokenizer


@dataclass
class RunInputs:
    tokenizer: BvvTokenizer
    shards: Path
    substrate: object | None  # growlm.substrate.Substrate; None for a trainable embedding
    data_sha256: str

    def hashes(self) -> dict:
        return {
            "tokenizer": self.tokenizer.sha256,
            "data": self.data_sha256,
            "substrate": self.substrate.sha256 if self.substrate is not None else None,
        }


def parse_sources(entries: list[str]) -> list[tuple[str, float]]:
    sources = []
    for entry in entries:
        name, _, weight = entry.partition(":")
        try:
            sources.append((name, float(weight) if weight else 1.0))
        except ValueError:
            raise GrowlmError(f"data.sources entry {entry!r}: weight must be a number, e.g. 'shakespeare:2'") from None
    return sources


def _tokenizer(cfg: RunConfig, run: Path) -> BvvTokenizer:
    if cfg.tokenizer.path:
        return load_tokenizer(cfg.tokenizer.path)
    if (run / "tokenizer").is_dir():
        return load_tokenizer(run / "tokenizer")
    from growlm.data.sources import iter_documents

    cap = cfg.data.max_chars or None
    texts = itertools.chain.from_iterable(_capped(iter_documents(name), cap) for name, _ in parse_sources(cfg.data.sources))
    tok = build_tokenizer(texts, cfg.tokenizer.ngrams)
    with atomic_dir(run / "tokenizer") as tmp:
        tok.save(tmp)
    return tok


def _capped(documents, max_chars: int | None):
    total = 0
    for doc in documents:
        if max_chars is not None and total >= max_chars:
            return
        yield doc if max_chars is None else doc[: max_chars - total]
        total += len(doc)


def _shards(cfg: RunConfig, run: Path, tokenizer: BvvTokenizer) -> Path:
    if cfg.data.shards:
        return Path(cfg.data.shards)
    out = run / "data"
    if not out.is_dir():
        from growlm.data.prepare import prepare

        prepare(parse_sources(cfg.data.sources), tokenizer, out, val_fraction=cfg.data.val_fraction,
                seed=cfg.data.seed, force=False, max_chars=cfg.data.max_chars or None)
    return out


def _substrate(cfg: RunConfig, run: Path, tokenizer: BvvTokenizer):
    if cfg.substrate.kind == "trainable":
        return None
    from growlm.substrate import build_substrate, load_substrate

    if cfg.substrate.path:
        return load_substrate(cfg.substrate.path)
    out = run / "substrate"
    if out.is_dir():
        return load_substrate(out)
    s = cfg.substrate
    params = {
        "visual": {"cell": s.cell, "recipe": s.recipe, "tokenizer": tokenizer, "seed": s.seed},
        "binary": {"dim": s.dim},
        "random": {"dim": s.dim, "seed": s.seed},
    }[s.kind]
    substrate = build_substrate(kind=s.kind, **params)
    substrate.save(out)
    return substrate


def resolve_inputs(cfg: RunConfig, run: Path) -> RunInputs:
    tokenizer = _tokenizer(cfg, run)
    shards = _shards(cfg, run, tokenizer)
    manifest_file = shards / "manifest.json"
    if not manifest_file.is_file():
        raise GrowlmError(f"{shards} is not a prepared shard folder (no manifest.json); run `growlm data prepare`")
    data_sha = sha256_bytes(manifest_file.read_bytes())
    return RunInputs(tokenizer, shards, _substrate(cfg, run, tokenizer), data_sha)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(growlm.__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_run_header(run: Path, cfg: RunConfig, inputs: RunInputs) -> None:
    atomic_write_text(run / "config.resolved.toml", to_toml(cfg))
    atomic_write_json(run / "manifest.json", {
        "growlm_version": growlm.__version__,
        "git_commit": git_commit(),
        "config_sha256": sha256_bytes(to_toml(cfg).encode()),
        "hashes": inputs.hashes(),
        "substrate_manifest": inputs.substrate.manifest if inputs.substrate is not None else None,
        "tokenizer_path": str(Path(cfg.tokenizer.path).resolve()) if cfg.tokenizer.path else "tokenizer",
        "shards_path": str(inputs.shards.resolve()),
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
    })


def check_resume(run: Path, inputs: RunInputs) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    for key, value in inputs.hashes().items():
        if manifest["hashes"].get(key) != value:
            raise GrowlmError(f"cannot resume {run}: the {key} hash differs from the run's manifest "
                              f"({str(manifest['hashes'].get(key))[:12]} vs {str(value)[:12]}); resume with the "
                              "run's own inputs or start a new run")
