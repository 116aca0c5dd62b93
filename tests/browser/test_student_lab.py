"""A student's session, in a real browser: `jupyter lab notebooks/` as `make lab` starts it, headless
Chromium driven by Playwright, notebooks 01 and 03 run from the Run menu, the group-size slider moved.

The student notebooks raise NotImplementedError until the blanks are filled, so the test works on a
temporary copy of notebooks/ whose fill-ins hold the source solutions (what a student who finished
would have). Checked: every cell runs without an error or anything on stderr, the metric lines are
printed, the checks' histograms are drawn, and moving the slider redraws the figure and prints a new
MSE line. Screenshots go to artifacts/browser/ (gitignored) for a person to look at.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` Python package (never
`playwright install`: the system browser is used). Skipped cleanly without them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from labkit.course.release import NOTEBOOKS, REPO


CHROMIUM = os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _solved(student_nb, source_nb):
    """The student notebook with every fill-in replaced by the source solution (delimiters dropped)."""
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_nb.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in student_nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in solutions:
            cell.source = "\n".join(line for line in solutions[gid].split("\n")
                                    if not re.search(r"### (BEGIN|END) SOLUTION", line))
    return student_nb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a solved copy of notebooks/, like `make lab` (jupyter lab notebooks/), headless."""
    base = tmp_path_factory.mktemp("lab")
    nbdir = base / "notebooks"
    nbdir.mkdir()
    for stem in ("01_absmax", "03_granularity"):
        student = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
        source = nbformat.read(REPO / "autograde" / "source" / "hw4" / f"{stem}.ipynb", as_version=4)
        nbformat.write(_solved(student, source), nbdir / f"{stem}.ipynb")
    # render every cell (JupyterLab 4 otherwise virtualizes cells scrolled out of view)
    settings = base / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    news = base / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port, token = _free_port(), "labkit-browser-test"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("NBGRADER_EXECUTION", None)
    log = open(base / "lab.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", str(nbdir), "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
         f"--LabApp.workspaces_dir={base / 'workspaces'}", f"--LabApp.user_settings_dir={base / 'settings'}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],  # CI containers run as root
        cwd=str(base), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"jupyter lab did not start:\n{(base / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    try:
        yield {"url": url, "token": token, "dir": nbdir}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()


def _open_and_run_all(page, lab, name: str, timeout_s: float = 240):
    page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={lab['token']}")  # reset: no tabs from before
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=90_000)  # kernel started
    page.locator(".jp-Notebook .jp-Cell").first.click()  # focus this notebook, as a person would
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()
        if prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
            return prompts
        time.sleep(1)
    pytest.fail(f"{name}: cells still running after {timeout_s} s: {prompts}")


def _problems(page) -> list[str]:
    """Text of error outputs and of anything written to stderr."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()


def test_absmax_notebook_runs_in_the_browser(lab, browser):
    page = browser.new_page()
    _open_and_run_all(page, lab, "01_absmax.ipynb")
    assert _problems(page) == []
    text = page.locator(".jp-Notebook").inner_text()
    assert "naive     absmax int8 with x[0] = 100" in text and "MSE" in text
    assert "✓ absmax_quantize" in text
    assert page.locator(".jp-OutputArea-output img").count() >= 2, "the checks' error histograms are missing"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(".jp-OutputArea-output pre", has_text="naive     absmax int8").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "01_absmax.png"), full_page=False)
    page.close()


def test_group_size_slider_redraws_plot_and_mse(lab, browser):
    page = browser.new_page()
    _open_and_run_all(page, lab, "03_granularity.ipynb")
    assert _problems(page) == []
    slider = page.locator(".widget-slider").first
    slider.wait_for(timeout=60_000)
    app = page.locator(".widget-vbox").filter(has=page.locator(".widget-slider")).first
    app.scroll_into_view_if_needed()
    out = app.locator(".widget-output")
    out.locator("img").first.wait_for(timeout=60_000)
    before_text = out.inner_text()
    before_img = out.locator("img").first.get_attribute("src")
    assert re.search(r"per-tensor: int8 MSE \d\.\d+e[-+]\d+ +fp8_e4m3 MSE", before_text), before_text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "03_granularity_per_tensor.png"))

    handle = app.locator(".noUi-handle").first
    handle.focus()
    for _ in range(4):  # per-tensor → per-row → 512 → 256 → 128
        page.keyboard.press("ArrowRight")
        time.sleep(0.3)
    page.wait_for_function(
        "el => el.innerText.includes('groups of 128')", arg=out.element_handle(), timeout=60_000)
    after_text = out.inner_text()
    after_img = out.locator("img").first.get_attribute("src")
    assert app.locator(".widget-readout").inner_text().strip() == "128"
    assert after_img != before_img, "the histogram was not redrawn"
    mse = {m.group(1): float(m.group(2)) for m in re.finditer(r"(int8|fp8_e4m3) MSE (\S+)", after_text)}
    mse_before = {m.group(1): float(m.group(2)) for m in re.finditer(r"(int8|fp8_e4m3) MSE (\S+)", before_text)}
    assert mse["int8"] < mse_before["int8"] / 10, (before_text, after_text)  # outlier row: groups help int8 a lot
    page.screenshot(path=str(ARTIFACTS / "03_granularity_group128.png"))
    assert _problems(page) == []
    page.close()
