"""Moved to ``labkit.data`` (a module every layer may use); these names stay importable from here for
the notebooks written against ``labkit.eval.data``."""

from ..data import (LAB_MMLU, LAB_TEXT, MMLUData, data_dir, load_mmlu, load_mmlu_csv, load_mmlu_hub,  # noqa: F401
                    load_ppl_text, load_text_file, load_wikitext2)
