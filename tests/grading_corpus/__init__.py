"""A corpus of hostile and broken submissions, with the outcome a fair grader gives each.

Every case is a submission of one tiny assignment, ``mini`` (two functions,
two graded test cells worth 1 and 2 points, NumPy only: no TensorFlow, so a
notebook grades in about two seconds). The instructor notebook is written by
:func:`write_assignment_source`; :func:`make_course` releases it with stock
``nbgrader generate_assignment`` in a temporary course directory, which also
records the hidden tests in the gradebook; :func:`build_corpus` writes every
case under ``submitted/<case>/mini/``, starting from the *released* exercise,
as a student would.

``CASES`` is the list of cases; each says what it does and what the grade must
be (:class:`Expected`): the status, the total score, whether it is flagged for
the instructor's review and what the student's feedback must say. The
end-to-end tests (``tests/test_grading_e2e.py``) grade the whole corpus in one
batch and check every line of it. The principle behind each expectation: a
student's score depends only on what their own code computes when the
unmodified tests run; breaking the grader (or trying to) costs at most the
cells that could not run, never the batch or another student's grade.

The LMS export builders (:func:`canvas_export`, :func:`moodle_export`) write
the same notebooks under the file names Canvas and Moodle give them, for the
collection tests.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from regcourse.grading.model import Status

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "mini"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
MAX_SCORE = 3.0

#: Markers written into the hidden tests: none may ever reach a student's feedback.
HIDDEN_MARKERS = ("hidden-probe-l2", "hidden-probe-l1")

_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def _meta(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


# The tests call the helpers through their modules (np.testing.assert_allclose,
# checking.relative_error) on purpose: that is what a monkeypatching student
# rebinds, and what the grader must defend.
SETUP = "import numpy as np\nimport regcourse.checking as checking"

L2_NORM_SOLUTION = '''def l2_norm(w):
    """Euclidean norm of all the weights."""
    ### BEGIN SOLUTION
    return float(np.sqrt(np.sum(np.square(w))))
    ### END SOLUTION'''

# The hidden tests are judged (regcourse.grading.checks.mini): under `regcourse grade` the
# kernel only records what the functions return; the comparison runs in the grader.
L2_NORM_TEST = '''np.testing.assert_allclose(l2_norm([3.0, 4.0]), 5.0, rtol=1e-12)
### BEGIN HIDDEN TESTS
# hidden-probe-l2
from regcourse.grading.judge import hidden_check
hidden_check("mini", "test_l2_norm", globals())
### END HIDDEN TESTS'''

L1_PENALTY_SOLUTION = '''def l1_penalty(w, lam):
    """lam times the sum of absolute values of the weights."""
    ### BEGIN SOLUTION
    return float(lam * np.sum(np.abs(w)))
    ### END SOLUTION'''

L1_PENALTY_TEST = '''assert checking.relative_error(l1_penalty([1.0, -2.0], 0.5), 1.5) < checking.FLOAT32_RTOL
### BEGIN HIDDEN TESTS
# hidden-probe-l1
from regcourse.grading.judge import hidden_check
hidden_check("mini", "test_l1_penalty", globals())
### END HIDDEN TESTS'''


def instructor_notebook() -> nbformat.NotebookNode:
    """The instructor version of ``mini``: solutions and hidden tests, no outputs."""
    new_code, new_md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": _KERNELSPEC, "language_info": {"name": "python"}})
    nb.cells = [
        new_md("# Mini assignment: two weight penalties\n\nA tiny assignment the grading tests use."),
        new_code(SETUP, metadata=_meta("setup", locked=True)),
        new_code(L2_NORM_SOLUTION, metadata=_meta("l2_norm", solution=True)),
        new_code(L2_NORM_TEST, metadata=_meta("test_l2_norm", grade=True, locked=True, points=1)),
        new_code(L1_PENALTY_SOLUTION, metadata=_meta("l1_penalty", solution=True)),
        new_code(L1_PENALTY_TEST, metadata=_meta("test_l1_penalty", grade=True, locked=True, points=2)),
    ]
    return nb


def write_assignment_source(course: Path) -> None:
    """Write solutions/mini/mini.ipynb and the course's own nbgrader_config.py."""
    source = course / "solutions" / ASSIGNMENT
    source.mkdir(parents=True, exist_ok=True)
    nbformat.write(instructor_notebook(), source / NOTEBOOK)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")


def make_course(course: Path) -> Path:
    """A released ``mini`` in ``course`` (created), by stock ``nbgrader generate_assignment``."""
    from grading_harness import nbgrader

    course.mkdir(parents=True, exist_ok=True)
    write_assignment_source(course)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    return course


def released(course: Path) -> nbformat.NotebookNode:
    return nbformat.read(course / "exercises" / ASSIGNMENT / NOTEBOOK, 4)


def cells_by_id(nb) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def student_notebook(course: Path, **solutions: str) -> nbformat.NotebookNode:
    """The released exercise with solution cells filled in (grade id -> source).

    ``l2_norm`` and ``l1_penalty`` default to a correct answer, so a case
    only states what it changes.
    """
    nb = released(course)
    cells = cells_by_id(nb)
    answers = {"l2_norm": CORRECT_L2, "l1_penalty": CORRECT_L1} | solutions
    for grade_id, source in answers.items():
        cells[grade_id].source = source.strip("\n")
    return nb


# Student answers: correct ones written differently from the solution, as a
# student would, and the mistakes the cases need.
CORRECT_L2 = "def l2_norm(w):\n    w = np.asarray(w, dtype=float)\n    return float(np.linalg.norm(w.ravel()))"
CORRECT_L1 = "def l1_penalty(w, lam):\n    return lam * float(np.abs(np.asarray(w)).sum())"
WRONG_L2 = "def l2_norm(w):\n    return float(np.sum(np.square(w)))  # forgot the square root"
WRONG_L1 = "def l1_penalty(w, lam):\n    return lam * float(np.sum(w))  # forgot the absolute value"
#: Passes the visible test (two weights), fails the hidden one (seven).
ONLY_TWO_WEIGHTS_L1 = "def l1_penalty(w, lam):\n    return lam * (abs(w[0]) + abs(w[1]))"


@dataclass(frozen=True)
class Expected:
    """What a fair grader gives a case.

    ``flagged``: the case must be flagged for review, and every word in
    ``flag_words`` must occur in its flags (case-insensitive); an unflagged
    case must have no flag at all (no false alarms). ``message_words``: words
    that must occur in the outcome's messages, which also go into the
    student's feedback.
    """

    status: Status
    score: float
    tests: dict[str, float] | None = None  # grade id -> score, where it matters
    flagged: bool = False
    flag_words: tuple[str, ...] = ()
    message_words: tuple[str, ...] = ()
    has_feedback_notebook: bool = True  # False: nothing could be graded, only our note page


@dataclass(frozen=True)
class Case:
    student: str
    what: str
    build: Callable[[Path, Path], None]  # (course, target folder submitted/<student>/mini/)
    expect: Expected


def _write(nb) -> Callable[[Path, Path], None]:
    """A builder writing notebook ``nb(course)`` as the submission."""

    def build(course: Path, target: Path) -> None:
        nbformat.write(nb(course), target / NOTEBOOK)

    return build


def _deleted_test(course: Path):
    nb = student_notebook(course)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_l1_penalty"]
    return nb


def _edited_test(course: Path):
    # A wrong l1_penalty, and its (locked) test cell replaced by one that passes.
    nb = student_notebook(course, l1_penalty=WRONG_L1)
    cells_by_id(nb)["test_l1_penalty"].source = "assert True  # looks fine to me"
    return nb


def _reordered_tests(course: Path):
    # The l1 exercise moved before the l2 one, and the l2 test cell to the very
    # end: every test still runs after the code it tests.
    nb = student_notebook(course)
    cells = cells_by_id(nb)
    head = [c for c in nb.cells if "nbgrader" not in c.metadata or c.metadata["nbgrader"]["grade_id"] == "setup"]
    nb.cells = head + [cells["l1_penalty"], cells["test_l1_penalty"], cells["l2_norm"], cells["test_l2_norm"]]
    return nb


def _after_l2(extra_l1: str) -> Callable[[Path], nbformat.NotebookNode]:
    """Correct l2_norm; the l1_penalty cell runs ``extra_l1`` before a correct definition."""
    return lambda course: student_notebook(course, l1_penalty=extra_l1 + "\n\n" + CORRECT_L1)


def _renamed(course: Path, target: Path) -> None:
    nbformat.write(student_notebook(course), target / "mini (1).ipynb")


def _corrupt(course: Path, target: Path) -> None:
    text = nbformat.writes(student_notebook(course))
    (target / NOTEBOOK).write_text(text[: len(text) // 2])  # cut off mid-file, as an interrupted upload


def _missing(course: Path, target: Path) -> None:
    (target / "answers.txt").write_text("I could not get Jupyter to start, sorry.\n")


def _extra_files(course: Path, target: Path) -> None:
    nbformat.write(student_notebook(course), target / NOTEBOOK)
    (target / "scratch.csv").write_text("w,lam\n1,0.5\n")
    (target / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n")


# Reads every file a cheater would look for, and prints what it finds: the
# instructor notebook (hidden tests + solutions), the gradebook (which holds
# the hidden tests' source), the notebook being graded (which autograde has
# already restored the hidden tests into), and other copies of the course on
# the machine (next to this one, or in /tmp).
READS_HIDDEN = '''import glob, os
print("working folder", os.getcwd(), sorted(os.listdir(".")))
patterns = ["../../../solutions/*/*.ipynb", "../../../source/*/*.ipynb", "../../../gradebook.db", "*.ipynb",
            "../../../../*/solutions/*/*.ipynb"]  # the course's own files, then copies of it next to it
patterns += ["/tmp/" + "*/" * depth + "solutions/*/*.ipynb" for depth in range(6)]  # and anywhere in /tmp
for pattern in patterns:
    for path in glob.glob(pattern):
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError as error:
            print("could not read", path, error)
            continue
        for line in text.splitlines():
            if "hidden" in line or "BEGIN" in line:
                print(path, line)'''

MONKEYPATCH_NUMPY = "np.testing.assert_allclose = lambda *args, **kwargs: None"
MONKEYPATCH_CHECKING = "checking.relative_error = lambda *args, **kwargs: 0.0"

MEMORY_BOMB = '''hoard = []
for _ in range(12):  # 12 x 128 MiB = 1.5 GiB, well past the tests' 768 MiB cap; stops there should the watchdog fail
    hoard.append(np.ones(2**24))'''

HUGE_OUTPUT = '''import sys
for _ in range(100):  # 100 MiB of text on stdout
    sys.stdout.write("x" * (2**20 - 1) + "\\n")'''


CASES: list[Case] = [
    Case("correct", "both functions right", _write(student_notebook), Expected(Status.GRADED, 3.0)),
    Case("wrong", "l2_norm forgets the square root",
         _write(lambda c: student_notebook(c, l2_norm=WRONG_L2)),
         Expected(Status.GRADED, 2.0, {"test_l2_norm": 0.0, "test_l1_penalty": 2.0})),
    Case("hidden_only_fails", "l1_penalty passes the visible test, fails the hidden one",
         _write(lambda c: student_notebook(c, l1_penalty=ONLY_TWO_WEIGHTS_L1)),
         Expected(Status.GRADED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0})),
    Case("untouched", "the released exercise, unchanged (NotImplementedError)",
         _write(released), Expected(Status.GRADED, 0.0)),
    Case("corrupt_json", "a notebook cut off halfway: not JSON", _corrupt,
         Expected(Status.FAILED_TO_RUN, 0.0, message_words=("notebook",), has_feedback_notebook=False)),
    Case("missing_notebook", "no notebook at all, only a text file", _missing,
         Expected(Status.FAILED_TO_RUN, 0.0, message_words=("notebook",), has_feedback_notebook=False)),
    Case("renamed_notebook", "the right notebook under another name: collect grades it under the right one",
         _renamed, Expected(Status.GRADED, 3.0)),
    Case("extra_files", "the notebook plus unrelated files: graded, the files ignored", _extra_files,
         Expected(Status.GRADED, 3.0)),
    Case("deleted_test", "a graded test cell deleted: nbgrader restores it from the gradebook",
         _write(_deleted_test), Expected(Status.GRADED, 3.0, flagged=True, flag_words=("test_l1_penalty",))),
    Case("edited_test", "a wrong answer whose locked test was rewritten to pass: the test is restored",
         _write(_edited_test),
         Expected(Status.GRADED, 1.0, {"test_l1_penalty": 0.0}, flagged=True, flag_words=("test_l1_penalty",))),
    Case("reordered_tests", "locked cells moved around (every test still after its code): graded in the "
         "original order, flagged since locked cells were moved",
         _write(_reordered_tests), Expected(Status.GRADED, 3.0, flagged=True, flag_words=("order",))),
    Case("sys_exit", "sys.exit() in a cell: IPython turns it into an error, the kernel lives on",
         _write(_after_l2("import sys\nsys.exit('done early')")),
         Expected(Status.GRADED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0})),
    Case("os_exit", "os._exit(0) kills the kernel: the cell is lost, the rest graded",
         _write(_after_l2("import os\nos._exit(0)")),
         Expected(Status.LIMIT_EXCEEDED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0},
                  message_words=("kernel",))),
    Case("segfault", "a segmentation fault through ctypes: the kernel dies",
         _write(_after_l2("import ctypes\nctypes.string_at(0)")),
         Expected(Status.LIMIT_EXCEEDED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0},
                  message_words=("kernel",))),
    Case("infinite_loop", "while True: pass, past the cell time limit",
         _write(_after_l2("while True:\n    pass")),
         Expected(Status.LIMIT_EXCEEDED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0},
                  message_words=("limit",))),
    Case("memory_bomb", "allocates 1.5 GiB against the tests' 768 MiB cap",
         _write(_after_l2(MEMORY_BOMB)),
         Expected(Status.LIMIT_EXCEEDED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0},
                  message_words=("memory",))),
    Case("huge_output", "prints 100 MiB, then defines a correct answer: full marks, the output truncated "
         "(an output limit, so the status says a limit was hit)",
         _write(_after_l2(HUGE_OUTPUT)), Expected(Status.LIMIT_EXCEEDED, 3.0, message_words=("output",))),
    Case("reads_hidden", "tries to read the solutions, the gradebook and the graded notebook; answers right",
         _write(_after_l2(READS_HIDDEN)),
         Expected(Status.GRADED, 3.0, flagged=True, flag_words=("tried to read", "solutions"))),
    Case("monkeypatch_numpy", "wrong l2_norm, and numpy.testing.assert_allclose rebound to do nothing",
         _write(lambda c: student_notebook(c, l2_norm=WRONG_L2 + "\n\n" + MONKEYPATCH_NUMPY)),
         Expected(Status.GRADED, 2.0, {"test_l2_norm": 0.0, "test_l1_penalty": 2.0}, flagged=True,
                  flag_words=("visible tests of cell 'test_l2_norm'", "judge finds"))),
    Case("monkeypatch_checking", "wrong l1_penalty, and regcourse.checking.relative_error rebound to 0",
         _write(lambda c: student_notebook(c, l1_penalty=WRONG_L1 + "\n\n" + MONKEYPATCH_CHECKING)),
         Expected(Status.GRADED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0}, flagged=True,
                  flag_words=("visible tests of cell 'test_l1_penalty'", "judge finds"))),
]
CASES += __import__("grading_corpus.sandbox_cases").sandbox_cases.cases()  # attacks on the sandbox and feedback

# Submissions that try to forge a grade past the judge (imported here: they use the helpers above).
from .judge_cases import JUDGE_CASES  # noqa: E402

CASES += JUDGE_CASES


def build_case(course: Path, case: Case) -> Path:
    target = course / "submitted" / case.student / ASSIGNMENT
    target.mkdir(parents=True, exist_ok=True)
    case.build(course, target)
    return target


def build_corpus(course: Path, cases: list[Case] | None = None) -> list[Case]:
    """Write every case (or ``cases``) into ``course``'s submitted/ tree."""
    cases = CASES if cases is None else cases
    for case in cases:
        build_case(course, case)
    return cases


# --- learning-management-system exports -------------------------------------------------------------------


@dataclass
class LmsFile:
    """One file as an LMS export names it, and what collect must make of it."""

    name: str       # path inside the export
    data: bytes
    student: str | None = None  # the student id collect derives; None: must be reported, not laid out


@dataclass
class LmsExport:
    files: list[LmsFile] = field(default_factory=list)

    def write_folder(self, folder: Path) -> Path:
        for f in self.files:
            path = folder / f.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.data)
        return folder

    def write_zip(self, path: Path, extra: dict[str, bytes] | None = None) -> Path:
        with zipfile.ZipFile(path, "w") as archive:
            for f in self.files:
                archive.writestr(f.name, f.data)
            for name, data in (extra or {}).items():
                archive.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps '..' and '/' as given
        return path


def _bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def canvas_export(course: Path) -> LmsExport:
    """A Canvas "Download submissions" folder: ``<lastfirst>[_LATE]_<userid>_<submissionid>_<name>``.

    Canvas appends ``-1``, ``-2`` to the original name of a resubmission.
    """
    good, wrong = _bytes(student_notebook(course)), _bytes(student_notebook(course, l2_norm=WRONG_L2))
    return LmsExport([
        LmsFile("doejane_1001_5001_mini.ipynb", good, "1001"),
        LmsFile("smithjohn_LATE_1002_5002_mini.ipynb", wrong, "1002"),
        # resubmitted: the later submission id wins, the older one is reported
        LmsFile("leeann_1003_5003_mini.ipynb", wrong, None),
        LmsFile("leeann_1003_5010_mini-1.ipynb", good, "1003"),
        LmsFile("leeann_1003_5010_notes.pdf", b"%PDF-1.4\n", None),  # extra file: reported
        LmsFile("garcia-lopezmaria_1004_5004_Untitled.ipynb", good, "1004"),  # renamed notebook
        LmsFile("mini-with-no-student.ipynb", good, None),  # does not parse: reported
    ])


def moodle_export(course: Path) -> LmsExport:
    """A Moodle "Download all submissions" export, flat and in folders.

    ``<Full Name>_<participantid>_assignsubmission_file_<name>``, or a folder
    ``<Full Name>_<participantid>_assignsubmission_file_/`` holding the files.
    """
    good, wrong = _bytes(student_notebook(course)), _bytes(student_notebook(course, l1_penalty=WRONG_L1))
    return LmsExport([
        LmsFile("Jane Doe_301_assignsubmission_file_mini.ipynb", good, "jane-doe"),
        LmsFile("Élodie Martin_302_assignsubmission_file_/mini.ipynb", wrong, "elodie-martin"),
        LmsFile("Élodie Martin_302_assignsubmission_file_/data.csv", b"a,b\n", None),
        LmsFile("Omar Haddad_303_assignsubmission_onlinetext_onlinetext.html", b"<p>hi</p>", None),
        LmsFile("Omar Haddad_303_assignsubmission_file_mini.ipynb", good, "omar-haddad"),
    ])

