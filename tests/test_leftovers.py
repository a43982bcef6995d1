"""What killed runs leave in the data cache: the next call works, old leftovers are swept even once the dataset is
complete, young ones (maybe a live builder's) are kept, and the doctor reports them (helpers.cache, helpers.doctor)."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import cache, doctor, outputs, tiny_pets
from helpers.cache import build_once, is_complete, leftovers, untar_data

ROOT = Path(__file__).resolve().parent.parent
OLD = outputs.LEFTOVER_GUARD_S + 60  # seconds: past the guard that protects a live builder


def backdate(path: Path, seconds: float = OLD) -> None:
    """Make a leftover look ``seconds`` old, everything under it too (instead of waiting an hour)."""
    stamp = time.time() - seconds
    for item in [*path.rglob("*"), path]:
        os.utime(item, (stamp, stamp), follow_symlinks=False)


def _kill_when(process: subprocess.Popen, ready, timeout: float = 120) -> None:
    """SIGKILL ``process`` (what a kernel restart ends with) as soon as ``ready()`` is true."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert process.poll() is None, f"the process ended before it could be killed: {process.communicate()}"
            assert time.monotonic() < deadline, "the process never reached the point to kill it at"
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


# --- sweeping ----------------------------------------------------------------------------------------

def _write_ok(folder: Path) -> None:
    (folder / "ok.txt").write_text("ok")


def test_a_call_that_finds_the_dataset_complete_sweeps_old_leftovers_and_keeps_young_ones(tmp_path):
    final = build_once(tmp_path / "pets", _write_ok)
    old, young = tmp_path / ".pets.old.tmp", tmp_path / ".pets.young.tmp"
    live = tmp_path / ".pets.live.tmp"  # an old folder whose builder is still writing into it
    for folder in (old, young, live):
        (folder / "images").mkdir(parents=True)
        (folder / "images" / "pug_1.jpg").write_bytes(b"half")
    other = tmp_path / ".cats.old.tmp"  # another dataset's: that dataset's own calls look after it
    other.mkdir()
    backdate(old)
    backdate(other)
    backdate(live)
    os.utime(live / "images" / "pug_1.jpg")  # ... just written

    assert build_once(final, lambda folder: pytest.fail("a complete dataset was built again")) == final
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".cats.old.tmp", ".pets.young.tmp",
                                                                 ".pets.live.tmp", "pets"])
    assert is_complete(final) and (final / "ok.txt").read_text() == "ok"


def test_a_read_only_cache_with_a_complete_dataset_still_works(tmp_path, monkeypatch):
    final = build_once(tmp_path / "pets", _write_ok)
    (tmp_path / ".pets.old.tmp").mkdir()
    backdate(tmp_path / ".pets.old.tmp")

    def refused(path: Path) -> None:
        raise PermissionError(13, "Read-only file system", str(path))

    monkeypatch.setattr(outputs, "remove_path", refused)
    assert build_once(final, _write_ok) == final  # the sweep fails quietly; the dataset is still served
    assert (tmp_path / ".pets.old.tmp").exists()


# --- a kernel restart costs nothing but time -------------------------------------------------------

GENERATE = "from helpers.tiny_pets import pets_tiny; pets_tiny()"


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_a_killed_tiny_pets_generation_is_rebuilt_and_its_leftover_swept_later(tmp_path, monkeypatch, child_env):
    process = subprocess.Popen([sys.executable, "-c", GENERATE], cwd=ROOT, env=child_env(COURSE_DATA=str(tmp_path)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Killed mid-drawing: some pictures of the staging folder are on disk, the set is far from done.
    _kill_when(process, lambda: len(list(tmp_path.glob(".pets_tiny_v*.*.tmp/images/*.jpg"))) >= 5)
    left = leftovers(tmp_path)
    assert len(left) == 1 and not any(is_complete(p) for p in tmp_path.iterdir())

    # The next call builds the set (a small one here: the drawing is not what is tested) and keeps the young
    # leftover, which could be a live builder's.
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.setattr(tiny_pets, "TINY_IMAGES_PER_BREED", 1)
    root = tiny_pets.pets_tiny()
    assert is_complete(root) and len(list((root / "images").glob("*.jpg"))) >= len(tiny_pets.BREEDS)
    assert leftovers(tmp_path) == left
    # An hour on, any call finds the set complete and removes the leftover; the set is untouched.
    before = cache.file_hashes(root)
    backdate(left[0])
    assert tiny_pets.pets_tiny() == root
    assert leftovers(tmp_path) == [] and cache.file_hashes(root) == before


def _archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        payload = os.urandom(300_000)  # incompressible: the transfer really is long enough to stop mid-way
        info = tarfile.TarInfo("mini-pets/images/pug_1.jpg")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


ARCHIVE = _archive()
RELEASE = threading.Event()


class SlowHandler(BaseHTTPRequestHandler):
    """/slow/mini-pets.tgz sends half the archive, then waits (the client is killed meanwhile); / sends it whole."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(ARCHIVE)))
        self.end_headers()
        try:
            if self.path.startswith("/slow/"):
                self.wfile.write(ARCHIVE[: len(ARCHIVE) // 2])
                self.wfile.flush()
                RELEASE.wait(60)
            self.wfile.write(ARCHIVE if not self.path.startswith("/slow/") else ARCHIVE[len(ARCHIVE) // 2:])
        except OSError:
            pass  # the client was killed

    def log_message(self, *args):
        pass


@pytest.fixture
def server_url():
    RELEASE.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    RELEASE.set()
    server.shutdown()
    server.server_close()


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_a_killed_download_is_fetched_again_and_its_leftover_swept_later(server_url, tmp_path, child_env):
    dest = tmp_path / "cache"
    code = (f"from helpers.cache import untar_data; "
            f"untar_data({server_url + '/slow/mini-pets.tgz'!r}, dest={str(dest)!r})")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=child_env(COURSE_DATA=str(dest)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def half_arrived() -> bool:
        return any(p.stat().st_size > 0 for p in dest.glob(".mini-pets.*.tmp/mini-pets.tgz"))

    _kill_when(process, half_arrived)
    RELEASE.set()
    left = leftovers(dest)
    assert [p.name.startswith(".mini-pets.") and p.name.endswith(".tmp") for p in left] == [True]
    assert not (dest / "mini-pets").exists(), "a cut-short download must never look finished"

    root = untar_data(f"{server_url}/mini-pets.tgz", dest=dest)
    assert is_complete(root) and (root / "images" / "pug_1.jpg").stat().st_size == 300_000
    assert leftovers(dest) == left, "a young leftover may be a live download's: kept"
    backdate(left[0])
    assert untar_data(f"{server_url}/mini-pets.tgz", dest=dest) == root
    assert leftovers(dest) == [] and sorted(p.name for p in dest.iterdir()) == ["mini-pets"]


# --- the doctor ---------------------------------------------------------------------------------------

def test_doctor_reports_the_cache_size_and_its_leftovers(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    final = build_once(tmp_path / "pets", lambda folder: (folder / "a.bin").write_bytes(bytes(3 * 2**20)))
    rows = dict(doctor.cache_rows())
    assert rows["data cache"] == f"{tmp_path} (pets), 3.0 MB in all"
    assert rows["leftovers"] == "none"

    left = tmp_path / ".pets.x1y2.tmp"
    left.mkdir()
    (left / "half.bin").write_bytes(bytes(2**20))
    rows = dict(doctor.cache_rows())
    assert rows["data cache"] == f"{tmp_path} (pets), 4.0 MB in all"
    assert rows["leftovers"].startswith(
        "1 leftover(s) of interrupted builds, downloads or writes, 1.0 MB: .pets.x1y2.tmp.")
    assert "`python -m helpers clean`" in rows["leftovers"]

    assert doctor.main(["doctor"]) == 0
    printed = capsys.readouterr().out
    assert "leftovers: 1 leftover(s)" in printed and "python -m helpers clean" in printed

    # The command it names removes them (young or old: the user asked), and nothing else.
    assert doctor.main(["clean"]) == 0
    assert f"removed {left}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets"] and is_complete(final)
    assert dict(doctor.cache_rows())["leftovers"] == "none"
