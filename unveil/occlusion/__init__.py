"""Occlusion: drawing occluders on faces (procedural face masks now; synthesis from assets next)."""
from unveil.occlusion.draw import demo_photo, draw_surgical_mask

__all__ = ["demo_photo", "draw_surgical_mask"]
