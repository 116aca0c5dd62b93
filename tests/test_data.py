"""The lab's shipped data and the local loaders (no network)."""

import csv
from collections import Counter

import pytest

from labkit.eval.data import data_dir, load_mmlu, load_mmlu_csv, load_ppl_text, load_text_file


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
