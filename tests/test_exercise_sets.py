"""Every exercise set in helpers/exercise_sets, and the notebooks that use them.

The sets arrive one notebook at a time; these tests iterate whatever modules exist, so a new
``nbNN.py`` is covered the moment it is added: its reference answers pass, its typical wrong
answers fail, the blank ``____`` reports "not attempted", and the notebook that uses it refers
only to exercises that exist and shows no solution.
"""
from __future__ import annotations

import importlib
import json
import math
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import helpers.exercise_sets
from helpers.exercise_sets import nb01, nb02, nb03, nb04, nb05, nb06
from helpers.exercises import ChoiceExercise, Exercise, Questionnaire, ____

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MODULE_NAMES = sorted(m.name for m in pkgutil.iter_modules(helpers.exercise_sets.__path__)
                      if re.fullmatch(r"nb\d\d", m.name))


def load_set(name: str):
    return importlib.import_module(f"helpers.exercise_sets.{name}")


def exercises_of(module) -> list[tuple[str, Exercise]]:
    """The module's q1, q2, ... and its questionnaire's items, each with a label for messages."""
    found = [(f"{module.__name__}.{name}", value) for name, value in vars(module).items()
             if re.fullmatch(r"q\d+", name) and isinstance(value, Exercise)]
    quiz = getattr(module, "questionnaire", None)
    if isinstance(quiz, Questionnaire):
        found += [(f"{module.__name__}.questionnaire[{i}]", q) for i, q in enumerate(quiz, 1)]
    return found


def all_exercises() -> list[tuple[str, Exercise]]:
    return [pair for name in MODULE_NAMES for pair in exercises_of(load_set(name))]


def checkable_exercises() -> list[tuple[str, Exercise]]:
    return [(label, ex) for label, ex in all_exercises() if ex.checkable]


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_each_set_has_exercises_and_a_questionnaire(name):
    module = load_set(name)
    assert isinstance(getattr(module, "questionnaire", None), Questionnaire), (
        f"helpers/exercise_sets/{name}.py should define `questionnaire = Questionnaire([...])`")
    assert len(module.questionnaire) >= 1, f"{name}.questionnaire is empty"
    assert any(re.fullmatch(r"q\d+", n) for n in vars(module)), f"{name} defines no exercises q1, q2, ..."


@pytest.mark.parametrize("label,exercise", checkable_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_reference_answer_is_correct(label, exercise):
    result = exercise.evaluate(exercise.reference_answer)
    assert result.status == "correct", f"{label}: its own reference answer is judged {result.status}: {result.message}"


@pytest.mark.parametrize("label,exercise", checkable_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_typical_wrong_answers_are_incorrect(label, exercise):
    assert len(exercise.wrong_answers) >= 2, f"{label}: give at least two typical wrong answers (wrong_answers=...)"
    for wrong in exercise.wrong_answers:
        result = exercise.evaluate(wrong)
        assert result.status == "incorrect", (
            f"{label}: the wrong answer {wrong!r} is judged {result.status} ({result.message})")
        assert result.message, f"{label}: a wrong answer should get a message that helps"


@pytest.mark.parametrize("label,exercise", checkable_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_other_correct_answers_are_accepted(label, exercise):
    """A checker must accept correct answers other than its own reference: another form, another method."""
    for right in exercise.right_answers:
        result = exercise.evaluate(right)
        assert result.status == "correct", (f"{label}: the correct answer {right!r} is judged {result.status}: "
                                            f"{result.message}")
    if isinstance(exercise, ChoiceExercise):  # every way of naming the right option
        option = exercise.options[exercise.answer_index]
        spellings = [exercise.answer.upper(), f"{exercise.answer})", f" {exercise.answer} "]
        spellings += [option, option.upper()] if isinstance(option, str) else []
        for spelling in spellings:
            assert exercise.evaluate(spelling).status == "correct", f"{label}: {spelling!r} names the right option"


# Notebooks 01 to 06 give every checker other than a multiple choice at least one alternative correct answer.
COURSE_SETS = [f"nb0{i}" for i in range(1, 7)]


@pytest.mark.parametrize("name", [n for n in COURSE_SETS if n in MODULE_NAMES])
def test_course_checkers_are_tested_with_alternative_answers(name):
    missing = [label for label, ex in exercises_of(load_set(name))
               if ex.checkable and not isinstance(ex, ChoiceExercise) and not ex.right_answers]
    assert not missing, ("give these exercises right_answers=[...] (other correct answers a learner may give): "
                         f"{missing}")


@pytest.mark.parametrize("label,exercise", checkable_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_correct_answer_is_explained_in_one_or_two_sentences(label, exercise):
    text = exercise.explanation
    assert text, f"{label}: give explanation=... (why the answer is right, shown with \"Correct!\")"
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)
    assert len(sentences) <= 2 and len(text) <= 320 and text.endswith("."), f"{label}: {len(sentences)} sentences"
    reference = exercise.reference_answer
    assert exercise.evaluate(reference).passed and text not in exercise.prompt


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_each_set_names_its_exercises_for_the_progress_record(name):
    module = load_set(name)
    assert callable(getattr(module, "progress", None)), f"{name}.py should end with `progress = track_set(globals())`"
    labels = [label.rpartition(".")[2] for label, ex in exercises_of(module)]
    assert [ex.record_as for _, ex in exercises_of(module)] == [(name[2:], label) for label in labels]


@pytest.mark.parametrize("label,exercise", all_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_blank_is_not_attempted(label, exercise):
    assert exercise.evaluate(____).status == "not attempted", label
    assert exercise.prompt, f"{label} has no prompt"
    if not exercise.checkable:
        assert exercise.solution_text(), f"{label}: a written question needs a model answer"


# ---- the notebooks that use the sets --------------------------------------------------------------

def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def outputs_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]))
        parts.extend("".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "".join(parts)


def set_imports(code: str) -> dict[str, str]:
    """{alias: set name} for lines like `from helpers.exercise_sets import nb03 as ex`."""
    return {alias or name: name for name, alias in
            re.findall(r"from\s+helpers\.exercise_sets\s+import\s+(nb\d\d)(?:\s+as\s+(\w+))?", code)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_refers_only_to_exercises_that_exist(path):
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    for alias, name in set_imports(code).items():
        assert name in MODULE_NAMES, f"{path.name} imports helpers.exercise_sets.{name}, which does not exist"
        module = load_set(name)
        for attribute in sorted(set(re.findall(rf"\b{alias}\.(\w+)", code))):
            assert hasattr(module, attribute), f"{path.name} uses {alias}.{attribute}, which {name}.py does not define"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_shows_no_solution(path):
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    texts = [source(c) + outputs_text(c) for c in cells(path)]
    for name in set_imports(code).values():
        for label, exercise in exercises_of(load_set(name)):
            solution = exercise.solution_text().strip()
            if isinstance(exercise, ChoiceExercise):  # its first line repeats an option, which the notebook may list
                solution = solution.partition("\n")[2].strip()
            # Short solutions ("answer = 4") can appear innocently; a long one appearing is a leak.
            if len(solution) >= 40:
                assert not any(solution in text for text in texts), f"{path.name} shows the solution of {label}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_blank_exercises_report_not_attempted(path):
    """Committed notebooks carry exercises unattempted: a cell checking a blank stores the "not attempted" line."""
    for cell in cells(path):
        src = source(cell)
        if cell["cell_type"] != "code" or not re.search(r"(=|return)\s*____\s*$", src, re.M) or ".check(" not in src:
            continue
        assert "Not attempted yet" in outputs_text(cell) or "not checked automatically" in outputs_text(cell), (
            f"{path.name}: this exercise cell should store the 'not attempted' verdict:\n{src[:200]}")


# ---- reference answers against the library code they stand for -------------------------------------
# A reference answer checked only against itself proves nothing: each one is recomputed here with the function,
# class or PyTorch operation that its notebook teaches, so an exercise and the course cannot drift apart.

def test_nb01_labels_and_split_size_match_the_data_helpers():
    from helpers.data import PETS_PATTERN, RegexLabeller, random_split

    labeller = RegexLabeller(PETS_PATTERN)
    for name in nb01.q1.test_cases:
        assert nb01.q1.reference(name) == labeller(name)
    assert nb01.q4.expected == len(random_split(7390, valid_pct=0.2)[1])


def test_nb01_regex_practice_references_agree_with_plain_string_work():
    for name in nb01.q5.test_cases:
        assert nb01.q5.reference(name) == int(name.rsplit("_", 1)[1].split(".")[0])
    for name in nb01.q6.test_cases:
        assert nb01.q6.reference(name) == name[0].isupper()
    for path in nb01.q7.test_cases:
        assert nb01.q7.reference(path) == tuple(path.split("/")[-3:-1])


def test_nb02_centre_box_is_presize_crops():
    from helpers.augment import PresizeCrop

    assert tuple(nb02.q1.reference) == PresizeCrop(460, train=False).crop_box(*nb02.PHOTO_SIZE)


def test_nb02_rotation_hint_holds_for_the_reference_and_not_for_the_clockwise_matrix():
    (out_x, out_y), (in_x, in_y) = nb02.Q2_HINT_POINTS
    point = torch.tensor([out_x, out_y, 1.0])
    assert torch.allclose(nb02.q2.reference(90.0) @ point, torch.tensor([in_x, in_y, 1.0]), atol=1e-6)
    assert not torch.allclose(nb02._rotation_clockwise(90.0) @ point, torch.tensor([in_x, in_y, 1.0]), atol=1e-6)


def _augment_by_matrix_and_by_library(matrix: torch.Tensor, **changes) -> tuple[torch.Tensor, torch.Tensor]:
    """The same picture through grid_sample with ``matrix`` and through BatchAugment with ``changes``."""
    from helpers.augment import BatchAugment

    x = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    aug = BatchAugment(size=16)
    params = aug.identity_params(x)
    params.update(changes)
    grid = F.affine_grid(matrix.float()[None, :2], [1, 3, 16, 16], align_corners=False)
    by_matrix = F.grid_sample(x.float() / 255, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return by_matrix, aug.decode(aug.transform(x, params, lighting=False))


def test_nb02_rotation_reference_turns_a_picture_as_batch_augment_does():
    by_matrix, by_library = _augment_by_matrix_and_by_library(nb02.q2.reference(30.0), rotate=torch.tensor([30.0]))
    torch.testing.assert_close(by_library, by_matrix, atol=1e-4, rtol=0)


def test_nb02_composition_reference_is_batch_augments_zoom_then_flip_and_the_order_matters():
    by_matrix, by_library = _augment_by_matrix_and_by_library(
        torch.tensor(nb02.q3.reference), zoom=torch.tensor([2.0]), zoom_centre=torch.tensor([nb02.ZOOM_CENTRE]),
        flip=torch.tensor([True]))
    torch.testing.assert_close(by_library, by_matrix, atol=1e-4, rtol=0)
    assert not torch.allclose(nb02._FLIP_Q3 @ nb02._ZOOM_Q3, nb02._ZOOM_Q3 @ nb02._FLIP_Q3)


def test_nb02_one_resampling_per_image_in_batch_augment(monkeypatch):
    from helpers.augment import BatchAugment

    calls = {"images": 0}
    real = F.grid_sample

    def counting(images, *args, **kwargs):
        calls["images"] += len(images)
        return real(images, *args, **kwargs)

    monkeypatch.setattr(F, "grid_sample", counting)
    BatchAugment(size=8).train()(torch.randint(0, 255, (3, 3, 16, 16), dtype=torch.uint8))
    assert calls["images"] == 3 * nb02.q4.expected[0]


def test_nb02_smallest_crop_side():
    from helpers.augment import BatchAugment

    assert nb02.questionnaire[6].expected == pytest.approx(math.sqrt(BatchAugment(size=224).min_scale) * 460)
    assert nb02.questionnaire[6].evaluate(398).passed  # rounded to the whole pixel the prompt asks for


def test_nb03_references_equal_pytorch():
    for x in nb03.q1.test_cases:
        torch.testing.assert_close(nb03.q1.reference(x), torch.softmax(x, dim=-1))
    for x in nb03.q3.test_cases:
        torch.testing.assert_close(nb03.q3.reference(x), torch.softmax(x, dim=-1))
    for probs, targets in nb03.q4.test_cases:
        torch.testing.assert_close(nb03.q4.reference(probs, targets), probs.gather(1, targets[:, None]).squeeze(1))
    torch.testing.assert_close(nb03.q2.expected[1], F.softmax(nb03.TABLE_ACTS, dim=0))
    assert nb03.q5.expected == pytest.approx(F.cross_entropy(torch.tensor([[0.0, 0.0]]), torch.tensor([0])).item())
    logits = nb03.GRAD_LOGITS.clone().requires_grad_()
    F.cross_entropy(logits, nb03.GRAD_TARGETS, reduction="sum").backward()
    torch.testing.assert_close(nb03.q6.expected.float(), logits.grad)
    assert math.isnan(nb03.questionnaire[6].expected) and math.isnan(torch.log(torch.tensor(-2.0)).item())
    assert nb03.questionnaire[8].expected == pytest.approx(
        F.nll_loss(torch.tensor([[0.6, 0.4]]), torch.tensor([0])).item())


def test_nb04_finder_rate_is_the_schedules_sched_exp():
    from helpers.schedule import sched_exp

    for k, start, end, num_it in nb04.q1.test_cases:
        assert nb04.q1.reference(k, start, end, num_it) == pytest.approx(sched_exp(start, end, k / num_it), rel=1e-12)


def _toy_learner():
    from helpers.data import DataLoaders
    from helpers.learner import Learner

    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 8, generator=generator), torch.randint(0, 3, (256,), generator=generator)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    torch.manual_seed(0)
    return Learner(DataLoaders(loader, loader, vocab=["a", "b", "c"]), nn.Sequential(nn.Linear(8, 3)),
                   wd=0.0, device="cpu", quiet=True)


def test_nb04_smoothing_is_the_recorders():
    learn = _toy_learner()
    learn.lr_find(num_it=20, show_plot=False)
    assert len(learn.recorder.losses) > 5
    np.testing.assert_allclose(nb04.q2.reference(learn.recorder.losses), learn.recorder.smooth_losses, rtol=1e-10)


def test_nb04_tenth_of_minimum_is_lr_finders_minimum():
    from helpers.lr_finder import minimum

    for lrs, losses in nb04.q3.test_cases:
        assert nb04.q3.reference(lrs, losses) == pytest.approx(minimum(np.array(lrs), np.array(losses))[0])


def test_nb04_one_cycle_answers_follow_the_schedule():
    from helpers.schedule import one_cycle

    lr_schedule, mom_schedule = one_cycle(1e-3)
    n = 8 * 100
    rates = [float(lr_schedule(k / n)) for k in range(n)]
    first, peak_batch = nb04.q4.expected
    assert rates[0] == pytest.approx(first) and int(np.argmax(rates)) == peak_batch
    moms = nb04.q5.expected
    assert float(mom_schedule(0)) == pytest.approx(moms[0])
    assert float(mom_schedule(peak_batch / n)) == pytest.approx(moms[1])
    assert float(mom_schedule(1.0)) == pytest.approx(moms[2])


class _CountingLoader(torch.utils.data.DataLoader):
    """A loader that counts how many passes over it were started."""

    passes = 0

    def __iter__(self):
        type(self).passes += 1
        return super().__iter__()


def test_nb04_finder_epochs_on_a_40_batch_loader():
    learn = _toy_learner()
    _CountingLoader.passes = 0
    learn.dls.train = _CountingLoader(torch.utils.data.TensorDataset(torch.randn(40, 8), torch.randint(0, 3, (40,))),
                                      batch_size=1)
    learn.lr_find(num_it=100, stop_div=False, show_plot=False)
    assert _CountingLoader.passes == nb04.questionnaire[3].expected


def test_nb05_rates_are_lr_for_groups():
    from helpers.schedule import lr_for_groups

    np.testing.assert_allclose(nb05.q1.expected, lr_for_groups(slice(2e-3), 3))
    np.testing.assert_allclose(nb05.q2.expected, lr_for_groups(slice(4e-3 / 2 / 100, 4e-3 / 2), 3))
    np.testing.assert_allclose(nb05.questionnaire[4].expected, lr_for_groups(slice(1e-6, 1e-3), 4))
    choice = nb05.questionnaire[5]
    assert choice.options[choice.answer_index] == "3e-4, 3e-4 and 3e-3"
    np.testing.assert_allclose(lr_for_groups(slice(3e-3), 3), [3e-4, 3e-4, 3e-3])


def test_nb05_head_size_is_create_heads():
    from helpers.models import create_head

    assert nb05.q3.expected == sum(p.numel() for p in create_head(2048, 37).parameters())


def _tiny_cnn_learner():
    from helpers.data import DataLoaders
    from helpers.learner import Learner
    from helpers.models import create_cnn, resnet_split

    data = torch.utils.data.TensorDataset(torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 0]))
    loader = torch.utils.data.DataLoader(data, batch_size=4)  # one batch an epoch; BatchNorm needs more than one item
    torch.manual_seed(0)
    return Learner(DataLoaders(loader, loader, vocab=["a", "b", "c"]), create_cnn("resnet10", n_out=3),
                   splitter=resnet_split, device="cpu", quiet=True)


def test_nb05_freeze_reference_is_what_the_learner_freezes():
    from helpers.models import create_cnn

    learn = _tiny_cnn_learner()
    learn.freeze()
    by_learner = {name for name, p in learn.model.named_parameters() if p.requires_grad}
    model = create_cnn("resnet10", n_out=3)
    nb05.freeze.reference(model)
    assert {name for name, p in model.named_parameters() if p.requires_grad} == by_learner


def test_nb05_fine_tune_epochs_and_peaks_are_the_learners():
    from helpers.schedule import combined_cos

    learn = _tiny_cnn_learner()
    learn.fine_tune(4, base_lr=4e-3)  # q1 asks about base_lr 2e-3: the frozen phase's peaks scale with it
    lrs = np.array(learn.recorder.lrs)
    per_epoch = len(learn.dls.train)
    assert len(lrs) == nb05.questionnaire[2].expected * per_epoch
    # The peaks are where the one-cycle formulas put them; with few batches no batch lands exactly on a peak.
    frozen_peaks, unfrozen_peaks = np.array(nb05.q1.expected) * 2, np.array(nb05.q2.expected)
    frozen = combined_cos(0.99, frozen_peaks / 25, frozen_peaks, frozen_peaks / 1e5)
    unfrozen = combined_cos(0.3, unfrozen_peaks / 5, unfrozen_peaks, unfrozen_peaks / 1e5)
    n = len(lrs) - per_epoch
    expected = [frozen(k / per_epoch) for k in range(per_epoch)] + [unfrozen(k / n) for k in range(n)]
    np.testing.assert_allclose(lrs, np.array(expected), rtol=1e-9)


def test_nb06_references_match_torch():
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.resnet152()
    assert nb06.q1.expected == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6, abs=1e-6)
    assert nb06.q1.evaluate(60.2).passed  # rounded to one decimal, as the prompt asks
    assert nb06.largest.expected == torch.finfo(torch.float16).max
    above = torch.nextafter(torch.tensor(1000.0, dtype=torch.float16), torch.tensor(2000.0, dtype=torch.float16))
    assert nb06.q2.expected == above.item() - 1000.0
    smallest_normal = torch.finfo(torch.float16).smallest_normal
    scale = nb06.q4.expected
    assert 1e-8 * scale >= smallest_normal > 1e-8 * scale / 2


def test_nb06_grad_scaler_skips_and_halves_as_the_answer_says():
    weight = nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    before = scaler.get_scale()
    scaler.scale((weight * 1e36).sum()).backward()
    scaler.step(optimizer)
    scaler.update()
    assert torch.equal(weight.detach(), torch.ones(3)) and scaler.get_scale() == before / 2
    answer = nb06.q5.options[nb06.q5.answer_index]
    assert "skipped" in answer and "halved" in answer
