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
  attempt) get an error output instead of running. Every test cell is scored
  by the judge (``regcourse.grading.judge``), here, outside the kernel: its
  record is taken from the cell's outputs and compared with the reference
  record, and the cell's outputs are replaced by the verdict (the kernel's own
  outputs kept as inert text). Nothing in the kernel is trusted, so nothing
  there is guarded; after the last cell the kernel is asked which course files
  its code tried to read (``kernel_reads``), for the report.
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

from regcourse.grading import judge

#: The names under which the read watch is reached from a user expression.
_READS = "__import__('regcourse.grading.kernel_reads').grading.kernel_reads"
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
    watch_reads = Bool(True, help="report the course files student code tried to read").tag(config=True)
    sandbox_uid = Integer(-1, help="uid the kernel ran as (-1: the grader's); its folder is reclaimed after").tag(config=True)
    # Once the last cell's outputs are in, nothing the kernel does matters:
    # kill it rather than wait (nbclient's default) for a polite exit.
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate").tag(config=True)
    kernel_alive_poll_s = Float(0.1, help="how often a dead kernel is looked for while a cell runs").tag(config=True)
    references_path = Unicode("", help="JSON of the reference records (judge.reference_records); empty: no judge").tag(config=True)
    # Widget state is the student's HTML and script, and nbclient would keep it all in this
    # process and write it into the graded notebook: a graded notebook holds no widgets.
    store_widget_state = Bool(False).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._skip = {}
        if self.skip_path and Path(self.skip_path).exists():
            self._skip = {int(k): v for k, v in json.loads(Path(self.skip_path).read_text()).items()}
        self._deadline = None  # the clock starts at the first cell: kernel start-up is not the student's
        self.reset_output_trackers()
        self.timeout_func = self._cell_timeout
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        self._last_code_cell = code[-1] if code else -1
        self._references = json.loads(Path(self.references_path).read_text()) if self.references_path else {}
        self._assignment = (resources or {}).get("nbgrader", {}).get("assignment")
        path = (resources or {}).get("metadata", {}).get("path")
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if path:  # before nbgrader writes there: see sandbox.reclaim
                from regcourse.grading.sandbox import reclaim

                reclaim(Path(path), self.sandbox_uid)

    def reset_output_trackers(self) -> None:
        """Forget what earlier notebooks sent: budgets and error flags are per notebook."""
        self._output_sizes: dict[int, int] = {}
        self._truncated: set[tuple[int, str]] = set()
        self._error_messages: set[int] = set()  # cells whose kernel published an error message

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
        if self._suppressed_error(cell, index):  # the reply said it failed, its error message never came
            record_event(self.events_path, kind="errors-suppressed", index=index, cell=_grade_id(cell))
        if any(i == index for i, _ in self._truncated):
            record_event(self.events_path, kind="truncated", index=index, cell=_grade_id(cell))
        if is_test_cell(cell) and _grade_id(cell) in self._references:
            self._judge(cell, index)
        if self.watch_reads and index == self._last_code_cell:  # after the last cell: every read was made
            self._report_reads(index, _grade_id(cell))
        return cell, resources

    def _suppressed_error(self, cell, index: int) -> bool:
        """An error output that nbgrader made from the execute reply, although the kernel sent no error message.

        nbgrader adds the reply's error when no output matches it (so the cell
        still fails); apart from timeouts, that only happens when something in
        the kernel kept its error messages from being sent.
        """
        timeouts = {"CellTimeoutError", self.error_on_timeout.get("ename") if self.error_on_timeout else None}
        return index not in self._error_messages and any(
            o.get("output_type") == "error" and o.get("ename") not in timeouts for o in cell.outputs)

    def _stop(self, cell, index, reason, resources, kind="stopped"):
        """Give ``cell`` an error output instead of running it: it scores zero, the rest goes on."""
        message = f"{reason}: this cell was stopped by the grader"
        cell.outputs = [
            NotebookNode(output_type="error", ename=STOPPED_ENAME, evalue=message, traceback=[f"{STOPPED_ENAME}: {message}"])
        ]
        cell.execution_count = None
        record_event(self.events_path, kind=kind, index=index, cell=_grade_id(cell), reason=reason, skipped=True)
        return cell, resources

    def _report_reads(self, index: int, cell_name: str | None = None) -> None:
        """Ask the kernel (through user_expressions, outside the student's cells) which course files were read."""
        expression = f"{_READS}.reads()"
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
            record_event(self.events_path, kind="reads-unknown", index=index, cell=cell_name)
            return
        if result.get("reads"):
            record_event(self.events_path, kind="reads", index=index, cell=cell_name, paths=result["reads"])

    # -- the judge ----------------------------------------------------------
    def _judge(self, cell, index: int) -> None:
        """Score a test cell by the judge's verdict on its record; nothing the kernel said counts.

        A cell that raised, or wrote to stderr, scores zero, as under stock
        nbgrader (its last error and its stderr are kept). Otherwise it must hold exactly one record, for this
        assignment and cell, published by its hidden tests. Its other outputs
        become plain text (what the visible tests printed stays readable in
        the feedback, but no stderr or ``execute_result`` of the kernel's
        reaches nbgrader's scoring); then one error output carries the
        judge's failures, or none when there are none: nbgrader scores exactly that.
        """
        started = time.perf_counter()
        name = _grade_id(cell)
        records = [o for o in cell.outputs if o.get("output_type") == "display_data" and judge.RECORD_MIME in o.get("data", {})]
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        # as stock nbgrader scores them: stderr in a test cell fails it (honest submissions get the same score)
        stderr = [o for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        rest = [o for o in cell.outputs if not any(o is r for r in records) and o.get("output_type") != "error"
                and not any(o is e for e in stderr)]
        if any(o.get("output_type") in ("execute_result", "display_data") for o in rest):
            # a test cell's code displays nothing: something else published into it
            record_event(self.events_path, kind="injected-output", index=index, cell=name)
        kept = [o for o in map(_as_text, rest) if o is not None]
        payload = records[0]["data"][judge.RECORD_MIME] if len(records) == 1 else None
        if errors or stderr:
            # An error (or stderr) scores zero, as in stock nbgrader, whoever wrote it: it can only lower
            # a score. The hidden tests publish their record as the cell's last act, so a record beside
            # an error was not theirs.
            if records and errors:
                record_event(self.events_path, kind="forged-record", index=index, cell=name, records=len(records))
            record_event(self.events_path, kind="judged", index=index, cell=name, failures=1,
                         seconds=time.perf_counter() - started)
            cell.outputs = kept + stderr + errors[-1:]
            return
        if len(records) > 1 or payload is not None and (
            not isinstance(payload, dict) or payload.get("assignment") != self._assignment or payload.get("cell") != name
        ):
            record_event(self.events_path, kind="forged-record", index=index, cell=name, records=len(records))
            failures = ["the hidden tests' record was tampered with (more than one, or for another cell)"]
        elif payload is None:
            # no record and no error: the hidden tests were skipped or their error swallowed
            record_event(self.events_path, kind="silenced", index=index, cell=name)
            failures = ["the hidden tests did not run to the end (nothing was recorded)"]
        else:
            try:
                result = judge.verdict(self._assignment, name, payload.get("record"), self._references[name])
            except Exception as error:  # a record the judge did not foresee: this cell, not the batch
                record_event(self.events_path, kind="judge-error", index=index, cell=name,
                             error=f"{type(error).__name__}: {error}"[:300])
                result = judge.Verdict({}, {}, ["the grader could not judge what the tests recorded"])
            failures = result.failures
            visible = set(judge.checks_for(self._assignment)[name].visible)
            # (no error was raised: see above); calling a forbidden library function is a choice, not tampering
            if (result.failed_keys - result.off_limits_keys) & visible:
                record_event(self.events_path, kind="visible-subverted", index=index, cell=name)
        record_event(self.events_path, kind="judged", index=index, cell=name, failures=len(failures),
                     seconds=time.perf_counter() - started)
        cell.outputs = kept
        if failures:
            shown = failures[:10] + ([f"... and {len(failures) - 10} more"] if len(failures) > 10 else [])
            cell.outputs.append(NotebookNode(
                output_type="error", ename=judge.HiddenTestFailure.__name__, evalue="\n".join(shown),
                traceback=[f"{judge.HiddenTestFailure.__name__}: hidden tests failed"] + shown,
            ))

    # -- output -------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        """Store output until the cell's budget is spent, then one truncation line per stream.

        Errors and execute results always go through, and so does the fact
        that something went to stderr: nbgrader grades on all three.
        """
        msg_type = msg["msg_type"]
        content = msg["content"]
        if msg_type == "error":
            self._error_messages.add(cell_index)
            return super().output(outs, {**msg, "content": _capped_error(content, self.output_bytes)}, display_id, cell_index)
        if msg_type == "execute_result":
            size = len(json.dumps(content.get("data", {})))
            if size > self.output_bytes:  # still a result (nbgrader reads it), but no longer the student's bytes
                self._truncated.add((cell_index, "execute_result"))  # reported with the cell
                text = str(content.get("data", {}).get("text/plain", ""))[: self.output_bytes // 2]
                note = f"... result truncated by the grader: more than {self.output_bytes} bytes ..."
                content = {**content, "data": {"text/plain": text + note}, "metadata": {}}
                msg = {**msg, "content": content}
            return super().output(outs, msg, display_id, cell_index)
        if msg_type not in ("stream", "display_data", "update_display_data"):
            return super().output(outs, msg, display_id, cell_index)
        if msg_type == "display_data" and judge.RECORD_MIME in content.get("data", {}):
            size = len(json.dumps(content["data"]))
            if size <= judge.MAX_RECORD_BYTES:  # not the student's output: its own budget
                return super().output(outs, msg, display_id, cell_index)
            record_event(self.events_path, kind="record-too-large", index=cell_index, bytes=size)
            return None
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


    def handle_comm_msg(self, outs, msg, cell_index) -> None:
        """Keep nothing of comm (widget) messages: the student's kernel can send them without end."""
        return None


def _capped_error(content: dict, budget: int) -> dict:
    """An error's name, value and traceback cut to ``budget`` bytes in all: it still fails the cell."""
    share = max(64, budget // 4)
    cut = lambda text: text if len(text) <= share else text[:share] + " ... (truncated by the grader)"  # noqa: E731
    traceback, used = [], 0
    for line in content.get("traceback") or []:
        line = cut(str(line))
        if used + len(line) > 2 * share:
            traceback.append("... (traceback truncated by the grader)")
            break
        traceback.append(line)
        used += len(line)
    return {**content, "ename": cut(str(content.get("ename", "Error"))), "evalue": cut(str(content.get("evalue", ""))),
            "traceback": traceback}


def _as_text(output) -> NotebookNode | None:
    """A kernel output of a judged cell as inert stdout text, or None (nothing worth showing)."""
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text", "")
    elif kind == "error":
        text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}\n"
    elif kind in ("execute_result", "display_data"):
        text = output.get("data", {}).get("text/plain", "")
        text = text + "\n" if text else ""
    else:
        text = ""
    return NotebookNode(output_type="stream", name="stdout", text=text) if text else None
