"""Scale-out: the batch manifest and --resume, the Ray engine (a local Ray in a subprocess with a
time limit) against the local one, and training on two gloo processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from unveil.batch import Manifest, collect_photos, run_batch
from unveil.pipeline import Restorer

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, timeout=600):
    """The CLI in a fresh interpreter (Ray and the elastic launcher start processes of their own)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "unveil", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT, env=env)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def real_dir(data_root, tmp_path_factory):
    """Four real masked photos and one broken file."""
    d = tmp_path_factory.mktemp("real")
    src = sorted((data_root / "real_masked" / "facemask_detection").glob("*.jpg"))[:4]
    for f in src:
        (d / f.name).write_bytes(f.read_bytes())
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    return d


@pytest.fixture(scope="module")
def telea():
    return Restorer(segmenter="soclnet", inpainter="telea")


def _quiet(**kw):
    return dict(progress=False, say=lambda _: None, **kw)


def test_manifest_records_every_photo_and_resume_skips_the_done(real_dir, telea, tmp_path):
    out = tmp_path / "out"
    r = run_batch(telea, collect_photos([real_dir]), out, **_quiet())
    lines = [json.loads(ln) for ln in (out / "manifest.jsonl").read_text().splitlines()]
    assert r.done == 4 and len(lines) == 5
    by_status = {s: [e for e in lines if e["status"] == s] for s in ("done", "failed")}
    assert len(by_status["done"]) == 4 and len(by_status["failed"]) == 1
    bad = by_status["failed"][0]
    assert bad["input"] == str((real_dir / "broken.png").resolve()) and "not an image" in bad["error"]
    assert not bad["error"].startswith(str(real_dir))  # the path is said once, in "input"
    for e in by_status["done"]:
        assert Path(e["output"]).exists() and e["faces"] >= 1 and e["seconds"] > 0 and e["error"] is None
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*.jpg")}
    again = run_batch(telea, collect_photos([real_dir]), out, **_quiet(resume=True))
    assert again.resumed == 4 and again.done == 0 and len(again.failed) == 1  # the broken one is retried
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.jpg")} == stamps
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 6
    no_resume = run_batch(telea, collect_photos([real_dir]), out, **_quiet())
    assert no_resume.done == 0 and all("already exists" in f or "broken" in f for f in no_resume.failed)


def test_resume_redoes_a_photo_whose_output_is_gone_and_survives_a_cut_line(real_dir, telea, tmp_path):
    out = tmp_path / "out"
    items = collect_photos(sorted(real_dir.glob("*.jpg"))[:2])
    run_batch(telea, items, out, **_quiet())
    first = Path(json.loads((out / "manifest.jsonl").read_text().splitlines()[0])["output"])
    first.unlink()
    with open(out / "manifest.jsonl", "a") as f:
        f.write('{"input": "cut sho')  # a run killed in the middle of a line
    r = run_batch(telea, items, out, **_quiet(resume=True))
    assert r.resumed == 1 and r.done == 1 and first.exists()
    assert len(Manifest(out).done()) == 2


def test_lists_of_photos_and_file_uris(real_dir, telea, tmp_path):
    a, b = sorted(real_dir.glob("*.jpg"))[:2]
    (tmp_path / "x" / "sub").mkdir(parents=True)
    (tmp_path / "x" / a.name).write_bytes(a.read_bytes())
    (tmp_path / "x" / "sub" / a.name).write_bytes(a.read_bytes())
    lst = tmp_path / "photos.txt"
    lst.write_text(f"# two photos\n{tmp_path / 'x' / a.name}\n\nx/sub/{a.name}\n")  # absolute, or from the list
    items = collect_photos([lst])
    assert [rel.as_posix() for _, rel in items] == [a.name, f"sub/{a.name}"]  # below the common folder
    uri_items = collect_photos([f"file://{real_dir}"])
    assert [rel.name for _, rel in uri_items] == sorted(p.name for p in real_dir.iterdir() if p.suffix in (".jpg", ".png"))
    assert all(str(src).startswith("file://") for src, _ in uri_items)
    r = run_batch(telea, [(f"file://{b}", Path(b.name))], tmp_path / "u", **_quiet())
    local = run_batch(telea, [(b, Path(b.name))], tmp_path / "l", **_quiet())
    assert r.done == local.done == 1
    assert (tmp_path / "u" / b.name).read_bytes() == (tmp_path / "l" / b.name).read_bytes()
    lst.write_text(f"{a}\nnot/there.jpg\n")
    with pytest.raises(Exception, match="not found"):
        collect_photos([lst])


def test_ray_engine_gives_the_local_engines_pixels(real_dir, tmp_path):
    """A local Ray (this machine's CPUs) with two actors: the same output bytes as the local engine,
    one manifest line per photo, and a --resume that rewrites nothing."""
    pytest.importorskip("ray")
    a, b = tmp_path / "A", tmp_path / "B"
    code, _, err = _cli("remove", real_dir, "-o", a, "--model", "telea", "--threads", "1")
    assert code == 2 and "1 of 5 photos failed" in err
    code, out, err = _cli("remove", real_dir, "-o", b, "--model", "telea", "--engine", "ray", "--workers", "2",
                          timeout=300)
    assert code == 2 and "1 of 5 photos failed" in err and "Traceback" not in err, err[-2000:]
    outs = sorted(p.name for p in a.glob("*.jpg"))
    assert len(outs) == 4 and outs == sorted(p.name for p in b.glob("*.jpg"))
    for n in outs:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n
    lines = [json.loads(ln) for ln in (b / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and sorted(e["status"] for e in lines) == ["done"] * 4 + ["failed"]
    stamps = {p: p.stat().st_mtime_ns for p in b.iterdir()}
    code, out, err = _cli("remove", real_dir, "-o", b, "--model", "telea", "--engine", "ray", "--workers", "2",
                          "--resume", timeout=300)
    assert "4 already done" in out + err
    assert {p: p.stat().st_mtime_ns for p in b.iterdir() if p.name != "manifest.jsonl"} == \
        {p: t for p, t in stamps.items() if p.name != "manifest.jsonl"}
    assert len((b / "manifest.jsonl").read_text().splitlines()) == 6  # only the broken photo, tried again


def test_engine_options_are_checked_up_front(run_cli, real_dir, tmp_path):
    code, _, err = run_cli("remove", real_dir, "-o", tmp_path / "o", "--engine", "spark")
    assert code == 2 and "--engine must be local or ray" in err
    code, _, err = run_cli("remove", real_dir, "-o", tmp_path / "o", "--workers", "2")
    assert code == 2 and "need --engine ray" in err
    code, _, err = run_cli("remove", real_dir, "-o", tmp_path / "o", "--engine", "ray", "--model", "soclnet")
    assert code == 2 and "not an inpainter" in err


# -- training on several processes -----------------------------------------------------------------

class _Task:
    """The parts of a built task that the engine's data-parallel sync touches."""

    def __init__(self, lr=0.1):
        torch.manual_seed(int(os.environ.get("RANK", 0)) + 1)  # different starts: the broadcast evens them
        self.model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        self.extra = torch.nn.Linear(2, 1)  # gets a gradient on rank 1 only
        self.opt = torch.optim.SGD(list(self.model.parameters()) + list(self.extra.parameters()), lr=lr)
        self.state = {"extra": self.extra}


def _data():
    g = torch.Generator().manual_seed(7)
    return torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g), torch.randn(4, 2, generator=g)


def _rank(rank: int, store: str, out: str) -> None:
    import torch.distributed as dist

    from unveil.train.distributed import leave, sync_task

    os.environ["RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    t = _Task()
    sync_task(t)
    x, y, z = _data()
    xs, ys = x[rank * 4:(rank + 1) * 4], y[rank * 4:(rank + 1) * 4]
    loss = torch.nn.functional.mse_loss(t.model(xs), ys)
    if rank == 1:
        loss = loss + 2 * t.extra(z).mean()
    loss.backward()
    t.opt.step()
    np.save(out, torch.cat([p.detach().reshape(-1) for p in t.opt.param_groups[0]["params"]]).numpy())
    leave()
    # out of the process without the interpreter's teardown: under a loaded CI machine a C++ thread of
    # the process group was once still joinable when its static destructor ran ("terminate called
    # without an active exception", SIGABRT) after the step had been written
    os._exit(0)


def test_two_gloo_ranks_take_the_one_process_step(tmp_path):
    """Two ranks with half the batch each end a step with the parameters one process gets from the
    whole batch (gradients averaged; a gradient found on one rank only is halved)."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_rank, args=(r, str(tmp_path / "store"), str(tmp_path / f"rank{r}.npy")))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    r0, r1 = np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy")
    os.environ.pop("RANK", None)
    torch.manual_seed(1)  # rank 0's start, which the broadcast gave both ranks
    t = _Task()
    x, y, z = _data()
    loss = (torch.nn.functional.mse_loss(t.model(x[:4]), y[:4]) + torch.nn.functional.mse_loss(t.model(x[4:]), y[4:])
            + 2 * t.extra(z).mean()) / 2
    loss.backward()
    t.opt.step()
    one = torch.cat([p.detach().reshape(-1) for p in t.opt.param_groups[0]["params"]]).numpy()
    np.testing.assert_allclose(r0, r1, rtol=0, atol=0)
    np.testing.assert_allclose(r0, one, rtol=1e-5, atol=1e-6)


def test_train_on_two_processes_writes_weights_and_resumes(data_root, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _cli("train", "ifacenet-fidelity", "--nproc", "2", "--steps", "4", "--batch", "2", "--size", "64",
                             "--out", out, "--set", "val_faces=8")
    assert code == 0, err[-3000:]
    assert (out / "ifacenet_fidelity.safetensors").exists() and "trained 4 steps" in stdout
    from safetensors import safe_open

    with safe_open(out / "ifacenet_fidelity.safetensors", "pt") as f:
        meta = f.metadata()
    assert "x 2 processes" in json.dumps(meta)
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [4]  # rank 0 alone logs
    code, stdout, err = _cli("train", "ifacenet-fidelity", "--nproc", "2", "--steps", "6", "--batch", "2", "--size", "64",
                             "--out", out, "--set", "val_faces=8")
    assert code == 0, err[-3000:]
    assert "trained 6 steps" in stdout
    assert [json.loads(ln)["step"] for ln in (out / "log.jsonl").read_text().splitlines()] == [4, 6]
    code, _, err = _cli("train", "ifacenet", "--nproc", "0", "--steps", "1", "--out", tmp_path / "x")
    assert code == 2 and "--nproc must be at least 1" in err
