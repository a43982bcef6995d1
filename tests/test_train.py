"""helpers.train: the command line, one process and torchrun on the CPU, DDP's gradient step, interrupted writes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import distributed, train
from helpers.callbacks import Callback
from helpers.data import DataLoaders
from helpers.learner import Learner
from helpers.run_record import EpochLog
from helpers.short_run import ShortRun

ROOT = Path(__file__).resolve().parent.parent
# A short run: one frozen one-cycle epoch of two training batches, then the whole validation set.
SMOKE = ["--profile", "tiny", "--recipe", "one_cycle", "--epochs", "1", "--max-train-batches", "2"]


@pytest.fixture
def train_env(child_env) -> dict:
    """The environment of a training run on the CPU."""
    # COURSE_MAX_BATCHES would cut validation short too; on a busy 2-core machine one thread per process is fastest.
    return child_env(COURSE_DEVICE="cpu", COURSE_MAX_BATCHES=None,
                     OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def _run(command: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def valid_size() -> int:
    """The tiny pets' validation size, from the public data API (this also makes sure the data is cached)."""
    from helpers.data import pets_dataloaders, pets_path
    from helpers.profiles import get_profile

    profile = get_profile("tiny")
    return len(pets_dataloaders(pets_path(profile), presize=profile.presize, size=profile.size).valid.dataset)


# --- the command line ------------------------------------------------------------------------------

def test_every_option_says_what_it_does():
    from helpers.train_cli import build_parser

    parser = build_parser()
    options = [action for action in parser._actions if action.option_strings and action.dest != "help"]
    assert len(options) >= 15
    unexplained = [action.option_strings[0] for action in options if not (action.help or "").strip()]
    assert not unexplained, f"options without help text: {unexplained}"


def test_defaults_come_from_profile_and_recipe():
    args = train.parse_args(["--profile", "full"])
    assert (args.arch, args.weights, args.batch_size, args.recipe) == ("resnet34", "imagenet", 64, "fine_tune")
    assert (args.freeze_epochs, args.epochs, args.lr) == (1, 2, 2e-3)  # the book's fine_tune(2)
    manual = train.parse_args(["--profile", "full", "--recipe", "manual"])
    assert (manual.freeze_epochs, manual.epochs, manual.lr, manual.unfrozen_lrs) == (3, 12, 3e-3, (1e-6, 1e-4))
    big = train.parse_args(["--profile", "full", "--arch", "resnet50", "--precision", "fp16", "--freeze-epochs", "3",
                            "--epochs", "6"])
    assert (big.weights, big.precision, big.freeze_epochs, big.epochs) == ("imagenet", "fp16", 3, 6)
    assert train.parse_args(["--profile", "tiny", "--lr", "find"]).lr == "find"


@pytest.mark.parametrize("bad", [["--lr", "fast"], ["--lr", "-1"], ["--epochs", "0"], ["--arch", "vgg16"],
                                 ["--recipe", "one_cycle", "--freeze-epochs", "2"],
                                 ["--recipe", "fine_tune", "--unfrozen-lrs", "1e-6,1e-4"],
                                 ["--arch", "resnet34", "--weights", "offline"]])
def test_bad_arguments_are_refused_with_a_message(bad, capsys):
    with pytest.raises(SystemExit) as stop:
        train.parse_args(["--profile", "tiny", *bad])
    assert stop.value.code == 2
    assert "error:" in capsys.readouterr().err


# --- files are complete or absent ----------------------------------------------------------------

def test_results_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    model = nn.Linear(3, 2)
    train.write_results(tmp_path, {"status": "complete", "run": 1}, model)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {train.METRICS_FILE, train.WEIGHTS_FILE}
    assert json.loads(before[train.METRICS_FILE])["run"] == 1
    assert torch.load(tmp_path / train.WEIGHTS_FILE, weights_only=True).keys() == model.state_dict().keys()

    calls = []

    def interrupted_fsync(fd):  # Ctrl-C while the second file is being flushed
        calls.append(fd)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        train.write_results(tmp_path, {"status": "complete", "run": 2}, nn.Linear(3, 2))
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before, "an interrupted write must leave the earlier files as they were, and no temporary file"


@pytest.mark.slow
def test_ctrl_c_during_training_writes_nothing(tmp_path, train_env):
    out = tmp_path / "run"
    out.mkdir()
    (out / train.METRICS_FILE).write_text('{"status": "from an earlier run"}\n')
    command = [sys.executable, "-m", "helpers.train", "--profile", "tiny", "--recipe", "one_cycle", "--epochs", "3",
               "--out", str(out)]
    # A shell that starts a command in the background (`make test &`) hands it Ctrl-C ignored, and Python then
    # leaves it ignored: give the run Ctrl-C back, as a terminal would.
    process = subprocess.Popen(command, cwd=ROOT, env=train_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # The summary line comes just before the first batch: interrupt inside training.
        for line in process.stdout:
            if line.startswith("one_cycle of"):
                break
        time.sleep(2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "nothing was written" in stderr
    assert [p.name for p in out.iterdir()] == [train.METRICS_FILE]
    assert json.loads((out / train.METRICS_FILE).read_text()) == {"status": "from an earlier run"}


# --- whole runs on the CPU -----------------------------------------------------------------------

@pytest.mark.slow
def test_one_process_run_records_what_it_did(tmp_path, valid_size, train_env):
    out = tmp_path / "one"
    result = _run([sys.executable, "-m", "helpers.train", *SMOKE, "--out", str(out)], train_env)
    assert sorted(p.name for p in out.iterdir()) == [train.METRICS_FILE, train.WEIGHTS_FILE]
    metrics = json.loads((out / train.METRICS_FILE).read_text())
    # The notebooks' epoch table, showing the figures the run recorded.
    printed, row = [line.split() for line in result.stdout.splitlines()], metrics["epochs"][0]
    assert ["epoch", "train_loss", "valid_loss", "error_rate", "time"] in printed, result.stdout
    assert [str(row["epoch"])] + [f"{row[k]:.6f}" for k in ("train_loss", "valid_loss", "error_rate")] in [
        line[:4] for line in printed], (row, result.stdout)
    assert metrics["status"] == "complete" and metrics["world_size"] == 1 and metrics["backend"] is None
    assert metrics["args"]["recipe"] == "one_cycle" and metrics["args"]["max_train_batches"] == 2
    assert metrics["command"].startswith("python -m helpers.train --profile tiny")
    assert [row["phase"] for row in metrics["epochs"]] == ["frozen"]
    assert {"train_loss", "valid_loss", "error_rate", "images_per_second"} <= set(metrics["epochs"][0])
    assert metrics["final_error_rate"] == metrics["epochs"][-1]["error_rate"]
    assert 0 <= metrics["final_error_rate"] <= 1
    assert metrics["valid_count"] == metrics["valid_size"] == valid_size
    assert metrics["images_per_second"] > 0
    assert {"python", "torch", "torchvision", "helpers"} <= set(metrics["versions"])
    state = torch.load(out / train.WEIGHTS_FILE, weights_only=True)
    assert len(state) > 0 and all(torch.isfinite(v.float()).all() for v in state.values())


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(free_port, tmp_path, valid_size, train_env):
    out = tmp_path / "two"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
                str(free_port())]
    result = _run([*torchrun, "-m", "helpers.train", *SMOKE, "--out", str(out)], train_env)
    assert result.stdout.count("valid_loss") == 1, "only rank 0 prints the table (one header line)"
    assert sorted(p.name for p in out.iterdir()) == [train.METRICS_FILE, train.WEIGHTS_FILE]
    metrics = json.loads((out / train.METRICS_FILE).read_text())
    assert (metrics["world_size"], metrics["backend"]) == (2, "gloo")
    assert metrics["batch_size"] == {"global": 32, "per_process": 16}
    digests = metrics["weights_sha256_per_rank"]
    assert len(digests) == 2 and digests[0] == digests[1], "every rank ends with the same weights"
    assert metrics["valid_count"] == metrics["valid_size"] == valid_size, "each validation image scored once"


# --- DDP's gradient equals one process's on the same global batch -------------------------------

def _bn_free_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _toy_dls(batch_size: int) -> DataLoaders:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
    return DataLoaders(DataLoader(TensorDataset(x, y), batch_size=batch_size, drop_last=True),
                       DataLoader(TensorDataset(x[:10], y[:10]), batch_size=batch_size), vocab=["a", "b", "c"])


class _KeepStep(Callback):
    """Keeps the first training batch and the gradients it produced (after DDP's all-reduce)."""

    def after_backward(self) -> None:
        if self.learn.training and not hasattr(self, "grads"):
            self.xb, self.yb = self.learn.xb[0].clone(), self.learn.yb[0].clone()
            self.grads = [p.grad.clone() for p in self.learn.model.parameters()]


def _one_step(dls, cbs) -> tuple[Learner, _KeepStep]:
    keep = _KeepStep()
    # Plain SGD: its step is proportional to the gradient (Adam's first step would hide a wrong scale).
    learn = Learner(dls, _bn_free_model(), opt_func=torch.optim.SGD, device="cpu", quiet=True)
    learn.fit(1, lr=0.5, cbs=[*cbs, keep, EpochLog(), ShortRun(1, validation=False)])
    return learn, keep


def _ddp_worker(rank: int, world_size: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    info, device = distributed.setup_distributed("cpu")
    try:
        dls, sampler = distributed.distributed_loaders(_toy_dls(8), 8, info, seed=0, num_workers=0)
        learn, keep = _one_step(dls, [distributed.DistributedTraining(info, device, sampler)])
        torch.save({"xb": keep.xb, "yb": keep.yb, "grads": keep.grads, "state": learn.model.state_dict()},
                   Path(folder) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_step_equals_one_process_step_on_the_global_batch(free_port, tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert len(ranks[0]["xb"]) == len(ranks[1]["xb"]) == 4, "each rank takes half of the global batch of 8"
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), f"{name} differs between the ranks"

    # One process, one step, on exactly the 8 items the two ranks shared between them.
    x = torch.cat([r["xb"] for r in ranks])
    y = torch.cat([r["yb"] for r in ranks])
    single = DataLoaders(DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x, y), batch_size=8),
                         vocab=["a", "b", "c"])
    learn, keep = _one_step(single, [])
    for shared, alone in zip(ranks[0]["grads"], keep.grads):
        torch.testing.assert_close(shared, alone, rtol=1e-5, atol=1e-7)
    for name, value in learn.model.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-5, atol=1e-7)
    assert not torch.equal(learn.model[0].weight, _bn_free_model()[0].weight), "the step changed the weights"


def test_shards_cover_every_item_once():
    for n, world in [(118, 2), (10, 3), (7, 4), (2, 3)]:
        shards = [list(distributed.ShardSampler(n, rank, world)) for rank in range(world)]
        assert sorted(i for shard in shards for i in shard) == list(range(n))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_backend_follows_the_device():
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 0)) == "nccl"
