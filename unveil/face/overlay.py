"""Drawing detections for a person to check: boxes, scores, five key points and the mesh."""
from __future__ import annotations

import cv2
import numpy as np

from unveil.face.detect import Face

KPS_COLOURS = [(255, 60, 60), (60, 120, 255), (60, 220, 60), (255, 160, 0), (220, 0, 220)]


def draw_faces(image: np.ndarray, faces: list[Face], mesh: bool = True) -> np.ndarray:
    out = image.copy()
    h, w = out.shape[:2]
    t = max(1, round(max(h, w) / 500))
    for i, f in enumerate(faces):
        r = max(1, round(f.width / 60))
        if mesh and f.mesh is not None:
            for x, y in f.mesh:
                cv2.circle(out, (int(x), int(y)), max(1, r // 2), (0, 230, 230), -1, cv2.LINE_AA)
        x0, y0, x1, y1 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), t, cv2.LINE_AA)
        label = f"#{i} {f.score:.2f}"
        cv2.putText(out, label, (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t, (0, 0, 0),
                    3 * t, cv2.LINE_AA)
        cv2.putText(out, label, (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t, (0, 255, 0),
                    t, cv2.LINE_AA)
        for (x, y), c in zip(f.kps5, KPS_COLOURS):
            cv2.circle(out, (int(round(x)), int(round(y))), 2 * r + 1, c, -1, cv2.LINE_AA)
    return out
