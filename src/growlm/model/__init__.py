"""The model layer: building the Llama decoder on a substrate, growing it, and its exported folder format."""

from growlm.model.folder import MODEL_FORMAT, load_model, load_tokenizer, read_meta, write_model
from growlm.model.growth import INIT_OPERATORS, grow
from growlm.model.llama import base_model, build_model, count_params, llama_config, set_depth

__all__ = [
    "INIT_OPERATORS",
    "MODEL_FORMAT",
    "base_model",
    "build_model",
    "count_params",
    "grow",
    "llama_config",
    "load_model",
    "load_tokenizer",
    "read_meta",
    "set_depth",
    "write_model",
]
