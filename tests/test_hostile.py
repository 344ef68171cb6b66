"""Hostile input end to end: a corpus of broken and odd files (made at test time, tests/hostile.py)
through the CLI batch and the server's API, property-based tests of the readers and of
``unveil.remove`` (hypothesis), a schemathesis run against the live server's OpenAPI schema, 20
concurrent restores against a serial one, and the memory of an 8000x6000 photo."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hostile
from unveil.errors import UnveilError

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

UNVEIL = [sys.executable, "-m", "unveil"]
GiB = 1 << 30


def png(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, format="PNG")
    return b.getvalue()


@pytest.fixture(scope="module")
def masked_photo() -> np.ndarray:
    from unveil.occlusion import demo_photo

    return demo_photo()[1]


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- the corpus through the CLI batch and the API ------------------------------------------------------
def test_a_batch_goes_past_every_hostile_file_and_writes_every_good_one(tmp_path, masked_photo):
    """A folder of 3 good photos and the whole corpus: the good ones are restored, every bad one is
    named on one line, exit 2 at the end, no traceback, no input modified."""
    src = tmp_path / "in"
    src.mkdir()
    for name, data in hostile.corpus().items():
        (src / name).write_bytes(data)
    for k in range(3):
        Image.fromarray(np.roll(masked_photo, 7 * k, axis=1)).save(src / f"good{k}.png")
    before = digest(src)
    r = subprocess.run([*UNVEIL, "remove", str(src), "-o", str(tmp_path / "out"), "--model", "telea"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr + r.stdout
    assert digest(src) == before, "an input was modified"
    for k in range(3):
        assert (tmp_path / "out" / f"good{k}.png").exists()
    lines = (r.stdout + r.stderr).splitlines()
    skipped = 0
    for name in hostile.corpus():  # each file is on exactly one line: written, or skipped with why
        written = [ln for ln in lines if ln.startswith(f"{src / name} -> ")]
        refused = [ln for ln in lines if ln.startswith(f"unveil: skipped {src / name}: ")]
        assert len(written) + len(refused) == 1, (name, written, refused)
        skipped += len(refused)
    assert skipped > 60
    assert f"{skipped} of {skipped + 3 + sum(1 for ln in lines if ' -> ' in ln) - 3} photos failed" in r.stderr


def test_the_api_answers_every_hostile_file_with_a_4xx_in_plain_words(masked_photo):
    import warnings

    pytest.importorskip("httpx")
    with warnings.catch_warnings():  # starlette >= 1.x suggests httpx2; httpx works
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from unveil.serve import create_app

    good = png(masked_photo)
    seen = {}
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1:8765") as c:
        for name, data in hostile.corpus(seed=1).items():
            for path, files in (("/api/analyze", {"image": (name, data)}),
                                ("/api/restore", {"image": (name, data)}),
                                ("/api/restore", {"image": ("good.png", good), "mask": (name, data)})):
                r = c.post(path, files=files, data={"model": "telea"})
                seen[r.status_code] = seen.get(r.status_code, 0) + 1
                assert r.status_code < 500, (name, path, r.text)
                if r.status_code >= 400:
                    detail = r.json()["detail"]
                    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    assert sum(v for k, v in seen.items() if 400 <= k < 500) > 150, seen


# -- property-based: the readers and unveil.remove ---------------------------------------------------
MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"]
FORMATS = {"PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}, "TIFF": set(MODES) - {"YCbCr"},
           "JPEG": {"L", "RGB", "CMYK", "YCbCr"}, "WEBP": {"RGB", "RGBA"}, "BMP": {"1", "L", "P", "RGB"},
           "GIF": {"L", "P"}}


@st.composite
def image_files(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(sorted(FORMATS[fmt])))
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2 ** 16))
    arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    im = im.convert("RGBA") if mode == "LA" else im
    im = im.convert(mode) if mode not in ("I;16",) else Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
    kw = {}
    if draw(st.booleans()) and fmt in ("JPEG", "WEBP", "PNG", "TIFF"):
        ex = Image.Exif()
        ex[0x0112] = draw(st.integers(0, 10))
        kw["exif"] = ex.tobytes()
    b = io.BytesIO()
    im.save(b, format=fmt, **kw)
    orientation = kw and Image.open(io.BytesIO(b.getvalue())).getexif().get(0x0112, 1)
    return b.getvalue(), (w, h), orientation in (5, 6, 7, 8)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(image_files())
def test_any_image_file_is_read_as_rgb_or_refused_in_one_line(case):
    from unveil.io import read_image_info, read_mask

    data, (w, h), turned = case
    try:
        arr, _ = read_image_info(data, name="upload")
    except UnveilError as e:
        assert min(w, h) < 2 and "too small" in str(e), str(e)
        return
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    assert arr.shape[:2] == ((w, h) if turned else (h, w))
    mask = read_mask(data, arr.shape[:2])
    assert mask.dtype == bool and mask.shape == arr.shape[:2]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=600), st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a",
                                                 b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"II*\x00", b"BM"]))
def test_any_bytes_are_an_image_or_one_clear_error(tail, head):
    from unveil.io import read_image_info, read_mask

    for read in (lambda d: read_image_info(d, name="upload")[0], lambda d: read_mask(d, None, name="upload")):
        try:
            out = read(head + tail)
        except UnveilError as e:
            assert "\n" not in str(e)
        else:
            assert out.ndim in (2, 3)


@pytest.fixture(scope="module")
def demo_small(masked_photo):
    return masked_photo[::2, ::2].copy()


arrays = st.one_of(
    st.tuples(st.integers(0, 40), st.integers(0, 40), st.sampled_from([None, 1, 2, 3, 4, 5])).map(
        lambda t: np.zeros(t[:2] + ((t[2],) if t[2] else ()), np.uint8)),
    st.sampled_from([np.zeros((20, 20, 3), np.float32), np.zeros((20, 20, 3), np.int64), "nope", 3, None]),
)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(image=arrays)
def test_remove_on_any_array_returns_a_photo_or_one_clear_error(image):
    import unveil

    try:
        out = unveil.remove(image, model="telea", mask=np.ones(np.shape(image)[:2], bool) if np.ndim(image) >= 2 else None)
    except UnveilError as e:
        assert "\n" not in str(e)
    else:
        assert out.dtype == np.uint8 and out.shape[:2] == np.shape(image)[:2] and out.shape[2] == 3


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(mask=st.one_of(
    st.tuples(st.integers(0, 255), st.integers(0, 1), st.integers(0, 2 ** 16)),
    st.sampled_from(["bool", "float-nan", "float-big", "wrong-shape", "empty", "rgb"])),
       faces=st.sampled_from(["all", "largest", 0, "0", "1", -1, "x", [0], 2.5]),
       dilate=st.sampled_from([None, 0, 3, 32, 33, -1, 2.5, True]))
def test_remove_with_any_mask_and_options_changes_only_the_mask(demo_small, mask, faces, dilate):
    """Whatever the mask and options: a result that differs from the photo only inside the mask
    (by the documented mask rule), or one clear UnveilError."""
    import unveil

    h, w = demo_small.shape[:2]
    if isinstance(mask, tuple):
        level, dense, seed = mask
        rng = np.random.default_rng(seed)
        m = np.zeros((h, w), np.uint8)
        y, x = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 20))
        m[y:y + int(rng.integers(1, 60)), x:x + int(rng.integers(1, 60))] = level
        if dense:
            m = (rng.random((h, w)) < 0.01).astype(np.uint8) * level
        hole = m >= 128 if m.max() > 1 else m > 0  # the documented rule: 0/1 masks non-zero, else >= 128
    else:
        hole = np.zeros((h, w), bool)
        hole[60:100, 100:160] = True
        m = {"bool": hole, "float-nan": np.where(hole, np.nan, 0.0), "float-big": hole * 7.0,
             "wrong-shape": hole[:-1], "empty": np.zeros((h, w), bool),
             "rgb": np.repeat(hole[..., None], 3, 2).astype(np.uint8) * 255}[mask]
    try:
        res = unveil.remove(demo_small, model="telea", mask=m, faces=faces, dilate=dilate, return_details=True)
    except UnveilError as e:
        assert "\n" not in str(e)
        return
    changed = (res.image != demo_small).any(2)
    assert not (changed & ~res.mask).any()
    assert not (res.mask & ~hole).any(), "filled outside the mask"


# -- schemathesis against the live server --------------------------------------------------------------
def test_the_openapi_schema_holds_for_generated_requests(live_server):
    """schemathesis reads the running server's /openapi.json and generates requests for every
    operation (hypothesis drives it; its pytest plugin is not used): never a 5xx, and every answer
    has a documented status, content type and shape."""
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[dev]')")
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                   status_code_conformance)

    schema = schemathesis.openapi.from_url(live_server + "/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    seen = []
    for result in schema.get_all_operations():
        op = result.ok()
        codes = []

        @settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            codes.append(case.call_and_validate(checks=checks, timeout=120).status_code)

        run()
        seen.append((op.label, len(codes), sorted(set(codes))))
    labels = {label for label, _, _ in seen}
    assert {"GET /api/models", "POST /api/analyze", "POST /api/restore"} <= labels, seen
    assert all(n >= 1 for _, n, _ in seen), seen
    print("schemathesis:", seen)


# -- concurrency --------------------------------------------------------------------------------------
def test_20_concurrent_restores_are_all_answered_and_equal_a_serial_one(live_server, masked_photo):
    import httpx

    body = png(masked_photo)

    def restore():
        r = httpx.post(live_server + "/api/restore", files={"image": ("p.png", body, "image/png")}, timeout=600)
        return r.status_code, (r.json().get("image_png") if r.status_code == 200 else r.text)

    code, serial = restore()
    assert code == 200, serial
    results = [None] * 20

    def worker(k):
        results[k] = restore()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert [c for c, _ in results] == [200] * 20, [r[1][:200] for r in results if r[0] != 200]
    ref = np.asarray(Image.open(io.BytesIO(base64.b64decode(serial))))
    for _, b64 in results:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)))), ref)


# -- memory -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo_8000(tmp_path_factory, masked_photo) -> Path:
    """An 8000x6000 JPEG: the masked astronaut enlarged to 6000 px, on a grey canvas."""
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    canvas = Image.new("RGB", (8000, 6000), (120, 130, 140))
    canvas.paste(Image.fromarray(masked_photo).resize((6000, 6000), Image.BICUBIC), (1000, 0))
    canvas.save(path, quality=90)
    return path


#: runs the CLI and, at exit, prints the process's own peak resident memory (VmHWM belongs to the
#: address space made at exec; wait4's ru_maxrss would also count the pytest process the child was
#: spawned from, as Linux carries the old address space's high-water mark across exec)
MEASURED = ("import atexit, sys\n"
            "def hwm():\n"
            "    kb = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "    print(f'VmHWM {kb}', file=sys.stderr, flush=True)\n"
            "atexit.register(hwm)\n"
            "from unveil.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")


def measured(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", MEASURED, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ | {"OMP_NUM_THREADS": "2"}, **kw)


def peak_of(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    """Wait for a :func:`measured` process: (its peak resident bytes, its stderr)."""
    _, err = proc.communicate(timeout=timeout)
    lines = [ln for ln in err.splitlines() if ln.startswith("VmHWM ")]
    assert lines, f"no memory reading (exit {proc.returncode}): {err[-2000:]}"
    return int(lines[-1].split()[1]) * 1024, err


def test_remove_of_an_8000x6000_photo_peaks_under_1_5_GiB(photo_8000, tmp_path):
    proc = measured("remove", str(photo_8000), "-o", str(tmp_path))
    peak, err = peak_of(proc)
    assert proc.returncode == 0, err[-2000:]
    assert (tmp_path / "big.jpg").exists()
    print(f"unveil remove 8000x6000: peak {peak / GiB:.2f} GiB")
    assert peak <= 1.5 * GiB, f"peak {peak / GiB:.2f} GiB"


def test_the_server_peaks_under_3_GiB_with_4_concurrent_8000px_uploads(photo_8000):
    import httpx

    from conftest import free_port

    port = free_port()
    proc = measured("serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            try:
                if httpx.get(base + "/api/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.time() - t0 < 120, "the server did not start"
            time.sleep(0.5)
        body = photo_8000.read_bytes()
        codes = []

        def upload():
            r = httpx.post(base + "/api/restore", files={"image": ("big.jpg", body, "image/jpeg")}, timeout=900)
            codes.append((r.status_code, r.text[:300] if r.status_code != 200 else ""))

        threads = [threading.Thread(target=upload) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(900)
        assert [c for c, _ in codes] == [200] * 4, codes
    finally:
        if proc.poll() is None:
            proc.send_signal(2)  # Ctrl+C: uvicorn stops cleanly, then the reading is printed
    peak, _ = peak_of(proc, timeout=120)
    print(f"unveil serve, 4 concurrent 8000x6000 uploads: peak {peak / GiB:.2f} GiB")
    assert peak <= 3 * GiB, f"peak {peak / GiB:.2f} GiB"
