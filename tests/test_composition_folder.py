"""growlm.composition.folder: a composed folder refuses experts or tokenizer files changed since composition."""

import shutil

import pytest

from growlm.composition.folder import compose, load_composed, verified_expert_paths
from growlm.errors import GrowlmError
from test_model_folder import experts  # noqa: F401 (a fixture)


def test_composition_refuses_an_expert_whose_tokenizer_changed(experts, tmp_path):
    copies = [shutil.copytree(e, tmp_path / e.name) for e in experts]
    compose(copies, tmp_path / "composed")
    assert len(verified_expert_paths(tmp_path / "composed")) == 2
    with open(copies[1] / "tokenizer_config.json", "ab") as f:
        f.write(b" ")
    with pytest.raises(GrowlmError, match="changed since composition"):
        verified_expert_paths(tmp_path / "composed")


def test_composition_refuses_its_own_tokenizer_files_changed(experts, tmp_path):
    compose(experts, tmp_path / "composed")
    with open(tmp_path / "composed" / "tokenizer.json", "ab") as f:
        f.write(b" ")
    with pytest.raises(GrowlmError, match="tokenizer files changed"):
        load_composed(tmp_path / "composed")
