"""THE exported model folder: the one module that writes and reads it.

A plain Hugging Face folder (config.json for LlamaForCausalLM, model.safetensors, generation_config.json and the
tokenizer files) that AutoModelForCausalLM / AutoTokenizer load with no remote code, plus growlm.json:
{"format": "growlm-model-v1", "substrate": {"kind", "sha256"}, "tokenizer_sha256", "vocab_size", "depth",
"stage", "run", ...}. A composed folder (growlm.composition) carries the same growlm.json with "composed": true.
Loading never runs code shipped with a folder and never downloads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import GenerationConfig

from growlm.errors import GrowlmError
from growlm.faults import crash_point
from growlm.io.atomic import atomic_write_json, read_json
from growlm.io.hashing import sha256_dir
from growlm.io.outputs import atomic_dir
from growlm.tokenizer import layout as L

MODEL_FORMAT = "growlm-model-v1"
META_FILE = "growlm.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "growlm_tokenizer.json")
_REEXPORT = "re-export the model with `growlm export`"  # how a damaged folder is fixed


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    atomic_write_json(folder / META_FILE, {"format": MODEL_FORMAT, "stage": None, "run": None, **meta})


def stage_meta(substrate_kind: str, substrate_sha256: str | None, stage: int, run: str) -> dict[str, Any]:
    """growlm.json facts of a run's model after `stage` (1-based), beside those write_model reads off the model."""
    return {"substrate": {"kind": substrate_kind, "sha256": substrate_sha256}, "stage": stage, "run": run}


def write_model(model, tokenizer, out: str | Path, meta: dict, force: bool = True, fault_point: str = "") -> Path:
    """Write a plain HF model folder plus growlm.json; `meta` holds substrate/stage/run facts."""
    with atomic_dir(out, force, kind="model folder") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        GenerationConfig(bos_token_id=L.BOS_ID, eos_token_id=L.EOS_ID, pad_token_id=L.PAD_ID).save_pretrained(tmp)
        tokenizer.save(tmp, model_max_length=model.config.max_position_embeddings)
        write_meta(
            tmp,
            {
                "tokenizer_sha256": tokenizer.sha256,
                "vocab_size": model.config.vocab_size,
                "depth": model.config.num_hidden_layers,
                **meta,
            },
        )
        if fault_point:
            crash_point(fault_point)
    return Path(out)


def is_model_folder(path: str | Path) -> bool:
    """Whether `path` holds an exported (or composed) model's growlm.json: what a finished stage leaves."""
    return (Path(path) / META_FILE).is_file()


def find_meta(path: str | Path) -> dict[str, Any] | None:
    """growlm.json of a folder, or None for a plain HF folder without one."""
    meta_file = Path(path) / META_FILE
    if not meta_file.is_file():
        return None
    meta = read_json(meta_file, _REEXPORT)
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise GrowlmError(f"{meta_file}: format {found!r} is not {MODEL_FORMAT!r}; re-export the model")
    return meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """growlm.json of a growlm model folder, refusing anything that is not one."""
    meta = find_meta(path) if Path(path).is_dir() else None
    if meta is None:
        raise GrowlmError(f"{path} is not a growlm model folder (no {META_FILE}); export one with `growlm export`")
    return meta


def model_depth(path: str | Path) -> int:
    depth = read_meta(path).get("depth")
    if not isinstance(depth, int):
        raise GrowlmError(f"{Path(path) / META_FILE} gives no depth; re-export the model with `growlm export`")
    return depth


def weight_files(path: Path) -> list[str]:
    names = sorted(p.name for p in path.iterdir() if p.suffix == ".safetensors" or p.name.endswith(".index.json"))
    if not names or not (path / "config.json").is_file():
        raise GrowlmError(f"{path} has no config.json or *.safetensors weights; it is not an exported model")
    return ["config.json", *names]


def check_loadable(path: Path) -> None:
    """Refuse, without loading, a folder that could not load or asks for custom code: every check load_model
    makes before reading the weights, plus each safetensors file's header against its length."""
    from safetensors import SafetensorError, safe_open

    _check_no_remote_code(path)
    _check_sizes(path / "config.json")
    for name in weight_files(path)[1:]:
        if name.endswith(".safetensors"):
            try:
                with safe_open(path / name, "pt"):
                    pass
            except SafetensorError as err:
                raise GrowlmError(f"{path / name} is damaged or truncated ({err}); re-export the model") from None


def content_sha256(path: Path) -> str:
    """Hash of everything a model folder loads: config, weights, generation config and tokenizer files."""
    extra = [n for n in ("generation_config.json", *TOKENIZER_FILES) if (path / n).is_file()]
    return sha256_dir(path, weight_files(path) + extra)


def copy_tokenizer(src: Path, dst: Path) -> None:
    import shutil

    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)


def _check_no_remote_code(path: Path) -> None:
    """Refuse folders whose config or tokenizer config asks for code shipped with them (never run)."""
    for name in ("config.json", "tokenizer_config.json", "generation_config.json"):
        file = path / name
        if file.is_file() and ({"auto_map", "custom_pipelines"} & read_json(file, _REEXPORT, dict).keys()):
            raise GrowlmError(
                f"{file} asks for custom code (auto_map); growlm never runs code shipped with a "
                "model: remove auto_map or re-export the model"
            )


# config.json sizes that must be positive integers; a damaged or hostile value fails only later, deep in the forward
SIZES = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "head_dim",
)


def _check_sizes(file: Path) -> None:
    config = read_json(file, _REEXPORT, dict)
    for key in SIZES:
        value = config.get(key)
        if value is not None and (type(value) is not int or value < 1):
            raise GrowlmError(
                f"{file}: {key} = {value!r} is not a positive integer; the folder is damaged: "
                "re-export it with `growlm export`"
            )


def _loaded(path: Path, what: str, load):
    try:
        return load()
    except GrowlmError:
        raise
    except Exception as err:  # a truncated or damaged file: safetensors, JSON, tokenizers errors
        first = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise GrowlmError(
            f"{path}: cannot load the {what} ({first}); the folder is damaged or incomplete: "
            "re-export it with `growlm export`"
        ) from None


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    path = Path(path)
    if not any((path / name).is_file() for name in TOKENIZER_FILES[:2]):
        raise GrowlmError(
            f"{path} has no tokenizer (tokenizer.json); export the model with `growlm export` "
            "or copy its tokenizer files into the folder"
        )
    _check_no_remote_code(path)
    return _loaded(
        path, "tokenizer", lambda: AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    )


def load_model(path: str | Path, device: str = "cpu"):
    """The folder's LlamaForCausalLM (or any HF causal LM without custom code), in eval mode."""
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not (path / "config.json").is_file():
        raise GrowlmError(f"{path} has no config.json; it is not a Hugging Face model folder")
    _check_no_remote_code(path)
    _check_sizes(path / "config.json")
    model = _loaded(
        path,
        "model",
        lambda: AutoModelForCausalLM.from_pretrained(path, local_files_only=True, trust_remote_code=False),
    )
    return model.to(device).eval()
