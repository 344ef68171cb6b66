import numpy as np
import pytest
from PIL import Image

from unveil.errors import UnveilError
from unveil.io import read_image, read_mask, write_image


def test_exif_rotation_grayscale_and_alpha(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # white half now on top

    Image.fromarray(arr[..., 0]).save(tmp_path / "grey.png")
    assert read_image(tmp_path / "grey.png").shape == (20, 40, 3)

    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent black -> white background
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    assert read_image(tmp_path / "alpha.png").min() == 255


def test_bad_files_give_clear_errors(tmp_path):
    (tmp_path / "note.png").write_text("not an image")
    with pytest.raises(UnveilError, match="not an image"):
        read_image(tmp_path / "note.png")
    with pytest.raises(UnveilError, match="no such file"):
        read_image(tmp_path / "missing.png")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnveilError, match="truncated|damaged"):
        read_image(tmp_path / "cut.jpg")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(UnveilError, match="too small"):
        read_image(tmp_path / "tiny.png")


def test_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    import unveil.io as uio

    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(uio, "MAX_PIXELS", 5000)
    with pytest.raises(UnveilError, match="too large"):
        read_image(tmp_path / "big.png")


def test_mask_size_is_checked_and_writes_are_atomic(tmp_path):
    m = np.zeros((10, 12), bool)
    m[2:4, 3:5] = True
    write_image(tmp_path / "m.png", m)
    assert np.array_equal(read_mask(tmp_path / "m.png", (10, 12)), m)
    with pytest.raises(UnveilError, match="same size"):
        read_mask(tmp_path / "m.png", (20, 20))
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temp file left behind
    with pytest.raises(UnveilError, match="overwrite an input"):
        write_image(tmp_path / "m.png", m, protect=(tmp_path / "m.png",))


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # no file left open
def test_broken_files_are_read_or_refused_with_one_clear_error(tmp_path):
    """Every broken file either decodes or raises UnveilError: no other exception (ValueError,
    struct.error, TypeError from Pillow's decoders or EXIF) and no warning escapes."""
    import warnings

    from unveil.io import read_image, read_image_info, read_mask

    refused = 0
    import hostile  # tests/hostile.py: broken files made at test time

    for k, data in enumerate(hostile.broken_files(np.random.default_rng(0), 120).values()):
        p = tmp_path / f"f{k}.img"
        p.write_bytes(data)
        for read in (read_image, lambda x: read_image_info(x.read_bytes(), name="upload")[0], read_mask):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    arr = read(p)
                    assert arr.shape[:2] in ((24, 32), (32, 24))
                except UnveilError as e:
                    refused += 1
                    assert "\n" not in str(e)
    assert refused > 50  # most of the corpus is refused, plainly
