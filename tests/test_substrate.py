"""Substrates: glyph loading, both visual recipes, binary and random kinds, storage, lift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from growlm.errors import GrowlmError
from growlm.substrate import build_substrate, lift, load_substrate
from growlm.substrate.binary import decode_binary
from growlm.substrate.collisions import TIE_BREAK_SCALE, collision_groups
from growlm.substrate.drawing import draw_strips, placement_offsets
from growlm.substrate.glyphs import DEFAULT_FONT, load_glyphs
from growlm.substrate.paper import is_distorted_script, paper_images
from growlm.substrate.store import MATRIX_FILE
from growlm.substrate.visual import default_images, pca_rotate, token_images
from growlm.tokenizer import layout as L

HEX_LINES = Path(DEFAULT_FONT).read_text(encoding="ascii").split()
OTF = Path("/usr/share/fonts/opentype/unifont/unifont.otf")


@pytest.fixture(scope="module")
def glyphs():
    return load_glyphs(DEFAULT_FONT)


@pytest.fixture(scope="module")
def default16():
    return build_substrate("visual")


@pytest.fixture(scope="module")
def paper16():
    return build_substrate("visual", recipe="paper")


def hex_bitmap(line: str) -> np.ndarray:
    """Independent decoding of one .hex line: 16 rows, each row's hex digits read as a binary number."""
    digits = line.split(":")[1]
    width = len(digits) // 4
    step = width // 4
    rows = [format(int(digits[r * step : (r + 1) * step], 16), f"0{width}b") for r in range(16)]
    return np.array([[c == "1" for c in row] for row in rows])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(HEX_LINES))
def test_glyph_bits_equal_hex_bitmap(glyphs, line):
    cp = int(line.split(":")[0], 16)
    expected = hex_bitmap(line)
    width = expected.shape[1]
    assert glyphs.width[cp] == width
    assert np.array_equal(glyphs.bits[cp, :, :width], expected)
    assert not glyphs.bits[cp, :, width:].any()


@pytest.mark.skipif(not OTF.is_file(), reason="fonts-unifont is not installed")
def test_otf_glyphs_match_hex(glyphs):
    sample = [ord(ch) for ch in "AgЖ中한,"]
    otf = load_glyphs(OTF, set(sample))
    for cp in sample:
        assert np.array_equal(otf.bits[cp], glyphs.bits[cp]), chr(cp)
        assert otf.width[cp] == glyphs.width[cp]


def test_default_cell_is_the_glyph_on_its_baseline_and_scales_exactly(glyphs):
    texts = ["A", "中", "g", "."]
    small = token_images(texts, glyphs, 16, "default").reshape(-1, 16, 16)
    assert np.array_equal(small[0, :, 4:12], glyphs.bits[ord("A"), :, :8])  # half-width glyph centred
    assert np.array_equal(small[1], glyphs.bits[ord("中")])
    for cell in (32, 64):
        k = cell // 16
        big = token_images(texts, glyphs, cell, "default").reshape(-1, cell, cell)
        assert np.array_equal(big, np.kron(small, np.ones((k, k), dtype=np.float32)))


def test_default_squeeze_averages_every_column_and_paper_drops_columns(glyphs):
    pair, a, b = default_images(["AB", "A", "B"], glyphs, 16).reshape(-1, 16, 16)
    strip = np.concatenate([a, b], axis=1)
    assert np.array_equal(pair, (strip[:, 0::2] + strip[:, 1::2]) / 2)
    assert set(np.unique(paper_images(["AB"], glyphs, 16))) <= {0.0, 1.0}
    # the paper's 1-bit nearest-neighbour resize makes these n-grams identical; the default keeps them apart
    assert np.array_equal(*paper_images(["and", "ard"], glyphs, 32))
    assert not np.array_equal(*default_images(["and", "ard"], glyphs, 32))


def test_paper_distortion_is_fixed_and_script_dependent(glyphs):
    assert is_distorted_script("Ǆ Ωж<pad>") and not is_distorted_script("中") and not is_distorted_script("aب")
    a1, a2, cjk = paper_images(["A", "A", "中"], glyphs, 32).reshape(3, 32, 32)
    assert np.array_equal(a1, a2)  # reseeded every call: one fixed distortion
    plain_a, plain_cjk = draw_strips(glyphs, ["A", "中"], 32, placement_offsets(glyphs, 32, "ink"))
    assert not np.array_equal(a1 > 0, plain_a)
    assert (cjk[plain_cjk] == 1).all() and (cjk > 0).sum() - plain_cjk.sum() <= 3  # only sparse salt is added


def test_default_has_no_collisions_and_unit_rows(default16):
    matrix = default16.matrix.numpy()
    assert matrix.shape == (L.VOCAB_SIZE, 256) and matrix.dtype == np.float32
    assert collision_groups(matrix) == []
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_default_tie_breaker_keeps_homoglyphs_alike_but_apart(default16):
    m = default16.matrix.numpy().astype(np.float64)
    latin, greek, cyrillic = m[ord("A")], m[0x391], m[0x410]
    expected = 1 / np.sqrt(1 + TIE_BREAK_SCALE**2)
    assert abs(latin @ greek - expected) < 0.03 and abs(latin @ cyrillic - expected) < 0.03
    assert m[0x20] @ m[0xA0] < 0.999  # space and no-break space
    assert latin @ m[ord("Ж")] < 0.9


def test_paper_recipe_keeps_the_papers_collisions(paper16):
    groups = [set(int(i) for i in g) for g in collision_groups(paper16.matrix.numpy())]
    assert {0x20, 0xA0} <= next(g for g in groups if 0x20 in g)
    assert {ord("A"), 0x391, 0x410} <= next(g for g in groups if ord("A") in g)
    np.testing.assert_allclose(np.linalg.norm(paper16.matrix.numpy(), axis=1), 1.0, atol=1e-5)


def test_build_is_byte_identical_and_round_trips(default16, tmp_path):
    default16.save(tmp_path / "a")
    build_substrate("visual").save(tmp_path / "b")
    for name in ("manifest.json", MATRIX_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    loaded = load_substrate(tmp_path / "a")
    assert torch.equal(loaded.matrix, default16.matrix)  # exact: a saved and loaded copy
    assert loaded.sha256 == default16.sha256 and loaded.dim == 256 and loaded.kind == "visual"
    params = loaded.manifest["params"]
    assert loaded.manifest["layout"] == L.LAYOUT_ID
    assert params["cell"] == 16 and params["recipe"] == "default" and len(params["font_sha256"]) == 64
    assert len(params["tokenizer_sha256"]) == 64


def test_load_rejects_a_changed_matrix(tmp_path):
    build_substrate("binary", dim=16).save(tmp_path / "s")
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / "s" / MATRIX_FILE))
    tensors["embedding"][5, 0] += 1
    save_file(tensors, str(tmp_path / "s" / MATRIX_FILE))
    with pytest.raises(GrowlmError, match="hash differs"):
        load_substrate(tmp_path / "s")


@pytest.mark.parametrize("dim", [16, 64, 256])
def test_binary_rows_decode_to_their_ids(dim):
    matrix = build_substrate("binary", dim=dim).matrix.numpy()
    assert matrix.shape == (L.VOCAB_SIZE, dim) and set(np.unique(matrix)) == {0.0, 1.0}
    assert np.array_equal(decode_binary(matrix), np.arange(L.VOCAB_SIZE))
    copies = matrix.reshape(L.VOCAB_SIZE, 16, dim // 16)
    assert (copies == copies[:, :, :1]).all()  # repeat_interleave: each bit's copies side by side


def test_random_is_seeded_and_unit_norm():
    a, b = (build_substrate("random", dim=32, seed=7).matrix for _ in range(2))
    c = build_substrate("random", dim=32, seed=8).matrix
    assert torch.equal(a, b) and not torch.equal(a, c)  # exact: the same seed, the same code
    torch.testing.assert_close(a.norm(dim=1), torch.ones(L.VOCAB_SIZE), atol=1e-5, rtol=0)


@pytest.mark.parametrize("d,d_model", [(64, 64), (64, 96), (64, 40), (16, 128)])
def test_lift_is_fixed_and_keeps_row_norms(d, d_model):
    matrix = torch.randn(300, d, generator=torch.Generator().manual_seed(0))
    matrix[0] = 0
    out = lift(matrix, d_model)
    assert out.shape == (300, d_model) and out.dtype == torch.float32
    assert torch.equal(out, lift(matrix.clone(), d_model))  # exact: the same inputs through the same code
    torch.testing.assert_close(out.norm(dim=1), matrix.norm(dim=1), atol=1e-4, rtol=1e-4)
    if d_model == d:
        assert torch.equal(out, matrix)
    if d_model > d:  # an isometry: all inner products kept
        torch.testing.assert_close(out @ out.T, matrix @ matrix.T, atol=1e-3, rtol=1e-4)


def test_pca_is_a_rotation_like_sklearn():
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(0)
    x = ((rng.rand(2000, 32) < 0.3) * rng.rand(32)).astype(np.float32)
    rotated = pca_rotate(x - x.mean(axis=0))
    np.testing.assert_allclose(rotated, PCA(n_components=32).fit_transform(x.astype(np.float64)), atol=1e-3)


def test_collision_groups_treat_signed_zeros_as_equal():
    m = np.array([[0.0, 1.0], [1.0, 0.0], [-0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], dtype=np.float32)
    assert [g.tolist() for g in collision_groups(m)] == [[0, 2], [1, 3]]


def test_pca_option_only_rotates(paper16):
    rotated = build_substrate("visual", recipe="paper", pca=True)
    assert rotated.manifest["params"]["pca"] is True and rotated.sha256 != paper16.sha256
    sample = torch.arange(0, L.VOCAB_SIZE, 97)
    before, after = paper16.matrix[sample].double(), rotated.matrix[sample].double()
    torch.testing.assert_close(after @ after.T, before @ before.T, atol=1e-4, rtol=0)
