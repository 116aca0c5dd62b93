"""The data every layer may read: the lab's own offline files, local files, or the hub datasets.

Used by the evaluation (``labkit.eval``), by SmoothQuant's calibration (``labkit.models.w8a8_schemes``)
and by the notebooks; it imports no other part of labkit.

Perplexity text (``load_ppl_text(source) -> list[str]`` of documents):
  * ``"lab"``       — ``data/text/lab_english.txt``, English prose written for this project (see
                      ``data/README.md``); offline, a few thousand words.
  * ``"wikitext2"`` — the test split of ``wikitext-2-raw-v1`` through HF ``datasets`` (extra ``hub``,
                      needs network or the local datasets cache): what papers report.
  * a path          — any local UTF-8 text file, as one document (``--data-file``).

MMLU (``load_mmlu(source) -> MMLUData``):
  * ``"lab"``       — ``data/mmlu/``: a small MMLU-format set written for this project (several
                      school-level subjects) on which SmolLM2-135M scores well above chance.
  * ``"cais/mmlu"`` — the real MMLU (57 subjects) through HF ``datasets``.
  * a folder        — the original csv layout: ``dev/{subject}_dev.csv`` and
                      ``test/{subject}_test.csv``, no header, columns question, A, B, C, D, answer.

Token ids (``tokenize_corpus(texts, tokenizer, max_tokens) -> (n,) int64``): the documents joined
with a blank line and tokenized once, the GPTQ protocol's way of turning a text into one stream.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

LAB_TEXT = "text/lab_english.txt"
LAB_MMLU = "mmlu"
LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class MMLUQuestion:
    """One question: four ``choices`` and the correct letter ``answer`` ("A".."D")."""

    question: str
    choices: tuple[str, str, str, str]
    answer: str
    subject: str = ""

    def __post_init__(self):
        if len(self.choices) != 4:
            raise ValueError(f"an MMLU question has 4 choices, got {len(self.choices)}: {self.question[:60]!r}")
        if self.answer not in LETTERS:
            raise ValueError(f"answer must be one of A, B, C, D, got {self.answer!r}: {self.question[:60]!r}")


def data_dir() -> Path:
    """The project's ``data/`` folder (next to the ``labkit`` package in the repository)."""
    folder = Path(__file__).resolve().parents[1] / "data"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the lab's data folder {folder} is missing: labkit must be installed from the repository "
            f"(`make lab` does `pip install -e .`), or pass --data-file / a local MMLU folder"
        )
    return folder


def _datasets():
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            "this data source needs the Hugging Face `datasets` package and network access: "
            "`pip install -e '.[hub]'`; offline, use the lab's data (--data lab) or a local file"
        ) from err
    return datasets


def load_text_file(path: str | Path) -> list[str]:
    """A local text file as one document."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"text file {str(path)!r} not found: expected a UTF-8 text file for perplexity")
    return [path.read_text(encoding="utf-8")]


def load_wikitext2(split: str = "test") -> list[str]:
    """The raw WikiText-2 lines of ``split``; joined with "\\n\\n" they are the GPTQ evaluation text."""
    ds = _datasets().load_dataset("wikitext", "wikitext-2-raw-v1", split=split)
    return list(ds["text"])


def load_ppl_text(source: str = "lab") -> list[str]:
    """Documents for perplexity/KL: "lab", "wikitext2" or a file path (see module docstring)."""
    if source == "lab":
        return load_text_file(data_dir() / LAB_TEXT)
    if source in ("wikitext2", "wikitext-2", "wikitext-2-raw-v1"):
        return load_wikitext2()
    return load_text_file(source)


def tokenize_corpus(texts: str | Sequence[str], tokenizer, max_tokens: int | None = None) -> torch.Tensor:
    """Join ``texts`` with "\\n\\n", tokenize once, keep the first ``max_tokens`` ids. Returns (n,) int64."""
    text = texts if isinstance(texts, str) else "\n\n".join(texts)
    if not text.strip():
        raise ValueError("the perplexity text is empty: expected at least a few hundred words of text")
    ids = tokenizer(text, return_tensors="pt").input_ids[0]
    if max_tokens is not None:
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be ≥ 2, got {max_tokens}")
        ids = ids[:max_tokens]
    return ids.to(torch.long)


@dataclass(frozen=True)
class MMLUData:
    """dev (few-shot examples) and test questions, each subject → list of questions."""

    dev: dict[str, list[MMLUQuestion]]
    test: dict[str, list[MMLUQuestion]]

    @property
    def subjects(self) -> list[str]:
        return sorted(self.test)

    def limited(self, subjects: Sequence[str] | None = None, per_subject: int | None = None) -> "MMLUData":
        """A copy with only ``subjects`` and at most ``per_subject`` test questions each."""
        names = list(subjects) if subjects else self.subjects
        unknown = [s for s in names if s not in self.test]
        if unknown:
            raise ValueError(f"unknown MMLU subject(s) {unknown}; available: {', '.join(self.subjects)}")
        test = {s: self.test[s][:per_subject] if per_subject else list(self.test[s]) for s in names}
        return MMLUData(dev={s: self.dev.get(s, []) for s in names}, test=test)


def _read_csv(path: Path, subject: str) -> list[MMLUQuestion]:
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if len(row) != 6:
                raise ValueError(f"{path}:{lineno}: expected 6 columns (question, A, B, C, D, answer), got {len(row)}")
            out.append(MMLUQuestion(row[0], (row[1], row[2], row[3], row[4]), row[5].strip(), subject))
    return out


def load_mmlu_csv(folder: str | Path) -> MMLUData:
    """Read an MMLU folder in the original layout (dev/{s}_dev.csv, test/{s}_test.csv)."""
    folder = Path(folder).expanduser()
    test_files = sorted((folder / "test").glob("*_test.csv"))
    if not test_files:
        raise FileNotFoundError(
            f"no MMLU test files in {folder}/test/: expected the original layout, dev/{{subject}}_dev.csv and "
            f"test/{{subject}}_test.csv (no header; question, A, B, C, D, answer)"
        )
    dev, test = {}, {}
    for path in test_files:
        subject = path.name[: -len("_test.csv")]
        test[subject] = _read_csv(path, subject)
        dev_path = folder / "dev" / f"{subject}_dev.csv"
        if not dev_path.is_file():
            raise FileNotFoundError(f"{dev_path} is missing: every subject needs its 5 dev (few-shot) examples")
        dev[subject] = _read_csv(dev_path, subject)
    return MMLUData(dev=dev, test=test)


def load_mmlu_hub(subjects: Sequence[str] | None = None) -> MMLUData:
    """The real MMLU (``cais/mmlu``, config "all") through HF datasets."""
    ds = _datasets()
    data = {}
    for split in ("dev", "test"):
        by_subject: dict[str, list[MMLUQuestion]] = {}
        for row in ds.load_dataset("cais/mmlu", "all", split=split):
            if subjects and row["subject"] not in subjects:
                continue
            q = MMLUQuestion(row["question"], tuple(row["choices"]), LETTERS[row["answer"]], row["subject"])
            by_subject.setdefault(row["subject"], []).append(q)
        data[split] = by_subject
    return MMLUData(dev=data["dev"], test=data["test"])


def load_mmlu(source: str = "lab") -> MMLUData:
    """MMLU questions from "lab", "cais/mmlu" or a local folder (see module docstring)."""
    if source == "lab":
        return load_mmlu_csv(data_dir() / LAB_MMLU)
    if source in ("cais/mmlu", "mmlu"):
        return load_mmlu_hub()
    return load_mmlu_csv(source)
