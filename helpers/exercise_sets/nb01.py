"""Exercises and questionnaire of notebook 01, the pets data: ``from helpers.exercise_sets import nb01 as ex``."""
from __future__ import annotations

import re
from pathlib import PurePosixPath

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from helpers.exercises import ChoiceExercise, FunctionExercise, Questionnaire, Reflection, ValueExercise, track_set
from helpers.labelling import random_split


def _label_of(name: str) -> str:
    return re.match(r"^(.+)_\d+\.jpg$", name).group(1)


def _describe_path(path: PurePosixPath) -> tuple[str, str, str]:
    return path.parent.name, path.stem, path.suffix


def _is_clean_split(train: list[int], valid: list[int], n: int) -> bool:
    together = list(train) + list(valid)
    return len(together) == n and set(together) == set(range(n))


def _vocab_of(labels: list[str]) -> list[str]:
    return sorted(set(labels))


def _split_indices(n: int, valid_pct: float, seed: int) -> tuple[list[int], list[int]]:
    return random_split(n, valid_pct, seed)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return pil_to_tensor(image.convert("RGB"))


def _pictures() -> list[Image.Image]:
    """Small pictures in the modes a folder of photos holds: RGB, greyscale, with a transparent layer, palette."""
    gen = np.random.default_rng(0)
    rgb = Image.fromarray(gen.integers(0, 256, (5, 4, 3), dtype=np.uint8), "RGB")
    return [rgb, rgb.convert("L"), rgb.convert("RGBA"), rgb.convert("P"),
            Image.fromarray(gen.integers(0, 256, (2, 7, 3), dtype=np.uint8), "RGB")]


def _split_from_the_end(n, valid_pct, seed):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    cut = int(valid_pct * n)
    return order[:n - cut], order[n - cut:]


def _split_rounded(n, valid_pct, seed):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    cut = round(valid_pct * n)
    return order[cut:], order[:cut]


def _split_unshuffled(n, valid_pct, seed):
    cut = int(valid_pct * n)
    return list(range(cut, n)), list(range(cut))



def _split_with_numpy_lists(n, valid_pct, seed):   # other spellings of the same cut
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut = int(n * valid_pct)
    return [int(i) for i in order[cut:]], [int(i) for i in order[:cut]]


def _split_seeding_torch(n, valid_pct, seed):   # the global generator, seeded the same way, gives the same order
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    order = torch.randperm(n).tolist()
    torch.set_rng_state(state)
    cut = int(valid_pct * n)
    return order[cut:], order[:cut]


q8 = FunctionExercise(
    """Write `vocab_of(labels)`: the vocabulary of a list of labels, every distinct label once, sorted the way
    Python sorts strings (so capitals come first). A label's position in it will be its class number.""",
    reference=_vocab_of,
    test_cases=[["pug", "Bengal", "pug", "beagle", "Abyssinian", "Bengal"], ["b", "a", "B", "A"], ["only"]],
    hints=["A `set` keeps each label once; `sorted` puts them in order and gives a list."],
    solution="""
    def vocab_of(labels):
        return sorted(set(labels))
    """,
    wrong_answers=[lambda labels: list(dict.fromkeys(labels)),              # in order of first appearance
                   lambda labels: sorted(labels),                           # duplicates kept
                   lambda labels: sorted(set(labels), key=str.lower)],      # ignores case: cats and dogs mixed
    right_answers=[lambda labels: sorted({*labels}), lambda labels: list(np.unique(labels))],
    explanation=("A set drops the repeats and sorted fixes one order for everyone, so the same label always gets "
                 "the same class number; Python sorts capitals before lower case, which puts the cat breeds first."),
)

q9 = FunctionExercise(
    """Write `split_indices(n, valid_pct, seed)`, returning `(train, valid)`, two lists of indices: shuffle
    `range(n)` with `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`, keep the first
    `int(valid_pct * n)` of that order for validation and the rest for training.""",
    reference=_split_indices,
    test_cases=[(10, 0.2, 42), (9, 0.2, 0), (25, 0.4, 7)],
    hints=["`.tolist()` turns the shuffled tensor into a list; then cut it at `int(valid_pct * n)`.",
           "Validation is the slice before the cut, training the slice after it."],
    solution="""
    def split_indices(n, valid_pct, seed):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        cut = int(valid_pct * n)
        return order[cut:], order[:cut]
    """,
    wrong_answers=[_split_from_the_end, _split_rounded, _split_unshuffled],
    right_answers=[_split_with_numpy_lists, _split_seeding_torch],
    explanation=("Shuffling with a seeded generator of its own gives the same random split on every run and "
                 "leaves the global random state alone; cutting the shuffled order puts no breed in one set only."),
)

q10 = FunctionExercise(
    """Write `to_tensor(image)`: a PIL image of any mode (RGB, greyscale, with a transparent layer, a palette) as a
    tensor of bytes with three channels first, shape `(3, height, width)`, values 0 to 255. Steps 2 and 4 of the
    recipe: convert to RGB, then to a tensor (`pil_to_tensor` is imported).""",
    reference=_to_tensor,
    test_cases=_pictures(),
    hints=["`image.convert('RGB')` gives every picture three channels.",
           "`pil_to_tensor` puts the channels first; `np.array(image)` would put them last."],
    solution="""
    def to_tensor(image):
        return pil_to_tensor(image.convert("RGB"))
    """,
    wrong_answers=[lambda image: pil_to_tensor(image),                                        # no RGB conversion
                   lambda image: torch.from_numpy(np.array(image.convert("RGB"))),           # channels last
                   lambda image: pil_to_tensor(image.convert("RGB")).float() / 255],          # floats, not bytes
    right_answers=[lambda image: torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)],
    explanation=("A model expects the same three channels from every file, so greyscale, transparent and "
                 "palette pictures are converted to RGB first; PyTorch wants the channels first and keeps bytes "
                 "until the batch transform turns them into floats."),
)


q1 = FunctionExercise(
    """Write `label_of(name)`: the breed in a pets file name such as 'great_pyrenees_173.jpg' or 'Bengal_4.jpg',
    using a regular expression (`re.match` or `re.findall`). Keep the breed's capitals: they tell cats from dogs.""",
    reference=_label_of,
    test_cases=["Bengal_4.jpg", "great_pyrenees_173.jpg", "staffordshire_bull_terrier_10.jpg", "Abyssinian_100.jpg",
                "British_Shorthair_9.jpg"],
    hints=["The breed is everything before the LAST underscore; after it come digits and '.jpg'.",
           r"A group `(.+)` is greedy, so `^(.+)_\d+\.jpg$` takes as much as it can and still leaves `_173.jpg` to "
           r"match."],
    solution=r"""
    def label_of(name):
        return re.match(r'^(.+)_\d+\.jpg$', name).group(1)
    """,
    wrong_answers=[lambda name: name.split("_")[0],               # stops at the first underscore: 'great'
                   lambda name: name.rsplit(".", 1)[0],           # keeps the number: 'Bengal_4'
                   lambda name: name.lower().rsplit("_", 1)[0]],  # loses the capitals of the cat breeds
    right_answers=[lambda name: re.findall(r"^(.+)_\d+\.jpg$", name)[0],
                   lambda name: re.match(r"(.*)_\d+", name).group(1),
                   lambda name: re.sub(r"_\d+\.jpg$", "", name)],
    explanation=("The name ends with an underscore, digits and .jpg; a greedy group followed by that ending takes "
                 "everything before the last underscore, which is the whole breed with its underscores and "
                 "capitals."),
)

q2 = FunctionExercise(
    """Write `describe(path)` returning a tuple `(folder, stem, suffix)` of strings: the name of the folder that holds
    the file, the file name without its extension, and the extension. Use `Path` attributes, not string slicing.""",
    reference=_describe_path,
    test_cases=[PurePosixPath("/data/oxford-iiit-pet/images/Bengal_4.jpg"), PurePosixPath("train/3/1234.png"),
                PurePosixPath("images/great_pyrenees_173.jpg"), PurePosixPath("downloads/oxford-iiit-pet.tar.gz")],
    hints=["A Path has `.parent` (a Path), `.name`, `.stem` and `.suffix`.",
           "The folder's name is the name of the parent: `path.parent.name`. Only the last extension counts as the "
           "suffix."],
    solution="""
    def describe(path):
        return path.parent.name, path.stem, path.suffix
    """,
    wrong_answers=[lambda path: (path.parts[0], path.stem, path.suffix),      # the first folder, not the holder
                   lambda path: (path.parent.name, path.name, path.suffix),   # name keeps the extension
                   lambda path: (path.parent.name, path.name.split(".")[0], "." + path.name.split(".")[-1])],
    right_answers=[lambda path: (path.parts[-2], path.stem, path.suffix),
                   lambda path: [path.parent.name, path.with_suffix("").name, path.suffix],
                   lambda path: (str(path.parent.name), path.stem, "".join(path.suffixes[-1:]))],
    explanation=("A Path knows its parts: .parent.name is the folder that holds the file, .stem the name without "
                 "the last extension, .suffix that extension with its dot."),
)

q3 = FunctionExercise(
    """Write `is_clean_split(train, valid, n)`: True when the two lists of indices together hold every index
    0..n-1 exactly once (no item in both sets, none lost, none twice), else False. Check your split with it.""",
    reference=_is_clean_split,
    test_cases=[([2, 0, 4], [1, 3], 5), ([0, 1, 2], [2, 3], 5), ([0, 1], [2], 5), ([0, 0, 1, 2], [3, 4], 5),
                ([3, 1, 2, 0], [], 4), ([0, 1, 2], [3, 5], 5)],
    hints=["Three ways to go wrong: an index in both lists, a missing index, an index twice.",
           "Compare the total length with n, and the set of all indices with set(range(n))."],
    solution="""
    def is_clean_split(train, valid, n):
        together = list(train) + list(valid)
        return len(together) == n and set(together) == set(range(n))
    """,
    wrong_answers=[lambda train, valid, n: len(train) + len(valid) == n,          # misses overlaps and strays
                   lambda train, valid, n: not set(train) & set(valid),           # misses lost indices
                   lambda train, valid, n: set(train) | set(valid) == set(range(n))],  # misses duplicates
    right_answers=[lambda train, valid, n: sorted(list(train) + list(valid)) == list(range(n)),
                   lambda train, valid, n: (not set(train) & set(valid) and len(set(train)) == len(train)
                                            and len(set(valid)) == len(valid)
                                            and set(train) | set(valid) == set(range(n)))],
    explanation=("A clean split puts each index in exactly one set: together the lists have n entries and those "
                 "entries are exactly 0 to n-1, which rules out overlaps, losses and duplicates at once."),
)

q4 = ValueExercise(
    """The real Oxford-IIIT Pet images folder holds 7,390 pictures. How many does
    `random_split(7390, valid_pct=0.2)` put in the validation set? (`answer = ` a whole number)""",
    expected=1478,
    hints=["The validation part is the first `int(valid_pct * n)` indices of the shuffled order."],
    solution="answer = int(0.2 * 7390)  # 1478; the other 5912 are for training",
    wrong_answers=[5912, 1479, 7390],
    right_answers=[1478.0, round(0.2 * 7390)],
    explanation=("random_split shuffles the 7,390 indices and takes the first int(0.2 * 7390) = 1,478 of them for "
                 "validation; the other 5,912 are for training."),
)

# ---- regular-expression practice ------------------------------------------------------------------

def _number_of(name: str) -> int:
    return int(re.search(r"_(\d+)\.jpg$", name).group(1))


def _is_cat(name: str) -> bool:
    return re.match(r"[A-Z]", name) is not None


def _split_and_digit(path: str) -> tuple[str, str]:
    return re.search(r"([^/]+)/(\d)/[^/]+\.png$", path).groups()


q5 = FunctionExercise(
    """Regex practice 1. Write `number_of(name)`: the picture's number in a pets file name, as an int
    ('great_pyrenees_173.jpg' gives 173), with a regular expression.""",
    reference=_number_of,
    test_cases=["great_pyrenees_173.jpg", "Bengal_4.jpg", "staffordshire_bull_terrier_10.jpg", "Abyssinian_100.jpg"],
    hints=[r"`\d+` matches one or more digits; put it in a group and anchor it just before `.jpg`.",
           r"`re.search(r'_(\d+)\.jpg$', name).group(1)` is a string: turn it into a number with `int`."],
    solution=r"""
    def number_of(name):
        return int(re.search(r'_(\d+)\.jpg$', name).group(1))
    """,
    wrong_answers=[lambda name: int(re.search(r"\d", name).group()),         # one digit only: 1 for 173
                   lambda name: len(re.findall(r"\d", name)),                # counts the digits
                   lambda name: int(re.findall(r"\d+", name)[0]) + 1],       # off by one
    right_answers=[lambda name: int(re.findall(r"\d+", name)[-1]),
                   lambda name: int(re.match(r"^.+_(\d+)\.jpg$", name).group(1)),
                   lambda name: int(re.sub(r"\D", "", name))],
    explanation=("Anchoring the group of digits just before .jpg picks the picture number whatever digits or "
                 "underscores the breed contains, and int turns the matched text into a number."),
)

q6 = FunctionExercise(
    """Regex practice 2. Write `is_cat(name)`: True when the file name belongs to a cat breed (the real dataset
    writes cat breeds with a capital first letter, dog breeds in lower case), else False. Use a regular expression.""",
    reference=_is_cat,
    test_cases=["Bengal_4.jpg", "great_pyrenees_173.jpg", "British_Shorthair_9.jpg", "yorkshire_terrier_2.jpg",
                "Abyssinian_100.jpg", "beagle_1.jpg"],
    hints=["A character class such as `[A-Z]` matches one capital letter; `re.match` only looks at the start.",
           "`re.match(...)` returns a match object or None: compare with None to get True or False."],
    solution=r"""
    def is_cat(name):
        return re.match(r'[A-Z]', name) is not None
    """,
    wrong_answers=[lambda name: re.match(r"[A-Za-z]", name) is not None,     # any letter: every breed
                   lambda name: re.search(r"[a-z]", name) is None,           # no small letter at all: never
                   lambda name: re.match(r"[a-z]", name) is not None],       # the dogs, not the cats
    right_answers=[lambda name: bool(re.match(r"[A-Z]", name)),
                   lambda name: re.fullmatch(r"[A-Z].*", name) is not None,
                   lambda name: bool(re.search(r"^[A-Z]", name))],
    explanation=("In this dataset only the cat breeds start with a capital, so a match of [A-Z] at the start of "
                 "the name (re.match only looks there) is all it takes."),
)

q7 = FunctionExercise(
    """Regex practice 3. The digits sample stores pictures as `.../train/3/1500.png`. Write `split_and_digit(path)`
    returning the tuple `(split, digit)` of strings, ('train', '3') here, with ONE regular expression that has two
    groups. The path may start with more folders.""",
    reference=_split_and_digit,
    test_cases=["train/3/1500.png", "valid/7/9.png", "mnist_sample/train/7/10002.png", "data/valid/3/21.png"],
    hints=["Anchor at the end with `$`: the file name, the digit folder and the split folder are the last three parts.",
           r"`[^/]+` matches one folder name (anything but a slash); `(\d)` one digit. `.groups()` returns the tuple."],
    solution=r"""
    def split_and_digit(path):
        return re.search(r'([^/]+)/(\d)/[^/]+\.png$', path).groups()
    """,
    wrong_answers=[lambda path: tuple(re.findall(r"\d+", path)[:2]),                   # digits, not the split
                   lambda path: tuple(path.split("/")[:2]),                             # the first two folders
                   lambda path: re.search(r"(\w+)/(\d+)\.png$", path).groups()],       # the digit and the number
    right_answers=[lambda path: re.search(r"(\w+)/(\d)/\d+\.png$", path).groups(),
                   lambda path: tuple(re.findall(r"(\w+)/(\d)/", path)[-1]),
                   lambda path: list(re.match(r".*?([a-z]+)/(\d)/\d+\.png$", path).groups())],
    explanation=("Anchored at the end, the pattern reads the last three parts of the path: the split folder, one "
                 "digit as the class folder, and the file name; its two groups are the answer."),
)

questionnaire = Questionnaire([
    ChoiceExercise(
        "In which two forms does a deep-learning dataset most often come?",
        ["Individual files, whose names or folders give the labels, and a table (e.g. a CSV) of items and labels",
         "Training files and validation files",
         "JPEG and PNG",
         "One big tensor saved with torch.save"],
        answer="a",
        hints=["Pets labels live in file names; MNIST's in folder names; many Kaggle sets ship a CSV."],
        solution="Either the files themselves carry the labels (in names or folders), or a table lists items and "
                 "labels.",
        wrong_answers=["b", "c"],
        explanation=("The label of an item is either carried by the file itself (its name or folder) or "
                     "listed next to it in a table; every loader starts by reading one of these two.")),
    Reflection(
        "The pets file names look like 'great_pyrenees_173.jpg'. Why label them with a regular expression rather than "
        "by cutting the name at its first underscore?",
        "Breed names contain underscores themselves (great_pyrenees, british_shorthair), so the first underscore is "
        "the wrong place to cut. A regular expression describes the whole shape of the name: a breed, an underscore, "
        "digits and '.jpg', so it takes everything up to the last underscore and refuses names that do not fit, "
        "which exposes stray files instead of silently mislabelling them."),
    ChoiceExercise(
        "With `path` a pathlib.Path of a folder, which expression gives the .jpg files directly inside it?",
        ["path.glob('*.jpg')", "path + '/*.jpg'", "path.name + '.jpg'", "path.suffix == '.jpg'"],
        answer="a",
        hints=["Paths join with `/`, not `+`; the method that matches a wildcard is named after the Unix shell's."],
        solution="`path.glob('*.jpg')` yields Paths (sort them for a stable order); `rglob` also looks in subfolders.",
        wrong_answers=["b", "d"],
        explanation=("glob matches a shell wildcard against the names in one folder and yields Paths; rglob "
                     "would also look inside subfolders.")),
    ChoiceExercise(
        "Which helper shows a grid of images from one batch, with their labels?",
        ["summary", "show_batch", "verify_images", "get_image_files"],
        answer="b",
        solution="`show_batch(dls)`: look at your data before training on it.",
        wrong_answers=["a", "c"],
        explanation=("show_batch draws one batch as the model receives it, with labels, which catches wrong "
                     "labels or odd crops before any training.")),
    ChoiceExercise(
        "Which helper walks one item through every step of the pipeline and says where it breaks?",
        ["show_batch", "random_split", "summary", "RegexLabeller"],
        answer="c",
        solution="`summary(dls)`: file, open, RGB, item transform, tensor, collate, batch transform.",
        wrong_answers=["a", "b"],
        explanation=("summary runs one item through each step (opening, converting, transforming, collating) "
                     "and reports the step where it fails.")),
    ChoiceExercise(
        "Should you wait to train a model until your data is thoroughly cleaned?",
        ["Yes: a model trained on dirty data is wasted time",
         "No: train a quick model early; its mistakes show which data needs cleaning",
         "Only when you have a GPU"],
        answer="b",
        hints=["What is the fastest way to find the mislabelled or unusable images among thousands?"],
        solution="A first model is a baseline and a data-cleaning tool: its most confident mistakes point at bad "
                 "labels.",
        wrong_answers=["a", "c"],
        explanation=("A quick model is a cleaning tool: the images it gets most confidently wrong are the "
                     "first to look at for bad labels and unusable pictures.")),
    Reflection(
        "Name two things that a first, quick model tells you that staring at the data does not.",
        "How hard the task is (a baseline error rate to beat), and which items it gets most confidently wrong "
        "(often mislabelled or odd images worth cleaning); it also proves the whole pipeline, from files to "
        "predictions, actually runs before you invest time in it."),
    ChoiceExercise(
        "The book keeps file lists in fastai's `L`, which accepts a list of indices as an index: `files[valid_idx]`. "
        "With a plain Python list, which expression gives the same items?",
        ["[files[i] for i in valid_idx]", "files[valid_idx]", "files(valid_idx)",
         "files[min(valid_idx):max(valid_idx)]"],
        answer="a",
        hints=["A plain list only takes an int or a slice as its index; what builds a new list item by item?"],
        solution="A list comprehension; `operator.itemgetter(*valid_idx)(files)` also works (it returns a tuple).",
        wrong_answers=["b", "d"],
        explanation=("A plain list takes only an int or a slice as an index, so a list comprehension builds "
                     "the new list one chosen item at a time.")),
    Reflection(
        "What does fastai's `L` add to a Python list, and what does plain Python (or PyTorch) offer instead?",
        "L prints its length before its first items, takes a list of indices or a boolean mask as an index, and "
        "has methods such as map, filter, unique, itemgot and attrgot. In plain Python a list comprehension does "
        "the indexing, mapping and filtering ([files[i] for i in idx], [f(x) for x in xs if cond(x)]), "
        "sorted(set(xs)) gives the unique values, collections.Counter counts them, and operator.itemgetter or "
        "attrgetter pick fields; for numbers, a tensor or NumPy array takes index lists and masks directly."),
])

progress = track_set(globals())
