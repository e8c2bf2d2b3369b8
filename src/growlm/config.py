"""The one validated configuration (TOML -> pydantic) that drives a growth run.

`load_config(path, overrides)` reads TOML, applies `--set key=value` overrides (dotted keys, values parsed as
TOML, e.g. `--set train.lr=1e-3 --set growth.stages.0.tokens=20000`) and validates: unknown keys and values out
of range raise a GrowlmError naming the key and the allowed values.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from growlm.errors import GrowlmError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _registered(value: str, registry: dict, key: str, extra: tuple[str, ...] = ()) -> str:
    if value not in registry and value not in extra:
        raise ValueError(f"{key} must be one of {', '.join([*registry, *extra])}")
    return value


class SubstrateConfig(Strict):
    kind: str = Field("visual", description="a registered substrate kind (growlm.substrate.KINDS) or 'trainable'")
    cell: Literal[16, 32, 64] = 16
    recipe: Literal["default", "paper"] = "default"
    dim: int = Field(256, ge=16, le=16384, description="binary/random substrate width")
    path: str = Field("", description="a prebuilt substrate folder; empty = build into RUN/substrate")
    seed: int = 0

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from growlm.substrate import KINDS

        return _registered(kind, KINDS, "substrate.kind", ("trainable",))


class TokenizerConfig(Strict):
    path: str = Field("", description="a prebuilt tokenizer folder; empty = mine n-grams from the data sources")
    ngrams: int = Field(338, ge=0, le=4000, description="n-grams per length per script")


class DataConfig(Strict):
    sources: list[str] = Field(default_factory=lambda: ["shakespeare"], description="NAME[:WEIGHT] entries")
    shards: str = Field("", description="a prepared shard folder; empty = prepare the sources into RUN/data")
    val_fraction: float = Field(0.05, gt=0.0, lt=0.5)
    max_chars: int = Field(0, ge=0, description="cap per source in characters (0 = all)")
    seed: int = 0


class ModelConfig(Strict):
    d_model: int = Field(256, ge=16, le=16384)
    n_heads: int = Field(4, ge=1, le=256)
    n_kv_heads: int = Field(0, ge=0, le=256, description="0 = n_heads (no grouped-query attention)")
    d_ff: int = Field(0, ge=0, description="MLP width; 0 = 8/3 d_model rounded up to a multiple of 64")
    context: int = Field(256, ge=8, le=131072)
    rope_theta: float = Field(10000.0, gt=0)
    rms_norm_eps: float = Field(1e-5, gt=0)
    init_std: float = Field(0.02, gt=0)

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


class StageConfig(Strict):
    add_blocks: int = Field(1, ge=0, le=256, description="blocks stacked on top in this stage")
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
        return self

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
    stages: list[StageConfig] = Field(default_factory=lambda: [StageConfig()], min_length=1)
    budget_factor: float = Field(1.0, gt=0, description="trainable-parameter budget = factor x stage 1's")
    lora_alpha_ratio: float = Field(2.0, gt=0, description="LoRA alpha = ratio x rank")
    lora_max_rank: int = Field(64, ge=1)

    @field_validator("init")
    @classmethod
    def _known_init(cls, init: str) -> str:
        from growlm.model.growth import INIT_OPERATORS

        return _registered(init, INIT_OPERATORS, "growth.init")

    @model_validator(mode="after")
    def _first_stage_adds(self) -> "GrowthConfig":
        if self.stages[0].add_blocks < 1:
            raise ValueError("growth.stages.0.add_blocks must be >= 1 (the first stage builds the first blocks)")
        if self.stages[0].lora:
            raise ValueError("growth.stages.0.lora must be false (there are no frozen blocks yet)")
        return self


class TrainConfig(Strict):
    batch_size: int = Field(16, ge=1, description="sequences per optimizer step (global, over all ranks)")
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(3e-3, gt=0, le=1e6)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    warmup_frac: float = Field(0.05, ge=0, lt=1, description="warm-up share of each stage (re-warmed per stage)")
    warmup_tokens: int | None = Field(
        None,
        ge=1,
        description="warm-up length in tokens, the same for every stage "
        "(overrides warmup_frac; capped at the stage's length)",
    )
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    grad_clip: float = Field(1.0, ge=0, description="0 = no clipping")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="auto: bf16 on CUDA with bf16 and on CPUs "
        "with fast bf16 (AMX, AVX512-BF16; measured), fp32 elsewhere",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(100, ge=1)
    eval_batches: int = Field(8, ge=1)
    checkpoint_every: int = Field(200, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    ce_chunk: int = Field(1024, ge=16, description="tokens per chunk of the fused LM-head cross-entropy")
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 = all cores")
    compile: bool = Field(True, description="fuse the LM-head softmax/gradient with torch.compile")
    compile_blocks: bool = Field(False, description="compile the decoder blocks with torch.compile (GPU runs)")
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
    name: str = "run"
    substrate: SubstrateConfig = SubstrateConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    growth: GrowthConfig = GrowthConfig()
    train: TrainConfig = TrainConfig()


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `--set KEY=VALUE` (VALUE read as a TOML value, else as a string) to raw config data."""
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise GrowlmError(f"--set {assignment!r}: expected key=value, e.g. --set train.lr=1e-3")
    set_path(data, key, _parse_value(value))


def with_values(cfg: RunConfig, values: dict[str, Any], source: str = "config") -> RunConfig:
    """`cfg` with Python values set at dotted keys (e.g. {"growth.stages.0.tokens": 4096}), validated: how code
    (the studies, tests) derives configs, with no detour through text."""
    raw = cfg.model_dump()
    for key, value in values.items():
        set_path(raw, key, value)
    return validate_config(raw, source)


def set_path(data: dict, key: str, value: Any) -> None:
    """Set `value` at a dotted key of raw config data; list entries by index, one past the end appends."""
    node: Any = data
    parts = key.strip().split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            node = node[_index(node, part, key)]
        else:
            node = node.setdefault(part, [] if nxt.isdigit() else {})
        if not isinstance(node, (dict, list)):
            raise GrowlmError(
                f"--set {key}: {'.'.join(parts[: i + 1])} is a single value, not a table; set it "
                f"directly, e.g. --set {'.'.join(parts[: i + 1])}=..."
            )
    last = parts[-1]
    if isinstance(node, list):
        idx = int(last) if last.isdigit() else -1
        if idx == len(node):
            node.append(value)
        else:
            node[_index(node, last, key)] = value
    else:
        node[last] = value


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise GrowlmError(f"--set {key}: {part!r} is not an index of a list with {len(node)} entries")
    return int(part)


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {loc!r}; see configs/demo.toml for the valid keys"
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


def load_config(path: str | Path | None, overrides: list[str] = (), base: RunConfig | None = None) -> RunConfig:
    """The config at `path` (or `base`, or the defaults) with --set overrides applied, validated."""
    source = str(path or "config")
    data = (
        base.model_dump() if base is not None else validate_config(read_toml(path) if path else {}, source).model_dump()
    )
    for assignment in overrides:
        apply_override(data, assignment)
    return validate_config(data, source + " with --set")


def to_toml(cfg: RunConfig) -> str:
    """Resolved config as TOML (all defaults filled in), for RUN/config.resolved.toml."""
    return _toml_table(cfg.model_dump(), [])


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table (a stage's data mixture): keys quoted, as source names may be paths
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v)} to TOML")


def _toml_table(data: dict, path: list[str]) -> str:
    scalars = {
        k: v
        for k, v in data.items()
        if v is not None and not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))
    }
    lines = [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
    out = ("[" + ".".join(path) + "]\n" if path and lines else "") + "".join(line + "\n" for line in lines)
    for k, v in data.items():
        if isinstance(v, dict):
            out += "\n" + _toml_table(v, path + [k])
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                body = "".join(f"{ik} = {_toml_value(iv)}\n" for ik, iv in item.items() if iv is not None)
                out += f"\n[[{'.'.join(path + [k])}]]\n{body}"
    return out
