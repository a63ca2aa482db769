"""Lay submissions out in nbgrader's tree, from nbgrader's own layout or an LMS export.

nbgrader grades ``submitted/<student>/<assignment>/<notebook>.ipynb``. Students
usually hand in through a learning-management system, whose bulk download is a
flat folder or zip of renamed files. :func:`collect` accepts:

* nothing (``source=None``): the course's own ``submitted/`` tree, as is;
* a folder in nbgrader's layout (``<student>/<assignment>/*.ipynb``): copied in;
* a folder or ``.zip`` of an LMS export, file names parsed as follows.

**Canvas** ("Download submissions")::

    <lastfirst>_<userid>_<submissionid>_<original name>
    <lastfirst>_LATE_<userid>_<submissionid>_<original name>

e.g. ``doejane_1001_5001_a2_penalties.ipynb``. The student id is the Canvas
user id (``1001``): it is the one number that never changes for a student in a
course. Canvas appends ``-1``, ``-2`` to the name of a resubmitted file; when a
student appears with several submission ids, the highest (latest) is graded
and the others are reported. ``LATE`` is reported in the summary (the export
carries no submission time, so no ``timestamp.txt`` is written: apply late
penalties in Canvas, or write ``timestamp.txt`` files yourself).

**Moodle** ("Download all submissions"), flat or "in folders"::

    <Full Name>_<participantid>_assignsubmission_file_<original name>
    <Full Name>_<participantid>_assignsubmission_file_/<original name>

The participant id is Moodle's per-assignment number (it differs between two
assignments of the same student), so the student id is derived from the name
instead: lowercase ASCII words joined by ``-`` (``Élodie Martin`` ->
``elodie-martin``). Two participants with the same name get their participant
id appended, and are reported.

Whatever the source, every file ends up graded or listed in
``Collected.problems`` (with the reason and what to do): a name that does not
parse, a file that is not a notebook, an older duplicate, a notebook that is
not valid JSON, a student without a notebook. A submission whose one notebook
has another name (``Untitled.ipynb``, ``mini (1).ipynb``) is graded under the
assignment's notebook name, with a note. Zip entries with absolute paths,
``..`` or links are rejected, never extracted (zip-slip).
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import unicodedata
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .course import Course, CourseError
from .model import SubmissionRef

#: Canvas: <lastfirst>[_LATE]_<userid>_<submissionid>_<original name>. lastfirst has no "_".
CANVAS_NAME = re.compile(r"^(?P<name>[^_/]+)_(?:(?P<late>LATE)_)?(?P<user>\d+)_(?P<submission>\d+)_(?P<original>.+)$")
#: Moodle: <Full Name>_<participantid>_assignsubmission_<plugin>_<original name> (plugin: file, onlinetext, ...).
MOODLE_NAME = re.compile(r"^(?P<name>.+?)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<original>.*)$")
#: Canvas' suffix on resubmitted files: mini-1.ipynb is mini.ipynb.
CANVAS_RESUBMISSION = re.compile(r"-\d+$")
#: Left alone silently: made by operating systems and Jupyter, never by the student's intent.
NOISE = {"__MACOSX", ".DS_Store", ".ipynb_checkpoints", "Thumbs.db", "timestamp.txt"}
#: A submission notebook larger than this is not extracted (a zip bomb, or 100 MB of saved outputs).
MAX_NOTEBOOK_BYTES = 50 * 1024**2

PATTERNS_HELP = (
    "expected Canvas '<lastfirst>_<userid>_<submissionid>_<file>' "
    "or Moodle '<Full Name>_<participantid>_assignsubmission_file_<file>'"
)


@dataclass
class Collected:
    """What :func:`collect` laid out: the submissions to grade and everything worth a look."""

    refs: list[SubmissionRef]
    problems: list[str]
    late: list[str] = field(default_factory=list)      # students the LMS marked late
    names: dict[str, str] = field(default_factory=dict)  # student id -> name from the LMS export


@dataclass
class _File:
    """One file of a source: its path inside the source, and how to read it."""

    path: PurePosixPath
    size: int
    read: object  # () -> bytes


@dataclass
class _Submission:
    student: str
    name: str
    order: int                     # Canvas submission id; latest wins
    late: bool = False
    files: list[_File] = field(default_factory=list)
    origin: str = ""               # how the export names the submission, for messages
    participant: str = ""          # Moodle's participant id
    exported_as: dict[PurePosixPath, PurePosixPath] = field(default_factory=dict)  # inner name -> export name


def collect(course_root: Path, assignment: str, source: Path | None = None) -> Collected:
    """Lay out ``assignment``'s submissions under the course's ``submitted/`` tree.

    ``source`` is None (use ``submitted/`` as it is), a folder in nbgrader's
    layout, or an LMS export (folder or ``.zip``). Raises :class:`CourseError`
    only when the source itself cannot be read; anything wrong with a single
    submission is a line in ``problems``.
    """
    course = Course.open(course_root)
    notebooks = course.check_assignment(assignment)
    problems: list[str] = []
    result = Collected([], problems)
    if source is not None:
        source = Path(source).expanduser().resolve()
        if not source.exists():
            raise CourseError(f"--submissions {source}: no such file or folder")
        if source.is_file() and not zipfile.is_zipfile(source):
            what = "is not a zip archive (damaged, or not finished downloading?)" if source.suffix.lower() == ".zip" \
                else "expected a folder or a .zip file"
            raise CourseError(f"--submissions {source}: {what}")
    only = None
    if source is not None and source != course.submitted.resolve():
        files = _zip_files(source, problems) if source.is_file() else _folder_files(source, problems)
        if _is_nbgrader_layout(files, assignment):
            only = _copy_nbgrader_layout(course, assignment, files, problems)
        else:
            only = _lay_out_lms_export(course, assignment, notebooks, files, result)
    result.refs = _check_layout(course, assignment, notebooks, problems, only)
    return result


# --- reading a source ---------------------------------------------------------------------------------------


def _folder_files(folder: Path, problems: list[str]) -> list[_File]:
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():  # a link may point anywhere on this machine: never followed
            problems.append(f"{path.relative_to(folder)}: a symbolic link, not followed; not graded")
            continue
        if path.is_file():
            files.append(_File(PurePosixPath(path.relative_to(folder).as_posix()), path.stat().st_size,
                               path.read_bytes))
    return files


def _zip_files(archive: Path, problems: list[str]) -> list[_File]:
    try:
        zf = zipfile.ZipFile(archive)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise CourseError(f"--submissions {archive}: not a readable zip file ({error})") from error
    files = []
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        unsafe = _unsafe_entry(name, info)
        if unsafe:
            problems.append(f"{archive.name}: entry {name!r} rejected, not extracted: {unsafe}")
            continue
        files.append(_File(PurePosixPath(name.replace("\\", "/")), info.file_size,
                           lambda info=info: zf.read(info)))
    return files


def _unsafe_entry(name: str, info: zipfile.ZipInfo) -> str | None:
    """Why a zip entry must not be extracted (zip-slip and friends), or None."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return "absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "path leaves the export folder ('..')"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def _is_nbgrader_layout(files: list[_File], assignment: str) -> bool:
    """Every notebook is at <student>/<assignment>/<notebook>.ipynb."""
    notebooks = [f for f in files if f.path.suffix == ".ipynb" and not _noise(f.path)]
    return bool(notebooks) and all(len(f.path.parts) == 3 and f.path.parts[1] == assignment for f in notebooks)


def _noise(path: PurePosixPath) -> bool:
    return any(part in NOISE or part.startswith("._") for part in path.parts)


# --- nbgrader layout ------------------------------------------------------------------------------------------


def _copy_nbgrader_layout(course: Course, assignment: str, files: list[_File], problems: list[str]) -> set[str]:
    by_student: dict[str, list[_File]] = defaultdict(list)
    for f in files:
        if len(f.path.parts) >= 3 and f.path.parts[1] == assignment:
            by_student[f.path.parts[0]].append(f)
    for f in files:
        if not (len(f.path.parts) >= 3 and f.path.parts[1] == assignment) and not _noise(f.path):
            problems.append(f"{f.path}: not at <student>/{assignment}/<file>; not graded")
    for student, student_files in by_student.items():
        target = _fresh_folder(course, student, assignment)
        for f in student_files:
            dest = target.joinpath(*f.path.parts[2:])
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.read())  # timestamp.txt comes along: nbgrader reads it for late penalties
    return set(by_student)


def _fresh_folder(course: Course, student: str, assignment: str) -> Path:
    target = course.folder("submitted_directory", student, assignment)
    if target.exists():
        shutil.rmtree(target)  # a new export replaces what an earlier collect laid out
    target.mkdir(parents=True)
    return target


# --- LMS exports ----------------------------------------------------------------------------------------------


def student_id_from_name(full_name: str) -> str:
    """``Élodie  Martin-Roy`` -> ``elodie-martin-roy``: stable, ASCII, safe as a folder name."""
    ascii_name = unicodedata.normalize("NFKD", full_name).encode("ascii", "ignore").decode()
    return "-".join(re.findall(r"[a-z0-9]+", ascii_name.lower())) or "student"


def _parse(path: PurePosixPath) -> tuple[_Submission, PurePosixPath] | None:
    """The submission a file belongs to, and its name inside the submission; None if it does not parse."""
    top, rest = path.parts[0], PurePosixPath(*path.parts[1:]) if len(path.parts) > 1 else None
    moodle = MOODLE_NAME.match(top)
    if moodle:
        original = PurePosixPath(moodle["original"]) / rest if rest else PurePosixPath(moodle["original"])
        if not str(original) or str(original) == ".":
            return None
        name = moodle["name"]
        sub = _Submission(student_id_from_name(name), name, 0, origin=f"Moodle participant {moodle['participant']}",
                          participant=moodle["participant"])
        if moodle["plugin"] != "file":
            original = PurePosixPath(f"{moodle['plugin']}-{original}")
        return sub, original
    canvas = CANVAS_NAME.match(top)
    if canvas and rest is None:
        sub = _Submission(canvas["user"], canvas["name"], int(canvas["submission"]), late=bool(canvas["late"]),
                          origin=f"Canvas submission {canvas['submission']}")
        return sub, PurePosixPath(canvas["original"])
    return None


def _lay_out_lms_export(course: Course, assignment: str, notebooks: list[str], files: list[_File],
                        result: Collected) -> set[str]:
    """Lay out every student of the export; returns their ids."""
    problems = result.problems
    submissions: dict[tuple[str, int, str], _Submission] = {}
    for f in files:
        if _noise(f.path):
            continue
        parsed = _parse(f.path)
        if parsed is None:
            problems.append(f"{f.path}: file name not understood, not graded ({PATTERNS_HELP}); "
                            f"rename it, or put it at submitted/<student>/{assignment}/")
            continue
        sub, inner = parsed
        sub = submissions.setdefault((sub.student, sub.order, sub.participant), sub)
        sub.files.append(_File(inner, f.size, f.read))
        sub.exported_as[inner] = f.path

    # Moodle: one name, two participants -> two students, told apart by the participant id.
    by_name: dict[str, set[str]] = defaultdict(set)
    for student, _, participant in submissions:
        if participant:
            by_name[student].add(participant)
    for key, sub in list(submissions.items()):
        student, _, participant = key
        if participant and len(by_name[student]) > 1:
            sub.student = f"{student}-{participant}"
            problems.append(f"{sub.name}: two Moodle participants share this name; graded as {sub.student}")

    # Canvas: one student, several submissions -> the latest (highest id) is graded.
    latest: dict[str, _Submission] = {}
    for sub in sorted(submissions.values(), key=lambda s: s.order):
        older = latest.get(sub.student)
        if older is not None and older.order != sub.order:
            problems.append(f"{sub.name} ({sub.student}): {older.origin} is superseded by {sub.origin}; "
                            f"only the latest is graded, ignored: {_names(older)}")
        latest[sub.student] = sub

    for student, sub in sorted(latest.items()):
        result.names[student] = sub.name
        if sub.late:
            result.late.append(student)
        target = _fresh_folder(course, student, assignment)
        _place_notebooks(sub, notebooks, target, problems)
    _record_names(course, latest.values())
    return set(latest)


def _record_names(course: Course, submissions) -> None:
    """Keep the LMS's names in the gradebook, so grades.csv says who each id is.

    Moodle gives "First Last"; Canvas only "lastfirst", kept whole as the last
    name. Names already in the gradebook (an imported roster) are left alone.
    """
    from nbgrader.api import MissingEntry

    with course.gradebook() as gb:
        for sub in submissions:
            try:
                known = gb.find_student(sub.student)
                if known.first_name or known.last_name:
                    continue
            except MissingEntry:
                pass
            first, _, last = sub.name.rpartition(" ") if sub.participant else ("", "", sub.name)
            gb.update_or_create_student(sub.student, first_name=first or None, last_name=last or None)


def _names(sub: _Submission) -> str:
    return ", ".join(str(sub.exported_as[f.path]) for f in sub.files)


def _place_notebooks(sub: _Submission, notebooks: list[str], target: Path, problems: list[str]) -> None:
    """Write the submission's notebooks under the assignment's notebook names; report the rest."""
    who = f"{sub.name} ({sub.student})"
    candidates: dict[str, _File] = {}
    for f in sub.files:
        if f.path.suffix != ".ipynb":
            problems.append(f"{who}: {sub.exported_as[f.path]} is not a notebook; not graded")
            continue
        if f.size > MAX_NOTEBOOK_BYTES:
            problems.append(f"{who}: {sub.exported_as[f.path]} is {f.size / 1024**2:.0f} MB, over "
                            f"{MAX_NOTEBOOK_BYTES // 1024**2} MB; not extracted")
            continue
        stem = CANVAS_RESUBMISSION.sub("", f.path.stem)
        candidates.setdefault(stem if stem in notebooks else f"?{f.path}", f)
    unmatched = [key for key in candidates if key.startswith("?")]
    missing = [name for name in notebooks if name not in candidates]
    if len(missing) == 1 and len(unmatched) == 1:
        f = candidates.pop(unmatched[0])
        candidates[missing[0]] = f
        problems.append(f"{who}: graded {f.path.name} as {missing[0]}.ipynb (the assignment's notebook name)")
        unmatched, missing = [], []
    for key in unmatched:
        problems.append(f"{who}: {candidates.pop(key).path.name} is not one of the assignment's notebooks "
                        f"({', '.join(n + '.ipynb' for n in notebooks)}); not graded")
    for name, f in candidates.items():
        (target / f"{name}.ipynb").write_bytes(f.read())


# --- checking the layout ---------------------------------------------------------------------------------------


def _check_layout(course: Course, assignment: str, notebooks: list[str], problems: list[str],
                  only: set[str] | None = None) -> list[SubmissionRef]:
    """Every student folder of the assignment (of ``only``'s students, if given) becomes a ref.

    What nbgrader would trip on becomes a problem. Students laid out by an
    earlier export but absent from this one are not graded again.

    A folder without any notebook, or with an unreadable one, is still a ref:
    the grader gives it zero with the reason, so the student appears in the
    summary and gets feedback instead of vanishing.
    """
    refs = []
    submitted = course.submitted
    if not submitted.is_dir():
        problems.append(f"no submissions: {submitted} does not exist")
        return refs
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()):
        folder = student_dir / assignment
        if not folder.is_dir():
            continue
        student = student_dir.name
        if only is not None and student not in only:
            continue
        refs.append(SubmissionRef(student, assignment))
        present = {p.stem: p for p in folder.glob("*.ipynb")}
        missing = [n for n in notebooks if n not in present]
        others = [p for stem, p in present.items() if stem not in notebooks]
        if len(missing) == 1 and len(others) == 1:
            # nbgrader only grades <notebook>.ipynb: a lone renamed notebook is copied under that name
            shutil.copy(others[0], folder / f"{missing[0]}.ipynb")
            problems.append(f"{student}: graded {others[0].name} as {missing[0]}.ipynb (the assignment's notebook name)")
            present[missing[0]] = folder / f"{missing[0]}.ipynb"
            missing = []
        for name in missing:
            problems.append(f"{student}: no {name}.ipynb in {folder.relative_to(course.root)}; it scores zero")
        for name in notebooks:
            if name in present:
                reason = notebook_problem(present[name])
                if reason:
                    problems.append(f"{student}: {name}.ipynb {reason}; it scores zero")
        extra = sorted(
            str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and p.suffix != ".ipynb" and not _noise(PurePosixPath(p.relative_to(folder).as_posix()))
        )
        if extra:
            problems.append(f"{student}: extra files, not graded: {', '.join(extra)}")
    return refs


def notebook_problem(path: Path) -> str | None:
    """Why nbgrader cannot read ``path`` as a notebook (for people), or None.

    A quick look (JSON with cells), not nbformat's full validation: importing
    nbformat costs seconds before grading can start, and whatever else is
    wrong, the grader reports with nbformat's own words.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "is not text (is it a notebook?)"
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return f"is not a valid notebook: broken JSON at line {error.lineno} (an interrupted upload?)"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return "is JSON but not a notebook (no list of cells)"
    return None
