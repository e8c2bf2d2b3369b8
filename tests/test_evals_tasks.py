import inspect

import pytest

from growlm.errors import GrowlmError
from growlm.evals.records import TaskResult
from growlm.evals.settings import EvalContext
from growlm.evals.tasks import TASKS, parse_tasks

RUNNERS = [
    (f"{name}.{kind}", fn)
    for name, spec in TASKS.items()
    for kind, fn in (("run", spec.run), ("run_paper", spec.run_paper))
    if fn is not None
]


@pytest.mark.parametrize(("where", "runner"), RUNNERS, ids=[w for w, _ in RUNNERS])
def test_every_registered_runner_takes_model_tokenizer_and_context(where, runner):
    signature = inspect.signature(runner, eval_str=True)
    params = list(signature.parameters.values())
    assert [p.name for p in params] == ["model", "tokenizer", "ctx"], where
    assert all(
        p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is inspect.Parameter.empty for p in params
    ), where
    assert params[2].annotation is EvalContext, where
    assert signature.return_annotation is TaskResult, where


def test_the_protocol_picks_the_runner_and_the_default_split():
    (harness,) = parse_tasks("arc_easy", "harness")
    (paper,) = parse_tasks("arc_easy", "paper")
    assert (harness.split, harness.spec.runner("harness")) == ("test", TASKS["arc_easy"].run)
    assert (paper.split, paper.spec.runner("paper")) == ("validation", TASKS["arc_easy"].run_paper)
    with pytest.raises(GrowlmError, match="not part of the paper protocol"):
        parse_tasks("hellaswag", "paper")


def test_stock_tasks_use_lm_eval_0_4_wording():
    from growlm.evals.commonsense import csqa_item, hellaswag_item, piqa_item, sciq_item

    piqa = piqa_item(("r", {"goal": "Open a jar", "sol1": "twist", "sol2": "kick", "label": 1}), 0)
    assert (piqa.context, piqa.continuations, piqa.gold) == ("Question: Open a jar\nAnswer:", (" twist", " kick"), 1)
    sciq = sciq_item(
        (
            "r",
            {
                "support": "  Cells divide.",
                "question": "What divides?",
                "distractor1": "rocks",
                "distractor2": "air",
                "distractor3": "sand",
                "correct_answer": "cells",
            },
        ),
        0,
    )
    assert sciq.context == "Cells divide.\nQuestion: What divides?\nAnswer:" and sciq.gold == 3
    assert sciq.continuations == (" rocks", " air", " sand", " cells")
    csqa = csqa_item(
        (
            "r",
            {
                "id": "q",
                "question": " Where? ",
                "answerKey": "C",
                "choices": {"label": list("ABCDE"), "text": ["a", "b", "c", "d", "e"]},
            },
        ),
        0,
    )
    assert csqa.context == "Question: Where?\nA. a\nB. b\nC. c\nD. d\nE. e\nAnswer:"
    assert (csqa.continuations, csqa.gold) == ((" A", " B", " C", " D", " E"), 2)
    swag = hellaswag_item(
        (
            "r",
            {
                "activity_label": "Cooking",
                "ctx_a": "Boil water.",
                "ctx_b": "then",
                "endings": ["add salt. [title] Stir.", "x [step] y"],
                "label": "0",
            },
        ),
        0,
    )
    assert swag.context == "Cooking: Boil water. Then"
    assert swag.continuations == (" add salt.. Stir.", " x y") and swag.gold == 0


def test_olmes_variants_keep_their_own_names():
    for name in ("hellaswag_olmes", "piqa_olmes", "sciq_olmes", "csqa_olmes", "boolq"):
        assert TASKS[name].splits == ("validation",)
    assert TASKS["sciq"].splits == ("test", "validation") and TASKS["csqa"].run_paper is not None


def test_the_cli_help_lists_every_registered_task_with_its_splits(capsys, monkeypatch):
    from growlm.cli import main

    monkeypatch.setenv("COLUMNS", "1000")  # one line: argparse would break "zh-en" at its hyphen
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    shown = capsys.readouterr().out
    for name, spec in TASKS.items():
        assert (f"{name} ({'|'.join(spec.splits)})" if len(spec.splits) > 1 else f" {name}") in shown
