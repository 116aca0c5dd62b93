"""labkit.course — the instructor's side of hw4: everything that runs in the grader's process.

Nothing here runs inside a student's kernel, and nothing in ``labkit.grading`` (the checks the
notebooks import) imports it back. Modules:

- ``folder``: which course folder a command works on (the current directory or ``--course DIR``)
- ``release``: regenerate ``notebooks/`` from ``autograde/source``, staleness check, timing (`labkit course`)
- ``collect``: `labkit collect`, an LMS zip (Canvas, Moodle, plain) into ``submitted/``
- ``sandbox``: the bubblewrap sandbox every student kernel runs in (read-only Python, no network, limits)
- ``execute``: ``ResilientExecute``, sandboxed kernels restarted when a submission kills or hangs them
- ``sanitize``: ``RestoreCells`` (test cells back to their source text and order), lenient notebook reading
- ``verify``: ``VerifyChecks``, every hidden check re-graded from its answer record outside the kernel
- ``cluster``: one Dask task per student (the course and the submission travel as bytes)
- ``gradebook``: the instructor's process alone writes grades and ``autograded/``
- ``parallel``: `labkit grade`, a class graded on a local Dask cluster or an existing scheduler
- ``feedback``: ``PendingGrades``, written answers not graded yet say so on the feedback page
- ``report``: `labkit grade-report`, per-task score distribution (not handed in vs wrong vs pending)
- ``bench_grade``: `labkit bench-grade`, grading time with 1 and N workers
"""
