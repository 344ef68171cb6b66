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


@pytest.fixture(scope="module")
def server(live_server):
    return live_server


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
    # a 4xx answer is an API refusal the page shows to the user; Chromium also logs it
    refused = "Failed to load resource: the server responded with a status of 4"
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and not m.text.startswith(refused)
          else None)
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


SCREENS = Path(os.environ.get("UNVEIL_SCREENSHOTS", "/tmp/unveil_screens"))


def page_mask(page) -> np.ndarray:
    """The mask the page holds (what Run sends), as a bool array."""
    url = page.evaluate("state.mask.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))[..., 3] > 127


def coverage(page) -> float:
    return float(page.get_attribute("#coverage", "data-share"))


def test_threshold_redo_zoom_and_a_second_pass_on_the_result(page, tmp_path):
    """The tools a demanding user reaches for: the detection threshold finds the mask again (undo
    and redo step through it), zoom and pan paint exactly where the cursor is, and the result can
    be painted on and run again. Screenshots of each stage go to $UNVEIL_SCREENSHOTS."""
    from unveil.occlusion import demo_photo

    SCREENS.mkdir(parents=True, exist_ok=True)
    _, masked, occ, _ = demo_photo()  # the public-domain astronaut wearing a drawn surgical mask
    H, W = masked.shape[:2]
    path = tmp_path / "astronaut-masked.png"
    Image.fromarray(masked).save(path)
    page.set_input_files("#file", str(path))
    wait_state(page, "ready")
    auto = page_mask(page)
    assert (occ & ~auto).sum() / occ.sum() < 0.05  # the automatic mask holds the drawn one
    assert coverage(page) == pytest.approx(auto.mean(), abs=0.002)  # the live coverage line
    page.screenshot(path=str(SCREENS / "1-photo-and-mask.png"))

    # a stricter threshold finds less; undo goes back to the first mask, redo forward again
    page.eval_on_selector("#threshold", "el => { el.value = '0.95'; el.dispatchEvent(new Event('input')); "
                                        "el.dispatchEvent(new Event('change')); }")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Mask found again')")
    wait_state(page, "ready")
    strict = coverage(page)
    assert strict < auto.mean()
    page.click("#undo")
    assert coverage(page) == pytest.approx(auto.mean(), abs=0.002)
    page.click("#redo")
    assert coverage(page) == pytest.approx(strict, abs=1e-5)
    page.click("#undo")
    assert page.is_disabled("#undo") and page.is_enabled("#redo")  # back at the first mask

    # zoom in three steps about the centre of the view: the canvas outgrows the viewport
    z0 = float(page.get_attribute("#zoom-value", "data-zoom"))
    for _ in range(3):
        page.click("#zoom-in")
    z1 = float(page.get_attribute("#zoom-value", "data-zoom"))
    assert z1 == pytest.approx(z0 * 1.5 ** 3, rel=1e-3)
    vp = page.locator("#viewport").bounding_box()
    box = page.locator("#canvas").bounding_box()
    assert box["width"] > vp["width"] + 100
    # pan: the pan tool drags the view
    page.click("#pan")
    before = page.eval_on_selector("#viewport", "v => [v.scrollLeft, v.scrollTop]")
    page.mouse.move(vp["x"] + vp["width"] / 2, vp["y"] + vp["height"] / 2)
    page.mouse.down()
    page.mouse.move(vp["x"] + vp["width"] / 2 - 120, vp["y"] + vp["height"] / 2 - 60, steps=6)
    page.mouse.up()
    after = page.eval_on_selector("#viewport", "v => [v.scrollLeft, v.scrollTop]")
    assert after[0] - before[0] == pytest.approx(120, abs=2) and after[1] - before[1] == pytest.approx(60, abs=2)
    # paint while zoomed, in view: the stroke lands on the photo pixels under the cursor
    page.click("#brush")
    set_size(page, 10)
    box = page.locator("#canvas").bounding_box()
    cx, cy = vp["x"] + vp["width"] / 2, vp["y"] + vp["height"] / 2
    p0 = ((cx - box["x"]) * W / box["width"], (cy - box["y"]) * H / box["height"])
    p1 = (p0[0] + 25, p0[1] + 6)
    assert not auto[int(p0[1]) - 8:int(p1[1]) + 8, int(p0[0]) - 8:int(p1[0]) + 8].any(), "stroke site overlaps the mask"
    mask_before = page_mask(page)
    drag(page, to_page(page, W, H), [p0, p1])
    painted = page_mask(page) & ~mask_before
    d = segment_distance(H, W, p0, p1)
    assert painted[d <= 3.5].mean() > 0.9 and not (painted & (d > 7.5)).any()
    page.screenshot(path=str(SCREENS / "2-zoomed-painting.png"))
    page.click("#zoom-fit")
    assert float(page.get_attribute("#zoom-value", "data-zoom")) == pytest.approx(z0, rel=1e-3)

    sent = page_mask(page)
    page.click("#run")  # the default: the pipeline's choice per kind of hole
    wait_state(page, "done", timeout=120_000)
    first = download_result(page)
    changed = (first != masked).any(2)
    assert not (changed & ~sent).any(), "pixels changed outside the mask the page sent"
    assert changed[occ].mean() > 0.9 and changed[d <= 3.5].mean() > 0.5
    page.screenshot(path=str(SCREENS / "3-after.png"), full_page=True)

    # second pass: the result is the photo now; a new stroke changes only its own pixels
    page.click("#again")
    wait_state(page, "ready")
    assert "Pass 2" in page.text_content("#status") and page.is_visible("#original")
    page.click("#clear")
    page.select_option("#model", "telea")
    set_size(page, 12)
    q0, q1 = (330.0, 420.0), (400.0, 440.0)
    drag(page, to_page(page, W, H), [q0, q1])
    page.click("#run")
    wait_state(page, "done")
    assert "(pass 2)" in page.text_content("#status")
    second = download_result(page)
    moved = (second != first).any(2)
    dq = segment_distance(H, W, q0, q1)
    assert moved.any() and not (moved & (dq > 12 / 2 + 3)).any()
    assert (second[changed & (dq > 12)] == first[changed & (dq > 12)]).all()  # the first pass stays
    assert page.eval_on_selector("#before", "img => img.src") == page.evaluate("state.original.url")
    page.click("#original")
    wait_state(page, "ready")
    assert "Pass" not in page.text_content("#status") and page.is_hidden("#original")


def test_an_error_after_a_run_is_in_view_and_marks_the_old_result(page, tmp_path):
    from skimage import data

    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    page.set_input_files("#file", str(path))
    wait_state(page, "ready")
    page.click("#clear")
    page.select_option("#model", "telea")
    drag(page, to_page(page, 512, 512), [(200, 130), (250, 150)])
    page.click("#run")
    wait_state(page, "done")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.route("**/api/restore", lambda route: route.fulfill(
        status=422, content_type="application/json", body=json.dumps({"detail": "the test says no"})))
    page.click("#run")
    wait_state(page, "error")
    box = page.locator("#error").bounding_box()
    view = page.viewport_size
    assert box and 0 <= box["y"] and box["y"] + box["height"] <= view["height"], "the message is out of view"
    assert "the test says no (HTTP 422)" in page.text_content("#error")
    assert page.is_visible("#stale")  # the result shown is the previous run's, and says so
    page.click("#error-close")
    assert page.is_hidden("#error")


def test_on_a_phone_the_photo_comes_before_the_controls(browser, server, tmp_path):
    from skimage import data

    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = ctx.new_page()
    pg.goto(server + "/")
    pg.wait_for_function("document.querySelectorAll('#model option').length > 0")
    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    pg.set_input_files("#file", str(path))
    wait_state(pg, "ready")
    editor, controls = pg.locator("#editor").bounding_box(), pg.locator("#controls").bounding_box()
    assert editor["y"] < controls["y"], "on a phone the photo must come first"
    canvas = pg.locator("#canvas").bounding_box()
    assert canvas["width"] <= 390 and canvas["x"] >= 0  # the photo fits the screen's width
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    SCREENS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SCREENS / "4-phone.png"))
    ctx.close()
