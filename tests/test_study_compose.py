"""growlm.study.compose: the mixed-language documents and the verdict of the composition study."""

import math
from types import SimpleNamespace

import pytest

from growlm.errors import GrowlmError


def test_mixed_documents_alternate_languages_paragraph_by_paragraph():
    from growlm.study.compose import mixed_documents, mixed_verdict

    docs = {"en": ["one\n\ntwo\nthree", "four"], "ru": ["один\nдва", "три"], "zh": ["一", "二\n三"], "de": ["eins"]}
    # Document k takes document k + j of the j-th language, so no document holds a page and its translation.
    assert mixed_documents(docs, paragraphs=2) == ["one\nтри\n一\ntwo", "four\nодин\n二\nдва\n三"]
    with pytest.raises(GrowlmError, match="two or more"):
        mixed_documents({"en": ["x"]})

    def score(v):
        return {("perplexity/mixed", "loss"): SimpleNamespace(mean=v)}

    def docs_of(per_token):  # 40 documents of 10 tokens, each with its own loss
        return {f"d{i}": ((per_token + 0.3 * math.sin(i)) * 10, 10) for i in range(40)}

    models = {"A": score(5.0), "B": score(4.0), "mean_logits": score(4.5), "posterior": score(3.9)}
    items = {"A": docs_of(5.0), "B": docs_of(4.0), "mean_logits": docs_of(4.5), "posterior": docs_of(3.9)}
    said = mixed_verdict(models, items, "posterior", ["A", "B", "mean_logits"])
    assert "beats every expert" in said and "40 documents" in said
    assert "B +0.1000 [+0.1000, +0.1000], p < 0.001" in said, "a constant paired gain: no doubt about it"
    items["B"] = {doc: (nll + (10 if i % 2 else -10), n) for i, (doc, (nll, n)) in enumerate(items["B"].items())}
    said = mixed_verdict(models, items, "posterior", ["A", "B"])
    gain = float(said.split("B ")[-1].split(" ")[0])
    assert gain == pytest.approx(0.1) and float(said.split("p = ")[-1].rstrip(".")) > 0.05, "noisy pairs: not shown"
    models["B"] = score(3.9)
    assert "does NOT beat: B (3.9000)" in mixed_verdict(models, items, "posterior", ["A", "B", "mean_logits"])
