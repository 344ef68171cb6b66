import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from unveil.cli import app

COMMANDS = ["models", "detect", "inpaint", "eval", "eval-seg", "eval-coverage", "eval-video", "eval-verify", "masks", "synth", "demo",
            "bench", "remove", "compare", "export", "serve", "eval-real", "eval-gender", "gallery"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(run_cli, cmd):
    code, out, _ = run_cli(cmd, "--help")
    assert code == 0 and "Usage" in out


def test_help_lists_every_command(run_cli):
    names = {c.name for c in app.registered_commands}
    assert set(COMMANDS) == names
    assert {g.name for g in app.registered_groups} == {"train"}
    code, out, _ = run_cli("train", "soclnet", "--help")
    assert code == 0 and "--set" in out and "--restart" in out


def test_every_learned_model_has_a_train_command():
    """`unveil train NAME` exists for exactly the registered models that run a network, and for
    the refiners two of them run after their networks: each has its shipped YAML config."""
    from unveil import models

    train = next(g.typer_instance for g in app.registered_groups if g.name == "train")
    commands = {c.name for c in train.registered_commands}
    learned = {n for n in models.available(None) if models.info(n).network}
    assert learned == {"cutface", "gender", "ifacenet", "ifacenet-fidelity", "ifacenet-single", "in2", "lgface",
                       "lgface-fidelity", "soclnet", "soclnet-noattn"}
    assert commands == learned | {"lgface-refiner", "ifacenet-refiner"}


def test_eval_on_8_real_faces_writes_every_metric(run_cli, data_root, tmp_path):
    code, out, err = run_cli("eval", "--model", "telea", "--limit", "8", "--size", "128",
                             "--masks", "nvidia", "--data", data_root, "--out", tmp_path / "ev")
    assert code == 0, err
    res = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    allrow = res["summary"]["all"]
    assert allrow["n"] == 8
    for k in ("psnr", "ssim", "l1", "psnr_hole", "ssim_hole", "l1_hole", "lpips", "identity", "ms"):
        assert allrow[k] is not None, k
    assert 15 < allrow["psnr"] < 50 and 0.5 < allrow["ssim"] <= 1
    assert allrow["psnr_hole"] < allrow["psnr"]  # the hole is where the errors are
    assert res["fd_alexnet"] is not None and "not Inception" in res["fd_alexnet_note"].replace("NOT", "not")
    assert len(res["per_image"]) == 8
    assert (tmp_path / "ev" / "grid.png").exists() and "| all | 8 |" in out
    assert Image.open(tmp_path / "ev" / "grid.png").size[1] >= 8 * 128


def test_eval_verify_on_a_few_pairs(run_cli, data_root, tmp_path):
    code, out, err = run_cli("eval-verify", "--limit", "4", "--data", data_root, "--out", tmp_path)
    assert code == 0, err
    res = json.loads((tmp_path / "verify.json").read_text())
    assert res["pairs"] == 12 and res["folds"] == 3
    for c in ("original", "masked", "restored"):
        assert 0 <= res["conditions"][c]["accuracy"] <= 1
    assert res["conditions"]["original"]["accuracy"] >= 0.75
    assert res["conditions"]["original"]["auc"] >= 0.75
    assert len(res["conditions"]["masked"]["fold_threshold_tuned"]) == 3
    assert "threshold tuned on the other folds" in (tmp_path / "table.md").read_text()
    assert res["config"]["frame"] == "photo" and res["restored_by_model"] > 0.5
    code, _, err = run_cli("eval-verify", "--frame", "tilted", "--data", data_root, "--out", tmp_path)
    assert code == 2 and "--frame must be one of photo, crop" in err


def test_verification_auc_and_the_threshold_tuned_on_other_folds():
    """The ROC AUC and LFW's protocol (threshold best on the other folds) against values worked out
    by hand on eight pairs."""
    import numpy as np
    import pytest
    from unveil.errors import UnveilError
    from unveil.eval.verify import best_threshold, roc_auc, tuned_fold_accuracy

    dist = np.array([0.3, 0.5, 0.7, 0.4, 0.6, 0.9, 0.2, 0.8])
    same = np.array([True, True, False, False, True, False, True, False])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # matched 0.2 0.3 0.5 0.6 against mismatched 0.4 0.7 0.8 0.9: 14 of 16 pairs ordered right
    assert roc_auc(dist, same) == pytest.approx(14 / 16)
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)
    # fold 1 (0.2 s, 0.6 s, 0.8 d, 0.9 d): every threshold in (0.6, 0.8) is right on all four, the
    # midpoint 0.7; fold 0 judged with it: 0.3 s, 0.5 s and 0.7 d right, 0.4 d wrong
    assert best_threshold(dist[4:], same[4:]) == pytest.approx(0.7)
    accs, thrs = tuned_fold_accuracy(dist, same, folds)
    assert thrs[0] == pytest.approx(0.7) and accs[0] == pytest.approx(0.75)
    # fold 0 (0.3 s, 0.4 d, 0.5 s, 0.7 d): 3 of 4 at best, first at 0.35; fold 1 judged with it:
    # 0.2 s, 0.8 d and 0.9 d right, 0.6 s wrong
    assert thrs[1] == pytest.approx(0.35) and accs[1] == pytest.approx(0.75)
    with pytest.raises(UnveilError, match="matched and mismatched"):
        roc_auc(dist[same], same[same])


def test_the_verification_hole_sits_on_the_aligned_face(astronaut_face):
    """`eval-verify --frame photo` draws the mask shape in the face's aligned crop and warps it onto
    the photo: on a face shifted and tilted in its photo the hole still covers the mouth, not the eyes."""
    import cv2

    from unveil.eval.verify import photo_hole
    from unveil.face import get_detector
    from unveil.masks import mask_source

    h, w = astronaut_face.shape[:2]
    tilt = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 0.8)
    tilt[:, 2] += (30, -20)
    photo = cv2.warpAffine(astronaut_face, tilt, (w, h), borderMode=cv2.BORDER_REFLECT)
    mask, _ = mask_source("facemask", None, 0)(0, 256)
    det = get_detector()
    hole = photo_hole(photo, mask, det)
    kp = det.detect(photo)[0].kps5.round().astype(int)
    assert all(hole[y, x] for x, y in kp[3:5])  # mouth corners covered
    assert not any(hole[y, x] for x, y in kp[:2])  # eyes free
    assert not np.array_equal(hole, mask)  # not the crop's mask pasted at a fixed place


def test_inpaint_command_and_its_errors(run_cli, tmp_path, astronaut_face):
    img, msk = tmp_path / "face.png", tmp_path / "mask.png"
    Image.fromarray(astronaut_face).save(img)
    m = np.zeros(astronaut_face.shape[:2], np.uint8)
    m[150:200, 80:180] = 255
    Image.fromarray(m).save(msk)
    code, _, err = run_cli("inpaint", img, "--mask", msk, "-o", tmp_path / "out.png", "--model", "telea")
    assert code == 0, err
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(out[m == 0], astronaut_face[m == 0])

    Image.fromarray(m[:100]).save(tmp_path / "small.png")
    code, _, err = run_cli("inpaint", img, "--mask", tmp_path / "small.png", "-o", tmp_path / "o2.png")
    assert code == 2 and "same size" in err
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run_cli("inpaint", tmp_path / "notes.txt", "--mask", msk, "-o", tmp_path / "o3.png")
    assert code == 2 and "not an image" in err
    Image.fromarray(np.zeros_like(m)).save(tmp_path / "empty.png")
    code, _, err = run_cli("inpaint", img, "--mask", tmp_path / "empty.png", "-o", tmp_path / "o4.png")
    assert code == 2 and "empty" in err
    code, _, err = run_cli("inpaint", img, "--mask", msk, "-o", img)
    assert code == 2 and "overwrite" in err
    Image.new("RGB", (5000, 40)).save(tmp_path / "wide.png")
    code, _, err = run_cli("inpaint", tmp_path / "wide.png", "--mask", msk, "-o", tmp_path / "o5.png")
    assert code == 2 and "too large" in err


def test_missing_data_root_exits_2_without_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "unveil", "eval", "--limit", "2", "--data",
                        str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert p.returncode == 2
    assert "UNVEIL_DATA" in p.stderr and "Traceback" not in p.stderr


def test_masks_command_writes_sheet_and_manifest(run_cli, tmp_path):
    code, _, err = run_cli("masks", "--source", "freeform:thin", "--n", "7", "--size", "64", "-o", tmp_path)
    assert code == 0, err
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert len(man["masks"]) == 7 and (tmp_path / "sheet.png").exists()
    assert [m["bin"] for m in man["masks"][:6]] == ["00-10", "10-20", "20-30", "30-40", "40-50", "50-60"]


def test_demo_restores_the_astronaut(run_cli, tmp_path):
    code, out, err = run_cli("demo", "--out", tmp_path)
    assert code == 0, err
    masked = np.asarray(Image.open(tmp_path / "astronaut_masked.png"))
    restored = np.asarray(Image.open(tmp_path / "astronaut_restored.png"))
    hole = np.asarray(Image.open(tmp_path / "astronaut_mask.png")) > 127
    from skimage import data

    truth = data.astronaut()
    assert 0.005 < hole.mean() < 0.1
    assert np.array_equal(restored[~hole], masked[~hole])
    # restoring beats keeping the drawn mask, measured against the real face
    err_restored = np.abs(restored[hole].astype(int) - truth[hole]).mean()
    err_masked = np.abs(masked[hole].astype(int) - truth[hole]).mean()
    assert err_restored < err_masked


def test_eval_on_a_folder_of_faces_and_masks(run_cli, tmp_path, astronaut_face):
    faces, masks = tmp_path / "faces", tmp_path / "masks"
    faces.mkdir()
    masks.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(astronaut_face, 10 * i, axis=1)).save(faces / f"f{i}.png")
    m = np.zeros((64, 64), np.uint8)
    m[20:44, 10:54] = 255  # 24 x 44 of 64 x 64 = 25.8 % hole, at another size than --size: resized
    Image.fromarray(m).save(masks / "m0.png")
    code, out, err = run_cli("eval", "--faces", faces, "--masks", masks, "--size", "96",
                             "--no-identity", "--no-lpips", "--out", tmp_path / "ev")
    assert code == 0, err
    res = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert res["summary"]["all"]["n"] == 3 and "20-30" in res["summary"]
    assert all(r["lpips"] is None and r["identity"] is None for r in res["per_image"])
    assert res["per_image"][0]["hole_ratio"] == pytest.approx(1056 / 4096, abs=0.01)
    code, _, err = run_cli("eval", "--faces", tmp_path / "nothing-here", "--out", tmp_path / "e2")
    assert code == 2 and "nothing-here" in err


def test_eval_seg_all_background_row(run_cli, data_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the synthetic test pool is cached under ./runs/cache
    code, out, err = run_cli("eval-seg", "--model", "all-background", "--n", "12", "--size", "128",
                             "--real", "0", "--data", data_root, "--out", tmp_path / "es")
    assert code == 0, err
    res = json.loads((tmp_path / "es" / "seg_metrics.json").read_text())
    rows = res["scores"]
    assert {"facemask", "glasses", "sunglasses", "scarf", "object", "shape", "all"} <= set(rows)
    from unveil.occlusion.segpool import PoolSpec, load_pool

    pool = load_pool(PoolSpec("test", 12, 128).path())
    assert rows["all"]["iou"] == 0.0
    assert rows["all"]["pa"] == pytest.approx(1 - pool["masks"].mean())
    code, _, err = run_cli("eval-seg", "--model", "telea", "--n", "12", "--size", "128", "--real", "0",
                           "--data", data_root, "--out", tmp_path / "es2")
    assert code == 2 and "not a segmenter" in err


def test_export_needs_a_format_and_refuses_in2(run_cli, tmp_path):
    code, _, err = run_cli("export", "-o", tmp_path)
    assert code == 2 and "--onnx" in err
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    code, _, err = run_cli("export", "--onnx", "--models", "in2", "-o", tmp_path)
    assert code == 2 and "fft" in err.lower() and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_eval_takes_a_weight_file(run_cli, data_root, tmp_path):
    from unveil.models.weights import shipped

    code, out, err = run_cli("eval", "--model", "ifacenet", "--weights", shipped("ifacenet_single"), "--limit", "2",
                             "--size", "64", "--no-lpips", "--no-identity", "--no-realism", "--data", data_root,
                             "--out", tmp_path / "ev")
    assert code == 0, err
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["config"]["model_kwargs"]["weights"].endswith(
        "ifacenet_single.safetensors")
    code, _, err = run_cli("eval", "--model", "ifacenet", "--weights", tmp_path / "none.safetensors",
                           "--data", data_root, "--out", tmp_path / "ev2")
    assert code == 2 and "no weights" in err


def test_short_help_version_and_threads(run_cli, tmp_path):
    code, out, _ = run_cli("-h")
    assert code == 0 and "Usage" in out and "remove" in out
    from unveil.version import __version__

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"unveil {__version__}"
    code, out, err = run_cli("remove", tmp_path / "none.jpg", "-o", tmp_path, "--threads", "0")
    assert code == 2 and "--threads must be at least 1" in err


def test_a_bad_device_is_one_clear_line(run_cli, tmp_path):
    import torch

    (tmp_path / "p.png").write_bytes(b"")  # never read: the device is checked first
    code, _, err = run_cli("remove", tmp_path / "p.png", "-o", tmp_path / "o", "--device", "tpu9")
    assert code == 2 and "unknown device 'tpu9'" in err and "Traceback" not in err
    if not torch.cuda.is_available():
        code, _, err = run_cli("remove", tmp_path / "p.png", "-o", tmp_path / "o", "--device", "cuda")
        assert code == 2 and "no CUDA device is available" in err
