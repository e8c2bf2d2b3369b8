import json
import shutil
from pathlib import Path

import pytest

from growlm.analysis.runs import EvalRecord
from growlm.cli import main
from growlm.config import load_config
from growlm.errors import GrowlmError
from growlm.io.ownership import MARK_FILE, growlm_kind
from growlm.study.compose import verdict
from growlm.study.evaluation import OverSeeds, over_seeds
from growlm.study.nine_layer import SCALES, VARIANTS
from growlm.study.options import prepare_root
from growlm.study.runs import RunSpec, ensure_run

PNG_MAGIC = b"\x89PNG"


def run_study(name: str, out: Path, capsys, *extra: str) -> str:
    rc = main(["study", name, "--scale", "smoke", "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-3000:]
    return captured.out


def only_table(out: Path) -> dict:
    study = json.loads((out / "study.json").read_text())
    [table] = study["tables"]
    return table


def mtimes(paths) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths}


@pytest.mark.slow
def test_depth_study_end_to_end_then_reuses_every_run_and_evaluation(tmp_path, capsys):
    out = tmp_path / "depth"
    log = run_study("depth", out, capsys)
    assert "training run seed-0" in log
    study = json.loads((out / "study.json").read_text())
    table = only_table(out)
    rows = [dict(zip(table["columns"], row)) for row in table["rows"]]
    assert [r["depth"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["LoRA rank"] is not None for r in rows] == [False] * 4 + [True] * 2  # LoRA in stages 5-6
    assert [r["tokens (cum.)"] for r in rows] == sorted(r["tokens (cum.)"] for r in rows)
    assert [r["val loss after growth"] is not None for r in rows] == [False] + [True] * 5  # the growth spikes
    task_columns = [c for c in table["columns"] if c.split()[0] in ("mmlu", "arc_easy", "squad")]
    assert {c.split()[0] for c in task_columns} == {"mmlu", "arc_easy", "squad"}
    assert all("[" in r[c] for r in rows for c in task_columns)  # every score carries its interval
    assert set(study["plots"]) == {
        "plots/loss-over-stages-seed-0.png",
        "plots/scores-by-depth.png",
        "plots/mmlu-subjects-by-depth.png",
    }
    assert all((out / p).read_bytes().startswith(PNG_MAGIC) for p in study["plots"])
    by_depth = json.loads((out / "runs" / "seed-0" / "eval_by_depth.json").read_text())["rows"]
    assert {r["depth"] for r in by_depth} == set(range(1, 7))
    assert (out / "report.html").is_file() and (out / "tables.md").is_file()

    outputs = mtimes([*(out / "runs").rglob("model.safetensors"), *(out / "runs").rglob("eval/*.json")])
    log = run_study("depth", out, capsys)
    assert "reusing run seed-0" in log and "training run" not in log and "evaluating" not in log
    assert mtimes(outputs) == outputs


@pytest.mark.slow
def test_nine_layer_study_compares_every_variant_on_shared_inputs(tmp_path, capsys):
    out = tmp_path / "nine"
    run_study("nine-layer", out, capsys)
    study = json.loads((out / "study.json").read_text())
    table = study["tables"][0]
    rows = {row[0]: dict(zip(table["columns"], row)) for row in table["rows"]}
    assert list(rows) == [v.name for v in VARIANTS]
    flops = {name: row["training FLOPs"] for name, row in rows.items()}
    assert flops["constructive"] < flops["monolithic-frozen"]
    assert flops["constructive-binary"] < flops["monolithic-frozen-binary"]
    assert flops["unfrozen-1-9"] < flops["monolithic-trainable"]
    assert rows["constructive"]["trainable params by stage"].count("/") == 2
    assert all(row["tokens per param (trainable / non-embedding)"].count(" / ") == 1 for row in rows.values())
    assert [rows[v]["substrate"] for v in ("constructive", "monolithic-trainable", "constructive-binary")] == [
        "visual",
        "trainable",
        "binary",
    ]
    bpb = [c for c in table["columns"] if c.startswith("bpb ")]
    assert bpb == ["bpb validation", "bpb fortunes-en", "bpb libreoffice-help-en", "bpb debian-handbook-en"]
    assert all(" ± " in row[c] for row in rows.values() for c in bpb)  # every seed measured on every domain
    [score] = [c for c in table["columns"] if c.startswith("arc_easy acc ")]
    assert "chance 0.25" in score and "majority" in score and "cut" in score and "skipped" in score

    lrs = SCALES["smoke"].lrs
    runs = sorted((out / "runs").glob("*/lr-*/seed-0"))
    manifests = [json.loads((run / "manifest.json").read_text())["hashes"] for run in runs]
    assert len(runs) == len(VARIANTS) * len(lrs)  # the sweep: every variant at every rate on seed 0
    assert len({m["tokenizer"] for m in manifests}) == 1 and len({m["data"] for m in manifests}) == 1
    assert len({m["substrate"] for m in manifests}) == 3  # visual, binary, none (trainable)
    tokens = {json.loads((run / "stages" / "summary.json").read_text())[-1]["tokens"] for run in runs}
    assert len(tokens) == 1  # the same token budget for every variant
    assert {row["LR"] for row in rows.values()} <= {f"{lr:g}" for lr in lrs}
    from growlm.train.metrics import read_metrics
    from growlm.train.records import ValRow

    for group, reference in (("visual", "monolithic-frozen"), ("binary", "monolithic-frozen-binary")):
        comparison = study["comparisons"][group]
        assert comparison["reference"] == reference and reference not in comparison["differences"]
        for name, losses in comparison["losses"].items():  # every loss is the final validation row of its run
            finals = [
                [r for r in read_metrics(p / "metrics.jsonl") if isinstance(r, ValRow)][-1]
                for p in sorted((out / "runs" / name).glob("lr-*/seed-*"))
                if p.parent.name == f"lr-{rows[name]['LR']}"
            ]
            assert [(r.flops, r.val_loss) for r in finals] == list(zip(comparison["flops"][name], losses))
        flops = comparison["flops"]
        constructive = "constructive" if group == "visual" else "constructive-binary"
        assert all(c < m for c, m in zip(flops[constructive], flops[reference]))  # equal tokens, fewer FLOPs
        [note] = [t["note"] for t in study["tables"] if t["title"].endswith(f"{group} substrate group")]
        assert "Equal tokens, not equal FLOPs" in note
        assert all(len(per_seed) == 2 for per_seed in comparison["losses"].values())
        assert all(d["p"] is not None for d in comparison["differences"].values())
    assert [t["title"] for t in study["tables"][1:]] == [
        "Final losses at equal tokens, visual substrate group",
        "Final losses at equal tokens, binary substrate group",
        "Learning-rate sweep (seed 0)",
    ]
    assert (out / "plots" / "val-loss-vs-flops.png").read_bytes().startswith(PNG_MAGIC)
    clean = study["decontamination"]
    assert clean["tasks"] == ["arc_easy"] and clean["items"] > 2000 and clean["documents_checked"] > 0
    dropped = json.loads((out / "inputs" / "decontamination.json").read_text())["dropped"]
    assert len(dropped) == clean["documents_dropped"]
    assert all("shards-clean" in (run / "config.resolved.toml").read_text() for run in runs)


def _loss(scores_file: Path, lang: str) -> float:
    scores = json.loads(scores_file.read_text())["scores"]
    return next(s["value"] for s in scores if s["task"] == f"perplexity/{lang}" and s["metric"] == "loss")


@pytest.mark.slow
def test_compose_study_evaluates_experts_and_composition_and_states_where_it_loses(tmp_path, capsys):
    out = tmp_path / "compose"
    run_study("compose", out, capsys)
    table = only_table(out)
    assert [row[0] for row in table["rows"]][2:] == [
        "composition mean_logits",
        "composition mean_probs",
        "composition posterior",
        "composition fixed-share (switch rate 0.01)",
    ]
    assert [row[0].split()[0] for row in table["rows"]][:2] == ["A", "B"]
    columns = " ".join(table["columns"])
    for name in (
        "perplexity/en loss",
        "perplexity/ru loss",
        "perplexity/zh loss",
        "perplexity/mixed loss",
        "perplexity/mixed bpb",
        "arc_easy acc",
    ):
        assert name in columns
    for direction in ("en-ru", "ru-en", "en-zh", "zh-en"):
        assert f"translation/{direction} bleu" in columns and f"translation/{direction} chrf" in columns

    experts = [out / "runs" / name / "seed-0" for name in ("A", "B")]
    hashes = [json.loads((run / "manifest.json").read_text())["hashes"] for run in experts]
    assert hashes[0]["tokenizer"] == hashes[1]["tokenizer"] and hashes[0]["substrate"] == hashes[1]["substrate"]
    assert hashes[0]["data"] != hashes[1]["data"]
    composed = out / "composed" / "seed-0" / "mean_logits" / "model"
    composition = json.loads((composed / "composition.json").read_text())
    assert composition["mode"] == "mean_logits"
    fixed_share = json.loads((out / "composed/seed-0/fixed-share/model/composition.json").read_text())
    assert fixed_share["mode"] == "posterior" and fixed_share["switch_rate"] == 0.01
    assert "On mixed-language text posterior" in table["note"]
    assert [(composed / e["path"]).resolve() for e in composition["experts"]] == [
        (run / "stages" / "3" / "model").resolve() for run in experts
    ]

    files = {
        "A": experts[0] / "stages/3/eval/perplexity.json",
        "B": experts[1] / "stages/3/eval/perplexity.json",
        "composition": composed.parent / "eval" / "perplexity.json",
    }
    worse = [
        lang
        for lang in ("en", "ru", "zh")
        if _loss(files["composition"], lang) > min(_loss(files[e], lang) for e in ("A", "B"))
    ]
    note = table["note"]
    if worse:
        assert "NOT at least as good" in note and all(f"{lang} (" in note for lang in worse)
    else:
        assert "at least as good as the better expert on every language" in note


def _score(mean: float) -> OverSeeds:
    return OverSeeds(mean, None, mean - 0.1, mean + 0.1, None, 10)


def test_verdict_names_exactly_the_languages_where_the_composition_loses():
    models = {
        "A": {
            ("perplexity/en", "loss"): _score(3.0),
            ("perplexity/ru", "loss"): _score(3.5),
            ("perplexity/zh", "loss"): _score(6.0),
        },
        "B": {
            ("perplexity/en", "loss"): _score(3.1),
            ("perplexity/ru", "loss"): _score(6.0),
            ("perplexity/zh", "loss"): _score(4.0),
        },
        "composition": {
            ("perplexity/en", "loss"): _score(2.9),
            ("perplexity/ru", "loss"): _score(3.8),
            ("perplexity/zh", "loss"): _score(4.0),
        },
    }
    text = verdict(models, ["A", "B"])
    assert "NOT" in text and "ru (3.8000 vs 3.5000" in text and "expert A" in text
    assert "en (" not in text and "zh (" not in text  # better on en, equal on zh
    models["composition"][("perplexity/ru", "loss")] = _score(3.4)
    assert "at least as good as the better expert on every language measured (en, ru, zh)" in verdict(
        models, ["A", "B"]
    )


def test_scores_over_seeds_average_values_and_intervals_and_drop_partial_keys():
    seed0 = [EvalRecord(3, "arc_easy", "acc", 0.30, 0.20, 0.40, 0.25, 30), EvalRecord(3, "boolq", "acc", 0.6, 0.5, 0.7)]
    seed1 = [EvalRecord(3, "arc_easy", "acc", 0.40, 0.30, 0.50, 0.25, 30)]
    summary = over_seeds([seed0, seed1])
    assert list(summary) == [("arc_easy", "acc", None, 3)]
    s = summary["arc_easy", "acc", None, 3]
    assert s.mean == pytest.approx(0.35) and s.sd == pytest.approx(0.0707107, rel=1e-5)
    assert (s.ci_low, s.ci_high) == pytest.approx((0.25, 0.45))
    assert s.cell().startswith("0.35 ± 0.07071 [0.25, 0.45]")
    assert over_seeds([seed1])["arc_easy", "acc", None, 3].sd is None


def test_interrupted_run_resumes_and_finished_run_is_reused(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    spec = RunSpec("tiny", run, load_config(tiny_config()), keep_checkpoints=True)
    ensure_run(spec, tmp_path / "configs")
    assert "training run tiny" in capsys.readouterr().out and spec.complete
    # Cut the run back to where a kill in the middle of stage 2 leaves it: last checkpoint mid-stage, no export.
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir())
    mid_stage_2 = [name for name in checkpoints if not name.endswith("stage-end")][-1]
    for name in checkpoints[checkpoints.index(mid_stage_2) + 1 :]:
        shutil.rmtree(run / "checkpoints" / name)
    (run / "checkpoints" / "latest").write_text(mid_stage_2 + "\n")
    shutil.rmtree(run / "stages" / "2")
    stage_1 = mtimes([run / "stages" / "1" / "model" / "model.safetensors"])

    ensure_run(spec, tmp_path / "configs")
    assert "resuming run tiny" in capsys.readouterr().out and spec.complete
    assert mtimes(stage_1) == stage_1
    assert [s.stage for s in spec.summary()] == [1, 2]
    ensure_run(spec, tmp_path / "configs")
    assert "reusing run tiny" in capsys.readouterr().out
    with pytest.raises(GrowlmError, match="another config"):
        ensure_run(RunSpec("tiny", run, load_config(tiny_config(), ["train.lr=1e-3"])), tmp_path / "configs")


def test_bad_input_exits_2_and_leaves_folders_alone(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    assert main(["study", "depth", "--scale", "smoke", "--out", str(precious), "--force"]) == 2
    assert "is not something growlm made" in capsys.readouterr().err and (precious / "thesis.txt").is_file()
    fresh = tmp_path / "fresh"
    assert main(["study", "nine-layer", "--scale", "smoke", "--out", str(fresh), "--set", "model.depth=3"]) == 2
    assert "model.depth" in capsys.readouterr().err and not fresh.exists()


def test_force_clears_an_earlier_study_and_nothing_else(tmp_path):
    study = tmp_path / "study"
    (study / "runs" / "old").mkdir(parents=True)
    (study / "study.json").write_text("{}")
    prepare_root(study, force=False)
    assert (study / "study.json").is_file()  # without --force a study is resumed, not cleared
    prepare_root(study, force=True)
    assert study.is_dir() and [p.name for p in study.iterdir()] == [MARK_FILE]  # cleared, then marked as a study
    assert growlm_kind(study) == "study folder"


def test_a_sweep_steps_past_a_winning_edge_at_the_grids_ratio_and_not_from_inside():
    from growlm.study.sweep import past_edge

    assert past_edge([1.5e-3, 3e-3, 6e-3], 6e-3) == 0.012 and f"{past_edge([3e-3, 6e-3], 6e-3):g}" == "0.012"
    assert past_edge([1.5e-3, 3e-3, 6e-3], 1.5e-3) == 7.5e-4
    assert past_edge([1e-3, 3e-3], 1e-3) == pytest.approx(1e-3 / 3)
    assert past_edge([1.5e-3, 3e-3, 6e-3], 3e-3) is None and past_edge([3e-3], 3e-3) is None
