"""growlm report: a self-contained HTML page that a real browser renders with every plot, plus Markdown tables."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from growlm.analysis.plots import png_bytes
from growlm.analysis.report import build_report
from growlm.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Appended to a copy of the report: after every image has settled, write each one's natural width into the DOM.
PROBE = """<img id="broken-control" alt="control" src="data:image/png;base64,AAAA">
<script>window.addEventListener("load", () => {
  const pre = document.createElement("pre"); pre.id = "image-probe";
  pre.textContent = JSON.stringify([...document.images].map(i => [i.id, i.complete, i.naturalWidth]));
  document.body.appendChild(pre);
});</script>
"""


def write_run(path: Path, stages: int = 3, steps: int = 30, evaluated: bool = True) -> Path:
    """A run directory as `growlm grow` and `growlm eval-run` write it, with made-up numbers."""
    path.mkdir(parents=True)
    rows, step, tokens, flops = [], 0, 0, 0.0
    rng = np.random.default_rng(0)
    for stage in range(1, stages + 1):
        rows.append(
            {
                "kind": "stage_start",
                "stage": stage,
                "depth": stage,
                "step": step,
                "lora_rank": 0,
                "trainable_params": 1000 * stage,
                "total_params": 5000 + 1000 * stage,
            }
        )
        for s in range(steps):
            step, tokens, flops = step + 1, tokens + 256, flops + 1e9 * stage
            loss = 3 + 0.5 / stage + 2 * math.exp(-s / 5) + 0.05 * rng.standard_normal()
            rows.append(
                {
                    "kind": "train",
                    "stage": stage,
                    "depth": stage,
                    "step": step,
                    "stage_step": s + 1,
                    "loss": loss,
                    "lr": 1e-3,
                    "tokens": tokens,
                    "flops": flops,
                    "tokens_per_s": 900.0,
                    "mfu": None,
                    "wall": (s + 1) * 0.5,
                }
            )
            if s % 10 == 9:
                rows.append(
                    {
                        "kind": "val",
                        "stage": stage,
                        "depth": stage,
                        "step": step,
                        "tokens": tokens,
                        "flops": flops,
                        "val_loss": loss + 0.1,
                    }
                )
        rows.append(
            {
                "kind": "stage_end",
                "stage": stage,
                "depth": stage,
                "step": step,
                "tokens": tokens,
                "flops": flops,
                "val_loss": loss + 0.1,
                "wall_s": steps * 0.5 + 1,
                "trainable_params": 1000 * stage,
                "total_params": 5000 + 1000 * stage,
            }
        )
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "config.resolved.toml").write_text('[model]\nd_model = 64\nheads = 4\n\n[plan]\nname = "<demo & co>"\n')
    (path / "manifest.json").write_text(
        json.dumps(
            {
                "substrate": {"kind": "visual", "sha256": "ab" * 32},
                "code": {"git_commit": "0123abcd"},
                "machine": "test box",
            }
        )
    )
    for stage in range(1, stages + 1):
        model = path / "stages" / str(stage) / "model"
        model.mkdir(parents=True)
        (model / "growlm.json").write_text(
            json.dumps(
                {
                    "format": "growlm-model-v1",
                    "substrate": {"kind": "visual", "sha256": "ab" * 32},
                    "tokenizer_sha256": "cd" * 32,
                    "vocab_size": 65536,
                    "depth": stage,
                    "stage": stage,
                    "run": path.name,
                }
            )
        )
    if evaluated:
        records = []
        for depth in range(1, stages + 1):
            for task, metric, value, chance in (
                ("mmlu", "acc", 0.24 + 0.01 * depth, 0.25),
                ("arc_easy", "acc_norm", 0.3 + 0.02 * depth, 0.25),
                ("squad", "f1", 2.0 * depth, None),
            ):
                records.append(
                    {
                        "depth": depth,
                        "task": task,
                        "metric": metric,
                        "value": value,
                        "ci_low": value * 0.9,
                        "ci_high": value * 1.1,
                        "chance": chance,
                        "n": 200,
                    }
                )
            for subject in ("anatomy", "astronomy", "virology"):
                records.append(
                    {
                        "depth": depth,
                        "task": "mmlu",
                        "metric": "acc",
                        "subject": subject,
                        "value": 0.2 + 0.03 * depth,
                        "n": 50,
                    }
                )
        (path / "eval_by_depth.json").write_text(json.dumps({"rows": records}))
    return path


def image_widths(html_path: Path, tmp_path: Path) -> dict[str, list[int]]:
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="image-probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"no probe output from chromium: {result.stderr[-2000:]}"
    widths: dict[str, list[int]] = {"report": [], "control": []}
    for image_id, complete, width in json.loads(found.group(1)):
        assert complete
        widths["control" if image_id == "broken-control" else "report"].append(width)
    return widths


def external_references(html: str) -> list[str]:
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html) + re.findall(r"url\(([^)]*)\)", html)
    return [r for r in refs if not r.startswith(("data:", "#"))]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium)")
def test_run_report_renders_every_plot_in_chromium(tmp_path):
    run = write_run(tmp_path / "run")
    assert main(["report", str(run)]) == 0
    html_path = run / "report.html"
    widths = image_widths(html_path, tmp_path)
    # Loss curve, metrics by depth, MMLU subject heatmap.
    assert len(widths["report"]) == 3
    assert all(w > 0 for w in widths["report"]), widths
    assert widths["control"] == [0], "the probe must be able to see a broken image"


def test_run_report_is_self_contained_and_has_tables_in_both_formats(tmp_path):
    run = write_run(tmp_path / "run")
    assert main(["report", str(run), "--out", str(tmp_path / "out" / "r.html")]) == 0
    html = (tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    markdown = (tmp_path / "out" / "r.md").read_text(encoding="utf-8")
    assert external_references(html) == []
    assert "<script" not in html and "<link" not in html
    assert html.count('src="data:image/png;base64,') == 3
    assert "&lt;demo &amp; co&gt;" in html  # the resolved config, escaped
    for text in ("0123abcd", "ab" * 32, "cd" * 32, "mmlu acc (chance 0.25)", "arc_easy acc_norm"):
        assert text in html and text in markdown
    stage_rows = [line for line in markdown.splitlines() if re.match(r"\| [123] \| [123] \| 30 \| 0 \|", line)]
    assert len(stage_rows) == 3
    assert all(line.endswith(" | 16 |") for line in stage_rows)  # each stage's own wall time
    assert "| 2 | 0.26 [0.234, 0.286] |" in markdown


def test_report_without_evaluation_has_only_the_loss_curve(tmp_path):
    run = write_run(tmp_path / "run", stages=2, evaluated=False)
    doc = build_report(run)
    assert doc.to_html().count("<img") == 1
    assert "Evaluation by depth" not in doc.to_markdown()


def test_study_report_embeds_study_plots_and_compares_runs_at_equal_flops(tmp_path):
    study = tmp_path / "study"
    write_run(study / "constructive")
    write_run(study / "monolithic", stages=1, steps=60, evaluated=False)
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    (study / "plots").mkdir()
    (study / "plots" / "extra.png").write_bytes(png_bytes(fig))
    (study / "study.json").write_text(
        json.dumps(
            {
                "study": "nine-layer",
                "runs": {"constructive 1-3": "constructive", "monolithic": "monolithic"},
                "tables": [
                    {
                        "title": "Comparison",
                        "columns": ["run", "final val loss"],
                        "rows": [["constructive 1-3", 3.21], ["monolithic", 3.1]],
                    }
                ],
                "plots": ["plots/extra.png"],
            }
        )
    )
    assert main(["report", str(study)]) == 0
    html = (study / "report.html").read_text(encoding="utf-8")
    markdown = (study / "report.md").read_text(encoding="utf-8")
    # study plot + loss vs FLOPs + constructive (3) + monolithic (1)
    assert html.count("<img") == 6
    assert "| constructive 1-3 | 3.21 |" in markdown
    # depth, stages, tokens, FLOPs, wall summed over stages
    assert re.search(r"\| constructive 1-3 \| 3 \| 3 \| 23,040 \| 1\.800e\+11 \| 48 \| ", markdown)
    assert "Loss at equal compute" in html
    assert "Run: monolithic" in markdown


def test_study_without_study_json_uses_run_subfolders(tmp_path):
    write_run(tmp_path / "s" / "a", evaluated=False)
    write_run(tmp_path / "s" / "b", evaluated=False)
    (tmp_path / "s" / "not-a-run").mkdir()
    markdown = build_report(tmp_path / "s").to_markdown()
    assert "Run: a" in markdown and "Run: b" in markdown and "not-a-run" not in markdown


def test_existing_report_is_not_overwritten_without_force(tmp_path, capsys):
    run = write_run(tmp_path / "run", evaluated=False)
    assert main(["report", str(run)]) == 0
    before = (run / "report.html").read_bytes()
    assert main(["report", str(run)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (run / "report.html").read_bytes() == before
    assert main(["report", str(run), "--force"]) == 0


@pytest.mark.parametrize(
    "content, message",
    [
        ('[{"depth": 1, "task": "mmlu", "value": 0.3}]', "missing field 'metric'"),
        ('[{"depth": "one", "task": "mmlu", "metric": "acc", "value": 0.3}]', "bad value"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_evaluation_file_is_a_clear_error_and_writes_nothing(tmp_path, capsys, content, message):
    run = write_run(tmp_path / "run", evaluated=False)
    (run / "eval_by_depth.json").write_text(content)
    assert main(["report", str(run)]) == 2
    assert message in capsys.readouterr().err
    assert not (run / "report.html").exists() and not (run / "report.md").exists()


def test_torn_last_metrics_line_is_ignored_but_earlier_corruption_is_an_error(tmp_path, capsys):
    run = write_run(tmp_path / "run", stages=1, evaluated=False)
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"kind": "tra')
    assert main(["report", str(run)]) == 0
    metrics.write_text('{"kind": \n' + metrics.read_text())
    assert main(["report", str(run), "--force"]) == 2
    assert "line 1" in capsys.readouterr().err


def test_not_a_run_or_study_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "neither a run nor a study" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
