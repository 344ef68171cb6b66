"""Reading and writing images and masks with clear errors, and atomic writes.

Every image that enters unveil goes through :func:`read_image`: EXIF orientation is applied,
grayscale and palette images become RGB, alpha is composited over white, and files that are not
images, truncated, empty or too large are refused with an :class:`UnveilError`.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from unveil.errors import NotAnImage, TooLarge, UnveilError

#: Largest image accepted, in pixels (a 100-megapixel camera frame fits; 12000 x 12000 does not).
#: Larger files are refused from their header, before decoding.
MAX_PIXELS = 120_000_000
MIN_SIDE = 2
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL's own bomb guard, in line with ours


def _open(path: str | os.PathLike | bytes, name: str | None = None, max_side: int | None = None) -> Image.Image:
    """Open an image file, or the bytes of one (``name`` labels the messages), with clear errors.
    Sizes are checked from the header, before decoding (``max_side``: a limit per side)."""
    if isinstance(path, (bytes, bytearray)):
        p = name or "upload"
        if not path:
            raise UnveilError(f"{p}: the file is empty")
        src = io.BytesIO(path)
    else:
        p = Path(path)
        if not p.exists():
            raise UnveilError(f"{p}: no such file")
        if p.is_dir():
            raise UnveilError(f"{p}: is a folder, not an image file")
        if p.stat().st_size == 0:
            raise UnveilError(f"{p}: the file is empty")
        src = p
    try:
        with warnings.catch_warnings():  # our own size check below says it plainly
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(src)
    except UnidentifiedImageError:
        raise NotAnImage(f"{p}: not an image (PIL cannot identify the format)") from None
    except Image.DecompressionBombError:
        raise TooLarge(f"{p}: image is too large (limit {MAX_PIXELS:,} pixels)") from None
    except OSError as e:
        raise UnveilError(f"{p}: cannot read the image, it is damaged or truncated ({e})") from None
    try:
        _check(im, p, max_side)
    except BaseException:
        im.close()  # a refused file is not left open
        raise
    return im


def _check(im: Image.Image, p, max_side: int | None) -> None:
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise TooLarge(f"{p}: image is too large ({w}x{h}; limit {MAX_PIXELS:,} pixels)")
    if max_side and max(w, h) > max_side:
        raise TooLarge(f"{p}: the image is {w}x{h} pixels; the limit is {max_side} pixels a side "
                       f"(scale it down first)")
    if min(w, h) < MIN_SIDE:
        raise UnveilError(f"{p}: image is too small ({w}x{h})")
    try:
        im.load()
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many kinds on broken files
        raise UnveilError(f"{p}: image is damaged or truncated ({type(e).__name__}: {e})") from None


def _decode(path, name, max_side, work):
    """Open ``path`` and run ``work(image)`` on it; any error of Pillow's while decoding or
    converting (a broken EXIF tag, a corrupt chunk: ValueError, TypeError, struct.error, ...)
    becomes one clear UnveilError, and Pillow's warnings stay quiet."""
    label = name or ("upload" if isinstance(path, (bytes, bytearray)) else path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with _open(path, name, max_side) as im:
                return work(im)
        except (UnveilError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001
            raise UnveilError(f"{label}: cannot decode the image, it is damaged ({type(e).__name__}: {e})") from None


def to_rgb(im: Image.Image) -> np.ndarray:
    """PIL image (any mode, EXIF orientation applied) -> uint8 HxWx3 RGB; alpha over white."""
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 else 255.0
        return np.repeat((arr / hi * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    # an RGB image is read as it is (convert() would copy it first: 3 bytes a pixel more at peak)
    return np.array(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 HxWx3 RGB (EXIF-rotated). Raises UnveilError on bad input."""
    return read_image_info(path)[0]


def read_image_info(path: str | os.PathLike | bytes, name: str | None = None,
                    max_side: int | None = None) -> tuple[np.ndarray, dict]:
    """Like :func:`read_image`, plus what writing a result should keep: ``icc_profile`` (bytes or
    None), the original ``mode`` and whether EXIF orientation was applied (``exif_rotated``).
    ``path`` may also be the bytes of an image file (an upload; ``name`` labels messages)."""
    def work(im):
        orientation = im.getexif().get(0x0112, 1)
        info = {"icc_profile": im.info.get("icc_profile"), "mode": im.mode,
                "exif_rotated": orientation not in (None, 1)}
        return to_rgb(im), info

    return _decode(path, name, max_side, work)


def read_rgba(path: str | os.PathLike) -> np.ndarray:
    """Read an image with its alpha as uint8 HxWx4 RGBA (opaque where the file has no alpha)."""
    return _decode(path, None, None,
                   lambda im: np.asarray(ImageOps.exif_transpose(im).convert("RGBA"), dtype=np.uint8).copy())


def read_mask(path: str | os.PathLike | bytes, shape: tuple[int, int] | None = None,
              name: str | None = None) -> np.ndarray:
    """Read a mask image (a file or its bytes) as bool HxW (True = hole): where the file has
    transparency, the opaque pixels (strokes on a transparent background); otherwise the pixels
    brighter than mid-grey. With ``shape`` (H, W), a mask of another size is refused."""
    label = (name or "mask") if isinstance(path, (bytes, bytearray)) else path
    def work(im):
        im = ImageOps.exif_transpose(im)
        alpha = None
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            alpha = np.asarray(im.convert("RGBA").getchannel("A"))
        if alpha is not None and alpha.min() < 255:  # strokes on a transparent background
            return alpha > 127
        return np.asarray(im.convert("L")) > 127

    try:  # a mask larger than the image is refused from its header, before it is decoded
        arr = _decode(path, name or "mask", max(shape) if shape is not None else None, work)
    except TooLarge:
        if shape is None:
            raise
        raise UnveilError(f"{label}: mask is larger than the image ({shape[1]}x{shape[0]}); give a mask of the "
                          f"same size") from None
    if shape is not None and arr.shape != tuple(shape):
        raise UnveilError(
            f"{label}: mask is {arr.shape[1]}x{arr.shape[0]} but the image is "
            f"{shape[1]}x{shape[0]}; give a mask of the same size"
        )
    return arr


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` for a temporary file beside ``path``, then move it into place, so a
    reader never sees a half-written file (and an interrupted write leaves nothing behind)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a short temporary name: a long file name plus a prefix would pass the 255-byte limit
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:32]}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual mode
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise UnveilError(f"{path}: cannot write it ({e.strerror or e})") from None
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


#: JPEG outputs are re-encoded at this quality (4:4:4 chroma); see docs/usage.md for what it changes
JPEG_QUALITY = 95


def write_image(path: str | os.PathLike, image: np.ndarray, protect: tuple = (),
                icc_profile: bytes | None = None) -> Path:
    """Write uint8 RGB (HxWx3) or a mask (HxW bool/uint8) atomically. The format follows the
    suffix (.png, .jpg, .webp): PNG and WebP are lossless, JPEG is re-encoded at quality 95. Refuses to overwrite any path in ``protect`` (the inputs).
    ``icc_profile`` (from :func:`read_image_info`) keeps the input's colour profile."""
    path = Path(path)
    for p in protect:
        if Path(p).exists() and path.exists() and path.resolve() == Path(p).resolve():
            raise UnveilError(f"{path}: refusing to overwrite an input file")
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise UnveilError(f"write_image expects uint8 or bool, got {arr.dtype}")
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise UnveilError(f"{path}: unknown output format (use .png, .jpg or .webp)")
    # WebP is written lossless (pixels outside the hole stay exact, as in PNG); JPEG at quality 95
    # with full-resolution chroma (4:4:4), the closest a lossy re-encode can stay to the input
    kwargs = {"JPEG": {"quality": JPEG_QUALITY, "subsampling": 0}, "WEBP": {"lossless": True, "quality": 100,
                                                                           "method": 4}}.get(fmt, {})
    if icc_profile and arr.ndim == 3:
        kwargs["icc_profile"] = icc_profile
    return atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format=fmt, **kwargs))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically (indented, NaN written as null)."""
    return write_text(path, json.dumps(_clean(obj), indent=2) + "\n")


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if not np.isfinite(f) else f
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj
