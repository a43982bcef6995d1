"""End to end: the widget notebooks in a real JupyterLab, driven in Debian's Chromium by Playwright.

nbval compares text; a learner sees a rendered page. For every notebook that uses ``helpers.widgets`` this
test starts JupyterLab on copies of the notebooks, runs all cells from the Run menu, checks that no cell
shows an error, moves the first slider of every ``course-widget`` box and checks that what the box draws
changed. The fixture notebook ``tests/browser/widget_fixture.ipynb`` and broken copies of it prove that
each check can fail.

Optional: it needs Debian's ``chromium`` package and is skipped with a notice without it. Playwright
drives that system browser; it never downloads one. Screenshots of failures go to ``artifacts/browser/``.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO / "notebooks"
FIXTURE = Path(__file__).resolve().parent / "browser" / "widget_fixture.ipynb"
ARTIFACTS = REPO / "artifacts" / "browser"

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
SKIP_REASON = ("the browser test needs Chromium and none was found; to run it, install Debian's chromium "
               "package (apt-get install chromium, as .ci/run does), then `make browser`")

pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)]

RUN_ALL_TIMEOUT_S = 150     # one widget notebook runs in about a minute in the tiny profile
REDRAW_TIMEOUT_S = 30       # from a slider move to a new drawing (a kernel round trip plus rendering)
USES_WIDGETS = re.compile(r"helpers\.widgets|from\s+helpers\s+import\s[^\n]*\bwidgets\b")


def widget_notebooks() -> list[Path]:
    """The course notebooks whose code uses helpers.widgets: the ones a learner studies interactively."""
    found = []
    for path in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        if USES_WIDGETS.search(code):
            found.append(path)
    return found


# --- JupyterLab: a throwaway server on copies of the notebooks -----------------------------------------

@dataclass
class Lab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def notebook_url(self, name: str) -> str:
        # One workspace per notebook, so a page never restores tabs another test left open.
        workspace = re.sub(r"\W", "-", Path(name).stem)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{quote(name)}?token={self.token}"


def copy_without_outputs(source: Path, target: Path, replacements: dict[str, str] | None = None) -> None:
    """Copy a notebook with outputs and counts stripped, so everything the browser shows comes from this run."""
    nb = json.loads(source.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            text = "".join(cell["source"])
            for old, new in (replacements or {}).items():
                text = text.replace(old, new)
            cell["source"] = text
    nb["metadata"].pop("widgets", None)   # stored widget state would render stale views
    target.write_text(json.dumps(nb, indent=1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    """Settings that make the page testable: every cell in the DOM, and no news or update requests."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        (settings_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (settings_dir / name).write_text(json.dumps(values))


def start_jupyterlab(root: Path, home: Path, timeout_s: float = 90) -> Lab:
    """Start JupyterLab from the course environment on 127.0.0.1 and wait until its API answers."""
    token, port = secrets.token_hex(16), free_port()
    settings_dir = home / "user-settings"
    write_lab_settings(settings_dir)
    # Private Jupyter folders: no personal settings, workspaces or kernels leak in. The venv's own
    # python3 kernelspec stays visible because it lives under sys.prefix, which Jupyter always searches.
    env = {**os.environ, "COURSE_PROFILE": "tiny",
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={settings_dir}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:  # CI containers run as root; Jupyter refuses that unless told it is intended
        command.append("--allow-root")
    log = home / "jupyterlab.log"
    with open(log, "w") as log_file:
        # Its own process group, so stopping it can never touch pytest's.
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={token}", timeout=2) as response:
                if response.status == 200:
                    return lab
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    stop_jupyterlab(lab)
    raise RuntimeError(f"JupyterLab did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def descendants(pid: int) -> list[int]:
    """Every process below pid (Linux /proc); kernels start their own sessions, so killpg misses them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_jupyterlab(lab: Lab) -> None:
    """Shut the server and its kernels down politely, then kill whatever is left of them."""
    leftovers = descendants(lab.process.pid)
    try:
        request = urllib.request.Request(f"{lab.url}/api/shutdown?token={lab.token}", method="POST")
        urllib.request.urlopen(request, timeout=5).close()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        pass
    try:
        lab.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(lab.process.pid, signal.SIGKILL)
        lab.process.wait(timeout=5)
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- Driving the page ------------------------------------------------------------------------------------

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

# The state of every cell, read in one round trip: its kind, its prompt, and the text of any error shown.
READ_CELLS_JS = """panel => [...panel.querySelectorAll('.jp-Cell')].map(cell => ({
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputPrompt')?.textContent ?? '').trim(),
    errors: [...cell.querySelectorAll('.jp-OutputArea-output')]
        .filter(out => out.dataset.mimeType === 'application/vnd.jupyter.stderr'
                       || /Error displaying widget/.test(out.textContent))
        .map(out => out.textContent)
        .filter(text => /Traceback|Error\\b|Exception\\b|Error displaying widget/.test(text)),
}))"""

# Needs --LabApp.expose_app_in_browser: the public session API says when the kernel is really connected.
KERNEL_READY_JS = """() => {
    const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === 'connected' && kernel.status === 'idle';
}"""

DONE_JS = """panel => {
    const dialog = document.querySelector('.jp-Dialog');
    if (dialog) return 'a dialog opened: ' + dialog.textContent;
    const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
    const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
    // The copies start unexecuted, so a number on the first cell means Run All has started.
    return prompts.length > 0 && /^\\[\\d+\\]:$/.test(prompts[0]) && !prompts.some(p => p.includes('*'))
           && status === 'idle' && 'finished';
}"""

# What a widget box draws, leaving out its controls (a slider's own readout changes when it moves).
DRAWING_JS = """box => {
    const clone = box.cloneNode(true);
    clone.querySelectorAll('.widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-checkbox,'
                           + ' .widget-button, .widget-text, .widget-play, .widget-radio, .widget-select')
         .forEach(control => control.remove());
    const images = [...clone.querySelectorAll('img')].map(img => img.getAttribute('src'));
    const html = [...clone.querySelectorAll('.widget-html-content, svg')].map(e => e.innerHTML);
    return [...images, ...html, clone.textContent.trim()].join('\\n');
}"""


@contextmanager
def screenshot_on_failure(page, name: str, folder: Path = ARTIFACTS):
    """Keep a full-page screenshot of what the browser showed when a check failed."""
    try:
        yield
    except BaseException:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(folder / f"{Path(name).stem}.png"), full_page=True)
        except Exception as error:  # the screenshot is a bonus; never hide the real failure behind it
            print(f"could not save a screenshot of {name}: {error}")
        raise


def open_and_run_all(page, lab: Lab, name: str, timeout_s: float = 60) -> None:
    """Open a notebook, wait for its kernel, and choose Run > Run All Cells as a learner would."""
    page.goto(lab.notebook_url(name))
    # Clicking Run All before the kernel is connected opens a "Select Kernel" dialog instead of running.
    page.wait_for_function(KERNEL_READY_JS, timeout=timeout_s * 1000)
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item", has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))).click()


def wait_and_check_cells(page, notebook: Path, timeout_s: float = RUN_ALL_TIMEOUT_S) -> None:
    """Wait for Run All to finish, then fail on any error shown or any code cell left unexecuted."""
    name = notebook.name
    panel = page.locator(PANEL).first
    try:
        outcome = page.wait_for_function(DONE_JS, arg=panel.element_handle(), timeout=timeout_s * 1000).json_value()
    except Exception as error:
        raise AssertionError(f"{name}: Run All did not finish within {timeout_s:.0f} s") from error
    assert outcome == "finished", f"{name}: Run All did not run the cells; {outcome}"
    shown = panel.evaluate(READ_CELLS_JS)
    stored = json.loads(notebook.read_text())["cells"]
    assert len(shown) == len(stored), f"{name}: the page shows {len(shown)} cells, the file has {len(stored)}"
    for number, (cell, source) in enumerate(zip(shown, stored), 1):
        on_purpose = "raises-exception" in source.get("metadata", {}).get("tags", [])
        if cell["errors"] and not on_purpose:
            raise AssertionError(f"{name}, cell {number} shows an error:\n{cell['errors'][0][-1500:]}")
    for number, (cell, source) in enumerate(zip(shown, stored), 1):
        if cell["code"] and "".join(source["source"]).strip() and not re.fullmatch(r"\[\d+\]:", cell["prompt"]):
            raise AssertionError(
                f"{name}, cell {number} did not run (prompt {cell['prompt']!r}). If an earlier cell raises on "
                "purpose, give it the cell tag `raises-exception` as well as the NBVAL_RAISES_EXCEPTION "
                "comment: JupyterLab's Run All stops at the first error of an untagged cell.")


def wait_for_steady_drawing(box, settle_s: float = 0.5, patience_s: float = 10) -> str:
    """The box's drawing once it stops changing: figures arrive a moment after the cell finishes."""
    last, deadline = box.evaluate(DRAWING_JS), time.monotonic() + patience_s
    while time.monotonic() < deadline:
        time.sleep(settle_s)
        now = box.evaluate(DRAWING_JS)
        if now == last and now:
            break
        last = now
    return last


def move_slider(page, box) -> None:
    """Press the arrow keys on the box's first slider handle, as a keyboard user would."""
    handle = box.locator(".noUi-handle").first
    readout = box.locator(".widget-readout").first
    before = readout.text_content()
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    if readout.text_content() == before:  # already at its maximum: go the other way
        for _ in range(6):
            page.keyboard.press("ArrowLeft")
    assert readout.text_content() != before, "the slider did not move when its handle got arrow keys"


def check_widgets_redraw(page, name: str, timeout_s: float = REDRAW_TIMEOUT_S) -> int:
    """Move the first slider of every course-widget box; each must draw something new and show no error."""
    boxes = page.locator(f"{PANEL} .course-widget")
    count = boxes.count()
    assert count, f"{name}: no widget box with the class `course-widget` is shown after Run All"
    for index in range(count):
        box = boxes.nth(index)
        box.scroll_into_view_if_needed()
        assert box.locator(".noUi-handle").count(), f"{name}: course-widget #{index + 1} has no slider to move"
        before = wait_for_steady_drawing(box)
        move_slider(page, box)
        deadline, after = time.monotonic() + timeout_s, before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.25)
            after = box.evaluate(DRAWING_JS)
        assert after != before, (f"{name}: moving the slider of course-widget #{index + 1} did not change "
                                 f"what it draws within {timeout_s:.0f} s (is its callback connected?)")
        after = wait_for_steady_drawing(box)
        assert not re.search(r"Traceback|Error\b", box.evaluate("box => box.textContent")), (
            f"{name}: after the slider moved, course-widget #{index + 1} shows an error:\n"
            f"{box.evaluate('box => box.textContent')[-1500:]}")
    return count


def check_notebook(page, lab: Lab, notebook: Path, redraw_timeout_s: float = REDRAW_TIMEOUT_S,
                   screenshots: Path = ARTIFACTS) -> int:
    """The whole end-to-end check of one notebook copy in lab.root; returns how many widgets it moved."""
    with screenshot_on_failure(page, notebook.name, screenshots):
        open_and_run_all(page, lab, notebook.name)
        wait_and_check_cells(page, notebook)
        return check_widgets_redraw(page, notebook.name, redraw_timeout_s)


# --- Fixtures: one server and one browser for the whole module ----------------------------------------

FIXTURE_VARIANTS = {
    "widget_fixture.ipynb": {},
    "broken_silent_callback.ipynb": {'CALLBACK_MODE = "redraw"': 'CALLBACK_MODE = "silent"'},
    "broken_raising_callback.ipynb": {'CALLBACK_MODE = "redraw"': 'CALLBACK_MODE = "raise"'},
    "broken_cell.ipynb": {"FAIL_IN_CELL = False": "FAIL_IN_CELL = True"},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root, home = tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home")
    for notebook in widget_notebooks():
        copy_without_outputs(notebook, root / notebook.name)
    for name, replacements in FIXTURE_VARIANTS.items():
        copy_without_outputs(FIXTURE, root / name, replacements)
    server = start_jupyterlab(root, home)
    try:
        yield server
    finally:
        stop_jupyterlab(server)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The system Chromium, never a downloaded one; --no-sandbox because CI runs as root.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


# --- The tests --------------------------------------------------------------------------------------------

def test_fixture_notebook_passes(page, lab):
    """The harness itself: a working widget passes, and a cell tagged raises-exception is allowed."""
    assert check_notebook(page, lab, lab.root / "widget_fixture.ipynb") == 1


@pytest.mark.parametrize("notebook", widget_notebooks() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no notebook in notebooks/ uses helpers.widgets yet"))], ids=lambda p: getattr(p, "name", "none"))
def test_widget_notebook_in_jupyterlab(page, lab, notebook):
    check_notebook(page, lab, lab.root / notebook.name)


# The checks must be able to fail: each broken copy of the fixture has to be caught, with a screenshot.

def test_a_callback_that_never_redraws_is_caught(page, lab, tmp_path):
    with pytest.raises(AssertionError, match="did not change what it draws"):
        check_notebook(page, lab, lab.root / "broken_silent_callback.ipynb", redraw_timeout_s=5, screenshots=tmp_path)
    assert (tmp_path / "broken_silent_callback.png").stat().st_size > 0


def test_a_callback_that_raises_is_caught(page, lab, tmp_path):
    with pytest.raises(AssertionError, match="shows an error(.|\n)*the redraw callback is broken"):
        check_notebook(page, lab, lab.root / "broken_raising_callback.ipynb", screenshots=tmp_path)
    assert (tmp_path / "broken_raising_callback.png").stat().st_size > 0


def test_a_failing_cell_is_caught(page, lab, tmp_path):
    with pytest.raises(AssertionError, match="cell 7 shows an error:(.|\n)*ZeroDivisionError"):
        check_notebook(page, lab, lab.root / "broken_cell.ipynb", screenshots=tmp_path)
    assert (tmp_path / "broken_cell.png").stat().st_size > 0
