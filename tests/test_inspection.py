"""keras_electra.pretraining.inspection: one step on real sentences, token
by token, what it reports and how it is shown (as text, as HTML, and in a
real browser)."""

import html.parser
import os
import shutil
import subprocess

import keras
import numpy as np
import pytest

import keras_electra
from keras_electra.pretraining import inspection
from keras_electra.pretraining.inspection import InspectedText
from keras_electra.pretraining.inspection import InspectedToken
from keras_electra.pretraining.inspection import Inspection

VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog",
    "sat", "ran", "on", "mat", "and", "big", "small", "red", "blue", "<",
    ">", "script", "##s",
]
TEXTS = [
    "the cat sat on the mat",
    "a big dog ran and the small cats sat",
    "<script> red blue",
]
MAX_LENGTH = 24


def tiny_pretrainer(tokenizer=True, **kwargs):
    if not tokenizer:
        ids = ("pad", "cls", "sep", "mask"), (0, 2, 3, 4)
        kwargs.update({f"{name}_token_id": i for name, i in zip(*ids)})
    backbone = keras_electra.ElectraBackbone(
        vocab_size=len(VOCABULARY), num_layers=1, num_heads=2, hidden_dim=16,
        embedding_dim=8, intermediate_dim=32, max_sequence_length=MAX_LENGTH,
    )
    return keras_electra.ElectraPretrainer(
        backbone,
        tokenizer=keras_electra.ElectraTokenizer(VOCABULARY)
        if tokenizer
        else None,
        generator_size=0.5,
        seed=7,
        **kwargs,
    )


@pytest.fixture(scope="module")
def pretrainer():
    # A high mask rate: several masked and replaced tokens per text.
    return tiny_pretrainer(mask_rate=0.4)


@pytest.fixture(scope="module")
def result(pretrainer):
    return inspection.inspect(pretrainer, TEXTS, seed=0)


def word_pieces(pretrainer, text):
    ids = np.asarray(pretrainer.tokenizer(text)).tolist()
    return [VOCABULARY[i] for i in ids]


def test_tokens_are_the_tokenizers_word_pieces(pretrainer, result):
    assert [text.text for text in result.texts] == TEXTS
    for text in result.texts:
        assert [t.original for t in text.tokens] == word_pieces(
            pretrainer, text.text
        )
        assert not text.truncated
    assert "##s" in [t.original for t in result.texts[1].tokens]
    long_text = " ".join(["red"] * 40)
    (cut,) = inspection.inspect(pretrainer, long_text).texts
    assert cut.truncated
    assert [t.original for t in cut.tokens] == ["red"] * (MAX_LENGTH - 2)


def test_labels_follow_the_generators_samples(result):
    tokens = result.tokens
    for token in tokens:
        assert token.replaced == (token.text != token.original)
        if not token.masked:
            assert token.text == token.original
        assert 0.0 <= token.probability <= 1.0
    for text in result.texts:
        # round(0.4 * real tokens), [CLS] and [SEP] counted, never masked.
        num_masked = sum(t.masked for t in text.tokens)
        assert num_masked == round(0.4 * (len(text.tokens) + 2))
    assert any(t.replaced for t in tokens)  # The checks above had work.
    assert result.seed == 0 and result.objective == "electra"


def test_probabilities_are_the_discriminators_on_the_corrupted_text(
    pretrainer, result
):
    token_ids = np.zeros((len(TEXTS), MAX_LENGTH), "int32")
    padding_mask = np.zeros_like(token_ids)
    for row, text in enumerate(result.texts):
        ids = [2] + [VOCABULARY.index(t.text) for t in text.tokens] + [3]
        token_ids[row, : len(ids)] = ids
        padding_mask[row, : len(ids)] = 1
    logits = pretrainer.discriminator.predict(
        {
            "token_ids": token_ids,
            "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask,
        },
        verbose=0,
    )
    for row, text in enumerate(result.texts):
        expected = 1 / (1 + np.exp(-logits[row, 1 : len(text.tokens) + 1]))
        np.testing.assert_allclose(
            [t.probability for t in text.tokens], expected, atol=1e-5
        )


def test_scores_count_the_tokens():
    def token(replaced, probability):
        return InspectedToken("x", "y" if replaced else "x", replaced,
                              replaced, probability)

    first = InspectedText("", [token(True, 0.9), token(False, 0.7),
                               token(True, 0.2), token(False, 0.1)], False)
    second = InspectedText("", [token(False, 0.3)], False)
    assert (first.precision, first.recall) == (0.5, 0.5)
    assert first.replaced_fraction == 0.5
    # Nothing called replaced, nothing replaced: undefined, not 0.
    assert second.precision is None and second.recall is None
    pooled = Inspection([first, second], seed=0, objective="electra")
    assert (pooled.precision, pooled.recall) == (0.5, 0.5)
    assert pooled.replaced_fraction == 2 / 5


def test_the_pretrainers_method_is_the_function(pretrainer, result):
    assert pretrainer.inspect(TEXTS, seed=0) == result


def test_the_same_seed_gives_the_same_result(pretrainer, result):
    assert inspection.inspect(pretrainer, TEXTS, seed=0) == result
    other = inspection.inspect(pretrainer, TEXTS, seed=1)
    assert [[t.masked for t in text.tokens] for text in other.texts] != [
        [t.masked for t in text.tokens] for text in result.texts
    ]


def test_the_training_random_stream_is_untouched(pretrainer):
    generator = pretrainer.seed_generator
    state = keras.ops.convert_to_numpy(generator.state.value).copy()
    num_variables = len(pretrainer.variables)
    inspection.inspect(pretrainer, TEXTS, seed=3)
    assert pretrainer.seed_generator is generator
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(generator.state.value), state
    )
    # No new state tracked: saved weights keep their layout.
    assert len(pretrainer.variables) == num_variables


def test_other_objectives_with_both_towers_are_inspected():
    result = inspection.inspect(
        tiny_pretrainer(objective="all_tokens_mlm"), TEXTS[0]
    )
    assert [t.original for t in result.texts[0].tokens] == TEXTS[0].split()


@pytest.mark.parametrize(
    "texts, message",
    [
        ("", "Text 0 is empty"),
        (["the cat", "   "], "Text 1 is empty"),
        ([], "`texts` is an empty list"),
        (3, "string or a list of strings, got"),
        (["the cat", None], "string or a list of strings, got"),
    ],
)
def test_bad_texts_are_refused(pretrainer, texts, message):
    with pytest.raises(ValueError, match=message):
        inspection.inspect(pretrainer, texts)


@pytest.mark.parametrize(
    "objective, missing",
    [("mlm", "generator"), ("replace_mlm", "discriminator")],
)
def test_pretrainers_without_both_towers_are_refused(objective, missing):
    with pytest.raises(ValueError, match=f"without a {missing}"):
        inspection.inspect(tiny_pretrainer(objective=objective), TEXTS)


def test_a_pretrainer_without_a_tokenizer_is_refused():
    with pytest.raises(ValueError, match="has none: pass `tokenizer=`"):
        inspection.inspect(tiny_pretrainer(tokenizer=False), TEXTS)


def test_text_rendering_shows_every_token_and_marks_replaced(result):
    rendered = inspection.render_text(result, width=40)
    token_lines = [line for line in rendered.splitlines() if line[:1] == " "]
    assert len(token_lines) > len(TEXTS)  # Wrapped.
    assert all(len(line) <= 40 for line in token_lines)
    units = " ".join(rendered.split("\n", 3)[3].split())
    for token in result.tokens:
        if token.replaced:
            assert f"{token.text}(was {token.original})" in units
        else:
            assert token.text in units
    assert units.count("(was ") == sum(t.replaced for t in result.tokens)


class _Spans(html.parser.HTMLParser):
    """The token spans of a page: (classes, title, own text)."""

    VOID = {"meta", "br", "img", "link", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.tokens, self._open = [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        classes = attrs.get("class", "").split()
        self._open.append("token" in classes)
        if "token" in classes:
            self.tokens.append([classes, attrs.get("title"), ""])

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self._open.pop()

    def handle_data(self, data):
        if self._open and self._open[-1]:
            self.tokens[-1][2] += data


def page_tokens(page):
    parser = _Spans()
    parser.feed(page)
    return [t for t in parser.tokens if t[1] is not None]  # Not the legend.


def test_html_shows_every_token_and_marks_replaced_and_masked(result):
    spans = page_tokens(inspection.render_html(result))
    assert [text for _, _, text in spans] == [t.text for t in result.tokens]
    for (classes, title, _), token in zip(spans, result.tokens):
        assert ("replaced" in classes) == token.replaced
        assert ("masked" in classes) == token.masked
        assert f"original: {token.original};" in title


def hand_made_inspection():
    tokens = [
        InspectedToken("the", "the", False, False, 0.05),
        InspectedToken("dog", "cat", True, True, 0.9),
        InspectedToken("sat", "sat", False, False, 0.6),
        InspectedToken("on", "on", True, False, 0.2),
        InspectedToken("<script>", "</b>", True, True, 0.4),
    ]
    return Inspection(
        [InspectedText("<script>alert(1)</script>", tokens, False)],
        seed=0,
        objective="<script>",
    )


def test_html_escapes_token_text():
    page = inspection.render_html(hand_made_inspection())
    assert "<script" not in page and "</b>" not in page
    assert "&lt;script&gt;" in page and "was: <s>&lt;/b&gt;</s>" in page


def test_write_html_writes_the_page(tmp_path):
    path = tmp_path / "pages" / "inspection.html"
    inspection.write_html(hand_made_inspection(), path)
    assert path.read_text("utf-8") == inspection.render_html(
        hand_made_inspection()
    )


# === A real browser ===


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def chromium(profile, *arguments, timeout=120):
    """Run headless Chromium with its own profile folder; its stdout."""
    binary = find_chromium()
    if binary is None:
        pytest.skip(
            "no chromium binary found; install Debian's chromium: "
            "apt-get install chromium"
        )
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu",
        f"--user-data-dir={profile}", *arguments,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


def test_a_browser_renders_the_page(tmp_path):
    page = tmp_path / "inspection.html"
    inspection.write_html(hand_made_inspection(), page)
    url = page.resolve().as_uri()
    dom = chromium(tmp_path / "profile", "--dump-dom", url)
    spans = page_tokens(dom)
    assert [text for _, _, text in spans] == [
        "the", "dog", "sat", "on", "<script>"
    ]
    assert "was: <s>cat</s>" in dom and "was: <s>&lt;/b&gt;</s>" in dom
    assert [("replaced" in c, "masked" in c) for c, _, _ in spans] == [
        (False, False), (True, True), (False, False), (False, True),
        (True, True),
    ]
    screenshot = tmp_path / "inspection.png"
    chromium(
        tmp_path / "profile", f"--screenshot={screenshot}",
        "--window-size=900,400", "--hide-scrollbars", url,
    )
    import matplotlib.image

    pixels = np.round(matplotlib.image.imread(screenshot)[..., :3] * 255)
    assert pixels.shape[:2] == (400, 900)
    colours = {tuple(p) for p in pixels.reshape(-1, 3).astype(int)}
    assert len(colours) > 20  # Text, borders, shades: not a blank page.
    # "dog" at P = 0.9 is shaded rgb(255, 98, 98).
    shaded = np.all(np.abs(pixels - (255, 98, 98)) <= 2, axis=-1)
    assert shaded.sum() > 50
    assert os.path.getsize(screenshot) > 1000
