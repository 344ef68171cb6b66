"""`unveil serve` in a real browser: Debian's chromium driven by Playwright.

A uvicorn server runs ``create_app()`` on a free 127.0.0.1 port in a thread; the page uploads a
photo, the test paints the mask with the mouse (after Clear, with an undone stroke and an erased
one on the way), picks Telea, clicks Run, downloads the result and checks it pixel by pixel.
"""
from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path("/tmp/unveil_page.png")

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; "
                f".ci/run does it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install "
                                                             "-c constraints.txt playwright)")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    from unveil.serve import create_app

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    t0 = time.time()
    while not srv.started:
        if not th.is_alive() or time.time() - t0 > 30:
            pytest.fail("the uvicorn server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    th.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--headless", "--no-sandbox", "--disable-gpu",
                                    "--disable-background-networking", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    outside: list[str] = []
    # the page must fetch nothing beyond this server
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server, "data:", "blob:")) else None)
    pg.goto(server + "/")
    pg.wait_for_function("document.querySelectorAll('#model option').length > 0")
    yield pg
    ctx.close()
    assert not errors, f"errors in the page: {errors}"
    assert not outside, f"the page fetched from outside the server: {outside}"


def wait_state(page, want: str, timeout: float = 30_000) -> None:
    page.wait_for_function(f"['{want}', 'error'].includes(document.querySelector('#status').dataset.state)",
                           timeout=timeout)
    state = page.get_attribute("#status", "data-state")
    assert state == want, f"page error: {page.text_content('#error')}"


def to_page(page, W: int, H: int):
    box = page.locator("#canvas").bounding_box()
    return lambda x, y: (box["x"] + x * box["width"] / W, box["y"] + y * box["height"] / H)


def drag(page, conv, points) -> None:
    page.mouse.move(*conv(*points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*conv(*p), steps=8)
    page.mouse.up()


def set_size(page, size: int) -> None:
    page.eval_on_selector("#size", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", size)
    assert page.input_value("#size") == str(size)


def segment_distance(H: int, W: int, p0, p1) -> np.ndarray:
    """Distance of every pixel centre to the segment p0-p1 (photo pixels)."""
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    (ax, ay), (bx, by) = p0, p1
    dx, dy = bx - ax, by - ay
    t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(xx - (ax + t * dx), yy - (ay + t * dy))


def download_result(page) -> np.ndarray:
    with page.expect_download() as info:
        page.click("#download")
    dl = info.value
    assert dl.suggested_filename.endswith("-unveiled.png")
    return np.asarray(Image.open(dl.path()).convert("RGB"))


def test_paint_a_stroke_and_restore_only_inside_it(page, tmp_path):
    from skimage import data

    photo = data.astronaut()  # 512x512, one face (box about 178..273 x 83..178)
    H, W = photo.shape[:2]
    path = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(path)

    page.set_input_files("#file", str(path))
    wait_state(page, "ready")
    assert page.locator("#faces li").count() == 1
    assert page.eval_on_selector("#canvas", "c => [c.width, c.height]") == [W, H]

    page.click("#clear")
    page.select_option("#model", "telea")
    conv = to_page(page, W, H)
    size = 12
    set_size(page, size)
    # a stroke that is undone, and one that is erased: neither may change the result
    drag(page, conv, [(60, 400), (140, 420)])
    page.click("#undo")
    drag(page, conv, [(380, 60), (450, 80)])
    page.click("#eraser")
    set_size(page, 40)
    drag(page, conv, [(370, 57), (460, 83)])
    page.click("#brush")
    set_size(page, size)
    # the stroke that counts: across the face, below the eyes
    p0, p1 = (195.0, 128.0), (255.0, 150.0)
    drag(page, conv, [p0, ((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2), p1])

    page.click("#run")
    wait_state(page, "done")
    assert page.is_visible("#result")
    out = download_result(page)

    assert out.shape == photo.shape
    changed = (out != photo).any(2)
    d = segment_distance(H, W, p0, p1)
    inner, outer = d <= size / 2 - 1.5, d <= size / 2 + 3
    assert not (changed & ~outer).any(), f"{int((changed & ~outer).sum())} pixels changed outside the stroke"
    assert changed[inner].mean() > 0.5, f"only {changed[inner].mean():.0%} of the stroke changed"
    # the result shown in the page is the downloaded one; the before/after slider moves its divider
    box = page.locator("#compare").bounding_box()
    assert abs(box["width"] / box["height"] - W / H) < 0.02
    page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + box["height"] / 2)
    assert page.eval_on_selector("#compare", "el => el.style.getPropertyValue('--pos')") == "30%"
    assert page.input_value("#slider") == "30"
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_errors_are_shown_on_the_page(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    page.set_input_files("#file", str(bad))
    page.wait_for_function("document.querySelector('#status').dataset.state === 'error'")
    assert page.is_visible("#error")
    assert "cannot display" in page.text_content("#error") or "not an image" in page.text_content("#error")


def test_real_photo_with_the_automatic_mask(page, server):
    from unveil.data.paths import DATA_ENV, DEFAULT_ROOT

    folder = Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT) / "real_masked" / "facemask_detection"
    photos = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if not photos:
        pytest.skip(f"no real masked photos at {folder} (set {DATA_ENV} to ../shared/data)")
    path = folder / "0129.jpg" if (folder / "0129.jpg").exists() else photos[0]
    photo = np.asarray(Image.open(path).convert("RGB"))

    page.set_input_files("#file", str(path))
    wait_state(page, "ready")
    assert page.locator("#faces li").count() >= 1, "no face found on the real photo"
    page.screenshot(path=str(SCREENSHOT.with_name("unveil_page_real.png")))
    page.select_option("#model", "telea")
    page.click("#run")
    wait_state(page, "done")
    out = download_result(page)
    assert out.shape == photo.shape
    changed = (out != photo).any(2)
    # what changed is what the server's automatic mask covers, nothing else
    boundary = "unveil-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(server + "/api/analyze", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        mask_png = json.load(r)["mask_png"]
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(mask_png))).convert("L")) > 127
    assert mask.mean() > 0.02, "the automatic mask is (nearly) empty on a masked face"
    assert not (changed & ~mask).any()
    assert changed[mask].mean() > 0.5
