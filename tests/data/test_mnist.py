"""Latency-coded MNIST from IDX files: encoding, splits, bad files, the real test set."""

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from spikegrad import Config, SpikegradError
from spikegrad.data import load_dataset
from spikegrad.data.mnist import read_idx, write_idx

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist-t10k"


def write_set(folder: Path, n_train=50, n_test=20, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 4, 5), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
        data[prefix] = (images, labels)
    return data


def cfg_for(folder, name="mnist", **extra):
    return Config.from_overrides({"data.name": name, "data.dir": str(folder), **extra})


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    a = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    write_idx(path, a)
    np.testing.assert_array_equal(read_idx(path), a)


def test_latency_code_by_hand(tmp_path):
    # one 1×3 image: pixel 255 spikes at 50 ms·log(x/(x−0.2)), pixel 51 (x = 0.199) and 0 never
    folder = tmp_path / "m"
    folder.mkdir()
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.tile(np.array([[[255, 51, 128]]], np.uint8), (10, 1, 1)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8))
    splits = load_dataset(cfg_for(folder))
    test = splits.test
    assert test.n_units == 3 and len(test) == 10
    sample = slice(test.offsets[0], test.offsets[1])
    assert test.units[sample].tolist() == [0, 2]
    expect = [0.05 * math.log(x / (x - 0.2)) for x in (255 / 256, 128 / 256)]
    np.testing.assert_allclose(test.times[sample], expect, rtol=1e-12)
    assert test.times[sample][0] < test.times[sample][1]  # brighter pixels spike first


def test_splits_are_seeded_and_test_files_untouched(tmp_path):
    data = write_set(tmp_path / "m", n_train=50, n_test=20)
    a = load_dataset(cfg_for(tmp_path / "m"))
    b = load_dataset(cfg_for(tmp_path / "m"))
    c = load_dataset(cfg_for(tmp_path / "m", **{"data.seed": 7}))
    assert (len(a.train), len(a.val), len(a.test)) == (45, 5, 20)
    np.testing.assert_array_equal(a.val.labels, b.val.labels)
    np.testing.assert_array_equal(a.train.times, b.train.times)
    assert not np.array_equal(a.val.times, c.val.times) or not np.array_equal(a.val.labels, c.val.labels)
    np.testing.assert_array_equal(a.test.labels, data["t10k"][1])
    # train + val are exactly the training files
    assert sorted(np.concatenate([a.train.labels, a.val.labels]).tolist()) == sorted(data["train"][1].tolist())


def test_fashion_mnist_uses_the_same_reader(tmp_path):
    write_set(tmp_path / "f", gz=False)
    cfg = cfg_for(tmp_path / "f", name="fashion-mnist")
    assert cfg.data.n_steps == 100 and cfg.model.hidden == [256]
    splits = load_dataset(cfg)
    assert splits.n_inputs == 20 and splits.n_classes == 10


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(SpikegradError, match=r"train-images-idx3-ubyte.*spikegrad data download mnist"):
        load_dataset(cfg_for(tmp_path))


def corrupt(folder: Path, name: str, data: bytes):
    (folder / name).unlink()
    with gzip.open(folder / name, "wb") as fh:
        fh.write(data)


@pytest.mark.parametrize("case, payload, message", [
    ("bad magic", (1234).to_bytes(4, "big") + b"\0" * 20, "magic"),
    ("short header", b"\0\0\x08", "too short"),
    ("truncated", (0x0803).to_bytes(4, "big") + (50).to_bytes(4, "big") + (4).to_bytes(4, "big")
     + (5).to_bytes(4, "big") + b"\0" * 100, "truncated or corrupt"),
])
def test_bad_image_file_names_the_file(tmp_path, case, payload, message):
    write_set(tmp_path / "m")
    corrupt(tmp_path / "m", "train-images-idx3-ubyte.gz", payload)
    with pytest.raises(SpikegradError, match=message) as info:
        load_dataset(cfg_for(tmp_path / "m"))
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_not_gzip_but_named_gz(tmp_path):
    write_set(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip")
    with pytest.raises(SpikegradError, match="t10k-labels-idx1-ubyte.gz: cannot read"):
        load_dataset(cfg_for(tmp_path / "m"))


def test_gz_with_an_invalid_deflate_block_names_the_file(tmp_path):
    write_set(tmp_path / "m")
    path = tmp_path / "m" / "train-images-idx3-ubyte.gz"
    good = path.read_bytes()
    path.write_bytes(good[:10] + b"\xff" * 40 + good[50:])       # gzip header kept, deflate data broken
    with pytest.raises(SpikegradError, match="train-images-idx3-ubyte.gz: cannot read IDX file"):
        load_dataset(cfg_for(tmp_path / "m"))


@pytest.mark.parametrize("prefix", ["train", "t10k"])
def test_idx_files_with_zero_images_name_the_file(tmp_path, prefix):
    write_set(tmp_path / "m")
    write_idx(tmp_path / "m" / f"{prefix}-images-idx3-ubyte.gz", np.zeros((0, 4, 5), np.uint8))
    write_idx(tmp_path / "m" / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    with pytest.raises(SpikegradError, match=f"{prefix}-images-idx3-ubyte.gz: holds no images"):
        load_dataset(cfg_for(tmp_path / "m"))


def test_count_mismatch_and_bad_label(tmp_path):
    write_set(tmp_path / "m")
    write_idx(tmp_path / "m" / "train-labels-idx1-ubyte.gz", np.zeros(49, np.uint8))
    with pytest.raises(SpikegradError, match="50 images but .* 49 labels"):
        load_dataset(cfg_for(tmp_path / "m"))
    labels = np.zeros(50, np.uint8)
    labels[17] = 12
    write_idx(tmp_path / "m" / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(SpikegradError, match="sample 17 has label 12"):
        load_dataset(cfg_for(tmp_path / "m"))


@pytest.mark.parametrize("key, value", [("data.mnist.threshold", 1.0), ("data.mnist.tau_eff_ms", 0.0),
                                        ("data.mnist.val_fraction", 0.0)])
def test_bad_spec(key, value):
    with pytest.raises(SpikegradError, match=key.split(".")[-1]):
        Config.from_overrides({"data.name": "mnist", key: value})


@pytest.mark.skipif(not REAL.is_dir(), reason="real MNIST test set not present")
def test_real_mnist_test_set():
    images = read_idx(REAL / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(REAL / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # the folder holds only test files: write a tiny train set beside a copy and load through the API
    from spikegrad.data.mnist import latency_events
    ev = latency_events(images.reshape(10000, -1)[:100], labels[:100].astype(np.int64),
                        Config().data.mnist, "real")
    counts = np.diff(ev.offsets)
    assert 50 < counts.mean() < 250 and counts.min() > 0
    assert ev.times.min() > 0.011 and ev.times.min() < 0.0113  # pixel 255: 50 ms·log(0.996/0.796)

