"""Writing outputs: check the folder first, write each file whole, sweep what killed writers left (notebook 01).

Three rules every command and cache build follows:

* ``ensure_writable(folder)`` first: a long run that could only fail at its final write fails in the first
  second instead, with one sentence naming the folder and what to do (``writable_or_exit`` on a command line).
* Every file, and every folder the data cache builds, is written under a temporary name beside its final one
  (``temporary_sibling``, ``written_whole``) and given its name by one rename when complete (``publish``), so
  nothing half-written ever carries a finished name.
* A process killed outright (SIGKILL: a kernel restart, a closed laptop lid) cannot remove its temporary files;
  ``sweep_leftovers`` removes them later, once nothing has touched them for ``LEFTOVER_GUARD_S`` seconds, so a
  build still running in another process keeps its own.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

# An hour without a write: far longer than any pause inside a live build or download, so only the dead are swept.
LEFTOVER_GUARD_S = 3600.0


class OutputNotWritableError(OSError):
    """An output folder cannot be created or written; the message says which and what to do (notebook 01)."""


def _reason(folder: Path, error: OSError) -> str:
    """Why ``folder`` cannot be written, in words that point at the part of the path to change."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if error.errno == errno.EROFS:
        return f"{existing} is on a read-only file system"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"you have no permission to write in {existing}"
    if error.errno == errno.ENOENT and existing != folder:  # e.g. under /proc, which makes its own entries only
        return f"{existing} does not let new folders be made in it"
    return error.strerror or type(error).__name__


def ensure_writable(folder: Path | str, what: str = "output folder",
                    remedy: str = "choose a folder you can write to") -> Path:
    """Create ``folder`` if needed and prove a file can be written in it (notebook 01's data cache).

    Otherwise raise ``OutputNotWritableError``.

    ``what`` names the folder in the message (e.g. "--out"), ``remedy`` says what to do instead. Call it before
    the work, so that no run is lost to an output path that could have been checked at the start.
    """
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A real file created and removed: permissions, read-only mounts and odd file systems all answer here,
        # where os.access would say yes to root in a read-only folder.
        handle, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise OutputNotWritableError(f"cannot write the {what} {folder}: {_reason(folder, error)}; {remedy}.") from None
    return folder


def ensure_option_folder(folder: Path | str, option: str = "--out") -> Path:
    """``ensure_writable`` for a folder given on a command line, naming its option (python -m helpers.train)."""
    return ensure_writable(folder, what=f"{option} folder", remedy=f"pass {option} a folder you can write to")


def writable_or_exit(folder: Path | str, parser: argparse.ArgumentParser | str, option: str = "--out") -> Path:
    """``ensure_option_folder(folder)``, or one line on stderr and exit status 2 (python -m helpers.train).

    The one line a benchmark or command needs before its work: ``writable_or_exit(args.out, parser)``.
    """
    try:
        return ensure_option_folder(folder, option)
    except OutputNotWritableError as error:
        refuse(error, parser)


def refuse(error: BaseException, parser: argparse.ArgumentParser | str) -> NoReturn:
    """Print ``prog: error: message`` as one line on stderr and exit with status 2, as argparse does (notebook 05)."""
    prog = parser.prog if isinstance(parser, argparse.ArgumentParser) else parser
    print(f"{prog}: error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(2)


# --- files and folders written whole -------------------------------------------------------------------

def temporary_pattern(path: Path | str) -> str:
    """The glob matching every temporary name ``temporary_sibling`` gives beside ``path`` (notebook 05)."""
    return f".{Path(path).name}.*.tmp"


@contextlib.contextmanager
def temporary_sibling(path: Path | str, folder: bool = False) -> Iterator[Path]:
    """A temporary file or folder beside ``path``, removed unless published (notebook 01; python -m helpers.train).

    It is removed unless ``publish`` renamed it, also on Ctrl-C.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{path.name}.", ".tmp"  # hidden, and found again by temporary_pattern(path)
    if folder:
        temporary = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=path.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        os.close(handle)
        temporary = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    # mkstemp and mkdtemp make it private (0600, 0700); once published it should read like anything else made here.
    os.chmod(temporary, (0o777 if folder else 0o666) & ~umask)
    try:
        yield temporary
    finally:
        remove_path(temporary)


def publish(temporary: Path | str, path: Path | str, done: Callable[[Path], bool] | None = None) -> None:
    """Give a complete temporary file or folder its final name in one rename (notebook 05).

    A file is flushed to disk first, so it takes the name only once its bytes are there even if the power goes,
    and replaces an older ``path``. A folder cannot replace a non-empty one: if the rename fails and
    ``done(path)`` says another writer already finished ``path``, that one is kept; otherwise the error is raised.
    """
    temporary, path = Path(temporary), Path(path)
    if temporary.is_dir():
        try:
            os.rename(temporary, path)
        except OSError:
            if done is None or not done(path):
                raise
        return
    with open(temporary, "rb+") as written:
        os.fsync(written.fileno())
    os.replace(temporary, path)


@contextlib.contextmanager
def written_whole(path: Path | str, folder: bool = False,
                  done: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Write to the yielded temporary path; it becomes ``path`` only if the block finishes (notebook 05).

    ``with written_whole(out / "table.csv") as tmp: df.to_csv(tmp)``. The temporary name ends in ``.tmp``,
    so give writers that guess a format from the name (matplotlib's savefig) the format explicitly. With
    ``folder=True`` it is a folder to fill (the data cache's builds; ``done`` as in ``publish``). Temporaries
    of earlier writers killed outright are swept first.
    """
    path = Path(path)
    sweep_temporary_files(path)
    with temporary_sibling(path, folder) as temporary:
        yield temporary
        publish(temporary, path, done)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends: renames happen all or none (python -m helpers.train)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks; the window is two renames long
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def sweep_temporary_files(path: Path) -> list[Path]:
    """Remove the temporary siblings of ``path`` that killed writers left (notebook 01; python -m helpers.train).

    Only those untouched for ``LEFTOVER_GUARD_S``.
    """
    return sweep_leftovers(Path(path).parent, temporary_pattern(path))


# --- leftovers of killed runs ------------------------------------------------------------------------

def last_touched(path: Path, since: float | None = None) -> float:
    """The newest modification time under ``path``, or the first newer than ``since`` (notebook 01's data cache).

    ``path`` and everything under it count.
    """
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, folders, files in os.walk(path):
            for name in folders + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except OSError:
                    continue  # removed while we looked
                if since is not None and newest > since:
                    return newest
    return newest


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree; what is already gone is fine (notebook 01)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep_leftovers(folder: Path | str, pattern: str, older_than_s: float = LEFTOVER_GUARD_S) -> list[Path]:
    """Remove what matches ``pattern`` in ``folder``, idle for ``older_than_s`` (notebook 01; python -m helpers.train).

    Returns what it removed.

    A live builder keeps writing into its temporary folder, so its newest file stays young and it is kept;
    failures (a read-only cache, another process removing it first) are left for a later call.
    """
    folder, removed = Path(folder), []
    try:
        candidates = list(folder.glob(pattern))
    except OSError:
        return removed
    cutoff = time.time() - older_than_s
    for leftover in candidates:
        try:
            if last_touched(leftover, since=cutoff) <= cutoff:
                remove_path(leftover)
                if not leftover.exists():
                    removed.append(leftover)
        except OSError:
            pass  # gone already, or not ours to remove
    return removed
