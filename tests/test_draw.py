"""The procedural occluders (no third-party asset) and the gallery built from them."""
import numpy as np
import pytest

from unveil.occlusion.draw import DRAWN


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    from unveil.face import get_detector

    photo = data.astronaut()
    return photo, get_detector().detect_one(photo).kps5


@pytest.mark.parametrize("kind", sorted(DRAWN))
def test_each_occluder_covers_its_part_of_the_face_and_nothing_else_changes(kind, astronaut):
    photo, kps = astronaut
    before = photo.copy()
    out, mask = DRAWN[kind](photo, kps)
    assert np.array_equal(photo, before)  # the input is not changed
    assert out.shape == photo.shape and mask.dtype == bool
    assert np.array_equal(out[~mask], photo[~mask])  # the mask is exact
    assert (np.abs(out[mask].astype(int) - photo[mask]).sum(1) > 30).mean() > 0.8  # and really covered
    eyes, nose, mouth = kps[:2].mean(0), kps[2], kps[3:].mean(0)
    covered = {name: bool(mask[int(round(p[1])), int(round(p[0]))])
               for name, p in (("eyes", kps[0]), ("nose", nose), ("mouth", mouth))}
    expect = {"facemask": {"eyes": False, "nose": True, "mouth": True},
              "sunglasses": {"eyes": True, "nose": False, "mouth": False},
              "scarf": {"eyes": False, "mouth": True},
              "hand": {"eyes": False, "mouth": True}}[kind]
    assert {k: covered[k] for k in expect} == expect, covered
    again, mask2 = DRAWN[kind](photo, kps)
    assert np.array_equal(again, out) and np.array_equal(mask2, mask)  # deterministic
    assert eyes[1] < mouth[1]


def test_gallery_writes_a_page_with_one_grid_per_occluder(tmp_path):
    from unveil.eval.gallery import run_gallery
    from unveil.io import read_image

    lines = run_gallery(tmp_path / "gallery", models=("telea", "pullpush"), size=96)
    page = (tmp_path / "gallery.md").read_text()
    for kind in DRAWN:
        grid = read_image(tmp_path / "gallery" / f"{kind}.jpg")
        assert grid.shape[1] > grid.shape[0] * 4  # input, mask, 2 models, original side by side
        assert f"gallery/{kind}.jpg" in page
    assert "`telea`" in page and lines[-1].endswith("gallery.md")
    from unveil.eval.gallery import NOTES

    (tmp_path / "gallery.md").write_text(page.replace(page.split(NOTES[0])[1].split(NOTES[1])[0], "\nseen: lips\n"))
    run_gallery(tmp_path / "gallery", models=("telea",), size=64)
    again = (tmp_path / "gallery.md").read_text()
    assert "seen: lips" in again and "`pullpush`" not in again  # a person's notes survive a regeneration
