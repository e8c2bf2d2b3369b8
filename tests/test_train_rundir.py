"""growlm.train.rundir: the run directory's paths, its summaries, and its mark."""

from growlm.io.outputs import check_replaceable
from growlm.io.ownership import add_entries, growlm_kind
from growlm.train.records import StageSummary
from growlm.train.rundir import RunDir


def test_summaries_round_trip_through_the_file(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.read_summaries() == []
    summaries = [StageSummary(k, k, 10, 20, 64 * k, 1e9 * k, 4.0 - k / 10, add_blocks=1) for k in (1, 2)]
    run.write_summaries(summaries)
    assert run.read_summaries() == summaries


def test_a_marked_run_is_growlms_until_a_user_adds_a_file(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.mark()
    (run.path / "metrics.jsonl").write_text("")
    (run.checkpoints).mkdir()
    assert growlm_kind(run.path) == "run directory"
    add_entries(run.path, ["eval_results.json"])  # another owner's file, recorded by that owner
    (run.path / "eval_results.json").write_text("{}")
    assert growlm_kind(run.path) == "run directory" and check_replaceable(run.path, force=True) == run.path
    (run.path / "notes.txt").write_text("mine")
    assert growlm_kind(run.path) is None


def test_a_resumed_run_keeps_what_its_mark_listed(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.mark()
    add_entries(run.path, ["report.html"])
    run.mark()  # as a resume does
    (run.path / "report.html").write_text("")
    assert growlm_kind(run.path) == "run directory"
