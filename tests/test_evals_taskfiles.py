import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from growlm.errors import GrowlmError
from growlm.evals.arc import parse_row
from growlm.evals.mmlu import Question, context
from growlm.evals.taskfiles import get, read_rows

ARC_ROW = {
    "id": "Mercury_1",
    "question": "Which is a metal?",
    "choices": {"text": ["wood", "iron", "glass"], "label": ["A", "B", "C"]},
    "answerKey": "B",
}


def test_jsonl_parquet_and_arrow_give_the_same_rows(tmp_path):
    rows = [ARC_ROW, {**ARC_ROW, "id": "Mercury_2", "answerKey": "C"}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "a.parquet")
    with pa.OSFile(str(tmp_path / "a.arrow"), "wb") as f, pa.ipc.new_stream(f, table.schema) as writer:
        writer.write_table(table)
    for name in ("a.jsonl", "a.parquet", "a.arrow"):
        questions = [parse_row(r) for r in read_rows(tmp_path / name)]
        assert [(q.id, q.answer, q.labels) for q in questions] == [
            ("Mercury_1", 1, ("A", "B", "C")),
            ("Mercury_2", 2, ("A", "B", "C")),
        ]


def test_errors_name_the_file_the_line_and_the_field(tmp_path):
    path = tmp_path / "arc.jsonl"
    broken = {k: v for k, v in ARC_ROW.items() if k != "question"}
    path.write_text(json.dumps(ARC_ROW) + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(GrowlmError, match=rf"{path}:2: missing field 'question'"):
        [parse_row(r) for r in read_rows(path)]
    path.write_text(json.dumps(ARC_ROW) + "\n{not json\n")
    with pytest.raises(GrowlmError, match=rf"{path}:2: not valid JSON"):
        read_rows(path)
    pq.write_table(
        pa.Table.from_pylist([{"question": "q", "choices": {"text": ["a"], "label": ["A"]}}]), tmp_path / "arc.parquet"
    )
    with pytest.raises(GrowlmError, match=r"arc.parquet row 1: missing field 'answerKey'"):
        [parse_row(r) for r in read_rows(tmp_path / "arc.parquet")]


def test_field_types_are_checked():
    with pytest.raises(GrowlmError, match="field 'answer' holds bool, expected int"):
        get(("f:1", {"answer": True}), "answer", int)
    assert get(("f:1", {"a": {"b": 3}}), "a.b", int) == 3


def test_unknown_formats_and_missing_files_are_refused(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(GrowlmError, match="unknown format '.csv'"):
        read_rows(tmp_path / "x.csv")
    with pytest.raises(GrowlmError, match="does not exist"):
        read_rows(tmp_path / "nope.jsonl")


def test_mmlu_prompt_is_lm_evaluation_harness_wording():
    q = Question("s/0", "high_school_physics", " What moves? ", ("a", "b", "c", "d"), 2)
    shot = Question("s/1", "high_school_physics", "Why?", ("w", "x", "y", "z"), 0)
    assert context(q, [shot]) == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "Why?\nA. w\nB. x\nC. y\nD. z\nAnswer: A\n\n"
        "What moves?\nA. a\nB. b\nC. c\nD. d\nAnswer:"
    )
