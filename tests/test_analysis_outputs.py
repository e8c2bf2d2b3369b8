"""The files analysis writes carry growlm's mark: --force replaces them and nothing else."""

import pytest

from growlm.errors import GrowlmError


def test_force_replaces_a_file_only_if_growlm_wrote_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from growlm.analysis.document import ReportBuilder
    from growlm.analysis.plots import png_bytes
    from growlm.io.outputs import check_output_file

    ours = {
        "eval.json": '{"format": "growlm-eval-v1"}',
        "page.md": ReportBuilder("t").to_markdown(),
        "page.html": ReportBuilder("t").to_html(),
    }
    theirs = {
        "notes.json": '{"format": "mine"}',
        "notes.md": "# my notes\n",
        "notes.html": "<html></html>",
        "data.csv": "a,b\n",
        "photo.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    }
    for name, text in {**ours, **theirs}.items():
        (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    (tmp_path / "plot.png").write_bytes(png_bytes(Figure()))
    for name in [*ours, "plot.png"]:
        assert check_output_file(tmp_path / name, force=True) == tmp_path / name
    for name in theirs:
        with pytest.raises(GrowlmError, match="is not a file growlm wrote"):
            check_output_file(tmp_path / name, force=True)
        with pytest.raises(GrowlmError, match="already exists"):
            check_output_file(tmp_path / name, force=False)
    with pytest.raises(GrowlmError, match="is a folder; give a file path"):
        check_output_file(tmp_path, force=True)
