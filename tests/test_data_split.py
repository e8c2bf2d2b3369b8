import random

import numpy as np

from growlm.data.split import cap, n_validation, split_by_keys, validation_mask


def test_validation_mask_resolves_prefix_ties_with_full_keys():
    """Few distinct prefixes force ties at the boundary; the result must equal sorting the full keys."""
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 30)
        prefixes = np.array([rng.randint(0, 3) for _ in range(n)], dtype=np.uint64)
        full = [int(p).to_bytes(8, "big") + bytes([rng.randint(0, 2)]) for p in prefixes]  # some fully equal
        n_val = rng.randint(0, n)
        expected = set(sorted(range(n), key=lambda i: (full[i], i))[:n_val])  # sorted() is stable: ties by position
        mask = validation_mask(prefixes, n_val, full.__getitem__)
        assert set(np.flatnonzero(mask).tolist()) == expected


def test_split_counts_and_determinism():
    assert [n_validation(n, 0.05) for n in (0, 1, 2, 100)] == [0, 0, 1, 5]
    assert n_validation(1, 0.7) == 1 and n_validation(10, 0.0) == 0 and n_validation(3, 0.9) == 2
    ids = [f"doc{i}" for i in range(100)]
    a, b = split_by_keys(ids, 0.1, seed=1), split_by_keys(ids, 0.1, seed=2)
    assert a.sum() == b.sum() == 10 and (a != b).any()
    assert (split_by_keys(ids[::-1], 0.1, seed=1) == a[::-1]).all()  # by id, not position


def test_cap_takes_documents_in_order_and_cuts_the_last():
    chars = np.array([5, 3, 4, 6])
    assert cap(chars, None) == (4, None)
    assert cap(chars, 8) == (2, None)  # exactly filled: nothing cut
    assert cap(chars, 9) == (3, 1)  # the third keeps 1 character
    assert cap(chars, 100) == (4, None) and cap(chars, 0) == (0, None) and cap(chars, -2) == (0, None)
    assert cap(np.zeros(0, dtype=np.int64), 10) == (0, None)
