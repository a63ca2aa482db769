"""Per-student HTML feedback that shows the results of hidden tests but never their source.

Stock ``nbgrader generate_feedback`` renders the autograded notebook, hidden
tests included, and a failing hidden test's traceback prints the very line
that failed (nbgrader issues #917, #1363). We run the stock converter through
nbgrader's own API, with three preprocessors in front of its default ones:

1. :class:`RedactHiddenTests` (ours) removes any line of a hidden test or
   of the instructor's solution that reached an *output*: a student who
   printed a file holding them (the solutions, the gradebook) must not get
   them back in the feedback;
2. :class:`ShortenTestTracebacks` (ours) reduces the error of a test cell to
   ``ExceptionName: message`` and says whether a visible or a hidden test
   raised it;
3. :class:`ClearHiddenTests` (nbgrader's, made tolerant of a student cell
   that merely mentions the markers) removes the hidden regions from the
   test cells' source.

:class:`InertStudentContent` (ours) then makes everything the student's
notebook or code put there inert: HTML outputs and markdown are sanitized
with nh3 (no scripts, event handlers, styles, ``javascript:`` links or
images fetched from elsewhere), JavaScript, LaTeX and JSON outputs are shown
as text, widgets and any other output type are dropped, and the metadata the
page template would print unescaped (cell tags and ids, grade ids, image
sizes) is reduced to what is known to be safe. The page is built from the
graded notebook alone: files the student's code wrote next to it never reach
``feedback/``.

:class:`GraderNotes` (ours) puts the grader's lines for a student (a limit hit,
a notebook that could not be read) at the top. A submission that could not be
graded at all has no autograded notebook; it gets a short page saying why.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import stat
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Dict, List, Unicode

from . import judge
from .course import Course
from .model import Outcome, Status

BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
#: Hidden-test lines shorter than this are not redacted from outputs: "pass", ")" or "x = 1"
#: would blank out ordinary output and say nothing about the tests.
MIN_REDACTED_LINE = 8
REDACTED = "[redacted by the grader]"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: IPython names the cell's own frame "Cell In[5], line 3" (ipykernel >= 6) or "<ipython-input-5-...> in <module>".
CELL_FRAME_LINE = re.compile(r"(?:Cell In\s*\[\d*\],\s*line\s*(\d+))|(?:^-+>\s*(\d+)\s)", re.M)


def hidden_regions(source: str, begin: str = BEGIN_HIDDEN, end: str = END_HIDDEN) -> list[tuple[int, int]]:
    """1-based, inclusive line ranges of the hidden-test regions (markers included)."""
    regions, start = [], None
    for number, line in enumerate(source.split("\n"), start=1):
        if begin in line and start is None:
            start = number
        elif end in line and start is not None:
            regions.append((start, number))
            start = None
    if start is not None:
        regions.append((start, source.count("\n") + 1))
    return regions


class _Enabled(Preprocessor):
    # nbconvert skips a preprocessor that is not enabled (its default); ours always run.
    enabled = True


class RedactHiddenTests(_Enabled):
    """Remove every line of every hidden test (and of the solutions) from every output of the notebook."""

    secret_lines = List(Unicode(), [], help="more lines never to show (the instructor's solutions)").tag(config=True)

    def preprocess(self, nb, resources):
        lines: set[str] = {line.strip() for line in self.secret_lines}
        for cell in nb.cells:
            if cell.cell_type == "code" and nbgrader_utils.is_grade(cell):
                source = cell.source.split("\n")
                for start, end in hidden_regions(cell.source):
                    lines.update(line.strip() for line in source[start : end - 1])
        lines = {line for line in lines if len(line) >= MIN_REDACTED_LINE}
        # Also as they appear inside a printed .ipynb or JSON string, and HTML-escaped.
        variants = sorted({v for line in lines for v in (line, json.dumps(line)[1:-1], html.escape(line))},
                          key=len, reverse=True)
        if variants:
            for cell in nb.cells:
                for output in cell.get("outputs", []):
                    _redact_output(output, variants)
        return nb, resources


def _redact_output(output, variants: list[str]) -> None:
    def clean(text):
        if isinstance(text, list):
            return [clean(t) for t in text]
        if not isinstance(text, str):
            return text
        plain = ANSI.sub("", text)  # a traceback colours the middle of a line
        if any(variant in plain for variant in variants):
            text = plain
        for variant in variants:
            if variant in text:
                text = text.replace(variant, REDACTED)
        return text

    if "text" in output:
        output["text"] = clean(output["text"])
    for key in ("evalue", "traceback"):
        if key in output:
            output[key] = clean(output[key])
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("json") or mime.endswith("javascript"):
            output["data"][mime] = clean(value) if not isinstance(value, dict) else value


class TolerantClearHiddenTests(ClearHiddenTests):
    """nbgrader's ClearHiddenTests, on test cells only.

    A student's own cell that prints or quotes "BEGIN HIDDEN TESTS" is not a
    test region, and must not make the student's whole feedback fail (stock
    raises on an unmatched marker or on one outside a grade cell).
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if not nbgrader_utils.is_grade(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)


class ShortenTestTracebacks(_Enabled):
    """A failing test cell shows ``ExceptionName: message``, not the line that failed.

    Says whether the error came from the visible tests (which the student can
    read and run) or a hidden one; the hidden test's source is never shown.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not nbgrader_utils.is_grade(cell):
            return cell, resources
        regions = hidden_regions(cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            line = _failing_line(output.get("traceback", []))
            if output.get("ename") == judge.HiddenTestFailure.__name__:  # the judge's verdict
                where = "a hidden test"
            elif line is None:
                where = "a test in this cell"
            elif any(start <= line <= end for start, end in regions):
                where = "a hidden test"
            else:
                where = "a visible test"
            message = f"{output.get('ename', 'Error')}: {ANSI.sub('', output.get('evalue', ''))}".rstrip(": ")
            output["traceback"] = [f"{message}\n(raised by {where})"]
        return cell, resources


def _failing_line(traceback: list[str]) -> int | None:
    """The line of the test cell in the traceback's first (the cell's own) frame."""
    if not traceback:
        return None
    text = ANSI.sub("", "\n".join(traceback))
    match = CELL_FRAME_LINE.search(text)
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


class GraderNotes(_Enabled):
    """Put the grader's notes for this student (limits hit, ...) at the top of the feedback."""

    notes = Dict({}, help="student id -> lines to show at the top of their feedback").tag(config=True)
    title = Unicode("Notes from the grader").tag(config=True)

    def preprocess(self, nb, resources):
        from nbformat.v4 import new_markdown_cell

        lines = self.notes.get(resources.get("nbgrader", {}).get("student", ""), [])
        if lines:
            text = f"**{self.title}**\n\n" + "\n".join(f"- {_markdown_escape(line)}" for line in lines)
            nb.cells.insert(0, new_markdown_cell(text))
        return nb, resources


# -- student content, made inert -------------------------------------------------------------

#: Raster images shown as they are (base64, checked); SVG is shown through an <img> (inert, see feedback_config).
SAFE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
#: Outputs shown as plain text when nothing else represents them.
SHOWN_AS_TEXT = ("application/javascript", "text/javascript", "application/x-javascript", "text/latex",
                 "application/json")
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
#: Names the page template prints unescaped (grade ids, cell ids, tags) must look like this.
SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
#: Link schemes kept in student HTML; images only as data: URLs (nothing is fetched when the page is viewed).
LINK_SCHEMES = ("http:", "https:", "mailto:", "#")


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "src":
        return value if value.startswith("data:image/") else None
    if attribute == "href":
        return value if value.strip().lower().startswith(LINK_SCHEMES) else None
    return value


def sanitize_html(fragment: str) -> str:
    """Student HTML, inert: nh3 (ammonia) with its default allow-list, minus fetched images and odd links."""
    import nh3

    return nh3.clean(fragment, url_schemes={"http", "https", "mailto", "data"}, attribute_filter=_keep_attribute)


def _text(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def _markdown_html(markdown: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return sanitize_html(markdown2html_mistune(markdown))


def _inert_data(data) -> dict:
    clean, markdown, as_text = {}, None, None
    for mime, value in (data.items() if isinstance(data, dict) else []):
        text = _text(value)
        if mime == "text/plain" and text is not None:
            clean[mime] = text
        elif mime == "text/html" and text is not None:
            clean[mime] = sanitize_html(text)
        elif mime in SAFE_IMAGES and text is not None and (mime == "image/svg+xml" or BASE64.fullmatch(text)):
            clean[mime] = text
        elif mime == "text/markdown" and text is not None:
            markdown = text
        elif mime in SHOWN_AS_TEXT:
            as_text = text if text is not None else json.dumps(value, indent=1)[:100_000]
    if markdown is not None and "text/html" not in clean:
        clean["text/html"] = _markdown_html(markdown)
    if as_text is not None and not clean:
        clean["text/plain"] = as_text
    return clean


def _inert_output(output):
    from nbformat.v4 import new_output

    kind = output.get("output_type")
    if kind == "stream":
        return new_output("stream", name="stderr" if output.get("name") == "stderr" else "stdout",
                          text=_text(output.get("text")) or "")
    if kind == "error":
        traceback = output.get("traceback")
        return new_output("error", ename=str(output.get("ename", "Error")), evalue=str(output.get("evalue", "")),
                          traceback=[str(t) for t in traceback] if isinstance(traceback, list) else [])
    if kind not in ("display_data", "execute_result"):
        return None
    data = _inert_data(output.get("data"))
    if not data:
        return None
    metadata, given = {}, output.get("metadata") if isinstance(output.get("metadata"), dict) else {}
    for mime in data:
        sizes = given.get(mime) if isinstance(given.get(mime), dict) else {}
        kept = {k: sizes[k] for k in ("width", "height")
                if isinstance(sizes.get(k), (int, float)) and not isinstance(sizes.get(k), bool)}
        if kept and mime.startswith("image/"):
            metadata[mime] = kept
    if kind == "execute_result":
        count = output.get("execution_count")
        return new_output(kind, data=data, metadata=metadata, execution_count=count if isinstance(count, int) else None)
    return new_output(kind, data=data, metadata=metadata)


def _inert_nbgrader(meta, index: int) -> dict:
    if not isinstance(meta, dict):
        return {}
    clean = {k: bool(meta[k]) for k in ("grade", "solution", "locked", "task") if k in meta}
    grade_id = meta.get("grade_id")
    if grade_id is not None:
        clean["grade_id"] = grade_id if isinstance(grade_id, str) and SAFE_NAME.fullmatch(grade_id) else f"cell-{index}"
    for key in ("points", "schema_version"):
        if isinstance(meta.get(key), (int, float)) and not isinstance(meta.get(key), bool):
            clean[key] = meta[key]
    if isinstance(meta.get("checksum"), str) and re.fullmatch(r"[0-9a-f]{1,128}", meta["checksum"]):
        clean["checksum"] = meta["checksum"]
    return clean


class InertStudentContent(_Enabled):
    """Make everything the student's notebook and code put into the page inert (see the module docstring)."""

    def preprocess(self, nb, resources):
        from nbformat import NotebookNode

        nb.metadata = NotebookNode({k: nb.metadata[k] for k in ("kernelspec", "language_info")
                                    if isinstance(nb.metadata.get(k), dict)})
        for index, cell in enumerate(nb.cells):
            meta = {"nbgrader": _inert_nbgrader(cell.metadata.get("nbgrader"), index)}
            cell.metadata = NotebookNode({k: v for k, v in meta.items() if v})
            if "id" in cell and not (isinstance(cell.id, str) and SAFE_NAME.fullmatch(cell.id)):
                cell.id = f"cell-{index}"
            cell.pop("attachments", None)
            if cell.cell_type == "code":
                outputs = [_inert_output(o) for o in cell.get("outputs", []) if isinstance(o, dict)]
                cell.outputs = [o for o in outputs if o is not None]
                if not isinstance(cell.get("execution_count"), int):
                    cell.execution_count = None
            elif cell.cell_type == "markdown":
                # sanitized HTML on one line: markdown passes an HTML block through as it is
                cell.source = "<div>" + _markdown_html(_text(cell.source) or "").replace("\n", "&#10;") + "</div>"
            else:  # raw cells: not rendered
                cell.source = ""
        return nb, resources


def _markdown_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)


@dataclass
class Feedback:
    """Where each student's feedback was written, and the students whose feedback failed."""

    files: dict[str, list[Path]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def instructor_secrets(course: Course, assignment: str) -> list[str]:
    """The lines of the instructor notebooks' solution and hidden-test regions."""
    import nbformat

    lines = []
    for name in course.source_notebooks(assignment):
        path = course.folder("source_directory", ".", assignment) / f"{name}.ipynb"
        for cell in nbformat.read(path, as_version=4).cells:
            source = cell.source.split("\n")
            for begin, end in [("BEGIN SOLUTION", "END SOLUTION"), (BEGIN_HIDDEN, END_HIDDEN)]:
                for start, stop in hidden_regions(cell.source, begin, end):
                    lines += [line.strip() for line in source[start : stop - 1]]
    return sorted({line for line in lines if len(line) >= MIN_REDACTED_LINE})


def feedback_config(course: Course, notes: dict[str, list[str]], secret_lines: list[str]):
    """The course's config, plus our preprocessors in front of GenerateFeedback's defaults."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades
    from traitlets.config import Config

    config = Config()
    config.merge(course.config)
    extra = Config()
    extra.GenerateFeedback.preprocessors = [
        # ShortenTestTracebacks must see the hidden regions to say which kind of test failed: before clearing;
        # InertStudentContent after them (it sees what they kept), and before our own notes
        RedactHiddenTests, ShortenTestTracebacks, TolerantClearHiddenTests, InertStudentContent, GraderNotes,
        GetGrades, CSSHTMLHeaderPreprocessor,  # nbgrader's defaults, in its order
    ]
    extra.ClearHiddenTests.enforce_metadata = False
    extra.GraderNotes.notes = notes
    extra.RedactHiddenTests.secret_lines = secret_lines
    extra.HTMLExporter.skip_svg_encoding = False  # SVG as <img src="data:...">: its scripts never run
    config.merge(extra)
    return config


class FeedbackWriter:
    """Writes one student's feedback at a time, as soon as their outcome is known.

    Built once per run (the course config, the instructor's secret lines and
    nbgrader's API), then :meth:`write` per outcome. nbgrader's API is not
    made for concurrent calls: use one writer from one thread.
    """

    def __init__(self, course_root: Path, assignment: str):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        self.course = Course.open(course_root)
        self.assignment = assignment
        self.notebooks = self.course.source_notebooks(assignment)
        config = feedback_config(self.course, {}, instructor_secrets(self.course, assignment))
        # every GenerateFeedback app the API starts reads this dict: one student's notes at a time
        self._notes = config.GraderNotes.notes
        # nbgrader builds feedback from the whole autograded folder (and copies every other file in it
        # to feedback/): it gets a private folder holding the graded notebooks only
        self._staging = Path(tempfile.mkdtemp(prefix="regcourse-feedback-"))
        weakref.finalize(self, shutil.rmtree, self._staging, True)
        coursedir = CourseDirectory(config=config, root=str(self.course.root))
        coursedir.autograded_directory = str(self._staging)  # absolute: format_path's join drops the root
        self._api = NbGraderAPI(coursedir=coursedir, config=config)
        self.result = Feedback()

    def _stage(self, student: str, autograded: Path) -> bool:
        """Copy the graded notebooks (regular files, never through a link) to the private folder."""
        shutil.rmtree(self._staging / student, ignore_errors=True)
        target = self._staging / student / self.assignment
        target.mkdir(parents=True)
        staged = False
        for name in self.notebooks:
            try:
                fd = os.open(autograded / f"{name}.ipynb", os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as source:
                if stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                    (target / f"{name}.ipynb").write_bytes(source.read())
                    staged = True
        return staged

    def write(self, outcome: Outcome) -> None:
        course, assignment = self.course, self.assignment
        folder = course.folder("feedback_directory", outcome.student, assignment)
        autograded = course.folder("autograded_directory", outcome.student, assignment)
        self._notes.clear()
        if outcome.messages:
            self._notes[outcome.student] = list(outcome.messages)
        if outcome.status is not Status.FAILED_TO_RUN and autograded.is_dir() and self._stage(outcome.student, autograded):
            try:
                answer = self._api.generate_feedback(assignment, outcome.student, force=True)
            finally:
                shutil.rmtree(self._staging / outcome.student, ignore_errors=True)
            if answer["success"]:
                self.result.files[outcome.student] = sorted(folder.glob("*.html"))
                return
            self.result.problems.append(
                f"{outcome.student}: nbgrader generate_feedback failed; a note page was written instead. "
                f"{_last_line(answer.get('error') or answer.get('log', ''))}"
            )
        self.result.files[outcome.student] = _write_note_page(folder, assignment, self.notebooks, outcome)


class BackgroundFeedback:
    """A :class:`FeedbackWriter` on its own thread, fed outcomes while grading goes on.

    Grading keeps the cores busy in child processes; this thread (in the
    grader's own, otherwise idle process) writes each student's feedback as
    their outcome arrives, so that little is left to do when the last one is
    graded. It starts its imports only when the first outcome arrives: before
    that the cores are better spent starting the fork server. :meth:`finish`
    waits for the queue, and raises what the writer raised.

    nbgrader's converters ``chdir`` into the course folder while they run, for
    the whole process: the engine's threads use absolute paths only.
    """

    def __init__(self, course_root: Path, assignment: str, meanwhile: Callable[[], None] | None = None):
        """``meanwhile``: run on this thread once it has started, e.g. imports needed after grading."""
        import queue
        import threading

        self._meanwhile = meanwhile
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._writer: FeedbackWriter | None = None
        self._thread = threading.Thread(target=self._run, args=(course_root, assignment), name="feedback", daemon=True)
        self._thread.start()

    def submit(self, outcome: Outcome) -> None:
        self._queue.put(outcome)

    def finish(self) -> Feedback:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._writer.result if self._writer is not None else Feedback()

    def _run(self, course_root: Path, assignment: str) -> None:
        try:
            first = self._queue.get()  # start-up is the critical path: wait for the first outcome
            if first is None:
                return
            self._writer = FeedbackWriter(course_root, assignment)
            if self._meanwhile is not None:
                self._meanwhile()

            outcome = first
            while outcome is not None:
                self._writer.write(outcome)
                outcome = self._queue.get()
        except BaseException as error:  # noqa: BLE001 (handed to finish(), in the caller's thread)
            self._error = error


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


NOTE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p>Score: {score:g} / {max_score:g}</p>
<p>Your submission could not be graded:</p>
<ul>
{items}
</ul>
<p>Ask your instructor if you think this is wrong.</p>
</body></html>
"""


def _write_note_page(folder: Path, assignment: str, notebooks: list[str], outcome: Outcome) -> list[Path]:
    """For a submission nbgrader could not grade (no readable notebook): the reason, as a page."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = outcome.messages or ["the notebook could not be run by the grader"]
    page = NOTE_PAGE.format(
        title=html.escape(f"{assignment}: feedback for {outcome.student}"),
        score=outcome.score, max_score=outcome.max_score,
        items="\n".join(f"<li>{html.escape(line)}</li>" for line in lines),
    )
    paths = []
    for name in notebooks:
        path = folder / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        paths.append(path)
    return paths
