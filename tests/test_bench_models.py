"""bench/models.py end to end at a tiny size: it runs, and its CSV and plot hold sensible figures."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "models.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, child_env):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=240, cwd=ROOT, env=child_env())
    assert done.returncode == 0, f"bench/models.py --quick failed:\n{done.stdout}\n{done.stderr}"
    return out, done.stdout


@pytest.mark.slow
def test_quick_run_writes_csv_and_plot(quick_run):
    out, stdout = quick_run
    csv, png = out / "models_cpu_quick.csv", out / "models_cpu_quick.png"
    assert csv.exists() and png.exists(), sorted(p.name for p in out.iterdir())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # What it prints is what it wrote: the machine, every configuration's speed, the two files.
    table = pd.read_csv(csv)
    assert f"machine: {table.machine[0]} | torch {table.torch[0]} |" in stdout
    printed = stdout.split()
    assert all(f"{speed:.2f}" in printed for speed in table.images_per_s), (table.images_per_s.tolist(), stdout)
    assert f"wrote {csv} and {png}" in stdout


@pytest.mark.slow
def test_quick_table_has_every_configuration_with_positive_figures(quick_run):
    out, _ = quick_run
    table = pd.read_csv(out / "models_cpu_quick.csv")
    expected_columns = {"device", "arch", "precision", "channels_last", "images_per_s", "step_ms", "spread_pct",
                        "step_mem_mb", "params_m", "fwd_gflops_per_image", "size", "batch_size", "machine", "torch"}
    assert expected_columns <= set(table.columns), expected_columns - set(table.columns)
    configs = set(zip(table.arch, table.precision, table.channels_last))
    assert configs == {("resnet18", p, cl) for p in ("fp32", "bf16") for cl in (False, True)}
    for column in ("images_per_s", "step_ms", "params_m", "fwd_gflops_per_image"):
        assert all(math.isfinite(v) and v > 0 for v in table[column]), (column, table[column].tolist())
    # Speed and step time are two views of one measurement.
    assert ((table.batch_size * 1000 / table.step_ms - table.images_per_s).abs() < 1e-6 * table.images_per_s).all()
    # resnet18 with 37 outputs: 11.2M parameters; 32 px forward: (32/224)**2 of its 3.6 GFLOPs at 224 px.
    assert table.params_m.round(2).eq(11.20).all()
    assert table.fwd_gflops_per_image.between(0.06, 0.09).all()
    assert table.step_mem_mb.notna().all() and (table.step_mem_mb >= 0).all()


def test_ratios_and_bad_arguments(load_script):
    bench_models = load_script("bench/models.py")
    rows = [dict(arch=a, precision=p, channels_last=cl, images_per_s=ips)
            for a, p, cl, ips in [("resnet50", "fp32", False, 100.0), ("resnet50", "bf16", True, 260.0),
                                  ("resnet101", "fp32", False, 60.0), ("resnet101", "bf16", True, 160.0)]]
    ratios = bench_models.ratios(pd.DataFrame(rows))
    assert ratios["resnet50 bf16+channels_last / fp32 (speed-up)"] == pytest.approx(2.6)
    assert ratios["resnet101 / resnet50 time per image (bf16+channels_last)"] == pytest.approx(260 / 160)
    assert ratios["resnet101 / resnet50 time per image (fp32)"] == pytest.approx(100 / 60)
    with pytest.raises(SystemExit):
        bench_models.main(["--archs", "resnet7"])
    with pytest.raises(SystemExit):
        bench_models.main(["--quick", "--precisions", "fp16"])  # fp16 is not offered on a CPU: refused up front


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_one_precision_only_and_the_tf32_switch_name_the_file(tmp_path, load_script):
    """--precisions narrows the sweep; --tf32 (a CUDA setting, recorded in the file name) is accepted anywhere."""
    bench_models = load_script("bench/models.py")
    assert bench_models.main(["--quick", "--precisions", "fp32", "--tf32", "off", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "models_cpu_quick_tf32off.csv")
    assert set(zip(table.precision, table.channels_last)) == {("fp32", False), ("fp32", True)}


def test_full_epoch_refuses_an_unknown_configuration(capsys, load_script):
    """bench/full_epoch.py (GPU figures, run by bench/gpu.sh) checks its arguments before building anything."""
    full_epoch = load_script("bench/full_epoch.py")
    with pytest.raises(SystemExit):
        full_epoch.main(["--configs", "fp32,fp8"])
    assert "fp8" in capsys.readouterr().err
