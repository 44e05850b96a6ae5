import pytest

from pipeline.analysis.metrics import edit_distance, error_rates

TOMATO_1 = ("T", "AH", "M", "EY", "T", "OW")
TOMATO_2 = ("T", "AH", "M", "AA", "T", "OW")


def test_edit_distance_known_values():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "") == 3
    assert edit_distance([], []) == 0
    assert edit_distance(TOMATO_1, TOMATO_2) == 1
    assert edit_distance(["K", "AE", "T"], ["K", "AE", "T", "S"]) == 1  # one insertion
    assert edit_distance("flaw", "lawn") == edit_distance("lawn", "flaw") == 2


def test_any_reference_counts_as_correct():
    hyps = [list(TOMATO_2), ["K", "AE", "T"], ["D", "AO"]]
    refs = [[TOMATO_1, TOMATO_2], [("K", "AE", "T")], [("D", "AO", "G")]]
    r = error_rates(hyps, refs)
    assert r["wer"] == pytest.approx(1 / 3)
    # Only "dog" has an error (one deletion) over 6 + 3 + 3 reference phonemes.
    assert r["per"] == pytest.approx(1 / 12)
    assert r["n_words"] == 3 and r["n_phonemes"] == 12


def test_per_uses_the_closest_reference_length():
    # Distance 1 to the long reference (one deletion), 2 to the short one: the long one is chosen.
    r = error_rates([["A", "B", "C"]], [[("X", "Y"), ("A", "B", "C", "D")]])
    assert r["wer"] == 1.0
    assert r["per"] == pytest.approx(1 / 4)


def test_ties_go_to_the_first_reference():
    # Both references are at distance 2; the first (length 3) is used, not the second (length 4).
    r = error_rates([["A", "B"]], [[("A", "C", "D"), ("A", "B", "C", "D")]])
    assert r["per"] == pytest.approx(2 / 3)


def test_perfect_and_all_wrong():
    refs = [[("A", "B")], [("C",)]]
    assert error_rates([["A", "B"], ["C"]], refs) == {"wer": 0.0, "per": 0.0, "ned": 0.0, "n_words": 2,
                                                      "n_phonemes": 3}
    r = error_rates([["X", "Y"], ["Z"]], refs)
    assert r["wer"] == 1.0 and r["per"] == 1.0


def test_ned_weighs_every_word_alike_unlike_per():
    # One error in a 1-phoneme word and none in a 4-phoneme word: NED = (1/1 + 0/4) / 2, PER = 1 / 5.
    r = error_rates([["X"], ["A", "B", "C", "D"]], [[("C",)], [("A", "B", "C", "D")]])
    assert r["ned"] == pytest.approx(0.5) and r["per"] == pytest.approx(1 / 5)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        error_rates([["A"]], [])
    with pytest.raises(ValueError):
        error_rates([["A"]], [[]])
    with pytest.raises(ValueError):
        error_rates([], [])
