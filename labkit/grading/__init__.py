"""labkit.grading — the checks the hw4 notebooks' test cells call (this code runs in the student's kernel).

    from labkit.grading import check, use_or_reference
    check("absmax_quantize", absmax_quantize)                       # visible: verdict + histogram
    import labkit.grading.checks as _grader                        # hidden tests: by module, so a
    _grader.check("absmax_quantize", absmax_quantize, seed=4101, points=3)  # notebook `check = …` is moot
    quantize = use_or_reference("absmax_quantize", absmax_quantize)  # later cells: the student's or labkit's

Modules:

- ``cases`` — the one case engine: ``CaseCheck`` (reference, seeded cases, parts or per-case
  compare, tripwire packages), ``register``, ``grade``, ``use_or_reference``, ``run_cases`` (the
  older call form) and ``compare_recorded`` (the re-check the grader runs outside the kernel);
- ``checks`` — ``check``: registers every numpy ``Exercise`` with the engine, draws its figure;
- ``exercises`` — the registry of the numpy fill-ins of notebooks 01–05; their tables live in
  ``exercises_formats`` (01–03), ``exercises_gptq`` (04) and ``exercises_w8a8`` (05), built with
  ``exercise_kit`` (seeded cases, parts);
- ``torch_checks`` — ``check_torch``: the torch per-group fill-ins of notebook 06;
- ``model_checks`` — the model-level fill-ins of notebooks 06 and 09 (quantizer, linear, swap,
  whole pipeline by perplexity; int4 groups, Hessians, GPTQ over a model);
- ``smoothquant_checks`` — ``check_sq``: notebook 08 (calibration, factors, folding, the TorchAO
  INT8 and FP8 scripts by perplexity, the α search);
- ``bench_checks`` — ``check_bench``: the fill-ins of notebook 07 (throughput, matmul error);
- ``hooks`` — the forward-pre-hook loop behind the calibration and Hessian references;
- ``compare`` — type → dtype → shape → values comparisons with teaching messages;
- ``integrity`` — numpy/torch/builtins snapshot, the tripwire, stderr muffle, read-only modules;
- ``records`` — answer records (numpy arrays, numbers, torch tensors as ``.npy``; never pickle);
- ``noise`` — silences known library noise (torchao's "Failed to load …", torch's ``_pytree``
  deprecation) at import.

Import this package in a notebook's locked setup cell, before any student code runs: the numpy
snapshot is taken at import.

How a new check registers itself so the grader re-checks it. In a module of this package (every
module here is imported by ``cases.registry()``, so the grader's process finds it), at import::

    register(CaseCheck(name="my_fill_in", task="Task 9.1", reference=<labkit's function, captured now>,
                       cases=lambda seed: [(label, args), ...],       # args: tuple or dict of kwargs
                       compare=lambda got, ref, args: ...,            # raise GradingError(teaching text)
                       watch=("quant",), language="torch"))

and give the notebook a hidden test ``<module>.<any function>("my_fill_in", fn, seed=S, points=P)``
that ends in ``grade(...)``. Under autograde ``grade`` displays the answer record; the grader's
``labkit.course.verify.VerifyChecks`` finds every call in a test cell whose first argument names a
registered check and which passes ``points=``, re-draws the cases, recomputes the reference and
runs the same ``compare`` in its own process, keeping ``min(claimed, verified)``. Outputs must be
numpy arrays/scalars, Python numbers or torch tensors (anything else re-checks as wrong).
``tests/grading/test_engine.py`` then covers the new check automatically (reference scores full,
a fill-in calling labkit scores 0, patched comparisons earn nothing in the re-check).
"""

from . import noise  # noqa: F401  (first: torchao's and torch's import-time noise, silenced once)
from .cases import CaseCheck, register, use_or_reference
from .checks import Score, autograding, check
from .compare import GradingError
from .exercises import EXERCISES, Exercise, Part
from .integrity import freeze_module, quiet, tampered

for _name in ("cases", "checks", "compare", "exercises", "integrity"):
    freeze_module(f"{__name__}.{_name}")
freeze_module(__name__)

__all__ = ["check", "use_or_reference", "register", "CaseCheck", "Score", "autograding", "GradingError",
           "EXERCISES", "Exercise", "Part", "quiet", "tampered"]
