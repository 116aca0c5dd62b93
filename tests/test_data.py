"""The lab's shipped data and the local loaders (no network)."""

import csv
from collections import Counter

import pytest

from labkit.data import data_dir, load_mmlu, load_mmlu_csv, load_ppl_text, load_text_file, tokenize_corpus


def test_lab_text():
    docs = load_ppl_text("lab")
    assert len(docs) == 1 and len(docs[0].split()) > 3000


def test_lab_mmlu_layout_and_balance():
    data = load_mmlu("lab")
    assert len(data.subjects) >= 5
    for s in data.subjects:
        assert len(data.dev[s]) == 5, f"{s}: the 5-shot prompt needs exactly 5 dev examples"
        assert len(data.test[s]) >= 20
        counts = Counter(q.answer for q in data.test[s])
        assert max(counts.values()) - min(counts.values()) <= 1, f"{s}: answer letters unbalanced {counts}"
        assert len({q.question for q in data.test[s]} | {q.question for q in data.dev[s]}) == 35


def test_limited():
    data = load_mmlu("lab").limited(["human_body"], 3)
    assert list(data.test) == ["human_body"] and len(data.test["human_body"]) == 3 and len(data.dev["human_body"]) == 5
    with pytest.raises(ValueError, match="available: "):
        load_mmlu("lab").limited(["astrology"])


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_local_mmlu_folder(tmp_path):
    row = ["What is 1+1?", "1", "2", "3", "4", "B"]
    _write(tmp_path / "dev" / "maths_dev.csv", [row] * 5)
    _write(tmp_path / "test" / "maths_test.csv", [row, ["Which, with comma?", "x", "y", "z", "w", "D"]])
    data = load_mmlu(str(tmp_path))
    assert data.test["maths"][1].question == "Which, with comma?" and data.test["maths"][1].answer == "D"
    assert data.test["maths"][0].choices == ("1", "2", "3", "4")


def test_local_mmlu_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="original layout"):
        load_mmlu_csv(tmp_path)
    _write(tmp_path / "test" / "x_test.csv", [["q", "a", "b", "c", "d", "A"]])
    with pytest.raises(FileNotFoundError, match="x_dev.csv"):
        load_mmlu_csv(tmp_path)
    _write(tmp_path / "dev" / "x_dev.csv", [["q", "a", "b", "A"]])
    with pytest.raises(ValueError, match="6 columns"):
        load_mmlu_csv(tmp_path)


def test_text_file(tmp_path):
    (tmp_path / "t.txt").write_text("hello\n\nworld")
    assert load_text_file(tmp_path / "t.txt") == ["hello\n\nworld"]
    with pytest.raises(FileNotFoundError, match="not found"):
        load_ppl_text(str(tmp_path / "missing.txt"))
    assert (data_dir() / "README.md").is_file()


def test_tokenize_corpus_joins_documents_with_a_blank_line():
    from labkit.models.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    ids = tokenize_corpus(["first document", "second one"], tok)
    assert ids.tolist() == tok("first document\n\nsecond one").input_ids and ids.dtype.is_floating_point is False
    assert tokenize_corpus("first document", tok, max_tokens=2).tolist() == tok("first document").input_ids[:2]
    with pytest.raises(ValueError, match="empty"):
        tokenize_corpus(["  ", ""], tok)
    with pytest.raises(ValueError, match="max_tokens"):
        tokenize_corpus("text", tok, max_tokens=1)


def test_old_import_places_still_work():
    """Notebooks written against labkit.eval.data / labkit.eval.perplexity keep working."""
    import labkit.data
    from labkit.eval import data as old_data
    from labkit.eval.perplexity import tokenize_corpus as old_tokenize

    assert old_data.load_ppl_text is labkit.data.load_ppl_text and old_data.MMLUData is labkit.data.MMLUData
    assert old_tokenize is tokenize_corpus
