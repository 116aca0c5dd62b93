"""Put a mangled submission back into the shape the grader expects, before it runs.

nbgrader's ``OverwriteCells`` restores the *text* of locked cells (a student who edits a test cell
gets the original back, hidden tests included) and, with ``add_missing_cells``, re-inserts
deleted test cells. Three things it leaves to chance, each fixed here by ``RestoreCells`` (a drop-in
subclass):

1. **Order.** A student may drag a test cell above the function it tests, or move the fill-in
   below its check; the test then runs on an undefined name and scores 0 for a right answer.
   ``RestoreCells`` puts every cell that carries a ``grade_id`` back in the order of the source
   notebook. A cell without an id (a student's helper cell, the first half of a split fill-in, a
   heading) travels with the next id'd cell below it, so helper code stays just above the fill-in
   that uses it.
2. **Split cells.** JupyterLab copies a cell's metadata to both halves of a split; nbgrader's
   ``DeduplicateIds`` then strips the second half's ``grade_id`` but keeps the rest of its
   ``nbgrader`` block, and ``add_missing_cells`` crashes on it (``KeyError: 'grade_id'``), failing
   the student's whole assignment. Such a half becomes a plain cell here.
3. **Missing neighbours.** nbgrader inserts a deleted test cell *after the previous id'd source
   cell* and raises ``KeyError`` if that cell is gone too (a student who deleted a fill-in and its
   test, or submitted an empty notebook): the whole assignment of that student then fails.
   Here a missing cell goes after the nearest earlier id'd cell that is present (or first), so an
   empty notebook simply scores 0.

4. **Unreadable file.** A submitted ``.ipynb`` that is not valid JSON (a truncated upload) makes
   nbgrader fail the student's *whole* assignment. ``LenientNotebookExporter`` (the autograder's
   ``exporter_class``) reads it as an empty notebook with one note saying why: ``RestoreCells``
   then re-inserts the graded cells, that notebook scores 0, the student's other notebooks are
   graded as usual — under plain ``nbgrader autograde`` as under ``labkit grade``.

Worked example: cells ``[setup, test_q, helper, q, md]`` with source order ``[setup, q, test_q]``
become ``[setup, helper, q, test_q, md]``: ``test_q`` now runs after ``q`` (and its helper) exist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat.v4 import new_markdown_cell, new_notebook
from nbgrader import utils
from nbgrader.preprocessors import OverwriteCells

UNREADABLE_NOTE = ("**This file could not be read as a notebook** ({why}). It was graded as an empty "
                   "notebook: 0 points for it; your other notebooks were graded as usual. Check that the "
                   "upload was complete (open the file in JupyterLab) and ask your instructor.")


def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def restore_order(cells: list, source_ids: list[str]) -> list:
    """``cells`` with id'd cells in ``source_ids`` order; a cell without a known id travels with
    the next id'd cell below it (a helper above its fill-in, a heading above its task); cells after
    the last id'd cell stay at the end. Stable: an already ordered notebook comes back unchanged."""
    rank = {gid: i for i, gid in enumerate(source_ids)}
    groups: list[tuple[float, int, list]] = []
    pending: list = []
    for cell in cells:
        pending.append(cell)
        gid = _gid(cell)
        if gid in rank:
            groups.append((float(rank[gid]), len(groups), pending))
            pending = []
    groups.append((float("inf"), len(groups), pending))
    return [cell for _, _, group in sorted(groups, key=lambda g: (g[0], g[1])) for cell in group]


class RestoreCells(OverwriteCells):
    """``OverwriteCells`` + source order of id'd cells + missing cells re-inserted without KeyError."""

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            # a split cell's second half: DeduplicateIds strips its grade_id but leaves the rest of
            # the nbgrader block, on which nbgrader's add_missing_task_cells raises KeyError
            meta = cell.get("metadata", {})
            if "nbgrader" in meta and "grade_id" not in meta["nbgrader"]:
                del meta["nbgrader"]
        nb, resources = super().preprocess(nb, resources)  # text of locked cells, missing cells
        from nbgrader.api import Gradebook

        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            source_ids = [c.name for c in gb.find_notebook(resources["nbgrader"]["notebook"],
                                                           resources["nbgrader"]["assignment"]).source_cells]
        ordered = restore_order(list(nb.cells), source_ids)
        if [id(c) for c in ordered] != [id(c) for c in nb.cells]:
            self.log.warning("cells were moved in this submission: restored the source order of the graded cells")
            nb.cells = ordered
        return nb, resources

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = source_nb.source_cells
        source_ids = [c.name for c in source_cells]
        grade_cells = {c.name: c for c in source_nb.grade_cells}
        solution_ids = {c.name for c in source_nb.solution_cells}
        for gid in source_ids:
            if gid not in grade_cells:
                continue
            present = {_gid(c): i for i, c in enumerate(nb.cells) if utils.is_grade(c) or utils.is_solution(c)
                       or _gid(c) in source_ids}
            if gid in present:
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook", gid)
            cell = self.missing_cell_transform(source_cells[source_ids.index(gid)], grade_cells[gid].max_score,
                                               is_solution=gid in solution_ids)
            earlier = [present[p] for p in source_ids[:source_ids.index(gid)] if p in present]
            nb.cells.insert(max(earlier) + 1 if earlier else 0, cell)
        return nb, resources


class LenientNotebookExporter(NotebookExporter):
    """The autograder's exporter: a file that is not a valid notebook becomes an empty notebook
    carrying one note (``UNREADABLE_NOTE``) instead of an exception that fails the student."""

    def from_file(self, file_stream, resources=None, **kw):
        try:
            nb = nbformat.reads(file_stream.read(), as_version=4)
            if not isinstance(nb.get("cells"), list):
                raise ValueError("no list of cells")
        except Exception as exc:  # NotJSONError, a JSON that is no notebook, bad encoding
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            self.log.warning("%s is not a valid notebook (%s): grading it as empty", resources and
                             resources.get("metadata", {}).get("name"), why)
            nb = new_notebook(cells=[new_markdown_cell(UNREADABLE_NOTE.format(why=why))])
        return self.from_notebook_node(nb, resources, **kw)


def clean_submission(folder: Path, expected: list[str]) -> list[str]:
    """Fix a *copied* submission folder in place; returns one note per change.

    ``expected``: notebook stems of the assignment. Invalid JSON → renamed ``*.ipynb.invalid``
    (nbgrader then counts the notebook as missing: 0 points). A missing notebook with exactly
    one renamed copy (same stem followed by ``-Copy1``, `` (2)``, ``_v2``…) → renamed back.
    """
    notes = []
    for nb in sorted(folder.glob("*.ipynb")):
        try:
            data = json.loads(nb.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or "cells" not in data:
                raise ValueError("not a notebook (no 'cells')")
        except (ValueError, UnicodeDecodeError) as exc:
            nb.rename(nb.with_name(nb.name + ".invalid"))
            notes.append(f"{nb.name} is not a valid notebook ({str(exc)[:80]}): graded as missing (0 points)")
    present = {p.stem for p in folder.glob("*.ipynb")}
    for stem in expected:
        if stem in present:
            continue
        copies = [p for p in folder.glob("*.ipynb")
                  if p.stem not in expected and re.fullmatch(re.escape(stem) + r"[\s_\-.(]*(copy)?[\s_\-.]*\d*\)?", p.stem, re.I)]
        if len(copies) == 1:
            copies[0].rename(folder / f"{stem}.ipynb")
            notes.append(f"{copies[0].name} graded as {stem}.ipynb (renamed copy, original missing)")
    return notes
