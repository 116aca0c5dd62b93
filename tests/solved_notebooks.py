"""The one execution of each SOLVED source notebook per test run (a session fixture, ``solved_runs``).

Every check that needs a solved run (run time, no stderr, the model answers' numbers are printed,
the browser's screenshots) reads this one execution, so the notebooks run once, not once per check.

How it runs (as a student who finished would see it, not under autograde, default model):
* **in the browser** when Debian's chromium and playwright are present: JupyterLab on a temporary
  copy of ``autograde/source/hw4`` (solutions in, hidden tests included), each notebook opened,
  Run → Run All Cells, waited for, saved (Ctrl+S); every figure's screenshot is written to
  ``artifacts/solved/<notebook>/figure_NN.png`` and the executed notebook to
  ``artifacts/solved/<notebook>.ipynb``;
* **with nbclient** otherwise (same copy, same kernel), so the non-browser checks still run.

Run time is the wall clock from Run All to the last cell done (kernel start excluded), measured on
whatever machine runs the tests. ``LABKIT_SOLVED=01,03`` limits the run to some notebooks (for a
quick look); ``LABKIT_SOLVED_TIMEOUT`` (seconds per notebook, default 900) bounds a runaway one.
The fixture prints a table and writes it to ``artifacts/solved/summary.txt``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "autograde" / "source" / "hw4"
ARTIFACTS = REPO / "artifacts" / "solved"
CHROMIUM = os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@dataclass
class SolvedRun:
    stem: str
    notebook: nbformat.NotebookNode     # the executed notebook (outputs in)
    seconds: float                      # Run All → last cell done
    mode: str                           # "browser" or "nbclient"
    error: str = ""                     # why the run did not finish, if it did not
    figures: list = field(default_factory=list)   # screenshot paths (browser only)

    def stderr(self) -> list[tuple[int, str]]:
        """(cell index, text) of every stderr stream and error output."""
        found = []
        for i, cell in enumerate(self.notebook.cells):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    found.append((i, out.get("text", "")[:300]))
                elif out.get("output_type") == "error":
                    found.append((i, f"{out.get('ename')}: {out.get('evalue', '')[:300]}"))
        return found

    def output_text(self) -> str:
        """Everything the notebook printed or displayed as text (streams, text/plain, text/html)."""
        parts = []
        for cell in self.notebook.cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    parts.append(out.get("text", ""))
                data = out.get("data", {})
                for mime in ("text/plain", "text/html", "text/markdown"):
                    if mime in data:
                        text = data[mime]
                        parts.append("".join(text) if isinstance(text, list) else text)
        return "\n".join(parts)


def selected_stems() -> list[str]:
    stems = sorted(p.stem for p in SOURCE.glob("*.ipynb"))
    want = [w.strip() for w in os.environ.get("LABKIT_SOLVED", "").split(",") if w.strip()]
    return [s for s in stems if not want or any(s.startswith(w) for w in want)]


def browser_available() -> str:
    """'' when the browser run can happen, else the reason it cannot."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    return ""


# -- JupyterLab ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """``jupyter lab <folder>`` headless, as ``make lab`` starts it; every cell rendered, timing recorded."""

    def __init__(self, base: Path, nbdir: Path):
        self.base, self.dir = base, nbdir
        settings = base / "settings" / "@jupyterlab" / "notebook-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none", "recordTiming": true}')
        news = base / "settings" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
        self.port, self.token = free_port(), "labkit-browser-test"
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
                   PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
        env.pop("NBGRADER_EXECUTION", None)
        self.log = open(base / "lab.log", "w")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyter"), "lab", str(nbdir), "--no-browser", f"--port={self.port}",
             "--ip=127.0.0.1", f"--IdentityProvider.token={self.token}", "--ServerApp.port_retries=0",
             f"--LabApp.workspaces_dir={base / 'workspaces'}", f"--LabApp.user_settings_dir={base / 'settings'}",
             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],  # CI containers run as root
            cwd=str(nbdir), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2)
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.close()
                    raise RuntimeError(f"jupyter lab did not start:\n{(base / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)

    def _api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for kernel in self._api("kernels") or []:
            self._api(f"kernels/{kernel['id']}", method="DELETE")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def open_notebook(page, lab: Lab, name: str) -> None:
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")  # reset: no tabs from before
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=120_000)  # kernel started
    page.locator(".jp-Notebook .jp-Cell").first.click()  # focus this notebook, as a person would


def run_all(page, timeout_s: float) -> float:
    """Run → Run All Cells; wait until no cell is running or queued. Returns the seconds it took."""
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")
    start = time.monotonic()
    quiet_since = None
    while time.monotonic() - start < timeout_s:
        prompts = [p.strip() for p in page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()]
        busy = any(p == "[*]:" for p in prompts)
        idle = page.locator("#jp-main-statusbar >> text=Idle").count() > 0
        if prompts and not busy and idle and any(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 2.0:      # idle for 2 s: Run All is over (or stopped at an error)
                return quiet_since - start
        else:
            quiet_since = None
        time.sleep(0.5)
    raise TimeoutError(f"cells still running after {timeout_s:.0f} s")


def save(page, path: Path, timeout_s: float = 60) -> nbformat.NotebookNode:
    before = path.stat().st_mtime
    page.keyboard.press("Control+s")
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if path.stat().st_mtime != before:
            time.sleep(0.5)
            return nbformat.read(path, as_version=4)
        time.sleep(0.3)
    raise TimeoutError(f"{path.name} was not saved")


def screenshot_figures(page, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    for i, img in enumerate(page.locator(".jp-OutputArea-output img").all()):
        path = folder / f"figure_{i:02d}.png"
        try:
            img.scroll_into_view_if_needed(timeout=10_000)
            img.screenshot(path=str(path), timeout=20_000)
            shots.append(path)
        except Exception as exc:  # a figure we could not shoot is reported, not fatal
            (folder / f"figure_{i:02d}.txt").write_text(f"screenshot failed: {exc}")
    return shots


# -- the two ways to run ---------------------------------------------------------------------------

def _copy_sources(dest: Path, stems: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        nb = nbformat.read(SOURCE / f"{stem}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, dest / f"{stem}.ipynb")


def run_in_browser(base: Path, stems: list[str], timeout_s: float) -> dict[str, SolvedRun]:
    from playwright.sync_api import sync_playwright

    nbdir = base / "hw4"
    _copy_sources(nbdir, stems)
    lab = Lab(base, nbdir)
    runs = {}
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(base / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000})
            try:
                for stem in stems:
                    page = context.new_page()
                    error, seconds = "", float("nan")
                    try:
                        open_notebook(page, lab, f"{stem}.ipynb")
                        seconds = run_all(page, timeout_s)
                    except Exception as exc:
                        error = f"{type(exc).__name__}: {exc}"
                    figures = screenshot_figures(page, ARTIFACTS / stem)
                    try:
                        nb = save(page, nbdir / f"{stem}.ipynb")
                    except Exception as exc:
                        nb, error = nbformat.read(nbdir / f"{stem}.ipynb", as_version=4), error or f"save: {exc}"
                    page.screenshot(path=str(ARTIFACTS / stem / "page.png"))
                    page.close()
                    lab.shutdown_kernels()  # the next notebook gets the CPU to itself
                    runs[stem] = SolvedRun(stem, nb, seconds, "browser", error, figures)
                    with open(ARTIFACTS / "progress.txt", "a") as log:  # readable while the run goes on
                        log.write(f"{stem} {seconds:.1f} s, {len(runs[stem].stderr())} stderr/errors {error[:80]}\n")
            finally:
                context.close()
    finally:
        lab.close()
    return runs


def run_with_nbclient(base: Path, stems: list[str], timeout_s: float) -> dict[str, SolvedRun]:
    from nbclient import NotebookClient

    nbdir = base / "hw4"
    _copy_sources(nbdir, stems)
    runs = {}
    env_before = os.environ.pop("NBGRADER_EXECUTION", None)
    try:
        for stem in stems:
            nb = nbformat.read(nbdir / f"{stem}.ipynb", as_version=4)
            client = NotebookClient(nb, timeout=int(timeout_s), kernel_name="python3", allow_errors=True,
                                    resources={"metadata": {"path": str(nbdir)}})
            error = ""
            with client.setup_kernel():
                start = time.monotonic()
                try:
                    for index, cell in enumerate(nb.cells):
                        client.execute_cell(cell, index)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                seconds = time.monotonic() - start
            nbformat.write(nb, nbdir / f"{stem}.ipynb")
            runs[stem] = SolvedRun(stem, nb, seconds, "nbclient", error)
            with open(ARTIFACTS / "progress.txt", "a") as log:
                log.write(f"{stem} {seconds:.1f} s, {len(runs[stem].stderr())} stderr/errors {error[:80]}\n")
    finally:
        if env_before is not None:
            os.environ["NBGRADER_EXECUTION"] = env_before
    return runs


def summary(runs: dict[str, SolvedRun]) -> str:
    lines = [f"{'notebook':30s} {'mode':9s} {'seconds':>8s}  stderr/errors  note"]
    for stem, run in runs.items():
        lines.append(f"{stem:30s} {run.mode:9s} {run.seconds:8.1f}  {len(run.stderr()):13d}  {run.error[:80]}")
    total = sum(r.seconds for r in runs.values() if r.seconds == r.seconds)
    lines.append(f"{'total':30s} {'':9s} {total:8.1f}  ({total / 60:.1f} min)")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def solved_runs(tmp_path_factory) -> dict[str, SolvedRun]:
    """Each solved source notebook executed once (browser if possible, else nbclient)."""
    stems = selected_stems()
    timeout_s = float(os.environ.get("LABKIT_SOLVED_TIMEOUT", "900"))
    base = tmp_path_factory.mktemp("solved")
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    why = browser_available()
    runs = run_with_nbclient(base, stems, timeout_s) if why else run_in_browser(base, stems, timeout_s)
    for stem, run in runs.items():
        nbformat.write(run.notebook, ARTIFACTS / f"{stem}.ipynb")
    text = summary(runs) + (f"\n(no browser: {why}; ran with nbclient)" if why else "")
    (ARTIFACTS / "summary.txt").write_text(text + "\n")
    (ARTIFACTS / "summary.json").write_text(json.dumps(
        {s: {"seconds": r.seconds, "mode": r.mode, "error": r.error, "stderr": r.stderr()} for s, r in runs.items()},
        indent=1))
    print(f"\nsolved runs — artifacts in {ARTIFACTS}\n{text}")
    return runs


# -- numbers in model answers ----------------------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:[eE][-+−]?\d+)?)(?![\w])")
SOLUTION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)
# numbers that are facts of the formats, not results: int8/uint8/fp8 bounds
CONSTANTS = {127.0, 128.0, 255.0, 256.0, 448.0, 57344.0, 65504.0}


def is_question(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "markdown" and bool(meta.get("grade")) and bool(meta.get("solution"))


def model_answer(cell) -> str:
    return "\n".join(m.group(1) for m in SOLUTION.finditer(cell.source))


def without_solutions(text: str) -> str:
    return SOLUTION.sub("", text)


HARDWARE = re.compile(r"\b(?:(?:RTX|GTX|[AHLTV])\s?\d{2,4}|[2-5]0[6-9]0)\b")   # "RTX 4090", "A100", "4090": names


def numbers(text: str) -> list[str]:
    """Number tokens of ``text``, except names (RTX 4090) and formula denominators (scale²/12, 100/127)."""
    text = HARDWARE.sub(" ", text)
    return [m.group(1).replace("−", "-") for m in NUMBER.finditer(text)
            if text[max(0, m.start() - 1):m.start()] != "/"]


def code_numbers(nb) -> set[float]:
    """Numbers written in the notebook's code (parameters such as 100, 512 or 0.5 are not results)."""
    return {float(n) for c in nb.cells if c.cell_type == "code" for n in numbers(c.source)}


def key_numbers(answer: str, nb) -> list[str]:
    """The result numbers of a model answer: decimals and integers > 10, minus parameters written in the
    code, the formats' bounds and powers of two."""
    params = code_numbers(nb)
    keys = []
    for tok in numbers(answer):
        value = float(tok)
        is_int = re.fullmatch(r"\d+", tok) is not None
        if is_int and (value <= 10 or (value >= 16 and int(value) & (int(value) - 1) == 0)):
            continue
        if value in CONSTANTS or value in params:
            continue
        if tok not in keys:
            keys.append(tok)
    return keys


def printed_at_its_rounding(token: str, printed: list[str]) -> bool:
    """Whether ``token`` (as written in a model answer) is one of the ``printed`` numbers rounded to
    the answer's decimals (``11.21`` matches a printed ``11.206``; ``11.2`` does not match ``11.27``)."""
    value = float(token)
    if "e" in token.lower():
        mant = token.lower().split("e")[0]
        digits = len(mant.split(".")[1]) if "." in mant else 0
        return any(p for p in printed if float(p) != 0 and
                   f"{float(p):.{digits}e}" == f"{value:.{digits}e}")
    digits = len(token.split(".")[1]) if "." in token else 0
    if digits == 0 and token in printed:
        return True
    for p in printed:
        x = float(p)
        p_digits = len(p.split(".")[1]) if "." in p and "e" not in p.lower() else 0
        if p_digits >= digits and abs(round(x, digits) - value) < 10 ** -(digits + 3):
            return True
    return False
