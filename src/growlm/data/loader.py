"""Fixed-length training windows from a shard folder, deterministic in (seed, step, rank, world_size).

Each step draws a global batch of batch_size * world_size windows of seq_len + 1 tokens from a NumPy PCG64
generator seeded by (seed, step): for every row, first its source (probabilities = the manifest's mixture
weights), then a start position uniform over that source's split. Rank r takes rows r * batch_size ...
(r + 1) * batch_size - 1, so the ranks' batches are disjoint and together equal the world_size = 1 batch of
batch_size * world_size rows. Nothing depends on earlier calls: a run resumed at step s sees exactly the windows
it would have seen. Windows stay inside one source's split and may span document boundaries (marked by EOS).

Validation batches come from generators seeded by (VAL_STREAM, i), independent of `seed`, so runs with different
seeds are measured on the same windows; ranks take their slices as in training. A source whose validation split
is shorter than one window is left out of validation (`weights` shows what is sampled).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from growlm.data.shards import ShardSet
from growlm.errors import GrowlmError

VAL_STREAM = 0x76616C  # "val"


class TokenWindows:
    def __init__(
        self,
        shard_dir: str | Path,
        split: str = "train",
        seq_len: int = 512,
        batch_size: int = 8,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        tokenizer=None,
    ):
        if seq_len < 1 or batch_size < 1:
            raise GrowlmError(f"seq_len and batch_size must be positive, got {seq_len} and {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise GrowlmError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")
        if seed < 0:
            raise GrowlmError(f"seed must be >= 0, got {seed}")
        self.shards = ShardSet(shard_dir, tokenizer.sha256 if tokenizer is not None else None)
        self.split, self.seq_len, self.batch_size = split, seq_len, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        parts = self.shards.splits(split)
        self.num_tokens = sum(len(p.tokens) for p in parts)
        window = seq_len + 1
        short = [p for p in parts if len(p.tokens) < window]
        if split == "train" and short:
            raise GrowlmError(
                f"{shard_dir}: source {short[0].source} has {len(short[0].tokens)} training tokens, "
                f"fewer than one window of {window}; lower seq_len or drop the source"
            )
        used = [(p, s["weight"]) for p, s in zip(parts, self.shards.sources) if len(p.tokens) >= window]
        if not used:
            raise GrowlmError(
                f"{shard_dir}: the {split} split has no source with a full window of {window} "
                f"tokens; lower seq_len or prepare more text"
            )
        self._tokens = [p.tokens for p, _ in used]
        probs = np.array([w for _, w in used], dtype=np.float64)
        self._probs = probs / probs.sum()
        self._start_limits = np.array([len(t) - window + 1 for t in self._tokens], dtype=np.int64)
        self.weights = {p.source: float(q) for (p, _), q in zip(used, self._probs)}

    def reweighted(self, weights: dict[str, float], where: str) -> TokenWindows:
        """The same windows drawn with another mixture over this shard set's sources (source name -> weight;
        sources left out are not drawn): a stage that trains on part of the run's data. Same draws per step."""
        names = [p.source for p in self.shards.splits(self.split)]
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise GrowlmError(
                f"{where}: source {unknown[0]!r} is not in the run's data ({', '.join(names)}); name one of those"
            )
        usable = [i for i, p in enumerate(self.shards.splits(self.split)) if len(p.tokens) >= self.seq_len + 1]
        probs = np.array([weights.get(names[i], 0.0) for i in usable], dtype=np.float64)
        if not probs.sum() > 0:
            raise GrowlmError(f"{where}: no source it weights has a full window of {self.seq_len + 1} tokens")
        out = copy.copy(self)
        out._probs = probs / probs.sum()
        out.weights = {names[i]: float(q) for i, q in zip(usable, out._probs)}
        return out

    @property
    def manifest(self) -> dict:
        return self.shards.manifest

    @property
    def tokenizer_sha256(self) -> str:
        return self.shards.tokenizer_sha256

    def _draw(self, rng: np.random.Generator) -> torch.LongTensor:
        rows = self.batch_size * self.world_size
        sources = rng.choice(len(self._tokens), size=rows, p=self._probs)
        starts = rng.integers(0, self._start_limits[sources])
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        window = self.seq_len + 1
        batch = np.stack([self._tokens[s][a : a + window] for s, a in zip(sources[mine], starts[mine])])
        return torch.from_numpy(batch.astype(np.int64))

    def batch(self, step: int) -> torch.LongTensor:
        """[batch_size, seq_len + 1] token ids for this rank at `step` (inputs = [:, :-1], targets = [:, 1:])."""
        if step < 0:
            raise GrowlmError(f"step must be >= 0, got {step}")
        return self._draw(np.random.default_rng([self.seed, step]))

    def val_batches(self, n_batches: int) -> list[torch.LongTensor]:
        """The same n_batches batches on every call (and for every seed)."""
        return [self._draw(np.random.default_rng([VAL_STREAM, i])) for i in range(n_batches)]
