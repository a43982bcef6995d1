"""untar_data against a local HTTP server on 127.0.0.1: success, reuse, bad checksum, cut transfers, no network."""
from __future__ import annotations

import hashlib
import io
import random
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers.data import DownloadError, UnfinishedFolderError, first_mib_md5, is_complete, untar_data


def make_tgz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# Big enough (incompressible) that cutting it in half really stops mid-stream.
PAYLOAD = random.Random(0).randbytes(200_000)
ARCHIVE = make_tgz({"mini-pets/images/pug_1.jpg": PAYLOAD, "mini-pets/images/Bengal_2.jpg": b"meow"})
FLAT_ARCHIVE = make_tgz({"a.txt": b"a", "b.txt": b"b"})


class Handler(BaseHTTPRequestHandler):
    """Serves /mini-pets.tgz whole, /flat.tgz whole, /cut/mini-pets.tgz promising more bytes than it sends,
    and answers 404 for anything under /missing/."""

    def do_GET(self):
        if self.path.startswith("/missing/"):
            self.send_error(404)
            return
        body = FLAT_ARCHIVE if self.path.endswith("flat.tgz") else ARCHIVE
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.startswith("/cut/"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.wfile.write(body)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def server_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_extract_and_reuse(free_port, server_url, tmp_path):
    md5 = hashlib.md5(ARCHIVE).hexdigest()
    root = untar_data(f"{server_url}/mini-pets.tgz", dest=tmp_path, md5=md5)
    assert root == tmp_path / "mini-pets"
    assert (root / "images" / "pug_1.jpg").read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini-pets"]  # no archive or temp folder left
    # Reuse: a second call does not download again (the URL now points nowhere).
    stamp = (root / "images" / "pug_1.jpg").stat().st_mtime_ns
    assert untar_data(f"http://127.0.0.1:{free_port()}/mini-pets.tgz", dest=tmp_path) == root
    assert (root / "images" / "pug_1.jpg").stat().st_mtime_ns == stamp


def test_archive_without_a_top_folder_gets_one(server_url, tmp_path):
    root = untar_data(f"{server_url}/flat.tgz", dest=tmp_path)
    assert root == tmp_path / "flat" and sorted(p.name for p in root.iterdir()) == [".complete", "a.txt", "b.txt"]


def test_bad_checksum_leaves_nothing(server_url, tmp_path):
    with pytest.raises(DownloadError, match="MD5 checksum") as caught:
        untar_data(f"{server_url}/mini-pets.tgz", dest=tmp_path, md5="0" * 32)
    assert "run the call again" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_transfer_leaves_nothing_and_the_next_call_works(server_url, tmp_path):
    with pytest.raises(DownloadError, match="interrupted") as caught:
        untar_data(f"{server_url}/cut/mini-pets.tgz", dest=tmp_path)
    assert "run the same call again" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    root = untar_data(f"{server_url}/mini-pets.tgz", dest=tmp_path)
    assert (root / "images" / "pug_1.jpg").read_bytes() == PAYLOAD


def test_missing_file_is_an_http_error_not_no_internet(server_url, tmp_path):
    url = f"{server_url}/missing/mini-pets.tgz"
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        untar_data(url, dest=tmp_path)
    assert url in str(caught.value) and "check the URL" in str(caught.value)
    assert "internet" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_no_network_names_the_tiny_profile(free_port, tmp_path):
    with pytest.raises(ConnectionError, match="COURSE_PROFILE=tiny"):
        untar_data(f"http://127.0.0.1:{free_port()}/mini-pets.tgz", dest=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from helpers.data import cache_dir

    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("COURSE_DATA")
    assert cache_dir() == Path.home() / ".cache" / "pets-course"


def test_size_and_first_mib_are_checked_like_fastai(server_url, tmp_path):
    url = f"{server_url}/mini-pets.tgz"
    first_mib = hashlib.md5(ARCHIVE[: 2**20]).hexdigest()
    with pytest.raises(DownloadError, match=f"{len(ARCHIVE):,} bytes instead of 12") as caught:
        untar_data(url, dest=tmp_path, size=12, first_mib=first_mib)
    assert "run the call again" in str(caught.value)
    with pytest.raises(DownloadError, match="first MiB"):
        untar_data(url, dest=tmp_path, size=len(ARCHIVE), first_mib="0" * 32)
    assert list(tmp_path.iterdir()) == []
    root = untar_data(url, dest=tmp_path, size=len(ARCHIVE), first_mib=first_mib)
    assert is_complete(root) and (root / "images" / "pug_1.jpg").read_bytes() == PAYLOAD


def test_first_mib_md5_reads_only_the_first_mib(tmp_path):
    big = tmp_path / "big.bin"
    content = random.Random(1).randbytes(3 * 2**20)
    big.write_bytes(content)
    assert first_mib_md5(big) == hashlib.md5(content[: 2**20]).hexdigest()


def test_an_unfinished_folder_is_refused_and_an_empty_one_filled(server_url, tmp_path):
    url = f"{server_url}/mini-pets.tgz"
    half = tmp_path / "half"
    (half / "mini-pets" / "images").mkdir(parents=True)  # e.g. an extraction stopped by hand
    with pytest.raises(UnfinishedFolderError, match="mark_complete"):
        untar_data(url, dest=half)
    empty = tmp_path / "empty"
    (empty / "mini-pets").mkdir(parents=True)
    root = untar_data(url, dest=empty)
    assert is_complete(root) and (root / "images" / "pug_1.jpg").read_bytes() == PAYLOAD


def test_full_profile_downloads_carry_fastais_checks(monkeypatch, tmp_path):
    from helpers import datasets
    from helpers.profiles import get_profile

    calls = []
    monkeypatch.setattr(datasets, "untar_data", lambda url, **checks: calls.append((url, checks)) or tmp_path)
    datasets.pets_path(get_profile("full"))
    datasets.mnist_path(get_profile("full"))
    assert calls == [
        ("https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz",
         {"size": 811_706_944, "first_mib": "e4db5c768afd933bb91f5f594d7417a4"}),
        ("https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz",
         {"size": 3_214_948, "first_mib": "2dbc7ec6f9259b583af0072c55816a88"}),
    ]
