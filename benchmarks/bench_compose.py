"""Cost of composed evaluation against the sum of its experts' costs, for every composition mode.

Experts: two random LlamaForCausalLM with growlm's vocabulary (65,536) at the compose study's CPU size (hidden 256,
3 layers, 4 heads, 128 positions; --hidden sets the width). Workloads, each run through growlm's own evaluation code:
- perplexity: growlm.evals.harness.sequence_loglikelihoods on --windows windows of 129 tokens (the perplexity task);
- choices: score_choices on --items requests of a ~100-token context and 4 continuations of 2-6 tokens (the
  multiple-choice tasks: each context once, continuations against its KV cache);
- decode: growlm.decode greedy, 32 new tokens after a 16-token prompt (generation).
Seconds are process CPU seconds with one torch thread (other load on the machine does not skew the ratios),
medians of interleaved repeats. "ratio" is the composed model's time over the sum of the two experts' times.
The posterior modes need every position's full distribution to update the weights, so where an expert alone asks
for the last position's logits only (a choice context, a generation prompt) the composition computes the whole
vocabulary projection of the context: that cost is the price of conditioning the weights on the context.
The mixing itself is a fixed amount of work per logit (a few exp/log passes over the vocabulary), so its share
shrinks as the experts grow: compare --hidden 256 with --hidden 1024.
Run: .venv/bin/python -m benchmarks.bench_compose [--windows 16] [--items 8] [--repeats 3] [--hidden 256]
     [--workloads perplexity choices decode]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from benchmarks.common import interleaved, machine_line, print_table
from growlm.composition import ComposedModel
from growlm.decode import decode
from growlm.evals.harness import ChoiceRequest, score_choices, sequence_loglikelihoods

MODES = {
    "mean_logits": ("mean_logits", 0.0),
    "mean_probs": ("mean_probs", 0.0),
    "posterior": ("posterior", 0.0),
    "fixed-share 0.01": ("posterior", 0.01),
}


def expert(seed: int, hidden: int = 256) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=65536,
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


class IdTokenizer:
    """Text is space-separated token ids (so contexts have exact lengths)."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [int(t) for t in text.split()]


def workloads(windows: int, items: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    sequences = torch.randint(0, 65536, (windows, 129), generator=gen).tolist()

    def ids(n: int) -> str:
        return " ".join(map(str, torch.randint(0, 65536, (n,), generator=gen).tolist()))

    requests = [ChoiceRequest(ids(96 + i % 4), tuple(" " + ids(2 + j) for j in range(4))) for i in range(items)]
    prompt = torch.randint(0, 65536, (16,), generator=gen).tolist()
    tokenizer = IdTokenizer()
    return {
        "perplexity": lambda m: sequence_loglikelihoods(m, sequences),
        "choices": lambda m: score_choices(m, tokenizer, requests),
        "decode": lambda m: list(decode(m, [prompt], [32], lambda logits, step: logits.argmax(-1), eos_id=-1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256, help="the experts' width (the study's cpu scale: 256)")
    parser.add_argument("--workloads", nargs="+", default=["perplexity", "choices", "decode"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine_line() + "; composition computes in float32 on every device")
    experts = [expert(1, args.hidden), expert(2, args.hidden)]
    models = {"expert A": experts[0], "expert B": experts[1]}
    models.update({name: ComposedModel(experts, None, mode, rate).eval() for name, (mode, rate) in MODES.items()})
    rows = []
    for task, work in workloads(args.windows, args.items).items():
        if task not in args.workloads:
            continue
        with torch.inference_mode():
            runs = {name: (lambda m=m, w=work: w(m)) for name, m in models.items()}
            times = interleaved(runs, repeats=args.repeats, clock=time.process_time)
        both = times["expert A"] + times["expert B"]
        rows.append([task, "A + B", f"{both:.3f}", "1.00"])
        rows += [[task, name, f"{times[name]:.3f}", f"{times[name] / both:.2f}"] for name in MODES]
    print_table(
        f"Composed evaluation vs the sum of its experts (CPU seconds, 1 thread, hidden {args.hidden})",
        ["workload", "model", "seconds", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
