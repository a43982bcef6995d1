"""Mixed-precision training policy the Learner calls each batch: autocast, backward, step (notebook 06).

``fp32``: plain float32. ``bf16``: ``torch.autocast`` to bfloat16, no loss scaling (bfloat16 has
float32's range, so gradients do not underflow), on CUDA or CPU. ``fp16``: autocast to float16 with a
``torch.amp.GradScaler``: float16's range is small, so the loss is multiplied by a large factor before
``backward`` and the gradients divided back before the step; a step whose gradients overflowed is
skipped and the factor halved. torch supports this on the CPU as well as on CUDA, so we allow it there
too, but it is slow on most CPUs (use bf16 on a CPU). In every mode the weights the optimiser updates
stay float32 (the "master weights") and the Learner computes the loss in float32.

Around the policy, what notebook 06 and ``bench/models.py`` use to choose and explain it: what this machine
offers (``/proc/cpuinfo`` read once), and what each float format can represent and what underflows in it.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import warnings

import pandas as pd
import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 / AMX, and Arm's "bf16" feature


# --- the hardware: one reading of /proc/cpuinfo ------------------------------------------------------

@functools.lru_cache(maxsize=8)
def read_cpuinfo(path: str = "/proc/cpuinfo") -> dict:
    """The CPU's model name and feature flags from ``path`` (empty where there is no /proc) (notebook 06)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {"model name": "", "flags": frozenset()}  # macOS, Windows: we cannot tell, so promise nothing
    info, flags = {"model name": ""}, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):  # x86 says flags, Arm says Features
            flags.update(value.split())
        elif key == "model name" and not info["model name"]:
            info["model name"] = value.strip()
    info["flags"] = frozenset(flags)
    return info


def cpu_supports_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU lists bfloat16 instructions, without which bf16 autocast is slower than fp32 (notebook 06)."""
    return any(flag in read_cpuinfo(cpuinfo)["flags"] for flag in BF16_CPU_FLAGS)


def device_name(device: torch.device | str = "cpu") -> str:
    """A readable name of the processor behind ``device``, for labelling measured figures (notebook 06)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = read_cpuinfo()["model name"] or platform.processor() or platform.machine()
    return f"{name} ({os.cpu_count()} logical CPUs)"


def mixed_precision_dtypes(device: torch.device | str) -> list[str]:
    """The mixed precisions worth trying on ``device``: bf16 on a CPU, fp16 (and bf16) on CUDA (notebook 06).

    bf16 on CUDA only where supported.
    """
    device = torch.device(device)
    if device.type == "cuda":
        # bf16 needs Ampere (A100, RTX 30xx) or newer; older GPUs only do fp16 quickly.
        return ["fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["fp16"]
    if device.type == "cpu":
        return ["bf16"]  # fp16 runs on a CPU too, but through slow emulation on nearly every CPU
    if device.type == "mps":
        return [mode for mode in ("fp16", "bf16") if mps_precision_problem(mode) is None]
    return []


def mps_precision_problem(mode: str) -> str | None:
    """Why ``mode`` cannot run on Apple's mps device with this torch and macOS, or None when it can (notebook 06)."""
    if mode == "fp32":
        return None
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        return "this machine has no mps device (an Apple-silicon Mac)"
    try:
        from torch.amp.autocast_mode import is_autocast_available
    except ImportError:  # older torch: no way to ask, and no mps autocast either
        return "this torch cannot autocast on mps; a newer torch can"
    if not is_autocast_available("mps"):
        return "this torch cannot autocast on mps; a newer torch can"
    newer = getattr(mps, "is_macos_or_newer", None)
    if mode == "bf16" and not (newer is not None and newer(14, 0)):
        return "bfloat16 on mps needs macOS 14 or newer"
    return None


def pick_mixed_precision(device: torch.device | str) -> str:
    """The first mixed precision ``device`` supports, else fp32 with a printed reason (notebook 06).

    fp16 on CUDA and mps, bf16 on a CPU.
    """
    choices = mixed_precision_dtypes(device)
    if choices:
        return choices[0]
    why = mps_precision_problem("fp16") if torch.device(device).type == "mps" else "no mixed precision is known here"
    print(f"{torch.device(device)}: training in fp32 ({why}).")
    return "fp32"


# --- the policy the Learner follows at each step ------------------------------------------------------


class Precision:
    """How one training step runs at a given precision: autocast, scaled backward, guarded step (notebook 06)."""

    def __init__(self, mode: str = "fp32", device: torch.device | str = "cpu"):
        if mode not in PRECISIONS:
            raise ValueError(f"unknown precision {mode!r}: use one of {sorted(PRECISIONS)} "
                             "('bf16' is the safe choice for mixed precision on a CPU).")
        self.device, self.requested = torch.device(device), mode
        problem = mps_precision_problem(mode) if self.device.type == "mps" else None
        if problem is not None:
            # A notebook written for a GPU or a CPU still runs on a Mac: in fp32, saying why.
            print(f"precision={mode!r} on Apple's mps device: {problem}; training in fp32 instead.")
            mode = "fp32"
        self.mode = mode
        self.dtype = PRECISIONS[mode]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=(mode == "fp16"))
        self.skipped_steps = 0
        self._scale = self.scaler.get_scale()  # before the first step this is a number, no device read
        if self.device.type == "cpu" and (mode == "fp16" or (mode == "bf16" and not cpu_supports_native_bf16())):
            # It trains correctly, just slowly: a hint, not an error, so a learner can still try it out.
            warnings.warn(f"precision={mode!r} on the CPU: this CPU lacks native {mode} support, so mixed precision "
                          "is usually slower than fp32 here. Measure it with `python bench/models.py --archs "
                          "resnet18`, or use precision='fp32'.", UserWarning, stacklevel=2)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context of the forward pass: low-precision matmuls and convolutions, or none for fp32 (notebook 06)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of the loss, scaled for fp16 (notebook 06)."""
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Unscale, step unless a gradient overflowed, update the scale; True when it stepped (notebook 06)."""
        if not self.scaler.is_enabled():
            optimizer.step()
            return True
        self.scaler.step(optimizer)
        self.scaler.update()
        # The scaler halves its factor exactly when it found inf/NaN gradients and skipped the step. The scale
        # lives on the device: read it once per step and remember it, rather than before and after.
        scale = self.scaler.get_scale()
        stepped, self._scale = scale >= self._scale, scale
        if not stepped:
            self.skipped_steps += 1
        return stepped

    def state_dict(self) -> dict:
        """The loss scaler's state (empty unless fp16), so a range test can put it back (notebook 06)."""
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` saved (notebook 06)."""
        if state:
            self.scaler.load_state_dict(state)
            self._scale = self.scaler.get_scale()


# --- the float formats themselves --------------------------------------------------------------------

def describe_float_formats(dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)
                            ) -> pd.DataFrame:
    """A pandas table of each float format's bits, range and precision, read from ``torch.finfo`` (notebook 06)."""
    rows = {}
    for dtype in dtypes:
        info = torch.finfo(dtype)
        mantissa_bits = round(-math.log2(info.eps))  # eps = 2**-mantissa: the gap just above 1.0
        rows[str(dtype).replace("torch.", "")] = {
            "bits": info.bits,
            "exponent bits": info.bits - 1 - mantissa_bits,
            "mantissa bits": mantissa_bits,
            "largest": info.max,
            "smallest normal": info.smallest_normal,
            # Below the smallest normal, numbers lose mantissa bits one by one down to this last step.
            "smallest subnormal": info.smallest_normal * info.eps,
            "eps (gap above 1)": info.eps,
            # about how many significant decimal digits survive a round trip through the format
            "decimal digits": math.floor(mantissa_bits * math.log10(2)),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def underflow_fraction(values: torch.Tensor, dtype: torch.dtype = torch.float16, scale: float = 1.0) -> float:
    """Share of non-zero ``values`` that become 0 once scaled by ``scale`` and stored in ``dtype`` (notebook 06)."""
    values = values.detach().double().flatten()  # float64 holds every float16/float32 value exactly
    nonzero = values[values != 0]
    if nonzero.numel() == 0:
        raise ValueError("underflow_fraction needs at least one non-zero value to count; got only zeros.")
    return ((nonzero * scale).to(dtype) == 0).double().mean().item()
