"""nbgrader configuration of the hw4 course. Run nbgrader from the repository root:

    nbgrader generate_assignment hw4      # autograde/source/hw4 → autograde/release/hw4 (+ gradebook)
    nbgrader autograde hw4                # autograde/submitted/<student>/hw4 → autograde/autograded/
    nbgrader generate_feedback hw4        # → autograde/feedback/<student>/hw4/*.html

Students' notebooks in notebooks/ are produced by `make notebooks` (see autograde/README.md).
"""

import os

c = get_config()  # noqa: F821  (provided by nbgrader's config loader)

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = os.path.join(HERE, "autograde")
c.CourseDirectory.course_id = "hw4-quantization"

# --- Gradebook database (labkit grade / collect / grade-report read it too; autograde/INSTRUCTORS.md) ---
# Default: the sqlite file autograde/gradebook.db (one writer at a time: fine for one instructor;
# `labkit grade` writes from one process whatever the number of workers). For several TAs in the
# formgrader at once or a large class, set a PostgreSQL URL in the environment of every tool:
#   export LABKIT_GRADEBOOK_URL='postgresql+psycopg2://grader@db.example.org/hw4'
if os.environ.get("LABKIT_GRADEBOOK_URL"):
    c.CourseDirectory.db_url = os.environ["LABKIT_GRADEBOOK_URL"]

# Students: autograde adds any student folder it finds in submitted/ to the gradebook, so a
# class list is optional (add names with `nbgrader db student add ID --first-name ... --last-name ...`).
c.Autograde.create_student = True

# One cell may take at most this long. The heaviest hw4 cell (full GPTQ on a small layer) takes
# about a second on a laptop CPU; 60 s leaves room for a slow shared machine while an infinite
# loop in a fill-in costs one minute and only that cell's points (the kernel is interrupted and
# the remaining cells still run).
c.Execute.timeout = 60
c.Execute.startup_timeout = 120
c.Execute.interrupt_on_timeout = True

# A student who deletes a test cell gets it back (and scored) instead of silently skipping it.
c.OverwriteCells.add_missing_cells = True

# What replaces a solution region in the released notebook. Each fill-in's source places its own
# `raise NotImplementedError("Task x.y: ...")` right after END SOLUTION, unreachable in the
# solution (which returns first), so the student's stub names its task.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE (a few sentences; use the numbers you measured above)"

# Keep feedback pages readable: a runaway print loop is cut, tracebacks stay whole.
c.LimitOutput.max_lines = 500
c.LimitOutput.max_traceback = 200

# --- Grader integrity (labkit.course.execute / sandbox / sanitize / verify; autograde/INSTRUCTORS.md) ---
# Reading: LenientNotebookExporter = a submitted file that is not valid JSON is graded as an empty
# notebook (0 for it) instead of failing the student's whole assignment.
# Before running: RestoreCells = nbgrader's OverwriteCells (locked cells' text, deleted test cells
# back via add_missing_cells) + graded cells back in source order + split cells repaired.
# Running: ResilientExecute = nbgrader's Execute with the kernel in the bubblewrap sandbox
# (labkit.course.sandbox: read-only Python + labkit, a private copy of the student's files, no
# network, limits below; it refuses to grade where the sandbox cannot start unless
# LABKIT_UNSAFE_NO_SANDBOX=1), restarted (cells above replayed) when a submission kills or hangs
# it; only the running cell scores 0. The course's kernel is used whatever the notebook names.
# After running: VerifyChecks re-grades each hidden check() from its recorded answers in this
# process, where no notebook code runs: patched comparisons cannot turn wrong into points.
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput,  # noqa: E402
                                    DeduplicateIds, IgnorePattern, LimitOutput, OverwriteKernelspec,
                                    SaveAutoGrades)

from labkit.course.execute import ResilientExecute  # noqa: E402
from labkit.course.sanitize import LenientNotebookExporter, RestoreCells  # noqa: E402
from labkit.course.verify import VerifyChecks  # noqa: E402

c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreCells,
                                      CheckCellMetadata]
c.Autograde.autograde_preprocessors = [ResilientExecute, VerifyChecks, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.Autograde.exporter_class = LenientNotebookExporter
# the sandbox's verdict ({"isolated": ..., "reason": ...}) stays in the autograded notebook's metadata
c.ClearMetadataPreprocessor.preserve_nb_metadata_mask = {("language_info", "name"), "labkit_sandbox"}
# Limits per kernel. Address space per process (RLIMIT_AS): hw4 kernels peak at ~1.6 GB virtual /
# 0.3 GB resident. Processes + threads per sandbox (a fork bomb stops there), CPU seconds per
# process, open files, largest file written, size of the working directory and of /tmp (each).
c.LimitedKernelManager.memory_limit_mb = 6144
c.LimitedKernelManager.max_processes = 256
c.LimitedKernelManager.cpu_seconds = 3600
c.LimitedKernelManager.open_files = 1024
c.LimitedKernelManager.file_mb = 256
c.LimitedKernelManager.scratch_mb = 512
c.ResilientExecute.max_kernel_deaths = 3
c.ResilientExecute.max_output_kb = 2048   # outputs kept per cell (a print loop is cut there)

# --- Feedback (labkit.course.feedback) ---
# nbgrader's GetGrades plus one rule: a written answer no grader has scored yet says "Pending" on the
# feedback page instead of reading as 0 points.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402

from labkit.course.feedback import PendingGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [PendingGrades, CSSHTMLHeaderPreprocessor]
