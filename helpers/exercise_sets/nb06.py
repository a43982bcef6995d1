"""Exercises and questionnaire of notebook 06: deeper models and mixed precision."""
from __future__ import annotations

import math

import torch

from helpers.exercises import ChoiceExercise, FunctionExercise, Questionnaire, Reflection, ValueExercise, track_set

# resnet101 with torchvision's 1000-way classifier; notebook 06 counts it on the meta device.
RESNET101_PARAMS_M = 44.549160

q1 = ValueExercise(
    "How many parameters does torchvision's resnet101 have, in millions? Count them on the meta device "
    "(no weights needed) and answer with a number such as 12.3.",
    expected=RESNET101_PARAMS_M,
    # One decimal is what the prompt asks for, and the notebook itself writes "44.5 million".
    decimals=1,
    right_answers=(44.5, 44.55, 44_549_160 / 1e6),
    hints=("Build it inside `with torch.device('meta'):` so no memory is allocated.",
           "sum(p.numel() for p in model.parameters()) gives the count; divide by 1e6."),
    solution="with torch.device('meta'):\n    model = torchvision.models.resnet101()\n"
             "answer = sum(p.numel() for p in model.parameters()) / 1e6   # 44.55",
    wrong_answers=(25.557032, 44_549_160, 11.689512),
    explanation=("The counting happens on the meta device, where shapes exist but no memory is allocated: the "
                 "parameters of resnet101 add up to about 44.5 million."),
)


def _largest_float16() -> float:
    return (2 - 2.0**-10) * 2.0**15


q2 = ValueExercise(
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
