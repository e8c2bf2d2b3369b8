"""Paper-scale training step on a GPU: the monolithic nine-layer step and a 3-new-on-6-frozen stage step.

d_model 1024, 32 heads, context 1024, V 65,536, bf16 autocast, SDPA attention, compiled blocks, the fused LM-head
loss (liger-kernel when installed). Prints tokens/s, MFU against the measured bf16 matmul peak of this GPU and
peak memory, and the stage/monolithic time ratio next to the FLOP ratio. Targets (docs/DISTRIBUTED.md):
monolithic MFU >= 40%; stage time ratio <= FLOP ratio.

    python -m benchmarks.bench_gpu [--d-model 1024] [--context 1024] [--batch 16] [--repeats 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import print_table
from growlm.config import ModelConfig
from growlm.model.llama import build_model
from growlm.train.flops import flops_per_token, measured_peak_flops
from growlm.train.freeze import set_trainable
from growlm.train.step import LossModel


def step_fn(model, frozen: int, batch: torch.Tensor, compile_blocks: bool):
    set_trainable(model, frozen, train_embedding=False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    loss_model = LossModel(model, frozen, 4096, bf16=True, compile=True, compile_blocks=compile_blocks)

    def step():
        loss_model(batch).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def timed(step, repeats: int) -> float:
    for _ in range(3):  # compilation and allocator warm-up
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--no-compile-blocks", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu needs a CUDA GPU")
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=args.d_model, n_heads=args.heads, context=args.context)
    batch = torch.randint(0, 65536, (args.batch, args.context + 1), device="cuda")
    tokens = args.batch * args.context
    peak = measured_peak_flops(torch.device("cuda"), bf16=True, n=8192, reps=20)
    print(
        f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, measured bf16 peak {peak / 1e12:.0f} TFLOP/s, "
        f"d_model {args.d_model}, context {args.context}, batch {args.batch}"
    )
    rows, seconds = [], {}
    for name, frozen in (("monolithic 9", 0), ("3 new on 6 frozen", 6)):
        model = build_model(cfg, 9, None).cuda()
        torch.cuda.reset_peak_memory_stats()
        seconds[name] = timed(step_fn(model, frozen, batch, not args.no_compile_blocks), args.repeats)
        fpt = flops_per_token(model, args.context).total
        rows.append(
            [
                name,
                f"{seconds[name] * 1e3:.1f}",
                f"{tokens / seconds[name]:,.0f}",
                f"{tokens * fpt / seconds[name] / peak:.1%}",
                f"{torch.cuda.max_memory_allocated() / 2**30:.1f}",
                f"{fpt / 1e9:.2f}",
            ]
        )
        del model
        torch.cuda.empty_cache()
    print_table(
        "\npaper-scale training step (bf16)", ["step", "ms", "tokens/s", "MFU", "peak GiB", "GFLOP/token"], rows
    )
    ratio = [float(r[5]) for r in rows]
    print(
        f"\nstage/monolithic: time {seconds['3 new on 6 frozen'] / seconds['monolithic 9']:.2f}x, "
        f"FLOPs {ratio[1] / ratio[0]:.2f}x"
    )


if __name__ == "__main__":
    main()
