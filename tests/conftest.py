"""Shared fixtures: one small real corpus (Shakespeare), tokenizer, shards and substrate built once per session."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

TINY_CONFIG = """
name = "tiny"
[substrate]
kind = "visual"
path = "{substrate}"
[tokenizer]
path = "{tokenizer}"
[data]
shards = "{shards}"
[model]
d_model = 32
n_heads = 2
context = 32
[[growth.stages]]
add_blocks = 1
tokens = 512
[[growth.stages]]
add_blocks = 1
tokens = 512
[train]
batch_size = 4
lr = 3e-3
eval_every = 2
eval_batches = 2
checkpoint_every = 2
log_every = 1
keep_checkpoints = 50
compile = false
"""


# Room the suite needs in the temp folder: it held at most 3.2 GiB at once (sampled every 5 s through `make test`,
# 2026-12-07) and a margin. A module's folders live until its last test (module_tmp), a passing test's tmp_path
# goes at once (pyproject: tmp_path_retention_policy).
PEAK_DISK_GB = 4.0


def pytest_sessionstart(session):
    """Refuse to start where the temp folder cannot hold the suite: one line, instead of dozens of ENOSPC errors
    halfway through."""
    where = session.config.option.basetemp or tempfile.gettempdir()
    free = shutil.disk_usage(Path(where) if Path(where).exists() else tempfile.gettempdir()).free / 2**30
    if free < PEAK_DISK_GB and not os.environ.get("GROWLM_TESTS_IGNORE_DISK"):
        pytest.exit(
            f"{where}: {free:.1f} GiB free, the suite needs about {PEAK_DISK_GB} GiB at its peak; free space there, "
            "point TMPDIR (or --basetemp) at a disk with room, or set GROWLM_TESTS_IGNORE_DISK=1 to try anyway",
            returncode=2,
        )


@pytest.fixture(scope="module")
def module_tmp(request, tmp_path_factory):
    """mktemp for module-scoped fixtures; the folders are removed after the module's last test unless one of its
    tests failed (kept to look at, like a failed test's tmp_path)."""
    made: list[Path] = []
    failed_before = request.session.testsfailed

    def mktemp(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield mktemp
    if request.session.testsfailed == failed_before:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


def tiny_llama(seed: int, layers: int = 2, positions: int = 64):
    """A small random LlamaForCausalLM over the full 65,536-id vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=65536,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=positions,
        tie_word_embeddings=False,
        initializer_range=0.3,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def model():
    """A 2-layer random model (test files may override with their own `model`)."""
    return tiny_llama(0)


@pytest.fixture(scope="module")
def tokenizer(hf_default_tokenizer):
    """The built-in tokenizer as transformers loads it (test files may override with their own `tokenizer`)."""
    return hf_default_tokenizer


@pytest.fixture(scope="module")
def hf_default_tokenizer(module_tmp):
    """The built-in bvv tokenizer, loaded through transformers' AutoTokenizer."""
    from transformers import AutoTokenizer

    from growlm.tokenizer import default_tokenizer

    path = module_tmp("tok")
    default_tokenizer().save(path)
    return AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="session")
def corpus_inputs(tmp_path_factory) -> dict[str, Path]:
    """Tokenizer, shards and visual substrate from the first 100,000 characters of Shakespeare."""
    from growlm.data.prepare import prepare
    from growlm.data.sources import iter_documents
    from growlm.substrate import build_substrate
    from growlm.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("inputs")
    text = "".join(itertools.islice(iter_documents("shakespeare"), 3))[:100_000]
    tok = build_tokenizer([text], ngrams_per_script=30)
    tok.save(root / "tokenizer")
    prepare([("shakespeare", None)], tok, root / "shards", val_fraction=0.1, max_chars=100_000, progress=False)
    build_substrate("visual", cell=16, tokenizer=tok).save(root / "substrate")
    return {"tokenizer": root / "tokenizer", "shards": root / "shards", "substrate": root / "substrate"}


@pytest.fixture
def tiny_config(tmp_path, corpus_inputs):
    """Write a tiny two-stage config (extra TOML appended) and return its path."""

    def write(extra: str = "", name: str = "tiny.toml") -> Path:
        path = tmp_path / name
        path.write_text(TINY_CONFIG.format(**{k: str(v) for k, v in corpus_inputs.items()}) + extra)
        return path

    return write
