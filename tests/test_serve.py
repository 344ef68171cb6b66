"""`unveil serve`: the JSON API through FastAPI's TestClient, its limits and errors, and the CLI."""
from __future__ import annotations

import base64
import io
import socket
import warnings

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="fastapi is not installed (pip install -c constraints.txt fastapi)")
pytest.importorskip("httpx", reason="httpx is not installed (needed by FastAPI's TestClient)")
with warnings.catch_warnings():  # starlette >= 1.x suggests httpx2; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # 512x512 RGB, one face


@pytest.fixture(scope="module")
def client():
    from unveil.serve import create_app

    with TestClient(create_app(max_upload_mb=1, max_side=1000), raise_server_exceptions=False,
                    base_url="http://127.0.0.1:8765") as c:
        yield c


def files(image: bytes, mask: bytes | None = None, name: str = "photo.png") -> dict:
    f = {"image": (name, image, "image/png")}
    if mask is not None:
        f["mask"] = ("mask.png", mask, "image/png")
    return f


def test_models_lists_the_inpainters_and_the_default(client):
    from unveil import models

    r = client.get("/api/models")
    assert r.status_code == 200
    body = r.json()
    names = [m["name"] for m in body["models"]]
    assert names == ["auto"] + models.available("inpainter")  # auto: the pipeline's choice per hole
    assert body["default"] == "auto" and "telea" in names
    assert [m["name"] for m in body["models"] if m["default"]] == [body["default"]]
    assert body["max_upload_mb"] == 1 and body["max_side"] == 1000


def test_analyze_finds_the_face_and_a_photo_sized_mask(client, photo):
    r = client.post("/api/analyze", files=files(png(photo)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (512, 512)
    assert len(body["faces"]) == 1
    x0, y0, x1, y1 = body["faces"][0]["box"]
    assert 150 < x0 < x1 < 300 and 60 < y0 < y1 < 200 and body["faces"][0]["score"] > 0.5
    mask = decode(body["mask_png"])
    assert mask.shape == (512, 512)
    assert body["mask_share"] == pytest.approx((mask > 0).mean(), abs=1e-4)


def test_restore_with_a_user_mask_changes_only_the_mask(client, photo):
    hole = np.zeros(photo.shape[:2], bool)
    hole[125:140, 190:260] = True  # across the face
    hole[400:420, 40:90] = True    # and away from it (filled locally)
    r = client.post("/api/restore", files=files(png(photo), png(hole.astype(np.uint8) * 255)),
                    data={"model": "telea"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "telea" and body["segmenter"] is None
    out = decode(body["image_png"])
    assert out.shape == photo.shape and out.dtype == np.uint8
    changed = (out != photo).any(2)
    assert not (changed & ~hole).any()
    assert changed[hole].mean() > 0.5
    filled = decode(body["mask_png"]) > 0
    assert (filled == hole).all()
    assert body["faces"][0]["restored"] and body["faces"][0]["mask_source"] == "user"
    assert body["filled_share"] == pytest.approx(hole.mean(), abs=1e-4)


def test_restore_accepts_an_rgba_mask_transparent_is_kept(client, photo):
    rgba = np.zeros((*photo.shape[:2], 4), np.uint8)  # what the page's canvas sends
    rgba[130:140, 200:250] = 255
    r = client.post("/api/restore", files=files(png(photo), png(rgba)), data={"model": "telea"})
    assert r.status_code == 200, r.text
    assert (decode(r.json()["mask_png"]) > 0).sum() == 10 * 50


def test_restore_without_a_mask_uses_the_automatic_one(client, photo):
    r = client.post("/api/restore", files=files(png(photo)), data={"model": "telea", "faces": "largest"})
    assert r.status_code == 200, r.text
    body = r.json()
    out, filled = decode(body["image_png"]), decode(body["mask_png"]) > 0
    assert not ((out != photo).any(2) & ~filled).any()
    assert body["segmenter"] == "soclnet"


@pytest.mark.parametrize("case, status, words", [
    ("not an image", 415, "not an image"),
    ("empty file", 422, "empty"),
    ("oversize", 413, "limit is 1 MB"),
    ("too many pixels", 413, "1000 pixels a side"),
    ("truncated", 422, "damaged or truncated"),
])
def test_bad_uploads_get_a_clear_message(client, photo, case, status, words):
    data = {"not an image": b"hello, this is text", "empty file": b"",
            "oversize": b"\x89PNG" + bytes(2 * 1024 * 1024),
            "too many pixels": png(np.zeros((10, 1200, 3), np.uint8)),
            "truncated": png(photo)[:5000]}[case]
    for path in ("/api/analyze", "/api/restore"):
        r = client.post(path, files=files(data, name="upload.png"))
        assert r.status_code == status, (path, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and words in detail, detail
        assert "Traceback" not in detail


def test_oversize_body_is_refused_before_parsing(client):
    big = bytes(4 * 1024 * 1024)  # over twice the per-file limit: refused from Content-Length
    r = client.post("/api/analyze", content=big, headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413
    assert "limit is 1 MB" in r.json()["detail"]


def test_mask_errors(client, photo):
    image = png(photo)
    r = client.post("/api/restore", files=files(image, png(np.full((100, 80), 255, np.uint8))))
    assert r.status_code == 422 and "80x100" in r.json()["detail"] and "512x512" in r.json()["detail"]
    r = client.post("/api/restore", files=files(image, png(np.zeros((512, 512), np.uint8))))
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    r = client.post("/api/restore", files=files(image, b"not a png"))
    assert r.status_code == 415 and "mask" in r.json()["detail"]


def test_request_errors(client, photo):
    r = client.post("/api/restore", files=files(png(photo)), data={"model": "nonesuch"})
    assert r.status_code == 422 and "unknown model 'nonesuch'" in r.json()["detail"]
    assert "telea" in r.json()["detail"]
    r = client.post("/api/restore", files=files(png(photo)), data={"model": "telea", "faces": "3"})
    assert r.status_code == 422 and "face 3 requested" in r.json()["detail"]
    r = client.post("/api/analyze")
    assert r.status_code == 422 and r.json()["detail"] == "image: missing"


def test_no_face_is_a_clear_error(client):
    sky = np.full((200, 300, 3), (120, 160, 220), np.uint8)
    r = client.post("/api/restore", files=files(png(sky)), data={"model": "telea"})
    assert r.status_code == 422 and "no face" in r.json()["detail"]
    r = client.post("/api/analyze", files=files(png(sky)))
    assert r.status_code == 200 and r.json()["faces"] == [] and r.json()["mask_share"] == 0


def test_openapi_schema_and_the_page(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) >= {"/api/models", "/api/analyze", "/api/restore"}
    assert "get" in paths["/api/models"] and "post" in paths["/api/analyze"] and "post" in paths["/api/restore"]
    for p in ("/api/analyze", "/api/restore"):
        assert {"200", "413", "415", "422"} <= set(paths[p]["post"]["responses"])
    assert {"AnalyzeOut", "RestoreOut", "ModelsOut", "ErrorOut"} <= set(schema["components"]["schemas"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "POST /api/restore" in docs.text
    assert "<script" not in docs.text and "http" not in docs.text.replace('href="/', "")  # offline
    assert "`" not in docs.text and "<code>/api/analyze</code>" in docs.text  # backticks become code
    assert "background:#14161a" in docs.text  # the page's dark theme
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for el in ("file", "canvas", "brush", "eraser", "pan", "size", "undo", "redo", "clear", "model", "run",
               "result", "download", "error", "status", "threshold", "dilate", "zoom-in", "zoom-fit", "again",
               "progress", "coverage"):
        assert f'id="{el}"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text


def test_create_app_refuses_an_unknown_default_model():
    from unveil.errors import UnveilError
    from unveil.serve import create_app

    with pytest.raises(UnveilError, match="not an inpainter"):
        create_app(default_model="soclnet")


def test_cli_serve(run_cli):
    code, out, _ = run_cli("serve", "--help")
    assert code == 0 and "--port" in out and "--max-upload-mb" in out
    code, _, err = run_cli("serve", "--model", "nonesuch")
    assert code == 2 and "nonesuch" in err
    with socket.socket() as s:  # a port already taken: a clear message, not a traceback
        s.bind(("127.0.0.1", 0))
        s.listen()
        code, _, err = run_cli("serve", "--port", s.getsockname()[1], "--model", "telea")
    assert code == 2 and "in use" in err


def test_foreign_hosts_and_cross_origin_posts_are_refused(client, photo):
    """DNS rebinding (a foreign name pointing at 127.0.0.1) and cross-site posts never reach the
    API; the page's own origin and clients without an Origin header are served."""
    small = png(photo[::4, ::4].copy())
    r = client.get("/api/models", headers={"Host": "evil.example:8765"})
    assert r.status_code == 400
    r = client.post("/api/analyze", files=files(small), headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
    r = client.post("/api/analyze", files=files(small), headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = client.post("/api/analyze", files=files(small), headers={"Origin": "http://127.0.0.1:8765"})
    assert r.status_code == 200, r.text
    assert client.post("/api/analyze", files=files(small)).status_code == 200  # no Origin: an API client
    from unveil.serve.app import allowed_hosts

    assert "192.168.1.5" in allowed_hosts("192.168.1.5") and allowed_hosts("0.0.0.0") is None


def test_busy_server_answers_503_and_a_500_closes_the_connection(photo, monkeypatch):
    import unveil.serve.app as appmod

    small = png(photo[::4, ::4].copy())
    monkeypatch.setattr(appmod, "MAX_ADMITTED", 0)
    with TestClient(appmod.create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        r = c.post("/api/analyze", files=files(small))
        assert r.status_code == 503 and r.headers["retry-after"] == "5" and "busy" in r.json()["detail"]
    monkeypatch.setattr(appmod, "MAX_ADMITTED", 24)
    app = appmod.create_app()

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.state.engine, "restorer", broken)
    with TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        r = c.post("/api/analyze", files=files(small))
        assert r.status_code == 500 and r.headers["connection"] == "close" and "boom" in r.json()["detail"]


def test_a_mask_larger_than_the_photo_is_refused_before_decoding(client, photo):
    import zlib

    w = h = 5000  # a PNG that declares 5000x5000 in a few hundred bytes
    raw = zlib.compress(b"".join(b"\x00" + bytes(w) for _ in range(h)), 9)

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    big = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])) \
        + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    r = client.post("/api/restore", files=files(png(photo[::4, ::4].copy()), big))
    assert r.status_code == 422 and "larger than the image" in r.json()["detail"]


def test_analyze_threshold_and_dilation_shape_the_automatic_mask(client):
    """The page's threshold and grow controls: a lower threshold or more growth finds more, the
    face selection decides whose occluder is found, and a bad value is a plain 422."""
    from unveil.occlusion import demo_photo

    _, masked, occ, _ = demo_photo()
    body = png(masked)
    share = {}
    for key, fields in {"default": {}, "tight": {"threshold": "0.9", "dilate": "0"},
                        "loose": {"threshold": "0.2", "dilate": "16"}}.items():
        r = client.post("/api/analyze", files=files(body), data=fields)
        assert r.status_code == 200, r.text
        mask = decode(r.json()["mask_png"]) > 0
        share[key] = mask.mean()
        if key == "default":
            assert (occ & ~mask).sum() / occ.sum() < 0.05  # the drawn mask, straps included
    assert share["tight"] < share["default"] < share["loose"], share
    r = client.post("/api/analyze", files=files(body), data={"faces": "1"})
    assert r.status_code == 422 and "face 1 requested but 1 found" in r.json()["detail"]
    for field, value, words in [("threshold", "1.5", "threshold must be between 0 and 1"),
                                ("dilate", "99", "dilate must be 0..32"),
                                ("threshold", "nan", "threshold")]:
        r = client.post("/api/analyze", files=files(body), data={field: value})
        assert r.status_code == 422 and words in r.json()["detail"], (field, value, r.text)
    r = client.post("/api/restore", files=files(body), data={"model": "telea", "dilate": "-1"})
    assert r.status_code == 422 and "dilate must be 0..32" in r.json()["detail"]


def test_a_restoration_past_the_time_limit_is_stopped_with_a_message(photo):
    from unveil.serve import create_app

    with TestClient(create_app(time_limit=1e-6), raise_server_exceptions=False,
                    base_url="http://127.0.0.1:8765") as c:
        r = c.post("/api/restore", files=files(png(photo)), data={"model": "telea"})
    assert r.status_code == 422, r.text
    assert "longer than this server's limit of 1e-06 s" in r.json()["detail"]
    with pytest.raises(Exception, match="time_limit must be positive"):
        create_app(time_limit=0)
