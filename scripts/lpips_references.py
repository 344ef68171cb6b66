"""Reference points for LPIPS-VGG on the hole's box (the realism column of `unveil eval`).

On UTKFace test faces with the face-mask hole, the hole is filled with (a) the truth itself passed
through 128 px, (b) the truth blurred, (c) another test face's lower face, raw and with its mean
colour matched, and (d) a model's output. It tells how much of the score a model's resolution
costs and how much the content (whose mouth, whose chin) does.

    python scripts/lpips_references.py --limit 100 --model lgface
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from unveil import models
from unveil.data import face_records, load_face
from unveil.eval import metrics as M
from unveil.eval.harness import blank_hole
from unveil.eval.lpips import get_lpips
from unveil.masks import mask_source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--masks", default="facemask")
    ap.add_argument("--model", default="lgface")
    a = ap.parse_args()
    truths = [load_face(r, 256) for r in face_records("utkface", "test", None)[: a.limit]]
    src = mask_source(a.masks, None, 0)
    holes = [src(i, 256)[0] for i in range(len(truths))]
    vgg, model = get_lpips("vgg"), models.load(a.model)

    def other(i, t, m, match):
        o = truths[(i + 1) % len(truths)].astype(np.float32)
        if match:
            o = o - o[m].mean(0) + t[m].astype(np.float32).mean(0)
        return np.clip(o, 0, 255).astype(np.uint8)

    fills = {
        "truth through 128 px": lambda i, t, m: cv2.resize(cv2.resize(t, (128, 128), interpolation=cv2.INTER_AREA),
                                                           (256, 256), interpolation=cv2.INTER_CUBIC),
        "truth blurred, sigma 1 px": lambda i, t, m: cv2.GaussianBlur(t, (0, 0), 1.0),
        "truth blurred, sigma 2 px": lambda i, t, m: cv2.GaussianBlur(t, (0, 0), 2.0),
        "another face's lower face": lambda i, t, m: other(i, t, m, False),
        "another face's, colour matched": lambda i, t, m: other(i, t, m, True),
        a.model: lambda i, t, m: model.inpaint(blank_hole(t, m), m),
    }
    scores = {k: [] for k in fills}
    for i, (t, m) in enumerate(zip(truths, holes)):
        ys, xs = M.hole_box(m)
        for k, f in fills.items():
            out = np.where(m[..., None], f(i, t, m), t).astype(np.uint8)
            scores[k].append(float(vgg.distance(out[ys, xs], t[ys, xs])[0]))
    print(f"| fill of the hole ({len(truths)} UTKFace test faces, `{a.masks}`) | LPIPS-VGG box |\n|---|---|")
    for k, v in scores.items():
        print(f"| {k} | {np.mean(v):.3f} |")


if __name__ == "__main__":
    main()
