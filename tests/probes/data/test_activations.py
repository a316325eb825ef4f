"""Activations equal the plain transformers model's residual stream, for six architectures."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from probes import CacheError, FamilyError, HookError, PositionError, Task, TaskError, load_family
from probes.data.activations import ActivationSet, collect_activations
from tests.conftest import assert_close_in
from tests.tiny import ARCHS, perturb_checkpoint

PROMPTS = ["a b c = 1", "d e =", "1 2 3 4 5 6 7 8 9 0 a b c d e f = g", "z", "Wait , x y z Wait = 3 4"]


def _task(n: int = len(PROMPTS)) -> Task:
    recs = [
        {"id": f"p{i}", "prompt": PROMPTS[i % len(PROMPTS)] + (" a" * (i // len(PROMPTS))), "answer": "1"}
        for i in range(n)
    ]
    return Task.from_records("toy", recs)


def _blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    for path in ("model.layers", "transformer.h", "gpt_neox.layers"):
        obj: object = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return list(obj)  # type: ignore[call-overload]
    raise AssertionError("unknown architecture")


def reference_resid_post(
    folder: Path, prompts: list[str], device: str = "cpu", dtype: torch.dtype = torch.float32
) -> list[list[torch.Tensor]]:
    """Plain transformers: output of every block (forward hooks), one unpadded prompt at a time."""
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    out = []
    for p in prompts:
        got: list[torch.Tensor] = []

        def keep(m, i, o, got=got):
            got.append((o[0] if isinstance(o, tuple) else o)[0].detach())

        handles = [b.register_forward_hook(keep) for b in _blocks(model)]
        try:
            with torch.no_grad():
                hs = model(**tok(p, return_tensors="pt").to(device), output_hidden_states=True).hidden_states
        finally:
            for h in handles:
                h.remove()
        # hidden_states[i+1] equals block i's output except the last, which has the final norm applied
        for i in range(len(got) - 1):
            assert torch.equal(got[i], hs[i + 1][0])
        out.append([g.float().cpu() for g in got])
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_matches_transformers_every_layer(
    arch: str, tiny_dir, tmp_path: Path, device: str, dtype: torch.dtype
) -> None:
    """fp32: equal to float precision (1e-5). With --dtype bfloat16 the reference runs in bf16 too."""
    folder = tiny_dir(arch)
    fam = load_family({"base": str(folder)}, device=device, dtype=dtype)
    task = _task()
    ref = reference_resid_post(folder, list(task.prompts), device, dtype)
    for side in ("left", "right"):
        for bs in (1, 16):
            acts = collect_activations(
                fam,
                task,
                "resid_post:all",
                "all",
                out=tmp_path / f"{side}{bs}",
                batch_size=bs,
                padding_side=side,
                progress=False,
            )
            for layer in range(2):
                rows, owner = acts.get_tokens("base", f"resid_post.{layer}", "all")
                for i in range(len(task)):
                    got = rows[owner == i]
                    want = ref[i][layer]
                    assert rows.dtype == dtype
                    assert_close_in(dtype, got, want)
            last = acts  # keep
    # 'last' equals the last token's row
    acts_last = collect_activations(fam, task, "resid_post.1", "last", out=tmp_path / "last", progress=False)
    X = acts_last.get("base", "resid_post.1")
    for i in range(len(task)):
        assert_close_in(dtype, X[i], ref[i][1][-1])
    assert last.prompt_ids == task.ids


def test_positions_match_window_and_span(tiny_dir, tmp_path: Path) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    task = Task.from_records(
        "spans",
        [
            {"id": "a", "prompt": "x y z Wait , a b = 1 2 >", "answer": "1"},
            {"id": "b", "prompt": "q Wait Wait = 3 >", "answer": "1"},
        ],
        spans={"pad": ["=", ">"]},
    )
    acts = collect_activations(
        fam,
        task,
        "resid_pre.0",
        ["all", "match:Wait:-1:2", "span:pad", "match:=", "-1"],
        out=tmp_path / "a",
        progress=False,
    )
    allrows, owner = acts.get_tokens("base", "resid_pre.0", "all")
    a = allrows[owner == 0]
    # tokens: <bos> x y z Wait , a b = 1 2 >  -> Wait at 4, window starts at 3, length 2
    win, wo = acts.get_tokens("base", "resid_pre.0", "match:Wait:-1:2")
    torch.testing.assert_close(win[wo == 0], a[3:5])
    span, so = acts.get_tokens("base", "resid_pre.0", "span:pad")
    torch.testing.assert_close(span[so == 0], a[8:12])
    torch.testing.assert_close(acts.get("base", "resid_pre.0", "span:pad")[0], a[8:12].mean(0))
    torch.testing.assert_close(acts.get("base", "resid_pre.0", "match:=")[0], a[8])
    torch.testing.assert_close(acts.get("base", "resid_pre.0", "-1")[0], a[-1])
    with pytest.raises(PositionError, match="several positions"):
        acts.get("base", "resid_pre.0")


def test_clear_errors(tiny_dir, tmp_path: Path) -> None:
    base = tiny_dir("llama")
    fam = load_family({"base": str(base)})
    with pytest.raises(HookError, match="Did you mean .*resid_post"):
        collect_activations(fam, _task(), ["blocks.0.hook_resid_pots"], out=tmp_path / "x", progress=False)
    with pytest.raises(HookError, match="has 2 layers"):
        collect_activations(fam, _task(), "resid_post.7", out=tmp_path / "y", progress=False)
    with pytest.raises(HookError, match="Did you mean"):
        collect_activations(fam, _task(), "resid_psot.0", out=tmp_path / "y", progress=False)
    long = Task.from_records("long", [{"id": "big", "prompt": " ".join(["a"] * 300), "answer": "1"}])
    with pytest.raises(TaskError, match="'big' is 301 tokens long, over the model's context of 128"):
        collect_activations(fam, long, "resid_post.0", out=tmp_path / "z", progress=False)
    with pytest.raises(PositionError, match="Prompt 'p0': Token 'Wait' does not occur"):
        collect_activations(fam, _task(), "resid_post.0", "match:Wait", out=tmp_path / "w", progress=False)
    with pytest.raises(FamilyError, match="no variant 'dpo'"):
        collect_activations(
            fam, _task(), "resid_post.0", variants=["dpo"], out=tmp_path / "v", progress=False
        )


def test_shard_hash_from_memory_equals_file_hash(tmp_path: Path) -> None:
    """The sidecar hash computed from the tensors in memory equals hashing the written file."""
    from safetensors.torch import save_file

    from probes.data.activations import _written_sha256

    g = torch.Generator().manual_seed(0)
    tensors = {
        "b@all": torch.randn(7, 5, generator=g).to(torch.bfloat16),
        "a@last": torch.randn(3, 5, generator=g),
        "offsets@all": torch.arange(4),
        "z": torch.randn(1, 3, generator=g).to(torch.float16),
    }
    path = tmp_path / "s.safetensors"
    save_file(tensors, str(path), metadata={"variant": "v"})
    data = path.read_bytes()
    assert _written_sha256(path, tensors, len(data)) == hashlib.sha256(data).hexdigest()
    tensors["a@last"][0, 0] += 1  # different bytes in memory -> a different hash
    assert _written_sha256(path, tensors, len(data)) != hashlib.sha256(data).hexdigest()


def test_cache_reuse_and_corruption(tiny_dir, tmp_path: Path) -> None:
    base = tiny_dir("llama")
    fam = load_family({"base": str(base), "sft": str(perturb_checkpoint(base, tmp_path / "sft"))})
    task = _task(40)
    out = tmp_path / "acts"
    a = collect_activations(
        fam, task, "resid_post:0-1", "last", out=out, shard_size=16, batch_size=4, progress=False
    )
    X = a.get("sft", "resid_post.1")
    assert X.shape == (40, 64) and a.variants == ["base", "sft"]
    for side in sorted(out.glob("*/shard_*.json")):  # the sidecar describes the bytes on disk
        data = side.with_suffix(".safetensors").read_bytes()
        assert json.loads(side.read_text())["sha256"] == hashlib.sha256(data).hexdigest()

    # same settings: no model is opened
    class NoOpen(type(fam)):  # type: ignore[misc]
        def open(self, variant):  # noqa: D401
            raise AssertionError("cache not reused")

    fam2 = NoOpen(**{f: getattr(fam, f) for f in fam.__dataclass_fields__})
    b = collect_activations(
        fam2, task, "resid_post:0-1", "last", out=out, shard_size=16, batch_size=4, progress=False
    )
    assert torch.equal(b.get("sft", "resid_post.1"), X)
    # different settings: a clear error
    with pytest.raises(CacheError, match="differing"):
        collect_activations(fam, task, "resid_post.0", "last", out=out, shard_size=16, progress=False)
    # truncate a shard: load refuses, collect rebuilds
    shard = out / "sft" / "shard_00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(CacheError, match="Shard 1 of variant 'sft'"):
        ActivationSet.load(out)
    c = collect_activations(
        fam, task, "resid_post:0-1", "last", out=out, shard_size=16, batch_size=4, progress=False
    )
    assert torch.equal(c.get("sft", "resid_post.1"), X)
    ActivationSet.load(out)  # verifies
    saved = c.save(tmp_path / "copy")
    assert torch.equal(saved.get("base", "resid_post.0"), c.get("base", "resid_post.0"))


KILL_SCRIPT = """
import os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {root!r})
import probes.data.activations as A
from probes import load_family, Task
from tests.tiny import perturb_checkpoint
orig = A._atomic_json
count = {{"n": 0}}
def slow(path, data):
    orig(path, data)
    if path.name.startswith("shard_"):
        count["n"] += 1
        if count["n"] == {after}:
            print("READY", flush=True)
            time.sleep(60)
A._atomic_json = slow
fam = load_family({{"base": {base!r}, "sft": {sft!r}}})
recs = [{{"id": f"p{{i}}", "prompt": "a b c " + " ".join(["d"] * (i % 7)) + " =", "answer": "1"}} for i in range(60)]
A.collect_activations(fam, Task.from_records("k", recs), "resid_post:0-1", ["last", "all"], out={out!r},
                      shard_size=8, batch_size=3, progress=False)
"""


def test_sigkill_resume_identical(tiny_dir, tmp_path: Path) -> None:
    base = tiny_dir("llama")
    sft = perturb_checkpoint(base, tmp_path / "sft")
    root = str(Path(__file__).resolve().parents[3])
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    script = tmp_path / "k.py"
    script.write_text(KILL_SCRIPT.format(root=root, after=11, base=str(base), sft=str(sft), out=str(killed)))
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"READY" in line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (killed / "sft" / "complete.json").exists()
    # leave a half-written temp file as a crash would
    (killed / "sft" / ".shard_00003.safetensors.tmp").write_bytes(b"garbage")
    script.write_text(KILL_SCRIPT.format(root=root, after=-1, base=str(base), sft=str(sft), out=str(killed)))
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    script.write_text(KILL_SCRIPT.format(root=root, after=-1, base=str(base), sft=str(sft), out=str(clean)))
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    a, b = ActivationSet.load(killed), ActivationSet.load(clean)
    for v in ("base", "sft"):
        for pos in ("last", "all"):
            ra, oa = a.get_tokens(v, "resid_post.1", pos)
            rb, ob = b.get_tokens(v, "resid_post.1", pos)
            assert torch.equal(ra, rb) and torch.equal(oa, ob)
    assert len(list((killed / "sft").glob("shard_*.safetensors"))) == 8


def test_capture_fires_every_hook_and_removes_them_on_exit(tiny_dir) -> None:
    from probes.data.activations import capture
    from probes.models.tokens import encode

    fam = load_family({"base": str(tiny_dir("llama"))}, check=False)
    names = ["blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"]
    with fam.open("base") as model:
        batch = encode(model.tokenizer, ["a b c", "d"], device="cpu")
        with torch.inference_mode(), capture(model, names, variant="base", stop_at=None) as cap:
            got = cap.run(batch)
            assert sorted(got) == sorted(names) and got[names[0]].shape == (2, 4, 64)
            assert all(len(model.hook_dict[n].fwd_hooks) == 1 for n in names)
        assert all(model.hook_dict[n].fwd_hooks == [] for n in names) and cap.captured == {}
        # stopping before layer 1 leaves its hook silent: named in the error; hooks still removed
        silent = r"\['blocks.1.hook_mlp_out'\] did not fire on variant 'base'"
        with (
            pytest.raises(HookError, match=silent),
            torch.inference_mode(),
            capture(model, names, variant="base", stop_at=1) as cap,
        ):
            cap.run(batch)
        assert all(model.hook_dict[n].fwd_hooks == [] for n in names)


@pytest.mark.parametrize("side", ["right", "left"])
def test_shard_buffer_gathers_the_planned_rows(side: str, tmp_path: Path) -> None:
    """Hand-made plan: prompt i's rows are read from a captured tensor whose entries name
    (batch row, column), so every gathered row can be checked by hand."""
    from probes.data.activations import ShardBuffer, _Plan
    from probes.models.hooks import HookSite
    from probes.models.tokens import encode
    from tests.tiny import make_tokenizer

    tok = make_tokenizer()
    texts = ["a b c", "d", "e f"]  # <bos> + words: lengths 4, 2, 3
    resolved = [[[3], [1, 2]], [[1], [0, 1]], [[2], [1, 2]]]  # [prompt][position] -> unpadded indices
    sites = (HookSite(0), HookSite(1))
    plan = _Plan(
        tmp_path,
        sites,
        ("last", "w"),
        resolved,
        texts,
        tok,
        shard_size=3,
        batch_size=2,
        padding_side=side,
        progress=False,
    )
    assert plan.n_shards == 1 and plan.batches(0) == [(0, 2), (2, 3)]
    buf = ShardBuffer(plan, 0, ["h0", "h1"], d_model=2, dtype=torch.float32, pinned=False)
    for b0, b1 in plan.batches(0):
        batch = encode(tok, texts[b0:b1], padding_side=side)
        b, w = batch.input_ids.shape
        # entry [j, col] = 100 * (prompt index) + (unpadded token index), in both channels
        unpadded = torch.arange(w)[None, :, None] - torch.tensor(batch.offsets)[:, None, None]
        value = (100 * (b0 + torch.arange(b))[:, None, None] + unpadded).float()
        buf.add(
            b0, batch, {"h0": value.expand(b, w, 2).contiguous(), "h1": -value.expand(b, w, 2).contiguous()}
        )
    t = buf.tensors()
    assert t["resid_post.0@last"][:, 0].tolist() == [3, 101, 202]
    assert t["resid_post.0@w"][:, 0].tolist() == [1, 2, 100, 101, 201, 202]
    assert t["resid_post.1@w"][:, 1].tolist() == [-1, -2, -100, -101, -201, -202]
    assert t["offsets@last"].tolist() == [0, 1, 2, 3] and t["offsets@w"].tolist() == [0, 2, 4, 6]


def test_a_plain_list_of_prompts_is_a_task(tiny_dir, tmp_path: Path) -> None:
    """What TransformerLens and steering-vectors users pass: prompts without answers."""
    fam = load_family({"base": str(tiny_dir("llama"))})
    prompts = ["x y z", "q w"]
    acts = collect_activations(fam, prompts, "resid_post:0", "last", out=tmp_path / "plain", progress=False)
    assert acts.prompt_ids == ("p0", "p1")
    same = collect_activations(
        fam,
        Task.from_records("t", [{"id": f"p{i}", "prompt": p, "answer": "1"} for i, p in enumerate(prompts)]),
        "resid_post:0",
        "last",
        out=tmp_path / "task",
        progress=False,
    )
    torch.testing.assert_close(
        acts.get("base", "resid_post.0", "last"), same.get("base", "resid_post.0", "last")
    )
    one = collect_activations(fam, "x y z", "resid_post:0", "last", out=tmp_path / "one", progress=False)
    torch.testing.assert_close(
        one.get("base", "resid_post.0", "last")[0], acts.get("base", "resid_post.0", "last")[0]
    )
    with pytest.raises(TaskError, match="Plain prompts must be strings"):
        collect_activations(fam, ["ok", 3], "resid_post:0", "last", progress=False)  # type: ignore[list-item]
    with pytest.raises(TaskError, match="has no reference answers"):
        Task.from_prompts(prompts).score("x", "")


@pytest.mark.parametrize("store_dtype", [torch.bfloat16, torch.float16])
def test_store_dtype_equals_transformers_cast(store_dtype: torch.dtype, tiny_dir, tmp_path: Path) -> None:
    """A compact store holds the plain transformers activations cast to its dtype (and exactly
    the model-dtype store's rows cast); meta.json says so; another dtype is not reused."""
    folder = tiny_dir("llama")
    fam = load_family({"base": str(folder)})
    task = _task()
    ref = reference_resid_post(folder, list(task.prompts))
    name = str(store_dtype).replace("torch.", "")
    for side in ("right", "left"):
        full = collect_activations(
            fam,
            task,
            "resid_post:all",
            "all",
            out=tmp_path / f"fp32{side}",
            batch_size=2,
            padding_side=side,
            progress=False,
        )
        small = collect_activations(
            fam,
            task,
            "resid_post:all",
            "all",
            out=tmp_path / f"{name}{side}",
            batch_size=2,
            padding_side=side,
            progress=False,
            store_dtype=name,
        )
        assert full.store_dtype == torch.float32 and full.meta["store_dtype"] == "float32"
        assert small.store_dtype == store_dtype and small.meta["store_dtype"] == name
        assert small.meta["dtype"] == "float32"  # the model's dtype, recorded beside it
        for layer in range(2):
            rows, owner = small.get_tokens("base", f"resid_post.{layer}", "all")
            rows32, owner32 = full.get_tokens("base", f"resid_post.{layer}", "all")
            assert rows.dtype == store_dtype and torch.equal(owner, owner32)
            assert torch.equal(rows, rows32.to(store_dtype))
            for i in range(len(task)):
                torch.testing.assert_close(rows[owner == i], ref[i][layer].to(store_dtype))
    reopened = ActivationSet.load(tmp_path / f"{name}right")
    assert reopened.get("base", "resid_post.1", "all").dtype == store_dtype
    with pytest.raises(CacheError, match="store_dtype"):
        collect_activations(
            fam,
            task,
            "resid_post:all",
            "all",
            out=tmp_path / "fp32right",
            progress=False,
            batch_size=2,
            store_dtype=name,
        )


def test_store_dtype_errors_name_the_value(tiny_dir, tmp_path: Path) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    with pytest.raises(
        TaskError, match=r"store_dtype must be one of \['float32', 'bfloat16', 'float16'\].*'int8'"
    ):
        collect_activations(fam, _task(), "resid_post:0", "last", out=tmp_path / "x", store_dtype="int8")


def test_prompt_rows_batches_equal_encoding_each_batch(tiny_dir) -> None:
    """Tokenised once in the plan, padded per batch: the same batch as tokenising it afresh."""
    from probes.data.activations import prompt_rows
    from probes.models.tokens import encode

    fam = load_family({"base": str(tiny_dir("llama"))})
    task = _task(7)
    rows = prompt_rows(fam, task)
    for side in ("right", "left"):
        for b0, b1 in ((0, 3), (3, 7), (5, 6)):
            got = rows.batch(b0, b1, padding_side=side)
            want = encode(rows.tokenizer, list(task.prompts[b0:b1]), padding_side=side)
            assert torch.equal(got.input_ids, want.input_ids)
            assert torch.equal(got.attention_mask, want.attention_mask)
            assert got.lengths == want.lengths and got.tokens == want.tokens and got.offsets == want.offsets


def test_a_variant_added_later_joins_the_store(tiny_dir, tmp_path: Path) -> None:
    """One call per variant (what one job per variant does) gives the store of one call; a
    variant whose weights changed since is still refused."""
    base = tiny_dir("llama")
    tuned = perturb_checkpoint(base, tmp_path / "tuned", scale=0.3)
    fam = load_family({"base": str(base), "tuned": str(tuned)})
    task = _task()
    both = collect_activations(fam, task, "resid_post:0-1", "last", out=tmp_path / "both", progress=False)
    for v in ("tuned", "base"):
        split = collect_activations(
            fam, task, "resid_post:0-1", "last", variants=[v], out=tmp_path / "split", progress=False
        )
    assert split.variants == ["base", "tuned"] and set(split.meta["revisions"]) == {"base", "tuned"}
    for v in ("base", "tuned"):
        assert torch.equal(split.get(v, "resid_post.1"), both.get(v, "resid_post.1"))
    perturb_checkpoint(base, tuned, scale=0.5, seed=3)  # retrain "tuned" in place
    with pytest.raises(CacheError, match=r"differing: \['revisions'\]"):
        collect_activations(
            load_family({"base": str(base), "tuned": str(tuned)}),
            task,
            "resid_post:0-1",
            "last",
            variants=["tuned"],
            out=tmp_path / "split",
            progress=False,
        )


class _RecordingBar:
    """A stand-in for ``tqdm.auto.tqdm`` that records each bar's total and how far it counted."""

    bars: list[_RecordingBar] = []

    def __init__(self, iterable=None, total=None, desc=None, disable=False, **kwargs) -> None:
        self.iterable, self.total, self.desc, self.count = iterable, total, desc, 0
        _RecordingBar.bars.append(self)

    def __iter__(self):
        for x in self.iterable:
            self.count += 1
            yield x

    def update(self, n: int = 1) -> None:
        self.count += n

    def close(self) -> None:
        pass


def test_collect_bar_counts_to_the_prompts_it_collects(tiny_dir, tmp_path: Path, monkeypatch) -> None:
    """7 prompts in shards of 4 are 7 prompts, not 2 x 4 (a new user saw 180 prompts counted to 970)."""
    import tqdm.auto

    fam = load_family({"base": str(tiny_dir("llama"))})
    monkeypatch.setattr(tqdm.auto, "tqdm", _RecordingBar)
    _RecordingBar.bars = []
    task = _task(7)
    collect_activations(fam, task, "resid_post:0", "last", out=tmp_path / "s", shard_size=4, batch_size=3)
    (bar,) = [b for b in _RecordingBar.bars if b.desc == "collect base"]
    assert (bar.total, bar.count) == (len(task.examples), len(task.examples))
    # a resumed run collects only the missing (short) last shard: 3 prompts
    for f in (tmp_path / "s" / "base").glob("shard_00001.*"):
        f.unlink()
    _RecordingBar.bars = []
    collect_activations(fam, task, "resid_post:0", "last", out=tmp_path / "s", shard_size=4, batch_size=3)
    (bar,) = [b for b in _RecordingBar.bars if b.desc == "collect base"]
    assert (bar.total, bar.count) == (3, 3)
