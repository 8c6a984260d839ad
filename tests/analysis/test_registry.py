"""The registry: names agree with the study schema, options are checked, captures derived."""

import pytest

from mnistlab.analysis import captures_for, get_analysis, parse_options, registered
from mnistlab.errors import MnistlabError, SpecError
from mnistlab.studies.loading import parse_study
from mnistlab.studies.spec import KNOWN_ANALYSES
from mnistlab.training.probes import CAPTURES


def test_every_known_analysis_is_registered_and_no_other():
    assert set(registered()) == set(KNOWN_ANALYSES)


def test_every_analysis_has_a_one_sentence_caption_and_known_captures():
    for definition in registered().values():
        assert definition.caption.endswith(".")
        assert set(definition.captures) <= set(CAPTURES)


def test_bad_option_names_the_field():
    with pytest.raises(SpecError, match="analyses: curves: options: layout"):
        parse_options("curves", {"layout": "sideways"})


def test_bad_option_in_a_study_names_the_file_and_entry():
    text = "name: s\nanalyses: [curves, {name: tsne, options: {perplexity: -1}}]\n"
    with pytest.raises(SpecError, match=r"s.yaml: analyses\[1\] \(tsne\) options: perplexity"):
        parse_study(text, "s.yaml")  # loading checks the options, as captures_for does


def test_unknown_analysis_is_one_line():
    with pytest.raises(MnistlabError, match="unknown analysis 'nope'"):
        get_analysis("nope")


def test_captures_follow_the_study_analyses():
    spec = parse_study(
        "name: s\nanalyses: [curves, weight_histograms, learning_speed, hidden_weights_images]\n"
    )
    assert captures_for(spec) == ("initial_weights", "learning_speed")
