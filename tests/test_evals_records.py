"""Typed evaluation results: results files in the layout `growlm eval` writes (tests/assets/eval-*-v1.json, written
by growlm before the types existed) read back, and write back byte for byte."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from growlm.errors import GrowlmError
from growlm.evals.by_depth import DepthRow, DepthTable, render_table, wide_csv
from growlm.evals.records import EvalResults, PerplexityItem, Score, TaskResult, read_results
from growlm.evals.results import write_results
from growlm.evals.settings import EvalSettings

ASSETS = Path(__file__).parent / "assets"
RESULTS = ["eval-harness-v1.json", "eval-paper-v1.json"]


def load(name: str) -> dict:
    return json.loads((ASSETS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", RESULTS)
def test_a_results_file_reads_and_writes_back_byte_for_byte(name, tmp_path):
    results = read_results(ASSETS / name)
    assert results.to_json() == load(name)
    assert EvalResults.from_json(results.to_json()) == results
    write_results(tmp_path / name, results, force=False)
    assert (tmp_path / name).read_bytes() == (ASSETS / name).read_bytes()


def test_results_are_read_through_attributes():
    results = read_results(ASSETS / "eval-harness-v1.json")
    assert results.protocol == "harness" and results.model_meta["depth"] == 1
    assert results.settings.max_new_tokens == 4 and isinstance(results.settings.task_files["mmlu"], Path)
    assert [(t.label, t.task, t.split) for t in results.tasks] == [
        ("mmlu", "mmlu", "test"),
        ("arc_easy", "arc_easy", "test"),
        ("squad", "squad", "validation"),
        ("translation", "translation", None),  # each direction has its own split
        ("perplexity", "perplexity", "val"),
    ]
    mmlu = results.task("mmlu")
    assert [s.task for s in mmlu.scores] == ["mmlu", "mmlu/algebra", "mmlu/anatomy"]
    acc = mmlu.scores[0]
    assert isinstance(acc, Score) and isinstance(acc.ci95, tuple) and (acc.n, acc.chance) == (4, 0.25)
    assert results.scores == tuple(s for t in results.tasks for s in t.scores)
    items = results.task("perplexity").perplexity_items()
    assert items[0] == PerplexityItem("perplexity/notes#0", items[0].nll, 24, 24)
    with pytest.raises(GrowlmError, match="no task 'boolq'"):
        results.task("boolq")


def test_a_studys_results_file_keeps_the_model_hash():
    data = {**load("eval-harness-v1.json"), "study_model_sha256": "ab" * 32}
    results = EvalResults.from_json(data)
    assert results.study_model_sha256 == "ab" * 32 and results.to_json() == data


def test_one_task_asked_for_on_two_splits_reads_back_under_each_label():
    settings = EvalSettings()

    def scores(split):
        return [Score("arc_easy", m, 0.5, (0.25, 0.75), 4, 1 / 3, split, 0, "harness") for m in ("acc", "acc_norm")]

    tasks = [TaskResult(f"arc_easy:{split}", scores(split), [{"id": split}]) for split in ("test", "validation")]
    results = EvalResults.of(Path("m"), None, settings, tasks)
    again = EvalResults.from_json(json.loads(json.dumps(results.to_json())))
    assert again == results and [t.split for t in again.tasks] == ["test", "validation"]


def test_an_older_file_reads_with_defaults_and_ignores_unknown_keys():
    data = load("eval-harness-v1.json")
    for row in data["scores"]:
        for key in ("truncated", "skipped", "majority"):
            del row[key]
    del data["settings"]["resamples"]
    data["settings"]["from_the_future"] = 1
    data["scores"][0]["from_the_future"] = 1
    results = EvalResults.from_json(data)
    assert results.scores[0].skipped == 0 and results.scores[0].majority is None
    assert results.settings.resamples == EvalSettings().resamples


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda d: d.pop("settings"), "missing the field 'settings'"),
        (lambda d: d.pop("format"), "not a 'growlm-eval-v1' results file"),
        (lambda d: d["scores"][2].pop("value"), "score 2: missing the field 'value'"),
        (lambda d: d["scores"][0].update(ci95=[0.1]), r"score 0: ci95 must be \[low, high\]"),
        (lambda d: d.update(model="m"), "model must be an object with a path"),
        (lambda d: d["tasks"].pop("mmlu"), "scores of 'mmlu' belong to none of the tasks"),
        (lambda d: d["settings"].update(shots=-1), "`shots` must be 0 or more"),
    ],
)
def test_a_damaged_file_is_a_one_line_error_naming_it(damage, message, tmp_path):
    data = load("eval-harness-v1.json")
    damage(data)
    path = tmp_path / "eval-harness.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(GrowlmError, match=message) as err:
        read_results(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_file_that_is_not_json_or_absent_is_a_growlm_error(tmp_path):
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(GrowlmError, match="is not valid JSON"):
        read_results(tmp_path / "bad.json")
    with pytest.raises(GrowlmError, match="no such results file"):
        read_results(tmp_path / "absent.json")


def test_the_depth_table_reads_and_writes_back():
    data = load("eval-by-depth-v1.json")
    table = DepthTable.from_json(data)
    assert table.to_json() == data
    assert [(r.stage, r.depth, r.score.metric) for r in table.rows][:2] == [(1, 1, "acc"), (1, 1, "acc_norm")]
    csv_lines = wide_csv(list(table.rows)).splitlines()
    assert csv_lines[0].startswith("depth,stage,arc_easy:test:acc,") and csv_lines[1].startswith("1,1,1.0,1.0,1.0,")
    assert "100.00% [100.00%, 100.00%]" in render_table(list(table.rows), table.protocol)
    broken = {**data, "rows": [{k: v for k, v in data["rows"][0].items() if k != "depth"}]}
    with pytest.raises(GrowlmError, match="row 0: missing the field 'depth'"):
        DepthTable.from_json(broken, "eval_by_depth.json")
    assert DepthRow.from_json(data["rows"][1]).to_json() == data["rows"][1]


def test_settings_refuse_what_the_protocols_do_not_allow():
    with pytest.raises(GrowlmError, match="drop `shots`"):
        EvalSettings(shots=5, protocol="paper")
    with pytest.raises(GrowlmError, match="`paper_length_leak` only applies to `protocol` paper"):
        EvalSettings(paper_length_leak=True)
    assert replace(EvalSettings(), shots=5).shots == 5
