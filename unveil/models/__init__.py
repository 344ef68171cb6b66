"""Models: one interface (:class:`Inpainter`), one registry, one file per model."""
from unveil.models.base import Inpainter, Segmenter, check_pair
from unveil.models.registry import (ModelInfo, available, best, build_network, info, load, make_config, network,
                                    register, require, runs, shared)

# Importing a model module registers it.
from unveil.models import biharmonic, cutface, gender, ifacenet, in2, lgface, opencv, pullpush, refiner, soclnet  # noqa: F401,E402



def load_segmenter(name: str = "soclnet", **kwargs) -> Segmenter:
    """A registered occluder segmenter by name."""
    return load(name, "segmenter", **kwargs)


__all__ = ["Inpainter", "ModelInfo", "Segmenter", "available", "best", "build_network", "check_pair", "info",
           "load", "load_segmenter", "make_config", "network", "register", "require", "runs", "shared"]
