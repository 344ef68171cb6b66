"""The video path: frame count, timestamps and audio kept, faces followed, masks and fills steady,
cuts and faces that come and go, image sequences, bad clips."""
import json

import numpy as np
import pytest
from PIL import Image

from unveil.eval.video import flicker
from unveil.video import probe, remove_video
from unveil.video.clips import make_clip, read_frames, tone_of
from unveil.video.track import OneEuro



@pytest.fixture(scope="module")
def still(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    masks = make_clip(d / "still.mp4", frames=16, size=384)
    return d / "still.mp4", masks


@pytest.fixture(scope="module")
def restorer():
    from unveil.pipeline import Restorer

    return Restorer()


def test_a_still_clip_keeps_frames_rate_and_audio_and_its_fill_holds_still(still, restorer, tmp_path):
    clip, masks = still
    rep = remove_video(clip, tmp_path / "out.mp4", restorer=restorer, keep_masks=True, progress=False)
    info_in, info_out = probe(clip), probe(tmp_path / "out.mp4")
    outs = read_frames(tmp_path / "out.mp4")
    assert rep.frames == len(outs) == 16 and rep.restored == 16
    assert info_out.fps == info_in.fps == 25 and (info_out.width, info_out.height) == (384, 384)
    hz, dur = tone_of(tmp_path / "out.mp4")
    assert abs(hz - 440) < 5 and abs(dur - tone_of(clip)[1]) < 0.05
    left = [(m & ~f).sum() / m.sum() for m, f in zip(masks, rep.masks)]
    assert np.mean(left) < 0.05, left
    per = remove_video(clip, tmp_path / "per.mp4", restorer=restorer, steady=False, progress=False)
    assert per.frames == 16
    steady_flicker = flicker(outs, masks)
    assert steady_flicker < 0.6 * flicker(read_frames(tmp_path / "per.mp4"), masks)
    assert steady_flicker < flicker(read_frames(clip), masks)  # steadier than the input's own noise


def test_one_euro_smooths_a_still_signal_and_follows_a_move():
    rng = np.random.default_rng(0)
    f = OneEuro(25.0)
    still = [f(np.array([100.0]) + rng.normal(0, 1, 1), 50)[0] for _ in range(50)]
    assert np.std(still[10:]) < 0.5  # noise of 1 px brought well down
    moved = [f(np.array([160.0]), 50)[0] for _ in range(6)]
    assert moved[-1] > 150  # a jump of 60 px followed within a few frames


def test_cuts_and_faces_that_come_and_go(restorer, tmp_path):
    """Grey frames (no face), the masked face, then a cut to the mirrored photo: frames with no face
    are written as they came, the cut is seen, every frame is written."""
    from unveil.occlusion import demo_photo

    _, masked, _, _ = demo_photo()
    seq = tmp_path / "seq"
    seq.mkdir()
    frames = [np.full_like(masked, 128)] * 2 + [masked] * 3 + [masked[:, ::-1].copy()] * 3
    for k, f in enumerate(frames):
        Image.fromarray(f).save(seq / f"f{k:03d}.png")
    rep = remove_video(seq, tmp_path / "out", restorer=restorer, progress=False)
    assert rep.frames == 8 and rep.no_face == 2 and rep.restored == 6 and rep.cuts >= 1
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"f{k:03d}.png" for k in range(8)]
    first = np.asarray(Image.open(tmp_path / "out" / "f000.png"))
    assert (first == 128).all()
    last = np.asarray(Image.open(tmp_path / "out" / "f007.png"))
    assert (last != frames[7]).any(-1).mean() > 0.005  # the mirrored face restored after the cut


def test_cli_clip_and_its_errors(run_cli, still, tmp_path):
    clip, _ = still
    code, out, err = run_cli("remove", clip, "-o", tmp_path / "o.mp4", "--model", "telea")
    assert code == 0, err
    assert "16 frames (16 restored" in out and probe(tmp_path / "o.mp4").frames in (0, 16)
    code, _, err = run_cli("remove", clip, "-o", tmp_path / "o.mp4")
    assert code == 2 and "already exists" in err
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a clip")
    code, _, err = run_cli("remove", bad, "-o", tmp_path / "b.mp4")
    assert code == 2 and "not a video" in err and "Traceback" not in err
    code, _, err = run_cli("remove", clip, "-o", tmp_path / "x.mp4", "--engine", "ray")
    assert code == 2 and "clips take neither" in err
    assert not json.dumps(str(tmp_path)).count("tmp.mp4")  # no temporary file left
    assert not list(tmp_path.glob(".*tmp*"))
