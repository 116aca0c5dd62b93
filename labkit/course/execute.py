"""The grading kernel: sandboxed, limited, and a notebook run that survives a dead or hung kernel.

nbgrader runs each submission in a Jupyter kernel with the instructor's privileges. Here:

1. **Sandbox.** ``LimitedKernelManager`` starts the kernel inside bubblewrap
   (``labkit.course.sandbox``): it sees a read-only Python environment, a private size-limited
   working directory holding a copy of the student's own files, a private ``/tmp``, no network,
   and nothing else of the course. Its ZMQ channels are Unix sockets (jupyter_client's
   ``transport="ipc"``) in a folder bound into the sandbox, so the network namespace stays closed.
   The kernel is always the course's Python (the notebook's kernelspec name is ignored: a
   notebook saved under ``conda-env-hw4-py`` runs the same kernel as everyone else's).
   Interrupts go as a message on the control channel (a signal would hit bwrap, not the kernel).
   Where the sandbox cannot start, ``ResilientExecute`` refuses to run (``SandboxUnavailable``,
   with the reason and the fix) unless ``LABKIT_UNSAFE_NO_SANDBOX=1``; then the kernel runs
   with the memory limit only, a warning cell opens the notebook and its metadata says so
   (``labkit_sandbox``: ``{"isolated": false, ...}``).
2. **Limits** (``SandboxLimits``): address space per process (6 GiB: hw4 kernels peak at about
   1.6 GB virtual, ~0.3 GB resident, so ``np.ones(10**9)`` fails at once with ``MemoryError``),
   CPU seconds, processes + threads, open files, size of a written file, size of the working
   directory and ``/tmp``; and here, in the grader, the bytes of one cell's outputs (a print
   loop is cut at ``max_output_kb`` instead of filling the grader's memory).
3. **A dead kernel** (``os._exit``, a segfault through ctypes, the memory limit): plain nbgrader
   aborts the notebook. ``ResilientExecute`` writes a ``KernelDied`` error into the running
   cell — that cell scores 0 — starts a fresh kernel, replays the cells above it (outputs
   discarded; cells that timed out or killed the kernel are not replayed) and goes on. After
   ``max_kernel_deaths`` deaths, the remaining cells are marked not run.
4. **A hung kernel.** A cell past ``Execute.timeout`` is interrupted. A loop that ignores
   SIGINT keeps the kernel busy and every later cell would time out too: after a timeout the
   kernel must answer a no-op within ``responsive_timeout`` seconds, else it is killed (with
   everything it started) and treated like a dead kernel — the looping cell scores 0, the rest
   of the notebook is graded.

Enable it in ``nbgrader_config.py``::

    c.Autograde.autograde_preprocessors = [ResilientExecute, *rest of nbgrader's list]
    c.LimitedKernelManager.memory_limit_mb = 6144
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import sys
import tempfile
import time

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from traitlets import Integer, Unicode

from labkit.grading.records import MIME
from nbgrader.preprocessors import Execute

from .sandbox import (MARKER, UNSAFE_ENV, SandboxLimits, bwrap_version, check_sandbox, in_cgroup, pids_cgroup,
                      remove_cgroup, sandbox_command, stage_files)

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


def course_kernel_command(connection_file: str) -> list[str]:
    """The course's kernel: this Python's ipykernel, whatever kernelspec the notebook names."""
    return [os.path.abspath(sys.executable), "-m", "ipykernel_launcher", "-f", connection_file,
            "--HistoryManager.hist_file=:memory:"]


class LimitedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels run in the grading sandbox, under its limits
    (``sandboxed = False``: memory limit only, the instructor's explicit opt-out)."""

    memory_limit_mb = Integer(6144, help="Address-space limit of each kernel process in MiB (0: none).").tag(config=True)
    cpu_seconds = Integer(3600, help="CPU seconds per kernel process (all its threads; 0: none).").tag(config=True)
    max_processes = Integer(256, help="Processes + threads in one sandbox (0: none).").tag(config=True)
    open_files = Integer(1024, help="Open files per kernel process (0: none).").tag(config=True)
    file_mb = Integer(256, help="Largest file a kernel may write, MiB (0: none).").tag(config=True)
    scratch_mb = Integer(512, help="Size of the sandbox's working directory and of its /tmp, MiB each.").tag(config=True)

    sandboxed = True  # set per run by ResilientExecute (False only under LABKIT_UNSAFE_NO_SANDBOX=1)
    _sandbox_dir: str | None = None
    _cgroup: str | None = None

    def limits(self) -> SandboxLimits:
        return SandboxLimits(self.memory_limit_mb, self.cpu_seconds, self.max_processes, self.open_files,
                             self.file_mb, self.scratch_mb)

    async def _async_pre_start_kernel(self, **kw):
        if self.sandboxed:
            base = tempfile.gettempdir() if len(tempfile.gettempdir()) < 40 else "/tmp"
            self._sandbox_dir = tempfile.mkdtemp(prefix="labkit-kernel-", dir=base)
            channels = os.path.join(self._sandbox_dir, "channels")
            os.makedirs(channels)
            os.makedirs(os.path.join(self._sandbox_dir, "files"))
            self.transport = "ipc"          # Unix sockets: the kernel's network namespace stays closed
            self.ip = os.path.join(channels, "kernel")
            self.connection_file = os.path.join(channels, "connection.json")
            self.kernel_spec.interrupt_mode = "message"  # SIGINT would reach bwrap, not the kernel
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        if not self.sandboxed:
            exe = kernel_cmd[0] if "/" in kernel_cmd[0] else (shutil.which(kernel_cmd[0]) or kernel_cmd[0])
            await super()._async_launch_kernel(limited_command([exe, *kernel_cmd[1:]], self.memory_limit_mb), **kw)
            return
        cwd = os.path.abspath(kw.get("cwd") or os.getcwd())
        files = os.path.join(self._sandbox_dir, "files")
        for skipped in stage_files(cwd, files):
            self.log.warning("not copied into the sandbox: %s", skipped)
        cmd = sandbox_command(course_kernel_command(self.connection_file), workdir=cwd,
                              channels=os.path.dirname(self.connection_file), staging=files,
                              env=kw.get("env"), limits=self.limits(), quiet=True)
        self._cgroup = pids_cgroup(self.max_processes)
        if self._cgroup is None and os.geteuid() == 0 and self.max_processes > 0:
            self.log.warning("grading as root without a writable pids cgroup: processes are not capped")
        await super()._async_launch_kernel(in_cgroup(cmd, self._cgroup), **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self._sandbox_dir and not restart:
            shutil.rmtree(self._sandbox_dir, ignore_errors=True)
            self._sandbox_dir = None
            remove_cgroup(self._cgroup)
            self._cgroup = None


def _error_output(ename: str, text: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=text,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {text}"])


UNSAFE_NOTE = ("**Graded without the sandbox** ({env}=1): this notebook's code ran with the grader's "
               "rights (files, network, processes). The grades are as computed; the instructor chose to "
               "grade without isolation because: {reason}")


class ResilientExecute(Execute):
    """nbgrader's ``Execute`` in the grading sandbox, with recovery from a dead or hung kernel."""

    max_kernel_deaths = Integer(3, help="Kernel deaths tolerated per notebook before the rest is "
                                        "marked not run.").tag(config=True)
    responsive_timeout = Integer(30, help="Seconds a kernel has to answer after a cell timed out "
                                          "before it is killed and restarted.").tag(config=True)
    max_output_kb = Integer(2048, help="Outputs kept per cell, KiB (0: no cap).").tag(config=True)
    max_record_mb = Integer(64, help="Answer records (for VerifyChecks) kept per cell, MiB (0: no cap).").tag(config=True)
    # the course's kernel, whatever the submitted notebook's metadata names
    kernel_name = Unicode("python3", help="Kernel used for every notebook.").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)
        self._deaths = 0
        self._replaying = False
        self._skip_replay: set[int] = set()
        self._out_bytes: dict[tuple[int, bool], int] = {}
        self._sandboxed = True

    def preprocess(self, nb, resources=None, km=None):
        self._sandboxed = check_sandbox()  # raises SandboxUnavailable: refuse rather than grade unsafely
        LimitedKernelManager.sandboxed = self._sandboxed
        nb, resources = super().preprocess(nb, resources, km)
        if self._sandboxed:
            nb.metadata[MARKER] = {"isolated": True, "tool": bwrap_version(), "reason": ""}
        else:
            from .sandbox import sandbox_problem

            reason = sandbox_problem() or "the sandbox was available but switched off"
            nb.metadata[MARKER] = {"isolated": False, "tool": None, "reason": f"{UNSAFE_ENV}=1; {reason}"}
            nb.cells.insert(0, new_markdown_cell(UNSAFE_NOTE.format(env=UNSAFE_ENV, reason=reason)))
        return nb, resources

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self._deaths = 0
        self._skip_replay = set()
        self._out_bytes = {}

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None:
            return out
        # answer records (labkit.grading.records, read by VerifyChecks) have their own, larger budget
        record = MIME in out.get("data", {})
        cap_kb = self.max_record_mb * 1024 if record else self.max_output_kb
        if cap_kb <= 0:
            return out
        key = (cell_index, record)
        size = len(json.dumps(out, default=str))
        total = self._out_bytes.get(key, 0) + size
        self._out_bytes[key] = total
        if total > cap_kb * 1024:
            if outs and outs[-1] is out:
                outs.pop()
            if total - size <= cap_kb * 1024:  # the first output past the cap: say so once
                outs.append(NotebookNode(output_type="stream", name="stdout",
                                         text=f"\n[output cut by the grader: this cell printed more than "
                                              f"{cap_kb} KiB{' of answer records' if record else ''}]\n"))
            return None
        return out

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if self._replaying:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if self._deaths > self.max_kernel_deaths:
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [_error_output("NotRun", "not run: the kernel died too often in this notebook")]
            return cell
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except CellTimeoutError:  # no idle after the interrupt (nbclient's IOPub timeout): SIGINT ignored?
            cell.outputs = list(cell.get("outputs", [])) + [_error_output(
                "CellTimeoutError", f"this cell ran longer than the time limit ({self.timeout} s)")]
            self._skip_replay.add(cell_index)
            if not await self._responsive():
                await self._lose_kernel(cell, cell_index, "kernel still busy after the interrupt", self._hung_note())
            return cell
        except (DeadKernelError, RuntimeError) as exc:
            if not isinstance(exc, DeadKernelError) and "died" not in str(exc).lower():
                raise
            await self._lose_kernel(cell, cell_index, f"kernel died ({exc})", _error_output(
                "KernelDied", "the kernel died while running this cell (os._exit, a crash, or the memory "
                "limit): this cell scores 0. The grader restarted the kernel, re-ran the cells above and "
                "went on with the rest of the notebook."))
            return cell
        if any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            self._skip_replay.add(cell_index)
            if not await self._responsive():
                await self._lose_kernel(cell, cell_index, "kernel still busy after the interrupt", self._hung_note())
        return cell

    @staticmethod
    def _hung_note() -> NotebookNode:
        return _error_output("KernelHung", "this cell kept running after the time limit and ignored the interrupt "
                             "(SIGINT): the grader stopped its kernel. This cell scores 0; the kernel was restarted, "
                             "the cells above re-run, and the rest of the notebook graded.")

    async def _responsive(self) -> bool:
        """After an interrupt: does the kernel answer a no-op within ``responsive_timeout`` s?"""
        msg_id = self.kc.execute("pass", silent=True, store_history=False)
        deadline = time.monotonic() + self.responsive_timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=left)
            except (asyncio.TimeoutError, Exception):
                return False
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return True
        return False

    async def _lose_kernel(self, cell, cell_index: int, why: str, note: NotebookNode) -> None:
        self._deaths += 1
        self._skip_replay.add(cell_index)
        self.log.warning("cell %d: %s; restarting and replaying the cells above", cell_index, why)
        cell.outputs = list(cell.get("outputs", [])) + [note]
        self.nb.cells[cell_index] = cell
        if self._deaths <= self.max_kernel_deaths:
            await self._restart_and_replay(cell_index)

    async def _restart_and_replay(self, upto: int) -> None:
        await self._async_cleanup_kernel()  # a hung kernel is killed after jupyter_client's shutdown_wait_time
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
