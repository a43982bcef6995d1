"""Run every notebook top to bottom on a chosen device and report which asserted claims hold there, with the times.

    COURSE_DEVICE=cuda python bench/notebook_claims.py --json claims.json     # the course's claims on a GPU
    python bench/notebook_claims.py notebooks/03_cross_entropy.ipynb           # one notebook, on this machine

The stored outputs come from the CPU; this asks whether what the notebooks assert (every margin, every
agreement, every shape) still holds when the same tiny-profile lessons run on another device. Each notebook runs
in a fresh kernel with errors allowed, so one failing claim does not hide the ones after it; a cell that raises
on purpose (tagged ``raises-exception``) is not counted. Outputs are not saved.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from helpers.outputs import writable_or_exit, written_whole  # noqa: E402


def failures(nb: nbformat.NotebookNode) -> list[dict]:
    """The cells that raised without meaning to: index, error name and the first line of its message."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        if "NBVAL_RAISES_EXCEPTION" in cell.source:
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = (output.get("evalue") or "").strip().splitlines()
                found.append({"cell": index, "error": output.get("ename"),
                              "message": message[0][:300] if message else "",
                              "source": cell.source.strip().splitlines()[0][:120] if cell.source.strip() else ""})
    return found


def run(path: Path, timeout: int) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
        crashed = None
    except Exception as error:  # a kernel that died or a cell past its time limit: report it, go on
        crashed = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300] if str(error).strip() else ''}"
    seconds = time.perf_counter() - start
    asserts = sum(cell.source.count("assert") for cell in nb.cells if cell.cell_type == "code")
    return {"notebook": path.name, "seconds": round(seconds, 1), "assert_statements": asserts,
            "failures": failures(nb), "crashed": crashed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="notebooks (default: every notebook under notebooks/)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.json:
        writable_or_exit(args.json.parent, parser, "--json")
    paths = [Path(t) for t in args.targets] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    os.environ.setdefault("COURSE_PROFILE", "tiny")
    # The kernels must import this checkout's helpers whatever is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    print(f"profile {os.environ['COURSE_PROFILE']}, device {os.environ.get('COURSE_DEVICE', '(default)')}", flush=True)
    report = []
    for path in paths:
        row = run(path, args.timeout)
        report.append(row)
        verdict = "crashed: " + row["crashed"] if row["crashed"] else (
            "every claim held" if not row["failures"] else f"{len(row['failures'])} cell(s) failed")
        print(f"{row['notebook']:<42} {row['seconds']:6.1f} s  {verdict}", flush=True)
        for failure in row["failures"]:
            print(f"    cell {failure['cell']}: {failure['error']}: {failure['message']}  [{failure['source']}]")
        if args.json:  # after every notebook: a run stopped by a time limit keeps what it measured
            with written_whole(args.json) as temporary:
                temporary.write_text(json.dumps(report, indent=1))
    return 0 if all(not r["failures"] and not r["crashed"] for r in report) else 1


if __name__ == "__main__":
    sys.exit(main())
