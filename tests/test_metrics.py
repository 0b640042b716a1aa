"""Metrics against values computed by hand."""
import pytest
import torch

from harness_evaluators.classification import classification_metrics


def logits_for(predictions, classes=3):
    return torch.nn.functional.one_hot(torch.tensor(predictions), classes).float() * 5


def test_metrics_match_hand_computed_values():
    # true:      a a a b b c
    # predicted: a a b b c c
    labels = [0, 0, 0, 1, 1, 2]
    scores = classification_metrics(labels, logits_for([0, 0, 1, 1, 2, 2]), ["a", "b", "c"])
    assert scores["accuracy"] == pytest.approx(4 / 6)
    # precision: a 2/2, b 1/2, c 1/2 ; recall: a 2/3, b 1/2, c 1/1
    assert scores["precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert scores["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    f1 = [2 * p * r / (p + r) for p, r in ((1, 2 / 3), (0.5, 0.5), (0.5, 1))]
    assert scores["f1"] == pytest.approx(sum(f1) / 3)
    assert scores["per_class"]["a"] == pytest.approx({"precision": 1, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert scores["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_a_class_never_predicted_scores_zero_not_nan():
    scores = classification_metrics([0, 1, 2], logits_for([0, 0, 0]), ["a", "b", "c"])
    assert scores["per_class"]["b"]["precision"] == 0
    assert scores["confusion"][1] == [1, 0, 0]
