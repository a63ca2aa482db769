"""The mechanisms that make `regcourse grade` fast (issue 4); the times are in benchmarks/grading_speedup.py.

Each test pins down one mechanism, so that an upgrade of nbclient,
jupyter_client or nbformat that silently disables it fails here instead of
only making the benchmark slower.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from regcourse.grading import autograde_job
from regcourse.grading.feedback import BackgroundFeedback
from regcourse.grading.kernel_client import PromptKernelClient
from regcourse.grading.model import Outcome, Status
from regcourse.grading.preprocessors import GuardedExecute

WARM_UP_PROBE = """
import json, threading
import fastjsonschema, nbformat
from regcourse.grading import autograde_job
autograde_job.warm_up()
threads = threading.active_count()

def no_compiling(*args, **kwargs):
    raise AssertionError("a validator was compiled after warm_up")

fastjsonschema.compile = no_compiling
nbformat.validate(nbformat.v4.new_notebook())  # as nbgrader does, for every notebook it reads
nbformat.reads(nbformat.writes(nbformat.v4.new_notebook()), as_version=4)

import sys
from nbgrader.api import Base
print(json.dumps({
    "threads": threads,
    "ipython": "IPython" in sys.modules,
    "mappers_configured": all(m.configured for m in Base.registry.mappers),
}))
"""


def test_warm_up_does_the_first_use_work_once_and_stays_fork_safe():
    """What the fork server pays once instead of every child: and no thread that fork() would break."""
    result = subprocess.run([sys.executable, "-c", WARM_UP_PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe == {"threads": 1, "ipython": True, "mappers_configured": True}


def test_the_prompt_client_starts_kernels_that_run_cells_normally():
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("print('hello')"), nbformat.v4.new_code_cell("6 * 7")]
    client = NotebookClient(nb, kernel_name="python3", timeout=60)
    client.km = client.create_kernel_manager()
    client.km.client_factory = PromptKernelClient
    client.execute()
    assert nb.cells[0].outputs[0]["text"] == "hello\n"
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "42"


def test_the_prompt_client_puts_the_channel_back_after_the_readiness_check():
    from jupyter_client.manager import AsyncKernelManager
    import asyncio

    async def start_and_check():
        km = AsyncKernelManager(kernel_name="python3")
        km.client_factory = PromptKernelClient
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            return "get_msg" in vars(kc.iopub_channel), type(kc).__name__
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    patched_left_behind, name = asyncio.run(start_and_check())
    assert name == "PromptKernelClient" and not patched_left_behind


def test_autograde_uses_the_prompt_client():
    from traitlets.config import Config

    class App:
        config = Config()

        class coursedir:  # noqa: N801 (stands in for nbgrader's CourseDirectory)
            release_directory = "release"

            @staticmethod
            def format_path(*parts):
                return "/".join(parts)

        class log:  # noqa: N801
            warning = staticmethod(print)

    spec = {"events": "", "assignment": "a", "skip": "", "cell_timeout": 5, "notebook_timeout": 60,
            "output_bytes": 1000, "iopub_timeout": 10, "kernel_name": "python3"}
    autograde_job.configure(App, spec)
    assert App.config.AsyncKernelManager.client_factory is PromptKernelClient


def test_guarded_execute_overrides_what_nbclient_still_calls():
    """The dead-kernel poll is nbclient's private method: fail loudly if nbclient stops calling it."""
    assert "_async_poll_kernel_alive" in vars(GuardedExecute)
    assert "self._async_poll_kernel_alive()" in inspect.getsource(NotebookClient.async_execute_cell)
    assert GuardedExecute().kernel_alive_poll_s < 1.0  # nbclient's own poll is every second
    assert GuardedExecute().shutdown_kernel == "immediate"


def test_background_feedback_hands_the_writers_error_to_the_caller(tmp_path):
    """An error on the feedback thread must fail the run where the caller can see it, never vanish."""
    writer = BackgroundFeedback(tmp_path / "no-course", "a1", meanwhile=lambda: None)
    writer.submit(Outcome("s1", "a1", Status.GRADED))
    with pytest.raises(Exception, match="no-course"):
        writer.finish()


def test_background_feedback_with_nothing_graded_finishes_at_once(tmp_path):
    writer = BackgroundFeedback(tmp_path / "unused", "a1")
    assert writer.finish().files == {}
