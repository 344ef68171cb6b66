import numpy as np
import pytest
import torch

from unveil.data import FaceDataset, face_records, lfw_pairs, load_face
from unveil.data.paths import data_root
from unveil.errors import UnveilError


def test_missing_data_root_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("UNVEIL_DATA", str(tmp_path / "absent"))
    with pytest.raises(UnveilError, match="UNVEIL_DATA"):
        data_root()
    with pytest.raises(UnveilError, match="--data"):
        data_root(tmp_path / "also-absent")


def test_utkface_splits_and_labels(data_root):
    sizes = {s: len(face_records("utkface", s, data_root)) for s in ("train", "val", "test")}
    assert sizes == {"train": 16000, "val": 1000, "test": 1000}
    train = {r.path.name for r in face_records("utkface", "train", data_root)}
    test = {r.path.name for r in face_records("utkface", "test", data_root)}
    assert not train & test
    r = face_records("utkface", "test", data_root)[0]
    assert r.gender in (0, 1) and 0 < r.age < 120


def test_the_first_faces_of_a_split_are_a_fair_sample(data_root):
    # UTKFace names begin with the age and the split files are sorted by name: read in that
    # order, the first 100 test faces were all aged 1, 10-19 or 100+ (median 14)
    test = face_records("utkface", "test", data_root)
    ages = np.array([r.age for r in test])
    first = ages[:100]
    assert abs(np.median(first) - np.median(ages)) <= 5
    assert np.mean((first >= 30) & (first <= 99)) >= 0.3  # none of them in name order
    train = np.array([r.age for r in face_records("utkface", "train", data_root)[:4000]])
    assert np.mean((train >= 35) & (train <= 65)) >= 0.25  # was 0


def test_mixed_order_is_fixed_and_ignores_the_names_order():
    from unveil.data.faces import mixed_order

    names = [f"{age}_0_0_2017.jpg" for age in range(1, 90)]
    mixed = mixed_order(names)
    assert sorted(mixed) == sorted(names) and mixed != sorted(names)
    assert mixed_order(names[::-1]) == mixed
    # a name keeps its place among the others when the list loses one
    assert mixed_order(names[1:]) == [n for n in mixed if n != names[0]]


def test_lfw_pairs_folds(data_root):
    pairs = lfw_pairs(data_root)
    assert len(pairs) == 1800  # 3 folds x (300 matched + 300 mismatched)
    assert sorted({p.fold for p in pairs}) == [0, 1, 2]
    assert sum(p.same for p in pairs) == 900
    assert all(p.a.parent == p.b.parent for p in pairs if p.same)
    assert all(p.a.exists() and p.b.exists() for p in pairs[:50])


@pytest.mark.parametrize("size", [128, 256])
def test_dataset_returns_aligned_tensors(data_root, size):
    ds = FaceDataset("utkface", "val", size=size, data=data_root, limit=3)
    item = ds[0]
    assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.float32
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    assert torch.equal(ds[0]["image"], item["image"])  # no augmentation outside train
    lfw = load_face(face_records("lfw", data=data_root)[0], size)
    assert lfw.shape == (size, size, 3) and lfw.dtype == np.uint8


def test_augmentation_only_for_training(data_root):
    with pytest.raises(ValueError):
        FaceDataset("utkface", "test", augment=True, data=data_root)
    ds = FaceDataset("utkface", "train", size=64, augment=True, data=data_root, limit=2)
    torch.manual_seed(1)
    a = ds[0]["image"]
    torch.manual_seed(1)
    assert torch.equal(ds[0]["image"], a)  # reproducible under a seed
    assert not torch.equal(ds[0]["image"], a)  # and varies between draws
