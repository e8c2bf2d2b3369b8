"""The world and the cases of scripts/hostile_probe.py (see its docstring); not meant to be run on its own.

World builds, in one folder: a tiny corpus, tokenizer, shards, binary substrate and two-stage config; an
uninterrupted reference run; a run killed mid-stage; hostile folders and files; and user-owned decoys that no case
may change. run_all(probe) runs every case through probe.case (one command), then the multi-command scenarios of
scripts/hostile_scenarios.py (kills and resumes, two writers) through probe.scenario.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path

TINY = """name = "tiny"
[substrate]
kind = "binary"
dim = 32
path = "{sub}"
[tokenizer]
path = "{tok}"
[data]
shards = "{shards}"
[model]
d_model = 32
n_heads = 2
context = 16
[[growth.stages]]
add_blocks = 1
tokens = 96
[[growth.stages]]
add_blocks = 1
tokens = 96
[train]
batch_size = 2
lr = 3e-3
eval_every = 2
eval_batches = 1
checkpoint_every = 2
log_every = 1
keep_checkpoints = 50
compile = false
threads = 1
"""
EVIL_PY = "import pathlib\npathlib.Path({marker!r}).write_text('shipped code ran')\nclass Evil: pass\n"
GARBAGE = bytes(random.Random(7).randrange(256) for _ in range(3000))


class Evil:
    """Unpickling this runs a shell command: a pickle that executes code when loaded without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def edit_json(file: Path, **changes) -> None:
    file.write_text(json.dumps({**json.loads(file.read_text()), **changes}))


class World:
    def __init__(self, root: Path, run):
        self.root, self._run = root, run
        self.marker = root / "PWNED"
        self.paths = {"w": str(root)}
        self.build_inputs()
        self.build_decoys()
        self.build_hostile()

    def p(self, name: str) -> Path:
        return Path(self.paths[name])

    def add(self, name: str, path: Path | str) -> Path:
        self.paths[name] = str(path)
        return Path(path)

    def cli(self, argv: str, env=None, expect=0) -> None:
        rc, _, err = self._run(argv.format(**self.paths).split(), self.root, env, 300)
        if rc != expect:
            raise SystemExit(f"probe set-up failed: growlm {argv} -> {rc}\n{err[-2000:]}")

    def copy(self, src: str, name: str) -> Path:
        return self.add(name, shutil.copytree(self.p(src), self.root / name, symlinks=True))

    def config(self, name: str, text: str | bytes) -> Path:
        path = self.add(name, self.root / f"{name}.toml")
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def build_inputs(self) -> None:
        words = (
            "the of and to in a is that for it as was with be by on not he this are or his from at which but "
            "have an they you were her she there one all we their"
        ).split()
        rng = random.Random(0)
        docs = [" ".join(rng.choice(words) for _ in range(120)).capitalize() + "." for _ in range(60)]
        self.add("text", self.root / "text.txt").write_text("\n\n".join(docs))
        self.add("docs", self.root / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
        for name in ("tok", "shards", "sub", "ref", "partial", "comp"):
            self.add(name, self.root / name)
        self.cli("tokenizer build --corpus {text} --ngrams 10 --out {tok}")
        self.cli("data prepare --source {docs} --tokenizer {tok} --out {shards} --workers 1")
        self.cli("substrate build --kind binary --dim 32 --out {sub}")
        self.tiny = TINY.format(**self.paths)
        self.config("cfg", self.tiny)
        self.cli("grow {cfg} --out {ref}")
        self.cli("grow {cfg} --out {partial}", {"GROWLM_FAULT": "step:3"}, expect=-9)  # killed mid-stage 1
        self.add("model1", self.p("ref") / "stages/1/model")
        self.add("model", self.p("ref") / "stages/2/model")
        self.add("ckpt", self.p("ref") / "checkpoints/step-00000002")
        self.cli("compose {model1} {model} --out {comp}")

    def build_decoys(self) -> None:
        user = self.add("user", self.root / "user")
        (user / "deep").mkdir(parents=True)
        (user / "notes.txt").write_text("precious")
        (user / "deep" / "inner.txt").write_text("also precious")
        state = self.add("user_state", self.root / "user_state")
        state.mkdir()
        (state / "notes.txt").write_text("precious")
        (state / "state.json").write_text('{"theme": "dark"}')
        dots = self.add("user_dots", self.root / "user_dots")
        dots.mkdir()
        (dots / ".draft.tmp").write_text("my draft")
        (dots / ".backup.old").write_text("my backup")
        hfds = self.add("user_hfds", self.root / "user_hfds")  # what datasets.Dataset.save_to_disk writes
        hfds.mkdir()
        (hfds / "state.json").write_text(
            json.dumps(
                {"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_fingerprint": "6c1a", "_split": "train"}
            )
        )
        (hfds / "dataset_info.json").write_text("{}")
        (hfds / "data-00000-of-00001.arrow").write_bytes(GARBAGE)
        md = self.add("user_md", self.root / "user_md")
        md.mkdir()
        (md / "page.md").write_text("# my page")
        self.add("userfile", self.root / "userfile.txt").write_text("precious file")
        os.symlink(user, self.add("link_user", self.root / "link_user"))

    def decoys(self) -> list[Path]:
        return [self.p(n) for n in ("user", "user_state", "user_dots", "user_md", "userfile", "link_user", "user_hfds")]

    def inputs(self) -> list[Path]:
        return [self.p(n) for n in ("tok", "shards", "sub", "text", "docs", "model", "model1", "ckpt", "comp")]

    def build_hostile(self) -> None:
        evil = EVIL_PY.format(marker=str(self.marker))
        m = self.copy("model", "m_tokauto")
        edit_json(m / "tokenizer_config.json", auto_map={"AutoTokenizer": ["tokenization_evil.Evil", None]})
        (m / "tokenization_evil.py").write_text(evil)
        m = self.copy("model", "m_cfgauto")
        edit_json(
            m / "config.json",
            auto_map={"AutoConfig": "configuration_evil.Evil", "AutoModelForCausalLM": "modeling_evil.Evil"},
        )
        for name in ("configuration_evil.py", "modeling_evil.py"):
            (m / name).write_text(evil)
        m = self.copy("model", "m_pickle")
        (m / "model.safetensors").unlink()
        (m / "pytorch_model.bin").write_bytes(pickle.dumps(Evil(self.marker)))
        m = self.copy("model", "m_notok")
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (m / name).unlink()
        self.copy("model", "m_cfggarbage").joinpath("config.json").write_bytes(GARBAGE)
        self.add("binary", self.root / "blob.txt").write_bytes(GARBAGE)
        self.copy("ref", "ref_done")
        truncate(self.copy("model", "m_trunc") / "model.safetensors")
        edit_json(self.copy("model", "m_arch") / "config.json", num_hidden_layers=-3)
        r = self.copy("ref", "run_badmeta")
        (r / "stages/1/model/growlm.json").write_bytes(GARBAGE)
        self.build_hostile_runs()
        self.build_hostile_inputs()

    def build_hostile_runs(self) -> None:
        c = self.copy("ckpt", "ckpt_list")
        (c / "state.json").write_text("[1, 2]")
        (self.copy("ckpt", "ckpt_noweights") / "model.safetensors").unlink()
        r = self.copy("partial", "run_evilopt")
        ckpt = r / "checkpoints/step-00000002"
        (ckpt / "optimizer.pt").write_bytes(pickle.dumps(Evil(self.marker)))
        import hashlib

        state = json.loads((ckpt / "state.json").read_text())
        state["sha256"]["optimizer.pt"] = hashlib.sha256((ckpt / "optimizer.pt").read_bytes()).hexdigest()
        (ckpt / "state.json").write_text(json.dumps(state))
        r = self.copy("partial", "run_garbage_states")
        for state_file in r.glob("checkpoints/*/state.json"):
            state_file.write_bytes(GARBAGE)
        c = self.copy("comp", "comp_none")
        edit_json(c / "composition.json", experts=[], weights=[])
        c = self.copy("comp", "comp_user")
        comp = json.loads((c / "composition.json").read_text())
        comp["experts"][0]["path"] = str(self.p("user"))
        (c / "composition.json").write_text(json.dumps(comp))
        for name in ("e1", "e2"):
            self.copy("model", name)
        self.add("comp_t", self.root / "comp_t")

    def build_hostile_inputs(self) -> None:
        s = self.copy("shards", "shards_badman")
        truncate(s / "manifest.json")
        s = self.copy("shards", "shards_badbin")
        for tokens in s.glob("*.train.tokens.bin"):
            truncate(tokens)
        for name in ("shards_badman", "shards_badbin"):
            self.config(f"cfg_{name}", self.tiny.replace(self.paths["shards"], self.paths[name]))
        (self.copy("tok", "tok_garbage") / "growlm_tokenizer.json").write_bytes(GARBAGE)
        truncate(self.copy("sub", "sub_trunc") / "substrate.safetensors")
        for name in ("tok", "tok", "ref", "ref", "shards", "model", "model", "model", "sub"):
            self.copy(name, f"{name}_in{sum(k.startswith(name + '_in') for k in self.paths) or ''}")  # read + --out
        self.config("cfg_shards_in", self.tiny.replace(self.paths["shards"], self.paths["shards_in"]))
        os.symlink(self.p("model_in2"), self.add("link_model_in", self.root / "link_model_in"))
        t = self.tiny
        self.config("cfg_wrongtype", t.replace("d_model = 32", 'd_model = "wide"'))
        self.config("cfg_unknown", t.replace("lr = 3e-3", "learning_rate = 3e-3"))
        self.config("cfg_negative", t.replace("tokens = 96", "tokens = -96", 1))
        self.config("cfg_empty", "")
        self.config("cfg_comments", "# my config, to be written\n\n")
        self.config("cfg_syntax", t.replace("[model]", "[model"))
        self.config("cfg_garbage", GARBAGE)


def config_cases(probe) -> None:
    c = probe.case
    c("config: wrong type", "grow {cfg_wrongtype} --out {w}/o/wrongtype")
    c("config: unknown key in [train]", "grow {cfg_unknown} --out {w}/o/unknown")
    c("config: negative stage tokens", "grow {cfg_negative} --out {w}/o/negative")
    c("config: empty file", "grow {cfg_empty} --out {w}/o/empty", timeout=40)
    c("config: only comments", "grow {cfg_comments} --out {w}/o/comments", timeout=40)
    c("config: TOML syntax error", "grow {cfg_syntax} --out {w}/o/syntax")
    c("config: binary garbage", "grow {cfg_garbage} --out {w}/o/garbage")
    c("config: a folder as the config", "grow {user} --out {w}/o/dir")
    c("--set: not a number", "grow {cfg} --out {w}/o/s1 --set model.d_model=wide")
    c("--set: no '='", "grow {cfg} --out {w}/o/s2 --set train.lr")
    c("--set: index past the end", "grow {cfg} --out {w}/o/s3 --set growth.stages.7.tokens=10")
    c("--set: lr = nan", "grow {cfg} --out {w}/o/s4 --set train.lr=nan")
    c("--set: init_std = inf", "grow {cfg} --out {w}/o/s5 --set model.init_std=inf", timeout=60)
    c("--set: weight_decay = inf", "grow {cfg} --out {w}/o/s6 --set train.weight_decay=inf", timeout=60)
    c("plan --gpus 0", "plan {cfg} --gpus 0")
    c("generate --max-new-tokens -1", "generate {model} --prompt hi --max-new-tokens -1")
    c("generate --temperature nan", "generate {model} --prompt hi --temperature nan")
    c("generate --device nonsense", "generate {model} --prompt hi --device nonsense")
    c("tokenizer decode -1", "tokenizer decode -- -1")
    c("tokenizer decode 70000", "tokenizer decode 70000")
    c("tokenizer build --ngrams -3", "tokenizer build --corpus {text} --ngrams -3 --out {w}/o/tokneg")
    c("substrate build binary --dim 7", "substrate build --kind binary --dim 7 --out {w}/o/dim7")
    c("compose --weights 1,-1", "compose {model1} {model} --weights 1,-1 --out {w}/o/negw")
    c("generate --device cuda:7", "generate {model} --prompt hi --device cuda:7")
    c("data prepare --val-fraction 1.5", "data prepare --source {docs} --val-fraction 1.5 --out {w}/o/vf")


def file_cases(probe) -> None:
    c = probe.case
    c("tokenizer_config auto_map + .py", "generate {m_tokauto} --prompt hi")
    c("config auto_map + .py, eval", "eval {m_cfgauto} --tasks perplexity --shards {shards} --out {w}/o/e.json")
    c("config auto_map + .py, compose", "compose {m_cfgauto} {model} --out {w}/o/cauto")
    c("config auto_map + .py, analyze tsne", "analyze tsne {m_cfgauto} --out {w}/o/tsne")
    c("pickle weights that run code", "generate {m_pickle} --prompt hi")
    c("model without tokenizer files", "generate {m_notok} --prompt hi")
    c("config.json binary garbage", "generate {m_cfggarbage} --prompt hi")
    c("config.json num_hidden_layers=-3", "generate {m_arch} --prompt hi")
    c("compose truncated expert", "compose {m_trunc} {model} --out {w}/o/ctrunc")
    c("eval-run, growlm.json garbage", "eval-run {run_badmeta} --tasks perplexity --no-progress")
    c("composition expert -> user folder", "generate {comp_user} --prompt hi")
    c("composition with no experts", "generate {comp_none} --prompt hi")
    c("data prepare of a binary file", "data prepare --source {binary} --out {w}/o/blob")
    c("resume a finished run", "grow --resume --out {ref_done}", expect=(0,), protect=["{ref_done}/stages"])
    c("export, state.json is a list", "export {ckpt_list} --out {w}/o/x1")
    c("export, no model.safetensors", "export {ckpt_noweights} --out {w}/o/x2")
    c("export a user folder", "export {user} --out {w}/o/x3")
    c("resume, optimizer.pt runs code", "grow --resume --out {run_evilopt}")
    c("resume, every state.json garbage", "grow --resume --out {run_garbage_states}")
    c("resume a user folder", "grow --resume --out {user}")
    c("shards manifest.json truncated", "grow {cfg_shards_badman} --out {w}/o/sm")
    c("shards tokens.bin truncated", "grow {cfg_shards_badbin} --out {w}/o/sb")
    c("growlm_tokenizer.json garbage", "tokenizer encode hi --tokenizer {tok_garbage}")
    c("data prepare --tokenizer user folder", "data prepare --source {docs} --tokenizer {user} --out {w}/o/pt")
    c("substrate inspect truncated", "substrate inspect {sub_trunc}")
    work = probe.w.root / "o" / ".prep.prepare"
    work.mkdir(parents=True)
    (work / "run.json").write_bytes(GARBAGE)
    c(
        "data prepare, garbage .OUT.prepare/run.json",
        "data prepare --source {docs} --tokenizer {tok} --workers 1 --out {w}/o/prep",
        expect=(0,),
    )

    def tamper(rc, out, err):
        return None if "changed since composition" in err else "not refused as changed"

    probe.w.cli("compose {e1} {e2} --out {comp_t}")
    weights = probe.w.p("e1") / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    c("composition expert changed after", "generate {comp_t} --prompt hi", check=tamper)


def force_cases(probe) -> None:
    c = probe.case
    c("grow --force, user folder has state.json", "grow {cfg} --out {user_state} --force")
    c("export --force, user folder has state.json", "export {ckpt} --out {user_state} --force")
    c("compose --force, user has state.json", "compose {model1} {model} --out {user_state} --force")
    c("tokenizer build --force, state.json", "tokenizer build --out {user_state} --force")
    c("substrate build --force, state.json", "substrate build --kind binary --dim 32 --out {user_state} --force")
    c("data prepare --force, state.json", "data prepare --source {docs} --out {user_state} --force")
    c("analyze substrate --force, user folder", "analyze substrate {sub} --out {user} --force")
    c("analyze tsne --force, state.json", "analyze tsne {model} --out {user_state} --force")
    c("export-lm-eval --force, user folder", "data export-lm-eval --out {user_state} --force")
    c("grow, user folder of dot-files", "grow {cfg} --out {user_dots}")
    c("export --force, symlink to user", "export {ckpt} --out {link_user} --force")
    c("tokenizer build --force, a datasets folder", "tokenizer build --out {user_hfds} --force")
    c("eval --out user file --force", "eval {model} --tasks perplexity --out {userfile} --force", timeout=60)
    c("eval --out user folder", "eval {model} --tasks perplexity --out {user}")
    c("substrate inspect --png user file", "substrate inspect {sub} --png {userfile}")
    c("report --force, user .md beside", "report {ref_in} --out {user_md}/page.html --force", expect=(0, 2))
    c(
        "export --out the run of its ckpt",
        "export {ref_in}/checkpoints/step-00000002 --out {ref_in} --force",
        protect=["{ref_in}"],
    )
    c(
        "substrate --out its --tokenizer",
        "substrate build --kind visual --tokenizer {tok_in} --out {tok_in} --force",
        protect=["{tok_in}"],
    )
    c(
        "prepare --out its --tokenizer",
        "data prepare --source {docs} --tokenizer {tok_in1} --out {tok_in1} --force",
        protect=["{tok_in1}"],
    )
    c("grow --out its data.shards", "grow {cfg_shards_in} --out {shards_in} --force", protect=["{shards_in}"])
    c("analyze tsne --out its model", "analyze tsne {model_in} --out {model_in} --force", protect=["{model_in}"])
    c(
        "eval --out its model's weights",
        "eval {model_in1} --tasks perplexity --shards {shards} --out {model_in1}/model.safetensors --force",
        protect=["{model_in1}"],
        timeout=60,
    )
    c(
        "compose --out symlink to an expert",
        "compose {model_in2} {model1} --out {link_model_in} --force",
        protect=["{model_in2}"],
    )
    c(
        "report --out the run's metrics.jsonl",
        "report {ref_in1} --out {ref_in1}/metrics.jsonl --force",
        protect=["{ref_in1}"],
    )
    c(
        "substrate inspect --png its weights",
        "substrate inspect {sub_in} --png {sub_in}/substrate.safetensors --force",
        protect=["{sub_in}"],
    )


def run_all(probe) -> None:
    from hostile_scenarios import kill_cases, two_writers

    config_cases(probe)
    file_cases(probe)
    force_cases(probe)
    kill_cases(probe)
    two_writers(probe)
