"""Outputs checked before the work: an unwritable folder is refused in seconds, in one line, by every entry point;
files written whole, also when the writer is killed outright (helpers.outputs)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import outputs, train
from helpers.outputs import OutputNotWritableError, ensure_writable, written_whole

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOBODY = 65534


@pytest.fixture
def cpu_env(child_env):
    """Call it with a data cache for the environment of a child process: the CPU, that cache, one torch thread unless
    this process set another."""
    return lambda course_data: child_env(COURSE_DEVICE="cpu", COURSE_DATA=str(course_data),
                                         OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


@pytest.fixture
def world():
    """A folder every user may enter: root runs the read-only case as `nobody`, who must reach the files."""
    folder = Path(tempfile.mkdtemp(prefix="outputs-test-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)  # give write permission back, so the folder can be removed
    shutil.rmtree(folder, ignore_errors=True)


def unwritable(kind: str, base: Path) -> tuple[Path, str, dict]:
    """A folder that cannot be written, the part of the path the message must name, and how to run as a user it
    binds."""
    if kind == "proc":
        return Path("/proc/course-test/run"), "/proc", {}
    if kind == "under_a_file":
        (base / "notes.txt").write_text("a file, not a folder\n")
        return base / "notes.txt" / "run", str(base / "notes.txt"), {}
    read_only = base / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    # root writes anywhere, so a read-only folder binds only another user: run the command as `nobody` then.
    return read_only / "run", str(read_only), ({"user": NOBODY, "group": NOBODY} if IS_ROOT else {})


KINDS = ["proc", "under_a_file", "read_only"]


def _skip_unless_applicable(kind: str) -> None:
    if kind == "proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    if kind == "read_only" and sys.platform == "win32":
        pytest.skip("no read-only folders by mode bits on Windows")


# --- the check itself -------------------------------------------------------------------------------

def test_a_writable_folder_is_made_and_left_clean(tmp_path):
    folder = tmp_path / "a" / "b"
    assert ensure_writable(folder) == folder
    assert folder.is_dir() and list(folder.iterdir()) == [], "the probe file must not stay"


@pytest.mark.parametrize("kind", ["proc", "under_a_file"])
def test_the_check_names_the_part_of_the_path_to_change(kind, tmp_path):
    _skip_unless_applicable(kind)
    folder, culprit, _ = unwritable(kind, tmp_path)
    with pytest.raises(OutputNotWritableError) as caught:
        ensure_writable(folder, "--out folder", "pass --out a folder you can write to")
    message = str(caught.value)
    assert str(folder) in message and culprit in message and "pass --out a folder you can write to" in message
    assert "\n" not in message and not message.startswith("[Errno")


@pytest.mark.parametrize("errno_name, words", [("EACCES", "you have no permission to write in"),
                                               ("EROFS", "is on a read-only file system")])
def test_a_folder_that_refuses_writes_is_named(errno_name, words, tmp_path, monkeypatch):
    # Root may write in a read-only folder, so the refusal is simulated where the check meets it: the probe file.
    import errno

    def refused(*args, **kwargs):
        code = getattr(errno, errno_name)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(outputs.tempfile, "mkstemp", refused)
    with pytest.raises(OutputNotWritableError, match=words) as caught:
        ensure_writable(tmp_path / "run")
    assert str(tmp_path / "run") in str(caught.value) and "choose a folder you can write to" in str(caught.value)


def test_written_whole_replaces_only_when_complete_and_sweeps_old_temporaries(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with written_whole(target) as temporary:
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    # What a writer killed outright left: kept while young (it may be a live writer's), swept once old.
    young, old = tmp_path / ".table.csv.young.tmp", tmp_path / ".table.csv.old.tmp"
    young.write_text("live?")
    old.write_text("dead")
    os.utime(old, (time.time() - outputs.LEFTOVER_GUARD_S - 60,) * 2)
    with written_whole(target) as temporary:
        temporary.write_text("new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [young.name, "table.csv"]


def test_a_folder_written_whole_appears_at_once_readable_and_a_finished_rival_is_kept(tmp_path):
    target = tmp_path / "pets"
    with pytest.raises(KeyboardInterrupt):
        with written_whole(target, folder=True) as staging:
            (staging / "a.txt").write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == [], "an interrupted folder must leave nothing behind"

    with written_whole(target, folder=True) as staging:
        (staging / "a.txt").write_text("whole")
        assert not target.exists(), "the folder must not carry its name before it is complete"
    assert (target / "a.txt").read_text() == "whole"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask, "a published folder reads like any other made here"

    # Another writer finished the same folder first: kept when `done` says it is finished, an error otherwise.
    with written_whole(target, folder=True, done=lambda path: (path / "a.txt").exists()) as staging:
        (staging / "a.txt").write_text("second")
    assert (target / "a.txt").read_text() == "whole"
    with pytest.raises(OSError):
        with written_whole(target, folder=True) as staging:
            (staging / "a.txt").write_text("third")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets"], "the refused temporary folder is removed"


# --- every entry point refuses before its work ------------------------------------------------------

def _refused(command: list[str], env: dict, as_user: dict, timeout: float = 120) -> tuple[str, float]:
    """Run ``command``; it must stop with exit status 2, one line on stderr, and no traceback. Returns (stderr,
    seconds)."""
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                                **as_user)
    except PermissionError:  # this Python lives where `nobody` may not go (e.g. under /root)
        pytest.skip("running as root, and user nobody cannot run this Python: no read-only folder binds root")
    seconds = time.perf_counter() - start
    assert result.returncode == 2, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0], seconds


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
@pytest.mark.parametrize("kind", KINDS)
def test_train_refuses_an_unwritable_out_before_loading_any_data(kind, world, cpu_env):
    _skip_unless_applicable(kind)
    folder, culprit, as_user = unwritable(kind, world)
    course_data = world / "data"
    course_data.mkdir()
    course_data.chmod(0o777)  # so that `nobody` could fill it, were the data loaded before the check
    line, seconds = _refused([sys.executable, "-m", "helpers.train", "--profile", "tiny", "--epochs", "1",
                              "--out", str(folder)], cpu_env(course_data), as_user)
    assert line.startswith("python -m helpers.train: error: ") and str(folder) in line and culprit in line
    assert "pass --out a folder you can write to" in line
    assert list(course_data.iterdir()) == [], "the tiny pets were generated: the check came after the data"
    # Importing torch and the helpers takes a few seconds; the data and one epoch would take minutes.
    assert seconds < 60, f"refused only after {seconds:.0f} s"


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_torchrun_two_processes_stop_together(world, free_port, cpu_env):
    folder, culprit, _ = unwritable("under_a_file", world)
    course_data = world / "data"
    course_data.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(free_port()),
               "-m", "helpers.train", "--profile", "tiny", "--epochs", "1", "--out", str(folder)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=cpu_env(course_data), capture_output=True, text=True,
                            timeout=180)
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    # Rank 0 alone checks and speaks, once; every rank stops (torchrun then reports the failure its own way).
    assert output.count("python -m helpers.train: error: cannot write the --out folder") == 1, output
    assert str(folder) in output and culprit in output
    # torchrun prints its own traceback when a worker fails; none may come from the course's code.
    assert f"{os.sep}helpers{os.sep}" not in "".join(line for line in output.splitlines(True) if 'File "' in line)
    assert list(course_data.iterdir()) == [], "the data was loaded before the check"
    assert seconds < 120, f"refused only after {seconds:.0f} s"


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_backbone_refuses_before_pretraining(tmp_path, cpu_env):
    folder, culprit, _ = unwritable("under_a_file", tmp_path)
    line, seconds = _refused([sys.executable, "-m", "helpers.backbone", "--out", str(folder / "weights.pth")],
                             cpu_env(tmp_path), {})
    assert str(folder) in line and culprit in line and "--out" in line
    assert seconds < 60


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
@pytest.mark.parametrize("script", ["models.py", "quality.py"])
def test_benchmarks_refuse_before_measuring(script, tmp_path, cpu_env):
    folder, culprit, _ = unwritable("under_a_file", tmp_path)
    line, seconds = _refused([sys.executable, str(ROOT / "bench" / script), "--out", str(folder)],
                             cpu_env(tmp_path), {})
    assert str(folder) in line and culprit in line and "pass --out a folder you can write to" in line
    assert seconds < 60


def test_a_cache_that_cannot_be_written_is_named_before_any_drawing(tmp_path, monkeypatch):
    from helpers import tiny_pets

    blocker = tmp_path / "cache-file"
    blocker.write_text("not a folder\n")
    monkeypatch.setenv("COURSE_DATA", str(blocker / "cache"))
    monkeypatch.setattr(tiny_pets, "_write_pets_tiny", lambda *a: pytest.fail("drew pictures before the check"))
    with pytest.raises(OutputNotWritableError, match="COURSE_DATA") as caught:
        tiny_pets.pets_tiny()
    assert str(blocker) in str(caught.value) and "is a file" in str(caught.value)


# --- a kill during helpers.train's final write ------------------------------------------------------

KILL_DURING_WRITE = textwrap.dedent("""
    import os, signal, sys
    from torch import nn
    from helpers import train

    where, out = sys.argv[1], sys.argv[2]
    real_fsync, real_replace = os.fsync, os.replace
    calls = {"fsync": 0, "replace": 0}

    def fsync(fd):  # killed once model.pth's temporary file is on disk, before any rename
        real_fsync(fd)
        calls["fsync"] += 1
        if where == "before_renames" and calls["fsync"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    def replace(src, dst):  # killed between the two renames: the new weights are in place, the metrics not
        real_replace(src, dst)
        calls["replace"] += 1
        if where == "between_renames" and calls["replace"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    train.os.fsync, train.os.replace = fsync, replace
    train.write_results(train.Path(out), {"status": "complete", "run": 2}, nn.Linear(3, 5))
""")


def _finished_result(out: Path) -> dict | None:
    """What a reader may take as a finished run: metrics.json, with the weights beside it that it describes."""
    metrics_file = out / train.METRICS_FILE
    if not metrics_file.exists():
        return None
    metrics = json.loads(metrics_file.read_text())
    import hashlib
    assert metrics["weights_sha256_file"] == hashlib.sha256((out / train.WEIGHTS_FILE).read_bytes()).hexdigest(), \
        "metrics.json sits beside weights from another run"
    return metrics


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
@pytest.mark.parametrize("where", ["before_renames", "between_renames"])
def test_a_kill_during_the_final_write_leaves_no_half_result_and_the_next_write_works(where, tmp_path, cpu_env):
    out = tmp_path / "run"
    train.write_results(out, {"status": "complete", "run": 1}, nn.Linear(3, 2))
    killed = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, where, str(out)], cwd=ROOT,
                            env=cpu_env(tmp_path / "data"), capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    result = _finished_result(out)
    if where == "before_renames":
        assert result is not None and result["run"] == 1, "the earlier complete run must still be there"
    else:
        assert result is None, "new weights arrived: the old metrics.json must not describe them"
    temporaries = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert temporaries, "a SIGKILL cannot clean up: expected its temporary files"

    # The next run writes a whole result; the killed writer's files are kept while young, swept once old.
    train.write_results(out, {"status": "complete", "run": 3}, nn.Linear(3, 2))
    assert _finished_result(out)["run"] == 3
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == temporaries
    for name in temporaries:
        os.utime(out / name, (time.time() - outputs.LEFTOVER_GUARD_S - 60,) * 2)
    train.write_results(out, {"status": "complete", "run": 4}, nn.Linear(3, 2))
    assert sorted(p.name for p in out.iterdir()) == [train.METRICS_FILE, train.WEIGHTS_FILE]
    assert _finished_result(out)["run"] == 4
    assert torch.load(out / train.WEIGHTS_FILE, weights_only=True)["weight"].shape == (2, 3)
