"""Batches of photos: find the inputs, restore each one, write the outputs (the loop of
``unveil remove``, shared by the CLI and anything else that restores many photos).

A photo that fails (not an image, no face, too large) is reported and skipped; the batch goes on.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from unveil.errors import UnveilError

OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def collect_photos(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(photo, path relative to its root) for files and folders (recursively, images only)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not files:
                raise UnveilError(f"{p}: no image files in this folder")
            out += [(f, f.relative_to(p)) for f in files]
        elif p.exists():
            out.append((p, Path(p.name)))
        else:
            raise UnveilError(f"{p}: no such file or folder")
    return out


def output_path(src: Path, rel: Path, out_dir: Path, fmt: str | None = None) -> Path:
    """Where the result of ``src`` (``rel`` below its root) goes: ``out_dir/rel`` in the input's
    format, or ``fmt`` (png, jpg, webp); other input formats are written as PNG."""
    ext = "." + fmt.lower().lstrip(".") if fmt else src.suffix.lower()
    return (Path(out_dir) / rel).with_suffix(ext if ext in OUTPUT_SUFFIXES else ".png")


def check_format(fmt: str | None) -> None:
    if fmt and "." + fmt.lower().lstrip(".") not in OUTPUT_SUFFIXES:
        raise UnveilError(f"--format must be png, jpg or webp, got '{fmt}'")


@dataclass
class BatchResult:
    done: int = 0
    failed: list[str] = field(default_factory=list)  # "path: reason" per failed photo
    outputs: list[Path] = field(default_factory=list)


def restore_photo(restorer, src: Path, dst: Path, mask=None, save_mask: bool = False,
                  report: bool = False):
    """Restore one photo file into ``dst`` (keeping its colour profile; never over an input), with
    optionally ``NAME.mask.png`` and ``NAME.json`` beside it. Returns the :class:`Restoration`."""
    from unveil.io import read_image_info, write_image, write_json

    img, info = read_image_info(src)
    res = restorer.restore(img, mask=mask)
    protect = (src,) + ((mask,) if isinstance(mask, (str, Path)) else ())
    write_image(dst, res.image, protect=protect, icc_profile=info["icc_profile"])
    if save_mask:
        write_image(dst.with_suffix(".mask.png"), res.mask, protect=(src,))
    if report:
        write_json(dst.with_suffix(".json"), {"input": str(src), "output": str(dst), **res.report()})
    return res


def run_batch(restorer, items: list[tuple[Path, Path]], out_dir: Path, fmt: str | None = None, mask=None,
              save_masks: bool = False, report: bool = False, progress: bool = True,
              say: Callable[[str], None] | None = None) -> BatchResult:
    """Restore every ``(photo, relative path)`` of ``items`` into ``out_dir``; one line per photo
    through ``say`` (default: above the progress bar), failures recorded and skipped."""
    from tqdm import tqdm

    out = BatchResult()
    bar = tqdm(items, desc="remove", unit="photo", disable=not progress or len(items) < 2, file=sys.stderr)
    say = say or bar.write
    for src, rel in bar:
        dst = output_path(src, rel, out_dir, fmt)
        try:
            res = restore_photo(restorer, src, dst, mask, save_masks, report)
        except UnveilError as e:
            out.failed.append(f"{src}: {e}")
            say(f"unveil: skipped {src}: {e}")
            continue
        out.done += 1
        out.outputs.append(dst)
        kinds = [f"{f.occluder} {f.area * 100:.0f}%" for f in res.faces if f.restored]
        msg = ", ".join(kinds) if kinds else "no occluder found, written unchanged"
        say(f"{src} -> {dst} ({len(res.faces)} face(s): {msg}; {res.seconds:.2f} s)")
    bar.close()
    return out
