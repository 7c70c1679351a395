"""The resource table: per data set its official files, URLs and the checksums their
publishers publish (each with where it is published), and checksum helpers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from ...errors import SpikegradError

CHUNK = 1 << 20                 # bytes read at a time (hashing, downloading, unpacking)


# Data sets made on the fly from their seed: nothing to download.
GENERATED: dict[str, str] = {
    "randman": "generated on the fly from data.seed (SCIENCE.md §4, Randman)",
    "clicks": "generated on the fly from data.seed (Poisson clicks)",
}


@dataclass(frozen=True)
class Resource:
    """One remote file of a data set.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``; ``None`` means: take the md5
    from the publisher's checksum list ``manifest`` (a ``md5sum``-style file next to the
    data file, e.g. ``md5sums.txt``), which is fetched once and kept in the folder.
    ``unpack``: ``"none"`` (keep as is), ``"gunzip"`` (``X.gz`` → ``X``) or ``"extract"``
    (tar/zip archive into the folder; ``outputs`` names entries that must exist after).
    """

    filename: str
    urls: tuple[str, ...]
    checksum: Optional[str] = None
    unpack: str = "none"
    outputs: tuple[str, ...] = ()
    manifest: Optional[str] = None

    def targets(self) -> tuple[str, ...]:
        """Entries of the folder that exist once this resource is in place."""
        if self.unpack == "gunzip":
            return (self.filename[:-3] if self.filename.endswith(".gz") else self.filename + ".out",)
        if self.unpack == "extract":
            return self.outputs
        return (self.filename,)


def _urls(bases: Iterable[str], filename: str) -> tuple[str, ...]:
    return tuple(f"{base.rstrip('/')}/{filename}" for base in bases)


# MNIST: torchvision's mirror list (the original yann.lecun.com page has refused
# unauthenticated downloads at times, so the S3 mirror comes first).
_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist", "http://yann.lecun.com/exdb/mnist")
_FASHION = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",)
_ZENKE = ("https://zenkelab.org/datasets",)  # formerly https://compneuro.net/datasets

RESOURCES: dict[str, tuple[Resource, ...]] = {
    # md5s: torchvision.datasets.MNIST.resources (github.com/pytorch/vision,
    # torchvision/datasets/mnist.py).  Kept gzipped: the loader reads .gz.
    "mnist": (
        Resource("train-images-idx3-ubyte.gz", _urls(_MNIST, "train-images-idx3-ubyte.gz"),
                 "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        Resource("train-labels-idx1-ubyte.gz", _urls(_MNIST, "train-labels-idx1-ubyte.gz"),
                 "md5:d53e105ee54ea40749a09fcbcd1e9432"),
        Resource("t10k-images-idx3-ubyte.gz", _urls(_MNIST, "t10k-images-idx3-ubyte.gz"),
                 "md5:9fb629c4189551a2d022fa330f9573f3"),
        Resource("t10k-labels-idx1-ubyte.gz", _urls(_MNIST, "t10k-labels-idx1-ubyte.gz"),
                 "md5:ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    # md5s: torchvision.datasets.FashionMNIST.resources (same file as above); the
    # zalandoresearch/fashion-mnist README lists the same values.
    "fashion-mnist": (
        Resource("train-images-idx3-ubyte.gz", _urls(_FASHION, "train-images-idx3-ubyte.gz"),
                 "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Resource("train-labels-idx1-ubyte.gz", _urls(_FASHION, "train-labels-idx1-ubyte.gz"),
                 "md5:25c81989df183df01b3e8a0aad5dffbe"),
        Resource("t10k-images-idx3-ubyte.gz", _urls(_FASHION, "t10k-images-idx3-ubyte.gz"),
                 "md5:bef4ecab320f06d8554ea6380940ec79"),
        Resource("t10k-labels-idx1-ubyte.gz", _urls(_FASHION, "t10k-labels-idx1-ubyte.gz"),
                 "md5:bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    # md5s of the .h5.gz files: the publisher's https://zenkelab.org/datasets/md5sums.txt
    # (Cramer et al. 2020); the same values are pinned in norse
    # (github.com/norse/norse, norse/dataset/spiking_heidelberg.py: train_checksum,
    # test_checksum).  (tonic's SHD class pins the .h5.zip variants instead.)
    "shd": (
        Resource("shd_train.h5.gz", _urls(_ZENKE, "shd_train.h5.gz"),
                 "md5:d47c9825dee33347913e8ce0f2be08b0", unpack="gunzip"),
        Resource("shd_test.h5.gz", _urls(_ZENKE, "shd_test.h5.gz"),
                 "md5:3062a80ec0c5719404d5b02e166543b1", unpack="gunzip"),
    ),
    # md5s: the publisher's md5sums.txt next to the files, read at download time — the way
    # the publisher's own example code verifies them (no peer library pins the .h5.gz
    # md5s of SSC; tonic pins only the .h5.zip variants).
    "ssc": (
        Resource("ssc_train.h5.gz", _urls(_ZENKE, "ssc_train.h5.gz"), None, unpack="gunzip",
                 manifest="md5sums.txt"),
        Resource("ssc_valid.h5.gz", _urls(_ZENKE, "ssc_valid.h5.gz"), None, unpack="gunzip",
                 manifest="md5sums.txt"),
        Resource("ssc_test.h5.gz", _urls(_ZENKE, "ssc_test.h5.gz"), None, unpack="gunzip",
                 manifest="md5sums.txt"),
    ),
    # Heidelberg Digits audio (linked from the SHD README): md5 from the publisher's
    # md5sums.txt at download time (no peer library pins it).  The archive holds
    # audio/*.flac, train_filenames.txt, test_filenames.txt at its top level.
    "rawhd": (
        Resource("hd_audio.tar.gz", _urls(_ZENKE, "hd_audio.tar.gz"), None, unpack="extract",
                 outputs=("audio", "train_filenames.txt", "test_filenames.txt"),
                 manifest="md5sums.txt"),
    ),
    # sha256: torchaudio.datasets.speechcommands._CHECKSUMS (github.com/pytorch/audio,
    # src/torchaudio/datasets/speechcommands.py).  One folder per word plus
    # validation_list.txt / testing_list.txt at the top level.
    "rawsc": (
        Resource("speech_commands_v0.02.tar.gz",
                 ("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                  "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz"),
                 "sha256:af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
                 unpack="extract", outputs=("validation_list.txt", "testing_list.txt", "yes")),
    ),
}

def _split_checksum(checksum: str) -> tuple[str, str]:
    algo, sep, hexdigest = checksum.partition(":")
    if not sep or algo not in ("md5", "sha256") or not hexdigest:
        raise SpikegradError(f"checksum must be md5:<hex> or sha256:<hex>, got {checksum!r}")
    return algo, hexdigest.lower()


def file_checksum(path: Path, algo: str) -> str:
    """Hex digest of a file (read in 1 MiB chunks)."""
    digest = hashlib.new(algo)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_manifest(text: str) -> dict[str, str]:
    """``md5sum`` output (``<md5>  <file>`` per line) → {file: md5}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 32 and all(c in "0123456789abcdefABCDEF" for c in parts[0]):
            out[parts[-1].lstrip("*").removeprefix("./")] = parts[0].lower()
    return out
