"""``unveil gallery``: a before/after page of every seed model on photos that may be committed.

scikit-image's astronaut (a public-domain NASA portrait) wears each procedural occluder of
:data:`unveil.occlusion.draw.DRAWN` (a surgical face mask, sunglasses, a scarf, a hand), drawn from
her key points with no asset from ../shared. Each row of ``<out>/<kind>.jpg`` is the aligned crop,
the filled mask (the drawn occluder grown by ``grow`` photo pixels, as a user paints it), every
model's restoration
and the original photo's crop; ``<out>.md`` (default ``docs/gallery.md``) shows them with the
command that made them, and keeps what a person wrote between the page's notes markers.
"""
from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

#: What the gallery compares: the seed models, then the classical baselines.
MODELS = ("ifacenet", "lgface", "in2", "cutface", "biharmonic", "telea")
NOTES = ("<!-- notes:start -->", "<!-- notes:end -->")
CAPTIONS = {"facemask": "a surgical face mask with ear straps", "sunglasses": "sunglasses",
            "scarf": "a knitted scarf over mouth and chin", "hand": "a hand over the mouth and a cheek"}


def run_gallery(out: str | Path = "docs/gallery", models: tuple[str, ...] = MODELS, size: int = 192,
                grow: int = 4) -> list[str]:
    import cv2
    from skimage import data

    from unveil.face import get_detector
    from unveil.io import write_text
    from unveil.occlusion.draw import DRAWN
    from unveil.pipeline import compare

    out = Path(out)
    photo = data.astronaut()
    face = get_detector().detect_one(photo)
    lines, sections = [], []
    for kind, draw in DRAWN.items():
        occluded, mask = draw(photo, face.kps5)
        mask = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)) > 0
        path = out / f"{kind}.jpg"
        compare(occluded, path, list(models), mask=mask, faces="largest", size=size, truth=photo)
        lines.append(f"wrote {path}")
        sections.append(f"## {CAPTIONS.get(kind, kind)}\n\n![{kind}: input, mask, "
                        f"{', '.join(models)}, original]({out.name}/{path.name})\n")
    page = out.with_suffix(".md")
    notes = "What we see: (write it here; `unveil gallery` keeps this part)"
    if page.exists() and NOTES[0] in page.read_text():
        notes = page.read_text().split(NOTES[0], 1)[1].split(NOTES[1], 1)[0].strip()
    today = datetime.date.today().isoformat()
    write_text(page, "# Gallery\n\n"
               f"Made {today} by `unveil gallery` with the shipped weights. scikit-image's astronaut (a "
               "public-domain NASA portrait) wears occluders that unveil draws from her five key points "
               "(`unveil/occlusion/draw.py`, no third-party asset). Each row: the aligned face crop, the "
               f"filled mask (the drawn occluder grown by {grow} px, given as the user's mask: the same mask "
               "for every model, so this compares the inpainters, not the segmenter), each model's restoration "
               f"({', '.join(f'`{m}`' for m in models)}), and the photo without the occluder.\n\n"
               f"{NOTES[0]}\n{notes}\n{NOTES[1]}\n\n" + "\n".join(sections))
    return lines + [f"wrote {page}"]
