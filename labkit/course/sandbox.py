"""The grading sandbox: each student's kernel runs in bubblewrap and reaches only its own notebook.

nbgrader runs a submission's code as the grader's user, in the course folder: without a fence it
can read ``source/`` (solutions, hidden tests), rewrite ``gradebook.db``, read other students'
submissions, patch labkit's own files (installed editable), use the network and leave processes
behind. Here the kernel is started by ``bwrap`` (Debian package ``bubblewrap``: Linux namespaces,
no daemon, no root needed where unprivileged user namespaces are allowed) in a fresh file system:

=============================  ==============================================================
inside the sandbox             what it is
=============================  ==============================================================
``/usr``, ``/etc`` (a few)     the system, read-only (``/etc``: only what the loader and
                               Python need — no ``passwd``, ``shadow`` or ssh keys)
Python, the venv, ``labkit/``  read-only binds at their real paths (labkit is installed
``data/``, the model cache     editable, so its source tree must be read-only in here)
the working directory          a size-limited tmpfs at the notebook's own folder holding a copy
                               of the student's files there (never the notebooks, which hold
                               the hidden tests after sanitizing)
``/tmp``, ``$HOME``            a private size-limited tmpfs
the kernel's channels          ZMQ over Unix sockets (``transport="ipc"``) in a private folder
                               bound read-write: the only way in or out
=============================  ==============================================================

Everything else of the machine — the rest of the course folder, the instructor's home,
``nbgrader_config.py``, other students — does not exist in there: ``open`` fails with
``FileNotFoundError`` (or ``OSError: Read-only file system`` on a read-only bind) inside the
student's cell, and the notebook goes on. New namespaces: user (limits count per sandbox),
PID (when the kernel ends, every process it started is killed with it), network (only a
loopback of its own: a socket to 127.0.0.1 reaches nothing of the host, any other address is
unreachable), IPC, UTS. ``--die-with-parent``: if the grader dies, so does the sandbox;
``--new-session``: no access to the grader's terminal.

Limits per kernel (``SandboxLimits``), set by a small boot script inside the sandbox before the
kernel's first instruction: address space (``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``),
processes + threads (``RLIMIT_NPROC``, counted per sandbox thanks to its user namespace; the
kernel exempts uid 0 from it, so a grader running as root caps the sandbox with a ``pids`` cgroup
instead, ``pids_cgroup``), open
files (``RLIMIT_NOFILE``), largest file written (``RLIMIT_FSIZE``), and the size of the two
tmpfs (the working directory and ``/tmp``). Worked number: a fork bomb stops at 256 tasks with
``BlockingIOError: [Errno 11] Resource temporarily unavailable`` in the student's cell; a
``while True: f.write(b"x" * 2**20)`` stops at 512 MiB with ``No space left on device``.

Not isolated (stated in autograde/INSTRUCTORS.md): the kernel shares the machine's CPU and
memory bandwidth (timing side channels, ``check_bench`` numbers), reads ``/sys`` and
``/proc`` of its own namespace, and sees the Python environment (not secret). Where ``bwrap``
cannot start (not installed, user namespaces disabled), ``sandbox_problem`` says why; grading
then refuses to start unless the instructor sets ``LABKIT_UNSAFE_NO_SANDBOX=1`` (see
``unsafe_opt_out``), and every autograded notebook then carries ``UNSAFE_MARKER``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UNSAFE_ENV = "LABKIT_UNSAFE_NO_SANDBOX"
# notebook metadata key written by ResilientExecute on every autograded notebook:
# {"isolated": bool, "tool": "bwrap 0.8.0" | None, "reason": str}
MARKER = "labkit_sandbox"

# Where the sandbox's own files appear inside it (not a path of the host).
STAGING = "/run/labkit/files"
MPL_CACHE = "/run/labkit/matplotlib"  # the grader's font list, copied in so no kernel rebuilds it

# /etc entries the dynamic loader, Python and numpy/torch need; nothing with secrets.
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "nsswitch.conf", "hosts",
       "alternatives", "os-release", "mime.types", "fonts")  # fonts: else fontconfig writes to stderr
# variables of the grader's environment that may reach the kernel (all others are dropped:
# a database URL or a token in the grader's environment must not be readable by a student)
ENV_KEEP = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "NBGRADER_EXECUTION", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE", "PYTHONHASHSEED", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION",
            "LABKIT_PROGRESS", "LABKIT_NANOVLLM_MODEL")
# (not JPY_PARENT_PID: in the PID namespace the kernel's parent is pid 1, which ipykernel
# would take for "my parent died" and exit)
GPU_DEVICES = ("/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
               "/dev/nvidia-modeset", "/dev/dri")


class SandboxUnavailable(RuntimeError):
    """bwrap cannot start here; the message says why and what to do."""


@dataclass(frozen=True)
class SandboxLimits:
    """Per-kernel limits (0: that limit off). ``memory_mb`` is per process (address space)."""

    memory_mb: int = 6144
    cpu_seconds: int = 3600
    processes: int = 256
    open_files: int = 1024
    file_mb: int = 256
    scratch_mb: int = 512


def unsafe_opt_out() -> bool:
    """True when the instructor chose to grade without the sandbox (``LABKIT_UNSAFE_NO_SANDBOX=1``)."""
    return os.environ.get(UNSAFE_ENV, "").strip().lower() in ("1", "true", "yes")


@functools.lru_cache(maxsize=1)
def bwrap_version() -> str | None:
    exe = shutil.which("bwrap")
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or "bwrap"


@functools.lru_cache(maxsize=1)
def sandbox_problem() -> str | None:
    """None when a bwrap sandbox with new user, PID and network namespaces starts here, else one
    paragraph saying why not and how to fix it (or how to opt out)."""
    fix = (f"Fix it, or grade without isolation (student code can then read the solutions and write "
           f"the gradebook) by setting {UNSAFE_ENV}=1 (`labkit grade --unsafe-no-sandbox`); every "
           f"feedback page and the grade report then say so. See autograde/INSTRUCTORS.md, 'Sandbox'.")
    if not sys.platform.startswith("linux"):
        return f"the grading sandbox (bubblewrap) needs Linux; this is {sys.platform}. " + fix
    exe = shutil.which("bwrap")
    if exe is None:
        return ("the grading sandbox needs bubblewrap, which is not installed: "
                "`sudo apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`. " + fix)
    probe = [exe, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent",
             "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        out = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not be run ({exc}). " + fix
    if out.returncode != 0:
        return (f"bubblewrap is installed but cannot create a sandbox here: {out.stderr.strip()[:300]!r}. "
                "User namespaces are probably disabled: `sysctl kernel.unprivileged_userns_clone=1` (Debian), "
                "`sysctl kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04+), or in a container "
                "run it with user namespaces allowed (e.g. docker's --security-opt seccomp=unconfined). " + fix)
    return None


def check_sandbox() -> bool:
    """True when kernels will be sandboxed, False when the instructor opted out; raises
    ``SandboxUnavailable`` (with the reason and the fix) when neither holds."""
    if unsafe_opt_out():
        return False
    problem = sandbox_problem()
    if problem:
        raise SandboxUnavailable("refusing to grade: " + problem)
    return True


def _python_roots() -> list[str]:
    """Read-only folders the kernel's Python needs: the interpreter's installation, the venv, and
    labkit's source tree (an editable install lives outside site-packages)."""
    import labkit

    roots = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), os.path.abspath(sys.prefix),
             str(Path(labkit.__file__).resolve().parent)}
    return sorted(r for r in roots if os.path.isdir(r) and r not in ("/usr", "/"))


def _data_roots() -> list[str]:
    """labkit's data files (repository's ``data/``) and the model cache, read-only when present."""
    import labkit
    from labkit.models.smollm2 import cache_dir

    found = [Path(labkit.__file__).resolve().parents[1] / "data", cache_dir().resolve()]
    return [str(p) for p in found if p.is_dir()]


def boot_script() -> str:
    """The program run inside the sandbox before the kernel: copy the staged files into the
    working directory and the grader's matplotlib font list into ``$MPLCONFIGDIR``, set the
    limits, then become the kernel (exec keeps the pid)."""
    return f"""import os, resource, shutil, sys
staging, limits, quiet, cmd = sys.argv[1], [int(v) for v in sys.argv[2].split(',')], sys.argv[3], sys.argv[4:]
if os.path.isdir(staging):
    for name in os.listdir(staging):
        src = os.path.join(staging, name)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(os.getcwd(), name))
for d in ('HOME', 'MPLCONFIGDIR', 'IPYTHONDIR', 'JUPYTER_RUNTIME_DIR'):
    os.makedirs(os.environ[d], exist_ok=True)
if os.path.isdir({MPL_CACHE!r}):
    for name in os.listdir({MPL_CACHE!r}):
        if name.startswith('fontlist'):
            shutil.copy(os.path.join({MPL_CACHE!r}, name), os.environ['MPLCONFIGDIR'])
mb = 2**20
for res, value in zip((resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC,
                       resource.RLIMIT_NOFILE, resource.RLIMIT_FSIZE),
                      (limits[0] * mb, limits[1], limits[2], limits[3], limits[4] * mb)):
    if value > 0:
        resource.setrlimit(res, (value, value))
if quiet == '1':   # a kernel's banner; its cells' output goes through the channels
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
os.execv(cmd[0], cmd)
"""


def _matplotlib_cache() -> str | None:
    """The grader's matplotlib cache folder when it holds a font list (saves each kernel a rebuild)."""
    candidates = [os.environ.get("MPLCONFIGDIR"),
                  os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")]
    for folder in filter(None, candidates):
        if os.path.isdir(folder) and any(n.startswith("fontlist") for n in os.listdir(folder)):
            return folder
    return None


def sandbox_command(cmd: list[str], *, workdir: str, channels: str, staging: str | None = None,
                    env: dict[str, str] | None = None, limits: SandboxLimits = SandboxLimits(),
                    extra_ro: tuple[str, ...] = (), quiet: bool = False) -> list[str]:
    """``cmd`` (absolute path first) wrapped in bwrap.

    ``workdir``: the kernel's working directory (a fresh tmpfs there, filled from ``staging``, a
    host folder bound read-only); ``channels``: a host folder bound read-write at the same path
    (the kernel's connection file and Unix sockets); ``env``: the kernel's environment before
    filtering (only ``ENV_KEEP`` names pass; never
    ``LABKIT_GRADEBOOK_URL``, which may hold a password); ``quiet``: the command's stdout goes to
    /dev/null (a kernel's banner)."""
    exe = shutil.which("bwrap")
    if exe is None:
        raise SandboxUnavailable(sandbox_problem() or "bwrap not found")
    env = dict(os.environ if env is None else env)
    args = [exe, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "grader",
            "--proc", "/proc", "--dev", "/dev", "--ro-bind-try", "/sys", "/sys",
            # /tmp first: bwrap mounts in order, so a Python, venv or checkout that lives under /tmp
            # (a CI clone, a pytest folder) is bound on top of the private /tmp, not hidden by it
            "--size", str(limits.scratch_mb * 2**20), "--tmpfs", "/tmp"]
    for name in ("usr", "bin", "lib", "lib64", "sbin"):
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for root in [*_python_roots(), *_data_roots(), *extra_ro]:
        args += ["--ro-bind", root, root]
    for dev in GPU_DEVICES:
        args += ["--dev-bind-try", dev, dev]
    home = "/tmp/home"
    args += ["--size", str(limits.scratch_mb * 2**20), "--tmpfs", workdir,
             "--bind", channels, channels]
    if staging:
        args += ["--ro-bind", staging, STAGING]
    if _matplotlib_cache():
        args += ["--ro-bind", _matplotlib_cache(), MPL_CACHE]
    args += ["--remount-ro", "/", "--chdir", workdir, "--clearenv"]
    kept = {k: v for k, v in env.items() if k in ENV_KEEP}
    from labkit.models.smollm2 import cache_dir

    kept.update(HOME=home, USER="student", LOGNAME="student", TMPDIR="/tmp", MPLCONFIGDIR="/tmp/matplotlib",
                IPYTHONDIR="/tmp/ipython", JUPYTER_RUNTIME_DIR="/tmp/jupyter", LABKIT_CACHE=str(cache_dir().resolve()),
                PATH=os.pathsep.join([os.path.dirname(os.path.abspath(sys.executable)), "/usr/bin", "/bin"]))
    kept.pop(UNSAFE_ENV, None)
    for key, value in sorted(kept.items()):
        args += ["--setenv", key, value]
    numbers = ",".join(str(v) for v in (limits.memory_mb, limits.cpu_seconds, limits.processes,
                                         limits.open_files, limits.file_mb))
    return [*args, "--", cmd[0], "-c", boot_script(), STAGING, numbers, "1" if quiet else "0", *cmd]


CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")  # cgroup v1's pids hierarchy, or a v2 root


def pids_cgroup(limit: int) -> str | None:
    """A fresh cgroup allowing at most ``limit`` tasks (processes + threads), for a grader running
    as root, whose uid ``RLIMIT_NPROC`` does not bind; None when not root, ``limit`` is 0, or no
    writable ``pids`` controller exists (then the process count is not capped: logged by the caller)."""
    if limit <= 0 or os.geteuid() != 0:
        return None
    import uuid

    for root in CGROUP_ROOTS:
        path = os.path.join(root, f"labkit-kernel-{uuid.uuid4().hex[:12]}")
        try:
            os.mkdir(path)
        except OSError:
            continue
        try:
            with open(os.path.join(path, "pids.max"), "w") as fh:
                fh.write(str(limit))
            return path
        except OSError:
            os.rmdir(path)
    return None


def remove_cgroup(path: str | None, wait: float = 5.0) -> None:
    """Remove a kernel's cgroup once its tasks are gone (they die with the sandbox's PID namespace)."""
    import time

    if not path:
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)


def in_cgroup(cmd: list[str], cgroup: str | None) -> list[str]:
    """``cmd`` started inside ``cgroup`` (a wrapper joins it, then execs ``cmd``: every process the
    sandbox starts is counted from its first instruction)."""
    if not cgroup:
        return list(cmd)
    join = ("import os, sys\nopen(os.path.join(sys.argv[1], 'cgroup.procs'), 'w').write(str(os.getpid()))\n"
            "os.execv(sys.argv[2], sys.argv[2:])\n")
    return [sys.executable, "-c", join, cgroup, *cmd]


def stage_files(cwd: str, dest: str, max_mb: int = 64) -> list[str]:
    """Copy the student's own files in ``cwd`` (not notebooks: after sanitizing they hold the
    hidden tests; not folders of the course) into ``dest``; returns what was left out, with why."""
    skipped, total = [], 0
    for entry in sorted(os.scandir(cwd), key=lambda e: e.name):
        if entry.name.endswith(".ipynb") or entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        size = entry.stat().st_size
        if total + size > max_mb * 2**20:
            skipped.append(f"{entry.name} (over {max_mb} MiB of files)")
            continue
        shutil.copy(entry.path, os.path.join(dest, entry.name))
        total += size
    return skipped
