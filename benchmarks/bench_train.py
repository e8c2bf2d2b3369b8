"""Training-step speed: where growlm's step spends its time, growlm's step vs a plain PyTorch loop, and a
constructive stage vs a monolithic step.

Every table names the CPU, its capability and the precision `train.precision = "auto"` picks on it (growlm.precision:
bf16 where the CPU multiplies bf16 natively fast, AMX or AVX512-BF16 and measured so; float32 elsewhere).

0. Profile of growlm's step in the auto precision (monolithic, frozen substrate), each part timed on its own with the
   step's shapes:
   the LM head's three matmuls (logits, d hidden, d weight), the softmax and its gradient over the logits, the
   decoder blocks forward + backward, gradient clipping + AdamW; "other" is the step minus the parts. MFU is the
   step's model FLOPs per second over the measured throughput of the LM head's own matmul shape (the largest
   matmul of the step; CPUs publish no useful peak).
1. Monolithic training throughput: growlm's training step (frozen substrate, fused chunked LM-head loss, auto
   precision, flushed denormals) vs a plain loop over the same LlamaForCausalLM config, batch and data in fp32
   (model(input_ids, labels=...) then loss.backward(), AdamW). Target: >= 2.5x tokens/s (goal 3x). The first call of the
   compiled loss compiles it (the warm-up step, not timed).
2. A stage that trains 3 new blocks on top of 6 frozen ones vs a monolithic 9-block step, both through growlm's
   step. Target: no slower than the FLOP ratio (printed beside it).

    .venv/bin/python -m benchmarks.bench_train [--d-model 256] [--context 128] [--batch 16] [--repeats 5]
                                               [--all-precisions]

On a CPU where auto picks float32, the bf16 rows are left out (a bf16 step there takes minutes); --all-precisions
times them anyway.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import interleaved, machine_line, print_table
from growlm.config import ModelConfig
from growlm.model.llama import build_model
from growlm.precision import choose
from growlm.train.flops import flops_per_token
from growlm.train.freeze import set_trainable
from growlm.train.loss import _chunk_fn
from growlm.train.step import LossModel


def make_step(model, no_grad_blocks: int, bf16: bool, batch: torch.Tensor, fused: bool, compile: bool = True):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, foreach=True)
    loss_model = LossModel(model, no_grad_blocks, 1024, bf16, compile)

    def growlm_step():
        loss_model(batch).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def plain_step():
        out = model(input_ids=batch[:, :-1], labels=batch[:, :-1].clone())
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return growlm_step if fused else plain_step


def profile(model, batch: torch.Tensor, chunk: int, repeats: int, bf16: bool) -> None:
    """Table 0: the step and its parts, each timed alone with the step's shapes."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, foreach=True)
    loss_model = LossModel(model, 0, chunk, bf16, True)
    dtype = torch.bfloat16 if bf16 else torch.float32
    weight = model.lm_head.weight.detach().to(dtype)
    inputs, targets = batch[:, :-1], batch[:, 1:].reshape(-1)
    hidden = loss_model.hidden_states(inputs).detach().reshape(-1, weight.shape[1]).to(dtype)
    starts = range(0, hidden.shape[0], chunk)
    softmax_grad = _chunk_fn(True)
    logits = [hidden[a : a + chunk] @ weight.T for a in starts]
    grads = [torch.empty_like(z) for z in logits]
    for z, g, a in zip(logits, grads, starts):
        softmax_grad(z, targets[a : a + chunk], g)

    def step():
        loss_model(batch).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def head_matmuls():
        for a, g in zip(starts, grads):
            h = hidden[a : a + chunk]
            h @ weight.T, g @ weight, g.T @ h

    def blocks():
        loss_model.hidden_states(inputs).float().sum().backward()

    def clip_adamw():
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    peak_out = torch.empty(min(chunk, hidden.shape[0]), weight.shape[0], dtype=dtype)

    def one_matmul():  # one chunk into a reused buffer, as the step runs it (fresh [rows, V] outputs page-fault)
        torch.matmul(hidden[:chunk], weight.T, out=peak_out)

    loss_model(batch).backward()  # gradients in place for clip_adamw
    t = interleaved(
        {
            "step": step,
            "LM head matmuls (3)": head_matmuls,
            "softmax + its gradient": lambda: [
                softmax_grad(z, targets[a : a + chunk], g) for z, g, a in zip(logits, grads, starts)
            ],
            "decoder blocks fwd + bwd": blocks,
            "grad clip + AdamW": clip_adamw,
            "peak: one head matmul": one_matmul,
        },
        repeats,
    )
    peak = 2 * hidden[:chunk].numel() * weight.shape[0] / t.pop("peak: one head matmul")
    total = t.pop("step")
    t["other"] = total - sum(t.values())
    tokens = inputs.numel()
    step_flops = flops_per_token(model, inputs.shape[1]).total * tokens
    rows = [[name, f"{v:.3f}", f"{v / total:.0%}"] for name, v in t.items()]
    rows.append(
        [
            "step",
            f"{total:.3f}",
            f"{tokens / total:,.0f} tokens/s, {step_flops / total / 1e9:,.0f} GFLOP/s, "
            f"MFU {step_flops / total / peak:.0%} of {peak / 1e9:,.0f} GFLOP/s",
        ]
    )
    name = "bf16" if bf16 else "fp32"
    print_table(f"\n0. where growlm's {name} step spends its time", ["part", "s", "share of the step"], rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4, help="depth of the monolithic throughput model")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--all-precisions", action="store_true", help="time bf16 even where auto picks float32")
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=args.d_model, n_heads=args.heads, context=args.context)
    substrate = torch.nn.functional.normalize(torch.randn(65536, args.d_model), dim=1)
    batch = torch.randint(0, 65536, (args.batch, args.context + 1))
    tokens = args.batch * args.context
    precision = choose("auto", "cpu")
    print(f"{machine_line(precision)}\nd_model {args.d_model}, context {args.context}, batch {args.batch}")
    precisions = [False, True] if precision.bf16 or args.all_precisions else [False]
    if len(precisions) == 1:
        print("bf16 rows left out: auto picks float32 on this CPU (--all-precisions times them anyway)")

    plain_model = build_model(cfg, args.depth, substrate)
    set_trainable(plain_model, 0, train_embedding=False)
    torch.set_flush_denormal(True)
    profile(plain_model, batch, 1024, args.repeats, precision.bf16)

    # 1. throughput vs a plain loop (monolithic, frozen substrate)
    plain_model = build_model(cfg, args.depth, substrate)
    set_trainable(plain_model, 0, train_embedding=False)
    ours_model = build_model(cfg, args.depth, substrate)
    ours_model.load_state_dict(plain_model.state_dict())
    set_trainable(ours_model, 0, train_embedding=False)
    auto = " (auto)"
    runs = {
        "plain fp32 loop": make_step(plain_model, 0, False, batch, fused=False),
        "growlm fp32 eager": make_step(ours_model, 0, False, batch, fused=True, compile=False),
        "growlm fp32" + ("" if precision.bf16 else auto): make_step(ours_model, 0, False, batch, fused=True),
    }
    if True in precisions:
        runs["growlm bf16" + (auto if precision.bf16 else "")] = make_step(ours_model, 0, True, batch, fused=True)
    t = interleaved(runs, args.repeats)
    ref = t["plain fp32 loop"]
    print_table(
        f"\n1. monolithic {args.depth}-block training step",
        ["run", "s/step", "tokens/s", "speed-up"],
        [[k, f"{v:.3f}", f"{tokens / v:,.0f}", f"{ref / v:.2f}x"] for k, v in t.items()],
    )

    # 2. 3 new blocks on 6 frozen vs monolithic 9
    mono = build_model(cfg, 9, substrate)
    set_trainable(mono, 0, train_embedding=False)
    grown = build_model(cfg, 9, substrate)
    set_trainable(grown, 6, train_embedding=False)
    rows = []
    for bf16 in precisions:
        t = interleaved(
            {
                "monolithic 9": make_step(mono, 0, bf16, batch, True),
                "3 on 6 frozen": make_step(grown, 6, bf16, batch, True),
            },
            args.repeats,
        )
        f_mono, f_grown = flops_per_token(mono, args.context).total, flops_per_token(grown, args.context).total
        rows.append(
            [
                "bf16" if bf16 else "fp32",
                f"{t['monolithic 9']:.3f}",
                f"{t['3 on 6 frozen']:.3f}",
                f"{t['3 on 6 frozen'] / t['monolithic 9']:.2f}x",
                f"{f_grown / f_mono:.2f}x",
            ]
        )
    print_table(
        "\n2. constructive stage (3 new on 6 frozen) vs monolithic 9-block step",
        ["precision", "mono s", "constructive s", "time ratio", "FLOP ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
