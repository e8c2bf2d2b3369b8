"""The public Python API is what the CLI runs: the same run, the same model, the same numbers."""

import json

import pytest
import torch

import growlm
from growlm.cli import main
from growlm.errors import GrowlmError


@pytest.fixture(scope="module")
def grown(module_tmp, corpus_inputs):
    from conftest import TINY_CONFIG

    root = module_tmp("api")
    config = root / "tiny.toml"
    config.write_text(TINY_CONFIG.format(**{k: str(v) for k, v in corpus_inputs.items()}))
    return config, growlm.grow(config, out=root / "run")


def test_grow_through_the_api_equals_the_cli(grown, tmp_path):
    config, result = grown
    assert main(["grow", str(config), "--out", str(tmp_path / "cli")]) == 0
    cli_summary = json.loads((tmp_path / "cli" / "stages" / "summary.json").read_text())
    assert [s.val_loss for s in result.summaries] == [s["val_loss"] for s in cli_summary]
    assert result.stage_model() == result.run.stage_model(len(cli_summary))


def test_load_generate_and_evaluate_a_grown_model(grown):
    _, result = grown
    model, tokenizer = growlm.load(result.stage_model(), device="cpu")
    assert model.config.num_hidden_layers == 2 and tokenizer.decode(tokenizer("to be")["input_ids"]) == "to be"
    text = growlm.generate(result.stage_model(), "ROMEO:", device="cpu", max_new_tokens=8, temperature=0)
    assert text == growlm.generate(result.stage_model(), "ROMEO:", device="cpu", max_new_tokens=8, temperature=0)
    results = growlm.evaluate(result.stage_model(), "perplexity", device="cpu", limit=2)
    losses = [s for s in results.scores if s.metric == "loss"]
    assert losses and all(0 < s.value < torch.log(torch.tensor(65536.0)) for s in losses)


def test_compose_through_the_api_writes_a_loadable_composition(grown, tmp_path):
    _, result = grown
    composition = growlm.compose([result.stage_model(1), result.stage_model(2)], tmp_path / "c", weights=[3, 1])
    assert composition.weights == (0.75, 0.25)
    model, _ = growlm.load(tmp_path / "c", device="cpu")
    assert model.config.num_experts == 2


def test_stream_report_and_how_a_run_starts_through_the_api(grown, tmp_path):
    config, result = grown
    greedy = {"device": "cpu", "max_new_tokens": 8, "temperature": 0}
    pieces = list(growlm.stream(result.stage_model(), "ROMEO:", **greedy))
    assert "".join(pieces) == growlm.generate(result.stage_model(), "ROMEO:", **greedy)
    written = growlm.report(result.run.path, tmp_path / "r.html")
    assert written == (tmp_path / "r.html", tmp_path / "r.md") and written.markdown.is_file()
    with pytest.raises(GrowlmError, match="pass `resume` to continue it, `force` to replace it"):
        growlm.grow(config, out=result.run.path)
    with pytest.raises(GrowlmError, match="no such folder; start the run without `resume`"):
        growlm.grow(out=tmp_path / "none", start=growlm.Resume())
    with pytest.raises(GrowlmError, match="`base` .* not a growlm run directory"):
        growlm.grow(config, out=tmp_path / "branch", start=growlm.Branch(tmp_path / "none"))


def test_api_errors_are_growlm_errors(tmp_path):
    with pytest.raises(GrowlmError, match="give a config"):
        growlm.grow(None, out=tmp_path / "x")
    with pytest.raises(GrowlmError, match="not a checkpoint folder"):
        growlm.export(tmp_path, tmp_path / "out")


def test_evaluate_run_scores_every_stage_and_writes_its_tables(grown, tmp_path):
    _, result = grown
    done = growlm.evaluate_run(result.run.path, "perplexity", device="cpu", limit=2)
    assert [(s.stage, s.depth) for s in done.stages] == [(1, 1), (2, 2)]
    assert all(s.path.is_file() and s.results.scores for s in done.stages)
    assert {r.depth for r in done.rows} == {1, 2} and all(p.is_file() for p in done.paths.values())
    with pytest.raises(GrowlmError, match="already exists; choose another `run` or pass `force`"):
        growlm.evaluate_run(result.run.path, "perplexity", device="cpu", limit=2)
    out = tmp_path / "scores.json"
    written = growlm.evaluate(result.stage_model(), "perplexity", device="cpu", out=out, limit=2)
    assert json.loads(out.read_text()) == written.to_json()
    with pytest.raises(GrowlmError, match="no evaluation setting nope"):
        growlm.evaluate(result.stage_model(), "perplexity", device="cpu", nope=1)
