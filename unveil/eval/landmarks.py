"""How far the face mesh moves when a face wears a mask (what LGFace's landmark guide meets)."""
from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from unveil.errors import UnveilError
from unveil.models.lgface import GROUPS, mesh_points


def landmark_drift(n: int = 100, size: int = 256, data=None, seed: int = 0, progress: bool = True) -> dict:
    """How far the face mesh moves when the face wears a mask: mean point error between the mesh
    of clean UTKFace test faces and of the same faces wearing a synthetic face mask, normalised by
    the distance between the eyes (NME), for all points and for the nose/lips points under the mask."""
    from unveil.data import face_records, load_face
    from unveil.occlusion.synth import Synthesizer

    recs = face_records("utkface", "test", data)[:n]
    synth = Synthesizer(data=data, split="test", size=size)
    errs, lower, missing = [], [], 0
    for i, rec in enumerate(tqdm(recs, desc="landmark drift", disable=not progress, file=sys.stderr)):
        face = load_face(rec, size)
        clean = mesh_points(face)
        if clean is None:
            continue
        try:
            occluded = synth.sample(face, seed=(seed, i), kind="facemask").occluded
        except UnveilError:
            continue
        p = mesh_points(occluded)
        if p is None:
            missing += 1
            continue
        iod = np.linalg.norm(clean[468] - clean[473])
        d = np.linalg.norm(p - clean, axis=1) / iod
        errs.append(d.mean())
        lower.append(d[GROUPS[1]].mean())
    return {"n": len(errs), "nme_all": float(np.mean(errs)) if errs else None,
            "nme_nose_lips": float(np.mean(lower)) if lower else None, "mesh_lost": missing}
