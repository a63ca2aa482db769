"""Caps on what a kernel sends back (issue 10): every output type, and comm messages, are bounded.

Student code controls every message its kernel sends: a huge ``execute_result``
or ``error``, or an endless stream of comm (widget) messages, would otherwise
pile up in the grader's own process (nbclient keeps widget state and writes
it into the graded notebook, where the feedback page would run it). These
drive ``GuardedExecute`` with hand-made messages: no kernel, milliseconds.
"""

from __future__ import annotations

import json

from regcourse.grading.preprocessors import GuardedExecute

BUDGET = 1000
HUGE = 5_000_000


def _message(msg_type: str, content: dict) -> dict:
    return {"msg_type": msg_type, "content": content, "header": {"msg_type": msg_type, "msg_id": "x"},
            "parent_header": {"msg_id": "cell"}, "metadata": {}, "buffers": []}


def _executor() -> GuardedExecute:
    executor = GuardedExecute(output_bytes=BUDGET)
    executor.reset_execution_trackers()
    executor.clear_before_next_output = False
    executor.reset_output_trackers()
    return executor


def test_streams_and_displays_are_capped():  # what GuardedExecute already did before issue 10
    executor, outs = _executor(), []
    executor.output(outs, _message("stream", {"name": "stdout", "text": "x" * HUGE}), None, 0)
    executor.output(outs, _message("display_data", {"data": {"text/plain": "y" * HUGE}, "metadata": {}}), None, 0)
    assert len(json.dumps(outs)) < 10 * BUDGET


def test_execute_results_errors_and_comm_messages_are_capped():
    executor, outs = _executor(), []
    executor.output(outs, _message("execute_result", {"data": {"text/plain": "x" * HUGE}, "metadata": {},
                                                      "execution_count": 1}), None, 0)
    executor.output(outs, _message("error", {"ename": "E" * HUGE, "evalue": "y" * HUGE,
                                             "traceback": ["z" * HUGE] * 3}), None, 0)
    assert len(json.dumps(outs)) < 10 * BUDGET
    assert [o["output_type"] for o in outs if o["output_type"] == "error"] == ["error"]  # a failing test still fails
    big_state = {"_model_name": "HTMLModel", "_model_module": "@jupyter-widgets/controls",
                 "_model_module_version": "2.0.0", "value": "v" * HUGE}
    executor.handle_comm_msg(outs, _message("comm_open", {"comm_id": "a", "target_name": "jupyter.widget",
                                                          "data": {"state": big_state, "buffer_paths": []}}), 0)
    executor.handle_comm_msg(outs, _message("comm_open", {"comm_id": "b", "target_name": "jupyter.widget",
                                                          "data": {"state": {}}}), 0)  # malformed: must not raise
    executor.handle_comm_msg(outs, _message("comm_msg", {"comm_id": "a", "data": {"state": big_state}}), 0)
    assert not executor.widget_state and not executor.widget_buffers and not executor.comm_objects
    assert executor.store_widget_state is False
