"""Hostile image files made at test time (nothing of it is committed): broken, odd and oversized
files of every format Pillow reads, for the readers, the CLI batch and the server's API."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(w: int, h: int, extra: bytes = b"") -> bytes:
    """A PNG of a few hundred bytes whose header says ``w`` x ``h`` (a decompression bomb)."""
    raw = zlib.compressobj(9).compress(b"\x00" * 4096)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + extra
            + _png_chunk(b"IDAT", raw + zlib.compressobj(9).flush()) + _png_chunk(b"IEND", b""))


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, format=fmt, **kw)
    return b.getvalue()


def odd_files(rng: np.random.Generator) -> dict[str, bytes]:
    """Valid or deliberately broken files that are not plain 8-bit RGB: each must be read, or be
    refused in one line."""
    rgb = Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    ex = Image.Exif()
    ex[0x0112] = 99  # an orientation that does not exist
    bad_exif = _save(rgb, "JPEG", exif=ex.tobytes())
    # raw EXIF: one IFD entry, the GPS IFD pointer (0x8825, LONG), pointing far past the data
    gps = b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x8825, 4, 1, 12345) + b"\0" * 4
    ztxt = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (64 << 20), 9))  # 64 MB of text
    return {
        "cmyk.jpg": _save(rgb.convert("CMYK"), "JPEG"),
        "grey16.png": _save(Image.fromarray((rng.integers(0, 65535, (40, 48))).astype(np.uint16)), "PNG"),
        "palette-alpha.png": _save(rgb.convert("P").copy(), "PNG", transparency=3),
        "la.png": _save(rgb.convert("LA"), "PNG"),
        "bilevel.tif": _save(rgb.convert("1"), "TIFF"),
        "float.tif": _save(Image.fromarray(rng.random((40, 48)).astype(np.float32)), "TIFF"),
        "anim.gif": _save(rgb, "GIF", save_all=True, append_images=[rgb.rotate(90)]),
        "lossless.webp": _save(rgb, "WEBP", lossless=True),
        "bad-orientation.jpg": bad_exif,
        "bad-gps.jpg": _save(rgb, "JPEG", exif=gps),
        "bomb.png": png_declaring(30000, 30000),
        "wide.png": png_declaring(200000, 2),
        "ztxt-bomb.png": png_declaring(48, 40, ztxt),
        "zero-size.png": png_declaring(0, 0),
        "empty.jpg": b"",
        "random.png": rng.integers(0, 255, 2048, dtype=np.uint8).tobytes(),
        "text.jpg": b"this is not a photo\n" * 40,
        "html.png": b"<html><body>not an image</body></html>",
    }


def broken_files(rng: np.random.Generator, n: int = 60) -> dict[str, bytes]:
    """Bit flips, byte runs and truncations of small PNG, JPEG (with EXIF), WebP, TIFF and GIF files."""
    img = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    ex = Image.Exif()
    ex[0x0112] = 6
    goods = [("png", _save(img, "PNG")), ("jpg", _save(img, "JPEG", exif=ex.tobytes())), ("webp", _save(img, "WEBP")),
             ("tif", _save(img, "TIFF")), ("gif", _save(img, "GIF"))]
    out = {}
    for i in range(n):
        ext, good = goods[i % len(goods)]
        data = bytearray(good)
        how = i // len(goods) % 3
        if how == 0:
            for _ in range(int(rng.integers(1, 8))):
                pos = int(rng.integers(0, len(data)))
                data[pos] ^= 1 << int(rng.integers(0, 8))
        elif how == 1:
            pos = int(rng.integers(0, len(data)))
            data[pos:pos + 16] = rng.integers(0, 255, 16, dtype=np.uint8).tobytes()
        else:
            data = data[: int(rng.integers(1, len(data)))]
        out[f"broken{i:02d}.{ext}"] = bytes(data)
    return out


def corpus(seed: int = 0, n: int = 60) -> dict[str, bytes]:
    """Every hostile file: name -> bytes."""
    rng = np.random.default_rng(seed)
    return odd_files(rng) | broken_files(rng, n)
