import time

import numpy as np
import pytest
from sklearn.metrics import f1_score

from dxgraph.bench.metrics import (
    Outcome,
    compute_metrics,
    confusion_matrix,
    group_metrics,
    outcome_from_result,
    paired_differences,
)


def _o(case, truth, pred, *, temp="neutral", strategy="dialogue", doctor="rules", turns=3,
       facts=0.5, rubric=None, top3=None):
    correct = pred == truth
    return Outcome(key=f"{case}|{temp}|{strategy}|{doctor}", case_id=case, temperament=temp,
                   strategy=strategy, doctor=doctor, truth=truth, predicted=pred, correct=correct,
                   top3_correct=correct if top3 is None else top3, turns=turns, facts_elicited=facts,
                   rubric=rubric or {})


def test_known_accuracy_f1_and_abstention_counted_wrong():
    outs = [_o("c1", "A", "A"), _o("c2", "A", "B"), _o("c3", "B", "B"), _o("c4", "B", None)]
    m = group_metrics(outs, reps=200)
    assert m["top1_accuracy"]["value"] == pytest.approx(0.5)
    # F1(A) = 2/3, F1(B) = 1/2 -> macro = weighted = 7/12; the abstention is a miss for B
    assert m["macro_f1"]["value"] == pytest.approx(7 / 12)
    assert m["weighted_f1"]["value"] == pytest.approx(7 / 12)
    assert m["abstention_rate"]["value"] == pytest.approx(0.25)
    assert m["top1_accuracy"]["n"] == 4


def test_f1_matches_sklearn_on_random_answers():
    rng = np.random.default_rng(3)
    labs = ["a", "b", "c", "d", "e"]
    outs = []
    for i in range(120):
        truth = labs[rng.integers(5)]
        r = rng.random()
        pred = None if r < 0.1 else (truth if r < 0.6 else labs[rng.integers(5)])
        outs.append(_o(f"c{i}", truth, pred))
    m = group_metrics(outs, reps=0)
    y_true = [o.truth for o in outs]
    y_pred = [o.predicted or "(none)" for o in outs]
    present = sorted(set(y_true) | {p for p in y_pred if p != "(none)"})
    assert m["macro_f1"]["value"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro"))
    assert m["weighted_f1"]["value"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="weighted"))


def test_ci_contains_value_is_seeded_and_fast():
    rng = np.random.default_rng(0)
    outs = [_o(f"c{i}", "A" if i % 2 else "B", ("A" if i % 2 else "B") if rng.random() < 0.7 else "C",
               temp=t, rubric={"empathy": float(rng.integers(0, 3)), "overall": "satisfactory"})
            for i in range(70) for t in ("neutral", "sanguine", "choleric", "melancholic", "phlegmatic")]
    start = time.perf_counter()
    m = compute_metrics(outs, reps=1000, seed=1)
    assert time.perf_counter() - start < 5.0
    for name, v in m["overall"].items():
        assert v["ci_low"] <= v["value"] <= v["ci_high"], name
    acc = m["overall"]["top1_accuracy"]
    assert 0.0 < acc["ci_high"] - acc["ci_low"] < 0.5
    assert m["overall"]["rubric.overall"]["value"] == pytest.approx(1.0)
    assert set(m["by_temperament"]) == {"neutral", "sanguine", "choleric", "melancholic", "phlegmatic"}
    again = compute_metrics(outs, reps=1000, seed=1)
    assert again["overall"]["top1_accuracy"] == acc


def test_paired_difference_sign_and_interval():
    outs = []
    for i in range(40):
        truth = f"L{i % 4}"
        outs.append(_o(f"c{i}", truth, truth if i % 10 else "L9", strategy="dialogue"))  # 90%
        outs.append(_o(f"c{i}", truth, truth if i % 2 else "L9", strategy="single"))  # 50%
    d = paired_differences(outs, "strategy", reps=500, order=["dialogue", "single"])
    diff = d["dialogue - single"]["top1_accuracy"]
    assert diff["value"] == pytest.approx(0.4)
    assert 0 < diff["ci_low"] <= diff["value"] <= diff["ci_high"]
    assert diff["n"] == 40
    rev = paired_differences(outs, "strategy", reps=500, order=["single", "dialogue"])
    assert rev["single - dialogue"]["top1_accuracy"]["value"] == pytest.approx(-0.4)


def test_paired_uses_only_shared_cases():
    outs = [_o("c1", "A", "A", strategy="x"), _o("c2", "A", "A", strategy="x"),
            _o("c1", "A", "B", strategy="y")]
    d = paired_differences(outs, "strategy", reps=50)
    assert d["x - y"]["top1_accuracy"]["n"] == 1
    assert d["x - y"]["top1_accuracy"]["value"] == pytest.approx(1.0)


def test_per_label_and_confusion():
    outs = [_o("c1", "A", "A"), _o("c2", "A", "B"), _o("c3", "B", "B"), _o("c4", "B", None)]
    m = compute_metrics(outs, reps=100)
    assert m["by_label"]["A"]["top1_accuracy"]["value"] == pytest.approx(0.5)
    assert m["by_label"]["A"]["f1"]["value"] == pytest.approx(2 / 3)
    cm = confusion_matrix(outs)
    assert cm["columns"][-3:] == ["(other)", "(unparseable)", "(abstained)"]
    assert cm["matrix"] == [[1, 1, 0, 0, 0], [0, 1, 0, 0, 1]]


def test_outcome_from_result_uses_judge_and_rubric_scores():
    from dxgraph.bench.judge import JudgeResult
    from dxgraph.bench.record import SampleResult
    from dxgraph.types import FinalDiagnosis

    def rec(**judge):
        base = dict(correct=False, top3_correct=False, predicted_label=None, true_label="acne", match="table",
                    rubric={}, judge="rules")
        return SampleResult(truth="acne", final=FinalDiagnosis(label="acne vulgaris"), turns=5, facts_elicited=0.4,
                            judge=JudgeResult(**{**base, **judge}))

    o = outcome_from_result("k", "c1", "neutral", "dialogue", "rules",
                            rec(correct=True, top3_correct=True, predicted_label="acne vulgaris",
                                rubric={"empathy": 2.0, "history": 1.0, "note": None}))
    assert o.predicted == "acne" and o.correct and o.turns == 5.0
    assert o.rubric == {"empathy": 2.0, "history": 1.0}
    abst = outcome_from_result("k", "c1", "neutral", "dialogue", "rules", rec(match="abstained").model_dump_json())
    assert abst.predicted is None and not abst.top3_correct and not abst.correct


def test_empty_metrics_do_not_crash():
    m = compute_metrics([])
    assert m["overall"] == {} and m["n_samples"] == 0


def test_stored_records_load_typed_and_a_renamed_field_is_an_error_not_a_wrong_accuracy():
    import pytest
    from pydantic import ValidationError

    from dxgraph.bench.metrics import outcome_from_result
    from dxgraph.bench.record import SampleResult

    # A row exactly as the dict-writing version stored it (field names unchanged) still loads.
    old_row = ('{"truth": "acne", "synthetic": true, "final": {"label": "acne", "confidence": 0.7, '
               '"differential": [], "basis": ""}, "judge": {"correct": true, "top3_correct": true, '
               '"predicted_label": "acne", "true_label": "acne", "match": "table", "rubric": {"empathy": 1.0}, '
               '"rubric_reasons": {}, "judge": "rules", "label_table_version": "1", "input_tokens": 0, '
               '"output_tokens": 0}, "disclosed": {"f1": 2}, "facts_elicited": 0.5, "n_facts": 4, "turns": 3, '
               '"messages": 7, "ended_by": "doctor", "tokens": {"input": 0, "output": 0}, "seconds": 0.1}')
    rec = SampleResult.from_json(old_row)
    assert rec.judge.correct and rec.turns == 3 and rec.tokens.input == 0
    o = outcome_from_result("k", "c", "neutral", "dialogue", "rules", old_row)
    assert o.correct and o.predicted == "acne" and o.turns == 3.0 and o.facts_elicited == 0.5
    # The dict reader defaulted a missing 'judge.correct' to False: a renamed key read as "wrong".
    renamed = old_row.replace('"correct": true', '"is_correct": true')
    with pytest.raises(ValidationError):
        outcome_from_result("k", "c", "neutral", "dialogue", "rules", renamed)
    assert SampleResult.from_json(rec.model_dump_json()) == rec


# ----------------------------------------------------------------- issue 13: statistics
def _noisy_run(n_cases=60, labels=("A", "B", "C", "D", "E", "F", "G", "H"), seed=3):
    """Cases with a doctor right ~75% of the time, wrong answers spread over all labels."""
    rng = np.random.default_rng(seed)
    outs = []
    for i in range(n_cases):
        truth = labels[i % len(labels)]
        pred = truth if rng.random() < 0.75 else labels[int(rng.integers(len(labels)))]
        outs.append(_o(f"c{i:03d}", truth, pred))
    return outs


def test_macro_f1_is_over_labels_with_support_and_equals_sklearn_labels_of_the_truth():
    # "Z" is predicted but never true: it is a false positive of A, not a class with F1 = 0.
    outs = [_o("c1", "A", "A"), _o("c2", "A", "Z"), _o("c3", "B", "B"), _o("c4", "B", "B")]
    m = group_metrics(outs, reps=0)
    truth = [o.truth for o in outs]
    pred = [o.predicted for o in outs]
    expected = f1_score(truth, pred, labels=sorted(set(truth)), average="macro")
    assert m["macro_f1"]["value"] == pytest.approx(expected)  # (2/3 + 1) / 2, old code: / 3


def test_bootstrap_mean_of_macro_f1_sits_near_the_point_estimate():
    # The bundled test split's shape: 17 labels, two cases each, wrong answers spread.
    labels = tuple(f"L{i:02d}" for i in range(17))
    d_outs = _noisy_run(n_cases=34, labels=labels)
    point = group_metrics(d_outs, reps=0)["macro_f1"]["value"]
    from dxgraph.bench.metrics import _Design, _labels, _metric_arrays, _weights

    d = _Design(d_outs, _labels(d_outs))
    w, idx = _weights([o.case_id for o in d_outs], 2000, 0)
    arrays, _ = _metric_arrays(d, w[:, idx])
    boot = arrays["macro_f1"][1:]
    # The old average over every label with any TP/FP/FN put the mean 0.034 below the point
    # here (a label drawn out of the truth but still predicted entered with F1 = 0); now 0.015.
    assert abs(np.nanmean(boot) - point) < 0.025


def test_a_label_without_support_has_no_f1_not_zero():
    outs = [_o("c1", "A", "A"), _o("c2", "A", "Z"), _o("c3", "B", "B")]
    by_label = compute_metrics(outs, reps=50)["by_label"]
    assert by_label["Z"]["f1"]["value"] is None
    assert by_label["Z"]["support"] == 0 and by_label["Z"]["predicted"] == 1
    assert by_label["A"]["support"] == 2


def test_failures_count_as_wrong_in_the_all_assigned_accuracy():
    from dxgraph.bench.metrics import failed_outcome

    outs = [_o("c1", "A", "A"), _o("c2", "B", "B"),
            failed_outcome("c3|neutral|dialogue|rules", "c3", "neutral", "dialogue", "rules"),
            failed_outcome("c4|neutral|dialogue|rules", "c4", "neutral", "dialogue", "rules")]
    m = compute_metrics(outs, reps=100)
    overall = m["overall"]
    assert overall["top1_accuracy"]["value"] == pytest.approx(1.0)
    assert overall["top1_accuracy"]["n"] == 2
    assert overall["top1_accuracy_all_assigned"]["value"] == pytest.approx(0.5)
    assert overall["top1_accuracy_all_assigned"]["n"] == 4
    assert overall["failure_rate"]["value"] == pytest.approx(0.5)
    assert m["n_failed"] == 2 and m["confusion"]["failed"] == 2
    # A doctor crashing on the hard cases does not look better than one answering them wrong.
    honest = compute_metrics([_o("c1", "A", "A"), _o("c2", "B", "B"), _o("c3", "A", "B"), _o("c4", "B", "A")],
                             reps=0)["overall"]
    assert overall["top1_accuracy_all_assigned"]["value"] == honest["top1_accuracy"]["value"]


def _record(label, *, basis="", correct=False, predicted=None, match="table"):
    from dxgraph.bench.judge import JudgeResult
    from dxgraph.bench.record import SampleResult
    from dxgraph.types import FinalDiagnosis

    return SampleResult(truth="acne", final=FinalDiagnosis(label=label, basis=basis),
                        judge=JudgeResult(correct=correct, top3_correct=correct, predicted_label=predicted,
                                          true_label="acne", match=match, rubric={}, judge="rules"))


def test_other_unparseable_and_abstained_are_three_separate_counts():
    recs = {
        "c1": _record("acne", correct=True, predicted="acne"),
        "c2": _record("other", match="unmatched"),
        "c3": _record(None, basis="no usable answer after repairs: label 'x' is not in the answer list",
                      match="abstained"),
        "c4": _record(None, match="abstained"),
        "c5": _record("some rash", match="unmatched"),
    }
    outs = [outcome_from_result(f"{c}|n|d|r", c, "n", "d", "r", r) for c, r in recs.items()]
    assert [o.answer for o in outs] == ["label", "other", "unparseable", "abstained", "unparseable"]
    m = group_metrics(outs, reps=0)
    assert m["other_rate"]["value"] == pytest.approx(0.2)
    assert m["unparseable_rate"]["value"] == pytest.approx(0.4)
    assert m["abstention_rate"]["value"] == pytest.approx(0.2)
    cm = confusion_matrix(outs)
    row = dict(zip(cm["columns"], cm["matrix"][cm["labels"].index("acne")]))
    assert (row["(other)"], row["(unparseable)"], row["(abstained)"]) == (1, 2, 1)


def test_3mdbench_f1_drops_none_answers_but_strict_f1_does_not():
    outs = [_o("c1", "A", "A"), _o("c2", "A", None), _o("c3", "B", "B"), _o("c4", "B", "A")]
    m = group_metrics(outs, reps=0)
    truth = ["A", "B", "B"]
    pred = ["A", "B", "A"]
    assert m["f1_3mdbench"]["value"] == pytest.approx(f1_score(truth, pred, average="weighted"))
    assert m["weighted_f1"]["value"] < m["f1_3mdbench"]["value"]
