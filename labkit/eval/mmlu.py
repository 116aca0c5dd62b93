"""MMLU-style 5-shot multiple-choice accuracy, scored from one forward pass per question.

The prompt is the one of the original MMLU paper (Hendrycks et al.), which most tools reproduce:

    The following are multiple choice questions (with answers) about high school physics.

    <dev question 1>
    A. <choice>
    B. <choice>
    C. <choice>
    D. <choice>
    Answer: B

    ... 4 more dev examples ...
    <test question>
    A. <choice>
    ...
    D. <choice>
    Answer:

The model does not generate: we read its next-token logits after "Answer:" at the four tokens
" A", " B", " C", " D" (with the leading space, as the dev examples write them) and predict the
largest. No sampling, no parsing, and a model that would rather say "The" still gets a prediction.
Accuracy is reported overall (micro average over questions) and per subject; chance is 25%.

Why the prediction reads only four logits: quantization noise shifts every logit a little; reading
the argmax over four candidates shows *decision flips*, which is what accuracy measures. KL
divergence (``labkit.eval.kld``) sees the shifts themselves.

Cost: all prompts of a subject share the header and the 5 dev examples, so that prefix runs once and
its key/value cache serves every question; the questions of a batch are padded on the right (causal
attention never looks right, so padding changes nothing) and only the hidden state at each prompt's
last token goes through the lm_head — the (batch, seq, vocab) logits tensor is never built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from ..data import LETTERS, MMLUQuestion  # noqa: F401 - part of this module's API
from .progress import progress

SCORINGS = ("letter", "cloze")


@dataclass(frozen=True)
class SubjectScore:
    accuracy: float
    correct: int
    n: int


@dataclass(frozen=True)
class MMLUResult:
    """Overall accuracy over ``n`` test questions, per-subject scores, and every predicted letter."""

    accuracy: float
    correct: int
    n: int
    per_subject: dict[str, SubjectScore] = field(default_factory=dict)
    predictions: tuple[str, ...] = ()


def format_subject(subject: str) -> str:
    """"high_school_physics" → "high school physics"."""
    return " ".join(subject.split("_"))


def format_example(q: MMLUQuestion, include_answer: bool = True) -> str:
    """The question, its four lettered choices and "Answer:" (+ " X\\n\\n" for a dev example)."""
    text = q.question
    for letter, choice in zip(LETTERS, q.choices):
        text += f"\n{letter}. {choice}"
    text += "\nAnswer:"
    if include_answer:
        text += f" {q.answer}\n\n"
    return text


def format_prompt(subject: str, dev: Sequence[MMLUQuestion], question: MMLUQuestion, k: int = 5) -> str:
    """The k-shot prompt: header, the first ``k`` dev examples with answers, the question without."""
    if len(dev) < k:
        raise ValueError(f"subject {subject!r} has {len(dev)} dev examples, the {k}-shot prompt needs {k}")
    prompt = f"The following are multiple choice questions (with answers) about {format_subject(subject)}.\n\n"
    for example in dev[:k]:
        prompt += format_example(example, include_answer=True)
    return prompt + format_example(question, include_answer=False)


def answer_token_ids(tokenizer) -> list[int]:
    """Token ids of " A", " B", " C", " D"; each must be a single token."""
    ids = []
    for letter in LETTERS:
        toks = tokenizer(" " + letter, add_special_tokens=False).input_ids
        if len(toks) != 1:
            raise ValueError(f"the tokenizer splits {' ' + letter!r} into {len(toks)} tokens {toks}; "
                             f"MMLU scoring needs each answer letter to be one token")
        ids.append(toks[0])
    return ids


def _common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of token-id lists, leaving ≥ 1 own token to every list."""
    n = min(len(x) for x in seqs) - 1
    first = seqs[0]
    for i in range(n):
        if any(x[i] != first[i] for x in seqs):
            return i
    return n


@torch.inference_mode()
def _prefix_cache(model, prefix: Sequence[int]):
    """Run the shared prompt prefix once; returns its key/value cache (None for an empty prefix)."""
    if not prefix:
        return None
    device = next(model.parameters()).device
    return model.get_decoder()(input_ids=torch.tensor([list(prefix)], device=device), use_cache=True).past_key_values


@torch.inference_mode()
def _suffix_hidden(model, prefix_cache, suffixes: list[Sequence[int]], pad_id: int) -> torch.Tensor:
    """Final hidden states of ``prefix + suffix`` at the suffix positions: (b, max suffix len, H).

    The prefix's cache is copied and repeated for the batch (the copy keeps the original clean for
    the next batch). Suffixes are right-padded: positions past a suffix's end are garbage, unused.
    """
    import copy

    device = next(model.parameters()).device
    cache = None
    if prefix_cache is not None:
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(len(suffixes))
    ids = torch.full((len(suffixes), max(len(s) for s in suffixes)), pad_id, dtype=torch.long)
    for i, row in enumerate(suffixes):
        ids[i, : len(row)] = torch.tensor(list(row))
    return model.get_decoder()(input_ids=ids.to(device), past_key_values=cache,
                               use_cache=cache is not None).last_hidden_state


@torch.inference_mode()
def _letter_choice(model, cache, suffixes, pad_id, letter_ids) -> list[int]:
    """Index of the largest of the " A".." D" logits after each prompt's last token."""
    hidden = _suffix_hidden(model, cache, suffixes, pad_id)
    last = torch.tensor([len(s) - 1 for s in suffixes], device=hidden.device)
    logits = model.get_output_embeddings()(hidden[torch.arange(len(suffixes), device=hidden.device), last])
    return logits.float()[:, letter_ids.to(logits.device)].argmax(-1).tolist()


@torch.inference_mode()
def _continuation_logprob(model, cache, suffixes, pad_id, n_cont: list[int]) -> list[float]:
    """Sum of log p over the last ``n_cont[i]`` tokens of each suffix (the answer text)."""
    hidden = _suffix_hidden(model, cache, suffixes, pad_id)
    head = model.get_output_embeddings()
    scores = []
    for i, (suffix, n) in enumerate(zip(suffixes, n_cont)):
        positions = torch.arange(len(suffix) - n - 1, len(suffix) - 1, device=hidden.device)
        logp = torch.log_softmax(head(hidden[i, positions]).float(), -1)
        targets = torch.tensor(list(suffix[len(suffix) - n :]), device=logp.device)
        scores.append(float(logp.gather(-1, targets[:, None]).sum()))
    return scores


def _cloze_example(q: MMLUQuestion, include_answer: bool = True) -> str:
    text = f"Question: {q.question}\nAnswer:"
    return text + (f" {q.choices[LETTERS.index(q.answer)]}\n\n" if include_answer else "")


def format_cloze_prompt(subject: str, dev: Sequence[MMLUQuestion], question: MMLUQuestion, k: int = 5) -> str:
    """The cloze variant: no lettered choices; dev examples answered with the answer *text*."""
    if len(dev) < k:
        raise ValueError(f"subject {subject!r} has {len(dev)} dev examples, the {k}-shot prompt needs {k}")
    prompt = f"The following are questions (with answers) about {format_subject(subject)}.\n\n"
    return prompt + "".join(_cloze_example(d) for d in dev[:k]) + _cloze_example(question, include_answer=False)


def _encode(tokenizer, context: str, continuation: str = "") -> tuple[list[int], int]:
    """ids of context+continuation and how many of them belong to the continuation."""
    ctx = tokenizer(context).input_ids
    if not continuation:
        return ctx, 0
    full = tokenizer(context + continuation).input_ids
    if full[: len(ctx)] != ctx:  # a merge across the boundary: score from the first differing token
        n_same = next(i for i, (a, b) in enumerate(zip(ctx, full)) if a != b)
        return full, len(full) - n_same
    return full, len(full) - len(ctx)


def mmlu_accuracy(
    model,
    tokenizer,
    dev: Mapping[str, Sequence[MMLUQuestion]],
    test: Mapping[str, Sequence[MMLUQuestion]],
    k: int = 5,
    batch_size: int = 8,
    scoring: str = "letter",
) -> MMLUResult:
    """k-shot accuracy of ``model`` on every question of ``test`` (subject → questions).

    ``scoring="letter"`` is the MMLU protocol of the module docstring. ``scoring="cloze"`` asks the
    same questions without listing the choices ("Question: ...\nAnswer:") and predicts the choice
    whose *text* has the highest total log-probability as the continuation — the formulation used
    to evaluate small models (below ~1B parameters a model cannot yet map its knowledge to an
    answer letter, and letter accuracy sits at chance; see data/README.md).

    Per subject, all sequences share the header and the dev examples: the longest common prefix of
    their token ids runs once and its KV cache is reused (the split is on token ids, so tokenization
    is exactly that of the full prompt).
    """
    if scoring not in SCORINGS:
        raise ValueError(f"unknown MMLU scoring {scoring!r}; known: {', '.join(SCORINGS)}")
    if not any(test.values()):
        raise ValueError("no MMLU test questions to evaluate")
    letter_ids = torch.tensor(answer_token_ids(tokenizer)) if scoring == "letter" else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    per_q = 1 if scoring == "letter" else 4
    jobs = []  # (subject, prefix ids, [(question, [(suffix ids, n continuation tokens)] * per_q)])
    for subject, questions in test.items():
        if not questions:
            continue
        encoded = []
        for q in questions:
            if scoring == "letter":
                encoded.append([_encode(tokenizer, format_prompt(subject, dev.get(subject, ()), q, k))])
            else:
                ctx = format_cloze_prompt(subject, dev.get(subject, ()), q, k)
                encoded.append([_encode(tokenizer, ctx, " " + c) for c in q.choices])
        seqs = [ids[: len(ids) - n] for enc in encoded for ids, n in enc]  # prefixes end before answers
        cut = _common_prefix_len(seqs)
        items = [(q, [(ids[cut:], n) for ids, n in enc]) for q, enc in zip(questions, encoded)]
        step = max(1, batch_size // per_q)
        for start in range(0, len(items), step):
            jobs.append((subject, seqs[0][:cut], items[start : start + step]))
    per_subject_hits: dict[str, list[int]] = {}
    predictions: list[str] = []
    cached_subject, cache = None, None
    for subject, prefix, items in progress(jobs, desc="MMLU"):
        if subject != cached_subject:
            cached_subject, cache = subject, _prefix_cache(model, prefix)
        suffixes = [s for _, enc in items for s, _ in enc]
        if scoring == "letter":
            choices = _letter_choice(model, cache, suffixes, pad_id, letter_ids)
        else:
            scores = _continuation_logprob(model, cache, suffixes, pad_id, [n for _, enc in items for _, n in enc])
            choices = [max(range(4), key=lambda j: scores[4 * i + j]) for i in range(len(items))]
        for (q, _), c in zip(items, choices):
            predictions.append(LETTERS[c])
            per_subject_hits.setdefault(subject, []).append(int(LETTERS[c] == q.answer))
    per_subject = {s: SubjectScore(sum(v) / len(v), sum(v), len(v)) for s, v in per_subject_hits.items()}
    correct = sum(s.correct for s in per_subject.values())
    n = len(predictions)
    return MMLUResult(accuracy=correct / n, correct=correct, n=n, per_subject=per_subject,
                      predictions=tuple(predictions))
