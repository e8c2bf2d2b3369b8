"""Growth in width (model/widen.py): zero and copy compute the old function, random does not; copy's unequal splits
make its copies separate under training (equal splits would not); the frozen substrate's old columns and the input
model stay as they were; widened models are plain Llama folders; bad shapes are refused.

Shapes: head_dim stays (8 here), so `d_model` = `n_heads` x 8 and d_model cannot grow without the heads, nor the
heads without d_model. The cases are therefore "d_model+heads" (residual width and heads together, kv heads
following at 2 query heads per kv head), "d_ff" (MLP width only) and "all" (the three together). copy widens
d_model by whole multiples only (x2, and x3 whose thirds are not exact in binary); zero takes any size (x1.5).
"""

import math
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from growlm.errors import GrowlmError
from growlm.model.llama import build_model
from growlm.model.widen import WIDTH_OPERATORS, axes, old_slices, split_factors, widen

CFG = SimpleNamespace(
    d_model=32, ff=64, n_heads=4, kv_heads=2, context=16, rope_theta=10000.0, rms_norm_eps=1e-5, init_std=0.1
)
SHAPES = {
    "zero": {"d_model+heads": (48, 6, 64), "d_ff": (32, 4, 96), "all": (64, 8, 160)},
    "copy": {"d_model+heads": (64, 8, 64), "d_ff": (32, 4, 100), "all": (96, 12, 128)},
}
CASES = [(op, case) for op, shapes in SHAPES.items() for case in shapes]


@pytest.fixture(scope="module")
def model():
    """Depth 2, every weight random and the RMSNorm weights far from 1, so the norm scaling is really tested."""
    torch.manual_seed(0)
    m = build_model(CFG, 2, torch.nn.functional.normalize(torch.randn(65536, 32), dim=1)).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    return m


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 65536, (3, 10), generator=torch.Generator().manual_seed(1))


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize("operator,case", CASES)
def test_zero_and_copy_compute_the_old_function(model, ids, operator, case):
    d_model, n_heads, d_ff = SHAPES[operator][case]
    wide = widen(model, d_model, n_heads, d_ff, operator, seed=3)
    c = wide.config
    assert (c.hidden_size, c.num_attention_heads, c.intermediate_size, c.head_dim) == (d_model, n_heads, d_ff, 8)
    assert c.num_key_value_heads == n_heads // 2 and c.num_hidden_layers == 2
    before, after = logits(model, ids), logits(wide, ids)
    assert (after - before).abs().max() <= 1e-5 * before.abs().max()


def test_random_is_not_function_preserving(model, ids):
    wide = widen(model, 48, 6, 96, "random")
    before = logits(model, ids)
    assert (logits(wide, ids) - before).abs().max() > 1e-2 * before.abs().max()
    assert wide.config.rms_norm_eps == model.config.rms_norm_eps


@pytest.mark.parametrize("operator", list(WIDTH_OPERATORS))
def test_substrate_columns_and_the_input_model_stay(model, operator):
    saved = {n: p.detach().clone() for n, p in model.named_parameters()}
    shape = (64, 8, 128)
    wide = widen(model, *shape, operator)
    old = model.model.embed_tokens.weight
    new = wide.model.embed_tokens.weight
    assert torch.equal(new[:, :32], old)
    assert torch.equal(new[:, 32:], old if operator == "copy" else torch.zeros_like(old))  # copy tiles, else 0
    assert all(torch.equal(p, saved[n]) for n, p in model.named_parameters())
    assert model.config.hidden_size == 32 and model.config.rms_norm_eps == 1e-5
    assert all(p.data_ptr() not in {q.data_ptr() for q in model.parameters()} for p in wide.parameters())


def test_old_slices_hold_the_old_weights(model):
    """zero and random: the old values (zero's RMSNorm weights scaled by sqrt(d/d')); copy: the first copy, its read
    columns multiplied by their split factors (residual x2, heads x2; MLP units 0..35 copied twice, 36..63 once)."""
    old = dict(model.named_parameters())
    for operator in WIDTH_OPERATORS:
        wide = widen(model, 64, 8, 100, operator)
        regions = old_slices(model.config, wide.config)
        factors = split_factors(model.config, wide.config, torch.Generator().manual_seed(0))
        assert torch.equal(factors["ff"][36:64], torch.ones(28))  # copied once: exactly 1
        assert set(regions) == {n for n, _ in wide.named_parameters()}
        for name, p in wide.named_parameters():
            region, value = p.detach()[regions[name]], old[name].detach()
            assert region.shape == value.shape, name
            if operator == "zero" and p.dim() == 1:
                value = value * math.sqrt(32 / 64)
            elif operator == "copy" and p.dim() == 2 and "embed_tokens" not in name:
                value = value * factors[axes(name)[1]][: value.shape[1]]
            assert torch.equal(region, value), (operator, name)


def test_split_factors_sum_to_one_per_copy_group_and_differ(model):
    """Residual x3, heads x3 (one factor per head), MLP 64 -> 100: positive, summing to 1 over each source's copies,
    unequal within a group, exactly 1 for what is copied once."""
    wide_config = widen(model, 96, 12, 100, "zero").config
    factors = split_factors(model.config, wide_config, torch.Generator().manual_seed(0))
    heads = factors["q"].view(12, 8)
    assert torch.equal(heads, heads[:, :1].expand(12, 8))  # a head's head_dim columns share its factor
    units = torch.stack((factors["ff"][:36], factors["ff"][64:]))  # units 0..35 and their copies 64..99
    for groups in (factors["model"].view(3, 32), heads[:, 0].view(3, 4), units):
        assert (groups > 0).all()
        assert torch.allclose(groups.sum(0), torch.ones(groups.shape[1]), atol=1e-6, rtol=0)
        assert (groups != groups[:1]).any(0).all()  # every group has unequal factors
    assert torch.equal(factors["ff"][36:64], torch.ones(28))


def _after_two_adamw_steps(model, ids):
    """The copy-widened model (every residual channel, head and MLP unit copied twice) after 2 AdamW steps of the
    causal LM cross-entropy on a random batch; pairs (a source, its copy) of rows by what they belong to."""
    wide = widen(model, 64, 8, 128, "copy", seed=3).train()
    optimizer = torch.optim.AdamW([p for p in wide.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        wide(ids, labels=ids).loss.backward()
        optimizer.step()
    layer = wide.model.layers[0]
    gate, up = layer.mlp.gate_proj.weight.detach(), layer.mlp.up_proj.weight.detach()
    q, down = layer.self_attn.q_proj.weight.detach(), layer.mlp.down_proj.weight.detach()
    return {
        "MLP unit 0: gate rows": (gate[0], gate[64]),
        "MLP unit 0: up rows": (up[0], up[64]),
        "head 0: q rows": (q[:8], q[32:40]),
        "residual channel 0: down_proj rows": (down[0], down[32]),
    }


def test_copy_copies_separate_under_training(model, ids, monkeypatch):
    """Unequal splits break the symmetry: after 2 steps every kind of copy differs from its source. The control,
    equal splits (SPLIT_SPREAD 0, Net2Net's 1/copies): the copies get identical gradients and stay bit-identical."""
    equal = {what: torch.equal(a, b) for what, (a, b) in _after_two_adamw_steps(model, ids).items()}
    assert not any(equal.values()), equal
    monkeypatch.setattr("growlm.model.widen.SPLIT_SPREAD", 0.0)
    equal = {what: torch.equal(a, b) for what, (a, b) in _after_two_adamw_steps(model, ids).items()}
    assert all(equal.values()), equal


def test_copy_is_seeded(model):
    """Same seed, same weights; another seed, other split factors (so other read columns) but the same copies."""
    a, b, c = (widen(model, 64, 8, 100, "copy", seed=s) for s in (0, 0, 1))
    pa, pb, pc = (dict(m.named_parameters()) for m in (a, b, c))
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    fa, fc = (split_factors(model.config, a.config, torch.Generator().manual_seed(s)) for s in (0, 1))
    assert all(not torch.equal(fa[axis], fc[axis]) for axis in fa)
    down = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(pa[down], pc[down])
    assert torch.equal(pa["model.norm.weight"], pc["model.norm.weight"])  # no factor: copied as is
    assert torch.equal(pa[down][:, 36:64], pc[down][:, 36:64])  # units copied once: factor 1 under every seed


def test_zero_gives_the_zero_writes_a_gradient(model, ids):
    """No dead saddle: the new channels are read by fresh weights, so the zero writes into them get gradient."""
    wide = widen(model, 48, 6, 96, "zero").train()
    wide(ids, labels=ids).loss.backward()
    layer = wide.model.layers[0]
    for weight in (layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight):
        assert torch.equal(weight[32:], torch.zeros_like(weight[32:]))
        assert weight.grad[32:].abs().max() > 0 and weight.grad[:32, 32:].abs().max() > 0


@pytest.mark.parametrize("operator", ["zero", "random"])
def test_seeded(model, operator):
    a, b, c = (widen(model, 48, 6, 96, operator, seed=s) for s in (0, 0, 1))
    pa, pb, pc = (dict(m.named_parameters()) for m in (a, b, c))
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(pa[q][:, 32:], pc[q][:, 32:])  # fresh reads of the new channels
    assert torch.equal(pa[q][:32, :32], pc[q][:32, :32])  # the old weights


def test_widened_model_is_a_plain_llama_folder(model, ids, tmp_path):
    wide = widen(model, 64, 8, 128, "zero")
    wide.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True, trust_remote_code=False).eval()
    assert type(loaded) is LlamaForCausalLM and loaded.config.rms_norm_eps == wide.config.rms_norm_eps
    assert torch.equal(logits(loaded, ids), logits(wide.eval(), ids))


@pytest.mark.parametrize(
    "shape,operator,named",
    [
        ((24, 3, 64), "zero", "d_model 24"),  # shrinks
        ((32, 4, 32), "zero", "d_ff 32"),
        ((40, 4, 64), "zero", "d_model 40 must be n_heads x head size"),
        ((40, 5, 64), "zero", "n_heads 5 must be a multiple of 2"),
        ((48, 6, 64), "copy", "copy widens d_model by whole multiples of 32"),
        ((64, 8, 64), "net2net", "`operator`='net2net'"),
    ],
)
def test_bad_shapes_are_refused(model, shape, operator, named):
    with pytest.raises(GrowlmError) as caught:
        widen(model, *shape, operator)
    assert named in str(caught.value) and "\n" not in str(caught.value)
