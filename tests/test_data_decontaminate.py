import json
import random

import pytest

from growlm.cli import main
from growlm.data.decontaminate import ItemIndex, drop_overlapping, find_overlaps, normalized_words, read_items
from growlm.data.prepare import prepare
from growlm.data.shards import ShardSet
from growlm.tokenizer import default_tokenizer

VOCAB = (
    "river stone light garden window paper silver morning quiet table orange music winter forest letter "
    "bridge candle number yellow history pocket mirror thunder basket"
).split()


def _sentence(rng, k):
    return " ".join(rng.choice(VOCAB) for _ in range(k))


@pytest.fixture(scope="module")
def planted(module_tmp):
    """300 documents; 12 evaluation items, 8 of them planted (re-cased, re-punctuated) into distinct documents."""
    root = module_tmp("decon")
    rng = random.Random(5)
    items = [f"Question {i}: " + _sentence(rng, 20) + f" zebra{i}?" for i in range(12)]
    docs = [f"doc {i} " + _sentence(rng, 40) for i in range(300)]
    targets = rng.sample(range(300), 8)
    for item, d in zip(items[:8], targets):
        words = item.upper().replace(":", " ;").split()
        start = rng.randint(0, len(words) - 14)
        docs[d] += " ... " + " ".join(words[start : start + 14]) + "!"  # 14 words of the item: one shared 13-gram
    folder = root / "docs"
    folder.mkdir()
    (folder / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs), "utf-8")
    shards = prepare([(str(folder), None)], default_tokenizer(), root / "shards", progress=False)
    return shards, items, {f"docs.jsonl#{d}" for d in targets}


def test_every_planted_overlap_is_found_and_nothing_else(planted):
    shards, items, targets = planted
    report = find_overlaps(shards, items, progress=False)
    assert {o.doc_id for o in report.overlaps} == targets
    assert report.contaminated_items == list(range(8))
    assert report.documents_checked == 300 and report.items_too_short == 0
    assert all(len(o.ngram.split()) == 13 for o in report.overlaps)


def test_drop_writes_shards_without_the_overlapping_documents(planted, tmp_path):
    shards, items, targets = planted
    out = tmp_path / "clean"
    drop_overlapping(shards, items, out, progress=False)
    clean = ShardSet(out)
    kept = {d for part in clean.all_splits() for d in part.doc_ids}
    before = {d for part in ShardSet(shards).all_splits() for d in part.doc_ids}
    assert kept == before - targets
    assert find_overlaps(out, items, progress=False).overlaps == []
    m = clean.manifest
    assert m["decontamination"]["dropped_documents"] == 8
    assert m["splits"]["train"]["documents"] + m["splits"]["val"]["documents"] == 292
    tok = clean.tokenizer()
    for part in clean.all_splits():
        assert part.info["tokens"] == len(part.tokens) == part.offsets[-1]
        assert part.info["chars"] == sum(len(tok.decode(part.document(i).tolist())) for i in range(len(part)))


def test_normalised_words_split_cjk_into_characters():
    assert normalized_words("Hello, WORLD_wide! Ｆｕｌｌ-width 1998年新年讲话 кот.") == [
        "hello",
        "world",
        "wide",
        "full",
        "width",
        "1998",
        "年",
        "新",
        "年",
        "讲",
        "话",
        "кот",
    ]


def test_short_items_are_counted(planted):
    shards, _, _ = planted
    report = find_overlaps(shards, ["too short to check", "river stone"], progress=False)
    assert report.items_too_short == 2 and report.items_exact == 0 and report.overlaps == []


def test_items_under_n_words_match_only_when_contained_whole():
    index = ItemIndex(["Which planet is the red one?", "the river runs to the sea"], n=13)
    assert index.matched_whole == 2 and index.too_short == 0
    assert index.match("Quiz. WHICH planet is the red one? Mars.")[0] == [0]
    assert index.match("which planet is red")[0] == []
    assert ItemIndex(["Which planet is the red one?"], n=13, exact=False).too_short == 1


def test_cli_reads_txt_and_jsonl_items(planted, tmp_path, capsys):
    shards, items, targets = planted
    (tmp_path / "items.txt").write_text("\n".join(items[:4]) + "\n\n", encoding="utf-8")
    (tmp_path / "items.jsonl").write_text("".join(json.dumps({"q": it, "a": ["x"]}) + "\n" for it in items[4:]))
    assert read_items(tmp_path / "items.jsonl", ["q", "a"])[0] == items[4] + "\nx"
    report = tmp_path / "report.json"
    assert (
        main(
            [
                "data",
                "decontaminate",
                "--shards",
                str(shards),
                "--against",
                str(tmp_path / "items.txt"),
                str(tmp_path / "items.jsonl"),
                "--field",
                "q",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    assert "8 documents share a 13-gram with 8 items" in capsys.readouterr().out
    assert {o["doc_id"] for o in json.loads(report.read_text())["overlaps"]} == targets
    assert main(["data", "decontaminate", "--shards", str(shards), "--against", str(tmp_path / "items.jsonl")]) == 2
    assert "no field 'text'" in capsys.readouterr().err
