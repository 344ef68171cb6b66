"""Face front end: detect faces and landmarks, align them to unveil's template, paste results back."""
from unveil.face.align import TEMPLATE, WIDE_TEMPLATE, AlignedFace, align_face, similarity_transform
from unveil.face.detect import Face, FaceDetector, get_detector
from unveil.face.paste import (face_region, face_weight, image_window, mask_to_window, paste_back,
                               paste_window, replaced_in_full, warp_to_window)

__all__ = ["TEMPLATE", "WIDE_TEMPLATE", "AlignedFace", "Face", "FaceDetector", "align_face", "face_region", "face_weight",
           "get_detector", "image_window", "mask_to_window", "paste_back", "paste_window", "replaced_in_full", "similarity_transform",
           "warp_to_window"]
