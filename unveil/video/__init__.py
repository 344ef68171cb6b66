"""Occluders removed from a clip, steady across frames, with its sound.

    from unveil.video import remove_video
    report = remove_video("clip.mp4", "out.mp4")      # same frame count, rate and audio

Every frame goes through the photo pipeline (:class:`~unveil.pipeline.Restorer`) with a
:class:`~unveil.video.track.Tracker` as its hooks: faces detected every few frames and followed
between, their alignment, occluder maps and fills smoothed in time. Reading and writing is PyAV
(:mod:`unveil.video.io`).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unveil.errors import UnveilError
from unveil.video.io import VIDEO_SUFFIXES, ClipReader, ClipWriter, is_video, probe

__all__ = ["VideoReport", "remove_video", "is_video", "probe", "VIDEO_SUFFIXES"]


@dataclass
class VideoReport:
    input: str
    output: str
    frames: int = 0
    restored: int = 0  #: frames where at least one face was restored
    no_face: int = 0  #: frames written unchanged: no face found
    failed: int = 0  #: frames written unchanged after an error
    cuts: int = 0  #: scene cuts seen (faces re-detected)
    seconds: float = 0.0
    fps_out: float = 0.0  #: the clip's frame rate
    masks: list = field(default_factory=list, repr=False)  #: per frame, the filled pixels (keep_masks)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output, "frames": self.frames, "restored": self.restored,
                "no_face": self.no_face, "failed": self.failed, "cuts": self.cuts, "seconds": round(self.seconds, 2),
                "frames_per_second": round(self.frames_per_second, 2), "fps": self.fps_out}


def remove_video(src, dst, restorer=None, model: str | None = None, segmenter: str = "soclnet",
                 options=None, detect_every: int = 5, steady: bool = True, progress: bool = True,
                 keep_masks: bool = False, overwrite: bool = False) -> VideoReport:
    """Restore every frame of the clip (or folder of frames) ``src`` into ``dst``: same frame count
    and timestamps, the audio kept. ``steady=False`` restores each frame on its own (no smoothing,
    faces detected on every frame). A frame with no face, or whose restoration fails, is written as
    it came."""
    from tqdm import tqdm

    from unveil.pipeline import Hooks, Restorer, RestoreOptions
    from unveil.video.track import Tracker

    src, dst = Path(src), Path(dst)
    if dst.exists() and not overwrite and not dst.is_dir():
        raise UnveilError(f"{dst} already exists (use --overwrite to replace it)")
    if dst.resolve() == src.resolve():
        raise UnveilError(f"{dst}: the output would replace the input")
    reader = ClipReader(src)
    info = reader.info
    restorer = restorer or Restorer(segmenter=segmenter, inpainter=model, options=options or RestoreOptions())
    hooks = Tracker(info.fps, detect_every, work_size=restorer.options.work_size) if steady else Hooks()
    rep = VideoReport(str(src), str(dst), fps_out=info.fps)
    writer = ClipWriter(dst, reader)
    bar = tqdm(total=info.frames or None, desc="video", unit="frame", disable=not progress or not sys.stderr.isatty(),
               file=sys.stderr)
    t0 = time.perf_counter()
    ok = False
    try:
        for k, frame, pts, tb in reader.frames(on_audio=writer.audio_packet):
            out, mask = frame, None
            try:
                res = restorer.restore(frame, hooks=hooks)
                out, mask = res.image, res.mask
                rep.restored += any(f.restored for f in res.faces)
            except UnveilError:
                rep.no_face += 1
            except Exception:  # noqa: BLE001 - one bad frame is written as it came
                rep.failed += 1
            if keep_masks:
                rep.masks.append(mask if mask is not None else np.zeros(frame.shape[:2], bool))
            writer.write(out, pts, tb)
            rep.frames += 1
            bar.update(1)
        ok = True
    finally:
        bar.close()
        writer.close(ok)
    rep.seconds = time.perf_counter() - t0
    rep.cuts = getattr(hooks, "cuts", 0)
    if rep.frames == 0:
        raise UnveilError(f"{src}: no frame decoded")
    return rep
