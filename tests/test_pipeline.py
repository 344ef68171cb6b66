"""The end-to-end pipeline (`unveil.pipeline`, `unveil.remove`, `unveil remove`, `unveil compare`) on
scikit-image's astronaut wearing a face mask that unveil draws (no shared data needed)."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image

import unveil
from unveil.errors import UnveilError
from unveil.face import TEMPLATE
from unveil.pipeline import (MAX_TONE_SHIFT, Restorer, RestoreOptions, as_rgb, complete_occluder, complete_region,
                             match_border, occluder_kind, parse_faces)


@pytest.fixture(scope="module")
def demo():
    from unveil.occlusion import demo_photo

    photo, masked, occ, kps5 = demo_photo()
    return photo, masked, occ


@pytest.fixture(scope="module")
def restorer():
    return Restorer(segmenter="soclnet", inpainter="ifacenet")


class ShapeSpy:
    """An inpainter that records the size of every image it is given (and fills with grey)."""

    name = "spy"

    def __init__(self):
        self.shapes = []

    def inpaint(self, image, mask):
        self.shapes.append(image.shape)
        out = image.copy()
        out[mask] = 128
        return out


def test_restorer_finds_the_drawn_mask_and_changes_nothing_else(demo, restorer):
    photo, masked, occ = demo
    res = restorer.restore(masked)
    iou = (res.mask & occ).sum() / (res.mask | occ).sum()
    assert iou > 0.6, iou  # SOCLNET finds the drawn surgical mask
    assert np.array_equal(res.image[~res.mask], masked[~res.mask])
    assert (res.image[res.mask] != masked[res.mask]).any(axis=-1).mean() > 0.9
    # restored pixels of the drawn mask are closer to the real face than the mask was
    sel = res.mask & occ
    err_restored = np.abs(res.image[sel].astype(int) - photo[sel]).mean()
    err_masked = np.abs(masked[sel].astype(int) - photo[sel]).mean()
    assert err_restored < 0.6 * err_masked, (err_restored, err_masked)
    [face] = res.faces
    assert face.restored and face.occluder == "lower face" and 0.25 < face.area < 0.7
    rep = res.report()
    assert rep["model"] == "ifacenet" and rep["segmenter"] == "soclnet" and len(rep["faces"]) == 1
    assert rep["faces"][0]["model"] == "ifacenet"
    json.dumps(rep)  # serialisable


def test_match_border_moves_a_fill_onto_its_surroundings():
    """A fill 15 levels too bright on a flat grey photo is brought back to the photo's grey; an
    offset beyond MAX_TONE_SHIFT (the border is still occluder) moves it by that much only."""
    orig = np.full((64, 64, 3), 100, np.uint8)
    hole = np.zeros((64, 64), bool)
    cv2.circle(hole.view(np.uint8), (32, 32), 15, 1, -1)
    fill = orig.copy()
    fill[hole] = 115
    out = match_border(fill, orig, hole)
    assert np.abs(out[hole].astype(int) - 100).max() <= 1
    assert np.array_equal(out[~hole], orig[~hole])
    fill[hole] = 160
    out = match_border(fill, orig, hole)
    assert np.abs(out[hole].astype(int) - (160 - MAX_TONE_SHIFT)).max() <= 1
    # a sloped offset (a tone gradient the fill missed) is followed, not averaged away
    ramp = np.tile(np.linspace(60, 160, 64).astype(np.uint8)[None, :, None], (64, 1, 3))
    fill = ramp.copy()
    fill[hole] = 110
    out = match_border(fill, ramp, hole)
    err_before = np.abs(fill[hole].astype(int) - ramp[hole]).mean()
    err_after = np.abs(out[hole].astype(int) - ramp[hole]).mean()
    assert err_after < 0.5 * err_before, (err_before, err_after)


def test_every_hole_pixel_is_replaced_and_the_band_is_reported(demo):
    """Holes are replaced in full (no feather fades into them, which let an occluder's rim show
    through); an automatic hole's blend reaches only a few pixels beyond it, and Restoration.mask
    is exactly the set of changed pixels."""
    photo, masked, occ = demo
    user = np.zeros(masked.shape[:2], bool)
    user[118:160, 190:262] = True  # the lower face of the astronaut, under the drawn mask
    res = Restorer(segmenter=None, inpainter=ShapeSpy()).restore(masked, mask=user)
    inner = cv2.erode(user.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    dev = np.abs(res.image[inner].astype(int) - 128).max(-1)  # the spy fills grey 128
    assert dev.max() <= MAX_TONE_SHIFT + 2, dev.max()
    assert np.array_equal(res.image[~user], masked[~user])  # a user's mask is exact
    r = Restorer(segmenter="soclnet", inpainter="telea")
    res = r.restore(masked)
    changed = (res.image != masked).any(-1)
    assert not (changed & ~res.mask).any()
    hole, _ = r.auto_mask(masked)  # before the blend
    # every hole pixel is filled (a fill may meet the input's value by chance: 1 of 6,255 here)
    assert hole.any() and (hole & ~changed).sum() <= 0.001 * hole.sum()
    band = changed & ~hole
    near = cv2.dilate(hole.astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
    assert band.any() and not (band & ~near).any()  # the band is narrow: within 5 px of the hole


def test_the_wide_crop_removes_an_occluder_beyond_the_face_crop():
    """A scarf drawn by unveil reaches below the chin and past the cheeks, out of the aligned face
    crop: the face crop alone leaves a third of it; with the wide crop (the default) almost none."""
    from unveil.occlusion import demo_photo
    from unveil.occlusion.draw import draw_scarf

    photo, _, _, kps5 = demo_photo()
    img, scarf = draw_scarf(photo, kps5)
    r = Restorer(segmenter="soclnet", inpainter="telea")
    left = {}
    for wide in (False, True):
        res, left[wide], far = left_and_far(r, img, scarf, RestoreOptions(wide=wide))
        assert not ((res.image != img).any(-1) & ~res.mask).any()  # the reported mask is what changed
        assert far <= 0.05  # no spill far from the scarf
    assert left[False] > 0.2 and left[True] < 0.03, left


def left_and_far(r: Restorer, img: np.ndarray, occ: np.ndarray, options: RestoreOptions):
    """(restoration, share of the occluder ``occ`` left unchanged, share of the changed pixels
    farther than 25 px from it) of ``img`` restored by ``r`` with ``options``."""
    res = r.restore(img, options=options)
    changed = (res.image != img).any(-1)
    dist = cv2.distanceTransform((~occ).astype(np.uint8), cv2.DIST_L2, 5)
    return res, (occ & ~changed).sum() / occ.sum(), (changed & (dist > 25)).sum() / changed.sum()


def test_the_ear_loops_the_segmenter_misses_are_followed_out_of_the_hole(demo):
    """The demo's straps: SOCLNET misses the lower two (white on a light background), and the
    paste-back left their stubs beside the cheeks; followed as thin lines (the default) they go."""
    photo, masked, occ = demo
    r = Restorer(segmenter="soclnet", inpainter="telea")
    left = {}
    for loops in (False, True):
        _, left[loops], far = left_and_far(r, masked, occ, RestoreOptions(loops=loops))
        assert far <= 0.02  # nothing followed far off
    assert left[False] > 0.01 and left[True] < 0.002, left


def test_loop_traces_keep_thin_lines_beside_the_hole_only():
    """A thin bright line leaving the hole sideways is followed, grown by its soft edge; a line of
    the same strength leaving it upwards in the middle (the nose) and a thick bright patch beside
    it (a mesh of such lines, like hair or a knit) are not; an empty hole follows nothing."""
    from unveil.pipeline import loop_traces

    rng = np.random.default_rng(0)
    crop = np.clip(rng.normal(150, 3, (256, 256, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((256, 256), bool)
    cv2.ellipse(hole.view(np.uint8), (128, 160), (60, 40), 0, 0, 360, 1, -1)
    cv2.line(crop, (70, 150), (20, 120), (200, 200, 200), 3)  # a loop from the left side
    cv2.line(crop, (128, 122), (128, 70), (200, 200, 200), 3)  # up from the middle
    for k in range(0, 32, 4):  # a textured patch on the right side (hair, a knit): thin, but a mesh
        cv2.line(crop, (186 + k, 150), (186 + k, 190), (200, 200, 200), 1)
        cv2.line(crop, (186, 150 + k), (215, 150 + k), (200, 200, 200), 1)
    got = loop_traces(crop, hole)
    line = np.zeros((256, 256), np.uint8)
    cv2.line(line, (66, 148), (24, 122), 1, 1)
    assert got[line > 0].mean() > 0.95
    assert not got[60:115, 110:146].any()  # the middle line
    assert not got[150:191, 195:216].any()  # the mesh
    assert not got[:, 200:].any() and not got[200:].any()
    assert not loop_traces(crop, np.zeros((256, 256), bool)).any()


def test_a_loop_found_apart_from_the_hole_joins_it_and_other_finds_do_not():
    """The segmenter finds a loop round the ear of a turned face but not where it leaves the mask:
    found near the hole, beside it, below the eyes and long, it joins the hole by a band; a round
    patch as near, a loop as long but far off, one above the eyes, one found only weakly and a
    collar under the hole do not."""
    from unveil.pipeline import near_finds

    found = np.zeros((256, 256), bool)
    found[130:220, 80:176] = True  # the hole on the wide crop
    prob = np.zeros((256, 256), np.float32)
    shapes = np.zeros((256, 256), np.uint8)
    cv2.line(shapes, (70, 140), (40, 200), 1, 9)  # a loop 10 px off the hole's left side
    cv2.circle(shapes, (196, 170), 9, 2, -1)  # a round patch as near, on the right
    cv2.line(shapes, (240, 140), (250, 200), 3, 9)  # a loop far off
    cv2.line(shapes, (60, 40), (30, 70), 4, 9)  # above the eyes
    cv2.line(shapes, (186, 200), (215, 250), 5, 9)  # near, long, but found only at 0.4
    cv2.line(shapes, (100, 232), (156, 236), 6, 9)  # a collar under the hole's middle
    prob[shapes > 0] = 0.9
    prob[shapes == 5] = 0.4
    _, labels = cv2.connectedComponents((shapes > 0).astype(np.uint8), connectivity=8)
    got = near_finds(labels, found, prob, 6)
    assert got[shapes == 1].all() and got[136:146, 76:80].all()  # the loop, and the band to the hole
    for k in (2, 3, 4, 5, 6):
        assert not got[shapes == k].any(), k
    assert not near_finds(labels, np.zeros((256, 256), bool), prob, 6).any()


def test_a_strap_that_runs_past_the_wide_crop_is_followed_from_its_edge():
    """An N95's head strap leaves the wide crop where the wide hole reaches that crop's edge: it
    is followed on in a wider crop; a line as bright that does not run on from the hole is not."""
    from unveil.face import TEMPLATE, WIDE_TEMPLATE, align_face, image_window
    from unveil.face.paste import mask_to_window

    rng = np.random.default_rng(0)
    img = np.clip(120 + rng.normal(0, 3, (600, 600, 3)), 0, 255).astype(np.uint8)
    kps5 = TEMPLATE * 200 + 200  # a face crop over (200..400)
    body, strap, other = (np.zeros((600, 600), np.uint8) for _ in range(3))
    cv2.rectangle(body, (250, 300), (350, 380), 1, -1)
    cv2.line(strap, (350, 330), (530, 306), 1, 2)
    cv2.line(other, (480, 230), (580, 215), 1, 2)
    img[(strap | other) > 0] = 235
    img[body > 0] = (90, 140, 200)
    alw = align_face(img, kps5, 256, WIDE_TEMPLATE)
    win = image_window(img.shape, alw)
    in_wide = np.zeros((600, 600), bool)
    in_wide[win[1]:win[3], win[0]:win[2]] = mask_to_window(np.ones((256, 256), bool), alw, win)
    # the wide hole: the body and the strap as far as the wide crop reaches
    hole_w = cv2.warpAffine(cv2.dilate(body | strap, np.ones((5, 5), np.uint8)).astype(np.float32),
                            alw.matrix, (256, 256)) >= 0.5
    r = Restorer(segmenter=None, inpainter="telea")
    (x0, y0, x1, y1), lines = r.loops_beyond(img, kps5, alw, hole_w)
    got = np.zeros((600, 600), bool)
    got[y0:y1, x0:x1] = lines
    beyond = (strap > 0) & ~in_wide
    assert beyond.sum() > 200 and got[beyond].mean() > 0.8, got[beyond].mean()
    deep_inside = cv2.erode(in_wide.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # the wide crop's own
    assert not got[other > 0].any() and not got[deep_inside].any()
    # a wide hole that stops short of the wide crop's edge has nothing to follow there
    inner = cv2.warpAffine(cv2.dilate(body, np.ones((5, 5), np.uint8)).astype(np.float32),
                           alw.matrix, (256, 256)) >= 0.5
    assert r.loops_beyond(img, kps5, alw, inner) is None


def test_the_fill_beyond_the_face_crop_is_the_option_s_inpainter():
    """``RestoreOptions.beyond`` picks what fills beyond the face crop: another inpainter changes
    pixels there and nowhere on the face crop's fully pasted square; a name that is no inpainter
    is one clear error."""
    from unveil.eval.coverage import crop_square
    from unveil.occlusion import demo_photo
    from unveil.occlusion.draw import draw_scarf
    from unveil.pipeline import BEYOND

    photo, _, _, kps5 = demo_photo()
    img, scarf = draw_scarf(photo, kps5)
    r = Restorer(segmenter="soclnet", inpainter="telea")
    a = r.restore(img, keep_crops=True)
    b = r.restore(img, options=RestoreOptions(beyond="pullpush" if BEYOND != "pullpush" else "telea"))
    differ = (a.image != b.image).any(-1)
    al = a.crops[0].aligned
    inside = cv2.erode(crop_square(img.shape, al).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert differ.sum() > 100 and not (differ & inside).any()
    with pytest.raises(UnveilError, match="no-such-model"):
        RestoreOptions(beyond="no-such-model")
    with pytest.raises(UnveilError, match="not an inpainter"):
        RestoreOptions(beyond="soclnet")


def test_the_automatic_mask_holds_what_the_wide_crop_finds():
    """The web page paints ``auto_mask`` as "will be filled" and sends it back as the mask: it must
    hold the scarf beyond the face crop too, as the automatic restoration fills it."""
    from unveil.occlusion import demo_photo
    from unveil.occlusion.draw import draw_scarf

    photo, _, _, kps5 = demo_photo()
    img, scarf = draw_scarf(photo, kps5)
    r = Restorer(segmenter="soclnet", inpainter="telea")
    mask, faces = r.auto_mask(img)
    assert len(faces) == 1
    assert (scarf & ~mask).sum() / scarf.sum() < 0.03
    filled = r.restore(img).mask
    assert (mask & ~filled).sum() <= 0.01 * mask.sum()  # nothing the restoration would leave
    narrow, _ = Restorer(segmenter="soclnet", inpainter="telea", options=RestoreOptions(wide=False)).auto_mask(img)
    assert (scarf & ~narrow).sum() / scarf.sum() > 0.2


def test_the_default_inpainter_is_chosen_per_kind_of_hole(demo):
    """``inpainter="auto"`` (the default): the landmark-guided model under a lower-face occluder,
    and over the eyes (where it paints eyelids and eyes, IFACENET a blur), the best-ranked model
    elsewhere (here a hole on the forehead)."""
    from unveil.occlusion.draw import draw_sunglasses
    from unveil.pipeline import BY_KIND

    photo, masked, _ = demo
    auto = Restorer(segmenter="soclnet")
    res = auto.restore(masked)
    assert res.faces[0].occluder == "lower face" and res.faces[0].model == BY_KIND["lower face"] == "lgface"
    assert res.report()["model"].startswith("auto (lgface for lower face and eyes, ifacenet otherwise")
    kps = auto.detector.detect_one(photo).kps5
    shades, eyes = draw_sunglasses(photo, kps)
    res = Restorer(segmenter=None).restore(shades, mask=eyes)
    assert res.faces[0].occluder == "eyes" and res.faces[0].model == BY_KIND["eyes"] == "lgface"
    forehead = np.zeros(photo.shape[:2], bool)
    forehead[60:95, 200:300] = True
    res = Restorer(segmenter=None).restore(photo, mask=forehead)
    assert res.faces[0].occluder == "other" and res.faces[0].model == "ifacenet"


def test_a_face_mask_with_loops_gets_the_lower_face_inpainter(data_root):
    """The kind of occluder is read from the face crop's own hole: what the wide crop adds on the
    face (loops by the cheeks, the mask's sides) once made these LFW photos "other" (IFACENET)."""
    from unveil.eval.coverage import _photos
    from unveil.occlusion.synth import Synthesizer

    photos = _photos("lfw", 3, 0, str(data_root))
    for i in (0, 2):
        s = Synthesizer(str(data_root), "test", photos[i].shape[0], loops=1.0,
                        recolor=0.33).sample(photos[i], seed=(0, i), kind="facemask")
        f = Restorer(inpainter="telea").restore(s.occluded).faces[0]
        assert f.restored and f.occluder == "lower face", f.to_dict()
        assert Restorer().inpainter_for(f.occluder).name == "lgface"


def test_clean_face_is_left_alone(demo, restorer):
    photo, _, _ = demo
    res = restorer.restore(photo)
    assert res.faces and not res.faces[0].restored and res.faces[0].note
    assert res.mask.sum() < 0.002 * res.mask.size
    assert np.array_equal(res.image[~res.mask], photo[~res.mask])


def test_user_mask_fills_exactly_the_mask_on_and_off_the_face(demo):
    _, masked, _ = demo
    mask = np.zeros(masked.shape[:2], bool)
    mask[150:170, 200:260] = True  # across the face (the crop)
    mask[440:470, 20:60] = True  # the suit, far from the face: filled in place
    res = Restorer(segmenter=None, inpainter="telea").restore(masked, mask=mask)
    changed = (res.image != masked).any(-1)
    assert not changed[~mask].any()
    assert changed[150:170, 200:260].mean() > 0.5 and changed[440:470, 20:60].mean() > 0.5
    assert np.array_equal(res.mask, mask)
    assert res.faces[0].mask_source == "user"


def test_a_user_mask_leaves_no_rim_of_the_occluder():
    """A user's exact mask of a scarf: the photo is resampled into the face crop, so the scarf's
    colour bleeds into the crop pixels just outside the mask, and a fill that reads them painted
    a red rim back inside (45 % of the scarf stayed red with Telea); past the face crop's fading
    edge the scarf was half blended. The crop's hole now takes every pixel the mask reaches, and
    what the crop does not replace in full is filled from the wide crop or in place."""
    from unveil.occlusion import demo_photo
    from unveil.occlusion.draw import draw_scarf

    photo, _, _, kps5 = demo_photo()
    img, scarf = draw_scarf(photo, kps5)
    res = Restorer(segmenter=None, inpainter="telea").restore(img, mask=scarf)
    out = res.image.astype(int)
    redness = out[..., 0] - (out[..., 1] + out[..., 2]) / 2  # the scarf: 100-140; skin: 30-60
    assert ((redness > 70) & scarf).sum() / scarf.sum() < 0.01
    assert np.array_equal(res.image[~scarf], img[~scarf]) and np.array_equal(res.mask, scarf)


def test_high_resolution_photo_runs_on_crops_only():
    from unveil.eval.bench import pipeline_photos

    big = pipeline_photos()["6000x4000"]  # the demo photo at 4000 px inside a 6000x4000 frame
    spy = ShapeSpy()
    res = Restorer(segmenter="soclnet", inpainter=spy).restore(big)
    assert big.shape == (4000, 6000, 3)
    # one face: the space-shuttle model beside her is no face (the tiled small-face pass once said so)
    assert len(res.faces) == 1 and res.faces[0].restored
    assert spy.shapes == [(256, 256, 3)]  # the network never sees the full-resolution photo
    assert np.array_equal(res.image[~res.mask], big[~res.mask])
    assert 0.005 < res.mask.mean() < 0.1


def test_a_small_face_is_restored_and_one_under_the_limit_is_reported(demo, monkeypatch):
    import unveil.pipeline as pipeline

    _, masked, occ = demo
    small = cv2.resize(masked, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    drawn = cv2.resize(occ.astype(np.uint8), small.shape[1::-1], interpolation=cv2.INTER_AREA) > 0
    restorer = Restorer(segmenter="soclnet", inpainter="ifacenet")
    res = restorer.restore(small)
    [face] = res.faces
    assert 16 <= face.box[2] - face.box[0] < 24, face.box  # a face the old 24 px limit left
    assert face.restored and (drawn & ~res.mask).sum() <= 0.05 * drawn.sum()
    monkeypatch.setattr(pipeline, "MIN_FACE", 24)
    res = restorer.restore(small)
    assert not res.faces[0].restored and "smaller than 24 px" in res.faces[0].note
    assert np.array_equal(res.image, small) and not res.mask.any()


def test_face_selection(demo):
    _, masked, _ = demo
    small = cv2.resize(masked, (256, 256), interpolation=cv2.INTER_AREA)
    two = np.full((512, 768, 3), 200, np.uint8)
    two[:, :512] = masked
    two[128:384, 512:] = small
    spy = ShapeSpy()
    r = Restorer(segmenter="soclnet", inpainter=spy)
    res = r.restore(two)
    assert len(res.faces) == 2 and all(f.restored for f in res.faces)
    assert res.faces[0].box[2] - res.faces[0].box[0] > res.faces[1].box[2] - res.faces[1].box[0]
    res = r.restore(two, faces="largest")
    assert len(res.faces) == 1 and res.faces[0].index == 0
    assert not res.mask[:, 512:].any()  # the small face is untouched
    res = r.restore(two, faces="1")
    assert [f.index for f in res.faces] == [1] and not res.mask[:, :512].any()
    with pytest.raises(UnveilError, match="face 5 requested but 2 found"):
        r.restore(two, faces="5")


@pytest.mark.parametrize("bad, msg", [("none", "faces must be"), ("-1", "faces must be"), ("a,b", "faces must be")])
def test_bad_face_selection(bad, msg):
    with pytest.raises(UnveilError, match=msg):
        parse_faces(bad)
    assert parse_faces("0, 2") == [0, 2] and parse_faces("ALL") == "all"


def test_bad_inputs_get_clear_errors(demo, restorer):
    _, masked, _ = demo
    with pytest.raises(UnveilError, match="uint8"):
        restorer.restore(masked.astype(np.float32))
    with pytest.raises(UnveilError, match="mask is 10x10 but the image is 512x512"):
        restorer.restore(masked, mask=np.ones((10, 10), bool))
    with pytest.raises(UnveilError, match="empty"):
        restorer.restore(masked, mask=np.zeros(masked.shape[:2], bool))
    gradient = np.tile(np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None], (200, 1, 3))
    with pytest.raises(UnveilError, match="no face found"):
        restorer.restore(gradient)
    with pytest.raises(UnveilError, match="expected an image"):
        restorer.restore([1, 2, 3])
    with pytest.raises(UnveilError, match="HxW, HxWx3 or HxWx4"):
        as_rgb(np.zeros((20, 20, 2), np.uint8))
    with pytest.raises(UnveilError, match="dilate"):
        RestoreOptions(dilate=-1)


def test_remove_api_accepts_numpy_pil_path_gray_rgba(demo, tmp_path):
    _, masked, _ = demo
    out = unveil.remove(masked, model="telea")
    assert out.shape == masked.shape and out.dtype == np.uint8 and (out != masked).any()
    pil = unveil.remove(Image.fromarray(masked), model="telea")
    assert np.array_equal(pil, out)
    path = tmp_path / "in.png"
    Image.fromarray(masked).save(path)
    assert np.array_equal(unveil.remove(path, model="telea"), out)
    assert path.stat().st_size > 0  # the input is untouched
    gray = cv2.cvtColor(masked, cv2.COLOR_RGB2GRAY)
    g = unveil.remove(gray, model="telea")
    assert g.shape == masked.shape  # grayscale in, RGB of the same size out
    rgba = np.dstack([masked, np.full(masked.shape[:2], 255, np.uint8)])
    assert np.array_equal(unveil.remove(rgba, model="telea"), out)
    det = unveil.remove(masked, model="telea", return_details=True)
    assert np.array_equal(det.image, out) and det.mask.any() and det.faces[0].occluder == "lower face"


def test_occluder_kind_from_where_the_hole_lies():
    n = 256
    yy, xx = np.mgrid[:n, :n] / n
    lower = (yy > TEMPLATE[2, 1] - 0.04) & (yy < 0.97) & (np.abs(xx - 0.5) < 0.3)
    eyes = (np.abs(yy - TEMPLATE[0, 1]) < 0.07) & (np.abs(xx - 0.5) < 0.32)
    hand = (xx < 0.3) & (yy > 0.3)
    assert occluder_kind(lower) == "lower face"
    # a mask up to the bridge of the nose, wide over the cheeks: 0.65 of it below the nose tip
    bridge = (yy > 0.33) & (yy < 0.97) & (np.abs(xx - 0.5) < 0.3)
    bridge |= (yy > 0.33) & (yy < TEMPLATE[2, 1] * 0.92) & (np.abs(xx - 0.5) < 0.45)
    assert occluder_kind(bridge) == "lower face"
    assert occluder_kind((yy > 0.2) & (yy < 0.97) & (np.abs(xx - 0.5) < 0.3)) == "other"  # over the eyes too
    assert occluder_kind(eyes) == "eyes"
    assert occluder_kind(hand) == "other"
    assert occluder_kind(np.zeros((n, n), bool)) == "none"


def _striped_mask_face(n=256, seed=0):
    """A skin-toned crop with a red-and-white striped 'mask' over the lower face (noise on both)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n] / n
    img = np.clip(rng.normal((205, 160, 135), 6, (n, n, 3)), 0, 255)
    mask = complete_region(n) & (yy > 0.45) & (np.abs(xx - 0.5) < 0.36)
    stripes = ((xx * n) // 10 % 2 == 0)[..., None]
    cloth = np.where(stripes, (200, 30, 40), (245, 245, 245)) + rng.normal(0, 6, (n, n, 3))
    img = np.where(mask[..., None], cloth, img)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def test_a_mask_found_in_part_is_completed_by_its_colours():
    img, mask = _striped_mask_face()
    n = img.shape[0]
    found = mask & (np.mgrid[:n, :n][1] < n * 0.5)  # SOCLNET saw the left half only
    prob = np.where(found, 0.9, 0.05).astype(np.float32)
    done = complete_occluder(img, prob, found)
    assert found.mean() < 0.6 * mask.mean()
    assert (done & mask).sum() >= 0.95 * mask.sum()  # the right half too
    assert (done & ~mask).sum() <= 0.02 * mask.sum()  # not the skin around it
    assert not (done & ~complete_region(n) & ~found).any()  # nothing added outside the lower face
    assert (done >= found).all()  # nothing found is taken away


def test_the_colour_completion_gives_the_same_hole_every_time():
    """GrabCut draws its colour models by k-means on OpenCV's global random state: whatever ran
    before, the same crop gets the same hole."""
    img, mask = _striped_mask_face(seed=3)
    n = img.shape[0]
    rng = np.random.default_rng(5)
    img = np.clip(img + rng.normal(0, 18, img.shape), 0, 255).astype(np.uint8)  # a noisier print
    found = mask & (np.mgrid[:n, :n][1] < n * 0.45)
    prob = np.where(found, 0.9, 0.05).astype(np.float32)
    holes = []
    for k in range(6):
        cv2.setRNGSeed(100 + k)
        cv2.randu(np.zeros((64, 64), np.float32), 0, 1)  # OpenCV's random state moved on
        holes.append(complete_occluder(img, prob, found))
    assert all(np.array_equal(holes[0], h) for h in holes[1:])


def test_the_colour_completion_leaves_other_holes_alone():
    img, mask = _striped_mask_face()
    n = img.shape[0]
    yy, xx = np.mgrid[:n, :n] / n
    eyes = (np.abs(yy - TEMPLATE[0, 1]) < 0.07) & (np.abs(xx - 0.5) < 0.32)  # glasses: above the region
    assert (complete_occluder(img, np.where(eyes, 0.9, 0.0).astype(np.float32), eyes) == eyes).all()


@pytest.fixture(scope="module")
def photos(demo, tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    _, masked, _ = demo
    Image.fromarray(masked).save(d / "astronaut.jpg", quality=95)
    (d / "sub").mkdir()
    Image.fromarray(masked[::2, ::2]).save(d / "sub" / "small.png")
    (d / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    (d / "broken.png").write_bytes(b"not a png")
    return d


def test_cli_remove_batch_writes_outputs_and_reports_failures(run_cli, photos, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run_cli("remove", photos, "-o", out, "--model", "telea", "--save-masks", "--report")
    assert code == 2 and "1 of 3 photos failed" in err and "broken.png" in stdout + err
    assert "Traceback" not in err
    assert (out / "astronaut.jpg").exists() and (out / "sub" / "small.png").exists()
    rep = json.loads((out / "astronaut.json").read_text())
    assert rep["faces"][0]["restored"] and rep["model"] == "telea"
    mask = np.asarray(Image.open(out / "astronaut.mask.png")) > 127
    assert 0.005 < mask.mean() < 0.1
    src = np.asarray(Image.open(photos / "sub" / "small.png"))
    res = np.asarray(Image.open(out / "sub" / "small.png"))
    m2 = np.asarray(Image.open(out / "sub" / "small.mask.png")) > 127
    assert res.shape == src.shape and np.array_equal(res[~m2], src[~m2])


def test_cli_remove_with_a_user_mask_and_never_overwrites_the_input(run_cli, photos, tmp_path):
    src = photos / "sub" / "small.png"
    before = src.read_bytes()
    m = np.zeros((256, 256), np.uint8)
    m[100:120, 100:150] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    code, _, err = run_cli("remove", src, "-o", tmp_path / "o", "--mask", tmp_path / "m.png", "--model", "telea")
    assert code == 0, err
    out = np.asarray(Image.open(tmp_path / "o" / "small.png"))
    img = np.asarray(Image.open(src))
    changed = (out != img).any(-1)
    assert changed[100:120, 100:150].mean() > 0.5 and not changed[m == 0].any()
    own = tmp_path / "own"
    own.mkdir()
    (own / "small.png").write_bytes(before)
    code, _, err = run_cli("remove", own / "small.png", "-o", own, "--model", "telea")
    assert code == 0, err  # written beside the input under a new name, never over it
    assert (own / "small.png").read_bytes() == before and (own / "small-2.png").exists()
    assert src.read_bytes() == before
    code, _, err = run_cli("remove", photos, "-o", tmp_path / "o2", "--mask", tmp_path / "m.png")
    assert code == 2 and "one photo only" in err or "applies to one photo" in err


def test_cli_compare_writes_one_grid(run_cli, photos, tmp_path):
    code, out, err = run_cli("compare", photos / "astronaut.jpg", "-o", tmp_path / "grid.png",
                             "--models", "telea,navier-stokes,ifacenet", "--size", "128")
    assert code == 0, err
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape[1] == 5 * (128 + 4)  # input, mask, three models
    assert "ifacenet" in out
    code, _, err = run_cli("compare", photos / "astronaut.jpg", "-o", tmp_path / "g.png", "--models", "soclnet")
    assert code == 2 and "not an inpainter" in err


def test_models_command_lists_sizes_and_default(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("ifacenet"))
    assert "1.31M" in line and "(default)" in line
    assert any(ln.startswith("soclnet ") and "(default)" in ln for ln in out.splitlines())


def test_identity_report_for_a_mostly_visible_face(demo):
    photo, _, _ = demo
    mask = np.zeros(photo.shape[:2], bool)
    mask[150:165, 205:250] = True  # a small hole on the cheeks and nose: the face stays visible
    res = Restorer(segmenter=None, inpainter="telea", options=RestoreOptions(identity=True)).restore(photo, mask)
    d = res.faces[0].identity_distance
    assert d is not None and d < 0.4, d  # the same person after a small fill (dlib: < 0.6)


def test_remove_per_call_options_do_not_stick(demo):
    _, masked, _ = demo
    wide = unveil.remove(masked, model="telea", dilate=14, return_details=True).mask.sum()
    plain = unveil.remove(masked, model="telea", return_details=True).mask.sum()
    assert wide > 1.1 * plain


def test_batch_plans_names_that_never_collide_or_overwrite(tmp_path, demo):
    """Outputs are decided before any work: same-named inputs keep both, no output or mask lands
    on an input, an existing file is only replaced with --overwrite, and one unreadable photo
    does not stop the batch."""
    from unveil.batch import collect_photos, plan_outputs, run_batch

    _, masked, _ = demo
    d = tmp_path / "d"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    Image.fromarray(masked).save(d / "p.png")
    Image.fromarray(masked).save(d / "p.tif")  # maps to p.png too: over the other input
    Image.fromarray(masked).save(d / "a" / "q.jpg")
    Image.fromarray(masked).save(d / "b" / "q.jpg")
    (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    items = collect_photos([d / "a" / "q.jpg", d / "b" / "q.jpg"])
    plan, refused = plan_outputs(items, tmp_path / "o")
    assert [p.name for p in plan] == ["q.jpg", "q-2.jpg"] and not refused
    items = collect_photos([d])
    plan, refused = plan_outputs(items, d, save_masks=True)  # -o the input folder itself
    names = [p.relative_to(d).as_posix() for p in plan]
    inputs = {rel.as_posix() for _, rel in items}
    assert len(set(names)) == len(names) and not set(names) & inputs and "p-2.png" in names
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    r = run_batch(Restorer(segmenter="soclnet", inpainter="telea"), items, d, save_masks=True, progress=False,
                  say=lambda _: None)
    assert r.done == 4 and len(r.failed) == 1 and "bad.png" in r.failed[0]
    assert all(p.read_bytes() == b for p, b in before.items())  # no input touched
    again = run_batch(Restorer(segmenter="soclnet", inpainter="telea"), collect_photos([d / "a" / "q.jpg"]),
                      tmp_path / "o2", progress=False, say=lambda _: None)
    assert again.done == 1
    third = run_batch(Restorer(segmenter="soclnet", inpainter="telea"), collect_photos([d / "a" / "q.jpg"]),
                      tmp_path / "o2", progress=False, say=lambda _: None)
    assert third.done == 0 and "already exists" in third.failed[0]
    fourth = run_batch(Restorer(segmenter="soclnet", inpainter="telea"), collect_photos([d / "a" / "q.jpg"]),
                       tmp_path / "o2", progress=False, say=lambda _: None, overwrite=True)
    assert fourth.done == 1


def test_cli_remove_with_a_folder_of_masks(run_cli, demo, tmp_path):
    """--mask DIR: each photo takes the mask of its own relative path and name; a photo without one
    is reported and skipped; masks saved beside the outputs never replace the given ones."""
    _, masked, _ = demo
    photos, masks = tmp_path / "p", tmp_path / "m"
    (photos / "s").mkdir(parents=True)
    (masks / "s").mkdir(parents=True)
    for rel in ("a.png", "s/b.png", "c.png"):
        Image.fromarray(masked).save(photos / rel)
    m = np.zeros(masked.shape[:2], np.uint8)
    m[120:150, 200:250] = 255
    Image.fromarray(m).save(masks / "a.png")
    m2 = np.zeros_like(m)
    m2[300:330, 20:60] = 255
    Image.fromarray(m2).save(masks / "s" / "b.mask.png")
    code, out, err = run_cli("remove", photos, "-o", tmp_path / "o", "--mask", masks, "--model", "telea")
    assert code == 2 and "1 of 3 photos failed" in err and "c.png: no mask for it" in out + err
    for rel, mm in (("a.png", m), ("s/b.png", m2)):
        out = np.asarray(Image.open(tmp_path / "o" / rel))
        changed = (out != masked).any(-1)
        assert changed[mm > 0].mean() > 0.5 and not changed[mm == 0].any(), rel
    assert not (tmp_path / "o" / "c.png").exists()


def test_python_api_arguments_are_checked_with_plain_messages(demo):
    """PIL images get the size checks of files, faces/dilate/threshold are validated, and masks
    follow one documented rule (bool as is, 0/1 non-zero, 8-bit at 128, float at 0.5; NaN refused)."""
    from unveil.errors import UnveilError
    from unveil.pipeline import as_mask

    _, masked, _ = demo
    for call, msg in [(lambda: unveil.remove(Image.new("RGB", (0, 0))), "too small"),
                      (lambda: unveil.remove(Image.new("RGB", (12000, 12000))), "too large"),
                      (lambda: unveil.remove(masked, faces=-1), "indices from 0"),
                      (lambda: unveil.remove(masked, faces=[0.5]), "indices from 0"),
                      (lambda: unveil.remove(masked, dilate=2.5), "whole number"),
                      (lambda: RestoreOptions(threshold=float("nan")), "threshold"),
                      (lambda: unveil.remove(masked, mask=np.full(masked.shape[:2], np.nan)), "NaN")]:
        with pytest.raises(UnveilError, match=msg):
            call()
    shape = (4, 4)
    m = np.zeros(shape, np.uint8)
    m[0, 0], m[1, 1], m[2, 2] = 1, 100, 200
    assert as_mask(m, shape).sum() == 1  # 8-bit: 128 and up
    assert as_mask((m > 0).astype(np.uint8), shape).sum() == 3  # a 0/1 mask: non-zero
    assert as_mask(m.astype(np.float32) / 255, shape).sum() == 1  # float: 0.5 and up
    with pytest.raises(UnveilError, match="0..255"):
        as_mask(np.full(shape, 300, np.int32), shape)


def test_output_paths_that_cannot_be_written_are_one_clear_line(run_cli, demo, tmp_path):
    """A 240-character file name (its temporary name stays short), -o naming a file, -o where no
    folder can be made."""
    _, masked, _ = demo
    d = tmp_path / "in"
    d.mkdir()
    long = "a" * 240 + ".png"
    Image.fromarray(masked).save(d / long)
    code, _, err = run_cli("remove", d, "-o", tmp_path / "out", "--model", "telea", "--save-masks")
    assert code == 0, err
    assert (tmp_path / "out" / long).exists() and not list((tmp_path / "out").glob(".*"))
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli("remove", d / long, "-o", tmp_path / "afile", "--model", "telea")
    assert code == 2 and "is a file" in err and "Traceback" not in err
    code, _, err = run_cli("remove", d / long, "-o", "/proc/unveil-out", "--model", "telea")
    assert code == 2 and "cannot create this folder" in err


def test_a_wide_local_fill_runs_at_a_reduced_scale_and_meets_the_photo(monkeypatch):
    """A user's mask far from any face is filled with Telea; a region whose window passes
    LOCAL_MAX_PIXELS is filled coarse first, then its edge again at full resolution: every mask
    pixel replaced, nothing outside touched, and the fill continues the surroundings."""
    import unveil.pipeline as pl

    h, w = 300, 400
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 90)], -1).astype(np.uint8)  # smooth ramps
    mask = np.zeros((h, w), bool)
    mask[40:260, 60:340] = True
    exact = pl.fill_locally(img, mask)
    monkeypatch.setattr(pl, "LOCAL_MAX_PIXELS", 10_000)  # the window is 68,000 px: the coarse path
    coarse = pl.fill_locally(img, mask)
    for out in (exact, coarse):
        assert (out[~mask] == img[~mask]).all()
    assert (coarse[mask] != 0).all()
    # at the mask's edge the fill matches the photo beside it (no step where coarse meets fine)
    edge = mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    step = np.abs(coarse.astype(int) - img.astype(int))[edge].mean()
    assert step < 6, step
    assert np.abs(coarse.astype(int) - exact.astype(int))[mask].mean() < 25
