"""How long an epoch of the full profile takes, measured on a stand-in Oxford-IIIT Pet at the real image sizes.

    python bench/full_epoch.py --device cuda                       # a GPU: fp32, then fp16 + channels_last
    python bench/full_epoch.py --device cpu --per-breed 2 --max-train-batches 2   # a few-minute check on a CPU

The real set needs internet; its stand-in (``tests/fullprofile/standins.py``, the one the full-profile tests use)
has the real layout and picture sizes (about 500x375 JPEGs) drawn from the tiny pets, so decoding, presizing to
460 pixels, augmenting and training at 224 pixels cost what they cost on the real pictures. Each configuration runs
``python -m helpers.train --profile full`` (the book's recipe: resnet34, ``fine_tune``, batches of 64) against the
stand-in served on 127.0.0.1 and stand-in ImageNet weights, and reads the per-epoch times from its metrics.json.

The stand-in is smaller than the real set (``--per-breed`` pictures per breed against about 200), so the script
reports training images per second and scales them to the real training split (5,912 pictures, 80% of 7,390).
Error rates mean nothing here: the weights are random and the pictures synthetic.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the stand-ins live with the tests that use them

REAL_TRAIN_IMAGES = 5912  # 80% of the real set's 7,390 pictures, as the course splits it
CONFIGS = {"fp32": [], "fp16+CL": ["--precision", "fp16", "--channels-last"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda or cpu (default cuda)")
    parser.add_argument("--per-breed", type=int, default=40, help="stand-in pictures per breed (at most 41)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--num-workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--max-train-batches", type=int, default=None, help="cap each epoch (a quick check)")
    parser.add_argument("--out", type=Path, default=Path("full_epoch_runs"), help="one folder per configuration")
    args = parser.parse_args(argv)
    from helpers.outputs import writable_or_exit

    writable_or_exit(args.out, parser)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}.")

    from fullprofile.standins import checksum, make_pets_archive, make_standin_weights, serve

    from helpers.data import pets_tiny

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        start = time.perf_counter()
        archive = make_pets_archive(base / "mirror", pets_tiny(base / "tiny"), per_breed=args.per_breed)
        (base / "checksums.json").write_text(json.dumps({archive.name: checksum(archive)}))
        make_standin_weights(base / "torch")
        print(f"stand-in archive ({archive.stat().st_size / 1e6:.0f} MB) and weights built in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        with serve(base / "mirror") as url:
            env = {**os.environ, "COURSE_DATA": str(base / "cache"), "COURSE_DATA_MIRROR": url,
                   "COURSE_DATA_CHECKSUMS": str(base / "checksums.json"), "TORCH_HOME": str(base / "torch"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
            summary = []
            for name in configs:
                out = args.out / name.replace("+", "_")
                command = [sys.executable, "-m", "helpers.train", "--profile", "full", "--device", args.device,
                           "--num-workers", str(args.num_workers), "--out", str(out), *CONFIGS[name]]
                if args.max_train_batches:
                    command += ["--max-train-batches", str(args.max_train_batches)]
                print("$", shlex.join(command), flush=True)
                start = time.perf_counter()
                subprocess.run(command, env=env, check=True, cwd=ROOT)
                print(f"  the whole command took {time.perf_counter() - start:.0f} s (start-up and download included)",
                      flush=True)
                metrics = json.loads((out / "metrics.json").read_text())
                for row in metrics["epochs"]:
                    print(f"  {name:<8} {row['phase']:<8} epoch {row['epoch']}: {row['seconds']:6.1f} s "
                          f"({row['train_seconds']:.1f} s training, {row['images_per_second']:.0f} images/s)")
                summary.append((name, metrics))
    print(f"\nstand-in: {args.per_breed} pictures per breed at the real sizes; device {summary[0][1]['device_name']}")
    for name, metrics in summary:
        for phase in ("frozen", "unfrozen"):
            rows = [r for r in metrics["epochs"] if r["phase"] == phase]
            if rows:
                speed = max(r["images_per_second"] for r in rows)  # the first epoch also pays cuDNN's autotuning
                print(f"{name:<8} {phase:<8} {speed:7.0f} training images/s -> about "
                      f"{REAL_TRAIN_IMAGES / speed:5.1f} s of training per epoch of the real set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
