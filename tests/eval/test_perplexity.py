"""Perplexity (GPTQ protocol) against closed forms and against transformers' own loss."""

import math

import pytest
import torch

from labkit.eval.perplexity import make_windows, perplexity, perplexity_of_windows, tokenize_corpus
from labkit.models.tiny import tiny_model, tiny_tokenizer


class _Out:
    def __init__(self, logits):
        self.logits = logits


class BigramModel(torch.nn.Module):
    """logits at position t = table[x_t]: the NLL of token t+1 is -log softmax(table[x_t])[x_{t+1}]."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(table, requires_grad=False)

    def forward(self, input_ids):
        return _Out(self.table[input_ids])


def test_uniform_model_has_ppl_equal_to_vocab():
    model = BigramModel(torch.zeros(7, 7))
    windows = torch.randint(0, 7, (3, 10))
    r = perplexity_of_windows(model, windows)
    assert r.ppl == pytest.approx(7.0, rel=1e-6)
    assert r.tokens == 3 * 9 and r.windows == 3 and r.seq_len == 10


def test_bigram_closed_form():
    g = torch.Generator().manual_seed(0)
    table = torch.randn(5, 5, generator=g)
    windows = torch.randint(0, 5, (4, 6), generator=g)
    logp = torch.log_softmax(table.double(), -1)
    nll = [-logp[w[t], w[t + 1]].item() for w in windows for t in range(5)]  # next token, not the same one
    r = perplexity_of_windows(BigramModel(table), windows, batch_size=3)
    assert r.nll == pytest.approx(sum(nll) / len(nll), rel=1e-6)
    assert r.ppl == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-6)


def test_windows_and_max_tokens():
    ids = torch.arange(23)
    w = make_windows(ids, 5)
    assert w.shape == (4, 5) and w[1, 0] == 5 and w[-1, -1] == 19  # tail 20..22 dropped, no overlap
    with pytest.raises(ValueError, match="fewer than one window"):
        make_windows(torch.arange(4), 5)
    tok = tiny_tokenizer()
    ids = tokenize_corpus(["first doc", "second doc"], tok, max_tokens=12)
    assert ids.tolist() == tok("first doc\n\nsecond doc").input_ids[:12]
    with pytest.raises(ValueError, match="empty"):
        tokenize_corpus(["  "], tok)


def test_matches_transformers_loss_and_batching():
    model, tok = tiny_model("llama", seed=2), tiny_tokenizer()
    text = "The quick brown fox jumps over the lazy dog. " * 12
    r1 = perplexity(model, tok, text, seq_len=32, max_tokens=200, batch_size=1)
    r4 = perplexity(model, tok, text, seq_len=32, max_tokens=200, batch_size=4)
    windows = make_windows(tokenize_corpus(text, tok, 200), 32)
    with torch.no_grad():
        losses = [model(input_ids=w[None], labels=w[None]).loss.item() for w in windows]  # HF's own shift + CE
    assert r1.ppl == pytest.approx(math.exp(sum(losses) / len(losses)), rel=1e-5)
    assert r4.ppl == pytest.approx(r1.ppl, rel=1e-5)
    assert r1.windows == 200 // 32
