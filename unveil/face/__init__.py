"""Face front end: detect faces and landmarks, align them to unveil's template, paste results back."""
from unveil.face.align import TEMPLATE, AlignedFace, align_face, similarity_transform
from unveil.face.detect import Face, FaceDetector, get_detector
from unveil.face.paste import face_region, face_weight, paste_back

__all__ = ["TEMPLATE", "AlignedFace", "Face", "FaceDetector", "align_face", "face_region", "face_weight",
           "get_detector", "paste_back", "similarity_transform"]
