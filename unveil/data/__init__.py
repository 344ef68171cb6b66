"""Access to the face data in ``../shared/data`` (or ``--data`` / ``UNVEIL_DATA``)."""
from unveil.data.faces import (
    FaceRecord,
    LFWPair,
    face_records,
    lfw_pairs,
    load_face,
)
from unveil.data.paths import DATA_ENV, data_root
from unveil.data.dataset import FaceDataset

__all__ = [
    "DATA_ENV",
    "FaceDataset",
    "FaceRecord",
    "LFWPair",
    "data_root",
    "face_records",
    "lfw_pairs",
    "load_face",
]
