"""labkit.eval — measuring what quantization costs: perplexity (GPTQ protocol), MMLU 5-shot accuracy,
and the KL divergence / top-1 agreement of a quantized model's next-token distribution against its
baseline; the ``labkit eval`` command and the measuring side of ``labkit sweep``. The data they run
on is ``labkit.data`` (``labkit.eval.data`` forwards to it); the sweep's plots are
``labkit.viz.sweep_plots``.
"""

from .kld import KLDReference, KLDResult, kl_divergence, kld_reference
from .mmlu import MMLUQuestion, MMLUResult, format_example, format_prompt, mmlu_accuracy
from .perplexity import PerplexityResult, make_windows, perplexity, perplexity_of_windows, tokenize_corpus

__all__ = [
    "KLDReference", "KLDResult", "kl_divergence", "kld_reference",
    "MMLUQuestion", "MMLUResult", "format_example", "format_prompt", "mmlu_accuracy",
    "PerplexityResult", "make_windows", "perplexity", "perplexity_of_windows", "tokenize_corpus",
]
