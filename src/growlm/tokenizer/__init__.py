"""bvv-layout tokenizer: ids are code points, n-grams in the surrogate and private-use blocks."""

from collections.abc import Iterable

from growlm.tokenizer.bvv import BvvTokenizer, default_tokenizer, load_tokenizer
from growlm.tokenizer.mining import select_ngrams


def build_tokenizer(texts: Iterable[str], ngrams_per_script: int = 338) -> BvvTokenizer:
    return BvvTokenizer.from_ngrams(select_ngrams(texts, ngrams_per_script))


__all__ = ["BvvTokenizer", "build_tokenizer", "default_tokenizer", "load_tokenizer"]
