"""Batches of photos: find the inputs, decide the outputs, restore each one, keep a manifest (the
loop of ``unveil remove``; the Ray engine, :mod:`unveil.scale`, runs the same jobs on a cluster).

A photo that fails (not an image, no face, too large) is recorded and skipped; the batch goes on.
Every batch keeps ``OUT/manifest.jsonl``: one JSON line per photo handled (input, output, status,
faces, seconds, error); ``resume`` skips the photos a manifest line says are done.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from unveil.errors import UnveilError

OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: a text file of photos, one path or URI a line (blank lines and ``#`` comments skipped)
LIST_SUFFIXES = (".txt", ".lst")
MANIFEST = "manifest.jsonl"


def is_uri(p) -> bool:
    """A remote location (``s3://``, ``gs://``, ``hdfs://``...; ``file://`` too), read with pyarrow."""
    return "://" in str(p)


def _uri_fs(uri: str):
    try:
        from pyarrow import fs
    except ImportError:
        raise UnveilError(f"{uri}: reading URIs needs pyarrow (pip install 'unveil[scale]')") from None
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a bad or unreachable URI
        raise UnveilError(f"{uri}: cannot open ({type(e).__name__}: {e})") from None


def read_uri(uri: str) -> bytes:
    """The bytes of one remote file."""
    filesystem, path = _uri_fs(uri)
    try:
        with filesystem.open_input_stream(path) as f:
            return f.read()
    except Exception as e:  # noqa: BLE001
        raise UnveilError(f"cannot read it ({type(e).__name__}: {e})") from None


def _collect_uri(uri: str) -> list[tuple[str, Path]]:
    """(URI, relative path) of one remote file, or of every image below a remote folder."""
    filesystem, path = _uri_fs(uri)  # first: a clear line when pyarrow is missing
    from pyarrow import fs

    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.File:
        return [(uri, Path(PurePosixPath(path).name))]
    if info.type != fs.FileType.Directory:
        raise UnveilError(f"{uri}: no such file or folder")
    scheme = uri.split("://", 1)[0]
    found = sorted(i.path for i in filesystem.get_file_info(fs.FileSelector(path, recursive=True))
                   if i.type == fs.FileType.File and PurePosixPath(i.path).suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise UnveilError(f"{uri}: no image files in this folder")
    root = PurePosixPath(path)
    return [(f"{scheme}://{f}" if scheme != "file" else f"file://{f}", Path(PurePosixPath(f).relative_to(root)))
            for f in found]


def _read_list(p: Path) -> list[tuple]:
    """The photos of a text list: relative paths are taken from the list's folder; each keeps its
    path below the deepest folder common to the listed local files."""
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise UnveilError(f"{p}: cannot read this list of photos ({e})") from None
    entries = [ln for ln in lines if ln and not ln.startswith("#")]
    if not entries:
        raise UnveilError(f"{p}: the list names no photo")
    local = [Path(e) if Path(e).is_absolute() else p.parent / e for e in entries if not is_uri(e)]
    missing = [str(f) for f in local if not f.is_file()]
    if missing:
        raise UnveilError(f"{p}: {len(missing)} listed file(s) not found, first {missing[0]}")
    root = Path(os.path.commonpath([f.resolve().parent for f in local])) if local else None
    out, it = [], iter(local)
    for e in entries:
        if is_uri(e):
            out += _collect_uri(e)
        else:
            f = next(it)
            out.append((f, f.resolve().relative_to(root)))
    return out


def collect_photos(paths: list) -> list[tuple]:
    """(photo, path relative to its root) for files, folders (recursively, images only), text lists
    of photos (``.txt``, one a line) and URIs pyarrow reads (``s3://bucket/dir``; the photo is then
    the URI string)."""
    out = []
    for p in paths:
        if is_uri(p):
            out += _collect_uri(str(p))
            continue
        p = Path(p)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not files:
                raise UnveilError(f"{p}: no image files in this folder")
            out += [(f, f.relative_to(p)) for f in files]
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            out += _read_list(p)
        elif p.exists():
            out.append((p, Path(p.name)))
        else:
            raise UnveilError(f"{p}: no such file or folder")
    return out


def _key(src) -> str:
    """How a manifest names an input: the URI, or the absolute path."""
    return str(src) if is_uri(src) else str(Path(src).resolve())


def output_path(src, rel: Path, out_dir: Path, fmt: str | None = None) -> Path:
    """Where the result of ``src`` (``rel`` below its root) goes: ``out_dir/rel`` in the input's
    format, or ``fmt`` (png, jpg, webp); other input formats are written as PNG."""
    ext = "." + fmt.lower().lstrip(".") if fmt else Path(rel).suffix.lower()
    return (Path(out_dir) / rel).with_suffix(ext if ext in OUTPUT_SUFFIXES else ".png")


def check_format(fmt: str | None) -> None:
    if fmt and "." + fmt.lower().lstrip(".") not in OUTPUT_SUFFIXES:
        raise UnveilError(f"--format must be png, jpg or webp, got '{fmt}'")


def _siblings(dst: Path, save_masks: bool, report: bool) -> list[Path]:
    """Every file the result of one photo writes: the image, and its mask / report if asked."""
    return [dst] + ([dst.with_suffix(".mask.png")] if save_masks else []) + \
        ([dst.with_suffix(".json")] if report else [])


def plan_outputs(items: list[tuple], out_dir: Path, fmt: str | None = None, save_masks: bool = False,
                 report: bool = False, overwrite: bool = False,
                 protect: tuple[Path, ...] = ()) -> tuple[list[Path | None], list[str]]:
    """Decide every output path before any work: (one path per item, or None for an item that
    must not be written, and the reasons for those). Two inputs that map to one name keep both
    (the later ones get ``-2``, ``-3``... before the suffix); no output, mask or report ever lands
    on an input or on a ``protect`` file; a file that already exists is only replaced with
    ``overwrite``."""
    inputs = {Path(src).resolve() for src, _ in items if not is_uri(src)} | {Path(p).resolve() for p in protect}
    inputs.add((Path(out_dir) / MANIFEST).resolve())
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
            refused.append(f"{existing[0]} already exists (use --resume to skip photos done, --overwrite "
                           f"to replace them)")
            continue
        taken.update(f.resolve() for f in files)
        plan.append(dst)
    return plan, refused


def mask_for(src, rel: Path, mask: Path | None) -> Path | None:
    """The user mask of one photo: ``mask`` itself when it is a file; when it is a folder, the
    file of the photo's relative path and name there (``a/p.jpg`` -> ``MASKS/a/p.png``, any image
    suffix, or ``p.mask.png`` as ``--save-masks`` writes it); a clear error when there is none."""
    if mask is None or not Path(mask).is_dir():
        return mask
    rel = Path(rel)
    base = Path(mask) / rel.parent
    for name in [rel.stem + ext for ext in IMAGE_SUFFIXES] + [rel.stem + ".mask.png"]:
        if (base / name).is_file():
            return base / name
    raise UnveilError(f"no mask for it in {mask} (looked for {(base / rel.stem).as_posix()}.png and the like)")


# -- the manifest ----------------------------------------------------------------------------------

class Manifest:
    """``OUT/manifest.jsonl``: one JSON line per photo handled, appended as each one ends (input,
    output, status ``done`` / ``failed`` / ``skipped``, faces, restored, seconds, error). Later
    runs append; for an input, its last line counts."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / MANIFEST

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash: that photo counts as not done
        return out

    def done(self) -> dict[str, str]:
        """input -> output of every photo whose last line says done and whose output is there."""
        last = {e.get("input"): e for e in self.entries() if isinstance(e, dict)}
        return {k: e["output"] for k, e in last.items()
                if e.get("status") == "done" and e.get("output") and Path(e["output"]).exists()}

    def write(self, entry: dict) -> None:
        """Append one line in one write (whole lines only, even when a run is killed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())


# -- jobs ------------------------------------------------------------------------------------------

@dataclass
class Job:
    """One photo of a batch, its output decided: what both engines run."""

    src: str  #: a path or a URI
    dst: str
    mask: str = ""  #: the user mask's path, or "" (segment)


@dataclass
class Plan:
    jobs: list[Job]
    failed: list[dict]  #: manifest entries of photos refused before any work
    resumed: int = 0  #: photos skipped because the manifest says they are done


def ensure_folder(out_dir: Path) -> Path:
    """The output folder, created if needed; one clear error when it cannot be (a file of that
    name, no permission, a read-only or virtual filesystem)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UnveilError(f"-o {out_dir}: is a file; give a folder for the outputs")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UnveilError(f"-o {out_dir}: cannot create this folder ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UnveilError(f"-o {out_dir}: this folder is not writable")
    return out_dir


def prepare(items: list[tuple], out_dir: Path, fmt: str | None = None, mask=None, save_masks: bool = False,
            report: bool = False, overwrite: bool = False, resume: bool = False) -> Plan:
    """Every job of a batch, decided before any work (:func:`plan_outputs`); with ``resume``, the
    photos the manifest has done are left out and their outputs kept off limits."""
    ensure_folder(out_dir)
    done = Manifest(out_dir).done() if resume else {}
    todo = [(src, rel) for src, rel in items if _key(src) not in done]
    masks = ()
    if mask is not None:
        masks = tuple(f for f in Path(mask).rglob("*") if f.is_file()) if Path(mask).is_dir() else (Path(mask),)
    protect = masks + tuple(Path(o) for o in done.values())
    dsts, refused = plan_outputs(todo, out_dir, fmt, save_masks, report, overwrite, protect=protect)
    plan, reasons = Plan([], [], len(items) - len(todo)), iter(refused)
    for (src, rel), dst in zip(todo, dsts):
        entry = {"input": _key(src), "output": None, "status": "skipped", "faces": 0, "restored": 0,
                 "seconds": 0.0, "error": None}
        if dst is None:
            plan.failed.append({**entry, "error": next(reasons)})
            continue
        try:
            m = mask_for(src, rel, mask)
        except UnveilError as e:
            plan.failed.append({**entry, "output": str(dst), "status": "failed", "error": str(e)})
            continue
        plan.jobs.append(Job(str(src), str(dst), str(m) if m is not None else ""))
    return plan


def restore_photo(restorer, src, dst: Path, mask=None, save_mask: bool = False, report: bool = False):
    """Restore one photo (a file or a URI) into ``dst`` (keeping its colour profile; never over an
    input), with optionally ``NAME.mask.png`` and ``NAME.json`` beside it. Returns the
    :class:`Restoration`."""
    from unveil.io import read_image_info, write_image, write_json

    dst = Path(dst)
    if is_uri(src):
        img, info = read_image_info(read_uri(str(src)), name=str(src))
        protect = ()
    else:
        img, info = read_image_info(src)
        protect = (src,)
    res = restorer.restore(img, mask=mask)
    protect += (mask,) if isinstance(mask, (str, Path)) else ()
    write_image(dst, res.image, protect=protect, icc_profile=info["icc_profile"])
    if save_mask:
        write_image(dst.with_suffix(".mask.png"), res.mask, protect=protect)
    if report:
        write_json(dst.with_suffix(".json"), {"input": str(src), "output": str(dst), **res.report()})
    return res


def run_job(restorer, job: Job, save_masks: bool = False, report: bool = False) -> dict:
    """Run one job; its manifest entry (never raises: a failure of any kind is the entry's error)."""
    t0 = time.perf_counter()
    entry = {"input": _key(job.src), "output": job.dst, "status": "done", "faces": 0, "restored": 0,
             "seconds": 0.0, "error": None, "summary": ""}
    try:
        res = restore_photo(restorer, job.src, Path(job.dst), job.mask or None, save_masks, report)
    except UnveilError as e:
        msg = str(e)
        for name in (job.src, entry["input"]):  # the manifest names the photo already
            msg = msg[len(name) + 2:] if msg.startswith(f"{name}: ") else msg
        entry.update(status="failed", error=msg)
    except (MemoryError, Exception) as e:  # noqa: BLE001 - one photo never stops the batch
        entry.update(status="failed", error=f"unexpected {type(e).__name__}: {e}")
    else:
        kinds = [f"{f.occluder} {f.area * 100:.0f}%" for f in res.faces if f.restored]
        entry.update(faces=len(res.faces), restored=len(kinds),
                     summary=", ".join(kinds) if kinds else "no occluder found, written unchanged")
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    return entry


@dataclass
class BatchResult:
    done: int = 0
    failed: list[str] = field(default_factory=list)  # "path: reason" per failed photo
    outputs: list[Path] = field(default_factory=list)
    resumed: int = 0  #: photos left alone because the manifest has them done
    seconds: float = 0.0


def show_bar(progress: bool, n: int) -> bool:
    """A progress bar for two photos or more, on a terminal only (piped output stays one line per
    photo)."""
    return progress and n >= 2 and sys.stderr.isatty()


class Recorder:
    """What both engines do with each finished photo: the manifest line, the line for the user,
    the tally."""

    def __init__(self, out_dir: Path, say: Callable[[str], None], manifest: bool = True):
        self.manifest = Manifest(out_dir) if manifest else None
        self.say, self.result = say, BatchResult()

    def __call__(self, entry: dict) -> None:
        entry = dict(entry)
        summary = entry.pop("summary", "")
        if self.manifest is not None:
            self.manifest.write(entry)
        if entry["status"] == "done":
            self.result.done += 1
            self.result.outputs.append(Path(entry["output"]))
            self.say(f"{entry['input']} -> {entry['output']} ({entry['faces']} face(s): {summary}; "
                     f"{entry['seconds']:.2f} s)")
        else:
            self.result.failed.append(f"{entry['input']}: {entry['error']}")
            self.say(f"unveil: skipped {entry['input']}: {entry['error']}")


def run_batch(restorer, items: list[tuple], out_dir: Path, fmt: str | None = None, mask=None,
              save_masks: bool = False, report: bool = False, progress: bool = True,
              say: Callable[[str], None] | None = None, overwrite: bool = False, resume: bool = False,
              manifest: bool = True) -> BatchResult:
    """Restore every ``(photo, relative path)`` of ``items`` into ``out_dir`` (output names decided
    first, :func:`prepare`); one line per photo through ``say`` (default: above the progress bar)
    and in ``OUT/manifest.jsonl``; failures of any kind are recorded and the batch goes on."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    plan = prepare(items, out_dir, fmt, mask, save_masks, report, overwrite, resume)
    bar = tqdm(total=len(plan.jobs), desc="remove", unit="photo", disable=not show_bar(progress, len(plan.jobs)),
               file=sys.stderr)
    rec = Recorder(out_dir, say or bar.write, manifest)
    rec.result.resumed = plan.resumed
    for entry in plan.failed:
        rec(entry)
    for job in plan.jobs:
        rec(run_job(restorer, job, save_masks, report))
        bar.update(1)
    bar.close()
    rec.result.seconds = time.perf_counter() - t0
    return rec.result
