"""unveil: find what hides a face and restore the face beneath.

Public entry points:
    unveil.models.load(name)       -> an Inpainter (``inpaint(image, mask)``)
    unveil.models.available()      -> registered model names
    unveil.io.read_image(path)     -> uint8 HxWx3 RGB, EXIF-rotated, with clear errors
"""
from unveil.errors import UnveilError

__version__ = "0.1.0"
__all__ = ["UnveilError", "__version__"]
