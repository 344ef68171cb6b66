"""Test clips made here (no footage needed): the demo photo (scikit-image's astronaut wearing a
drawn surgical mask) as a 3 s clip with fresh sensor noise on every frame and a tone on the audio
track, the camera still or the face moving; the drawn occluder's mask of every frame comes with it.
"""
from __future__ import annotations


import cv2
import numpy as np


def _motion(k: int, n: int, kind: str, shape) -> np.ndarray:
    """The 2x3 affine of frame ``k``: identity (still), or a slow drift, zoom and tilt (moving)."""
    h, w = shape
    if kind == "still":
        return np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    t = k / max(n - 1, 1)
    ang = 6 * np.sin(2 * np.pi * t)
    scale = 1.0 + 0.12 * np.sin(np.pi * t)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, scale)
    m[:, 2] += (40 * np.sin(2 * np.pi * t), 20 * np.sin(4 * np.pi * t))
    return m


def make_clip(path, frames: int = 75, fps: int = 25, noise: float = 3.0, motion: str = "still", tone: float = 440.0,
              size: int = 512, width: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """Write the clip to ``path`` (.mp4: H.264 lossless, and AAC audio); return the occluder mask
    (bool HxW) of every frame. ``motion``: "still" or "moving". Frames are ``size`` high and
    ``width`` wide (default square; the photo is widened by reflection)."""
    import av

    from unveil.occlusion import demo_photo

    _, masked, occ, _ = demo_photo()
    interp = cv2.INTER_AREA if size <= masked.shape[0] else cv2.INTER_CUBIC
    masked = cv2.resize(masked, (size, size), interpolation=interp)
    occ = cv2.resize(occ.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
    width = width or size
    if width > size:
        left = (width - size) // 2
        masked = cv2.copyMakeBorder(masked, 0, 0, left, width - size - left, cv2.BORDER_REFLECT101)
        occ = np.pad(occ, ((0, 0), (left, width - size - left)))
    rng = np.random.default_rng(seed)
    masks = []
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height = width, size
        v.pix_fmt = "yuv444p"
        v.options = {"crf": "0", "preset": "ultrafast"}
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for k in range(frames):
            m = _motion(k, frames, motion, (size, width))
            img = cv2.warpAffine(masked, m, (width, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
            masks.append(cv2.warpAffine(occ.astype(np.uint8), m, (width, size), flags=cv2.INTER_NEAREST) > 0)
            img = np.clip(img.astype(np.float32) + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for p in v.encode(frame):
                c.mux(p)
        n = int(48000 * frames / fps)
        samples = (0.3 * np.sin(2 * np.pi * tone * np.arange(n) / 48000)).astype(np.float32)[None]
        for i in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(samples[:, i:i + 1024], format="flt", layout="mono")
            af.sample_rate = 48000
            af.pts = i
            for p in a.encode(af):
                c.mux(p)
        for s in (v, a):
            for p in s.encode():
                c.mux(p)
    return masks


def read_frames(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def tone_of(path) -> tuple[float, float]:
    """(dominant frequency in Hz, seconds) of the first audio stream."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            return 0.0, 0.0
        rate = c.streams.audio[0].codec_context.sample_rate
        chunks = [f.to_ndarray().astype(np.float64).reshape(f.to_ndarray().shape[0], -1)[0] for f in c.decode(audio=0)]
    x = np.concatenate(chunks) if chunks else np.zeros(1)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spec))]), len(x) / rate
