"""Modular composition: experts trained separately on one frozen substrate, mixed into one model."""

from growlm.composition.folder import (
    COMPOSITION_FILE,
    check_experts,
    compose,
    expert_sha256,
    is_composition,
    load_composed,
    load_experts,
    read_composition,
    verified_expert_paths,
)
from growlm.composition.mixing import MODES, ComposedModel, combine_logits, normalize_weights
from growlm.composition.record import Calibration, Composition, ExpertRef

__all__ = [
    "COMPOSITION_FILE",
    "MODES",
    "Calibration",
    "ComposedModel",
    "Composition",
    "ExpertRef",
    "check_experts",
    "combine_logits",
    "compose",
    "expert_sha256",
    "is_composition",
    "load_composed",
    "load_experts",
    "normalize_weights",
    "read_composition",
    "verified_expert_paths",
]
