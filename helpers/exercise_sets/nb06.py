"""Exercises and questionnaire of notebook 06: deeper models and mixed precision."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from helpers.exercises import (
    ChoiceExercise,
    CodeExercise,
    FunctionExercise,
    Questionnaire,
    Reflection,
    ValueExercise,
    track_set,
)

# resnet152 with torchvision's 1000-way classifier; the notebook counts resnet18 to resnet101 the same way.
RESNET152_PARAMS_M = 60.192808

q1 = ValueExercise(
    "How many parameters does torchvision's resnet152 have, in millions? Count them on the meta device "
    "(no weights needed) and answer with a number such as 12.3.",
    expected=RESNET152_PARAMS_M,
    decimals=1,
    right_answers=(60.2, 60.19, 60_192_808 / 1e6),
    hints=("Build it inside `with torch.device('meta'):` so no memory is allocated.",
           "sum(p.numel() for p in model.parameters()) gives the count; divide by 1e6."),
    solution="with torch.device('meta'):\n    model = torchvision.models.resnet152()\n"
             "answer = sum(p.numel() for p in model.parameters()) / 1e6   # 60.19",
    wrong_answers=(44.549160, 60_192_808, 25.557032),
    explanation=("resnet152 stacks 36 bottleneck blocks in its third stage (resnet101 has 23): about 60.2 million "
                 "parameters, 1.35x resnet101's."),
)


def _largest_float16() -> float:
    return (2 - 2.0**-10) * 2.0**15


# In the lesson, before the notebook works it out.
largest = ValueExercise(
    "What is the largest finite number a float16 can hold? Work it out from the bit layout "
    "(5 exponent bits with bias 15, 10 mantissa bits), then check it with torch.finfo.",
    expected=_largest_float16(),
    rtol=0, floor=0,
    hints=("The top exponent value (31) is reserved for inf and NaN, so the largest ordinary exponent is 30.",
           "With every mantissa bit set the significand is 2 - 2**-10; multiply by 2**(30 - 15)."),
    solution="answer = (2 - 2**-10) * 2**(30 - 15)   # 65504.0 == torch.finfo(torch.float16).max",
    wrong_answers=(65535.0, 65536.0, torch.finfo(torch.float32).max),
    right_answers=(65504, torch.finfo(torch.float16).max, 2.0**15 * (1 + 1023 / 1024)),
    explanation=("The largest ordinary exponent is 30 (31 is kept for inf and nan), so the largest finite value "
                 "is the largest significand, 2 - 2**-10, times 2**(30 - 15): 65,504."),
)


def _gap_above(value: float = 1000.0) -> float:
    return torch.finfo(torch.float16).eps * 2.0 ** math.floor(math.log2(value))


q2 = ValueExercise(
    "The notebook's eps is the gap between 1 and the next float16. What is the gap between 1000 and the next "
    "float16 above it? Work it out from the bit layout (10 mantissa bits), then check it in PyTorch.",
    expected=_gap_above(),
    rtol=0, floor=0,
    hints=("1000 lies between 2**9 = 512 and 2**10 = 1024, so its exponent is 9.",
           "One step of the last mantissa bit is 2**-10 times 2**9; torch.nextafter on float16 tensors checks it."),
    solution="answer = 2.0**-10 * 2.0**9   # 0.5: torch.nextafter(torch.tensor(1000., dtype=torch.float16), "
             "torch.tensor(2000., dtype=torch.float16)) is 1000.5",
    wrong_answers=(2.0**-10, 1000 * 2.0**-10, 1.0, 0.25),
    right_answers=(0.5, 2**-1),
    explanation=("A float's gap grows with its exponent: between 512 and 1024 every float16 is 2**9 times eps "
                 "apart, 0.5, so float16 cannot even count in steps smaller than a half there."),
)

def _lost_fraction(gradients: torch.Tensor) -> float:
    nonzero = gradients[gradients != 0]
    return (nonzero.half() == 0).double().mean().item()


_g = torch.Generator().manual_seed(3)
_LOST_CASES = (torch.tensor([1e-3, 1e-9, 0.0, -1e-9, 5e-8, 0.0]),
               torch.randn(200, generator=_g) * 1e-7,
               torch.cat([torch.zeros(50), torch.randn(50, generator=_g) * 1e-6]))

# In the lesson, before the notebook counts them by hand.
lost = FunctionExercise(
    """Write `lost_fraction(gradients)`: among the NON-ZERO values of a float32 tensor, the fraction that become
    exactly 0 once stored as float16 (a Python float between 0 and 1).""",
    reference=_lost_fraction,
    test_cases=_LOST_CASES,
    hints=("`gradients[gradients != 0]` keeps the non-zero values; `.half()` stores them as float16.",
           "The mean of a boolean tensor (converted to float) is the fraction of True values."),
    solution="def lost_fraction(gradients):\n    nonzero = gradients[gradients != 0]\n"
             "    return (nonzero.half() == 0).float().mean().item()",
    wrong_answers=(lambda g: (g.half() == 0).float().mean().item(),
                   lambda g: (g[g != 0].abs() < torch.finfo(torch.float16).smallest_normal).float().mean().item(),
                   lambda g: (g[g != 0].half() == 0).float().sum().item()),
    right_answers=(lambda g: float(((g != 0) & (g.half() == 0)).sum() / (g != 0).sum()),
                   lambda g: float((g[g != 0].to(torch.float16) == 0).float().mean())),
    explanation=("Only values that were non-zero can be lost; of those, the ones below half float16's smallest "
                 "subnormal round to exactly 0, while subnormals above it survive with fewer digits."),
)


def _mixed_step(model, xb, yb, optimizer, scaler, dtype=torch.bfloat16):
    with torch.autocast(xb.device.type, dtype=dtype):
        loss = F.cross_entropy(model(xb), yb)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad()
    return loss


def _step_without_autocast(model, xb, yb, optimizer, scaler, dtype=torch.bfloat16):
    loss = F.cross_entropy(model(xb), yb)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad()
    return loss


def _step_without_scaler(model, xb, yb, optimizer, scaler, dtype=torch.bfloat16):
    with torch.autocast(xb.device.type, dtype=dtype):
        loss = F.cross_entropy(model(xb), yb)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss


def _step_without_update(model, xb, yb, optimizer, scaler, dtype=torch.bfloat16):
    with torch.autocast(xb.device.type, dtype=dtype):
        loss = F.cross_entropy(model(xb), yb)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    optimizer.zero_grad()
    return loss


def _step_scaled_twice(model, xb, yb, optimizer, scaler, dtype=torch.bfloat16):
    with torch.autocast(xb.device.type, dtype=dtype):
        loss = F.cross_entropy(model(xb), yb) * scaler.get_scale()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad()
    return loss


def _step_loss_outside(model, xb, yb, optimizer, scaler, dtype=torch.bfloat16):
    """Also right: the loss after autocast (autocast runs cross-entropy in float32 anyway), loss.item() returned."""
    with torch.autocast(device_type=xb.device.type, dtype=dtype):
        out = model(xb)
    loss = F.cross_entropy(out.float(), yb)
    optimizer.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.item()


def _weights_after(step, scale_input: float = 1.0) -> tuple[list[torch.Tensor], float]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    xb = torch.randn(32, 6, generator=torch.Generator().manual_seed(1)) * scale_input
    yb = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(2))
    step(model, xb, yb, optimizer, scaler, torch.bfloat16)
    return [p.detach().clone() for p in model.parameters()], scaler.get_scale()


def _check_mixed_step(mixed_step) -> None:
    assert callable(mixed_step), "answer should be your function: answer = mixed_step"
    mine, _ = _weights_after(mixed_step)
    ours, _ = _weights_after(_mixed_step)
    fp32, _ = _weights_after(_step_without_autocast)
    assert not all(torch.equal(a, b) for a, b in zip(mine, _weights_after(lambda *args: None)[0])), (
        "the weights did not move: call scaler.step(optimizer) after the backward pass.")
    if all(torch.allclose(a, b, rtol=0, atol=1e-7) for a, b in zip(mine, fp32)) and not all(
            torch.allclose(a, b, rtol=0, atol=1e-7) for a, b in zip(ours, fp32)):
        raise AssertionError("the step matches a float32 step: run the forward pass inside "
                             "torch.autocast(xb.device.type, dtype=dtype).")
    for a, b in zip(mine, ours):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (
            "after one ordinary step the weights differ from a mixed-precision step: scale the loss with "
            "scaler.scale(loss) before backward(), and let scaler.step(optimizer) unscale the gradients.")
    weights, scale = _weights_after(mixed_step, scale_input=1e36)  # the scaled loss overflows: inf gradients
    start, _ = _weights_after(lambda *args: None)
    assert all(torch.equal(a, b) for a, b in zip(weights, start)), (
        "with an overflowing loss the weights still moved: step through scaler.step(optimizer), which skips a "
        "step whose gradients are inf or NaN.")
    assert scale == 2.0**15, ("after an overflow the scale should be halved, from 2**16 to 2**15: call "
                              "scaler.update() after scaler.step(optimizer).")


mixed_step = CodeExercise(
    """Write `mixed_step(model, xb, yb, optimizer, scaler, dtype)`, one training step in mixed precision: the
    forward pass and the cross-entropy loss under `torch.autocast` (device type `xb.device.type`, the given
    `dtype`), the backward pass on the loss scaled by the `GradScaler`, the optimizer step through the scaler,
    the scaler's update, and the gradients zeroed for the next step. Return the loss. Then `answer = mixed_step`.
    (The check runs it on the CPU in bfloat16, once with an ordinary batch and once with a loss that overflows.)""",
    checker=_check_mixed_step,
    reference=_mixed_step,
    hints=("`with torch.autocast(xb.device.type, dtype=dtype): loss = F.cross_entropy(model(xb), yb)`",
           "Then `scaler.scale(loss).backward()`, `scaler.step(optimizer)`, `scaler.update()`, "
           "`optimizer.zero_grad()`."),
    solution="""
    def mixed_step(model, xb, yb, optimizer, scaler, dtype):
        with torch.autocast(xb.device.type, dtype=dtype):
            loss = F.cross_entropy(model(xb), yb)
        scaler.scale(loss).backward()   # gradients of loss * scale: small ones do not underflow
        scaler.step(optimizer)          # unscales; skips the step if any gradient is inf or NaN
        scaler.update()                 # halves the scale after an overflow, doubles it after 2000 clean steps
        optimizer.zero_grad()
        return loss
    answer = mixed_step
    """,
    wrong_answers=(_step_without_autocast, _step_without_scaler, _step_without_update, _step_scaled_twice),
    right_answers=(_step_loss_outside,),
    explanation=("autocast picks 16 bits for the products and float32 for the loss; the scaler multiplies the loss "
                 "before backward so small gradients survive float16, divides them again before the step, skips "
                 "a step whose gradients overflowed and adjusts its factor."),
)


def survives_float16(value: float) -> bool:
    stored = torch.tensor(value, dtype=torch.float16).item()
    return stored != 0 and math.isfinite(stored)


q3 = FunctionExercise(
    "Write survives_float16(value) that returns True when a non-zero float keeps a finite, non-zero value "
    "once stored as a float16, and False when it underflows to 0 or overflows to inf.",
    reference=survives_float16,
    test_cases=(1.0, 1e-3, 1e-5, 1e-7, 2e-8, 1e-9, 6e4, 7e4, -1e-8, -1e5, 65519.0, 65520.0),
    hints=("Store it: torch.tensor(value, dtype=torch.float16).item() gives back what float16 kept.",
           "Numbers below float16's smallest normal (6.1e-5) are not lost yet: subnormals go down to 6e-8."),
    solution="def survives_float16(value):\n"
             "    stored = torch.tensor(value, dtype=torch.float16).item()\n"
             "    return stored != 0 and math.isfinite(stored)",
    wrong_answers=(
        lambda value: abs(value) >= torch.finfo(torch.float16).smallest_normal and abs(value) <= 65504,
        lambda value: abs(value) <= 65504,
        lambda value: torch.tensor(value, dtype=torch.float16).item() != 0,
    ),
    right_answers=(
        lambda value: bool(torch.isfinite(torch.tensor(value).half()) and torch.tensor(value).half() != 0),
        lambda value: 0 < abs(torch.tensor([value]).to(torch.float16)[0].item()) < math.inf,
    ),
    explanation=("Storing the value as a float16 and reading it back is the surest test: it is lost when the "
                 "result is 0 (underflow) or inf (overflow), and the subnormals between 6e-8 and 6.1e-5 survive."),
)


def _smallest_rescuing_scale(gradient: float = 1e-8) -> float:
    # The smallest power of two that lifts the gradient to float16's smallest normal value.
    return 2.0 ** math.ceil(math.log2(torch.finfo(torch.float16).smallest_normal / gradient))


q4 = ValueExercise(
    "A gradient of 1e-8 underflows in float16. What is the smallest power of two S such that 1e-8 * S is at "
    "least float16's smallest normal number (so it keeps all 10 mantissa bits)? Answer with the number, "
    "e.g. 2.0**5.",
    expected=_smallest_rescuing_scale(),
    rtol=0, floor=0,
    hints=("torch.finfo(torch.float16).smallest_normal is 2**-14, about 6.1e-5.",
           "You need S >= 6.1e-5 / 1e-8; take log2 and round up."),
    solution="answer = 2.0 ** math.ceil(math.log2(torch.finfo(torch.float16).smallest_normal / 1e-8))   # 2**13 = 8192",
    wrong_answers=(2.0**16, 2.0**12, 6103.515625),
    right_answers=(8192, 2**13, 8192.0),
    explanation=("The smallest normal float16 is 2**-14, about 6.1e-5; lifting 1e-8 up to it needs a factor of at "
                 "least 6,104, and the next power of two is 2**13 = 8,192."),
)

q5 = ChoiceExercise(
    "You train in float16 with a GradScaler, and after one backward pass a gradient is inf. What happens?",
    options=("The optimizer step runs with the inf gradient clipped to float16's largest value.",
             "The step is skipped and the scale factor is halved.",
             "Training stops with an overflow error.",
             "The scale factor is doubled so the next step has more range."),
    answer="b",
    hints=("An inf gradient would turn the weights into inf or NaN; would you apply that step?",
           "The scaler treats overflow as 'the factor is too big'."),
    solution="An inf or NaN gradient means the factor was too large: GradScaler skips that optimizer step "
             "(the weights do not move) and halves the factor; after 2000 clean steps it doubles it again.",
    wrong_answers=("a", "d", "c"),
    explanation=("An inf gradient means the scale was too large: GradScaler skips that step so no weight is "
                 "spoiled, and halves the scale for the next one."),
)


questionnaire = Questionnaire([
    Reflection(
        "What is the difference between resnet50 and resnet101, and what does the deeper one cost?",
        "Both are ResNets built from the same four stages of three-layer bottleneck blocks; resnet101 has "
        "more blocks in its third stage (23 instead of 6), hence 101 layers with weights instead of 50. It has "
        "44.5M parameters against 25.6M and needs about 1.9x the arithmetic per image (15.6 against 8.2 "
        "GFLOPs forward at 224 px), so it trains roughly 1.5-1.9x slower and keeps more activations in memory. "
        "On ImageNet it is about one point more accurate; on a small dataset like the pets the gain can "
        "vanish.",
    ),
    ChoiceExercise(
        "What does mixed-precision training (fastai's to_fp16, precision='fp16' in our Learner) do?",
        options=("Stores every weight in float16 to halve the model's size on disk.",
                 "Runs most of the forward and backward arithmetic in 16-bit floats while the optimizer "
                 "updates float32 master weights.",
                 "Trains two copies of the model, one in float16 and one in float32, and averages them.",
                 "Rounds the gradients to 16 bits before averaging them across GPUs."),
        answer="b",
        hints=("'Mixed': two precisions are used at once, for different jobs.",),
        solution="Autocast runs matrix products and convolutions in float16 (fast on tensor cores, half the "
                 "activation memory), the loss is computed in float32, loss scaling protects small gradients, "
                 "and the update is applied to float32 master weights.",
        wrong_answers=("a", "c", "d"),
        explanation=("Most multiplications and additions run in 16 bits, which is faster and lighter, while "
                     "float32 master weights collect the small updates that 16 bits would round away."),
    ),
    Reflection(
        "Why does mixed precision keep a float32 copy of the weights instead of training float16 weights?",
        "Updates are tiny compared with the weights they change: learning rate times gradient is often below "
        "float16's relative precision (eps is about 1e-3), so 1.0 - 5e-5 rounds back to 1.0 in float16 and the "
        "weight never moves. Applying updates to float32 master weights keeps them, and a float16 copy made "
        "from the master weights is still good enough for the forward and backward passes.",
    ),
    ChoiceExercise(
        "Why does bfloat16 training not need loss scaling, while float16 does?",
        options=("bfloat16 has more mantissa bits than float16.",
                 "bfloat16 has float32's 8 exponent bits, so small gradients do not underflow.",
                 "bfloat16 is only used for inference, where there are no gradients.",
                 "PyTorch scales bfloat16 gradients automatically inside autocast."),
        answer="b",
        hints=("Compare the exponent bits in describe_float_formats().",),
        solution="bfloat16 keeps float32's range (8 exponent bits) and gives up precision instead (7 mantissa "
                 "bits against float16's 10), so gradients around 1e-8 remain representable.",
        wrong_answers=("a", "d", "c"),
        explanation=("Underflow comes from a small exponent range, not from the mantissa; bfloat16 has "
                     "float32's 8 exponent bits, so tiny gradients stay representable without scaling."),
    ),
    Reflection(
        "Why might a deeper model not give a lower error on the pets, and what would you check before "
        "keeping it?",
        "The dataset is small, so the extra capacity can go into memorising the training images; the "
        "pretrained features of a smaller model may already be enough; and at fixed time the smaller model "
        "gets more epochs or more tuning. Compare validation error (not training loss) at a similar budget, "
        "watch for a training loss that keeps falling while validation does not improve, and weigh the 1.5-2x "
        "training and inference cost.",
    ),
    Reflection(
        "On a CPU, when is bf16 mixed precision faster than fp32, and when slower?",
        "It is faster only when the processor has native bfloat16 instructions (AVX512-BF16 or AMX on recent "
        "x86 CPUs, the bf16 feature on Arm); then matrix products run at a higher rate and memory traffic "
        "halves. Without them, PyTorch converts to and from float32 around every operation and bf16 is slower. "
        "Measure it: bench/models.py prints the ratio for your machine.",
    ),
])

progress = track_set(globals())
