"""build_substrate: one entry point for every kind, checking that each parameter applies to the kind asked for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from growlm.errors import GrowlmError
from growlm.substrate.binary import build_binary
from growlm.substrate.gaussian import build_random
from growlm.substrate.glyphs import DEFAULT_FONT, load_glyphs
from growlm.substrate.store import Substrate, make_substrate
from growlm.substrate.visual import CELLS, RECIPES, build_visual
from growlm.tokenizer import BvvTokenizer, default_tokenizer, load_tokenizer
from growlm.tokenizer.layout import LAYOUT_ID, VOCAB_SIZE

DEFAULT_CELL = 16
DEFAULT_DIM = 256
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Kind:
    """A substrate kind: its builder (keyword parameters, None = the kind's default), the parameters it takes
    (the options of `growlm substrate build`) and those a run config's [substrate] table passes to it."""

    build: Callable[..., Substrate]
    params: tuple[str, ...]
    config_keys: tuple[str, ...]

    @property
    def takes_tokenizer(self) -> bool:
        return "tokenizer" in self.params


def build_substrate(kind: str, **params: Any) -> Substrate:
    """Build a substrate of a registered kind (see KINDS). None means the kind's default; a parameter the kind
    does not take is an error.

    visual: cell (16), recipe ("default"), tokenizer (folder or object; the built-in default), font (Unifont .hex),
    pca (False), seed (0; default recipe only: the tie-breaker's); dim, if given, must be cell**2.
    binary: dim (256, a multiple of 16).  random: dim (256), seed (0).
    """
    if kind not in KINDS:
        raise GrowlmError(f"unknown substrate kind {kind!r}; use `kind` {', '.join(KINDS)}")
    spec = KINDS[kind]
    seed = params.get("seed")
    if seed is not None and not 0 <= seed < 2**32:
        raise GrowlmError(f"`seed` {seed} is out of range; use an integer from 0 to 2**32 - 1")
    _reject_unused(
        f"a {kind} substrate",
        **{name: value for name, value in params.items() if name not in spec.params and value not in (None, False)},
    )
    return spec.build(**{name: params.get(name) for name in spec.params})


def _build_binary(dim) -> Substrate:
    dim = DEFAULT_DIM if dim is None else dim
    return make_substrate(build_binary(VOCAB_SIZE, dim), "binary", {"dim": dim}, LAYOUT_ID)


def _build_random(dim, seed) -> Substrate:
    dim = DEFAULT_DIM if dim is None else dim
    seed = DEFAULT_SEED if seed is None else seed
    return make_substrate(build_random(VOCAB_SIZE, dim, seed), "random", {"dim": dim, "seed": seed}, LAYOUT_ID)


def _build_visual(cell, recipe, dim, tokenizer, font, seed, pca) -> Substrate:
    pca = bool(pca)
    cell = DEFAULT_CELL if cell is None else cell
    recipe = "default" if recipe is None else recipe
    if cell not in CELLS:
        raise GrowlmError(f"unknown cell size {cell}; use `cell` 16, 32 or 64")
    if recipe not in RECIPES:
        raise GrowlmError(f"unknown recipe {recipe!r}; use `recipe` default or paper")
    if dim is not None and dim != cell * cell:
        raise GrowlmError(
            f"`dim` {dim} does not fit `cell` {cell}: a visual substrate has d = cell**2 = "
            f"{cell * cell}; drop `dim` (a model of another width lifts it, see substrate.lift)"
        )
    if recipe == "paper":
        _reject_unused("`recipe` paper (its distortion is always seeded with 42)", seed=seed)
    seed = DEFAULT_SEED if seed is None else seed
    tok, tokenizer_ref = _resolve_tokenizer(tokenizer)
    if recipe == "paper":  # the notebook draws every vocabulary key, placeholders included
        texts = [tok.token_text(i) or tok.hf.id_to_token(i) for i in range(VOCAB_SIZE)]
    else:
        texts = [tok.token_text(i) or "" for i in range(VOCAB_SIZE)]
    font = str(DEFAULT_FONT if font is None else font)
    glyphs = load_glyphs(font, {ord(ch) for text in texts for ch in text})
    matrix = build_visual(texts, glyphs, cell, recipe, pca, seed)
    params: dict[str, Any] = {
        "cell": cell,
        "recipe": recipe,
        "pca": pca,
        "font": font,
        "font_sha256": glyphs.sha256,
        "tokenizer": tokenizer_ref,
        "tokenizer_sha256": tok.sha256,
    }
    if recipe == "default":
        params["seed"] = seed
    return make_substrate(matrix, "visual", params, LAYOUT_ID)


def _resolve_tokenizer(tokenizer: str | Path | BvvTokenizer | None) -> tuple[BvvTokenizer, str | None]:
    """The tokenizer and how the manifest names it: its folder, "default", or None for an object passed in."""
    if tokenizer is None:
        return default_tokenizer(), "default"
    if isinstance(tokenizer, BvvTokenizer):
        return tokenizer, None
    return load_tokenizer(tokenizer), str(tokenizer)


KINDS: dict[str, Kind] = {
    "visual": Kind(
        _build_visual, ("cell", "recipe", "dim", "tokenizer", "font", "seed", "pca"), ("cell", "recipe", "seed")
    ),
    "binary": Kind(_build_binary, ("dim",), ("dim",)),
    "random": Kind(_build_random, ("dim", "seed"), ("dim", "seed")),
}


def _reject_unused(what: str, **given: Any) -> None:
    unused = [name for name, value in given.items() if value is not None]
    if unused:
        names = ", ".join(f"`{name}`" for name in unused)
        raise GrowlmError(f"{names} does not apply to {what}; drop it")
