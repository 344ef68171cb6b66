"""Occlusion: drawing occluders on faces (procedural face masks now; synthesis from assets next)."""
from unveil.occlusion.draw import draw_surgical_mask

__all__ = ["draw_surgical_mask"]
