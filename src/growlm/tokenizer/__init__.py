"""bvv-layout tokenizer: ids are code points, n-grams in the surrogate and private-use blocks."""

from collections.abc import Iterable

from growlm.errors import GrowlmError
from growlm.tokenizer.bvv import BvvTokenizer, default_tokenizer, load_tokenizer
from growlm.tokenizer.mining import select_ngrams


def build_tokenizer(texts: Iterable[str], ngrams_per_script: int = 338) -> BvvTokenizer:
    if ngrams_per_script < 0:
        raise GrowlmError(f"n-grams per script must be 0 or more, got {ngrams_per_script} (`ngrams_per_script`)")
    return BvvTokenizer.from_ngrams(select_ngrams(texts, ngrams_per_script))


__all__ = ["BvvTokenizer", "build_tokenizer", "default_tokenizer", "load_tokenizer"]
