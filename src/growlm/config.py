"""The one validated configuration (TOML -> pydantic) that drives a growth run.

`load_config(path, overrides)` reads TOML, applies `KEY=VALUE` overrides (dotted keys, values parsed as TOML,
e.g. `train.lr=1e-3`, `growth.stages.0.tokens=20000`) and validates: unknown keys and values out of range raise
a GrowlmError naming the key and the allowed values (an unknown key: the closest known ones). `explain()` lists
every key with its type, default, allowed values and description.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from growlm.config_patch import Patch, combine, dotted_patch, merge, parse_assignment  # noqa: F401 (their home, re-exported)
from growlm.config_schema import KeyRow, key_rows, toml_value, unknown_key
from growlm.errors import GrowlmError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _substrate_kinds() -> list[str]:
    from growlm.substrate import KINDS

    return [*KINDS, "trainable"]


def _init_operators() -> list[str]:
    from growlm.model.growth import INIT_OPERATORS

    return list(INIT_OPERATORS)


def _width_operators() -> list[str]:
    from growlm.model.widen import WIDTH_OPERATORS

    return list(WIDTH_OPERATORS)


# Keys whose values are a registry's names, read when needed (importing the registries imports torch).
REGISTRIES = {
    "substrate.kind": _substrate_kinds,
    "growth.init": _init_operators,
    "growth.width_init": _width_operators,
}


def _registered(value: str, key: str) -> str:
    if value not in (names := REGISTRIES[key]()):
        raise ValueError(f"{key} must be one of {', '.join(names)}")
    return value


class SubstrateConfig(Strict):
    kind: str = Field("visual", description="a registered substrate kind (growlm.substrate.KINDS) or 'trainable'")
    cell: Literal[16, 32, 64] = Field(16, description="visual: glyph cell in pixels; the substrate width is cell**2")
    recipe: Literal["default", "paper"] = Field(
        "default", description="visual: growlm's drawing, or the paper's (its quirks and collisions included)"
    )
    dim: int = Field(256, ge=16, le=16384, description="binary/random substrate width")
    path: str = Field("", description="a prebuilt substrate folder; empty = build into RUN/substrate")
    seed: int = Field(0, description="random: the draw; visual (default recipe): the collision tie-breaker")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        return _registered(kind, "substrate.kind")


class TokenizerConfig(Strict):
    path: str = Field("", description="a prebuilt tokenizer folder; empty = mine n-grams from the data sources")
    ngrams: int = Field(338, ge=0, le=4000, description="n-grams per length per script")


class DataConfig(Strict):
    sources: list[str] = Field(default_factory=lambda: ["shakespeare"], description="NAME[:WEIGHT] entries")
    shards: str = Field("", description="a prepared shard folder; empty = prepare the sources into RUN/data")
    val_fraction: float = Field(0.05, gt=0.0, lt=0.5, description="share of documents held out for validation")
    max_chars: int = Field(0, ge=0, description="cap per source in characters (0 = all)")
    seed: int = Field(0, description="seed of the train/validation split")


class ModelConfig(Strict):
    d_model: int = Field(256, ge=16, le=16384, description="hidden width (a substrate of another width is lifted)")
    n_heads: int = Field(4, ge=1, le=256, description="attention heads; must divide d_model")
    n_kv_heads: int = Field(0, ge=0, le=256, description="0 = n_heads (no grouped-query attention)")
    d_ff: int = Field(0, ge=0, description="MLP width; 0 = 8/3 d_model rounded up to a multiple of 64")
    context: int = Field(256, ge=8, le=131072, description="tokens per training window (the model's context)")
    rope_theta: float = Field(10000.0, gt=0, description="rotary position embedding base")
    rms_norm_eps: float = Field(1e-5, gt=0, description="epsilon of the RMS norms")
    init_std: float = Field(0.02, gt=0, description="standard deviation of freshly initialised weights")

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"model.d_model={self.d_model} must be divisible by model.n_heads={self.n_heads}")
        if self.n_heads % self.kv_heads:
            raise ValueError(f"model.n_heads={self.n_heads} must be divisible by model.n_kv_heads={self.kv_heads}")
        return self

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def ff(self) -> int:
        return self.d_ff or -(-(8 * self.d_model // 3) // 64) * 64


class WidenConfig(Strict):
    d_model: int = Field(
        0, ge=0, le=16384, description="widen the model to this width as the stage starts (0: no widening)"
    )
    n_heads: int = Field(
        0, ge=0, le=256, description="attention heads after widening (0: d_model / head size, which stays)"
    )
    d_ff: int = Field(0, ge=0, description="MLP width after widening (0: 8/3 of the new d_model rounded up to 64)")


class StageConfig(Strict):
    add_blocks: int = Field(1, ge=0, le=256, description="blocks stacked on top in this stage")
    widen: WidenConfig = Field(
        default_factory=WidenConfig,
        description="growth in width before the new blocks are stacked (growth.width_init makes the new weights); "
        "the earlier weights train with train_old_blocks, else only the new rows and columns do",
    )
    tokens: int = Field(100_000, ge=1, description="training tokens in this stage")
    lr: float | None = Field(None, gt=0, description="peak learning rate; default train.lr")
    lora: bool = Field(False, description="LoRA adapters on every frozen block train too")
    train_embedding: bool | None = Field(None, description="default: true only for substrate.kind = 'trainable'")
    train_old_blocks: bool = Field(False, description="unfreeze the blocks of earlier stages (monolithic-like)")
    old_blocks_lr_scale: float = Field(
        0.0,
        ge=0,
        le=1,
        description="the earlier stages' blocks keep training at "
        "this fraction of the stage's learning rate (0: frozen, the paper)",
    )
    data: dict[str, float] = Field(
        default_factory=dict,
        description="this stage's mixture: source name -> weight, over the run's data.sources (empty: the run's "
        "own mixture); e.g. a continued-training stage on a new language, with a share of replay",
    )

    @model_validator(mode="after")
    def _one_way_to_train_old_blocks(self) -> "StageConfig":
        if self.train_old_blocks and self.old_blocks_lr_scale:
            raise ValueError("give train_old_blocks (full learning rate) or old_blocks_lr_scale, not both")
        if self.lora and self.old_blocks_lr_scale:
            raise ValueError("lora adapts frozen blocks; with old_blocks_lr_scale > 0 none is frozen: drop one")
        if self.widens and (self.lora or self.old_blocks_lr_scale):
            raise ValueError(
                "a widening stage trains the earlier weights fully (train_old_blocks) or only their new rows and "
                "columns; drop lora and old_blocks_lr_scale from it"
            )
        return self

    @property
    def widens(self) -> bool:
        return self.widen.d_model > 0

    @field_validator("data")
    @classmethod
    def _mixture(cls, data: dict[str, float]) -> dict[str, float]:
        if data and (any(w < 0 for w in data.values()) or not sum(data.values()) > 0):
            raise ValueError("a stage's data weights must be >= 0 with a positive sum, e.g. {fortunes-ru = 1.0}")
        return data

    @property
    def trains_old_blocks(self) -> bool:
        return self.train_old_blocks or self.old_blocks_lr_scale > 0


class GrowthConfig(Strict):
    init: str = Field("random", description="a growth operator of growlm.model.growth.INIT_OPERATORS")
    width_init: str = Field(
        "zero", description="a width operator of growlm.model.widen.WIDTH_OPERATORS (stages with widen.d_model)"
    )
    stages: list[StageConfig] = Field(default_factory=lambda: [StageConfig()], min_length=1)
    budget_factor: float = Field(1.0, gt=0, description="trainable-parameter budget = factor x stage 1's")
    lora_alpha_ratio: float = Field(2.0, gt=0, description="LoRA alpha = ratio x rank")
    lora_max_rank: int = Field(64, ge=1, description="cap on the LoRA rank the budget would give")

    @field_validator("init")
    @classmethod
    def _known_init(cls, init: str) -> str:
        return _registered(init, "growth.init")

    @field_validator("width_init")
    @classmethod
    def _known_width_init(cls, init: str) -> str:
        return _registered(init, "growth.width_init")

    @model_validator(mode="after")
    def _first_stage_adds(self) -> "GrowthConfig":
        if self.stages[0].add_blocks < 1:
            raise ValueError("growth.stages.0.add_blocks must be >= 1 (the first stage builds the first blocks)")
        if self.stages[0].lora:
            raise ValueError("growth.stages.0.lora must be false (there are no frozen blocks yet)")
        if self.stages[0].widens:
            raise ValueError("growth.stages.0.widen must be unset (there is no model to widen yet); set model.*")
        return self


class TrainConfig(Strict):
    batch_size: int = Field(16, ge=1, description="sequences per optimizer step (global, over all ranks)")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step (must divide batch_size)")
    lr: float = Field(3e-3, gt=0, le=1e6, description="peak learning rate of every stage (a stage's lr overrides)")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="the cosine decay ends at this fraction of the peak")
    warmup_frac: float = Field(0.05, ge=0, lt=1, description="warm-up share of each stage (re-warmed per stage)")
    warmup_tokens: int | None = Field(
        None,
        ge=1,
        description="warm-up length in tokens, the same for every stage "
        "(overrides warmup_frac; capped at the stage's length)",
    )
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay")
    beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1")
    beta2: float = Field(0.95, ge=0, lt=1, description="AdamW beta2")
    grad_clip: float = Field(1.0, ge=0, description="0 = no clipping")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="auto: bf16 on CUDA with bf16 and on CPUs "
        "with fast bf16 (AMX, AVX512-BF16; measured), fp32 elsewhere",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when there is one")
    seed: int = Field(0, description="seed of the weights' initialisation and the batch order")
    log_every: int = Field(10, ge=1, description="steps between logged training rows")
    eval_every: int = Field(100, ge=1, description="steps between validation losses")
    eval_batches: int = Field(8, ge=1, description="validation batches per evaluation")
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(2, ge=1, description="checkpoints kept, the newest (never fewer than 2)")
    async_checkpoint: bool = Field(
        False, description="write a stage's checkpoints in the background (staged in host memory) while it trains on"
    )
    ce_chunk: int = Field(1024, ge=16, description="tokens per chunk of the fused LM-head cross-entropy")
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 = all cores")
    compile: bool = Field(True, description="fuse the LM-head softmax/gradient with torch.compile")
    compile_blocks: bool = Field(False, description="compile the decoder blocks with torch.compile (GPU runs)")
    activation_checkpointing: Literal["none", "blocks", "auto"] = Field(
        "none",
        description="blocks: the trained blocks keep only their inputs and recompute their forward in the backward "
        "pass (less memory, about a third more compute); auto: blocks when growlm plan's estimate does not fit the "
        "device otherwise",
    )
    parallel: Literal["auto", "ddp", "fsdp"] = Field(
        "auto",
        description="under torchrun: ddp replicates the model on every process, fsdp shards it (FSDP2); "
        "auto takes ddp when a replica fits the device, else fsdp",
    )
    collective_timeout_s: int = Field(
        600, ge=10, description="a process waiting longer than this for the others fails instead of hanging"
    )
    loggers: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=lambda: ["tensorboard"],
        description="trackers that get the training rows too (the run's metrics log always does); "
        "wandb needs the [wandb] extra, and runs offline unless WANDB_MODE says otherwise",
    )


class RunConfig(Strict):
    name: str = Field("run", description="the run's name; its folder is runs/<name> unless given")
    substrate: SubstrateConfig = SubstrateConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    growth: GrowthConfig = GrowthConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _widths_fit(self) -> "RunConfig":
        self.stage_models()
        return self

    def stage_models(self) -> list[ModelConfig]:
        """The model's shape in each stage: `model`, then as each stage's `widen` leaves it (head size and query
        heads per key/value head kept; `rms_norm_eps` as the width operator sets it)."""
        from growlm.model.widen import check_widening, widened_eps

        shapes, m = [], self.model
        for k, stage in enumerate(self.growth.stages):
            w = stage.widen
            if w.d_model:
                heads = w.n_heads or w.d_model // (m.d_model // m.n_heads)
                new = m.model_copy(update={"d_model": w.d_model, "n_heads": heads, "d_ff": w.d_ff})
                try:
                    check_widening(m, new, self.growth.width_init)
                except GrowlmError as err:
                    raise ValueError(f"growth.stages.{k}.widen: {err}") from None
                eps = widened_eps(self.growth.width_init, m.rms_norm_eps, m.d_model, w.d_model)
                kv = heads // (m.n_heads // m.kv_heads)
                m = ModelConfig(**{**new.model_dump(), "n_kv_heads": kv, "rms_norm_eps": eps})
            shapes.append(m)
        return shapes


def overlay(base: RunConfig | Mapping, *patches: Patch, source: str = "config") -> RunConfig:
    """`base` (a config, or raw TOML data) with `patches` applied in order, validated: the one way a config is
    derived from another (studies, tests, `--set` through `load_config`)."""
    data = base.model_dump() if isinstance(base, RunConfig) else copy.deepcopy(dict(base))
    for patch in patches:
        merge(data, patch, RunConfig)
    return validate_config(data, source)


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{source}: {unknown_key(RunConfig, loc)}"
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{source}: {loc}: {msg}{shown}" if loc else f"{source}: {msg}"


def validate_config(data: dict, source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise GrowlmError(_format_error(err, source)) from None


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GrowlmError(f"config {path} not found; see configs/ for examples")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise GrowlmError(f"config {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise GrowlmError(f"config {path} is not valid TOML: {err}") from None


def load_config(path: str | Path | None, overrides: Sequence[str] = (), base: RunConfig | None = None) -> RunConfig:
    """The config at `path` (or `base`, or the defaults) with `KEY=VALUE` overrides applied, validated."""
    source = str(path or "config")
    data = base if base is not None else validate_config(read_toml(path) if path else {}, source)
    patches = [parse_assignment(assignment) for assignment in overrides]
    return overlay(data, *patches, source=source + (" with overrides" if overrides else ""))


def explain(cfg: RunConfig | None = None) -> list[KeyRow]:
    """Every key of a run config: type, default, allowed values, description; with `cfg`, its value there."""
    return key_rows(RunConfig, REGISTRIES, cfg)


def to_toml(cfg: RunConfig) -> str:
    """Resolved config as TOML (all defaults filled in), for RUN/config.resolved.toml."""
    return _toml_table(cfg.model_dump(), [])


def _toml_table(data: dict, path: list[str]) -> str:
    scalars = {
        k: v
        for k, v in data.items()
        if v is not None and not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))
    }
    lines = [f"{k} = {toml_value(v)}" for k, v in scalars.items()]
    out = ("[" + ".".join(path) + "]\n" if path and lines else "") + "".join(line + "\n" for line in lines)
    for k, v in data.items():
        if isinstance(v, dict):
            out += "\n" + _toml_table(v, path + [k])
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                body = "".join(f"{ik} = {toml_value(iv)}\n" for ik, iv in item.items() if iv is not None)
                out += f"\n[[{'.'.join(path + [k])}]]\n{body}"
    return out
