import pytest
import torch

from solved_notebooks import solved_runs  # noqa: F401  (session fixture: each solved notebook executed once)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (marked gpu); this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
