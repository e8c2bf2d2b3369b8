import pytest
import torch

from growlm.config import ModelConfig
from growlm.errors import GrowlmError
from growlm.model.growth import grow
from growlm.model.llama import build_model, count_params
from growlm.train.flops import flops_per_token
from growlm.train.freeze import frozen_tensor_hashes, set_trainable
from growlm.train.lora import add_lora, lora_params_per_rank, merge_lora, solve_lora_rank

CFG = ModelConfig(d_model=32, n_heads=4, context=16)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(CFG, 2, torch.nn.functional.normalize(torch.randn(65536, 32), dim=1))


@pytest.fixture
def ids():
    return torch.randint(0, 5000, (2, 12))


def test_identity_growth_leaves_logits_unchanged(model, ids):
    before = model(ids).logits
    grow(model, 3, "identity")
    assert model.config.num_hidden_layers == 5 and len(model.model.layers) == 5
    # Exact: identity blocks add x + 0 (zeroed output projections) to the same residual stream, same shapes.
    assert torch.equal(model(ids).logits, before)


def test_random_growth_changes_logits(model, ids):
    before = model(ids).logits
    grow(model, 1, "random")
    assert not torch.allclose(model(ids).logits, before)


@pytest.mark.parametrize("init,source", [("copy_top", [1]), ("copy_middle", [0]), ("stack", [0, 1])])
def test_copy_initialisations(model, init, source):
    grow(model, len(source), init)
    layers = model.model.layers
    for new, src in zip(range(2, 2 + len(source)), source):
        a, b = layers[new].state_dict(), layers[src].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)  # exact: copies
        assert layers[new].self_attn.layer_idx == new
        assert layers[new].mlp.up_proj.weight.data_ptr() != layers[src].mlp.up_proj.weight.data_ptr()


def test_set_trainable_freezes_old_blocks_and_embedding(model):
    grow(model, 1, "random")
    set_trainable(model, 2, train_embedding=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.startswith(("model.layers.2.", "model.norm", "lm_head")) for n in trainable)
    assert "lm_head.weight" in trainable and "model.embed_tokens.weight" not in trainable
    assert set(frozen_tensor_hashes(model)) == {n for n, _ in model.named_parameters()} - trainable


def test_lora_merge_matches_unmerged(model, ids):
    grow(model, 1, "random")
    set_trainable(model, 2, False)
    peft_model = add_lora(model, 2, rank=4, alpha_ratio=2.0)
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names) and any("layers.2." in n and "lora" not in n for n in names)
    assert not any("layers.2." in n and "lora" in n for n in names), "no adapters on the new block"
    for n, p in peft_model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.05)
    unmerged = peft_model(input_ids=ids).logits
    merged_model = merge_lora(peft_model)
    assert type(merged_model).__name__ == "LlamaForCausalLM"
    assert not any("lora" in n for n, _ in merged_model.named_parameters())
    assert (merged_model(ids).logits - unmerged).abs().max() < 1e-4


def test_lora_rank_fits_budget(model):
    grow(model, 1, "random")
    set_trainable(model, 2, False)
    base = count_params(model, True)
    per_rank = lora_params_per_rank(model, range(2))
    rank = solve_lora_rank(base + 10 * per_rank + 5, base, per_rank, max_rank=64, stage=1)
    assert rank == 10
    peft_model = add_lora(model, 2, rank, 2.0)
    assert count_params(peft_model, True) <= base + 10 * per_rank + 5
    with pytest.raises(GrowlmError, match="budget"):
        solve_lora_rank(base, base, per_rank, 64, 1)


def test_flops_frozen_stage_is_cheaper_than_monolithic():
    torch.manual_seed(0)
    mono = build_model(CFG, 9, None)
    set_trainable(mono, 0, False)
    grown = build_model(CFG, 9, None)
    set_trainable(grown, 6, False)
    f_mono, f_grown = flops_per_token(mono, 16), flops_per_token(grown, 16)
    assert f_grown.forward_frozen > 0 and f_mono.forward_frozen == 0
    assert f_grown.forward_frozen + f_grown.forward_trainable == pytest.approx(f_mono.forward_trainable)
    assert f_grown.backward < f_mono.backward


def test_every_operator_builds_random_first_blocks():
    for init in ("identity", "copy_top", "copy_middle", "stack"):
        torch.manual_seed(0)
        empty = build_model(CFG, 0, None)
        torch.manual_seed(1)
        grow(empty, 2, init)
        torch.manual_seed(0)
        reference = build_model(CFG, 0, None)
        torch.manual_seed(1)
        grow(reference, 2, "random")
        # exact: the same seeded initialisation, in the same order
        assert all(torch.equal(a, b) for a, b in zip(empty.parameters(), reference.parameters())), init


def test_stack_repeats_the_whole_stack_in_order(model):
    grow(model, 3, "stack")
    layers = model.model.layers
    for new, src in ((2, 0), (3, 1), (4, 0)):
        assert all(torch.equal(a, b) for a, b in zip(layers[new].parameters(), layers[src].parameters()))  # copies
