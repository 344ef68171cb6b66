"""The FastAPI app behind ``unveil serve``: a static page and a JSON API over :mod:`unveil.pipeline`.

Endpoints (all documented in the OpenAPI schema ``/openapi.json``, rendered offline at ``/docs``):

* ``GET /api/models``   the inpainters, with their measured numbers, and the default one
* ``POST /api/analyze`` photo -> its size, the detected faces and the automatic occluder mask
* ``POST /api/restore`` photo (+ optional mask, model, faces) -> the restored photo, the filled
  mask and the per-face report

Images travel as base64 PNG in the JSON answers; masks are white where a pixel is (to be) filled.
Every refusal is a JSON ``{"detail": "<plain words>"}`` with a 4xx status: 413 for an upload or
image that is too large, 415 for a file that is not an image, 422 for the rest (mask of another
size, empty mask, no face, unknown model...). Restorations run one at a time in a worker thread,
so the event loop keeps serving the page while the CPU works.
"""
from __future__ import annotations

import base64
import contextlib
import io
import logging
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from unveil.errors import UnveilError

log = logging.getLogger("unveil.serve")

STATIC = Path(__file__).resolve().parent / "static"
MB = 1024 * 1024
#: the segmenter that finds occluders for the automatic mask
SEGMENTER = "soclnet"


# -- the answers' shapes (they make the OpenAPI schema) ---------------------------------------------
class ErrorOut(BaseModel):
    detail: str = Field(..., description="What went wrong, in plain words.")


class ModelOut(BaseModel):
    name: str
    summary: str = ""
    default: bool = False
    psnr: Optional[float] = Field(None, description="PSNR (dB) on 10-60 % holes, from `make bench`.")
    ssim: Optional[float] = None
    lpips: Optional[float] = None
    ms: Optional[float] = Field(None, description="Milliseconds per 256 px face on the bench CPU.")


class ModelsOut(BaseModel):
    default: str = Field(..., description="The inpainter used when a request names none.")
    models: list[ModelOut]
    segmenter: str = Field(..., description="The occluder segmenter behind the automatic mask.")
    max_upload_mb: float
    max_side: int


class FaceOut(BaseModel):
    index: int = Field(..., description="Faces are numbered largest first, from 0.")
    box: list[float] = Field(..., description="x0, y0, x1, y1 in photo pixels.")
    score: float


class AnalyzeOut(BaseModel):
    width: int
    height: int
    faces: list[FaceOut]
    mask_png: str = Field(..., description="The automatic occluder mask, photo-sized, as a base64 PNG "
                                           "(white = occluder to fill).")
    mask_share: float = Field(..., description="Share of the photo's pixels in the mask.")
    segmenter: str
    seconds: float


class FaceReportOut(BaseModel):
    index: int
    box: list[float]
    score: float
    restored: bool
    occluder: str
    area: float = Field(..., description="Share of the aligned face crop that was filled.")
    mask_source: str
    identity_distance: Optional[float] = None
    note: str = ""
    seconds: float


class RestoreOut(BaseModel):
    width: int
    height: int
    model: str
    segmenter: Optional[str] = Field(None, description="The segmenter that made the mask (null: the "
                                                        "request's mask was used).")
    image_png: str = Field(..., description="The restored photo as a base64 PNG, the input's size.")
    mask_png: str = Field(..., description="The pixels that were filled, as a base64 PNG (white); "
                                           "every other pixel is the input's, unchanged.")
    filled_share: float
    faces: list[FaceReportOut]
    seconds: float


ERRORS = {413: {"model": ErrorOut, "description": "Upload or image too large"},
          415: {"model": ErrorOut, "description": "Not an image"},
          422: {"model": ErrorOut, "description": "Bad input (mask size, empty mask, no face, model...)"}}


# -- request size limit (before anything is parsed) ---------------------------------------------------
class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 with a JSON message, refused from
    its Content-Length when it has one, else as soon as the streamed body passes the limit."""

    def __init__(self, app, limit: int, message: str):
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                too_big = False
            if too_big:
                return await self._refuse(scope, receive, send)
            return await self.app(scope, receive, send)
        # no length given (chunked): read it all here, up to the limit, then replay it
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._refuse(scope, receive, send)
            chunks.append(chunk)
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        await JSONResponse({"detail": self.message}, status_code=413, headers={"Connection": "close"})(
            scope, receive, send)


# -- decoding and encoding ----------------------------------------------------------------------------
def _check_size(data: bytes, what: str, max_bytes: int) -> None:
    if not data:
        raise HTTPException(422, f"{what}: the file is empty")
    if len(data) > max_bytes:
        raise HTTPException(413, f"{what} is {len(data) / MB:.1f} MB; the limit is {max_bytes / MB:g} MB")


def decode_image(data: bytes, name: str, max_side: int) -> np.ndarray:
    """uint8 HxWx3 RGB from uploaded bytes through :func:`unveil.io.read_image_info` (EXIF
    rotation, alpha over white, grayscale -> RGB; sizes checked from the header first)."""
    from unveil.io import read_image_info

    with _http_errors():
        return read_image_info(data, name, max_side=max_side)[0]


def decode_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """bool HxW from an uploaded mask through :func:`unveil.io.read_mask` (white, or opaque on a
    transparent background, = fill)."""
    from unveil.io import read_mask

    with _http_errors():
        return read_mask(data, shape, name="mask")


@contextlib.contextmanager
def _http_errors():
    """unveil's input errors as HTTP answers: too large 413, not an image 415, the rest 422."""
    from unveil.errors import NotAnImage, TooLarge

    try:
        yield
    except TooLarge as e:
        raise HTTPException(413, str(e)) from None
    except NotAnImage as e:
        raise HTTPException(415, str(e)) from None
    except UnveilError as e:
        raise HTTPException(422, str(e)) from None


def png_b64(arr: np.ndarray) -> str:
    """base64 PNG of a uint8 RGB image or a bool mask (white = True)."""
    from PIL import Image

    a = np.asarray(arr)
    if a.dtype == bool:
        im = Image.fromarray(a.astype(np.uint8) * 255, "L").convert("1")
    else:
        im = Image.fromarray(a)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=3)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# -- the engine: one job at a time ------------------------------------------------------------------
class Engine:
    """Restorers on the process's shared models (:func:`unveil.models.shared`); a lock runs one job
    at a time."""

    def __init__(self, default_model: str | None = None):
        from unveil import models
        from unveil.pipeline import AUTO

        self.default = default_model or AUTO
        if self.default != AUTO and self.default not in models.available("inpainter"):
            raise UnveilError(f"'{self.default}' is not an inpainter; choose one of "
                              f"{', '.join(models.available('inpainter'))}")
        self.lock = threading.Lock()

    def model_name(self, model: str | None) -> str:
        from unveil import models

        from unveil.pipeline import AUTO

        name = (model or "").strip() or self.default
        if name == "default":
            name = self.default
        if name != AUTO and name not in models.available("inpainter"):
            raise HTTPException(422, f"unknown model '{name}'; choose one of "
                                     f"{', '.join(models.available('inpainter'))}")
        return name

    def restorer(self, model: str, segmenter: str | None, options=None):
        """Call with the lock held (the models are loaded once, on first use)."""
        from unveil.pipeline import Restorer

        return Restorer(segmenter=segmenter, inpainter=model, options=options)

    def warm(self) -> None:
        """Load the default restorer ahead of the first request (``unveil serve`` does it)."""
        try:
            with self.lock:
                self.restorer(self.default, SEGMENTER)
        except Exception:  # noqa: BLE001 - the first request will report it
            log.exception("warming up failed")


#: the names this machine answers to; with ``--host`` on another address, that address too
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
#: photos decoded at a time: one restoring, one decoding or encoding beside it (memory is bounded by
#: this: each place holds at most one decoded photo, its mask and its result)
MAX_WORKING = 2
#: requests admitted at once, working or waiting their turn (a waiting one holds only its upload's
#: bytes); one more gets 503 with Retry-After
MAX_ADMITTED = 24


class Admission:
    """A ticket per admitted request (:meth:`ticket`, taken before its upload is read; 503 at once
    when ``admitted`` are in), then a working place (:meth:`place`, waited for in the worker thread)."""

    def __init__(self, working: int, admitted: int):
        self.places = threading.BoundedSemaphore(max(1, working))
        self.admitted, self.count, self.lock = admitted, 0, threading.Lock()

    @contextlib.contextmanager
    def ticket(self):
        with self.lock:
            if self.count >= self.admitted:
                raise HTTPException(503, f"busy: {self.count} restorations are running or waiting; try again in "
                                         f"a few seconds", headers={"Retry-After": "5"})
            self.count += 1
        try:
            yield
        finally:
            with self.lock:
                self.count -= 1

    @contextlib.contextmanager
    def place(self):
        with self.places:
            yield


def allowed_hosts(host: str = "127.0.0.1") -> list[str] | None:
    """The ``Host`` headers the server accepts (DNS rebinding: a foreign name pointed at
    127.0.0.1 must not reach the API): the loopback names, plus ``host`` when it is another
    address; None (any) when it listens on every interface (0.0.0.0, ::)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    return list(dict.fromkeys([*LOOPBACK_HOSTS, host, f"[{host}]" if ":" in host else host]))


class SameOrigin:
    """ASGI middleware: a state-changing request (POST, PUT, PATCH, DELETE) from a browser page of
    another origin gets 403 (cross-site request forgery: a page elsewhere posting to this server).
    A request with an ``Origin`` header must name this server (its scheme, host and port, as the
    ``Host`` header says); ``Sec-Fetch-Site: cross-site`` is refused too. API clients that send no
    ``Origin`` (curl, requests, httpx) are served."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            origin, host = headers.get("origin"), headers.get("host", "")
            site = headers.get("sec-fetch-site", "")
            scheme = scope.get("scheme", "http")
            bad = site == "cross-site" or (origin is not None and origin != "null" and origin != f"{scheme}://{host}")
            if bad or origin == "null":
                return await JSONResponse(
                    {"detail": "cross-origin request refused: the API serves this server's own page and clients "
                               "that send no Origin header"}, status_code=403)(scope, receive, send)
        return await self.app(scope, receive, send)


def restore_options(faces: str = "all", threshold: float | None = None, dilate: int | None = None):
    """The pipeline's options from a request's form fields (a bad value is an UnveilError: 422)."""
    from unveil.pipeline import RestoreOptions

    given = {"threshold": threshold, "dilate": dilate}
    return RestoreOptions(faces=faces, **{k: v for k, v in given.items() if v is not None})


class TimeLimit(UnveilError):
    """A job ran past the server's time limit (checked between the pipeline's steps): 422."""


def deadline_hooks(limit: float):
    """:class:`unveil.pipeline.Hooks` that stop a job at its next step once ``limit`` seconds have
    passed (a step itself is never cut: each one is bounded on any photo the limits admit)."""
    from unveil.pipeline import Hooks

    end = time.monotonic() + limit

    class Deadline(Hooks):
        def check(self):
            if time.monotonic() > end:
                raise TimeLimit(f"the restoration took longer than this server's limit of {limit:g} s "
                                f"a photo; try a smaller photo or mask, or `unveil remove` on the command line")

        def faces(self, image, detector):
            found = super().faces(image, detector)
            self.check()
            return found

        def probability(self, i, where, prob):
            self.check()
            return prob

        def fill(self, i, restored, hole):
            self.check()
            return restored

    return Deadline()


def create_app(max_upload_mb: float = 20, max_side: int = 8000, default_model: str | None = None,
               host: str = "127.0.0.1", time_limit: float = 120) -> FastAPI:
    """The web page and the JSON API. ``max_upload_mb``: largest accepted image file (a request
    may hold a photo and a mask: its body may be twice that plus 1 MB); ``max_side``: largest
    accepted image side in pixels; ``default_model``: the inpainter preselected (default: the
    pipeline's); ``host``: the address it listens on (which ``Host`` headers it accepts,
    :func:`allowed_hosts`); ``time_limit``: seconds a restoration may run before it is stopped at
    its next step (answered 422)."""
    if not max_upload_mb > 0:
        raise UnveilError(f"max_upload_mb must be positive, got {max_upload_mb}")
    if max_side < 16:
        raise UnveilError(f"max_side must be at least 16 pixels, got {max_side}")
    if not time_limit > 0:
        raise UnveilError(f"time_limit must be positive, got {time_limit}")
    engine = Engine(default_model)
    max_bytes = int(max_upload_mb * MB)

    app = FastAPI(
        docs_url=None,  # Swagger UI loads its scripts from a CDN: /docs is our own offline page
        redoc_url=None,
        title="unveil",
        version=_version(),
        summary="Find what hides a face in a photo and restore the face beneath.",
        description="Upload a photo to `/api/analyze` for its faces and the automatic occluder mask, "
                    "then to `/api/restore` (optionally with an edited mask) for the restored photo. "
                    f"Limits: {max_upload_mb:g} MB per file, {max_side} pixels a side, {time_limit:g} s "
                    "a restoration. Requests that change state come from this page's origin: a client "
                    "that is not a browser sends no `Origin` header (curl, requests) and is served; a "
                    "page of another site is refused (403). Errors are "
                    "`{\"detail\": \"...\"}` with status 413 (too large), 415 (not an image) or 422.",
    )
    app.state.engine = engine
    app.state.max_upload_mb = max_upload_mb
    app.state.max_side = max_side
    app.state.time_limit = time_limit
    app.add_middleware(BodyLimit, limit=2 * max_bytes + MB,
                       message=f"upload too large: the limit is {max_upload_mb:g} MB per image")
    app.add_middleware(SameOrigin)
    hosts = allowed_hosts(host)
    if hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    admission = Admission(MAX_WORKING, MAX_ADMITTED)

    @app.exception_handler(UnveilError)
    async def _unveil_error(request: Request, exc: UnveilError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            field = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "form"))
            parts.append(f"{field or 'request'}: {'missing' if e.get('type') == 'missing' else e.get('msg')}")
        return JSONResponse({"detail": "; ".join(parts) or "bad request"}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}: {exc})"}, status_code=500,
                            headers={"Connection": "close"})

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models", response_model=ModelsOut, tags=["api"])
    async def list_models() -> ModelsOut:
        """The inpainters a restoration can use, with their `make bench` numbers, and the default."""
        from unveil.models.catalog import rows

        from unveil.pipeline import AUTO, by_kind_text, default_inpainter

        keep = ModelOut.model_fields.keys()
        auto = ModelOut(name=AUTO, default=engine.default == AUTO,
                        summary="the inpainter measured best for each face's kind of hole: "
                                + by_kind_text("the ") + f", {default_inpainter()} otherwise")
        out = [auto] + [ModelOut(**{k: v for k, v in r.items() if k in keep} | {"default": r["name"] == engine.default})
                        for r in rows() if r["kind"] == "inpainter"]
        return ModelsOut(default=engine.default, models=out, segmenter=SEGMENTER,
                         max_upload_mb=max_upload_mb, max_side=max_side)

    async def _read(upload: UploadFile, what: str) -> bytes:
        data = await upload.read(max_bytes + 1)
        _check_size(data, what, max_bytes)
        return data

    threshold_field = Form(None, description="The segmenter's probability from which a pixel is the "
                                             "occluder, 0..1 (default 0.5): lower finds more.")
    dilate_field = Form(None, description="Grow the automatic mask by this many pixels of the 256 px "
                                          "face crop, 0..32 (default 6). A mask you send is not grown.")

    @app.post("/api/analyze", response_model=AnalyzeOut, responses=ERRORS, tags=["api"])
    async def analyze(
        image: UploadFile = File(..., description="The photo (JPEG, PNG, WebP...)."),
        faces: str = Form("all", description="Faces whose occluder is found: all, largest, or indices "
                                             "like 0,2 (largest first)."),
        threshold: Optional[float] = threshold_field,
        dilate: Optional[int] = dilate_field,
    ) -> AnalyzeOut:
        """Detect the faces of a photo and find what hides them: the automatic mask, photo-sized
        (the face crop's occluder and, beyond it, the chin, neck and ear loops that the restoration
        fills too)."""
        with admission.ticket():
            return await _analyze_job(image, restore_options(faces, threshold, dilate))

    async def _analyze_job(image: UploadFile, options) -> AnalyzeOut:
        name = image.filename or "image"
        data = await _read(image, name)

        def work():
            with admission.place():
                return _analyze(decode_image(data, name, max_side))

        def _analyze(rgb):
            with engine.lock:
                t = time.perf_counter()
                mask, found = engine.restorer(engine.default, SEGMENTER, options).auto_mask(rgb)
                seconds = time.perf_counter() - t
            return AnalyzeOut(
                width=rgb.shape[1], height=rgb.shape[0],
                faces=[FaceOut(index=i, box=[round(float(v), 1) for v in f.box], score=round(float(f.score), 3))
                       for i, f in enumerate(found)],
                mask_png=png_b64(mask), mask_share=round(float(mask.mean()), 5), segmenter=SEGMENTER,
                seconds=round(seconds, 3))

        return await run_in_threadpool(work)

    @app.post("/api/restore", response_model=RestoreOut, responses=ERRORS, tags=["api"])
    async def restore(
        image: UploadFile = File(..., description="The photo (JPEG, PNG, WebP...)."),
        mask: Optional[UploadFile] = File(None, description="Optional PNG of the photo's size: white (and "
                                                            "opaque) = fill. Without it the occluders are "
                                                            "found automatically."),
        model: Optional[str] = Form(None, description="Inpainter name (see /api/models); default: the "
                                                      "server's default."),
        faces: str = Form("all", description="Faces to restore: all, largest, or indices like 0,2 "
                                             "(largest first)."),
        threshold: Optional[float] = threshold_field,
        dilate: Optional[int] = dilate_field,
    ) -> RestoreOut:
        """Restore a photo: fill the given mask (every white pixel), or the automatically found
        occluders. Pixels outside the filled mask are returned unchanged."""
        model_name = engine.model_name(model)
        options = restore_options(faces, threshold, dilate)
        with admission.ticket():
            return await _restore_job(image, mask, model_name, options)

    async def _restore_job(image: UploadFile, mask: UploadFile | None, model_name: str, options) -> RestoreOut:
        name = image.filename or "image"
        data = await _read(image, name)
        mask_data = None
        if mask is not None and (mask.filename or mask.size):
            mask_data = await _read(mask, "mask")

        def work():
            with admission.place():
                return _restore()

        def _restore():
            rgb = decode_image(data, name, max_side)
            user = decode_mask(mask_data, rgb.shape[:2]) if mask_data is not None else None
            if user is not None and not user.any():
                raise HTTPException(422, "the mask is empty (no white pixel): paint what to fill, or send no "
                                         "mask to find the occluders automatically")
            with engine.lock:
                r = engine.restorer(model_name, None if user is not None else SEGMENTER, options)
                res = r.restore(rgb, mask=user, hooks=deadline_hooks(time_limit))
            rep = res.report()
            return RestoreOut(width=rep["width"], height=rep["height"], model=rep["model"],
                              segmenter=rep["segmenter"], image_png=png_b64(res.image),
                              mask_png=png_b64(res.mask), filled_share=rep["filled_share"],
                              faces=rep["faces"], seconds=rep["seconds"])

        return await run_in_threadpool(work)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def _docs():
        return HTMLResponse(api_docs_html(app.openapi()))

    return app


DOCS_STYLE = (
    ":root{color-scheme:dark}body{background:#14161a;color:#e8eaed;font:15px/1.55 system-ui,-apple-system,"
    "'Segoe UI',Roboto,sans-serif;max-width:60em;margin:0 auto;padding:1.5em 1em 3em}"
    "a{color:#4f9cff}h1{font-size:22px;margin:0 0 .6em}h2{font-size:16px;margin:1.8em 0 .5em;padding:8px 10px;"
    "background:#1d2026;border:1px solid #2e333b;border-radius:8px}code{background:#2a2f37;color:#e8eaed;"
    "padding:.05em .35em;border-radius:4px;font-size:.92em}ul{padding-left:1.3em}li{margin:.2em 0}"
    "p.muted{color:#9aa1ab}"
)


def api_docs_html(schema: dict) -> str:
    """A plain HTML page of the API from its OpenAPI schema (no scripts, nothing fetched), in the
    page's dark theme; `backticks` in the descriptions become code."""
    import re
    from html import escape

    def text(s) -> str:
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(str(s or "")))

    info = schema["info"]
    parts = [f"<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width, initial-scale=1'>"
             f"<title>{escape(info['title'])} API</title><style>{DOCS_STYLE}</style>",
             f"<h1>{escape(info['title'])} API {escape(str(info.get('version', '')))}</h1>",
             f"<p>{text(info.get('description', ''))}</p>",
             '<p class=muted>Machine-readable schema: <a href="/openapi.json">/openapi.json</a>. The page itself: '
             '<a href="/">/</a>.</p>']
    comps = schema.get("components", {}).get("schemas", {})
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            parts.append(f"<h2><code>{method.upper()} {escape(path)}</code></h2>")
            parts.append(f"<p>{text(op.get('summary', ''))}. {text(op.get('description', ''))}</p>")
            body = op.get("requestBody", {}).get("content", {})
            for ctype, c in body.items():
                ref = c.get("schema", {}).get("$ref", "")
                props = comps.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}) if ref else {}
                if props:
                    parts.append(f"<p>Body (<code>{escape(ctype)}</code>):</p><ul>")
                    for name, prop in props.items():
                        parts.append(f"<li><code>{escape(name)}</code>: {text(prop.get('description', ''))}</li>")
                    parts.append("</ul>")
            codes = ", ".join(f"<code>{k}</code> {text(v.get('description', ''))}"
                              for k, v in op.get("responses", {}).items())
            parts.append(f"<p>Responses: {codes}</p>")
    return "\n".join(parts)


def _version() -> str:
    from unveil.version import __version__

    return __version__
