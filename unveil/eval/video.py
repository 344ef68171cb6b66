"""``unveil eval-video``: how steady and complete the video path is, on clips made here.

Two 3 s clips (75 frames, 25 fps) of the demo photo, scikit-image's astronaut wearing a drawn
surgical mask with ear loops (:mod:`unveil.video.clips`), fresh sensor noise (sigma 3) on every
frame and a 440 Hz tone on the audio track: the camera still, and the face moving (drift, zoom,
tilt). Each is restored with the steady video path and frame by frame, then read back from the
written file. Per clip and mode: frames out, audio (tone and length), the share of the drawn
occluder left unchanged (mean and worst frame), and the flicker inside the occluder (mean absolute
change of grey level from one frame to the next), next to the input's own flicker there (the
noise). Contact sheets of the moving clip (every 6th frame round the occluder, input above
output, steady and per-frame) are written for looking at.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from unveil.io import write_image, write_json, write_text

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def flicker(frames: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """Mean absolute change of grey level from one frame to the next, inside the region that is
    occluder in both frames."""
    g = [f.astype(np.float32) @ LUMA for f in frames]
    return float(np.mean([np.abs(g[k] - g[k - 1])[masks[k] & masks[k - 1]].mean() for k in range(1, len(g))]))


def _face(frame: np.ndarray, mask: np.ndarray, cell: int = 160) -> np.ndarray:
    """The region round the occluder of one frame (its box grown 1.8 times), ``cell`` px square."""
    ys, xs = np.nonzero(mask)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    r = 0.9 * max(ys.max() - ys.min(), xs.max() - xs.min())
    h, w = mask.shape
    y0, y1 = int(max(cy - r, 0)), int(min(cy + r, h))
    x0, x1 = int(max(cx - r, 0)), int(min(cx + r, w))
    return cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), (cell, cell), interpolation=cv2.INTER_AREA)


def run_video_eval(out="runs/eval-video", frames: int = 75, size: int = 512, progress: bool = True) -> dict:
    from unveil.pipeline import Restorer
    from unveil.video import remove_video
    from unveil.video.clips import make_clip, read_frames, tone_of
    from unveil.viz import image_grid

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    restorer = Restorer()
    results = {}
    for motion in ("still", "moving"):
        clip = out / f"{motion}.mp4"
        masks = make_clip(clip, frames=frames, motion=motion, size=size)
        ins = read_frames(clip)
        results[motion] = {"input_flicker": flicker(ins, masks)}
        for steady in (True, False):
            mode = "steady" if steady else "per-frame"
            dst = out / f"{motion}_{mode}.mp4"
            t0 = time.perf_counter()
            rep = remove_video(clip, dst, restorer=restorer, steady=steady, keep_masks=True, overwrite=True,
                               progress=progress)
            sec = time.perf_counter() - t0
            outs = read_frames(dst)
            left = [float((m & ~f).sum() / max(m.sum(), 1)) for m, f in zip(masks, rep.masks)]
            hz, dur = tone_of(dst)
            results[motion][mode] = {"frames": len(outs), "left_mean": float(np.mean(left)), "left_max": float(np.max(left)),
                                     "flicker": flicker(outs, masks), "tone_hz": hz, "audio_s": dur,
                                     "frames_per_second": len(outs) / sec, "restored": rep.restored}
            if motion == "moving":
                pick = list(range(0, len(outs), 6))
                write_image(out / f"moving_sheet_{mode}.png",
                            image_grid([[_face(ins[k], masks[k]) for k in pick], [_face(outs[k], masks[k]) for k in pick]]))
    lines = ["| clip | mode | frames | occluder left (mean / worst frame) | flicker in occluder | input's flicker | "
             "audio | frames/s |", "|---|---|---|---|---|---|---|---|"]
    for motion, r in results.items():
        for mode in ("steady", "per-frame"):
            m = r[mode]
            lines.append(f"| {motion} | {mode} | {m['frames']} | {m['left_mean'] * 100:.1f} % / {m['left_max'] * 100:.1f} % | "
                         f"{m['flicker']:.2f} | {r['input_flicker']:.2f} | {m['tone_hz']:.0f} Hz, {m['audio_s']:.2f} s | "
                         f"{m['frames_per_second']:.2f} |")
    table = "\n".join(lines) + "\n"
    write_json(out / "video.json", results)
    write_text(out / "table.md", table)
    return {"table": table, "results": results, "out_dir": str(out)}
