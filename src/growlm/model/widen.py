"""Growth in width: a model made wider (residual width d_model, attention heads, MLP width) by a width operator.

`widen(model, d_model, n_heads, d_ff, operator, seed)` returns a NEW LlamaForCausalLM (the input is untouched):
same depth, vocabulary and head dimension (head_dim stays, so `d_model` = `n_heads` x head_dim and d_model grows
with the heads), key/value heads scaled to keep the query heads per key/value head. Adding an operator is a
function here plus an entry in WIDTH_OPERATORS. What each preserves, with sources: docs/GROWTH.md, "Growth in width".

Every parameter is a matrix (or vector) over named axes: the residual stream (d -> d'), the query-head dims
(H*h -> H'*h), the key/value-head dims (K*h -> K'*h), the MLP units (f -> f') and the vocabulary (fixed). A Linear
WRITES its rows and READS its columns; the embedding writes the residual stream (its columns), o_proj and
down_proj write it (their rows); q/k/v/gate/up and lm_head read it (their columns).

- zero (function-preserving, in the style of MSG, Yao et al. 2023, whose growth masks start new structure at 0,
  and of LLaMA-Pro's zero output projections): the old weights keep their index region (`old_slices`); every write
  outside it is 0 (the embedding's new columns, o_proj/down_proj rows of new channels and columns of new
  heads/units), so the new residual channels stay exactly 0 and new heads/units add nothing; every read outside
  it (q/k/v/gate/up/lm_head columns of new channels, the rows of new heads, kv heads and units) is drawn like a
  fresh init, so gradients reach the zero writes. RMSNorm over d' zero-padded channels sees mean(x^2) x d/d':
  every RMSNorm weight is multiplied by sqrt(d/d') (new entries get sqrt(d/d'), they multiply zeros) and
  `rms_norm_eps` by d/d': w sqrt(d/d') x / sqrt(mean x d/d' + eps d/d') = w x / sqrt(mean + eps), the old norm
  exactly (without the eps scaling it is off by O(eps / mean)).
- copy (Net2Net, Chen et al. 2016; bert2BERT, Chen et al. ACL 2022; split as in LEMON, Wang et al. ICLR 2024): new
  index i of every axis copies old index i mod n (heads copy heads, and key/value head k copies k mod K, the kv head
  of the copied heads, since query head j reads kv head j // group; MLP units copy units; residual channels tile),
  and every column a Linear reads is multiplied by the SPLIT FACTOR of its index: the factors of the copies of one
  source (a residual channel, a head, an MLP unit) sum to 1, so the copies' duplicated inputs sum to the old value.
  Equal factors (1/copies, Net2Net's division) leave the copies identical with identical gradients forever, so the
  wider model keeps the old capacity; LEMON's argument: unequal factors (alpha + beta = 1, alpha != beta) stay
  exactly function-preserving yet make the copies' outgoing weights (the columns that read them) differ, so their
  gradients and then their weights differ. `split_factors` draws them (1 + SPLIT_SPREAD x uniform(-1, 1), normalised
  over the group; a source copied once keeps exactly 1). Exact for the residual stream only when d'/d = m is whole
  (RMS over m tiled copies is the old RMS, so RMSNorm weights and eps are copied); other `d_model` values are
  refused.
- random: every parameter drawn as the model's `_init_weights` draws it (normal(0, initializer_range); RMSNorm
  weights 1), then the old weights put back into their index region; not function-preserving.

The input embedding is the frozen substrate: its old columns are bit-identical under every operator. Its new
columns are 0 under zero and random (they carry nothing and are never trained) and the tiled old columns under
copy (column i copies column i mod d). Random draws come from a torch.Generator seeded with `seed`, in parameter
order (copy: its split factors, residual channels, heads, MLP units), on the CPU: the same seed gives the same
weights on any device.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from growlm.errors import GrowlmError

# An operator fills the new model's parameters (float32, by name) from the old model and `config`, the new model's
# config (widened_config: zero's rms_norm_eps already scaled, widened_eps).
WidthOperator = Callable[[LlamaForCausalLM, LlamaConfig, torch.Generator], dict[str, torch.Tensor]]

# The axes of each parameter, by the last two parts of its name: rows first (what a Linear writes), then columns.
AXES: dict[str, tuple[str, ...]] = {
    "embed_tokens.weight": ("vocab", "model"),
    "q_proj.weight": ("q", "model"),
    "k_proj.weight": ("kv", "model"),
    "v_proj.weight": ("kv", "model"),
    "o_proj.weight": ("model", "q"),
    "gate_proj.weight": ("ff", "model"),
    "up_proj.weight": ("ff", "model"),
    "down_proj.weight": ("model", "ff"),
    "input_layernorm.weight": ("model",),
    "post_attention_layernorm.weight": ("model",),
    "norm.weight": ("model",),
    "lm_head.weight": ("vocab", "model"),
}
LAYER_PARAMS = (
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
)
WRITES = {"embed_tokens.weight", "o_proj.weight", "down_proj.weight"}  # what puts values into the residual stream
LOOKUPS = {"embed_tokens.weight"}  # matrices indexed by id, not multiplied: their columns are written, not read


def _key(name: str) -> str:
    """The last two parts of a parameter name: what it is, whichever block it sits in."""
    return ".".join(name.split(".")[-2:])


def axes(name: str) -> tuple[str, ...]:
    return AXES[_key(name)]


def head_dim(config: LlamaConfig) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def sizes(config: LlamaConfig) -> dict[str, int]:
    """The length of each axis."""
    h = head_dim(config)
    return {
        "vocab": config.vocab_size,
        "model": config.hidden_size,
        "q": config.num_attention_heads * h,
        "kv": config.num_key_value_heads * h,
        "ff": config.intermediate_size,
    }


def param_names(config: LlamaConfig) -> list[str]:
    """The parameters of a LlamaForCausalLM with an untied head, in named_parameters order."""
    layers = [f"model.layers.{i}.{p}" for i in range(config.num_hidden_layers) for p in LAYER_PARAMS]
    return ["model.embed_tokens.weight", *layers, "model.norm.weight", "lm_head.weight"]


def old_slices(old_config: LlamaConfig, new_config: LlamaConfig) -> dict[str, tuple[slice, ...]]:
    """For each parameter of the widened model, the index region its old weights were put in: the leading old-size
    indices of every axis (old rows and columns where they were; what a "frozen old weights" arm masks).

    What the region holds: under random, the old weights bit for bit; under zero, the same, except RMSNorm weights
    (old x sqrt(d/d')); under copy, the first copy of each old weight: bit-identical for the embedding and RMSNorm
    weights, every other matrix multiplied column by column by the split factor of the first copy of what it reads
    (`split_factors(...)[axis][:old size]` of its column axis; 1 for what was copied once, not 1/copies: the
    factors are unequal)."""
    old = sizes(old_config)
    return {name: tuple(slice(0, old[axis]) for axis in axes(name)) for name in param_names(new_config)}


@dataclass(frozen=True)
class Shape:
    """The sizes widening changes: anything with these fields (growlm.config.ModelConfig has them) will do."""

    d_model: int
    n_heads: int
    kv_heads: int
    ff: int

    @classmethod
    def of(cls, config: LlamaConfig) -> "Shape":
        return cls(config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.intermediate_size)


def check_widening(old, new, operator: str) -> None:
    """Refuse a widening `operator` cannot make from shape `old` to `new` (anything with Shape's fields; new's
    kv_heads is not read: it follows from the grouping): shrinking, a head size that changes, heads that break the
    key/value grouping, and for copy a d_model that is not a whole multiple."""
    h, group = old.d_model // old.n_heads, old.n_heads // old.kv_heads
    if new.d_model < old.d_model or new.n_heads < old.n_heads or new.ff < old.ff:
        raise GrowlmError(
            f"widening cannot shrink: d_model {new.d_model}, n_heads {new.n_heads}, d_ff {new.ff} against the "
            f"model's {old.d_model}, {old.n_heads}, {old.ff}; give each at least the current value"
        )
    if new.d_model != new.n_heads * h:
        raise GrowlmError(
            f"d_model {new.d_model} must be n_heads x head size = {new.n_heads} x {h} = {new.n_heads * h}: "
            "widening keeps the head size, so d_model grows with the heads"
        )
    if new.n_heads % group:
        raise GrowlmError(
            f"n_heads {new.n_heads} must be a multiple of {group}, the query heads per key/value head "
            f"({old.n_heads} heads over {old.kv_heads} key/value heads)"
        )
    if operator == "copy" and new.d_model % old.d_model:
        raise GrowlmError(
            f"operator copy widens d_model by whole multiples of {old.d_model}, and {new.d_model} is not one; "
            "give a multiple, or use operator zero"
        )


def widened_eps(operator: str, eps: float, d: int, d_new: int) -> float:
    """rms_norm_eps after widening from d to d_new: zero scales it by d / d_new (module docstring); others keep it."""
    return eps * d / d_new if operator == "zero" else eps


def widened_config(config: LlamaConfig, d_model: int, n_heads: int, d_ff: int, operator: str) -> LlamaConfig:
    """The new model's config; refuses what check_widening refuses."""
    h, group = head_dim(config), config.num_attention_heads // config.num_key_value_heads
    check_widening(Shape.of(config), Shape(d_model, n_heads, 0, d_ff), operator)
    new = copy.deepcopy(config)
    new.hidden_size, new.num_attention_heads, new.head_dim = d_model, n_heads, h
    new.num_key_value_heads, new.intermediate_size = n_heads // group, d_ff
    new.rms_norm_eps = widened_eps(operator, config.rms_norm_eps, config.hidden_size, d_model)
    return new


def _old_state(model: LlamaForCausalLM) -> dict[str, torch.Tensor]:
    return {name: p.detach().float() for name, p in model.named_parameters()}


def _fresh(shape: tuple[int, ...], config: LlamaConfig, generator: torch.Generator) -> torch.Tensor:
    """A tensor drawn as _init_weights draws it: RMSNorm weights 1, every matrix normal(0, initializer_range)."""
    if len(shape) == 1:
        return torch.ones(shape)
    return torch.randn(shape, generator=generator) * config.initializer_range


def _placed(model: LlamaForCausalLM, config: LlamaConfig, generator: torch.Generator, zero_writes: bool):
    """Fresh tensors of the new shapes with the old weights in their regions; with `zero_writes`, every write
    outside the old region is 0. The embedding's new columns are 0 either way."""
    old, regions, new = _old_state(model), old_slices(model.config, config), sizes(config)
    device = model.model.embed_tokens.weight.device
    state = {}
    for name in param_names(config):
        shape = tuple(new[axis] for axis in axes(name))
        tensor = _fresh(shape, config, generator).to(device)
        if _key(name) in LOOKUPS or (zero_writes and _key(name) in WRITES):
            tensor.zero_()
        tensor[regions[name]] = old[name]
        state[name] = tensor
    return state


def zero_init(model: LlamaForCausalLM, config: LlamaConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """zero: new residual channels, heads and units write 0 and read fresh weights; RMSNorm weights and eps scaled
    so the norms see the old mean square (module docstring). Exact."""
    d, d_new = model.config.hidden_size, config.hidden_size
    scale = math.sqrt(d / d_new)
    state = _placed(model, config, generator, zero_writes=True)
    for name, tensor in state.items():
        if tensor.dim() == 1:
            tensor.mul_(scale)
    return state


# How far copy's split factors stray from equal: a copy's factor before normalisation is 1 + SPLIT_SPREAD x u,
# u uniform(-1, 1), so two copies' factors differ by up to a ratio (1 + s) / (1 - s) = 3 (positive while s < 1).
# 0 gives Net2Net's equal split, whose copies never separate (the tests' control).
SPLIT_SPREAD = 0.5


def _group_split(index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Factors per new index (index[i]: the old index it copies) that sum to 1 over the copies of each old index:
    1 + SPLIT_SPREAD x uniform(-1, 1) divided by the group's sum (float64, then float32; exactly 1 if copied once)."""
    draw = 1 + SPLIT_SPREAD * (2 * torch.rand(len(index), generator=generator, dtype=torch.float64) - 1)
    total = torch.zeros(int(index.max()) + 1, dtype=torch.float64).index_add_(0, index, draw)
    return (draw / total[index]).float()


def split_factors(old: LlamaConfig, new: LlamaConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """copy's split factor for every index of each axis a Linear reads ("model", "q", "ff"), on the CPU, drawn in
    that order: one per residual channel, per query head (its head_dim indices share it) and per MLP unit.
    Unequal within a copy group, to break the copies' symmetry (LEMON; module docstring)."""
    old_sizes, new_sizes = sizes(old), sizes(new)
    heads = torch.arange(new.num_attention_heads) % old.num_attention_heads
    return {
        "model": _group_split(torch.arange(new_sizes["model"]) % old_sizes["model"], generator),
        "q": _group_split(heads, generator).repeat_interleave(head_dim(new)),
        "ff": _group_split(torch.arange(new_sizes["ff"]) % old_sizes["ff"], generator),
    }


def copy_init(model: LlamaForCausalLM, config: LlamaConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """copy: index i of every axis copies old index i mod n; each read column multiplied by its split factor
    (summing to 1 over the copies of its source, unequal). Exact; refuses a `d_model` that is not a whole multiple
    of the old one."""
    old_sizes, new_sizes = sizes(model.config), sizes(config)
    old = _old_state(model)
    device = model.model.embed_tokens.weight.device
    index = {axis: torch.arange(n, device=device) % old_sizes[axis] for axis, n in new_sizes.items()}
    factors = {axis: f.to(device) for axis, f in split_factors(model.config, config, generator).items()}
    state = {}
    for name in param_names(config):
        names = axes(name)
        tensor = old[name]
        for dim, axis in enumerate(names):
            tensor = tensor.index_select(dim, index[axis])
        if len(names) == 2 and _key(name) not in LOOKUPS:
            tensor = tensor * factors[names[1]]
        state[name] = tensor
    return state


def random_init(model: LlamaForCausalLM, config: LlamaConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """random: a fresh model of the new shape with the old weights put back in their regions. Not exact."""
    return _placed(model, config, generator, zero_writes=False)


WIDTH_OPERATORS: dict[str, WidthOperator] = {
    "zero": zero_init,
    "copy": copy_init,
    "random": random_init,
}


def widen(
    model: LlamaForCausalLM, d_model: int, n_heads: int, d_ff: int, operator: str, seed: int = 0
) -> LlamaForCausalLM:
    """A new model `d_model` wide with `n_heads` heads and `d_ff` MLP units, made by the width `operator` from
    `model` (left untouched), on its device and in its dtype, in its training mode."""
    if operator not in WIDTH_OPERATORS:
        raise GrowlmError(f"`operator`={operator!r} is not one of {', '.join(WIDTH_OPERATORS)}")
    if model.config.tie_word_embeddings:
        raise GrowlmError("widening needs an untied LM head (tie_word_embeddings=False)")
    config = widened_config(model.config, d_model, n_heads, d_ff, operator)
    with torch.no_grad():
        state = WIDTH_OPERATORS[operator](model, config, torch.Generator().manual_seed(seed))
    with torch.random.fork_rng(devices=[]):  # its own init is overwritten: leave the caller's RNG as it was
        wide = LlamaForCausalLM(config)
    weight = model.model.embed_tokens.weight
    wide.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        for name, p in wide.named_parameters():
            p.copy_(state[name])
    return wide.train(model.training)
