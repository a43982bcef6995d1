"""The progress record: every check, hint and solution is remembered in the data cache, across processes, and a
record that cannot be written never breaks a check."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import progress_record
from helpers.exercises import ____

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """Each test writes its own record: never the learner's, never another test's."""
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(progress_record, "_warned", False)
    return tmp_path / "cache"


def entry(notebook: str, exercise: str) -> dict:
    return progress_record.load()[notebook][exercise]


def test_check_hint_and_solution_are_recorded(private_cache, capsys):
    from helpers.exercise_sets import nb05 as ex

    ex.q1.check([2e-3, 2e-3, 2e-3])
    first = entry("05", "q1")
    assert first["checks"] == 1 and not first["solved"] and first["last_verdict"] == "incorrect"
    assert first["last_check"].endswith("+00:00")
    ex.q1.hint(2)
    ex.q1.hint(1)
    ex.q1.solution()
    ex.q1.check([2e-4, 2e-4, 2e-3])
    ex.q1.check("two")  # the wrong type is an attempt too, and does not undo the solve
    last = entry("05", "q1")
    assert last == {**last, "checks": 3, "solved": True, "hints": 2, "solutions": 1, "last_verdict": "error"}
    ex.questionnaire[4].check([1e-6, 1e-5, 1e-4, 1e-3])
    assert entry("05", "questionnaire[4]")["solved"]
    # The file is whole JSON, and no temporary file is left beside it.
    assert json.loads((private_cache / progress_record.RECORD_NAME).read_text())["version"] == 1
    assert [p.name for p in private_cache.iterdir()] == [progress_record.RECORD_NAME]


def test_a_blank_and_a_written_answer_are_not_recorded(private_cache, capsys):
    from helpers.exercise_sets import nb05 as ex

    ex.q1.check(____)
    ex.q1.check()
    ex.questionnaire[1].check("It freezes, then unfreezes.")
    assert capsys.readouterr().out.startswith("Not attempted yet")
    assert not (private_cache / progress_record.RECORD_NAME).exists()


def test_progress_marks_each_exercise(capsys):
    from helpers.exercise_sets import nb07 as ex

    ex.q1.check(ex.q1.expected)          # solved
    ex.q2.check("not a number")          # tried
    ex.q2.hint(1)
    capsys.readouterr()
    ex.progress()
    out = capsys.readouterr().out
    assert re.match(r"Notebook 07: 1 of \d+ exercises solved\.", out), out[:200]
    marks = {key: mark for mark, key in re.findall(r"^\s*\[(.)\] (\S+)", out, re.M)}
    assert marks["q1"] == "x" and marks["q2"] == "~" and marks["q3"] == " "
    assert re.search(r"\[~\] q2 .*\(1 hint\)$", out, re.M)
    lines = marks
    assert "questionnaire[2]" in lines and "questionnaire[1]" not in lines  # written answers are not counted


@pytest.fixture
def run_python(child_env):
    """Call it to run Python code or a module (code "" and the arguments) in a child process on a data cache."""

    def run(code: str, cache: Path, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, *(["-c", code] if code else []), *args]
        return subprocess.run(command, env=child_env(COURSE_DATA=str(cache)), cwd=ROOT, capture_output=True,
                              text=True, timeout=300, check=True)

    return run


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_the_record_is_shared_by_two_processes_and_reset_clears_it(private_cache, capsys, run_python):
    run_python("from helpers.exercise_sets import nb00 as ex; ex.q6.check(39760); ex.q7.check(0.75)", private_cache)
    run_python("from helpers.exercise_sets import nb03 as ex; ex.q5.hint(); ex.q5.check(0.693)", private_cache)
    report = run_python("", private_cache, "-m", "helpers", "progress").stdout
    lines = {line.split(":")[0].strip(): line for line in report.splitlines()[1:]}
    assert re.search(r"\b1 of +\d+ solved, 0 hints used", lines["notebook 00"]), lines["notebook 00"]
    assert re.search(r"\b1 of +\d+ solved, 1 hints used", lines["notebook 03"]), lines["notebook 03"]
    assert re.search(r"\b0 of +\d+ solved", lines["notebook 05"]) and len(lines) == 10
    assert "nothing recorded yet" not in report
    cleared = run_python("", private_cache, "-m", "helpers", "progress", "--reset").stdout
    assert "cleared" in cleared and not (private_cache / progress_record.RECORD_NAME).exists()
    from helpers import progress_report

    assert progress_report.main([]) == 0  # in this process: a third one would only repeat the imports
    after = capsys.readouterr().out
    assert "nothing recorded yet" in after and re.search(r"notebook 00: +0 of +\d+ solved", after)


def test_an_unwritable_cache_warns_once_and_checks_still_work(tmp_path, monkeypatch, capsys):
    from helpers.exercise_sets import nb00 as ex

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("COURSE_DATA", str(blocker / "cache"))  # even root cannot make a folder inside a file
    with pytest.warns(RuntimeWarning, match="cannot be saved") as warned:
        ex.q6.check(39760)
        ex.q6.hint()
        ex.q6.check(12)
    assert len(warned) == 1 and "COURSE_DATA" in str(warned[0].message)
    out = capsys.readouterr().out
    assert "Correct!" in out and "Not quite:" in out and "Hint 1 of 2" in out


def test_a_damaged_record_warns_and_is_started_again(private_cache, capsys):
    from helpers.exercise_sets import nb00 as ex

    private_cache.mkdir(parents=True)
    (private_cache / progress_record.RECORD_NAME).write_text("{ half written")
    with pytest.warns(RuntimeWarning, match="damaged"):
        ex.q6.check(39760)
    assert "Correct!" in capsys.readouterr().out
    assert entry("00", "q6")["solved"]
    assert (private_cache / "exercise_progress.damaged.json").read_text() == "{ half written"

