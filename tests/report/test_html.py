"""The report end to end on a tiny digits study: every section, every analysis, self-contained."""

import re

import pytest

from mnistlab.analysis import registered
from mnistlab.report import write_report
from mnistlab.studies.runner import run_study
from mnistlab.studies.spec import parse_study

STUDY = """
name: tiny-report
description: Two activations on scikit-learn's digits.
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 200}}
model: {hidden: [6]}
training: {optimizer: adam, epochs: 2, batch_size: 64}
grid: {model.activation: [sigmoid, relu]}
repetitions: 2
analyses: [%s]
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    names = ", ".join(registered())
    text = STUDY % names
    run_study(parse_study(text, "tiny.yaml"), text, results)
    path = write_report("tiny-report", results)
    return path, path.read_text()


def test_report_is_written_next_to_the_runs(report):
    path, _ = report
    assert path.name == "report.html"
    assert path.parent.name == "tiny-report"


def test_report_holds_every_section_and_analysis(report):
    _, html = report
    for section in ("description", "summary", "statistics", "analyses", "runs", "environment"):
        assert f'id="{section}"' in html
    for name in registered():
        assert f'id="analysis-{name}"' in html
    assert "Two activations on scikit-learn" in html
    assert "failed:" not in html


def test_report_is_self_contained(report):
    _, html = report
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert html.count('src="data:image/png;base64,') >= len(registered()) - 3
    assert '<table class="sortable">' in html
