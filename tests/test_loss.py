import pytest
import torch

from growlm.train.loss import fused_linear_cross_entropy


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_fused_loss_and_grads_match_reference(chunk):
    torch.manual_seed(0)
    h = torch.randn(150, 24, requires_grad=True)
    w = torch.randn(500, 24, requires_grad=True)
    t = torch.randint(0, 500, (150,))
    loss = fused_linear_cross_entropy(h, w, t, chunk=chunk)
    (loss * 3).backward()
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref = torch.nn.functional.cross_entropy(h @ w.T, t)
    (ref * 3).backward()
    assert torch.allclose(loss, ref, atol=1e-5)
    assert torch.allclose(gh, h.grad, atol=1e-6) and torch.allclose(gw, w.grad, atol=1e-6)


def test_frozen_head_gets_no_gradient_and_bf16_is_close():
    torch.manual_seed(0)
    h = torch.randn(64, 32, requires_grad=True)
    w = torch.randn(300, 32)
    t = torch.randint(0, 300, (64,))
    loss = fused_linear_cross_entropy(h, w, t, chunk=16, bf16=True)
    loss.backward()
    assert w.grad is None and h.grad is not None
    assert abs(loss.item() - torch.nn.functional.cross_entropy(h @ w.T, t).item()) < 0.05


def test_compiled_chunk_matches_eager():
    torch.manual_seed(0)
    h = torch.randn(64, 16, requires_grad=True)
    w = torch.randn(200, 16, requires_grad=True)
    t = torch.randint(0, 200, (64,))
    eager = fused_linear_cross_entropy(h, w, t, chunk=32)
    eager.backward()
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    compiled = fused_linear_cross_entropy(h, w, t, chunk=32, compile=True)
    compiled.backward()
    assert torch.allclose(eager, compiled, atol=1e-5)
    assert torch.allclose(gh, h.grad, atol=1e-6) and torch.allclose(gw, w.grad, atol=1e-6)


def test_no_grad_path_gives_the_same_loss():
    torch.manual_seed(0)
    h, w, t = torch.randn(50, 8), torch.randn(90, 8, requires_grad=True), torch.randint(0, 90, (50,))
    with_grad = fused_linear_cross_entropy(h, w, t, chunk=16)
    with torch.no_grad():
        without = fused_linear_cross_entropy(h, w, t, chunk=16)
    assert torch.allclose(with_grad, without, atol=1e-6)


def test_compiled_blocks_give_the_eager_loss_and_gradients():
    from growlm.config import ModelConfig
    from growlm.model.llama import build_model
    from growlm.train.step import LossModel

    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, n_heads=2, context=16), 3, None)
    batch = torch.randint(0, 65536, (2, 17))
    eager, compiled = LossModel(model, 1, 16, False), LossModel(model, 1, 16, False, compile_blocks=True)
    a = eager(batch)
    a.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    b = compiled(batch)
    b.backward()
    assert torch.allclose(a, b, atol=1e-5)
    assert all(torch.allclose(grads[n], p.grad, atol=1e-5) for n, p in model.named_parameters() if n in grads)
