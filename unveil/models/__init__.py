"""Models: one interface (:class:`Inpainter`), one registry, one file per model."""
from unveil.models.base import Inpainter, check_pair
from unveil.models.registry import ModelInfo, available, best, info, load, register

# Importing a model module registers it.
from unveil.models import biharmonic, opencv  # noqa: F401,E402

__all__ = ["Inpainter", "ModelInfo", "available", "best", "check_pair", "info", "load", "register"]
