"""The grader's kernel client: jupyter_client's, quicker to call a fresh kernel ready.

jupyter_client's readiness check ends by draining the kernel's IOPub channel
until nothing has arrived for 0.2 s. That is 0.2 s of idle waiting at every
submission, a tenth of grading a small notebook, and with several graders on
a machine it is time a core sits unused. nbclient matches every IOPub
message to the request that caused it, so a start-up message arriving late is
ignored anyway; here IOPub counts as quiet after ``IOPUB_QUIET_S``.

Used through ``AsyncKernelManager.client_factory`` (see ``autograde_job.configure``).
"""

from __future__ import annotations

from jupyter_client.asynchronous import AsyncKernelClient

#: How long IOPub must stay silent, during the readiness check, to count as drained.
IOPUB_QUIET_S = 0.01


class PromptKernelClient(AsyncKernelClient):
    """An ``AsyncKernelClient`` whose ``wait_for_ready`` drains IOPub in ``IOPUB_QUIET_S``, not 0.2 s."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        channel = self.iopub_channel
        get_msg = channel.get_msg
        connected = False  # the first IOPub message proves the channel works; then comes the drain

        async def get_msg_then_drain_quickly(timeout: float | None = None):
            nonlocal connected
            if connected and timeout is not None:
                timeout = min(timeout, IOPUB_QUIET_S)
            message = await get_msg(timeout=timeout)
            connected = True
            return message

        channel.get_msg = get_msg_then_drain_quickly  # for the readiness check only
        try:
            await super().wait_for_ready(timeout)
        finally:
            del channel.get_msg
