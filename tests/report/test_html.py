"""The report end to end on a tiny digits study: every section, every analysis, self-contained."""

import re

from mnistlab.analysis import registered

NOT_APPLICABLE_HERE = {  # an MLP classifier without feature steps says nothing here
    "chain_product",  # needs one-unit hidden layers
    "feature_selection",  # needs pca / forest_select steps
    "regression_fit",  # needs a regression CSV
    "initial_predictions",  # needs the numpy engine
    "feature_maps",  # needs a CNN
}


def test_report_is_written_next_to_the_runs(tiny_report):
    path, _ = tiny_report
    assert path.name == "report.html"
    assert path.parent.name == "tiny-report"


def test_report_holds_every_section_and_analysis(tiny_report):
    _, html = tiny_report
    for section in ("description", "summary", "statistics", "analyses", "runs", "environment"):
        assert f'id="{section}"' in html
    for name in registered():
        section = html.split(f'id="analysis-{name}"')[1].split("</section>")[0]
        assert ("Not shown" in section) == (name in NOT_APPLICABLE_HERE), name
    assert "Two activations on scikit-learn" in html
    assert "failed:" not in html


def test_report_is_self_contained(tiny_report):
    _, html = tiny_report
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert (
        html.count('src="data:image/png;base64,')
        >= len(registered()) - len(NOT_APPLICABLE_HERE) - 2
    )
    assert '<table class="sortable">' in html


def test_report_shows_each_models_keras_summary_once(tiny_report):
    _, html = tiny_report
    section = html.split('id="analysis-model_summary"')[1].split("</section>")[0]
    # digits: 64 inputs, hidden [2, 4], 10 classes; both activations, one table each
    assert section.count("<h4>") == 2
    for cells in ("dense (Dense)", "(None, 2)", "130", "dense_2 (Dense)", "(None, 10)", "50"):
        assert f"<td>{cells}</td>" in section, cells
    assert section.count("<td>192</td>") == 4  # Total and Trainable of each model
