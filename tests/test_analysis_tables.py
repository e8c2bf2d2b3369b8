"""Tables: one number format, Markdown that renders as a table, escaped HTML."""

from __future__ import annotations

from growlm.analysis.tables import Table, format_value


def test_number_format():
    assert format_value(1234567) == "1,234,567"
    assert format_value(0.123456) == "0.1235"
    assert format_value(3.5e15) == "3.500e+15"
    assert format_value(None) == "–"
    assert format_value(True) == "True"
    assert format_value("a") == "a"


def test_markdown_aligns_numbers_right_and_escapes_pipes():
    text = Table("T", ["name", "loss"], [["a|b", 1.5], ["c", None]], note="n").to_markdown()
    lines = text.splitlines()
    assert lines[0] == "### T"
    assert lines[2:6] == ["| name | loss |", "| --- | ---: |", "| a\\|b | 1.5 |", "| c | – |"]
    assert lines[-1] == "n"


def test_html_escapes_text_and_marks_hashes_and_numbers():
    html = Table("<T>", ["x"], [["<b>"], ["ab" * 16], [2]]).to_html()
    assert "&lt;T&gt;" in html and "<td>&lt;b&gt;</td>" in html
    assert f"<code>{'ab' * 16}</code>" in html
    assert '<td class="num">2</td>' in html


def test_eval_rows_named_task_slash_subject_become_subject_rows(tmp_path):
    import json

    from growlm.analysis.runs import read_eval_by_depth

    rows = [
        {"depth": 1, "task": "mmlu", "metric": "acc", "value": 0.26},
        {"depth": 1, "task": "mmlu/anatomy", "metric": "acc", "value": 0.3},
    ]
    (tmp_path / "eval_by_depth.json").write_text(json.dumps(rows))
    overall, anatomy = read_eval_by_depth(tmp_path)
    assert (overall.task, overall.subject) == ("mmlu", None)
    assert (anatomy.task, anatomy.subject) == ("mmlu", "anatomy")
