"""The command line of ``python -m helpers.train``: the chapter's recipes and every option (notebooks 05 and 06)."""
from __future__ import annotations

import argparse
import math
import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from helpers.profiles import PROFILES, Profile, get_profile

PRECISIONS = ("fp32", "fp16", "bf16")


# --- the recipes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """One of the chapter's training recipes and its default epochs and learning rates (notebook 05).

    ``lr`` is the rate ``--lr`` replaces: fine_tune's ``base_lr``, one_cycle's ``lr_max``, and the frozen
    phase's rate in the manual recipe, whose unfrozen phase uses ``unfrozen_lrs`` (a slice across the groups).
    """

    freeze_epochs: int
    epochs: int
    lr: float
    unfrozen_lrs: tuple[float, float] | None = None
    call: str = ""  # the Learner calls it makes, as a notebook would write them


# The full profile holds the book's calls; the tiny one holds notebook 05's values, scaled down so that a laptop
# CPU trains the offline resnet10 in about a minute.
RECIPES: dict[str, dict[str, Recipe]] = {
    "full": {
        "fine_tune": Recipe(freeze_epochs=1, epochs=2, lr=2e-3, call="learn.fine_tune(2)"),
        "one_cycle": Recipe(freeze_epochs=0, epochs=3, lr=3e-3, call="learn.fit_one_cycle(3, 3e-3)"),
        "manual": Recipe(freeze_epochs=3, epochs=12, lr=3e-3, unfrozen_lrs=(1e-6, 1e-4),
                         call="learn.fit_one_cycle(3, 3e-3); learn.unfreeze(); "
                              "learn.fit_one_cycle(12, lr_max=slice(1e-6, 1e-4))"),
    },
    "tiny": {
        "fine_tune": Recipe(freeze_epochs=1, epochs=5, lr=1e-2, call="learn.fine_tune(5, base_lr=1e-2)"),
        "one_cycle": Recipe(freeze_epochs=0, epochs=3, lr=1e-2, call="learn.fit_one_cycle(3, 1e-2)"),
        "manual": Recipe(freeze_epochs=2, epochs=3, lr=1e-2, unfrozen_lrs=(1e-4, 5e-3),
                         call="learn.fit_one_cycle(2, 1e-2); learn.unfreeze(); "
                              "learn.fit_one_cycle(3, lr_max=slice(1e-4, 5e-3))"),
    },
}
RECIPE_HELP = {
    "fine_tune": "freeze the body, one cycle on the head for --freeze-epochs, unfreeze, then --epochs cycles "
                 "with rates from lr/200 (first group) to lr/2 (head): fastai's fine_tune",
    "one_cycle": "fit_one_cycle(--epochs, lr) on the model as vision_learner leaves it: the head (and the "
                 "BatchNorm layers) only when the body is pretrained, every layer with --weights none",
    "manual": "the chapter's own two steps: fit_one_cycle(--freeze-epochs, lr) frozen, unfreeze, then "
              "fit_one_cycle(--epochs, slice(*--unfrozen-lrs)): discriminative learning rates",
}


def recipe_for(profile: Profile | str, name: str) -> Recipe:
    """The default epochs and rates of recipe ``name`` in a profile (notebook 05)."""
    profile_name = profile if isinstance(profile, str) else profile.name
    if name not in RECIPES[profile_name]:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES[profile_name])}.")
    return RECIPES[profile_name][name]


# --- the command line -----------------------------------------------------------------------------

def _learning_rate(text: str) -> float | str:
    if text.strip().lower() == "find":
        return "find"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a learning rate: give a number such as 2e-3, or "
                                         "'find' to use the learning-rate finder's valley.") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"a learning rate must be a positive number, got {text}.")
    return value


def _rate_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give two rates separated by a comma, e.g. 1e-6,1e-4 "
                                         "(first group, last group).") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 < first rate <= last rate.")
    return low, high


def _whole_number_from(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number.") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}.")
        return value
    return parse


_positive_int, _non_negative_int = _whole_number_from(1), _whole_number_from(0)


def _epilog() -> str:
    """The recipes, their defaults per profile, and examples, shown under the options by --help."""
    recipes = "\n".join(textwrap.fill(RECIPE_HELP[name], 100, initial_indent=f"  {name:<11}",
                                       subsequent_indent=" " * 13) for name in RECIPES["full"])
    defaults = "\n".join(
        f"  {profile:<5} {name:<10} freeze-epochs {r.freeze_epochs}, epochs {r.epochs}, lr {r.lr:g}"
        + (f", unfrozen-lrs {r.unfrozen_lrs[0]:g},{r.unfrozen_lrs[1]:g}" if r.unfrozen_lrs else "")
        + f"\n{'':19}call: {r.call}"
        for profile in RECIPES for name, r in RECIPES[profile].items())
    return (f"recipes:\n{recipes}\n\nrecipe defaults per profile:\n{defaults}\n\n"
            "examples:\n"
            "  python -m helpers.train --profile tiny --epochs 1\n"
            "  python -m helpers.train --profile full                      # resnet34 fine_tune(2)\n"
            "  python -m helpers.train --profile full --recipe manual\n"
            "  python -m helpers.train --profile full --arch resnet50 --precision fp16 --freeze-epochs 3 "
            "--epochs 6\n"
            "  torchrun --nproc_per_node=4 -m helpers.train --profile full --channels-last\n\n"
            "several processes: --batch-size is the global batch, split evenly between the processes, so "
            "the recipe's learning rates, steps per epoch and schedule stay those of one process.")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """What is trained and how long: the profile, the recipe, the model, its weights, epochs and rates."""
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="tiny: the synthetic pets and the offline resnet10, sized for a CPU; full: the real "
                             "Oxford-IIIT Pet (downloaded once) and ImageNet weights, for a GPU "
                             "(default: $COURSE_PROFILE, else tiny)")
    parser.add_argument("--recipe", choices=list(RECIPES["full"]), default="fine_tune",
                        help="which of the chapter's training recipes to run (default: fine_tune; see below)")
    parser.add_argument("--arch", default=None,
                        help="resnet10 (tiny only), resnet18, resnet34, resnet50, resnet101 or resnet152 "
                             "(default: the profile's, resnet10 tiny / resnet34 full)")
    parser.add_argument("--weights", choices=("imagenet", "offline", "none"), default=None,
                        help="pretrained body: imagenet (torchvision's download), offline (the committed "
                             "resnet10 backbone) or none (random) (default: the profile's)")
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="epochs with every layer training (fine_tune, manual) or the epochs of the one "
                             "cycle (one_cycle) (default: the recipe's)")
    parser.add_argument("--freeze-epochs", type=_non_negative_int, default=None,
                        help="epochs with the body frozen before unfreezing (fine_tune, manual) "
                             "(default: the recipe's)")
    parser.add_argument("--lr", type=_learning_rate, default=None,
                        help="fine_tune's base_lr, one_cycle's lr_max or the manual recipe's frozen rate; a "
                             "number, or 'find' for the learning-rate finder's valley on the model as the recipe "
                             "starts it (default: the recipe's)")
    parser.add_argument("--unfrozen-lrs", type=_rate_range, default=None, metavar="FIRST,LAST",
                        help="manual recipe: the rates of the first and last parameter group after unfreezing "
                             "(default: the recipe's, 1e-6,1e-4 in the full profile)")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Where and how it runs: precision, memory layout, batches, seed, workers, device, smoke tests, output."""
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32, or mixed precision: fp16 (loss scaling; for GPUs) or bf16 (GPUs from Ampere "
                             "on, CPUs with bfloat16 instructions) (default: fp32)")
    parser.add_argument("--channels-last", action="store_true",
                        help="store images and weights channels-last (NHWC): faster convolutions on GPU tensor cores")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="images per optimiser step over all processes; each of N processes takes "
                             "batch-size/N (default: the profile's, 64 full / 32 tiny)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the split, the model's head and the shuffling "
                                                               "(default: 42, as in the notebooks)")
    parser.add_argument("--num-workers", type=_non_negative_int, default=None,
                        help="DataLoader worker processes per training process (default: the profile's, shared "
                             "out between the processes torchrun starts on one machine)")
    parser.add_argument("--decode", choices=("device", "workers", "pil"), default=None,
                        help="full profile: where pictures are decoded and presized: device (workers read bytes, "
                             "the GPU decodes each batch), workers (torchvision.io in the workers) or pil "
                             "(the book's PIL PresizeCrop) (default: device on CUDA, workers elsewhere)")
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None,
                        help="where to train (default: $COURSE_DEVICE, else cuda, mps, cpu in that order); "
                             "with torchrun each process takes the GPU numbered by its LOCAL_RANK")
    parser.add_argument("--max-train-batches", type=_positive_int, default=None, metavar="N",
                        help="smoke tests only: end each training epoch after N batches (the schedule fits into "
                             "them); validation always covers the whole validation set")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for metrics.json and model.pth (default: artifacts/train-PROFILE-RECIPE-ARCH)")


def build_parser() -> argparse.ArgumentParser:
    """The command line; a default left as None comes from the profile or the recipe (python -m helpers.train)."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train a pets classifier with one of the chapter's recipes and write metrics.json and "
                    "model.pth. Run it with torchrun to use several GPUs (or CPU processes).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog())
    _add_model_options(parser)
    _add_run_options(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line and fill each default that depends on the profile and recipe (python -m helpers.train)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
    except ValueError as error:  # a bad $COURSE_PROFILE
        parser.error(str(error))
    args.profile = profile.name
    recipe = recipe_for(profile, args.recipe)
    args.arch = args.arch or profile.arch
    if args.weights is None:
        args.weights = profile.weights if (args.arch == profile.arch or profile.weights != "offline") else "imagenet"
    if args.epochs is None:
        args.epochs = recipe.epochs
    if args.freeze_epochs is None:
        args.freeze_epochs = recipe.freeze_epochs
    if args.lr is None:
        args.lr = recipe.lr
    if args.unfrozen_lrs is None:
        args.unfrozen_lrs = recipe.unfrozen_lrs
    if args.batch_size is None:
        args.batch_size = profile.batch_size
    if args.num_workers is None:
        # The profile's workers are for one process; torchrun's N processes on one machine share its cores.
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        args.num_workers = (profile.num_workers if local_processes <= 1 or profile.num_workers == 0 else
                            max(1, min(profile.num_workers, (os.cpu_count() or 1) // local_processes)))
    if args.out is None:
        args.out = Path("artifacts") / f"train-{args.profile}-{args.recipe}-{args.arch}"
    if args.recipe == "one_cycle" and args.freeze_epochs:
        parser.error("--freeze-epochs belongs to fine_tune and manual; one_cycle trains the model as it is "
                     "(frozen when pretrained). Use --recipe manual for frozen epochs followed by unfrozen ones.")
    if args.recipe != "manual" and args.unfrozen_lrs is not None:
        parser.error("--unfrozen-lrs belongs to the manual recipe (fine_tune derives its rates from --lr).")
    if args.recipe in ("fine_tune", "manual") and args.freeze_epochs == 0:
        parser.error(f"{args.recipe} starts with frozen epochs: give --freeze-epochs 1 or more, or use "
                     "--recipe one_cycle to train without a frozen phase.")
    from helpers.models import ARCHS  # imported here: --help should not wait for torchvision
    if args.arch not in ARCHS:
        parser.error(f"unknown --arch {args.arch!r}: choose one of {', '.join(ARCHS)}.")
    if args.arch == "resnet10" and args.weights == "imagenet":
        parser.error("resnet10 has no ImageNet weights: use --weights offline (tiny profile) or none, or an "
                     "--arch from resnet18 up.")
    if args.weights == "offline" and args.arch != "resnet10":
        parser.error(f"the offline backbone exists for resnet10 only, not {args.arch}: use --weights imagenet "
                     "(needs internet once) or none.")
    return args
