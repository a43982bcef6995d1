"""End to end: the widget notebooks in a real JupyterLab, driven in Debian's Chromium by Playwright.

nbval compares text; a learner sees a rendered page. For every notebook that uses ``helpers.widgets`` this
test starts JupyterLab on copies of the notebooks, runs all cells from the Run menu (training capped at one
batch per pass: nbval checks the results), checks that no cell shows an error, moves the first slider of every
``course-widget`` box and checks that what the box draws changed. The fixture notebook
``tests/browser/widget_fixture.ipynb`` and broken copies of it prove that
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
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO / "notebooks"
FIXTURE = Path(__file__).resolve().parent / "browser" / "widget_fixture.ipynb"
ARTIFACTS = REPO / "artifacts" / "browser"

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
SKIP_REASON = ("the browser test needs Chromium and none was found; to run it, install Debian's chromium "
               "package (apt-get install chromium, as .ci/run does), then `make browser`")

# Each test may wait for the Run All that its notebook started with the others (see RUN_ALL_TIMEOUT_S).
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON), pytest.mark.timeout(1800)]

RUN_ALL_TIMEOUT_S = 900     # from choosing Run All, every widget notebook at once: only a hung one takes this long
REDRAW_TIMEOUT_S = 30       # from a slider move to a new drawing (a kernel round trip plus rendering)
# How often a page-side wait re-checks its condition. Playwright's default runs it at every animation frame,
# 60 times a second: scanning every cell of a notebook that often kept Chromium busy for a minute of CPU while the
# kernels it waited for had two cores to share with the rest of the suite.
POLL_MS = 250
LOG_GRACE_S = 2             # how long a callback's traceback may take to reach the log console
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

    def lab_url(self) -> str:
        return f"{self.url}/lab?token={self.token}"


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


def start_jupyterlab(root: Path, home: Path, port: int, timeout_s: float = 90) -> Lab:
    """Start JupyterLab from the course environment on 127.0.0.1 and wait until its API answers."""
    token = secrets.token_hex(16)
    settings_dir = home / "user-settings"
    write_lab_settings(settings_dir)
    # Private Jupyter folders: no personal settings, workspaces or kernels leak in. The venv's own
    # python3 kernelspec stays visible because it lives under sys.prefix, which Jupyter always searches.
    # Training capped at one batch per pass (COURSE_MAX_BATCHES): this test is about what a learner sees and
    # clicks, and nbval already checks what the notebooks' training achieves; capped, the notebooks skip
    # those assertions (Profile.checks_results) and Run All takes seconds instead of minutes.
    env = {**os.environ, "COURSE_PROFILE": "tiny", "COURSE_MAX_BATCHES": "1",
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
# One JupyterLab page holds every notebook in its own tab, all running at once: loading JupyterLab is the
# slow part on a small machine, and the kernels compute while the test checks the tabs that are done.

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
# Returns the id of the notebook's panel once it is the current tab and its kernel is ready.
KERNEL_READY_JS = """name => {
    const panel = window.jupyterapp?.shell.currentWidget;
    const kernel = panel?.sessionContext?.session?.kernel;
    return panel?.context?.path === name && kernel?.connectionStatus === 'connected'
           && kernel.status === 'idle' && panel.id;
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


@dataclass
class Tab:
    name: str
    panel: str = ""                    # a CSS selector for the notebook's panel once it is open
    started: float = 0.0               # time.monotonic() when Run All was chosen
    error: Exception | None = None     # why it could not be opened and run, if it could not


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


def open_and_run_all(page, name: str, timeout_s: float = 90) -> Tab:
    """Double-click the notebook in the file browser, wait for its kernel, then choose Run > Run All Cells."""
    label = page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))
    page.locator(".jp-DirListing-item", has=label).dblclick()
    # Clicking Run All before the kernel is connected opens a "Select Kernel" dialog instead of running.
    panel_id = page.wait_for_function(KERNEL_READY_JS, arg=name, polling=POLL_MS, timeout=timeout_s * 1000).json_value()
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    run_all = page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))
    page.locator(".lm-Menu-item", has=run_all).click()
    return Tab(name, panel=f'[id="{panel_id}"]', started=time.monotonic())


def open_log_console(page) -> None:
    """View > Show Log Console: where JupyterLab shows what a widget callback raised outside an Output widget."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^View$")).click()
    show_log = page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Show Log Console$"))
    page.locator(".lm-Menu-item", has=show_log).click()
    page.locator(".jp-LogConsolePanel").first.wait_for(state="visible")


def show_tab(page, tab: Tab) -> None:
    """Bring a notebook's tab to the front: a hidden tab's widgets cannot take keyboard input."""
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has=page.locator(
        ".lm-TabBar-tabLabel", has_text=re.compile(f"^{re.escape(tab.name)}$"))).click()
    page.locator(tab.panel).wait_for(state="visible")


def wait_and_check_cells(page, tab: Tab, notebook: Path, timeout_s: float = RUN_ALL_TIMEOUT_S) -> None:
    """Wait for Run All to finish, then fail on any error shown or any code cell left unexecuted."""
    name = notebook.name
    panel = page.locator(tab.panel)
    # All tabs run at once, so the time limit counts from when this one started, not from this check.
    left_s = max(1.0, tab.started + timeout_s - time.monotonic())
    try:
        outcome = page.wait_for_function(DONE_JS, arg=panel.element_handle(), polling=POLL_MS,
                                         timeout=left_s * 1000).json_value()
    except Exception as error:
        waiting = [n for n, cell in enumerate(panel.evaluate(READ_CELLS_JS), 1) if "*" in cell["prompt"]]
        raise AssertionError(f"{name}: Run All did not finish within {timeout_s:.0f} s of starting; "
                             f"cells still running or queued: {waiting}") from error
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


def log_console_tracebacks(page) -> int:
    """How many tracebacks the log console shows for the current notebook."""
    return page.locator(".jp-LogConsolePanel").first.inner_text().count("Traceback")


def check_widgets_redraw(page, tab: Tab, timeout_s: float = REDRAW_TIMEOUT_S) -> int:
    """Move the first slider of every course-widget box; each must draw something new and raise nothing."""
    name = tab.name
    boxes = page.locator(f"{tab.panel} .course-widget")
    count = boxes.count()
    assert count, f"{name}: no widget box with the class `course-widget` is shown after Run All"
    for index in range(count):
        box = boxes.nth(index)
        box.scroll_into_view_if_needed()
        assert box.locator(".noUi-handle").count(), f"{name}: course-widget #{index + 1} has no slider to move"
        before = wait_for_steady_drawing(box)
        logged_before = log_console_tracebacks(page)
        move_slider(page, box)
        deadline, after = time.monotonic() + timeout_s, before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.25)
            after = box.evaluate(DRAWING_JS)
        assert after != before, (f"{name}: moving the slider of course-widget #{index + 1} did not change "
                                 f"what it draws within {timeout_s:.0f} s (is its callback connected?)")
        after = wait_for_steady_drawing(box)
        text = box.evaluate("box => box.textContent")
        # A callback that raises inside its Output widget leaves a traceback there.
        assert not re.search(r"Traceback \(most recent call last\)|\b\w+(Error|Exception): ", text), (
            f"{name}: after the slider moved, course-widget #{index + 1} shows an error:\n{text[-1500:]}")
        # A callback that raises outside an Output widget changes nothing in the notebook: JupyterLab
        # sends its traceback to the log console instead, a moment after the drawing arrived.
        deadline = time.monotonic() + LOG_GRACE_S
        while log_console_tracebacks(page) == logged_before and time.monotonic() < deadline:
            time.sleep(0.25)
        assert log_console_tracebacks(page) == logged_before, (
            f"{name}: moving the slider of course-widget #{index + 1} made its callback raise; the log console "
            f"shows:\n{page.locator('.jp-LogConsolePanel').first.inner_text()[-2000:]}")
    return count


def check_tab(page, lab: Lab, tab: Tab, redraw_timeout_s: float = REDRAW_TIMEOUT_S,
              screenshots: Path = ARTIFACTS) -> int:
    """After Run All was chosen in a tab: check its cells, then every widget; returns how many it moved."""
    with screenshot_on_failure(page, tab.name, screenshots):
        if tab.error is not None:
            raise AssertionError(f"{tab.name}: could not open it and choose Run All: {tab.error}") from tab.error
        show_tab(page, tab)
        wait_and_check_cells(page, tab, lab.root / tab.name)
        return check_widgets_redraw(page, tab, redraw_timeout_s)


# --- Fixtures: one server, one browser page, every notebook running at once ------------------------------

FIXTURE_VARIANTS = {
    "widget_fixture.ipynb": {},
    "broken_silent_callback.ipynb": {'CALLBACK_MODE = "redraw"': 'CALLBACK_MODE = "silent"'},
    "broken_raising_callback.ipynb": {'CALLBACK_MODE = "redraw"': 'CALLBACK_MODE = "raise"'},
    "broken_late_callback.ipynb": {'CALLBACK_MODE = "redraw"': 'CALLBACK_MODE = "raise after drawing"'},
    "broken_cell.ipynb": {"FAIL_IN_CELL = False": "FAIL_IN_CELL = True"},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory, free_port):
    root, home = tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home")
    for notebook in widget_notebooks():
        copy_without_outputs(notebook, root / notebook.name)
    for name, replacements in FIXTURE_VARIANTS.items():
        copy_without_outputs(FIXTURE, root / name, replacements)
    server = start_jupyterlab(root, home, free_port())
    try:
        yield server
    finally:
        stop_jupyterlab(server)


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The system Chromium, never a downloaded one; --no-sandbox because CI runs as root.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(lab.lab_url())
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def tabs(page) -> dict[str, Tab]:
    """Every notebook opened and set running; widget notebooks first, as they take longest.

    A notebook that fails to start records its error, and only that notebook's test fails.
    """
    tabs = {}
    for name in [p.name for p in widget_notebooks()] + list(FIXTURE_VARIANTS):
        try:
            tabs[name] = open_and_run_all(page, name)
        except Exception as error:
            tabs[name] = Tab(name, error=error)
    open_log_console(page)  # it follows whichever notebook tab is in front
    return tabs


# --- The tests --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("notebook", widget_notebooks() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no notebook in notebooks/ uses helpers.widgets yet"))], ids=lambda p: getattr(p, "name", "none"))
def test_widget_notebook_in_jupyterlab(page, tabs, lab, notebook):
    assert check_tab(page, lab, tabs[notebook.name]) >= 1


def test_fixture_notebook_passes(page, tabs, lab):
    """The harness itself: a working widget passes, and a cell tagged raises-exception is allowed."""
    assert check_tab(page, lab, tabs["widget_fixture.ipynb"]) == 1


# The checks must be able to fail: each broken copy of the fixture has to be caught, with a screenshot.

@pytest.mark.parametrize("name, failure", [
    pytest.param("broken_silent_callback.ipynb", "did not change what it draws", id="callback-never-redraws"),
    pytest.param("broken_raising_callback.ipynb", "shows an error(.|\\n)*the redraw callback is broken",
                 id="callback-raises"),
    pytest.param("broken_late_callback.ipynb", "made its callback raise(.|\\n)*broke after drawing",
                 id="callback-raises-after-drawing"),
    pytest.param("broken_cell.ipynb", "cell 7 shows an error:(.|\\n)*ZeroDivisionError", id="cell-raises"),
])
def test_a_broken_notebook_is_caught(page, tabs, lab, tmp_path, name, failure):
    with pytest.raises(AssertionError, match=failure):
        check_tab(page, lab, tabs[name], redraw_timeout_s=5, screenshots=tmp_path)
    assert (tmp_path / name.replace(".ipynb", ".png")).stat().st_size > 0
