"""Typed evaluation results: results files in the layout `growlm eval` writes (tests/assets/eval-*-v1.json, written
by growlm before the types existed) read back, and write back byte for byte."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from growlm.errors import GrowlmError
from growlm.evals.by_depth import DepthRow, DepthTable, render_table, wide_csv
from growlm.evals.records import (
    ChoiceItem,
    EvalResults,
    PerplexityItem,
    SampledChoiceItem,
    SampledSquadItem,
    SampledTranslationItem,
    Score,
    SquadItem,
    TaskResult,
    TranslationItem,
    item_type,
    read_results,
)
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
    assert results.task("mmlu").perplexity_items() == []
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

    item = ChoiceItem(id="q", context="Q:", continuations=(" a", " b"), gold=0, skipped=True, reason="too long")
    tasks = [TaskResult(f"arc_easy:{split}", scores(split), [item]) for split in ("test", "validation")]
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
    data["tasks"]["squad"]["items"][0]["from_the_future"] = 1
    results = EvalResults.from_json(data)
    assert results.scores[0].skipped == 0 and results.scores[0].majority is None
    assert "from_the_future" not in results.task("squad").to_json()["items"][0]
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
        (lambda d: d["tasks"]["arc_easy"]["items"][0].pop("gold"), "task arc_easy item 0: missing the field 'gold'"),
        (lambda d: d["tasks"]["mmlu"]["items"][3].pop("correct"), "task mmlu item 3: missing the field 'correct'"),
        (lambda d: d["tasks"]["squad"]["items"][1].pop("em"), "task squad item 1: missing the field 'em'"),
        (lambda d: d["tasks"]["translation"]["items"][5].pop("hypothesis"), "item 5: missing the field 'hypothesis'"),
        (lambda d: d["tasks"]["perplexity"]["items"][2].pop("nll"), "item 2: missing the field 'nll'"),
        (lambda d: d["tasks"]["squad"]["items"].__setitem__(0, "s0"), "item 0: expected a JSON object, got str"),
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


ITEM_TYPES = {  # (results file, task) -> the type of its items
    ("eval-harness-v1.json", "mmlu"): ChoiceItem,
    ("eval-harness-v1.json", "arc_easy"): ChoiceItem,
    ("eval-harness-v1.json", "squad"): SquadItem,
    ("eval-harness-v1.json", "translation"): TranslationItem,
    ("eval-harness-v1.json", "perplexity"): PerplexityItem,
    ("eval-paper-v1.json", "mmlu"): SampledChoiceItem,
    ("eval-paper-v1.json", "squad"): SampledSquadItem,
}


@pytest.mark.parametrize("name,task", list(ITEM_TYPES))
def test_every_item_of_todays_files_reads_typed_and_writes_back(name, task):
    kind = ITEM_TYPES[name, task]
    items = load(name)["tasks"][task]["items"]
    typed = read_results(ASSETS / name).task(task).items
    assert typed and all(type(i) is kind for i in typed)
    assert [i.to_json() for i in typed] == items
    assert [kind.from_json(r) for r in items] == list(typed)


def test_items_are_read_through_attributes():
    harness, paper = read_results(ASSETS / "eval-harness-v1.json"), read_results(ASSETS / "eval-paper-v1.json")
    arc = harness.task("arc_easy").items[0]
    assert (arc.continuations, arc.chars, arc.gold, arc.group) == (
        (" alpha", " beta beta", " гамма"),
        (5, 9, 5),
        2,
        None,
    )
    assert harness.task("mmlu").items[0].group == "algebra" and not harness.task("squad").items[0].has_answer
    assert harness.task("translation").items[0].direction == "en-ru"
    assert paper.task("squad").items[0].reference == "on mats" and paper.task("mmlu").items[0].correct == (False, False)


def test_a_damaged_item_of_a_paper_file_is_a_one_line_error(tmp_path):
    data = load("eval-paper-v1.json")
    data["tasks"]["squad"]["items"][1].pop("match")
    path = tmp_path / "eval-paper.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(GrowlmError, match="task squad item 1: missing the field 'match'") as err:
        read_results(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_every_registered_task_has_its_item_type():
    from growlm.evals import arc, commonsense, mmlu
    from growlm.evals.tasks import TASKS

    for name, spec in TASKS.items():
        choice = spec.run in (arc.run, commonsense.run, mmlu.run)
        assert (item_type(name, "harness") is ChoiceItem) == choice, name
        assert spec.run_paper is None or (item_type(name, "paper") is SampledChoiceItem) == choice, name


# Each runner's record layouts: the keys in the order it wrote them before records were typed (files sort them).
LAYOUTS = {
    ChoiceItem: (
        "id group context continuations gold skipped loglikelihoods chars tokens context_tokens truncated_tokens "
        "truncated pred pred_norm correct correct_norm",
        "id context continuations gold skipped reason",  # skipped, in no group
    ),
    SampledChoiceItem: ("id group prompt gold outputs correct score", "id prompt gold outputs correct score"),
    SquadItem: (
        "id prompt output prediction references has_answer skipped em f1 new_tokens truncated_tokens",
        "id prompt references has_answer skipped reason",
    ),
    TranslationItem: (
        "id direction source prompt output hypothesis references bleu_stats chrf_stats new_tokens truncated_tokens",
    ),
    SampledTranslationItem: ("id direction prompt reference new_tokens outputs sentence_bleu score",),
    PerplexityItem: ("id nll tokens bytes",),
}


@pytest.fixture(scope="module")
def runner_results(module_tmp, tokenizer):
    """Results holding every layout of item (skipped ones, ones in no group, paper translation: the assets lack
    them), as the runners build them on a tiny model."""
    from conftest import tiny_llama
    from growlm.evals import perplexity, squad, translation
    from growlm.evals.choice import McItem, run_multiple_choice
    from growlm.evals.paper_protocol import PaperChoiceItem, run_paper_choice
    from growlm.evals.settings import EvalContext

    root, model = module_tmp("runner-items"), tiny_llama(0, positions=256)
    questions = [("s0", "Cats sit.", ["mats"]), ("s1", "long " * 300, []), ("s2", "Cats sit.", [])]  # s1: skipped
    rows = [
        {"id": i, "title": "T", "context": c, "question": "Where?", "answers": {"text": a}} for i, c, a in questions
    ]
    opus = [{"translation": {"en": f"menu {i}", "ru": f"меню {i}"}} for i in range(7)]
    files = {"squad": root / "squad.jsonl", "translation": root / "opus.jsonl", "perplexity": root / "notes.txt"}
    files["perplexity"].write_text("One note.\n\nAnother one.\n", encoding="utf-8")
    for path, lines in ((files["squad"], rows), (files["translation"], opus)):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    harness = EvalSettings(max_new_tokens=4, task_files=files, resamples=10)
    paper = EvalSettings(protocol="paper", paper_runs=2, paper_length_leak=True, limit=1, task_files=files)
    choices = [McItem("a", "Q:", (" yes", " no"), 0, "g"), McItem("b", "Q:", (" yes" * 300, " no"), 1)]
    asked = [PaperChoiceItem("p0", "Q: 1?\nAnswer:", "A", 4, "g"), PaperChoiceItem("p1", "Q?\nAnswer:", "B", 2)]

    def ctx(task, split, settings):
        return EvalContext(task, split, settings, Path("m"))

    mmlu = run_multiple_choice(model, tokenizer, ctx("mmlu", "test", harness), choices)
    squad_result = squad.run(model, tokenizer, ctx("squad", "validation", harness))
    arc = run_paper_choice(model, tokenizer, ctx("arc_easy", "validation", paper), asked, 2, {})
    opus_result = translation.run(model, tokenizer, ctx("translation", "all", harness))
    notes = perplexity.run(model, tokenizer, ctx("perplexity", "val", harness))
    paper_opus = translation.run_paper(model, tokenizer, ctx("translation", "all", paper))
    return {
        "harness": EvalResults.of(Path("m"), None, harness, [mmlu, squad_result, opus_result, notes]),
        "paper": EvalResults.of(Path("m"), None, paper, [arc, paper_opus]),
    }


@pytest.mark.parametrize("protocol", ["harness", "paper"])
def test_the_runners_items_read_back_and_keep_their_layout(runner_results, protocol):
    from growlm.io.atomic import dumps_json

    results = runner_results[protocol]
    data = json.loads(dumps_json(results.to_json()))
    again = EvalResults.from_json(data)
    assert again.tasks == results.tasks and again.to_json() == data
    made = {(type(i), " ".join(i.to_json())) for t in results.tasks for i in t.items}
    assert made == {(kind, layout) for kind, _ in made for layout in LAYOUTS[kind]}


def test_a_choice_record_is_typed_as_item_record_builds_it():
    from growlm.evals.choice import McItem, item_record
    from growlm.evals.harness import ChoiceScores

    for scored in (ChoiceScores((-5.0, -8.0), (3, 5), (2, 2), (0, 0)), None):
        record = item_record(McItem("x", "Q:", (" жж", " abcd"), gold=1, group="g"), scored)
        assert list(ChoiceItem.from_json(record).to_json().items()) == list(record.items())
    with pytest.raises(GrowlmError, match=r"^item 3: missing the field 'loglikelihoods'$"):
        ChoiceItem.from_json({**record, "skipped": False}, "item 3")
