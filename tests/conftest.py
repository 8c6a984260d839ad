"""Shared test helpers: the Keras fixtures recorded by tests/fixtures/keras/record.py."""

import json
from pathlib import Path

import pytest

KERAS_FIXTURES = Path(__file__).parent / "fixtures" / "keras"


@pytest.fixture(scope="session")
def keras_fixture():
    """Load one recorded Keras fixture by stem, e.g. keras_fixture('training')."""

    def load(stem: str) -> dict:
        return json.loads((KERAS_FIXTURES / f"{stem}.json").read_text())

    return load
