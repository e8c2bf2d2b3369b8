"""growlm.model.folder and the composition hashes: nothing loaded runs shipped code, and what a composition
depends on (config, weights, generation config, tokenizer files) is covered by the hashes it records."""

import json
import shutil

import pytest

from conftest import tiny_llama
from growlm.errors import GrowlmError
from growlm.model import folder
from growlm.tokenizer import default_tokenizer

META = {"substrate": {"kind": "visual", "sha256": "0" * 64}}


@pytest.fixture(scope="module")
def experts(module_tmp):
    root = module_tmp("experts")
    return [folder.write_model(tiny_llama(seed), default_tokenizer(), root / f"e{seed}", META) for seed in (0, 1)]


@pytest.mark.parametrize(
    "name", ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]
)
def test_content_hash_covers_config_weights_and_tokenizer(experts, tmp_path, name):
    copy = shutil.copytree(experts[0], tmp_path / "copy")
    before = folder.content_sha256(copy)
    with open(copy / name, "ab") as f:
        f.write(b" ")
    assert folder.content_sha256(copy) != before


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json"])
def test_folders_asking_for_custom_code_are_refused(experts, tmp_path, name):
    copy = shutil.copytree(experts[0], tmp_path / "copy")
    data = json.loads((copy / name).read_text())
    (copy / name).write_text(json.dumps({**data, "auto_map": {"AutoTokenizer": "evil.Tok"}}))
    with pytest.raises(GrowlmError, match="custom code"):
        folder.load_tokenizer(copy)
    with pytest.raises(GrowlmError, match="custom code"):
        folder.load_model(copy)


def test_every_load_passes_trust_remote_code_false(experts, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    seen = []
    for cls in (AutoModelForCausalLM, AutoTokenizer):
        real = cls.from_pretrained

        def spy(*args, _real=real, **kwargs):
            seen.append(kwargs)
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    folder.load_model(experts[0])
    folder.load_tokenizer(experts[0])
    assert len(seen) == 2 and all(k["trust_remote_code"] is False and k["local_files_only"] for k in seen)


@pytest.mark.parametrize(
    "name, message", [("config.json", "is damaged"), ("model.safetensors", "cannot load the model")]
)
def test_damaged_model_files_give_one_line(experts, tmp_path, name, message):
    copy = shutil.copytree(experts[0], tmp_path / "copy")
    data = (copy / name).read_bytes()
    (copy / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(GrowlmError, match=message):
        folder.load_model(copy)
