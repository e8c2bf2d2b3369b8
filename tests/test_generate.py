from types import SimpleNamespace

import pytest
import torch
from test_compose import make_expert

from growlm.cli import main
from growlm.composition import compose, load_composed, load_experts
from growlm.errors import GrowlmError
from growlm.generation import IncrementalDecoder, filter_logits, generate, iter_generate
from growlm.tokenizer import default_tokenizer
from growlm.tokenizer.layout import EOS_ID

TOKENIZER = default_tokenizer()


class ScriptedLM(torch.nn.Module):
    """Stand-in causal LM that emits a fixed token sequence; its cache is the number of calls so far."""

    def __init__(self, script, context=64):
        super().__init__()
        self.script = script
        self.config = SimpleNamespace(max_position_embeddings=context)
        self.device = torch.device("cpu")

    def forward(self, input_ids, attention_mask=None, cache=None, use_cache=False, logits_to_keep=0):
        step = cache or 0
        logits = torch.full((1, 1, 65536), -1e9)
        logits[0, 0, self.script[min(step, len(self.script) - 1)]] = 0.0
        return SimpleNamespace(logits=logits, cache=step + 1)


@pytest.fixture(scope="module")
def folders(module_tmp):
    root = module_tmp("gen")
    a, b = make_expert(root / "a", 1, seed=1), make_expert(root / "b", 2, seed=2)
    compose([a, b], root / "c")
    return {"plain": a, "composed": root / "c"}


@pytest.fixture(scope="module")
def models(folders):
    return {"plain": load_experts([folders["plain"]])[0], "composed": load_composed(folders["composed"])}


def test_streamed_pieces_never_split_a_multibyte_character():
    text = "a😀b中𝄞"
    script = TOKENIZER.encode(text) + [EOS_ID]
    pieces = list(iter_generate(ScriptedLM(script), TOKENIZER, "x", max_new_tokens=50, temperature=0))
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert "😀" in pieces and len(pieces) > 3


def test_incremental_decoder_flushes_an_unfinished_character():
    decoder = IncrementalDecoder(TOKENIZER)
    first, second = TOKENIZER.encode("😀")[:2]
    assert decoder.push(TOKENIZER.encode("a")[0]) == "a"
    assert decoder.push(first) == "" and decoder.push(second) == ""
    assert decoder.flush() == TOKENIZER.decode([first, second])


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        (["."], "hello world"),
        (["wor", "xyz"], "hello "),
        (["ld. m"], "hello wor"),
        (["nowhere"], "hello world. more"),
    ],
)
def test_stop_strings_cut_the_text_before_them(stop, expected):
    script = TOKENIZER.encode("hello world. more") + [EOS_ID]
    model = ScriptedLM(script)
    pieces = list(iter_generate(model, TOKENIZER, "x", max_new_tokens=50, temperature=0, stop=stop))
    assert "".join(pieces) == expected


def test_generation_stops_at_max_new_tokens_and_at_the_context():
    script = TOKENIZER.encode("abcdefghij")
    assert generate(ScriptedLM(script), TOKENIZER, "x", max_new_tokens=4, temperature=0) == "abcd"
    assert generate(ScriptedLM(script, context=5), TOKENIZER, "y", max_new_tokens=50, temperature=0) == "abc"
    with pytest.raises(GrowlmError, match="context is 5"):
        generate(ScriptedLM(script, context=5), TOKENIZER, "wxyz", max_new_tokens=1)


def _greedy_without_cache(model, prompt, n):
    start = [EOS_ID, *TOKENIZER.encode(prompt)]
    ids = list(start)
    with torch.no_grad():
        for _ in range(n):
            token = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
            if token == EOS_ID:
                break
            ids.append(token)
    return TOKENIZER.decode(ids[len(start) :])


@pytest.mark.parametrize("kind", ["plain", "composed"])
def test_greedy_kv_cached_generation_matches_full_recomputation(models, kind):
    model = models[kind]
    expected = _greedy_without_cache(model, "Hi there", 12)
    assert generate(model, TOKENIZER, "Hi there", max_new_tokens=12, temperature=0) == expected
    assert generate(model, TOKENIZER, "Hi there", max_new_tokens=12, temperature=1.0, top_k=1) == expected


@pytest.mark.parametrize("kind", ["plain", "composed"])
def test_same_seed_same_text(models, kind):
    model = models[kind]
    runs = [
        generate(model, TOKENIZER, "Once", max_new_tokens=10, temperature=1.0, top_p=0.9, seed=s) for s in (7, 7, 8)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_filter_logits_keeps_top_k_and_the_nucleus():
    logits = torch.log(torch.tensor([0.05, 0.5, 0.15, 0.3]))
    assert torch.isfinite(filter_logits(logits, top_k=2, top_p=None)).tolist() == [False, True, False, True]
    assert torch.isfinite(filter_logits(logits, top_k=None, top_p=0.7)).tolist() == [False, True, False, True]
    assert torch.isfinite(filter_logits(logits, top_k=None, top_p=0.81)).tolist() == [False, True, True, True]
    assert torch.isfinite(filter_logits(logits, top_k=None, top_p=0.5)).tolist() == [False, True, False, False]
    assert torch.isfinite(filter_logits(logits, top_k=0, top_p=1.0)).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -1}, "`temperature`"),
        ({"top_p": 0}, "`top_p`"),
        ({"top_k": -2}, "`top_k`"),
        ({"max_new_tokens": -1}, "`max_new_tokens`"),
    ],
)
def test_bad_sampling_settings_are_refused(kwargs, message):
    with pytest.raises(GrowlmError, match=message):
        generate(ScriptedLM([1]), TOKENIZER, "x", **kwargs)


@pytest.mark.parametrize("kind", ["plain", "composed"])
def test_cli_streams_prompt_and_continuation(folders, models, capsys, kind):
    args = [
        "generate",
        str(folders[kind]),
        "--prompt",
        "Hello",
        "--max-new-tokens",
        "6",
        "--seed",
        "3",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    expected = generate(models[kind], TOKENIZER, "Hello", max_new_tokens=6, temperature=0.8, top_p=0.95, seed=3)
    assert first == "Hello" + expected + "\n"
    assert main(args) == 0 and capsys.readouterr().out == first


def test_cli_refuses_bad_settings_before_loading(folders, capsys):
    assert main(["generate", str(folders["plain"]), "--prompt", "x", "--temperature", "-1"]) == 2
    assert "--temperature -1.0 must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--device", "nonsense"], "'nonsense' is not a device"),
        (["--device", "cuda:99"], "cuda:99 is not available on this machine"),
        (["--temperature", "nan"], "must be a finite number"),
    ],
)
def test_cli_refuses_bad_devices_and_temperatures_before_loading(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", str(tmp_path / "no-model"), "--prompt", "hi", *extra])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
