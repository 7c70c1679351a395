"""`spikegrad data download | info`: generated data sets, local downloads, statistics, plots."""

from __future__ import annotations

import hashlib
import http.server

import numpy as np
import pytest
from matplotlib.image import imread

from spikegrad import Config
from spikegrad.cli import main
from spikegrad.data import load_dataset
from spikegrad.data import download as dl
from spikegrad.data.events import DataSplits, DenseData
from spikegrad.data.inspect import format_summary, plot_sample, summarize

# Randman with the paper's sizes; only the number of Fourier terms is cut (it shapes the
# manifold, not any count) so that generating 10 000 samples takes a moment.
FAST_RANDMAN = ["--set", "data.randman.terms=20"]
TINY_RANDMAN = ["--set", "data.randman.terms=20", "--set", "data.randman.classes=3",
                "--set", "data.randman.train_per_class=4", "--set", "data.randman.val_per_class=2",
                "--set", "data.randman.test_per_class=2"]




def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    assert lines[0].startswith("spikegrad: error:") and "Traceback" not in stderr
    return lines[0]


def assert_png(path, min_width=200):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4) and image.shape[1] >= min_width
    assert image.std() > 0  # not a blank canvas


# -- download --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["randman", "clicks"])
def test_download_generated_says_so(capsys, tmp_path, name):
    assert main(["data", "download", name, "--data-dir", str(tmp_path / name)]) == 0
    out = capsys.readouterr().out
    assert "generated" in out and "nothing to download" in out
    assert not (tmp_path / name).exists()


def test_download_unknown_name(capsys):
    assert main(["data", "download", "nope"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "'nope'" in line and "mnist" in line


def test_data_without_subcommand_prints_help(capsys):
    assert main(["data"]) == 0
    assert "download" in capsys.readouterr().out


@pytest.fixture
def server(tmp_path, serve):
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    return root, serve(Handler)


def test_download_command_against_local_mirror(server, monkeypatch, capsys, tmp_path):
    root, url = server
    data = b"some bytes"
    (root / "f.bin").write_bytes(data)
    monkeypatch.setitem(dl.RESOURCES, "toyset",
                        (dl.Resource("f.bin", ("https://example.invalid/f.bin",), "md5:" + hashlib.md5(data).hexdigest()),))
    target = tmp_path / "toy"
    assert main(["data", "download", "toyset", "--data-dir", str(target), "--mirror", url, "--quiet"]) == 0
    assert (target / "f.bin").read_bytes() == data
    out = capsys.readouterr().out
    assert f"{url}/f.bin" in out and "ready" in out
    # second time: already there
    assert main(["data", "download", "toyset", "--data-dir", str(target), "--mirror", url, "-q"]) == 0
    assert "already present" in capsys.readouterr().out


def test_download_command_http_error_is_one_line(server, monkeypatch, capsys, tmp_path):
    _, url = server
    monkeypatch.setitem(dl.RESOURCES, "toyset", (dl.Resource("missing.bin", ("https://example.invalid/missing.bin",),
                                                              "md5:" + "0" * 32),))
    monkeypatch.setenv(dl.MIRROR_ENV, url)
    target = tmp_path / "toy"
    assert main(["data", "download", "toyset", "--data-dir", str(target), "-q"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "HTTP 404" in line and f"{url}/missing.bin" in line
    assert list(target.iterdir()) == []


def test_download_command_checksum_mismatch_is_one_line(server, monkeypatch, capsys, tmp_path):
    root, url = server
    (root / "f.bin").write_bytes(b"tampered")
    monkeypatch.setitem(dl.RESOURCES, "toyset", (dl.Resource("f.bin", (f"{url}/f.bin",), "md5:" + "1" * 32),))
    target = tmp_path / "toy"
    assert main(["data", "download", "toyset", "--data-dir", str(target), "-q"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "checksum mismatch" in line and "1" * 32 in line and hashlib.md5(b"tampered").hexdigest() in line
    assert list(target.iterdir()) == []


# -- info ------------------------------------------------------------------------------------

def test_info_randman_numbers_and_plot(capsys, tmp_path):
    png = tmp_path / "x.png"
    assert main(["data", "info", "randman", "--plot", str(png), *FAST_RANDMAN]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "data set: randman" in lines and "classes: 10" in lines and "inputs: 20" in lines
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in ("train", "val", "test")}
    # split, samples, per class, mean, min, max, last event (ms)
    assert rows["train"][:6] == ["train", "8000", "800-800", "20.00", "20", "20"]
    assert rows["val"][:6] == ["val", "1000", "100-100", "20.00", "20", "20"]
    assert rows["test"][:6] == ["test", "1000", "100-100", "20.00", "20", "20"]
    assert all(float(r[6]) <= 50.0 for r in rows.values())  # τ_randman = 50 ms
    assert f"plot: {png}" in out
    assert_png(png)


def test_info_statistics_match_the_python_api():
    cfg = Config.from_overrides({"data.name": "randman", "data.randman.terms": 20})
    summary = summarize(load_dataset(cfg))
    assert summary["n_classes"] == 10 and summary["n_inputs"] == 20
    for split, n in (("train", 8000), ("val", 1000), ("test", 1000)):
        s = summary["splits"][split]
        assert s["kind"] == "events" and s["samples"] == n and s["events_total"] == 20 * n
        assert s["events_min"] == s["events_max"] == 20 and s["events_mean"] == 20.0
        assert 0.0 <= s["last_event_ms"] < 50.0


def test_info_other_split_and_sample(capsys, tmp_path):
    png = tmp_path / "val.png"
    assert main(["data", "info", "randman", "--plot", str(png), "--split", "val", "--sample", "5", *TINY_RANDMAN]) == 0
    out = capsys.readouterr().out
    assert "classes: 3" in out and "plot:" in out
    assert_png(png)


def test_info_sample_out_of_range(capsys, tmp_path):
    png = tmp_path / "x.png"
    assert main(["data", "info", "randman", "--plot", str(png), "--sample", "12", *TINY_RANDMAN]) == 2
    line = error_line(capsys.readouterr().err)
    assert "--sample 12" in line and "12 samples" in line
    assert not png.exists()


def test_info_plot_into_missing_folder(capsys, tmp_path):
    png = tmp_path / "no" / "such" / "x.png"
    assert main(["data", "info", "randman", "--plot", str(png), *TINY_RANDMAN]) == 2
    assert str(png.parent) in error_line(capsys.readouterr().err)


def test_info_bad_split(capsys):
    assert main(["data", "info", "randman", "--split", "dev", *TINY_RANDMAN]) == 2
    assert "--split" in error_line(capsys.readouterr().err)


def test_info_unknown_data_set(capsys):
    assert main(["data", "info", "nope"]) == 2
    assert "nope" in error_line(capsys.readouterr().err)


def test_info_missing_files_is_one_line(capsys, tmp_path):
    """A downloadable data set whose files are absent: the loader's one-line error."""
    assert main(["data", "info", "mnist", "--data-dir", str(tmp_path / "empty")]) == 2
    error_line(capsys.readouterr().err)


# -- library functions on dense input ----------------------------------------------------------

def _dense_splits() -> DataSplits:
    rng = np.random.default_rng(0)
    make = lambda n: DenseData(rng.normal(size=(n, 80, 40)).astype(np.float32),  # noqa: E731
                               np.arange(n) % 4, n_classes=4, name="dense")
    return DataSplits(make(8), make(4), make(4), n_inputs=40, n_classes=4)


def test_dense_summary_and_heatmap(tmp_path):
    splits = _dense_splits()
    summary = summarize(splits)
    train = summary["splits"]["train"]
    assert train["kind"] == "dense" and (train["frames"], train["inputs"]) == (80, 40)
    assert train["value_min"] == pytest.approx(float(splits.train.features.min()))
    assert train["value_max"] == pytest.approx(float(splits.train.features.max()))
    assert train["non_finite"] == 0 and (train["class_min"], train["class_max"]) == (2, 2)
    text = "\n".join(format_summary("rawhd", summary))
    assert "80 x 40" in text and "classes: 4" in text
    png = plot_sample(splits.train, 3, tmp_path / "dense.png", "rawhd, train sample 3")
    assert_png(png)
