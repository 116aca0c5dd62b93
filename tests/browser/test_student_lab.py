"""A student's session, in a real browser: `jupyter lab notebooks/` as `make lab` starts it, headless
Chromium driven by Playwright, notebooks 01 and 03 run from the Run menu, the group-size slider moved.

The student notebooks raise NotImplementedError until the blanks are filled, so the test works on a
temporary copy of notebooks/ whose fill-ins hold the source solutions (what a student who finished
would have). Checked: every cell runs without an error or anything on stderr, the metric lines are
printed, the checks' histograms are drawn, and moving the slider redraws the figure and prints a new
MSE line. Screenshots go to artifacts/browser/ (gitignored) for a person to look at.

Plus every SOLVED source notebook, run once per test session in JupyterLab by the ``solved_runs``
fixture (tests/solved_notebooks.py): each one finishes, and a screenshot of every figure is saved
under artifacts/solved/<notebook>/ (the path is printed). Run time, stderr and the model answers'
numbers of that same execution are checked in tests/course/test_solved_run.py.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` Python package (never
`playwright install`: the system browser is used). Skipped cleanly without them.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest

from labkit.course.release import NOTEBOOKS, REPO
from solved_notebooks import ARTIFACTS as SOLVED_ARTIFACTS
from solved_notebooks import CHROMIUM, CHROMIUM_ARGS, Lab, open_notebook, run_all

ARTIFACTS = REPO / "artifacts" / "browser"

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
    try:
        server = Lab(base, nbdir)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield {"url": server.url, "token": server.token, "dir": nbdir}
    finally:
        server.close()


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


class _Lab:
    def __init__(self, d):
        self.url, self.token = d["url"], d["token"]


def _open_and_run_all(page, lab, name: str, timeout_s: float = 240):
    open_notebook(page, _Lab(lab), name)
    try:
        run_all(page, timeout_s)
    except TimeoutError as exc:
        pytest.fail(f"{name}: {exc}")


def _problems(page) -> list[str]:
    """Text of error outputs and of anything written to stderr."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()


def test_every_solved_notebook_runs_in_the_browser_with_its_figures_saved(solved_runs):
    """(First in this file: the solved runs drive their own Playwright, which cannot nest in the
    module's `browser`.) The session's one execution happened here, in JupyterLab: each notebook finished and every
    figure it drew has a screenshot (a person looks at them; the tests look at sizes)."""
    print(f"\nfigure screenshots: {SOLVED_ARTIFACTS}")
    assert {r.mode for r in solved_runs.values()} == {"browser"}
    unfinished = {s: r.error for s, r in solved_runs.items() if r.error}
    assert not unfinished, unfinished
    for stem, run in solved_runs.items():
        images = sum(1 for c in run.notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
        assert len(run.figures) >= min(images, 1), f"{stem}: {images} figures in the notebook, {len(run.figures)} shot"
        for shot in run.figures:
            png = shot.read_bytes()
            width = int.from_bytes(png[16:20], "big")
            assert width <= 1400, f"{shot}: {width} px wide, wider than the browser window"


def test_absmax_notebook_runs_in_the_browser(lab, browser):
    page = browser.new_page()
    _open_and_run_all(page, lab, "01_absmax.ipynb")
    assert _problems(page) == []
    text = page.locator(".jp-Notebook").inner_text()
    assert "naive     absmax int8 with x[0] = 100" in text and "MSE" in text
    assert "absmax_quantize: 3/3 points" in text and "✓ codes q" in text
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
    assert re.search(r"per-tensor: INT8 MSE \d\.\d+e[-+]\d+ +FP8 e4m3 MSE", before_text), before_text
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
    mse = {m.group(1): float(m.group(2)) for m in re.finditer(r"(INT8|FP8 e4m3) MSE (\S+)", after_text)}
    mse_before = {m.group(1): float(m.group(2)) for m in re.finditer(r"(INT8|FP8 e4m3) MSE (\S+)", before_text)}
    assert mse["INT8"] < mse_before["INT8"] / 10, (before_text, after_text)  # outlier row: groups help int8 a lot
    page.screenshot(path=str(ARTIFACTS / "03_granularity_group128.png"))
    assert _problems(page) == []
    page.close()

