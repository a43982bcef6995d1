"""Run notebooks from a fresh kernel, top to bottom, and print how long each takes.

    python bench/notebook_times.py                  # time every notebook (outputs are not saved)
    python bench/notebook_times.py --execute        # ... and store the fresh outputs (what `make notebooks` does)
    python bench/notebook_times.py --execute notebooks/03_cross_entropy.ipynb
    python bench/notebook_times.py --threads 0      # time them as a learner runs them: every core, outputs not saved

Stored outputs come from the tiny profile on the CPU with one torch thread, so this script forces
COURSE_PROFILE=tiny, OMP_NUM_THREADS=1 and hides any GPU unless --keep-env is given. It runs on the machine's own
CPU kernels: what nbval compares holds on any CPU and thread count (CONTRIBUTING.md, "Stored outputs").
``--threads N`` sets the torch threads either way; ``--threads 0`` lets torch use every core, as in JupyterLab:
the time a learner waits, not the stored outputs'.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from helpers.outputs import OutputNotWritableError, ensure_writable, refuse, written_whole  # noqa: E402


def notebook_paths(targets: list[str]) -> list[Path]:
    paths = []
    for t in targets or [str(ROOT / "notebooks")]:
        p = Path(t)
        paths.extend(sorted(p.glob("[0-9][0-9]_*.ipynb")) if p.is_dir() else [p])
    return paths


def run_notebook(path: Path, save: bool, timeout: int = 900) -> float:
    """Execute one notebook in its own folder; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}, allow_errors=False)
    # Cells marked NBVAL_RAISES_EXCEPTION raise on purpose. The "raises-exception" tag is what lets them raise
    # without stopping the run, here (nbclient) and in JupyterLab's Run All, so such cells keep it when saved.
    for cell in nb.cells:
        if cell.cell_type == "code" and "NBVAL_RAISES_EXCEPTION" in cell.source:
            tags = cell.metadata.setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if save:
        with written_whole(path) as temporary:  # a kill while saving leaves the notebook as it was, never cut short
            nbformat.write(nb, str(temporary))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="notebooks or folders (default: notebooks/)")
    parser.add_argument("--execute", action="store_true", help="store the fresh outputs in the notebooks")
    parser.add_argument("--keep-env", action="store_true", help="do not force the tiny profile on the CPU")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per kernel (default 1, as the stored outputs, or the environment's with "
                             "--keep-env; 0: torch's default, every core)")
    args = parser.parse_args()
    if args.execute and args.threads not in (None, 1):
        parser.error("stored outputs come from one torch thread (make test compares them so): "
                     "drop --threads to store outputs, or drop --execute to time a run on more threads")
    paths = notebook_paths(args.targets)
    if args.execute:  # the fresh outputs go back into the notebooks: make sure they can, before any runs
        for folder in sorted({path.parent for path in paths if path.exists()}):
            try:
                ensure_writable(folder, "notebook folder", "make it writable, or run without --execute")
            except OutputNotWritableError as error:
                refuse(error, parser)
    if not args.keep_env:
        os.environ["COURSE_PROFILE"] = "tiny"
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["COURSE_DEVICE"] = "cpu"
    # The kernels inherit it: torch sizes its thread pool from it (unset: one thread per core).
    threads = args.threads if args.threads is not None else (None if args.keep_env else 1)
    if threads == 0:
        os.environ.pop("OMP_NUM_THREADS", None)
    elif threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    total = 0.0
    threads = os.environ.get("OMP_NUM_THREADS", f"every core ({os.cpu_count()})")
    print(f"torch threads per kernel: {threads}")
    print(f"{'notebook':<40} {'seconds':>8}")
    for path in paths:
        seconds = run_notebook(path, save=args.execute)
        total += seconds
        print(f"{path.name:<40} {seconds:8.1f}", flush=True)
    print(f"{'total':<40} {total:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
