"""MMLU 5-shot: the exact prompt string, the answer tokens, and predictions against full forwards."""

import pytest
import torch

from labkit.eval.mmlu import (LETTERS, MMLUQuestion, answer_token_ids, format_cloze_prompt, format_prompt,
                              mmlu_accuracy)
from labkit.models.tiny import tiny_model, tiny_tokenizer


def _q(i, answer="A", subject="toy_subject"):
    return MMLUQuestion(f"Q{i}?", (f"a{i}", f"b{i}", f"c{i}", f"d{i}"), answer, subject)


def test_prompt_exact_string():
    dev = [_q(i, "ABCDA"[i]) for i in range(5)]
    prompt = format_prompt("toy_subject", dev, _q(9))
    expected = (
        "The following are multiple choice questions (with answers) about toy subject.\n\n"
        "Q0?\nA. a0\nB. b0\nC. c0\nD. d0\nAnswer: A\n\n"
        "Q1?\nA. a1\nB. b1\nC. c1\nD. d1\nAnswer: B\n\n"
        "Q2?\nA. a2\nB. b2\nC. c2\nD. d2\nAnswer: C\n\n"
        "Q3?\nA. a3\nB. b3\nC. c3\nD. d3\nAnswer: D\n\n"
        "Q4?\nA. a4\nB. b4\nC. c4\nD. d4\nAnswer: A\n\n"
        "Q9?\nA. a9\nB. b9\nC. c9\nD. d9\nAnswer:"
    )
    assert prompt == expected
    with pytest.raises(ValueError, match="needs 5"):
        format_prompt("toy_subject", dev[:3], _q(9))


def test_question_validation():
    with pytest.raises(ValueError, match="A, B, C, D"):
        MMLUQuestion("q", ("a", "b", "c", "d"), "E")
    with pytest.raises(ValueError, match="4 choices"):
        MMLUQuestion("q", ("a", "b", "c"), "A")


def test_answer_tokens():
    tok = tiny_tokenizer()
    assert answer_token_ids(tok) == [tok.convert_tokens_to_ids("Ġ" + x) for x in LETTERS]

    class Splitter:
        def __call__(self, text, add_special_tokens=True):
            class R:
                input_ids = [1, 2]
            return R()

    with pytest.raises(ValueError, match="one token"):
        answer_token_ids(Splitter())


def test_predictions_match_full_forward():
    """The prefix-cached, batched scoring must pick what a plain forward of each full prompt picks."""
    model, tok = tiny_model("qwen3", seed=4), tiny_tokenizer()
    dev = {s: [_q(i, "ABCDA"[i], s) for i in range(5)] for s in ("sub_one", "sub_two")}
    test = {s: [_q(10 + i, LETTERS[i % 4], s) for i in range(6)] for s in ("sub_one", "sub_two")}
    letter_ids = answer_token_ids(tok)
    expected = []
    with torch.no_grad():
        for s, qs in test.items():
            for q in qs:
                ids = torch.tensor([tok(format_prompt(s, dev[s], q)).input_ids])
                expected.append(LETTERS[int(model(input_ids=ids).logits[0, -1, letter_ids].argmax())])
    for batch_size in (1, 4):
        r = mmlu_accuracy(model, tok, dev, test, batch_size=batch_size)
        assert list(r.predictions) == expected
    answers = [q.answer for qs in test.values() for q in qs]
    hits = [p == a for p, a in zip(expected, answers)]
    assert r.n == 12 and r.correct == sum(hits) and r.accuracy == sum(hits) / 12
    assert r.per_subject["sub_one"].correct == sum(hits[:6]) and r.per_subject["sub_two"].n == 6


def test_cloze_prompt_and_predictions_match_full_forward():
    """Cloze: the choice whose text has the highest total log-prob, computed here the slow plain way."""
    dev = [_q(i, "ABCDA"[i]) for i in range(5)]
    prompt = format_cloze_prompt("toy_subject", dev, _q(9))
    assert prompt.startswith("The following are questions (with answers) about toy subject.\n\n"
                             "Question: Q0?\nAnswer: a0\n\nQuestion: Q1?\nAnswer: b1\n\n")
    assert prompt.endswith("Question: Q4?\nAnswer: a4\n\nQuestion: Q9?\nAnswer:")

    model, tok = tiny_model("llama", seed=7), tiny_tokenizer()
    devs = {"toy_subject": dev}
    test = {"toy_subject": [MMLUQuestion(f"Q{i}?", ("red", "a blue one", "x", "green tea"), LETTERS[i % 4])
                            for i in range(5)]}
    expected = []
    with torch.no_grad():
        for q in test["toy_subject"]:
            ctx = tok(format_cloze_prompt("toy_subject", dev, q)).input_ids
            scores = []
            for choice in q.choices:
                full = tok(format_cloze_prompt("toy_subject", dev, q) + " " + choice).input_ids
                logp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].double(), -1)
                scores.append(sum(logp[t - 1, full[t]].item() for t in range(len(ctx), len(full))))
            expected.append(LETTERS[scores.index(max(scores))])
    for batch_size in (4, 8):
        r = mmlu_accuracy(model, tok, devs, test, batch_size=batch_size, scoring="cloze")
        assert list(r.predictions) == expected
    with pytest.raises(ValueError, match="letter, cloze"):
        mmlu_accuracy(model, tok, devs, test, scoring="logits")
