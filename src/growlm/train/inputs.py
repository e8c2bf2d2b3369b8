"""The inputs a run trains on: the tokenizer, data shards and substrate.

Each is either given by path in the config or built into the run directory (RUN/tokenizer, RUN/data,
RUN/substrate). The manifest records their hashes; a resumed run refuses inputs whose hashes changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from growlm.config import RunConfig
from growlm.data.mix import parse_sources
from growlm.errors import GrowlmError
from growlm.io.hashing import sha256_bytes
from growlm.io.outputs import atomic_dir
from growlm.tokenizer import BvvTokenizer, build_tokenizer, load_tokenizer
from growlm.train.rundir import RunDir


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


def _tokenizer(cfg: RunConfig, run: RunDir) -> BvvTokenizer:
    if cfg.tokenizer.path:
        return load_tokenizer(cfg.tokenizer.path)
    if run.tokenizer.is_dir():
        return load_tokenizer(run.tokenizer)
    from growlm.data.corpus import source_texts

    names = [name for name, _ in parse_sources(cfg.data.sources, "data.sources")]
    tok = build_tokenizer(source_texts(names, cfg.data.max_chars or None), cfg.tokenizer.ngrams)
    with atomic_dir(run.tokenizer, kind="tokenizer folder") as tmp:
        tok.save(tmp)
    return tok


def _shards(cfg: RunConfig, run: RunDir, tokenizer: BvvTokenizer) -> Path:
    if cfg.data.shards:
        return Path(cfg.data.shards)
    if not run.data.is_dir():
        from growlm.data.prepare import prepare

        prepare(
            parse_sources(cfg.data.sources, "data.sources"),
            tokenizer,
            run.data,
            val_fraction=cfg.data.val_fraction,
            seed=cfg.data.seed,
            force=False,
            max_chars=cfg.data.max_chars or None,
        )
    return run.data


def _substrate(cfg: RunConfig, run: RunDir, tokenizer: BvvTokenizer):
    if cfg.substrate.kind == "trainable":
        return None
    from growlm.substrate import KINDS, build_substrate, load_substrate

    if cfg.substrate.path:
        return load_substrate(cfg.substrate.path)
    if run.substrate.is_dir():
        return load_substrate(run.substrate)
    kind = KINDS[cfg.substrate.kind]
    params = {name: getattr(cfg.substrate, name) for name in kind.config_keys}
    substrate = build_substrate(
        cfg.substrate.kind, **params, **({"tokenizer": tokenizer} if kind.takes_tokenizer else {})
    )
    substrate.save(run.substrate)
    return substrate


def resolve_inputs(cfg: RunConfig, run: RunDir) -> RunInputs:
    tokenizer = _tokenizer(cfg, run)
    shards = _shards(cfg, run, tokenizer)
    manifest_file = shards / "manifest.json"
    if not manifest_file.is_file():
        raise GrowlmError(f"{shards} is not a prepared shard folder (no manifest.json); run `growlm data prepare`")
    data_sha = sha256_bytes(manifest_file.read_bytes())
    return RunInputs(tokenizer, shards, _substrate(cfg, run, tokenizer), data_sha)


def embedding_of(inputs: RunInputs, d_model: int):
    """The frozen input embedding: the substrate lifted to the model's width (None for a trainable one)."""
    if inputs.substrate is None:
        return None
    from growlm.substrate import lift

    return lift(inputs.substrate.matrix, d_model)
