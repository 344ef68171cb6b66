"""``unveil serve``: a local web page and a JSON API over the restoration pipeline.

    from unveil.serve import create_app
    app = create_app(max_upload_mb=20, max_side=8000)   # a FastAPI app; run it with uvicorn

The page (``/``) uploads a photo, shows the detected faces and the automatic mask, lets the user
edit the mask with a brush and an eraser, restores, compares before/after and downloads the
result. The API (``/api/models``, ``/api/analyze``, ``/api/restore``) is documented at ``/docs``.
"""
from unveil.serve.app import create_app

__all__ = ["create_app"]
