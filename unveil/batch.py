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


def _siblings(dst: Path, save_masks: bool, report: bool) -> list[Path]:
    """Every file the result of one photo writes: the image, and its mask / report if asked."""
    return [dst] + ([dst.with_suffix(".mask.png")] if save_masks else []) + \
        ([dst.with_suffix(".json")] if report else [])


def plan_outputs(items: list[tuple[Path, Path]], out_dir: Path, fmt: str | None = None, save_masks: bool = False,
                 report: bool = False, overwrite: bool = False,
                 protect: tuple[Path, ...] = ()) -> tuple[list[Path | None], list[str]]:
    """Decide every output path before any work: (one path per item, or None for an item that
    must not be written, and the reasons for those). Two inputs that map to one name keep both
    (the later ones get ``-2``, ``-3``... before the suffix); no output, mask or report ever lands
    on an input; a file that already exists is only replaced with ``overwrite``."""
    inputs = {Path(src).resolve() for src, _ in items} | {Path(p).resolve() for p in protect}
    taken: set[Path] = set()
    plan, refused = [], []
    for src, rel in items:
        base = output_path(src, rel, out_dir, fmt)
        dst, k = base, 1
        while True:
            files = [f.resolve() for f in _siblings(dst, save_masks, report)]
            if not any(f in taken or f in inputs for f in files):
                break
            k += 1
            dst = base.with_name(f"{base.stem}-{k}{base.suffix}")
        files = _siblings(dst, save_masks, report)
        existing = [f for f in files if f.exists()]
        if existing and not overwrite:
            plan.append(None)
            refused.append(f"{src}: {existing[0]} already exists (use --overwrite to replace it)")
            continue
        taken.update(f.resolve() for f in files)
        plan.append(dst)
    return plan, refused


def mask_for(src: Path, rel: Path, mask: Path | None) -> Path | None:
    """The user mask of one photo: ``mask`` itself when it is a file; when it is a folder, the
    file of the photo's relative path and name there (``a/p.jpg`` -> ``MASKS/a/p.png``, any image
    suffix, or ``p.mask.png`` as ``--save-masks`` writes it); a clear error when there is none."""
    if mask is None or not Path(mask).is_dir():
        return mask
    base = Path(mask) / rel.parent
    for name in [rel.stem + ext for ext in IMAGE_SUFFIXES] + [rel.stem + ".mask.png"]:
        if (base / name).is_file():
            return base / name
    raise UnveilError(f"no mask for it in {mask} (looked for {(base / rel.stem).as_posix()}.png and the like)")


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
              say: Callable[[str], None] | None = None, overwrite: bool = False) -> BatchResult:
    """Restore every ``(photo, relative path)`` of ``items`` into ``out_dir`` (output names decided
    first, :func:`plan_outputs`); one line per photo through ``say`` (default: above the progress
    bar); failures of any kind are recorded and the batch goes on."""
    from tqdm import tqdm

    out = BatchResult()
    masks = ()
    if mask is not None:
        masks = tuple(f for f in Path(mask).rglob("*") if f.is_file()) if Path(mask).is_dir() else (Path(mask),)
    plan, refused = plan_outputs(items, out_dir, fmt, save_masks, report, overwrite, protect=masks)
    bar = tqdm(items, desc="remove", unit="photo", disable=not progress or len(items) < 2, file=sys.stderr)
    say = say or bar.write
    for msg in refused:
        out.failed.append(msg)
        say(f"unveil: skipped {msg}")
    for (src, rel), dst in zip(bar, plan):
        if dst is None:
            continue
        try:
            res = restore_photo(restorer, src, dst, mask_for(src, rel, mask), save_masks, report)
        except UnveilError as e:
            out.failed.append(f"{src}: {e}")
            say(f"unveil: skipped {src}: {e}")
            continue
        except (MemoryError, Exception) as e:  # noqa: BLE001 - one photo never stops the batch
            out.failed.append(f"{src}: unexpected {type(e).__name__}: {e}")
            say(f"unveil: skipped {src}: unexpected {type(e).__name__}: {e}")
            continue
        out.done += 1
        out.outputs.append(dst)
        kinds = [f"{f.occluder} {f.area * 100:.0f}%" for f in res.faces if f.restored]
        msg = ", ".join(kinds) if kinds else "no occluder found, written unchanged"
        say(f"{src} -> {dst} ({len(res.faces)} face(s): {msg}; {res.seconds:.2f} s)")
    bar.close()
    return out
