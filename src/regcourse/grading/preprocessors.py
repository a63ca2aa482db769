"""The two nbgrader preprocessors the engine swaps in: each subclasses a stock one and adds to it.

They run inside the ``nbgrader autograde`` process of one submission (see
``autograde_job``) and report what they saw as JSON lines in an *events* file
that the engine reads afterwards; nbgrader's own behaviour is otherwise kept.

- :class:`ReportingOverwriteCells` (replaces ``OverwriteCells``): nbgrader
  already restores locked cells whose checksum changed; this also records each
  such edit, puts back deleted test cells (``add_missing_cells``) and test
  cells moved out of order, and records those too.
- :class:`GuardedExecute` (replaces ``Execute``): per-cell and per-notebook time
  limits, a cap on stored output while it arrives, cells the engine asked to
  skip (they ran out of memory, killed the kernel, or hung in an earlier
  attempt) get an error output instead of running, and before every test cell
  the kernel's checking helpers are restored (see ``kernel_guard``).
"""

from __future__ import annotations

import ast
import asyncio
import json
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, OverwriteCells
from traitlets import Bool, Enum, Float, Integer, Unicode

#: The names under which the guard module is reached from a user expression.
_GUARD = "__import__('regcourse.grading.kernel_guard').grading.kernel_guard"
#: What a cell stopped by the grader shows, and why it scores zero (nbgrader
#: gives zero to a test cell with an error output).
STOPPED_ENAME = "GraderStoppedCell"


def record_event(path: str, **event) -> None:
    """Append one JSON line to the events file (no-op when the engine gave none)."""
    if not path:
        return
    event.setdefault("time", time.time())
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(event) + "\n")


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_test_cell(cell) -> bool:
    """An autograded test: a grade cell that is not the student's answer."""
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


class ReportingOverwriteCells(OverwriteCells):
    """nbgrader's ``OverwriteCells`` that also restores deleted or reordered cells and reports edits."""

    events_path = Unicode("", help="JSON-lines file for the engine's report").tag(config=True)

    released_path = Unicode("", help="the released notebook, to tell edits from restored hidden tests").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources):
        notebook_id = resources["nbgrader"]["notebook"]
        assignment_id = resources["nbgrader"]["assignment"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            order = [c.name for c in gb.find_notebook(notebook_id, assignment_id).source_cells]
        self._restore_order(nb, order)
        self._report_edits(nb, notebook_id)
        return super().preprocess(nb, resources)

    def _report_edits(self, nb: NotebookNode, notebook_id: str) -> None:
        """Record locked cells whose source differs from the released exercise.

        nbgrader's own checksum check cannot tell: a test cell with hidden
        tests always differs from the gradebook's copy, which has them.
        """
        path = Path(self.released_path.format(notebook_id=notebook_id)) if self.released_path else None
        if path is None or not path.is_file():
            return
        released = {_grade_id(c): c.source for c in nbformat.read(path, as_version=4).cells if _grade_id(c)}
        for cell in nb.cells:
            name = _grade_id(cell)
            if name in released and utils.is_locked(cell) and cell.source.strip() != released[name].strip():
                record_event(self.events_path, kind="edited", cell=name)

    def _restore_order(self, nb: NotebookNode, order: list[str]) -> None:
        rank = {name: i for i, name in enumerate(order)}
        positions = [i for i, cell in enumerate(nb.cells) if _grade_id(cell) in rank]
        present = [nb.cells[i] for i in positions]
        wanted = sorted(present, key=lambda cell: rank[_grade_id(cell)])
        if [_grade_id(c) for c in present] != [_grade_id(c) for c in wanted]:
            moved = [_grade_id(a) for a, b in zip(present, wanted) if a is not b]
            record_event(self.events_path, kind="reordered", cells=moved)
            for i, cell in zip(positions, wanted):
                nb.cells[i] = cell

    def report_change(self, name, attr, old, new) -> None:
        super().report_change(name, attr, old, new)
        if attr != "checksum":  # see _report_edits
            record_event(self.events_path, kind="changed", cell=name, attr=attr, old=str(old), new=str(new))

    def add_missing_grade_cells(self, nb: NotebookNode, resources):
        """Put each deleted grade cell, and each deleted locked cell (the instructor's
        set-up code, which the tests need), back after the nearest earlier cell still present.

        nbgrader's own version restores grade cells only, and fails (KeyError)
        when the previous cell is a locked non-grade one.
        """
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = list(source_nb.source_cells)
        names = [c.name for c in source_cells]
        grade_cells = {c.name: c for c in source_nb.grade_cells}
        solution_ids = {c.name for c in source_nb.solution_cells}
        for source in source_cells:
            name = source.name
            present = {_grade_id(c): i for i, c in enumerate(nb.cells) if _grade_id(c)}
            if name in present or not (name in grade_cells or source.locked):
                continue
            record_event(self.events_path, kind="deleted", cell=name, test=name in grade_cells)
            if name in grade_cells:
                cell = self.missing_cell_transform(source, grade_cells[name].max_score, is_solution=name in solution_ids)
            else:
                cell = _locked_cell(source)
            before = [present[n] for n in names[: names.index(name)] if n in present]
            nb.cells.insert(before[-1] + 1 if before else 0, cell)
        return nb, resources


def _locked_cell(source) -> NotebookNode:
    """A locked, ungraded cell rebuilt from the gradebook's copy (nbgrader keeps its source)."""
    meta = {"grade": False, "grade_id": source.name, "locked": True, "schema_version": 3,
            "solution": False, "task": False, "checksum": source.checksum}
    if source.cell_type == "code":
        return nbformat.v4.new_code_cell(source.source, metadata={"editable": False, "deletable": False, "nbgrader": meta})
    return nbformat.v4.new_markdown_cell(source.source, metadata={"editable": False, "deletable": False, "nbgrader": meta})


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` with time, output and integrity guards (see module docstring)."""

    events_path = Unicode("", help="JSON-lines file for the engine's report").tag(config=True)
    skip_path = Unicode("", help="JSON {cell index: reason} of cells not to run").tag(config=True)
    notebook_timeout = Float(0, help="wall-clock seconds for the whole notebook; 0: none").tag(config=True)
    output_bytes = Integer(1024**2, help="stored output per cell; the rest is dropped").tag(config=True)
    guard = Bool(True, help="restore the checking helpers before each test cell").tag(config=True)
    sandbox_uid = Integer(-1, help="uid the kernel ran as (-1: the grader's); its folder is reclaimed after").tag(config=True)
    # Once the last cell's outputs are in, nothing the kernel does matters:
    # kill it rather than wait (nbclient's default) for a polite exit.
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate").tag(config=True)
    kernel_alive_poll_s = Float(0.1, help="how often a dead kernel is looked for while a cell runs").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._skip = {}
        if self.skip_path and Path(self.skip_path).exists():
            self._skip = {int(k): v for k, v in json.loads(Path(self.skip_path).read_text()).items()}
        self._deadline = None  # the clock starts at the first cell: kernel start-up is not the student's
        self._snapshot_taken = False
        self._output_sizes: dict[int, int] = {}
        self._truncated: set[tuple[int, str]] = set()
        self.timeout_func = self._cell_timeout
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        self._last_code_cell = code[-1] if code else -1
        path = (resources or {}).get("metadata", {}).get("path")
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if path:  # before nbgrader writes there: see sandbox.reclaim
                from regcourse.grading.sandbox import reclaim

                reclaim(Path(path), self.sandbox_uid)

    async def _async_poll_kernel_alive(self) -> None:
        """nbclient's check, every ``kernel_alive_poll_s`` instead of every second.

        A kernel killed by its own cell (``os._exit``, a segfault, the memory
        watchdog) is then noticed in a tenth of a second, not up to a second.
        """
        while True:
            await asyncio.sleep(self.kernel_alive_poll_s)
            try:
                await self._async_check_alive()
            except DeadKernelError:
                assert self.task_poll_for_reply is not None
                self.task_poll_for_reply.cancel()
                return

    # -- time ---------------------------------------------------------------
    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _cell_timeout(self, cell) -> int | None:
        remaining = self._remaining()
        if remaining is None:
            return self.timeout
        if self.timeout is None or self.timeout <= 0 or remaining < self.timeout:
            return max(1, int(remaining + 0.999))
        return self.timeout

    # -- cells --------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        if self._deadline is None and self.notebook_timeout > 0:
            self._deadline = time.monotonic() + self.notebook_timeout
        if index in self._skip:
            return self._stop(cell, index, self._skip[index], resources)
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            reason = f"the notebook ran out of its {self.notebook_timeout:g} s time limit before this cell"
            return self._stop(cell, index, reason, resources, kind="deadline")
        if self.guard and not self._snapshot_taken:
            self._snapshot_taken = True
            self._kernel_call("snapshot", index)
        if self.guard and is_test_cell(cell):
            self._kernel_call("check", index, _grade_id(cell))
        record_event(self.events_path, kind="cell", index=index, cell=_grade_id(cell))
        limited_by_notebook = remaining is not None and (not self.timeout or remaining < self.timeout)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            record_event(self.events_path, kind="died", index=index, cell=_grade_id(cell))
            raise
        except CellTimeoutError:
            record_event(self.events_path, kind="unresponsive", index=index, cell=_grade_id(cell))
            raise
        if any(o.get("ename") == "CellTimeoutError" for o in cell.outputs):
            kind = "deadline" if limited_by_notebook else "timeout"
            record_event(self.events_path, kind=kind, index=index, cell=_grade_id(cell))
        if any(i == index for i, _ in self._truncated):
            record_event(self.events_path, kind="truncated", index=index, cell=_grade_id(cell))
        if self.guard and utils.is_locked(cell) and not utils.is_grade(cell):
            self._kernel_call("observe", index)
        if self.guard and index == self._last_code_cell:  # reads after the last test cell
            self._kernel_call("reads", index, _grade_id(cell))
        return cell, resources

    def _stop(self, cell, index, reason, resources, kind="stopped"):
        """Give ``cell`` an error output instead of running it: it scores zero, the rest goes on."""
        message = f"{reason}: this cell was stopped by the grader"
        cell.outputs = [
            NotebookNode(output_type="error", ename=STOPPED_ENAME, evalue=message, traceback=[f"{STOPPED_ENAME}: {message}"])
        ]
        cell.execution_count = None
        record_event(self.events_path, kind=kind, index=index, cell=_grade_id(cell), reason=reason, skipped=True)
        return cell, resources

    def _kernel_call(self, function: str, index: int, cell_name: str | None = None) -> None:
        """Run kernel_guard.<function>() through user_expressions, outside the student's cells."""
        expression = f"{_GUARD}.{function}()"
        msg_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"r": expression})
        reply = self.wait_for_reply(msg_id)
        result = None
        try:
            value = reply["content"]["user_expressions"]["r"]
            if value.get("status") == "ok":
                result = json.loads(ast.literal_eval(value["data"]["text/plain"]))
        except (KeyError, TypeError, ValueError, SyntaxError):
            pass
        if result is None:
            record_event(self.events_path, kind="guard-failed", index=index, cell=cell_name, check=function)
            return
        if result.get("replaced"):
            record_event(self.events_path, kind="tampering", index=index, cell=cell_name, replaced=result["replaced"])
        if result.get("reads"):
            record_event(self.events_path, kind="reads", index=index, cell=cell_name, paths=result["reads"])

    # -- output -------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        """Store output until the cell's budget is spent, then one truncation line per stream.

        Errors and execute results always go through, and so does the fact
        that something went to stderr: nbgrader grades on all three.
        """
        msg_type = msg["msg_type"]
        if msg_type not in ("stream", "display_data", "update_display_data"):
            return super().output(outs, msg, display_id, cell_index)
        content = msg["content"]
        text = content.get("text", "") if msg_type == "stream" else None
        size = len(text) if text is not None else len(json.dumps(content.get("data", {})))
        used = self._output_sizes.get(cell_index, 0)
        self._output_sizes[cell_index] = used + size
        if used + size <= self.output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        name = content.get("name", "stdout") if msg_type == "stream" else "stdout"
        if (cell_index, name) in self._truncated:
            return None
        self._truncated.add((cell_index, name))
        kept = text[: max(0, self.output_bytes - used)] if text else ""
        note = f"\n... output truncated by the grader: more than {self.output_bytes} bytes ...\n"
        outs.append(NotebookNode(output_type="stream", name=name, text=kept + note))
        return None
