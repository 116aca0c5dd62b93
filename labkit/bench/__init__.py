"""labkit.bench — benchmark commands (timings measured against a baseline in the same run).

For notebooks: decode speed of one model + scheme, with its roofline fraction (``labkit.bench.decode``)::

    from labkit.bench import measure_decode
    r = measure_decode(model, "int8-row", threads=1, prompt_len=64, gen_len=32, repeats=3,
                       include_lm_head=True, bandwidth_gb_s=None)      # -> DecodeSpeed
    r.tokens_per_s, r.roofline_tokens_per_s, r.roofline_fraction, r.bytes_per_token, r.bandwidth_gb_s,
    r.build_s        # compile/warm-up seconds, never inside tokens_per_s

``model`` is a loaded float model (``labkit.models.load_model``) or a model name; ``scheme`` a
weight-only scheme name or ``"none"``. ``bandwidth_gb_s=None`` measures the read bandwidth first
(``labkit.bench.roofline.measure_bandwidth``, same thread count).
"""

__all__ = ["measure_decode", "DecodeSpeed"]


def __getattr__(name: str):
    # lazy: `import labkit.bench.timing` (the notebook checks) must not pay for torch models
    if name in __all__:
        from . import decode

        return getattr(decode, name)
    raise AttributeError(f"module 'labkit.bench' has no attribute {name!r}")
