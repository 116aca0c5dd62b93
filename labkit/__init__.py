"""labkit — the code behind the LLM quantization lab: reference quantizers, quantized layers, model
runners, evaluation, benchmarks, the checks that run in a student's notebook, and the instructor's tools.

Layers, lowest first. A module may import its own layer and the layers after "uses"; nothing imports
a layer above its own, lazily or through a string (``importlib``, a plug-in table), and no modules
import each other in a circle. ``tests/test_layering.py`` reads this table and checks every import;
the README's file tree repeats it.

    base     = labkit, labkit.errors, labkit.data, labkit.cli_common | uses: -
    quant    = labkit.quant | uses: base
    schemes  = labkit.schemes | uses: base quant
    nn       = labkit.nn | uses: base quant schemes
    models   = labkit.models | uses: base quant schemes nn
    engines  = labkit.engines | uses: base quant schemes nn models
    eval     = labkit.eval | uses: base quant schemes nn models
    bench    = labkit.bench | uses: base quant schemes nn models engines
    viz      = labkit.viz | uses: base quant schemes nn models eval bench
    widgets  = labkit.widgets | uses: base quant schemes nn models eval bench viz
    grading  = labkit.grading | uses: base quant schemes nn models eval bench viz
    course   = labkit.course | uses: base quant schemes nn models engines eval bench viz widgets grading
    cli      = labkit.cli | uses: * (its COMMANDS table names each subcommand's module)

In words: ``quant`` is pure math; ``schemes`` are frozen dataclasses naming what to do; ``nn`` holds
the quantized layers and ``quantize_model``; ``models`` loads models and knows their per-architecture
facts (layer maps, calibration, smoothing); ``engines`` (nano-vllm), ``eval`` and ``bench`` measure;
``viz`` and ``widgets`` draw; ``grading`` runs inside the student's kernel; ``course`` is the
instructor's side. ``base`` is what every layer may share: error types, the data files, the
options and exit codes of the ``labkit`` command. A lower layer that needs a higher one's work gets
it registered from above (``labkit.models.w8a8_schemes`` registers SmoothQuant's preparer with
``labkit.nn.convert``), never by importing up.
"""
