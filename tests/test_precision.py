"""Mixed precision: a bf16 step on the CPU, the fp16 scaler path on CUDA, and notebook 06's precision helpers."""
from __future__ import annotations

import functools
import math
import warnings

import pytest
import torch
from torch import nn

import helpers.precision
from helpers.precision import (
    Precision,
    cpu_supports_native_bf16,
    describe_float_formats,
    device_name,
    mixed_precision_dtypes,
    underflow_fraction,
)


def tiny_conv_net(n_out: int = 3) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, n_out))


# --- training steps ----------------------------------------------------------------------------------

# This machine may lack native bf16: the Learner then warns that bf16 is slow, which these tests do not measure.
@pytest.mark.filterwarnings("ignore:precision='bf16' on the CPU")
@pytest.mark.parametrize("channels_last", [False, True])
def test_bf16_learner_step_on_cpu_keeps_float32_master_weights(channels_last, image_dls):
    from helpers.learner import Learner

    torch.manual_seed(0)
    learn = Learner(image_dls(), tiny_conv_net(), precision="bf16", channels_last=channels_last,
                    device="cpu", quiet=True)
    before = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, lr=1e-2)
    losses = learn.recorder.losses
    assert len(losses) == 2 and all(math.isfinite(float(v)) for v in losses), losses
    params = list(learn.model.parameters())
    assert all(p.dtype == torch.float32 for p in params), "master weights must stay float32 under bf16 autocast"
    assert any(not torch.equal(b, p) for b, p in zip(before, params)), "the bf16 step did not update the weights"


def test_bf16_autocast_computes_in_bfloat16_but_gradients_are_float32():
    # What the Learner relies on: autocast lowers the convolution's output, not the weights or their gradients.
    model = tiny_conv_net()
    x = torch.randn(4, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model[0](x)
        out = model(x)
    assert hidden.dtype == torch.bfloat16
    nn.functional.cross_entropy(out.float(), torch.tensor([0, 1, 2, 0])).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the fp16 GradScaler path needs a CUDA GPU")
def test_fp16_scaler_path_on_cuda_counts_skipped_steps(image_dls):
    from helpers.learner import Learner
    from helpers.precision import Precision

    learn = Learner(image_dls(), tiny_conv_net(), precision="fp16", device="cuda", quiet=True)
    assert learn.precision.scaler.is_enabled()
    learn.fit(1, lr=1e-3)
    assert all(math.isfinite(float(v)) for v in learn.recorder.losses)
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())

    # A loss that overflows float16 gradients: the scaler must skip the step and halve its factor.
    policy = Precision("fp16", "cuda")
    weight = nn.Parameter(torch.ones(4, device="cuda"))
    opt = torch.optim.SGD([weight], lr=0.1)
    scale = policy.scaler.get_scale()
    policy.backward((weight * 1e38).sum() * 1e6)
    assert policy.step(opt) is False and policy.skipped_steps == 1
    assert policy.scaler.get_scale() == scale / 2
    assert torch.equal(weight.detach(), torch.ones(4, device="cuda"))


def test_grad_scaler_arithmetic_on_cpu_skips_overflowing_step():
    # The same rule notebook 06 shows on the CPU: inf gradients -> step skipped, scale halved.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    weight = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([weight], lr=0.1)
    scaler.scale((weight * 3e38).sum() * 10).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.equal(weight.detach(), torch.ones(3)) and scaler.get_scale() == 2.0**15


# --- the helpers notebook 06 and bench/models.py share ------------------------------------------------

def test_describe_float_formats_matches_the_bit_layouts():
    table = describe_float_formats()
    assert list(table.index) == ["float32", "float16", "bfloat16"]
    assert table.loc["float16", "largest"] == 65504.0
    assert table.loc["float16", "smallest normal"] == 2.0**-14
    assert table.loc["float16", "smallest subnormal"] == 2.0**-24
    assert table.loc["bfloat16", "smallest subnormal"] == 2.0**-133
    assert table.loc["float32", "smallest subnormal"] == 2.0**-149
    assert table[["exponent bits", "mantissa bits"]].loc["bfloat16"].tolist() == [8, 7]
    assert table[["exponent bits", "mantissa bits"]].loc["float16"].tolist() == [5, 10]
    assert (table["bits"] == table["exponent bits"] + table["mantissa bits"] + 1).all()
    # The smallest subnormal really is the last non-zero value: half of it rounds to zero.
    for name in table.index:
        dtype = getattr(torch, name)
        tiniest = table.loc[name, "smallest subnormal"]
        assert torch.tensor(tiniest, dtype=dtype).item() == tiniest
        assert torch.tensor(tiniest / 2, dtype=dtype).item() == 0.0


def test_underflow_fraction_and_loss_scaling():
    grads = torch.tensor([1e-3, 1e-6, 1e-8, 1e-9, 0.0])  # the zero is ignored: nothing to lose
    assert underflow_fraction(grads, torch.float16) == 0.5       # 1e-8 and 1e-9 are below 2**-24 / 2
    assert underflow_fraction(grads, torch.float16, scale=2.0**16) == 0.0
    assert underflow_fraction(grads, torch.bfloat16) == 0.0      # bfloat16 has float32's range
    with pytest.raises(ValueError, match="non-zero"):
        underflow_fraction(torch.zeros(3))


def test_cpu_supports_native_bf16_reads_the_flags(tmp_path):
    with_flag = tmp_path / "with"
    with_flag.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    without = tmp_path / "without"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert cpu_supports_native_bf16(str(with_flag)) is True
    assert cpu_supports_native_bf16(str(arm)) is True
    assert cpu_supports_native_bf16(str(without)) is False
    assert cpu_supports_native_bf16(str(tmp_path / "missing")) is False


def test_native_bf16_depends_on_the_cpu_alone(tmp_path, monkeypatch):
    # The answer is the CPU's: no environment setting (such as oneDNN's instruction cap) changes it.
    with_flag = tmp_path / "with"
    with_flag.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    assert cpu_supports_native_bf16(str(with_flag)) is True


def fake_cpu(monkeypatch, tmp_path, flags: str) -> None:
    """Make Precision read a cpuinfo file listing ``flags`` instead of this machine's."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(helpers.precision, "cpu_supports_native_bf16",
                        functools.partial(cpu_supports_native_bf16, str(cpuinfo)))


def test_mixed_precision_on_a_cpu_without_native_support_warns_how_to_check(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, "fpu sse2 avx2 avx512f")
    for mode in ("bf16", "fp16"):
        with pytest.warns(UserWarning, match=r"lacks native .*slower than fp32.*python bench/models.py --archs "
                                             r"resnet18.*precision='fp32'"):
            Precision(mode, "cpu")


def test_no_warning_where_mixed_precision_is_native(monkeypatch, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        Precision("fp32", "cpu")
        if cpu_supports_native_bf16():
            Precision("bf16", "cpu")  # this machine: the notebooks' stored outputs must stay free of warnings
        fake_cpu(monkeypatch, tmp_path, "fpu sse2 avx2 avx512f avx512_bf16")
        Precision("bf16", "cpu")
        if torch.cuda.is_available():
            Precision("fp16", "cuda")


def test_mixed_precision_dtypes_and_device_name():
    assert mixed_precision_dtypes("cpu") == ["bf16"]
    assert mixed_precision_dtypes("mps") == []
    if torch.cuda.is_available():
        assert mixed_precision_dtypes("cuda")[0] == "fp16"
    name = device_name("cpu")
    assert name and "logical CPUs" in name


def test_fp16_reads_the_scale_once_per_step_and_the_loss_only_when_asked(monkeypatch, image_dls):
    # On a GPU every read of a device value makes the CPU wait for the queue: the loop should not read per step.
    from helpers.callbacks import Callback
    from helpers.learner import Learner

    class Unread(Callback):
        order = 60  # after the Recorder

        def __init__(self):
            self.pending = []

        def after_batch(self):
            if self.learn.training:
                self.pending.append(len(self.learn.recorder._pending))

    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="slower than fp32"):
        learn = Learner(image_dls(n=48, batch_size=4), tiny_conv_net(), precision="fp16", device="cpu", quiet=True)
    scaler, calls = learn.precision.scaler, []
    real_get_scale = scaler.get_scale
    monkeypatch.setattr(scaler, "get_scale", lambda: calls.append(1) or real_get_scale())
    unread = Unread()
    learn.fit(1, 1e-3, cbs=[unread])
    n_steps = len(learn.dls.train)
    assert n_steps == 12 and len(calls) == n_steps
    assert unread.pending == list(range(1, n_steps + 1)), "the losses stay on the device until someone reads them"
    assert len(learn.recorder.losses) == n_steps and not learn.recorder._pending
