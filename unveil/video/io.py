"""Reading and writing clips with PyAV (FFmpeg), and folders of frames.

A clip is decoded frame by frame (RGB) and written back with the same frame count and the same
timestamps (so the same frame rate, constant or not): H.264 (libx264, CRF 17) in .mp4, .mov and
.mkv, VP9 in .webm. The audio streams are copied packet for packet when the output container takes
their codec, else re-encoded (AAC, Opus for .webm). A folder of frames (PNG, JPEG...) is read in
name order and written as PNGs of the same names.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from unveil.errors import UnveilError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: the most pixels a frame may have (8K UHD)
MAX_FRAME_PIXELS = 7680 * 4320


def _av():
    try:
        import av
    except ImportError:
        raise UnveilError("video needs PyAV: pip install av==18.1.0") from None
    return av


def is_video(path) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES


@dataclass
class ClipInfo:
    width: int
    height: int
    fps: float  #: average frame rate
    frames: int  #: as the container declares it (0 when it does not say)
    audio: int  #: audio streams
    duration: float  #: seconds (0 when unknown)


def _frames_in(folder: Path) -> list[Path]:
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise UnveilError(f"{folder}: no frames (image files) in this folder")
    return files


def probe(path) -> ClipInfo:
    """What a clip (or a folder of frames) holds; a clear error when it is no clip."""
    p = Path(path)
    if not p.exists():
        raise UnveilError(f"{p}: no such file or folder")
    if p.is_dir():
        from unveil.io import read_image

        files = _frames_in(p)
        h, w = read_image(files[0]).shape[:2]
        return ClipInfo(w, h, 25.0, len(files), 0, len(files) / 25.0)
    av = _av()
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise UnveilError(f"{p}: no video stream in this file")
            v = c.streams.video[0]
            rate = float(v.average_rate or v.guessed_rate or 25)
            dur = float(c.duration / 1e6) if c.duration else 0.0
            return ClipInfo(v.codec_context.width, v.codec_context.height, rate, int(v.frames or 0),
                            len(c.streams.audio), dur)
    except UnveilError:
        raise
    except Exception as e:  # noqa: BLE001 - FFmpeg's errors come as several av.error classes
        raise UnveilError(f"{p}: not a video FFmpeg can read ({type(e).__name__}: {e})") from None


class ClipReader:
    """Frames of a clip as (index, RGB uint8, pts, time_base); audio packets are handed to
    ``on_audio`` as they are demuxed (so they can be muxed in order)."""

    def __init__(self, path):
        self.path = Path(path)
        self.info = probe(path)
        if self.info.width * self.info.height > MAX_FRAME_PIXELS:
            raise UnveilError(f"{self.path}: frames of {self.info.width}x{self.info.height} are larger than 8K")

    def frames(self, on_audio=None) -> Iterator[tuple[int, np.ndarray, int | None, Fraction | None]]:
        if self.path.is_dir():
            from unveil.io import read_image

            for k, f in enumerate(_frames_in(self.path)):
                img = read_image(f)
                if img.shape[:2] != (self.info.height, self.info.width):
                    raise UnveilError(f"{f}: {img.shape[1]}x{img.shape[0]}, but the first frame is "
                                      f"{self.info.width}x{self.info.height}")
                yield k, img, None, None
            return
        av = _av()
        k = 0
        try:
            with av.open(str(self.path)) as c:
                v = c.streams.video[0]
                v.thread_type = "AUTO"
                streams = [v] + list(c.streams.audio)
                for packet in c.demux(*streams):
                    if packet.stream.type == "audio":
                        if on_audio is not None and packet.dts is not None:
                            on_audio(packet)
                        continue
                    for frame in packet.decode():
                        yield k, frame.to_ndarray(format="rgb24"), frame.pts, frame.time_base
                        k += 1
        except UnveilError:
            raise
        except Exception as e:  # noqa: BLE001
            if k == 0:
                raise UnveilError(f"{self.path}: cannot decode ({type(e).__name__}: {e})") from None
            raise UnveilError(f"{self.path}: decoding stopped at frame {k} ({type(e).__name__}: {e})") from None

    def frame_names(self) -> list[str]:
        return [f.name for f in _frames_in(self.path)] if self.path.is_dir() else []


class ClipWriter:
    """Writes frames (and the input's audio) to a clip, or PNGs to a folder; atomically: the clip
    is written under a temporary name and moved into place by :meth:`close`."""

    def __init__(self, path, reader: ClipReader):
        self.path, self.reader = Path(path), reader
        self.folder = reader.path.is_dir() or self.path.suffix == ""
        self.n = 0
        if self.folder:
            self.path.mkdir(parents=True, exist_ok=True)
            self.names = reader.frame_names()
            return
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise UnveilError(f"{self.path}: the output must be a clip ({', '.join(VIDEO_SUFFIXES)}) or a folder")
        av = _av()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}")
        self.out = av.open(str(self.tmp), "w")
        info = reader.info
        webm = self.path.suffix.lower() == ".webm"
        with av.open(str(reader.path)) as c:
            v = c.streams.video[0]
            self.time_base = v.time_base
            rate = v.average_rate or Fraction(round(info.fps * 1000), 1000)
            self.video = self.out.add_stream("libvpx-vp9" if webm else "libx264", rate=rate)
            self.video.width, self.video.height = info.width - info.width % 2, info.height - info.height % 2
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = v.time_base
            self.video.options = {"crf": "30", "b:v": "0", "row-mt": "1"} if webm else {"crf": "17", "preset": "medium"}
            self.audio = {}
            for a in c.streams.audio:
                self.audio[a.index] = self._audio_stream(a, webm)

    def _audio_stream(self, a, webm: bool):
        av = _av()
        ok = {"opus", "vorbis"} if webm else {"aac", "mp3", "ac3", "opus", "alac", "flac"}
        if a.codec_context.name in ok:
            return ("copy", self.out.add_stream_from_template(a), None)
        enc = self.out.add_stream("libopus" if webm else "aac", rate=a.codec_context.sample_rate or 48000)
        layout = a.codec_context.layout.name if a.codec_context.layout else "stereo"
        enc.layout = layout
        dec = av.CodecContext.create(a.codec_context.name, "r")
        dec.extradata = a.codec_context.extradata
        dec.sample_rate, dec.layout = a.codec_context.sample_rate, layout
        return ("encode", enc, dec)

    def audio_packet(self, packet) -> None:
        if self.folder:
            return
        kind, stream, dec = self.audio.get(packet.stream.index, (None, None, None))
        if kind == "copy":
            packet.stream = stream
            self.out.mux(packet)
        elif kind == "encode":
            for frame in dec.decode(packet):
                frame.pts = None
                for p in stream.encode(frame):
                    self.out.mux(p)

    def write(self, image: np.ndarray, pts=None, time_base=None) -> None:
        if self.folder:
            from unveil.io import write_image

            name = self.names[self.n] if self.n < len(self.names) else f"frame_{self.n:06d}.png"
            write_image(self.path / (Path(name).stem + ".png"), image)
            self.n += 1
            return
        av = _av()
        h, w = self.video.height, self.video.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
        frame.pts = pts if pts is not None else self.n
        frame.time_base = time_base or self.time_base
        for p in self.video.encode(frame):
            self.out.mux(p)
        self.n += 1

    def close(self, ok: bool = True) -> None:
        if self.folder:
            return
        try:
            if ok:
                for p in self.video.encode():
                    self.out.mux(p)
                for kind, stream, dec in self.audio.values():
                    if kind == "encode":
                        for p in stream.encode():
                            self.out.mux(p)
        finally:
            self.out.close()
        if ok:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
