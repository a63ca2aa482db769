"""Submissions that try to forge a grade, one for each way the old in-kernel tests allowed.

Every one of them got full marks, or marks it did not earn, while the hidden
tests' expected values, tolerances and assertions ran in the student's
kernel. Under ``regcourse grade`` the judge decides outside the kernel: each
gets what its own code computes, and is flagged where it tampered.
"""

from __future__ import annotations

from regcourse.grading.model import Status

from . import WRONG_L1, WRONG_L2, Case, Expected, _write, student_notebook

#: Class 1: read the answer instead of computing it. The old hidden test computed ``expected``
#: in the kernel; this looks for it in the callers' frames, and for the judge's reference records.
READS_THE_ANSWER = '''import inspect


def l1_penalty(w, lam):
    for info in inspect.stack()[1:]:
        for scope in (info.frame.f_locals, info.frame.f_globals):
            for name in ("expected", "want", "reference", "target"):
                if isinstance(scope.get(name), (int, float)):
                    return float(scope[name])
    try:
        from regcourse.grading import judge
        reference = judge.reference_records("mini", judge.course_root())["test_l1_penalty"]
        return reference["pair"] if len(w) == 2 else reference["grid"]
    except Exception:
        return -1.0'''

#: Class 2: disarm the checks in the kernel. A tolerance constant (never snapshotted by a guard):
TOLERANCE_CONSTANT = WRONG_L1 + "\n\nchecking.FLOAT32_RTOL = 1e9"
#: A module's class swapped: every identity a guard compares stays the same.
MODULE_CLASS_SWAP = WRONG_L1 + '''

import types


class _Lenient(types.ModuleType):
    def __getattribute__(self, name):
        if name == "relative_error":
            return lambda *args, **kwargs: 0.0
        return super().__getattribute__(name)


checking.__class__ = _Lenient'''
#: An event callback that runs after any guard's check and installs an AST transformer
#: that swallows every exception of the cell.
SWALLOWING_TRANSFORMER = WRONG_L2 + '''

import ast


class _Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])]
        return ast.fix_missing_locations(node)


def _install(info):
    shell = get_ipython()
    if not any(isinstance(t, _Swallow) for t in shell.ast_transformers):
        shell.ast_transformers.append(_Swallow())


get_ipython().events.register("pre_run_cell", _install)'''
#: The kernel's messaging patched: an error never leaves the kernel (the class and the session
#: objects the shell really sends with, and the shell's traceback display).
SILENT_ERRORS = WRONG_L1 + '''

from jupyter_client.session import Session

_send = Session.send


def _send_no_errors(self, stream, msg_or_type, *args, **kwargs):
    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type.get("header", {}).get("msg_type")
    if kind == "error":
        return None
    return _send(self, stream, msg_or_type, *args, **kwargs)


Session.send = _send_no_errors
_shell = get_ipython()
for _session in {id(s): s for s in (_shell.kernel.session, _shell.displayhook.session, _shell.display_pub.session)}.values():
    _session.send = _send_no_errors.__get__(_session)
_shell._showtraceback = lambda *args, **kwargs: None'''
#: Class 3: nbgrader's partial-credit rule. An ``execute_result`` published into a test cell
#: before its failure reads as that many points.
EXECUTE_RESULT_CLAIM = WRONG_L1 + '''


def _claim_full_marks(info):
    get_ipython().displayhook(2)


get_ipython().events.register("pre_run_cell", _claim_full_marks)'''
#: Also found: a record of the hidden tests' form, published into the test cell with guessed values.
FORGED_RECORD = WRONG_L1 + '''

from IPython.display import display


def _forge(info):
    if "test_l1_penalty" in info.raw_cell:
        record = {"assignment": "mini", "cell": "test_l1_penalty", "record": {"pair": 1.5, "grid": 1.0}}
        display({"application/vnd.regcourse.record+json": record}, raw=True)


get_ipython().events.register("pre_run_cell", _forge)'''

#: l2_norm right (1 point), l1_penalty wrong (0 of 2).
_L1_LOST = {"test_l2_norm": 1.0, "test_l1_penalty": 0.0}

JUDGE_CASES: list[Case] = [
    Case("reads_the_answer", "l1_penalty returns the expected value it finds in its callers' frames or in the "
         "judge's reference records: there is none to find",
         _write(lambda c: student_notebook(c, l1_penalty=READS_THE_ANSWER)),
         Expected(Status.GRADED, 1.0, _L1_LOST)),
    Case("tolerance_constant", "wrong l1_penalty, and the tolerance constant raised to 1e9",
         _write(lambda c: student_notebook(c, l1_penalty=TOLERANCE_CONSTANT)),
         Expected(Status.GRADED, 1.0, _L1_LOST, flagged=True, flag_words=("tampering", "test_l1_penalty"))),
    Case("module_class_swap", "wrong l1_penalty, and the checking module's class swapped for a lenient one",
         _write(lambda c: student_notebook(c, l1_penalty=MODULE_CLASS_SWAP)),
         Expected(Status.GRADED, 1.0, _L1_LOST, flagged=True, flag_words=("tampering", "test_l1_penalty"))),
    Case("swallowing_transformer", "wrong l2_norm, and an AST transformer (installed by an event callback) "
         "that swallows every exception",
         _write(lambda c: student_notebook(c, l2_norm=SWALLOWING_TRANSFORMER)),
         Expected(Status.GRADED, 2.0, {"test_l2_norm": 0.0, "test_l1_penalty": 2.0}, flagged=True,
                  flag_words=("vanished", "test_l2_norm"))),
    Case("silent_errors", "wrong l1_penalty, and the kernel's Session.send patched to drop error messages",
         _write(lambda c: student_notebook(c, l1_penalty=SILENT_ERRORS)),
         Expected(Status.GRADED, 1.0, _L1_LOST, flagged=True, flag_words=("tampering", "test_l1_penalty"))),
    Case("execute_result_claim", "wrong l1_penalty, and an execute_result of 2 published into every cell "
         "(nbgrader's partial-credit rule would read it as 2 points)",
         _write(lambda c: student_notebook(c, l1_penalty=EXECUTE_RESULT_CLAIM)),
         Expected(Status.GRADED, 1.0, _L1_LOST, flagged=True, flag_words=("injected",))),
    Case("forged_record", "wrong l1_penalty, and a record of the hidden tests' form published into the test "
         "cell with guessed values",
         _write(lambda c: student_notebook(c, l1_penalty=FORGED_RECORD)),
         Expected(Status.GRADED, 1.0, _L1_LOST, flagged=True, flag_words=("forged", "test_l1_penalty"))),
]
