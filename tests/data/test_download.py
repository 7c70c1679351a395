"""Downloads against a real HTTP server on 127.0.0.1: checksums, atomic files, safe unpacking.

Every test points the resource table (or $SPIKEGRAD_MIRROR) at a local http.server; a
guard makes any connection to another address fail the test.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import socket
import stat
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from spikegrad.data import DATASETS, dataset_dir
from spikegrad.data import download as dl
from spikegrad.data.download import GENERATED, RESOURCES, Resource, download, extract_archive, parse_manifest
from spikegrad.errors import SpikegradError



# -- fixtures ------------------------------------------------------------------------------



@pytest.fixture
def server(tmp_path, serve):
    """http.server on 127.0.0.1:<free port> serving tmp_path/www; counts GET requests."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):  # noqa: N802 (http.server API)
            requests.append(self.path)
            if self.path == "/truncated.bin":  # promises 1000 bytes, sends 10, hangs up
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"0123456789")
                self.wfile.flush()
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    return SimpleNamespace(root=root, url=serve(Handler), requests=requests)


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def serve(server, name: str, data: bytes) -> str:
    (server.root / name).write_bytes(data)
    return f"{server.url}/{name}"


def use_table(monkeypatch, *resources: Resource, name: str = "toyset") -> str:
    monkeypatch.setitem(RESOURCES, name, tuple(resources))
    return name


def tree(root: Path) -> list[str]:
    """All paths below root (files, folders, links), relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def file_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info


def dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def link_info(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


# -- success paths -------------------------------------------------------------------------

def test_gz_file_kept_and_gz_file_gunzipped(server, monkeypatch, tmp_path):
    raw = b"IDX-like bytes " * 1000
    kept, unpacked = gzip.compress(raw), gzip.compress(b"hdf5 payload" * 500)
    name = use_table(
        monkeypatch,
        Resource("images.gz", (serve(server, "images.gz", kept),), md5(kept)),
        Resource("train.h5.gz", (serve(server, "train.h5.gz", unpacked),), md5(unpacked), unpack="gunzip"),
    )
    said = []
    folder = download(name, tmp_path / "target", progress=False, say=said.append)
    assert folder == tmp_path / "target"
    assert tree(folder) == ["images.gz", "train.h5", "train.h5.gz"]
    assert (folder / "images.gz").read_bytes() == kept                      # kept gzipped
    assert (folder / "train.h5").read_bytes() == b"hdf5 payload" * 500      # gunzipped
    assert any("md5 verified" in line for line in said)


def test_default_folder_is_dataset_dir_under_spikegrad_data(server, monkeypatch, tmp_path):
    data = b"x" * 100
    name = use_table(monkeypatch, Resource("f.bin", (serve(server, "f.bin", data),), sha256(data)))
    folder = download(name, progress=False, say=lambda _: None)
    assert folder == dataset_dir(name) == tmp_path / "cache" / name
    assert (folder / "f.bin").read_bytes() == data


def test_tar_gz_extracted_into_folder(server, monkeypatch, tmp_path):
    archive = tar_bytes([
        (dir_info("audio"), None),
        (file_info("audio/a.flac"), b"flac-a"),
        (file_info("audio/b.flac"), b"flac-b"),
        (file_info("./train_filenames.txt"), b"a.flac\n"),
        (file_info("test_filenames.txt"), b"b.flac\n"),
    ])
    name = use_table(monkeypatch, Resource(
        "hd_audio.tar.gz", (serve(server, "hd_audio.tar.gz", archive),), md5(archive), unpack="extract",
        outputs=("audio", "train_filenames.txt", "test_filenames.txt")))
    folder = download(name, tmp_path / "rawhd", progress=False, say=lambda _: None)
    assert tree(folder) == ["audio", "audio/a.flac", "audio/b.flac", "hd_audio.tar.gz",
                            "test_filenames.txt", "train_filenames.txt"]
    assert (folder / "audio" / "a.flac").read_bytes() == b"flac-a"
    assert (folder / "train_filenames.txt").read_text() == "a.flac\n"


def test_zip_extracted(server, monkeypatch, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("words/yes/1.wav", b"yes")
        zf.writestr("validation_list.txt", b"yes/1.wav\n")
    data = buf.getvalue()
    name = use_table(monkeypatch, Resource("sc.zip", (serve(server, "sc.zip", data),), sha256(data),
                                           unpack="extract", outputs=("validation_list.txt", "words")))
    folder = download(name, tmp_path / "sc", progress=False, say=lambda _: None)
    assert (folder / "words" / "yes" / "1.wav").read_bytes() == b"yes"
    assert tree(folder) == ["sc.zip", "validation_list.txt", "words", "words/yes", "words/yes/1.wav"]


def test_progress_bar_path(server, monkeypatch, tmp_path, capsys):
    data = os.urandom(3 << 20)  # 3 MiB: several chunks
    name = use_table(monkeypatch, Resource("big.bin", (serve(server, "big.bin", data),), md5(data)))
    download(name, tmp_path / "big", progress=True, say=lambda _: None)
    assert (tmp_path / "big" / "big.bin").read_bytes() == data
    assert "big.bin" in capsys.readouterr().err  # the rich bar goes to stderr


def test_next_mirror_is_tried_after_http_error(server, monkeypatch, tmp_path):
    data = b"payload"
    good = serve(server, "f.bin", data)
    name = use_table(monkeypatch, Resource("f.bin", (f"{server.url}/missing/f.bin", good), md5(data)))
    download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert server.requests == ["/missing/f.bin", "/f.bin"]
    assert (tmp_path / "t" / "f.bin").read_bytes() == data


# -- already present -----------------------------------------------------------------------

def test_second_download_makes_no_request(server, monkeypatch, tmp_path):
    plain, packed = b"plain" * 10, gzip.compress(b"inner" * 10)
    archive = tar_bytes([(file_info("list.txt"), b"x\n")])
    name = use_table(
        monkeypatch,
        Resource("a.bin", (serve(server, "a.bin", plain),), md5(plain)),
        Resource("b.h5.gz", (serve(server, "b.h5.gz", packed),), md5(packed), unpack="gunzip"),
        Resource("c.tar.gz", (serve(server, "c.tar.gz", archive),), sha256(archive), unpack="extract",
                 outputs=("list.txt",)),
    )
    download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert len(server.requests) == 3
    said = []
    download(name, tmp_path / "t", progress=False, say=said.append)
    assert len(server.requests) == 3  # verified files are not fetched again
    assert sum("already present" in line for line in said) == 3


def test_unpacked_output_without_archive_is_not_fetched_again(server, monkeypatch, tmp_path):
    packed = gzip.compress(b"inner")
    name = use_table(monkeypatch, Resource("b.h5.gz", (serve(server, "b.h5.gz", packed),), md5(packed),
                                           unpack="gunzip"))
    download(name, tmp_path / "t", progress=False, say=lambda _: None)
    (tmp_path / "t" / "b.h5.gz").unlink()  # user freed the space
    said = []
    download(name, tmp_path / "t", progress=False, say=said.append)
    assert len(server.requests) == 1 and any("already unpacked" in line for line in said)


def test_present_but_corrupt_file_is_fetched_again(server, monkeypatch, tmp_path):
    data = b"the real thing"
    name = use_table(monkeypatch, Resource("f.bin", (serve(server, "f.bin", data),), md5(data)))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f.bin").write_bytes(b"half a fi")
    said = []
    download(name, tmp_path / "t", progress=False, say=said.append)
    assert (tmp_path / "t" / "f.bin").read_bytes() == data
    assert len(server.requests) == 1 and any("does not match" in line for line in said)


def test_present_archive_is_unpacked_without_download(server, monkeypatch, tmp_path):
    packed = gzip.compress(b"inner")
    name = use_table(monkeypatch, Resource("b.h5.gz", (f"{server.url}/b.h5.gz",), md5(packed), unpack="gunzip"))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "b.h5.gz").write_bytes(packed)  # e.g. copied by hand
    download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert server.requests == [] and (tmp_path / "t" / "b.h5").read_bytes() == b"inner"


# -- failures leave nothing behind ---------------------------------------------------------

def test_checksum_mismatch(server, monkeypatch, tmp_path):
    url = serve(server, "f.bin", b"tampered content")
    wanted = md5(b"original content")
    name = use_table(monkeypatch, Resource("f.bin", (url,), wanted))
    with pytest.raises(SpikegradError) as err:
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    text = one_line(err)
    assert "checksum mismatch" in text and url in text
    assert wanted.split(":")[1] in text and hashlib.md5(b"tampered content").hexdigest() in text
    assert tree(tmp_path / "t") == []  # no file, no partial, no temporary


def test_checksum_mismatch_sha256(server, monkeypatch, tmp_path):
    name = use_table(monkeypatch, Resource("f.bin", (serve(server, "f.bin", b"abc"),), sha256(b"abd")))
    with pytest.raises(SpikegradError, match="expected sha256"):
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert tree(tmp_path / "t") == []


def test_mismatch_does_not_touch_an_existing_file(server, monkeypatch, tmp_path):
    name = use_table(monkeypatch, Resource("f.bin", (serve(server, "f.bin", b"bad"),), md5(b"good")))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f.bin").write_bytes(b"old")  # does not verify either
    with pytest.raises(SpikegradError, match="checksum mismatch"):
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert tree(tmp_path / "t") == ["f.bin"] and (tmp_path / "t" / "f.bin").read_bytes() == b"old"


def test_http_404(server, monkeypatch, tmp_path):
    url = f"{server.url}/nowhere/f.bin"
    name = use_table(monkeypatch, Resource("f.bin", (url,), md5(b"x")))
    with pytest.raises(SpikegradError) as err:
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    text = one_line(err)
    assert "HTTP 404" in text and url in text and "f.bin" in text
    assert tree(tmp_path / "t") == []


def test_closed_port(monkeypatch, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f.bin"  # nobody listens there any more
    name = use_table(monkeypatch, Resource("f.bin", (url,), md5(b"x")))
    with pytest.raises(SpikegradError) as err:
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    text = one_line(err)
    assert "cannot reach" in text and url in text
    assert tree(tmp_path / "t") == []


def test_truncated_transfer(server, monkeypatch, tmp_path):
    name = use_table(monkeypatch, Resource("truncated.bin", (f"{server.url}/truncated.bin",), md5(b"x" * 1000)))
    with pytest.raises(SpikegradError) as err:
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert "truncated.bin" in one_line(err)
    assert tree(tmp_path / "t") == []


def test_bad_gzip_leaves_nothing(server, monkeypatch, tmp_path):
    data = b"not gzip at all"
    name = use_table(monkeypatch, Resource("b.h5.gz", (serve(server, "b.h5.gz", data),), md5(data),
                                           unpack="gunzip"))
    with pytest.raises(SpikegradError, match="cannot gunzip"):
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert tree(tmp_path / "t") == []


def _evil_tars(outside: Path) -> dict[str, bytes]:
    benign = (file_info("good.txt"), b"fine")  # comes first: must not stay half-extracted
    return {
        "dotdot": tar_bytes([benign, (file_info("../evil"), b"evil")]),
        "nested-dotdot": tar_bytes([benign, (file_info("sub/../../evil"), b"evil")]),
        "absolute": tar_bytes([benign, (file_info(str(outside / "evil")), b"evil")]),
        "symlink-out": tar_bytes([benign, (link_info("passwd", "/etc/passwd"), None)]),
        "symlink-up": tar_bytes([benign, (link_info("sub/up", "../../evil"), None)]),
        "hardlink-out": tar_bytes([benign, (link_info("hard", "/etc/passwd", tarfile.LNKTYPE), None)]),
        "device": tar_bytes([benign, (link_info("dev", "", tarfile.CHRTYPE), None)]),
        "fifo": tar_bytes([benign, (link_info("fifo", "", tarfile.FIFOTYPE), None)]),
        "all-at-once": tar_bytes([benign, (file_info("../evil"), b"evil"), (file_info(str(outside / "evil")), b"e"),
                                  (link_info("passwd", "/etc/passwd"), None)]),
        # a link that stays inside is refused too: data sets need none
        "symlink-inside": tar_bytes([benign, (link_info("latest.txt", "good.txt"), None)]),
        "hardlink-inside": tar_bytes([benign, (link_info("hard.txt", "good.txt", tarfile.LNKTYPE), None)]),
        # a link to an existing file outside, then a regular member written through it
        "write-through": tar_bytes([benign, (link_info("victim", str(outside / "victim.txt")), None),
                                    (file_info("victim"), b"evil")]),
        "write-through-relative": tar_bytes([benign, (link_info("victim", "../outside/victim.txt"), None),
                                             (file_info("victim"), b"evil")]),
        # the CVE-2025-4517 technique: nested long folder names and a chain of symlinks whose
        # resolved path passes PATH_MAX, ending in a link out of the folder
        "symlink-chain-past-path-max": _path_max_chain(),
    }


def _path_max_chain() -> bytes:
    members = [(file_info("good.txt"), b"fine")]
    step = "d" * 247
    path = ""
    for k in range(16):                                   # 16 × 248 characters > PATH_MAX (4096)
        path = f"{path}{step}/" if path else f"{step}/"
        members.append((dir_info(path.rstrip("/")), None))
        members.append((link_info(f"l{k}", path.rstrip("/")), None))
    members.append((link_info("escape", "l15/" + "../" * 17 + "outside"), None))
    members.append((file_info("escape/victim.txt"), b"evil"))
    return tar_bytes(members)


TAR_CASES = ["dotdot", "nested-dotdot", "absolute", "symlink-out", "symlink-up", "hardlink-out", "device", "fifo",
             "all-at-once", "symlink-inside", "hardlink-inside", "write-through", "write-through-relative",
             "symlink-chain-past-path-max"]


@pytest.mark.parametrize("no_tarfile_filter", [False, True])
@pytest.mark.parametrize("case", TAR_CASES)
def test_malicious_tar(server, monkeypatch, tmp_path, case, no_tarfile_filter):
    """Every unsafe archive is refused before anything lands outside (or half-extracted
    inside), on this Python and with tarfile's extraction filter taken away (Python before
    3.11.4 has none)."""
    if no_tarfile_filter:
        for attr in ("data_filter", "tar_filter", "fully_trusted_filter"):
            monkeypatch.delattr(tarfile, attr, raising=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("original")
    data = _evil_tars(outside)[case]
    name = use_table(monkeypatch, Resource("evil.tar.gz", (serve(server, "evil.tar.gz", data),), md5(data),
                                           unpack="extract", outputs=("good.txt",)))
    before = set(tree(tmp_path)) - {"www/evil.tar.gz"}
    target = tmp_path / "data" / "toy"
    with pytest.raises(SpikegradError) as err:
        download(name, target, progress=False, say=lambda _: None)
    text = one_line(err)
    assert "unsafe archive" in text and "evil.tar.gz" in text
    assert tree(target) == []                         # archive removed, nothing half-extracted
    after = set(tree(tmp_path)) - {"www/evil.tar.gz"}
    assert after - before <= {"data", "data/toy"}     # nothing written anywhere else
    assert not any(Path(p).name == "evil" for p in after)
    assert tree(outside) == ["victim.txt"] and (outside / "victim.txt").read_text() == "original"


@pytest.mark.parametrize("member", ["../evil", "/tmp/evil-absolute", "a/../../evil", "C:/evil"])
def test_malicious_zip(server, monkeypatch, tmp_path, member):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.txt", b"fine")
        zf.writestr(zipfile.ZipInfo(member), b"evil")
    data = buf.getvalue()
    name = use_table(monkeypatch, Resource("evil.zip", (serve(server, "evil.zip", data),), md5(data),
                                           unpack="extract", outputs=("good.txt",)))
    target = tmp_path / "data" / "toy"
    with pytest.raises(SpikegradError, match="unsafe archive"):
        download(name, target, progress=False, say=lambda _: None)
    assert tree(target) == []
    assert not any(Path(p).name.startswith("evil") for p in tree(tmp_path) if not p.startswith("www"))


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_link_already_in_the_data_folder_is_never_written_through(tmp_path, kind):
    """A folder or file the archive brings is moved into place without following a link the
    data folder already holds (put there by someone else): the unpack stops instead."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "audio").symlink_to(outside, target_is_directory=True)
    (dest / "list.txt").symlink_to(outside / "list.txt")
    archive = tmp_path / f"a.{'tar.gz' if kind == 'tar' else 'zip'}"
    if kind == "tar":
        archive.write_bytes(tar_bytes([(dir_info("audio"), None), (file_info("audio/a.flac"), b"x")]))
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("audio/a.flac", b"x")
    with pytest.raises(SpikegradError, match="audio exists and is not a folder"):
        extract_archive(archive, dest)
    assert tree(outside) == []
    archive2 = tmp_path / "b.tar.gz"
    archive2.write_bytes(tar_bytes([(file_info("list.txt"), b"new")]))
    extract_archive(archive2, dest)                  # replaces the link itself, not its target
    assert not (dest / "list.txt").is_symlink() and (dest / "list.txt").read_bytes() == b"new"
    assert tree(outside) == []


def test_zip_symlink_rejected(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("passwd")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    archive = tmp_path / "link.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(SpikegradError, match="symlink"):
        extract_archive(archive, tmp_path / "out")
    assert tree(tmp_path / "out") == []


# -- checksum lists, mirrors, table ---------------------------------------------------------

def test_checksum_from_publisher_manifest(server, monkeypatch, tmp_path):
    data = gzip.compress(b"ssc")
    serve(server, "ssc_valid.h5.gz", data)
    serve(server, "md5sums.txt", f"{hashlib.md5(data).hexdigest()}  ssc_valid.h5.gz\n"
                                 f"{'0' * 32}  other.h5.gz\n".encode())
    name = use_table(monkeypatch, Resource("ssc_valid.h5.gz", (f"{server.url}/ssc_valid.h5.gz",), None,
                                           unpack="gunzip", manifest="md5sums.txt"))
    download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert tree(tmp_path / "t") == ["md5sums.txt", "ssc_valid.h5", "ssc_valid.h5.gz"]
    assert server.requests == ["/md5sums.txt", "/ssc_valid.h5.gz"]
    download(name, tmp_path / "t", progress=False, say=lambda _: None)  # list kept: offline re-check
    assert len(server.requests) == 2


def test_manifest_without_entry(server, monkeypatch, tmp_path):
    serve(server, "f.bin", b"x")
    serve(server, "md5sums.txt", f"{'0' * 32}  other.bin\n".encode())
    name = use_table(monkeypatch, Resource("f.bin", (f"{server.url}/f.bin",), None, manifest="md5sums.txt"))
    with pytest.raises(SpikegradError, match="no entry for f.bin"):
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert server.requests == ["/md5sums.txt"]


def test_manifest_mismatch(server, monkeypatch, tmp_path):
    serve(server, "f.bin", b"x")
    serve(server, "md5sums.txt", f"{'0' * 32}  f.bin\n".encode())
    name = use_table(monkeypatch, Resource("f.bin", (f"{server.url}/f.bin",), None, manifest="md5sums.txt"))
    with pytest.raises(SpikegradError, match="checksum mismatch"):
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert "f.bin" not in tree(tmp_path / "t")


def test_checksum_list_comes_from_the_canonical_host_never_from_a_mirror(server, monkeypatch, tmp_path):
    """A hostile mirror serving both a bad file and a checksum list that matches it cannot
    pass: the list is read from the canonical host, the mirror's file fails against it."""
    good, bad = gzip.compress(b"ssc"), gzip.compress(b"evil")
    (server.root / "canon").mkdir()
    (server.root / "mirror").mkdir()
    serve(server, "canon/ssc_valid.h5.gz", good)
    serve(server, "canon/md5sums.txt", f"{hashlib.md5(good).hexdigest()}  ssc_valid.h5.gz\n".encode())
    serve(server, "mirror/ssc_valid.h5.gz", bad)
    serve(server, "mirror/md5sums.txt", f"{hashlib.md5(bad).hexdigest()}  ssc_valid.h5.gz\n".encode())
    name = use_table(monkeypatch, Resource("ssc_valid.h5.gz", (f"{server.url}/canon/ssc_valid.h5.gz",), None,
                                           unpack="gunzip", manifest="md5sums.txt"))
    with pytest.raises(SpikegradError, match="checksum mismatch for .*/mirror/ssc_valid.h5.gz"):
        download(name, tmp_path / "t", mirror=f"{server.url}/mirror", progress=False, say=lambda _: None)
    assert server.requests == ["/canon/md5sums.txt", "/mirror/ssc_valid.h5.gz"]
    assert tree(tmp_path / "t") == ["md5sums.txt"]
    assert hashlib.md5(good).hexdigest() in (tmp_path / "t" / "md5sums.txt").read_text()


def test_truncated_cached_checksum_list_is_fetched_again(server, monkeypatch, tmp_path):
    data = gzip.compress(b"ssc")
    serve(server, "ssc_valid.h5.gz", data)
    full = f"{'0' * 32}  other.h5.gz\n{hashlib.md5(data).hexdigest()}  ssc_valid.h5.gz\n"
    serve(server, "md5sums.txt", full.encode())
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "md5sums.txt").write_text(full[:60])     # cut mid-line by an earlier failure
    name = use_table(monkeypatch, Resource("ssc_valid.h5.gz", (f"{server.url}/ssc_valid.h5.gz",), None,
                                           unpack="gunzip", manifest="md5sums.txt"))
    download(name, folder, progress=False, say=lambda _: None)
    assert (folder / "md5sums.txt").read_text() == full
    assert (folder / "ssc_valid.h5").read_bytes() == b"ssc"
    assert server.requests == ["/md5sums.txt", "/ssc_valid.h5.gz"]


def test_parse_manifest():
    text = f"{'a' * 32}  x.gz\n{'B' * 32} *y.gz\nnot a line\n{'c' * 32}  ./z.tar.gz\n"
    assert parse_manifest(text) == {"x.gz": "a" * 32, "y.gz": "b" * 32, "z.tar.gz": "c" * 32}


def test_mirror_environment_variable_redirects_official_table(server, monkeypatch, tmp_path):
    """$SPIKEGRAD_MIRROR replaces the base URL of the real MNIST entries."""
    serve(server, "train-images-idx3-ubyte.gz", b"not the MNIST file")
    monkeypatch.setenv(dl.MIRROR_ENV, server.url + "/")
    with pytest.raises(SpikegradError) as err:
        download("mnist", tmp_path / "mnist", progress=False, say=lambda _: None)
    text = one_line(err)
    assert f"{server.url}/train-images-idx3-ubyte.gz" in text and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in text
    assert server.requests == ["/train-images-idx3-ubyte.gz"]
    assert tree(tmp_path / "mnist") == []


def test_mirror_argument(server, monkeypatch, tmp_path):
    data = b"mirrored"
    serve(server, "f.bin", data)
    name = use_table(monkeypatch, Resource("f.bin", ("https://example.invalid/f.bin",), md5(data)))
    download(name, tmp_path / "t", mirror=server.url, progress=False, say=lambda _: None)
    assert (tmp_path / "t" / "f.bin").read_bytes() == data


def test_generated_data_sets_download_nothing(tmp_path):
    for name in ("randman", "clicks"):
        said = []
        download(name, tmp_path / name, progress=False, say=said.append)
        assert "generated" in said[0]
        assert not (tmp_path / name).exists()


def test_unknown_data_set():
    with pytest.raises(SpikegradError, match="unknown dataset 'nope'.*mnist"):
        download("nope", progress=False, say=lambda _: None)


def test_non_http_urls_refused(monkeypatch, tmp_path):
    name = use_table(monkeypatch, Resource("f.bin", ("file:///etc/passwd",), md5(b"x")))
    with pytest.raises(SpikegradError, match="only http"):
        download(name, tmp_path / "t", progress=False, say=lambda _: None)
    assert tree(tmp_path / "t") == []


def test_resource_table_covers_registry_and_is_well_formed():
    assert set(DATASETS) == set(RESOURCES) | set(GENERATED)
    assert not set(RESOURCES) & set(GENERATED)
    for name, resources in RESOURCES.items():
        assert resources, name
        for r in resources:
            assert r.urls and all(u.startswith(("https://", "http://")) and u.endswith("/" + r.filename)
                                  for u in r.urls), r
            assert r.unpack in ("none", "gunzip", "extract"), r
            if r.checksum is None:
                assert r.manifest, r
            else:
                algo, _, hexdigest = r.checksum.partition(":")
                assert {"md5": 32, "sha256": 64}[algo] == len(hexdigest), r
                int(hexdigest, 16)
            if r.unpack == "extract":
                assert r.outputs, r
    # the layouts the loaders read
    assert {t for r in RESOURCES["mnist"] for t in r.targets()} == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz"}
    assert [r.targets() for r in RESOURCES["fashion-mnist"]] == [r.targets() for r in RESOURCES["mnist"]]
    assert [t for r in RESOURCES["shd"] for t in r.targets()] == ["shd_train.h5", "shd_test.h5"]
    assert [t for r in RESOURCES["ssc"] for t in r.targets()] == ["ssc_train.h5", "ssc_valid.h5", "ssc_test.h5"]
    assert set(RESOURCES["rawhd"][0].targets()) == {"audio", "train_filenames.txt", "test_filenames.txt"}
    assert {"validation_list.txt", "testing_list.txt"} <= set(RESOURCES["rawsc"][0].targets())
