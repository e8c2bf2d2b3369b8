"""The bvv tokenizer, packaged as a Hugging Face `tokenizers` Unigram model.

Why Unigram and not the paper's BPE: with BPE an n-gram is only reachable when the merges happen to build it, and
the author's files leave 158 n-grams unreachable. A Unigram model picks the best-scoring segmentation (Viterbi)
instead. Every character scores -10 and every n-gram between -5.1 and -9.9 (more frequent = higher), so one n-gram
always beats any split of it into two or more pieces: each n-gram given alone encodes to its own id, and longer
texts get few tokens with ties broken towards frequent n-grams. Specials, byte pieces and unused slots score
-1000, so literal text such as "<0x41>" is never read as a byte token. Characters without an id of their own go
through the byte fallback (layout.py), so encoding is lossless and <unk> never appears.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import AddedToken, Tokenizer, decoders, models

from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_bytes, atomic_write_json
from growlm.io.hashing import sha256_bytes
from growlm.tokenizer import layout as L
from growlm.tokenizer.mining import Ngram

CHAR_SCORE = -10.0
UNREACHABLE_SCORE = -1000.0
NGRAM_BEST, NGRAM_WORST = -5.1, -9.9
META_FILE = "growlm_tokenizer.json"


def _ngram_scores(ngrams: Sequence[Ngram]) -> list[float]:
    if not ngrams:
        return []
    top = max(g.count for g in ngrams)
    # rounded so that tokenizers' float printing survives a save/load round trip exactly
    return [round(NGRAM_WORST + (NGRAM_BEST - NGRAM_WORST) * g.count / top, 6) for g in ngrams]


def _pieces(ngrams: Sequence[Ngram]) -> list[tuple[str, float]]:
    if len(ngrams) > len(L.NGRAM_SLOTS):
        raise GrowlmError(
            f"{len(ngrams)} n-grams do not fit the {len(L.NGRAM_SLOTS)} n-gram slots; lower `ngrams_per_script`"
        )
    by_slot = {slot: (g.text, score) for slot, g, score in zip(L.NGRAM_SLOTS, ngrams, _ngram_scores(ngrams))}
    pieces = []
    for i in range(L.VOCAB_SIZE):
        if L.is_char_id(i):
            pieces.append((chr(i), CHAR_SCORE))
        elif L.is_special_id(i):
            pieces.append((L.SPECIAL_TOKENS[i - L.SPECIAL_BASE], UNREACHABLE_SCORE))
        elif L.is_byte_id(i):
            pieces.append((L.byte_piece(i - L.BYTE_BASE), UNREACHABLE_SCORE))
        else:
            pieces.append(by_slot.get(i, (L.placeholder_piece(i), UNREACHABLE_SCORE)))
    return pieces


def _hf_tokenizer(ngrams: Sequence[Ngram]) -> Tokenizer:
    tok = Tokenizer(models.Unigram(_pieces(ngrams), unk_id=L.UNK_ID, byte_fallback=True))
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in L.SPECIAL_TOKENS])
    return tok


@dataclass
class BvvTokenizer:
    hf: Tokenizer
    ngram_info: list[Ngram]
    json_bytes: bytes  # tokenizer.json exactly as saved; its sha256 identifies the tokenizer

    @classmethod
    def from_ngrams(cls, ngrams: Sequence[Ngram]) -> "BvvTokenizer":
        hf = _hf_tokenizer(ngrams)
        return cls(hf, list(ngrams), hf.to_str(pretty=False).encode("utf-8"))

    def __post_init__(self) -> None:
        # Text is always read literally: "</s>" in a document is five characters, never the special id (specials
        # are placed by id). tokenizer.json cannot store this; tokenizer_config.json tells transformers the same.
        self.hf.encode_special_tokens = True

    @cached_property
    def ngrams(self) -> dict[int, str]:
        return {slot: g.text for slot, g in zip(L.NGRAM_SLOTS, self.ngram_info)}

    @cached_property
    def sha256(self) -> str:
        return sha256_bytes(self.json_bytes)

    @property
    def vocab_size(self) -> int:
        return L.VOCAB_SIZE

    def token_text(self, i: int) -> str | None:
        """The text id i stands for; None for byte-fallback and unused ids."""
        if L.is_char_id(i):
            return chr(i)
        if L.is_special_id(i):
            return L.SPECIAL_TOKENS[i - L.SPECIAL_BASE]
        return self.ngrams.get(i)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(_valid(text), add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        encs = self.hf.encode_batch([_valid(t) for t in texts], add_special_tokens=False)
        return [e.ids for e in encs]

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False)

    def save(self, out: str | Path, model_max_length: int | None = None) -> None:
        """tokenizer.json + the config files that make AutoTokenizer.from_pretrained(out) load it as-is."""
        out = Path(out)
        atomic_write_bytes(out / "tokenizer.json", self.json_bytes)
        specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
        atomic_write_json(out / "special_tokens_map.json", specials)
        atomic_write_json(
            out / "tokenizer_config.json",
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                **specials,
                "add_bos_token": False,
                "add_eos_token": False,
                "clean_up_tokenization_spaces": False,
                "split_special_tokens": True,
                "model_max_length": model_max_length or 1_000_000_000,
            },
        )
        meta = {
            "layout": L.LAYOUT_ID,
            "vocab_size": L.VOCAB_SIZE,
            "tokenizer_sha256": self.sha256,
            "ngrams": [
                {"id": f"0x{slot:04X}", "text": g.text, "script": g.script, "count": g.count}
                for slot, g in zip(L.NGRAM_SLOTS, self.ngram_info)
            ],
        }
        atomic_write_json(out / META_FILE, meta)


def _valid(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise GrowlmError(f"text is not valid Unicode: lone surrogate at character {err.start}") from None
    return text


def load_tokenizer(path: str | Path) -> BvvTokenizer:
    path = Path(path)
    meta_file, json_file = path / META_FILE, path / "tokenizer.json"
    if not json_file.is_file() or not meta_file.is_file():
        raise GrowlmError(
            f"{path} is not a growlm tokenizer folder (needs tokenizer.json and {META_FILE}); "
            "build one with `growlm tokenizer build`"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        layout = meta.get("layout")
        ngrams = [Ngram(g["text"], g["script"], g["count"]) for g in meta["ngrams"]] if layout == L.LAYOUT_ID else []
        expected = meta["tokenizer_sha256"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise GrowlmError(
            f"{meta_file} is damaged ({type(err).__name__}); rebuild the tokenizer with `growlm tokenizer build`"
        ) from None
    if layout != L.LAYOUT_ID:
        raise GrowlmError(f"{path}: vocabulary layout {layout!r} is not {L.LAYOUT_ID!r}")
    data = json_file.read_bytes()
    if sha256_bytes(data) != expected:
        raise GrowlmError(
            f"{json_file} does not match {meta_file} (hash differs: truncated or changed); rebuild the tokenizer"
        )
    tok = BvvTokenizer(Tokenizer.from_str(data.decode("utf-8")), ngrams, data)
    if tok.sha256 != expected:
        raise GrowlmError(f"{json_file} does not match {meta_file} (hash differs); rebuild the tokenizer")
    return tok


def default_tokenizer() -> BvvTokenizer:
    """Monograms and specials only (no corpus)."""
    return BvvTokenizer.from_ngrams([])
