import json
import shutil

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from growlm.cli import main
from growlm.composition import ComposedModel, combine_logits, compose, load_composed, load_experts
from growlm.composition.calibrate import calibrate, mean_loss
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json
from growlm.model.folder import write_model
from growlm.tokenizer import default_tokenizer

SUBSTRATE = {"kind": "binary", "sha256": "b" * 64}


def make_expert(path, depth, seed, max_positions=64):
    """A tiny random exported model folder."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=65536,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=depth,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=max_positions,
        tie_word_embeddings=False,
        initializer_range=0.3,
    )
    return write_model(LlamaForCausalLM(config), default_tokenizer(), path, {"substrate": SUBSTRATE})


@pytest.fixture(scope="module")
def experts(module_tmp):
    root = module_tmp("experts")
    return [
        make_expert(root / "a", depth=1, seed=1, max_positions=64),
        make_expert(root / "b", depth=2, seed=2, max_positions=48),
    ]


@pytest.fixture(scope="module")
def expert_models(experts):
    return load_experts(experts)


def _ids(seed, length=12, batch=2):
    return torch.randint(0, 65536, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_mean_logits_is_the_weighted_mean_of_expert_logits(experts, expert_models, tmp_path):
    compose(experts, tmp_path / "c", mode="mean_logits", weights=[1, 3])
    model = load_composed(tmp_path / "c")
    ids = _ids(0)
    with torch.no_grad():
        got = model(input_ids=ids).logits
        a, b = (m(input_ids=ids).logits for m in expert_models)
    torch.testing.assert_close(got, 0.25 * a + 0.75 * b, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, a, atol=1e-2) and not torch.allclose(got, b, atol=1e-2)


def test_mean_probs_is_the_log_of_the_weighted_mean_of_probabilities(experts, expert_models, tmp_path):
    compose(experts, tmp_path / "c", mode="mean_probs", weights=[2, 1])
    model = load_composed(tmp_path / "c")
    ids = _ids(1)
    with torch.no_grad():
        got = model(input_ids=ids).logits
        pa, pb = (m(input_ids=ids).logits.double().softmax(-1) for m in expert_models)
    expected = torch.log(2 / 3 * pa + 1 / 3 * pb)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.exp().sum(-1), torch.ones(2, 12), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["mean_logits", "mean_probs"])
def test_kv_cached_decoding_matches_a_full_forward(expert_models, mode):
    model = ComposedModel(expert_models, [0.4, 0.6], mode).eval()
    ids = _ids(2, length=10, batch=1)
    with torch.no_grad():
        full = model(input_ids=ids).logits
        out = model(input_ids=ids[:, :4], use_cache=True)
        steps = [out.logits]
        for t in range(4, 10):
            out = model(input_ids=ids[:, t : t + 1], cache=out.cache, use_cache=True)
            steps.append(out.logits)
    assert len(out.cache) == 2
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-4)


def test_composed_model_reports_the_shared_limits(experts, tmp_path):
    compose(experts, tmp_path / "c")
    model = load_composed(tmp_path / "c")
    assert model.config.max_position_embeddings == 48
    assert model.config.vocab_size == 65536
    assert model.config.expert_depths == [1, 2]
    assert model.device == torch.device("cpu")
    assert not any(p.requires_grad for p in model.parameters())


def test_composed_folder_carries_tokenizer_manifest_and_relative_references(experts, tmp_path):
    composition = compose(experts, tmp_path / "c", weights=[1, 1])
    assert composition.weights == (0.5, 0.5)
    assert all(not e.path.startswith("/") for e in composition.experts)
    on_disk = json.loads((tmp_path / "c" / "composition.json").read_text())
    assert on_disk["format"] == "growlm-composition-v1" and on_disk["substrate"] == SUBSTRATE
    manifest = json.loads((tmp_path / "c" / "growlm.json").read_text())
    assert manifest["composed"] is True and manifest["expert_depths"] == [1, 2]
    text = "Hello, мир 中文 😀"
    assert AutoTokenizer.from_pretrained(tmp_path / "c").encode(text) == default_tokenizer().encode(text)


def test_loading_refuses_an_expert_changed_since_composition(tmp_path):
    a, b = make_expert(tmp_path / "a", 1, seed=3), make_expert(tmp_path / "b", 1, seed=4)
    compose([a, b], tmp_path / "c")
    make_expert(b, 1, seed=5)
    with pytest.raises(GrowlmError, match="changed since composition"):
        load_composed(tmp_path / "c")


def test_copied_experts_make_the_folder_self_contained(tmp_path):
    a, b = make_expert(tmp_path / "a", 1, seed=3), make_expert(tmp_path / "b", 2, seed=4)
    compose([a, b], tmp_path / "c", copy=True)
    shutil.rmtree(a)
    shutil.rmtree(b)
    model = load_composed(tmp_path / "c")
    assert model.config.expert_depths == [1, 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"substrate": {"kind": "binary", "sha256": "c" * 64}}, "different substrate sha256 .*b{64} vs c{64}"),
        ({"substrate": {"kind": "visual", "sha256": "b" * 64}}, "different substrate kind"),
        ({"vocab_size": 131072}, "different vocab size"),
        ({"tokenizer_sha256": "0" * 64}, "tokenizer.json hashes to"),
        ({"substrate": {"kind": "trainable", "sha256": None}}, "no frozen substrate"),
    ],
)
def test_compose_refuses_mismatched_experts(experts, tmp_path, capsys, change, message):
    odd = tmp_path / "odd"
    shutil.copytree(experts[1], odd)
    manifest = json.loads((odd / "growlm.json").read_text())
    atomic_write_json(odd / "growlm.json", {**manifest, **change})
    with pytest.raises(GrowlmError, match=message):
        compose([experts[0], odd], tmp_path / "c")
    assert main(["compose", str(experts[0]), str(odd), "--out", str(tmp_path / "c")]) == 2
    assert message.split()[0] in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weights", "1,2,3"], "3 weights for 2 experts"),
        (["--weights", "1,-1"], "non-negative"),
        (["--weights", "0,0"], "all zero"),
    ],
)
def test_cli_refuses_bad_weights(experts, tmp_path, capsys, extra, message):
    assert main(["compose", *map(str, experts), "--out", str(tmp_path / "c"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_cli_refuses_one_expert_non_models_and_existing_output(experts, tmp_path, capsys):
    assert main(["compose", str(experts[0]), "--out", str(tmp_path / "c")]) == 2
    assert "at least two experts" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compose", str(experts[0]), str(tmp_path / "empty"), "--out", str(tmp_path / "c")]) == 2
    assert "not a growlm model folder" in capsys.readouterr().err
    assert main(["compose", *map(str, experts), "--out", str(tmp_path / "c")]) == 0
    assert main(["compose", *map(str, experts), "--out", str(tmp_path / "c")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["compose", *map(str, experts), "--out", str(tmp_path / "c"), "--force", "--mode", "mean_probs"]) == 0
    assert json.loads((tmp_path / "c" / "composition.json").read_text())["mode"] == "mean_probs"


def _sample_windows(model, count, length, seed):
    """Token windows sampled from `model` itself, so it explains them better than an unrelated expert."""
    gen = torch.Generator().manual_seed(seed)
    windows = []
    with torch.no_grad():
        for _ in range(count):
            ids = torch.randint(0, 65536, (1, 1), generator=gen)
            for _ in range(length - 1):
                probs = model(input_ids=ids).logits[0, -1].softmax(-1)
                ids = torch.cat([ids, torch.multinomial(probs, 1, generator=gen)[None]], dim=1)
            windows.append(ids[0])
    return windows


def test_calibration_moves_weight_to_the_expert_that_explains_the_data(expert_models):
    model = ComposedModel(expert_models, [0.5, 0.5], "mean_logits")
    windows = _sample_windows(expert_models[1], count=2, length=12, seed=0)
    result = calibrate(model, windows, steps=10, lr=0.3, batch_size=2)
    assert result.weights[1] > 0.6
    assert result.loss_after < result.loss_before - 0.05
    # the same function on the same windows and weights: equal to the last bit, approx only for the float sum's repr
    assert result.loss_before == pytest.approx(mean_loss(model, windows, model.weights))
    assert model.weights.tolist() == [0.5, 0.5], "calibration leaves the model's own weights alone"


def test_cli_calibration_is_recorded_in_the_composition(experts, tmp_path):
    text = tmp_path / "val.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. Съешь же ещё этих мягких булок. " * 20)
    out = tmp_path / "c"
    assert (
        main(
            [
                "compose",
                *map(str, experts),
                "--out",
                str(out),
                "--calibrate-on",
                str(text),
                "--calibrate-tokens",
                "96",
                "--calibrate-steps",
                "3",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    composition = json.loads((out / "composition.json").read_text())
    calibration = composition["calibration"]
    assert calibration["tokens"] == 96 and calibration["windows"] == 2
    # the composition renormalises the calibrated weights (3e-8 off in the last float32 bits)
    assert composition["weights"] == pytest.approx(calibration["weights"], abs=1e-6)
    assert calibration["weights"] != pytest.approx([0.5, 0.5])
    assert sum(composition["weights"]) == pytest.approx(1)
    assert calibration["sources"][0]["path"] == str(text)


def test_posterior_mode_and_switch_rate_are_recorded_and_loaded(experts, tmp_path, capsys):
    out = tmp_path / "c"
    assert (
        main(
            [
                "compose",
                *map(str, experts),
                "--out",
                str(out),
                "--mode",
                "posterior",
                "--weights",
                "1,3",
                "--switch-rate",
                "0.02",
            ]
        )
        == 0
    )
    assert "switch rate 0.02" in capsys.readouterr().out
    composition = json.loads((out / "composition.json").read_text())
    assert composition["mode"] == "posterior" and composition["switch_rate"] == 0.02
    assert composition["weights"] == [0.25, 0.75]
    model = load_composed(out)
    assert model.mode == "posterior" and model.switch_rate == 0.02 and model.config.switch_rate == 0.02
    ids = _ids(3, length=6, batch=1)
    with torch.no_grad():
        first = model(input_ids=ids[:, :1], use_cache=True)
    # One token seen, nothing predicted yet: the weights for the next token are the prior.
    # float64 weights from the float32 prior and one step of the posterior's arithmetic: 1e-8 off, not exact
    torch.testing.assert_close(
        first.cache.weights, torch.tensor([[0.25, 0.75]], dtype=torch.float64), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--switch-rate", "0.1"], "posterior mode only"),
        (["--mode", "posterior", "--switch-rate", "1"], "must be in [0, 1)"),
    ],
)
def test_cli_refuses_bad_switch_rates(experts, tmp_path, capsys, extra, message):
    assert main(["compose", *map(str, experts), "--out", str(tmp_path / "c"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_static_mixing_refuses_the_posterior_mode(expert_models):
    with pytest.raises(GrowlmError, match="fixed weights"):
        combine_logits([torch.zeros(1, 2, 4)] * 2, torch.tensor([0.5, 0.5]), "posterior")


def test_posterior_calibration_fits_the_prior_and_switch_rate_on_switching_text(expert_models):
    """Windows that switch source mid-way ask for a switch rate well above the starting one."""
    halves = [_sample_windows(expert_models[k], count=1, length=16, seed=7 + k)[0] for k in (0, 1)]
    windows = [torch.cat([halves[0], halves[1]]), torch.cat([halves[1], halves[0]])]
    model = ComposedModel(expert_models, [0.5, 0.5], "posterior", 0.001)
    result = calibrate(model, windows, steps=30, lr=0.3)
    assert result.switch_rate > 0.01 and result.initial_switch_rate == 0.001
    assert result.loss_after < result.loss_before - 0.05
    assert sum(result.weights) == pytest.approx(1)
    assert model.switch_rate == 0.001, "calibration leaves the model alone"


def test_cli_mode_choices_are_the_composition_modes():
    """commands/compose.py spells the modes out so that the CLI starts without torch; they must stay the same."""
    from growlm.commands.compose import MODES as CLI_MODES
    from growlm.composition.mixing import MODES

    assert CLI_MODES == MODES


def test_cli_starts_without_torch():
    import subprocess
    import sys

    code = "import sys, growlm.cli; growlm.cli.build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_a_request_is_checked_once_and_before_calibration(experts, tmp_path, monkeypatch):
    """composition/folder.compose owns the checks: the API passes through, the experts are hashed once per call,
    and a bad request fails before calibration (which loads every expert) starts."""
    from growlm import api
    from growlm.composition import folder

    calls = []
    monkeypatch.setattr(
        folder, "check_experts", lambda paths, real=folder.check_experts: calls.append(1) or real(paths)
    )
    api.compose([str(e) for e in experts], tmp_path / "ok", "mean_logits", [1, 3])
    assert len(calls) == 1

    def calibrate_on_files(*args, **kwargs):
        raise AssertionError("calibration ran before the request was checked")

    monkeypatch.setattr("growlm.composition.calibrate.calibrate_on_files", calibrate_on_files)
    for bad in ({"weights": [1, -1]}, {"switch_rate": 0.1}, {"mode": "median"}):
        args = {"mode": "mean_logits", **bad}
        with pytest.raises(GrowlmError):
            api.compose([str(e) for e in experts], tmp_path / "bad", calibrate_on=[tmp_path / "text.txt"], **args)
    assert not (tmp_path / "bad").exists()


def test_a_composition_file_with_an_unknown_mode_names_the_file(experts, tmp_path):
    out = tmp_path / "c"
    compose([str(e) for e in experts], out)
    composition = json.loads((out / "composition.json").read_text())
    atomic_write_json(out / "composition.json", {**composition, "mode": "median"})
    with pytest.raises(GrowlmError, match=r"c: unknown composition mode 'median'.*upgrade growlm or recompose"):
        load_composed(out)
