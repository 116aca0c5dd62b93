"""labkit.course — the instructor's side of hw4: everything that runs in the grader's process.

Nothing here runs inside a student's kernel, and nothing in ``labkit.grading`` (the checks the
notebooks import) imports it back. Modules:

- ``release``: regenerate ``notebooks/`` from ``autograde/source``, staleness check, timing (`labkit course`)
- ``execute``: ``ResilientExecute``, memory-limited kernels that are restarted when a submission kills them
- ``sanitize``: ``RestoreCells``, test cells back to their source text and order
- ``verify``: ``VerifyChecks``, every hidden check re-graded from its answer record outside the kernel
- ``parallel``: `labkit grade`, a class graded in shards
- ``report``: `labkit grade-report`, per-task score distribution
- ``bench_grade``: `labkit bench-grade`, serial vs parallel grading time
"""
