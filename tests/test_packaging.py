"""The package stands alone: pyproject.toml declares every import, and a notebook opened on its own installs the course.

The slow test plays a hosted runtime (Colab, Kaggle) offline: a fresh virtual environment that sees this
machine's torch, torchvision, numpy and Jupyter (as a host has them) but not the course, a stand-in
``google.colab``, and one notebook copied alone into an empty folder. Its set-up cell installs the course from
a clone of this repository (``COURSE_REPO=git+file://...``, the committed HEAD), without the package index, and
the notebook runs to the end; then the same environment with Kaggle's variable keeps the cache in a stand-in
/kaggle/working. ``COURSE_INSTALLED_NOTEBOOKS=all`` (or e.g. ``06,09``) runs those notebooks that way; 03 by default.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level_imports(source: str) -> set[str]:
    """Modules a piece of code imports: import statements, and find_spec / import_module of a literal name."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("find_spec", "import_module") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
            found.add(node.args[0].value.split(".")[0])
    return found


def cell_code(cell: dict) -> str:
    # IPython's own syntax is not Python: magics (%), shell commands (!) and help (`name?`).
    lines = "".join(cell["source"]).splitlines()
    return "\n".join(ln for ln in lines if not ln.lstrip().startswith(("%", "!")) and not ln.rstrip().endswith("?"))


HOST_ONLY = {"google"}  # google.colab: Colab's own module, imported by helpers.hosted only on Colab


def third_party_imports() -> dict[str, set[str]]:
    """Each non-standard top-level module imported by helpers/ or a notebook, with where."""
    where: dict[str, set[str]] = {}
    sources = [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "helpers").rglob("*.py"))]
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        sources += [(nb.name, cell_code(c)) for c in cells if c["cell_type"] == "code"]
    for name, source in sources:
        for module in top_level_imports(source) - set(sys.stdlib_module_names) - {"helpers", "__future__"} - HOST_ONLY:
            where.setdefault(module, set()).add(name)
    return where


def test_pyproject_declares_every_import_of_helpers_and_the_notebooks():
    declared = {normalise(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0]) for dep in PYPROJECT["project"]["dependencies"]}
    providers = md.packages_distributions()
    missing = {}
    for module, users in sorted(third_party_imports().items()):
        dists = {normalise(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {sorted(users)}) is not installed here, so no distribution provides it"
        if not dists & declared:
            missing[module] = (sorted(dists), sorted(users)[:3])
    assert not missing, f"add these to pyproject.toml's dependencies (module: (distribution, imported by)): {missing}"
    # What notebook 09 finds without importing it must be seen too: the check reads find_spec("plotnine").
    assert {"plotnine", "sklearn", "mlxtend", "skimage"} <= set(third_party_imports())


def test_the_recorded_benchmark_ships_with_the_package():
    from helpers.course_files import recorded_benchmark

    shipped = ROOT / "helpers" / "assets" / "models_cpu.csv"
    assert shipped.read_bytes() == (ROOT / "bench" / "results" / "models_cpu.csv").read_bytes(), (
        "bench/results/models_cpu.csv changed: copy it to helpers/assets/models_cpu.csv, which the package ships")
    assert set(recorded_benchmark().arch) == {"resnet18", "resnet34", "resnet50", "resnet101"}


# --- a hosted runtime, simulated offline ----------------------------------------------------------------

COLAB_STANDIN = '''from pathlib import Path
def mount(point):
    raise AssertionError("the set-up cell mounted Google Drive without being asked")
'''
EXCLUDED = re.compile(r"^(__editable__|_?pets_course_helpers|helpers$|.*\.pth$)")


def hosted_venv(where: Path) -> Path:
    """A venv whose own site-packages is empty and that sees this one's packages, minus the course and .pth files."""
    stack = where / "stack"  # symlinks, so nothing is copied: torch and the rest as a host has them installed
    stack.mkdir(parents=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not EXCLUDED.match(entry.name):
            (stack / entry.name).symlink_to(entry)
    venv = where / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "host-stack.pth").write_text(f"{stack}\n")
    colab = purelib / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text("")
    (colab / "drive.py").write_text(COLAB_STANDIN)
    return python


RUNNER = '''import os, sys, nbformat
from nbclient import NotebookClient
path, out = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
if sys.argv[3:] == ["setup-only"]:  # only the set-up cell and the probe
    nb.cells = [c for c in nb.cells if "course-setup" in c.metadata.get("tags", [])] + nb.cells[-1:]
try:
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}}).execute()
finally:
    nbformat.write(nb, out)
'''
PROBE = ("import sys, helpers, helpers.cache\n"
         "print('PROBE', helpers.__file__, sys.executable, helpers.cache.cache_dir(), sep='|')")


def outputs(path: Path) -> str:
    text = []
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            text.append("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")))
            if out["output_type"] == "error":
                text.append(f"ERROR {out['ename']}: {out['evalue']}")
    return "\n".join(text)


def chosen_notebooks() -> list[Path]:
    """03 (the quickest, 8 s), or $COURSE_INSTALLED_NOTEBOOKS: "all", or numbers such as "06,09"."""
    chosen = os.environ.get("COURSE_INSTALLED_NOTEBOOKS", "03").strip()
    return [p for p in NOTEBOOKS if chosen == "all" or p.name[:2] in chosen.split(",")]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to clone this repository")
@pytest.mark.parametrize("notebook", chosen_notebooks(), ids=lambda p: p.name)
def test_a_notebook_alone_installs_the_course_and_runs_in_a_fresh_environment(notebook, tmp_path, load_script):
    setup_cell = load_script("tools/setup_cell.py")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    python = hosted_venv(tmp_path)
    work = tmp_path / "empty"
    work.mkdir()
    import nbformat
    nb = nbformat.read(notebook, as_version=4)
    setup_cell.apply(nb, setup_cell.cell_source(), setup_cell.follows_line(notebook))  # no-op once inserted
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    nbformat.write(nb, work / notebook.name)
    (tmp_path / "run.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COURSE_", "PIP_", "VIRTUAL_ENV",
                                                                   "KAGGLE_"))}
    env.update(COURSE_REPO=f"git+file://{clone}", PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0",
               PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", COURSE_DATA=str(tmp_path / "cache"),
               COURSE_PROFILE="tiny", COURSE_DEVICE="cpu", OMP_NUM_THREADS="1")
    done = subprocess.run([str(python), str(tmp_path / "run.py"), str(work / notebook.name),
                           str(tmp_path / "out.ipynb")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    printed = outputs(tmp_path / "out.ipynb") if (tmp_path / "out.ipynb").exists() else ""
    assert done.returncode == 0, (f"{notebook.name} failed in the fresh environment:\n{done.stderr[-3000:]}\n"
                                  f"{printed[-3000:]}")
    probe = next(ln for ln in printed.splitlines() if ln.startswith("PROBE|")).split("|")
    venv = tmp_path / "venv"
    assert Path(probe[1]).is_relative_to(venv) and "site-packages" in probe[1], f"helpers came from {probe[1]}"
    assert Path(probe[2]).parent.parent == venv, probe
    assert not list(venv.glob("lib/*/site-packages/torch")), "the install replaced the host's torch"
    assert "Colab:" in printed and "helpers 0.1.0 | device cpu | profile tiny" in printed

    # The same environment on "Kaggle": the set-up cell finds helpers installed and keeps the cache in working/.
    kaggle = tmp_path / "kaggle"
    env.update(KAGGLE_KERNEL_RUN_TYPE="Interactive", COURSE_KAGGLE_ROOT=str(kaggle))
    del env["COURSE_DATA"]
    done = subprocess.run([str(python), str(tmp_path / "run.py"), str(work / notebook.name), str(tmp_path / "k.ipynb"),
                           "setup-only"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    printed = outputs(tmp_path / "k.ipynb")
    assert done.returncode == 0, f"{done.stderr[-2000:]}\n{printed[-2000:]}"
    assert f"data cache {kaggle / 'working' / 'pets-course'}" in printed and "Kaggle:" in printed
    assert printed.rstrip().endswith(str(kaggle / "working" / "pets-course"))
