import json
import subprocess
import sys

import pytest

from growlm.data.heldout import is_heldout_page
from growlm.data.sources import DEBIAN_HANDBOOK
from growlm.errors import GrowlmError
from growlm.evals.settings import EvalSettings
from growlm.evals.translation import Pair, _keep, corpus_scores, decontaminated, file_pairs, handbook_pairs

HYPOTHESES = {
    "en": ["the cat sat on the mat", "there is a dog in the garden", "it rains today", "open the file menu"],
    "zh": ["猫坐在垫子上", "花园里有一只狗", "今天下雨", "打开文件菜单"],
}
REFERENCES = {
    "en": ["the cat is on the mat", "a dog is in the garden", "today it is raining", "open the File menu"],
    "zh": ["猫在垫子上", "花园里有狗", "今天在下雨", "打开「文件」菜单"],
}


def sacrebleu_cli(tmp_path, hyps, refs, tokenize):
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sacrebleu",
            str(tmp_path / "ref.txt"),
            "-i",
            str(tmp_path / "hyp.txt"),
            "-m",
            "bleu",
            "chrf",
            "-tok",
            tokenize,
            "-b",
            "-w",
            "6",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


@pytest.mark.parametrize("tgt,tokenize", [("en", "13a"), ("zh", "zh")])
def test_corpus_bleu_and_chrf_match_the_sacrebleu_command_line(tmp_path, tgt, tokenize):
    scores, bleu_stats, _ = corpus_scores(
        "t", HYPOTHESES[tgt], REFERENCES[tgt], tgt, "x", 0, "harness", EvalSettings(resamples=50)
    )
    bleu, chrf = sacrebleu_cli(tmp_path, HYPOTHESES[tgt], REFERENCES[tgt], tokenize)
    assert [s.metric for s in scores] == ["bleu", "chrf"]
    assert scores[0].value == pytest.approx(bleu, abs=1e-5) and scores[1].value == pytest.approx(chrf, abs=1e-5)
    assert bleu > 0 and len(bleu_stats) == 4
    for s in scores:
        assert s.ci95[0] <= s.value <= s.ci95[1]


def test_pairs_need_four_english_words_and_the_target_script():
    assert _keep("Open the File menu now", "Откройте меню «Файл»", "ru")
    assert not _keep("File menu", "Меню «Файл»", "ru")  # too short
    assert not _keep("Open the File menu now", "Open the File menu now", "ru")  # untranslated
    assert not _keep("Open the File menu now", "打开文件菜单", "ru")  # wrong script


def test_opus_style_file_gives_both_directions(tmp_path):
    path = tmp_path / "opus.jsonl"
    rows = [{"translation": {"en": f"sentence number {i} here", "ru": f"предложение {i}"}} for i in range(8)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    pairs, directions = file_pairs(path)
    assert directions == ("en-ru", "ru-en") and len(pairs) == 8
    path.write_text(json.dumps({"translation": {"en": "a", "ru": "б", "zh": "丙"}}) + "\n", encoding="utf-8")
    with pytest.raises(GrowlmError, match="two languages"):
        file_pairs(path)


@pytest.mark.skipif(not (DEBIAN_HANDBOOK / "ru-RU").is_dir(), reason="debian-handbook is not installed")
def test_documentation_pairs_come_only_from_held_out_pages():
    pairs = handbook_pairs("ru")
    assert pairs
    for pair in pairs:
        page = pair.id.split(":", 1)[1].split("#")[0]
        assert is_heldout_page(page)
        assert _keep(pair.text["en"], pair.text["ru"], "ru")


def test_pairs_repeated_in_training_pages_are_dropped():
    long_en = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    pairs = [
        Pair("a", {"en": "Open the File menu now", "ru": "Откройте меню «Файл»"}),
        Pair("b", {"en": "Close every window you opened", "ru": "Закройте все окна"}),
        Pair("c", {"en": long_en, "ru": "числа"}),
        Pair("d", {"en": "Save the document before printing it", "ru": "Сохраните документ"}),
    ]
    training = [
        "Some page\nЗакройте все окна\nmore text",  # b's Russian side is a training paragraph
        f"intro {long_en.upper()} outro",
    ]  # c shares a 13-word n-gram (case-folded)
    assert [p.id for p in decontaminated(pairs, training)] == ["a", "d"]
