"""The data cache: downloading and checking archives, and building a dataset folder exactly once (notebook 01).

A folder in the cache counts as finished only when it holds the completion marker (``COMPLETE_MARKER``),
written as the very last step. Everything is built under a temporary name and renamed when complete, so an
interrupted download or generation never leaves something that looks finished; and a folder without the
marker is never silently taken for a dataset.

A process killed outright (a kernel restart) leaves its temporary folder behind. Every later call for that
dataset, also one that finds it finished, removes such folders once nothing has written to them for an hour
(``helpers.outputs.LEFTOVER_GUARD_S``), so a build still running in another process keeps its own;
``python -m helpers doctor`` lists any that remain, and ``python -m helpers clean`` removes them.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
from collections.abc import Callable
from pathlib import Path

from torchvision.datasets.utils import check_integrity, download_url, extract_archive

from helpers.outputs import (
    ensure_writable,
    publish,
    remove_path,
    sweep_temporary_files,
    temporary_pattern,
    temporary_sibling,
    written_whole,
)

CACHE_ENV = "COURSE_DATA"
COMPLETE_MARKER = ".complete"
MIB = 2**20


def cache_dir() -> Path:
    """Where datasets are kept: ``$COURSE_DATA`` or ``~/.cache/pets-course`` (notebook 01)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pets-course").expanduser()


class DownloadError(RuntimeError):
    """A download refused (HTTP error) or arrived broken (bad checksum, cut short); nothing is kept (notebook 01)."""


class UnfinishedFolderError(RuntimeError):
    """A dataset folder exists but has no completion marker: it may be half-written, so it is not used (notebook 01)."""


def is_complete(folder: Path | str) -> bool:
    """Whether ``folder`` is a finished dataset: it holds the completion marker (notebook 01)."""
    return (Path(folder) / COMPLETE_MARKER).is_file()


def mark_complete(folder: Path | str, note: str = "") -> Path:
    """Write the completion marker of a folder you know to be whole (notebook 01's data cache; its errors name it).

    For example a folder you extracted by hand.
    """
    marker = Path(folder) / COMPLETE_MARKER
    marker.write_text(f"finished{': ' + note if note else ''}\n")
    return marker


_WRITE_REMEDY = (f"set {CACHE_ENV} to a folder you can write to (the data cache; default ~/.cache/pets-course), "
                 "or pass a dest you can write to")


def leftovers(root: Path | str | None = None) -> list[Path]:
    """What interrupted builds, downloads and writes left in ``root`` (python -m helpers doctor).

    ``root`` is the data cache by default.
    """
    root = Path(root) if root is not None else cache_dir()
    try:
        return sorted(root.glob(temporary_pattern("*")))
    except OSError:
        return []


def remove_leftovers(root: Path | str | None = None) -> list[Path]:
    """Delete every leftover of ``leftovers(root)``, whatever its age (python -m helpers clean).

    Run it only when nothing is building data.
    """
    found = leftovers(root)
    for leftover in found:
        remove_path(leftover)
    return found


def disk_usage(path: Path | str) -> int:
    """Bytes taken by the files under ``path`` (notebook 01)."""
    if not os.path.isdir(path):
        return os.lstat(path).st_size if os.path.lexists(path) else 0
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass  # removed while we counted
    return total


def _claim(final: Path, rebuild: bool) -> bool:
    """True if ``final`` is finished. An empty folder is taken over; an unfinished one is rebuilt or refused."""
    if is_complete(final):
        return True
    if final.is_dir() and not any(final.iterdir()):
        final.rmdir()  # an empty folder (e.g. made by hand as dest): fill it
    elif final.exists() and rebuild:
        remove_path(final)  # our own cache folder from an older version or a killed run: build it again
    elif final.exists():
        raise UnfinishedFolderError(
            f"{final} exists but is not a finished dataset (it has no {COMPLETE_MARKER} marker, so it may be a "
            f"half-written copy). Delete it (shutil.rmtree) or pass an empty or new folder, and run the call again. "
            "If you filled it yourself and know it is complete, mark it with "
            f"helpers.data.mark_complete({str(final)!r}).")
    return False


def build_once(final: Path | str, write: Callable[[Path], None], rebuild: bool = False, note: str = "") -> Path:
    """Build ``final`` once: write a temporary folder, mark it finished, rename it (notebook 01, via ``pets_path``).

    ``write(folder)`` does the writing; nothing happens when ``final`` is already done.

    ``rebuild``: an unfinished ``final`` is deleted and built again (for folders the cache owns); otherwise it is
    refused with a clear error. An existing empty ``final`` is always filled.
    """
    final = Path(final)
    if _claim(final, rebuild):
        sweep_temporary_files(final)  # a killed earlier build left its folder: nothing else would ever look again
        return final
    ensure_writable(final.parent, "data folder", _WRITE_REMEDY)  # before the work, not after it
    # Another process finishing the same folder first is fine (done=is_complete); the marker goes in last.
    with written_whole(final, folder=True, done=is_complete) as staging:
        write(staging)
        mark_complete(staging, note)
    return final


# --- downloading ----------------------------------------------------------------------------------

def archive_stem(url: str) -> str:
    """The folder name an archive extracts to: its file name without .tgz, .tar.gz, .zip... (notebook 01)."""
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def first_mib_md5(path: Path | str) -> str:
    """MD5 of a file's first MiB: fastai's quick check of a big download, together with its size (notebook 01)."""
    with open(path, "rb") as file:
        return hashlib.md5(file.read(MIB)).hexdigest()


def check_download(path: Path, url: str, md5: str | None = None, size: int | None = None,
                   first_mib: str | None = None) -> None:
    """Raise ``DownloadError`` unless the file's size and MD5s are as expected (notebook 01, via ``pets_path``).

    The size, first-MiB MD5 and full MD5 are checked when given.
    """
    problems = []
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        problems.append(f"it has {actual_size:,} bytes instead of {size:,}")
    if first_mib is not None and first_mib_md5(path) != first_mib:
        problems.append(f"the MD5 of its first MiB is {first_mib_md5(path)}, not {first_mib}")
    if md5 is not None and not check_integrity(str(path), md5):
        problems.append(f"it does not have the expected MD5 checksum {md5}")
    if problems:
        raise DownloadError(
            f"The file downloaded from {url} is not the expected one: {'; '.join(problems)} (it is cut short, "
            f"corrupted, or the URL now serves a different file). It was deleted; run the call again, and if "
            f"this repeats check the URL and the expected checksums.")


def untar_data(url: str, dest: Path | str | None = None, md5: str | None = None, size: int | None = None,
               first_mib: str | None = None) -> Path:
    """Download, verify and extract an archive into the cache once, and return its folder (notebook 01).

    ``size`` and ``first_mib`` (MD5 of the first MiB) are fastai's checks; ``md5`` checks the whole file.
    The folder is used again only when it carries the completion marker.
    """
    dest = Path(dest) if dest is not None else cache_dir()
    final = dest / archive_stem(url)
    if _claim(final, rebuild=False):
        sweep_temporary_files(final)
        return final
    ensure_writable(dest, "data folder", _WRITE_REMEDY)
    sweep_temporary_files(final)
    archive_name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    # A temporary folder for the archive and what it extracts to; the dataset inside it is published.
    with temporary_sibling(final, folder=True) as part:
        try:
            download_url(url, str(part), filename=archive_name)  # torchvision: progress bar, redirects
        except urllib.error.HTTPError as error:  # a URLError too, but the server was reached and said no
            advice = "check the URL" if 400 <= error.code < 500 else "the server has a problem; try again later"
            raise DownloadError(
                f"The server answered HTTP {error.code} ({error.reason}) for {url}; {advice}. Nothing was kept "
                f"in {dest}.") from error
        except urllib.error.URLError as error:
            raise ConnectionError(
                f"Could not reach {url} ({getattr(error, 'reason', error)}). This machine seems to have no "
                f"internet. Use the tiny profile, which needs no download (COURSE_PROFILE=tiny, the default), "
                f"or download the archive elsewhere, extract it to {final} and mark it finished with "
                f"helpers.data.mark_complete.") from error
        except Exception as error:  # e.g. http.client.IncompleteRead when the server hangs up early
            raise DownloadError(
                f"The download of {url} was interrupted ({type(error).__name__}: {error}). Nothing was kept "
                f"in {dest}; run the same call again to start over.") from error
        archive = part / archive_name
        check_download(archive, url, md5, size, first_mib)
        extracted = part / "extracted"
        try:
            extract_archive(str(archive), str(extracted))
        except Exception as error:
            # gzip's end marker and CRC catch a transfer that stopped early without the server saying so.
            raise DownloadError(
                f"The archive downloaded from {url} is incomplete or corrupted ({type(error).__name__}: {error}); "
                f"the transfer was probably interrupted. Nothing was kept in {dest}; run the same call again."
            ) from error
        entries = list(extracted.iterdir())
        # Most archives hold one top folder (oxford-iiit-pet/...): that folder becomes the dataset root.
        source = entries[0] if len(entries) == 1 and entries[0].is_dir() else extracted
        mark_complete(source, f"extracted from {url}")
        publish(source, final, done=is_complete)
    return final


def file_hashes(root: Path | str) -> str:
    """One SHA-256 over every file's relative name and bytes: equal digests mean identical datasets (notebook 01)."""
    root, digest = Path(root), hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
