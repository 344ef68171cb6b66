"""Models: one interface (:class:`Inpainter`), one registry, one file per model."""
from unveil.models.base import Inpainter, Segmenter, check_pair
from unveil.models.registry import ModelInfo, available, best, info, load, register

# Importing a model module registers it.
from unveil.models import biharmonic, cutface, gender, ifacenet, in2, lgface, opencv, pullpush, soclnet  # noqa: F401,E402



def load_segmenter(name: str = "soclnet", **kwargs) -> Segmenter:
    """A registered occluder segmenter by name."""
    if info(name).kind != "segmenter":
        from unveil.errors import UnveilError

        raise UnveilError(f"'{name}' is not a segmenter; segmenters: {', '.join(available('segmenter'))}")
    return load(name, **kwargs)


__all__ = ["Inpainter", "ModelInfo", "Segmenter", "available", "best", "check_pair", "info", "load",
           "load_segmenter", "register"]
