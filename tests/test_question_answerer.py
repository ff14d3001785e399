"""Question answering: the model, span decoding and the SQuAD metric."""

import re

import numpy as np
import pytest

import keras_electra
from conftest import numpy_tree, tiny_backbone, tiny_batch
from keras_electra.data.squad import answer_from_span
from keras_electra.data.squad import best_spans
from keras_electra.data.squad import normalize_answer
from keras_electra.data.squad import squad_answer
from keras_electra.data.squad import squad_metric
from keras_electra.data.squad import squad_windows


def test_logits_shapes_and_padding_never_answers():
    answerer = keras_electra.ElectraQuestionAnswerer(tiny_backbone())
    batch = tiny_batch(batch_size=4, length=24)
    out = numpy_tree(answerer(batch))
    assert out["start_logits"].shape == out["end_logits"].shape == (4, 24)
    padded = batch["padding_mask"] == 0
    assert padded.any()
    assert (out["start_logits"][padded] < -1e8).all()


def test_fit_on_positions_and_preset_roundtrip(tmp_path):
    answerer = keras_electra.ElectraQuestionAnswerer(tiny_backbone())
    batch = tiny_batch(batch_size=8, length=16)
    y = {
        "start_positions": np.full(8, 3),
        "end_positions": np.full(8, 5),
    }
    history = answerer.fit(batch, y, batch_size=4, epochs=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    answerer.save_to_preset(str(tmp_path))
    restored = keras_electra.ElectraQuestionAnswerer.from_preset(
        str(tmp_path)
    )
    np.testing.assert_array_equal(
        numpy_tree(restored(batch))["start_logits"],
        numpy_tree(answerer(batch))["start_logits"],
    )


def test_best_spans_respect_order_length_and_context():
    start = np.array([9.0, 0.0, 3.0, 1.0, 2.0, 0.0])
    end = np.array([9.0, 4.0, 0.0, 0.0, 1.0, 2.0])
    context = np.array([False, True, True, True, True, True])
    spans = best_spans(start, end, context, max_answer_length=3)
    for s, e, score in spans:
        assert context[s] and context[e] and s <= e < s + 3
        assert score == start[s] + end[e]
    assert spans[0][:2] == (2, 4)
    assert [score for *_, score in spans] == sorted(
        (score for *_, score in spans), reverse=True
    )
    # [CLS] scores 18, best span 5: no answer unless the threshold is high.
    assert best_spans(start, end, context, no_answer_threshold=0.0) == []
    assert best_spans(start, end, context, no_answer_threshold=20.0)


def test_squad_metric_follows_the_official_rules():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    result = squad_metric(
        {"a": "the Eiffel Tower", "b": "in Paris France", "c": "", "d": "x"},
        {"a": ["Eiffel Tower"], "b": ["Paris", "Paris, France"], "c": [],
         "d": []},
    )
    # a: exact; b: "in" is extra (F1 0.8 against "Paris, France");
    # c: right "no answer"; d: an answer where there is none.
    assert result["exact_match"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(100 * (1 + 0.8 + 1 + 0) / 4)
    partial = squad_metric({"q": "big red car"}, {"q": ["red car"]})
    assert partial["exact_match"] == 0.0
    assert partial["f1"] == pytest.approx(100 * 2 * (2 / 3) * 1 / (2 / 3 + 1))
    with pytest.raises(ValueError, match="No prediction"):
        squad_metric({}, {"q": ["x"]})


QA_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "where", "is",
                 "the", "tower", "?", "it", "stands", "in", "paris", ",",
                 "france", ".", "a", "city", "on", "river", "se", "##ine"]


def test_windows_cover_a_long_context_and_find_the_answer():
    tokenizer = keras_electra.ElectraTokenizer(QA_VOCABULARY, lowercase=True)
    context = ("It stands in Paris, France. " * 3) + "A city on the Seine."
    answer_start = context.index("Seine")
    windows = squad_windows(
        tokenizer, "Where is the tower?", context, sequence_length=16,
        doc_stride=4, answer_start=answer_start, answer_text="Seine",
    )
    assert len(windows) > 3
    assert all(len(w["token_ids"]) == 16 for w in windows)
    holding = [w for w in windows if w["start_position"] > 0]
    assert holding
    for window in holding:
        # "Seine" is two pieces, se ##ine; the span maps back to the text.
        assert window["end_position"] == window["start_position"] + 1
        text = answer_from_span(
            context, window, window["start_position"], window["end_position"]
        )
        assert text == "Seine"
    # Question tokens and [CLS] have no context offsets.
    assert answer_from_span(context, windows[0], 0, 3) == ""
    # Every context token appears in some window.
    covered = set()
    for window in windows:
        covered |= {o for o in window["offsets"] if o is not None}
    words = {(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", context)}
    assert covered == words


def test_unanswerable_questions_point_at_cls():
    tokenizer = keras_electra.ElectraTokenizer(QA_VOCABULARY, lowercase=True)
    [window] = squad_windows(
        tokenizer, "Where is the tower?", "A city.", sequence_length=16
    )
    assert (window["start_position"], window["end_position"]) == (0, 0)
    with pytest.raises(ValueError, match="no room"):
        squad_windows(tokenizer, "where " * 20, "A city.", sequence_length=16)


def test_answer_is_the_best_span_over_all_windows():
    tokenizer = keras_electra.ElectraTokenizer(QA_VOCABULARY, lowercase=True)
    context = ("It stands in Paris, France. " * 3) + "A city on the Seine."
    windows = squad_windows(
        tokenizer, "Where is the tower?", context, sequence_length=16,
        doc_stride=4,
    )
    start = np.zeros((len(windows), 16))
    end = np.zeros((len(windows), 16))
    # Make the last window point at "Seine" (pieces se ##ine), strongly.
    last = windows[-1]
    seine = [i for i, o in enumerate(last["offsets"])
             if o is not None and context[o[0]:o[1]] == "Seine"]
    start[-1, seine[0]], end[-1, seine[-1]] = 8.0, 8.0
    assert squad_answer(context, windows, start, end) == "Seine"
    # SQuAD 2.0: a [CLS] score far above every span means no answer.
    start[0, 0] = end[0, 0] = 50.0
    assert squad_answer(
        context, windows, start, end, no_answer_threshold=0.0
    ) == ""
    assert squad_answer(context, windows, start, end) == "Seine"
