"""unveil: find what hides a face and restore the face beneath.

Public entry points:
    unveil.remove(image)           -> the restored photo (uint8 RGB, the input's size); the
                                      occluders are found by SOCLNET, the faces filled and pasted back
    unveil.pipeline.Restorer       -> the same, configurable (faces, masks, dilation, report)
    unveil.models.load(name)       -> an Inpainter (``inpaint(image, mask)``)
    unveil.models.available()      -> registered model names
    unveil.io.read_image(path)     -> uint8 HxWx3 RGB, EXIF-rotated, with clear errors
"""
from unveil.errors import UnveilError
from unveil.version import __version__
__all__ = ["UnveilError", "__version__", "remove"]


def remove(image, **kwargs):
    """Restore every occluded face of ``image`` (numpy uint8 RGB, PIL image or path).

    Keyword arguments: ``model`` (inpainter name), ``segmenter`` ("soclnet"), ``mask`` (bool HxW
    or a path: fill it instead of segmenting), ``faces`` ("all", "largest", "0,2"), ``dilate``,
    ``device``, ``return_details`` (a Restoration with ``.image``, ``.mask``, ``.faces``,
    ``.report()``). Returns uint8 HxWx3 RGB of the input's size.
    """
    from unveil.pipeline import remove as _remove

    return _remove(image, **kwargs)
