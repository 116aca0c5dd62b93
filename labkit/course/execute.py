"""The grading kernel's fences: a memory ceiling, and a notebook run that survives a dead kernel.

nbgrader runs each submission in a Jupyter kernel with the instructor's privileges; it does not
sandbox it. Two things a submission can do would otherwise cost far more than its own points:

1. **Eat the machine's memory.** ``LimitedKernelManager`` starts the kernel under an address-space
   limit (``RLIMIT_AS``, set by a tiny exec wrapper before the kernel's first instruction, so
   every child inherits it). A fill-in that allocates past it gets a ``MemoryError`` in its own
   cell instead of dragging the grader (and the other students) into the kernel's OOM killer.
   Worked number: the hw4 kernels peak at about 1.6 GB of *virtual* memory (torch imported,
   ~0.3 GB resident), so the course's 6 GB ceiling leaves room for honest work and stops a
   ``np.ones(10**9)`` (8 GB) at once.
2. **Kill the kernel** (``os._exit``, a segfault through ctypes, the OOM killer). Plain nbgrader
   then aborts the notebook: no outputs, no grades saved for it, an error at the end of the run.
   ``ResilientExecute`` (nbgrader's ``Execute`` plus recovery) instead writes a ``KernelDied``
   error into the cell that was running — that cell scores 0 — starts a fresh kernel, replays the
   cells above it (outputs discarded; cells that timed out or killed the kernel are not replayed)
   and goes on. A student who crashes one fill-in loses that fill-in's points only. After
   ``max_kernel_deaths`` deaths in one notebook, the remaining cells are marked not run.

Enable both in ``nbgrader_config.py``::

    from labkit.course.execute import ResilientExecute
    c.Autograde.autograde_preprocessors = [ResilientExecute, *rest of nbgrader's list]
    c.LimitedKernelManager.memory_limit_mb = 6144

Limits, stated: ``RLIMIT_AS`` is per process (a student who forks many processes multiplies it);
it is Linux/macOS only (ignored on Windows); no CPU, disk, network or file-system isolation — a
submission can still read and write whatever the grader's user can. For that, run the grader in a
container or as an unprivileged user.
"""

from __future__ import annotations

import copy
import sys

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from traitlets import Integer

from nbgrader.preprocessors import Execute

# Runs before the kernel: set the ceiling, then become the kernel (exec keeps the pid).
_WRAPPER = ("import os, resource, sys\n"
            "lim = int(sys.argv[1]) * 2**20\n"
            "if lim > 0:\n"
            "    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))\n"
            "os.execv(sys.argv[2], sys.argv[2:])\n")


def limited_command(cmd: list[str], memory_limit_mb: int) -> list[str]:
    """``cmd`` wrapped so that it runs under an address-space limit of ``memory_limit_mb`` MiB
    (0: no limit). ``cmd[0]`` must be an absolute path or found on PATH by the caller."""
    if memory_limit_mb <= 0 or sys.platform.startswith("win"):
        return list(cmd)
    return [sys.executable, "-c", _WRAPPER, str(int(memory_limit_mb)), *cmd]


class LimitedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels run under ``memory_limit_mb`` of address space."""

    memory_limit_mb = Integer(6144, help="Address-space limit of each kernel in MiB (0: none).").tag(config=True)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        import shutil

        exe = kernel_cmd[0] if "/" in kernel_cmd[0] else (shutil.which(kernel_cmd[0]) or kernel_cmd[0])
        await super()._async_launch_kernel(limited_command([exe, *kernel_cmd[1:]], self.memory_limit_mb), **kw)


def _error_output(ename: str, text: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=text,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {text}"])


class ResilientExecute(Execute):
    """nbgrader's ``Execute`` with a memory-limited kernel and recovery from a dead kernel."""

    max_kernel_deaths = Integer(3, help="Kernel deaths tolerated per notebook before the rest is "
                                        "marked not run.").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)
        self._deaths = 0
        self._replaying = False
        self._skip_replay: set[int] = set()

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self._deaths = 0
        self._skip_replay = set()

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if self._replaying:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if self._deaths > self.max_kernel_deaths:
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [_error_output("NotRun", "not run: the kernel died too often in this notebook")]
            return cell
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except (DeadKernelError, RuntimeError) as exc:
            if not isinstance(exc, DeadKernelError) and "died" not in str(exc).lower():
                raise
            self._deaths += 1
            self._skip_replay.add(cell_index)
            self.log.warning("kernel died in cell %d (%s); restarting and replaying the cells above", cell_index, exc)
            cell.outputs = list(cell.get("outputs", [])) + [_error_output(
                "KernelDied", "the kernel died while running this cell (os._exit, a crash, or the memory "
                "limit): this cell scores 0. The grader restarted the kernel, re-ran the cells above and "
                "went on with the rest of the notebook.")]
            self.nb.cells[cell_index] = cell
            if self._deaths <= self.max_kernel_deaths:
                await self._restart_and_replay(cell_index)
            return cell
        if any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            self._skip_replay.add(cell_index)
        return cell

    async def _restart_and_replay(self, upto: int) -> None:
        await self._async_cleanup_kernel()
        self.km = self.create_kernel_manager()
        await self.async_start_new_kernel()
        await self.async_start_new_kernel_client()
        self._replaying = True
        try:
            for index in range(upto):
                original = self.nb.cells[index]
                if index in self._skip_replay or original.cell_type != "code":
                    continue
                try:
                    await super().async_execute_cell(copy.deepcopy(original), index, store_history=False)
                except Exception as exc:  # a replayed cell failing again: its own outputs already say so
                    self.log.warning("replaying cell %d failed: %s", index, exc)
                finally:
                    self.nb.cells[index] = original
        finally:
            self._replaying = False

    # nbconvert's ExecutePreprocessor calls the sync wrapper, bound to nbclient's coroutine: rebind.
    execute_cell = run_sync(async_execute_cell)
