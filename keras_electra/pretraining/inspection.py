"""One ELECTRA step on real sentences, token by token, and its rendering.

`inspect` runs the pretrainer's forward pass on raw strings: which word
pieces were masked, what the generator put there, which of those replaced
the original (a sample equal to the original counts as original), and how
sure the discriminator is that each token was replaced. `render_text` and
`render_html` show it; `write_html` saves the page.

Example:
```python
import keras_electra
from keras_electra.pretraining import inspection

vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat",
              "sat", "on", "mat", "dog"]
tokenizer = keras_electra.ElectraTokenizer(vocabulary)
pretrainer = keras_electra.ElectraPretrainer.from_preset(
    "electra_tiny", vocab_size=len(vocabulary), tokenizer=tokenizer
)
result = inspection.inspect(pretrainer, ["the cat sat on the mat"], seed=0)
[token.original for token in result.texts[0].tokens]
# ['the', 'cat', 'sat', 'on', 'the', 'mat']
print(inspection.render_text(result))
```
"""

import dataclasses
import html

import keras
import keras_hub
import numpy as np

from keras_electra.models import electra_text_inputs as text_inputs
from keras_electra.utils.checks import check_token_ids
from keras_electra.utils.file_io import write_text_atomically

# The discriminator calls a token replaced above this probability, as the
# training metrics do.
THRESHOLD = 0.5


class _DetectionScores:
    """Precision, recall and replaced fraction over `self.tokens`."""

    @property
    def replaced_fraction(self):
        """Share of the word pieces that were replaced (None if none)."""
        if not self.tokens:
            return None
        return sum(token.replaced for token in self.tokens) / len(self.tokens)

    @property
    def precision(self):
        """Of the tokens called replaced, the share that were; None when the
        discriminator calls none replaced."""
        called = [t for t in self.tokens if t.probability > THRESHOLD]
        if not called:
            return None
        return sum(token.replaced for token in called) / len(called)

    @property
    def recall(self):
        """Of the replaced tokens, the share called replaced; None when no
        token was replaced."""
        replaced = [t for t in self.tokens if t.replaced]
        if not replaced:
            return None
        return sum(t.probability > THRESHOLD for t in replaced) / len(replaced)


@dataclasses.dataclass
class InspectedToken:
    """One word piece of an inspected text.

    Attributes:
        text: the token the discriminator read: the generator's sample at a
            masked position, the original elsewhere.
        original: the tokenizer's word piece.
        masked: whether the position was masked (and so sampled).
        replaced: whether the sample differs from the original (the
            discriminator's label).
        probability: the discriminator's `sigmoid(logit)`, its probability
            that the token was replaced.
    """

    text: str
    original: str
    masked: bool
    replaced: bool
    probability: float


@dataclasses.dataclass
class InspectedText(_DetectionScores):
    """One inspected text: its word pieces and the discriminator's scores.

    `precision`, `recall` (at probability 0.5, against the `replaced`
    labels) and `replaced_fraction` count the word pieces only, never
    `[CLS]` or `[SEP]`.

    Attributes:
        text: the raw input string.
        tokens: list of `InspectedToken`, one per word piece, in order.
        truncated: whether word pieces past the model's
            `max_sequence_length` were cut off.
    """

    text: str
    tokens: list
    truncated: bool


@dataclasses.dataclass
class Inspection(_DetectionScores):
    """What `inspect` returns: every text, and scores pooled over them.

    Attributes:
        texts: list of `InspectedText`, in input order.
        seed: the seed of the masks and samples.
        objective: the pretrainer's objective.
    """

    texts: list
    seed: int
    objective: str

    @property
    def tokens(self):
        """Every text's tokens, in order: what the pooled scores count."""
        return [token for text in self.texts for token in text.tokens]


def inspect(pretrainer, texts, seed=0):
    """Mask, sample and discriminate `texts` with `pretrainer`, from `seed`.

    The texts are tokenized with `pretrainer.tokenizer`, packed as
    `[CLS] pieces [SEP]` (cut to the backbone's `max_sequence_length`) and
    run through one inference pass of the pretrainer's step, with masks and
    samples drawn from a fresh random stream seeded with `seed`: the same
    seed gives the same result, and the pretrainer's own random stream (the
    one training draws from) is left as it was.

    Args:
        pretrainer: an `ElectraPretrainer` with a tokenizer, a generator and
            a discriminator (objectives `"electra"`, `"electra_15"`,
            `"all_tokens_mlm"`).
        texts: a string or a list of strings.
        seed: int. Seed of the masks and samples.

    Returns:
        An `Inspection`.

    Example:
    ```python
    import keras_electra
    from keras_electra.pretraining import inspection

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    pretrainer = keras_electra.ElectraPretrainer.from_preset(
        "electra_tiny", vocab_size=len(vocabulary),
        tokenizer=keras_electra.ElectraTokenizer(vocabulary),
    )
    result = inspection.inspect(pretrainer, "a b a b a b a", seed=1)
    assert result.texts[0].tokens[0].original == "a"
    assert 0.0 <= result.texts[0].tokens[0].probability <= 1.0
    ```
    """
    _check_pretrainer(pretrainer)
    texts = text_inputs.check_texts(texts)
    tokenizer = pretrainer.tokenizer
    backbone = pretrainer.backbone
    pieces = [np.asarray(tokenizer(text)).tolist() for text in texts]
    for index, ids in enumerate(pieces):
        if not ids:
            raise ValueError(
                f"`texts[{index}]` ({texts[index]!r}) has no word pieces: "
                "there is nothing to inspect."
            )
    # Every text padded to the full length, as in pre-training: the number
    # of mask slots depends on the sequence length.
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=backbone.max_sequence_length,
        start_value=pretrainer.cls_token_id,
        end_value=pretrainer.sep_token_id,
        pad_value=pretrainer.pad_token_id,
        return_padding_mask=True,
    )
    token_ids, padding_mask = packer(pieces)
    token_ids = np.asarray(token_ids, "int32")
    inputs = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.asarray(padding_mask, "int32"),
    }
    check_token_ids(
        inputs["token_ids"], backbone.vocab_size, backbone.max_sequence_length
    )
    outputs = _forward_from_seed(pretrainer, inputs, seed)
    vocabulary = list(tokenizer.get_vocabulary())
    lengths = inputs["padding_mask"].sum(axis=1)
    is_masked = _masked_positions(
        outputs["mask_positions"],
        outputs["mask_weights"],
        inputs["token_ids"].shape,
    )
    # sigmoid, in a form that cannot overflow.
    logits = outputs["discriminator_logits"].astype("float64")
    probabilities = 0.5 * (1.0 + np.tanh(logits / 2.0))
    inspected = []
    for row, text in enumerate(texts):
        # Positions 1 .. length - 2: the word pieces between [CLS] and [SEP].
        positions = range(1, lengths[row] - 1)
        tokens = [
            InspectedToken(
                text=vocabulary[outputs["corrupted_token_ids"][row, i]],
                original=vocabulary[inputs["token_ids"][row, i]],
                masked=bool(is_masked[row, i]),
                replaced=bool(outputs["replaced"][row, i]),
                probability=float(probabilities[row, i]),
            )
            for i in positions
        ]
        inspected.append(
            InspectedText(
                text=text,
                tokens=tokens,
                truncated=len(tokens) < len(pieces[row]),
            )
        )
    return Inspection(
        texts=inspected, seed=seed, objective=pretrainer.objective
    )


def _check_pretrainer(pretrainer):
    missing = " or ".join(
        part
        for part in ("generator", "discriminator")
        if getattr(pretrainer, part) is None
    )
    if missing:
        raise ValueError(
            "`inspect` shows the generator's samples and the "
            "discriminator's scores, but this pretrainer (objective "
            f"{pretrainer.objective!r}) has no {missing}: a preset without a "
            f"{missing} was given to inspect. Use objective 'electra', "
            "'electra_15' or 'all_tokens_mlm'."
        )
    if pretrainer.tokenizer is None:
        raise ValueError(
            "`inspect` tokenizes raw text with `pretrainer.tokenizer`, and "
            "this pretrainer has none: pass `tokenizer=` to "
            "`ElectraPretrainer` (or `ElectraPretrainer.from_preset`)."
        )


def _forward_from_seed(pretrainer, inputs, seed):
    """The pretrainer's outputs as numpy, its random draws from `seed`.

    The step draws from `pretrainer.seed_generator`; a fresh generator
    stands in for the call. `object.__setattr__` keeps Keras from tracking
    it as new model state (the variables, and so the saved weights, stay
    the same), and the original comes back even if the call fails.
    """
    original = pretrainer.seed_generator
    object.__setattr__(
        pretrainer, "seed_generator", keras.random.SeedGenerator(seed)
    )
    try:
        outputs = pretrainer(inputs, training=False)
    finally:
        object.__setattr__(pretrainer, "seed_generator", original)
    names = (
        "mask_positions",
        "mask_weights",
        "corrupted_token_ids",
        "replaced",
        "discriminator_logits",
    )
    return {
        name: np.asarray(keras.ops.convert_to_numpy(outputs[name]))
        for name in names
    }


def _masked_positions(mask_positions, mask_weights, shape):
    """bool `(batch, sequence_length)`: the positions of the used slots."""
    is_masked = np.zeros(shape, bool)
    for row, column in zip(*np.nonzero(mask_weights)):
        is_masked[row, mask_positions[row, column]] = True
    return is_masked


# === Rendering ===


def _score(value):
    return "n/a" if value is None else f"{value:.2f}"


def _summary(scored):
    replaced = sum(token.replaced for token in scored.tokens)
    return (
        f"precision {_score(scored.precision)}, recall "
        f"{_score(scored.recall)}, replaced {replaced}/{len(scored.tokens)}"
    )


def _wrap(units, width, indent):
    """Greedy lines of space-separated `units`, never splitting one."""
    lines, line = [], indent
    for unit in units:
        if line.strip() and len(line) + 1 + len(unit) > width:
            lines.append(line)
            line = indent
        line += (" " if line.strip() else "") + unit
    lines.append(line)
    return lines


def render_text(inspection, width=88):
    """`inspection` as plain text for a terminal, wrapped at `width`.

    Per text: its number, the scores, then its tokens: a replaced token as
    `sample(was original)`, a masked token the generator left as it was
    with a `*`, and `[0.87]` after every token the discriminator calls
    replaced (probability above 0.5).

    Args:
        inspection: an `Inspection` (from `inspect`).
        width: int. Line width.

    Returns:
        A string, one block per text, then the pooled scores.

    Example:
    ```python
    from keras_electra.pretraining import inspection

    result = inspection.Inspection(
        texts=[inspection.InspectedText("a b", [
            inspection.InspectedToken("c", "a", True, True, 0.9),
            inspection.InspectedToken("b", "b", False, False, 0.2),
        ], truncated=False)],
        seed=0, objective="electra",
    )
    print(inspection.render_text(result))
    # seed 0, objective electra
    # sample(was original): replaced; token*: masked, kept; [p]: ...
    #
    # 1. precision 1.00, recall 1.00, replaced 1/2
    #    c(was a)[0.90] b
    #
    # All 1 texts: precision 1.00, recall 1.00, replaced 1/2
    ```
    """
    lines = [
        f"seed {inspection.seed}, objective {inspection.objective}",
        "sample(was original): replaced; token*: masked, kept; "
        f"[p]: P(replaced) > {THRESHOLD}",
        "",
    ]
    for number, text in enumerate(inspection.texts, 1):
        truncated = " (truncated)" if text.truncated else ""
        lines.append(f"{number}. {_summary(text)}{truncated}")
        units = []
        for token in text.tokens:
            unit = token.text
            if token.replaced:
                unit += f"(was {token.original})"
            elif token.masked:
                unit += "*"
            if token.probability > THRESHOLD:
                unit += f"[{token.probability:.2f}]"
            units.append(unit)
        lines.extend(_wrap(units, width, indent="   "))
    lines += ["", f"All {len(inspection.texts)} texts: {_summary(inspection)}"]
    return "\n".join(lines) + "\n"


def _shade(probability):
    """White at 0 to red at 1."""
    level = round(255 - 175 * probability)
    return f"rgb(255, {level}, {level})"


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
.text { margin: 1.5em 0; line-height: 2.6; }
.scores { color: #555; font-size: 0.9em; line-height: 1.4; }
.token { padding: 0.15em 0.3em; margin: 0 0.1em; border-radius: 0.2em;
         border: 1px solid #ddd; white-space: nowrap; }
.masked { border: 2px dashed #1f5fbf; }
.replaced { border: 2px solid #000; font-weight: bold; }
.was { font-size: 0.7em; font-weight: normal; color: #333;
       margin-left: 0.3em; }
.was s { color: #000; }
.legend { display: flex; gap: 1.5em; align-items: center; flex-wrap: wrap;
          margin-bottom: 1em; line-height: 2.6; }
.ramp { display: inline-block; width: 10em; height: 1em;
        vertical-align: middle; border: 1px solid #ccc;
        background: linear-gradient(to right, rgb(255, 255, 255),
                                    rgb(255, 80, 80)); }
"""


def _token_html(token):
    classes = ["token"]
    if token.masked:
        classes.append("masked")
    if token.replaced:
        classes.append("replaced")
    title = (
        f"original: {token.original}; read: {token.text}; "
        f"P(replaced) = {token.probability:.2f}"
    )
    was = ""
    if token.replaced:
        was = (
            f'<span class="was">was: <s>{html.escape(token.original)}</s>'
            "</span>"
        )
    return (
        f'<span class="{" ".join(classes)}" '
        f'style="background: {_shade(token.probability)}" '
        f'title="{html.escape(title)}">{html.escape(token.text)}{was}</span>'
    )


def render_html(inspection):
    """`inspection` as a self-contained HTML page (inline CSS, no scripts).

    Each token is shaded from white to red by the discriminator's
    probability that it was replaced; masked positions have a dashed blue
    border, replaced tokens a solid black one, bold, with the original
    struck through beside them ("was: ..."). Hovering shows the original
    and the probability. Each text has its precision and recall.

    Args:
        inspection: an `Inspection` (from `inspect`).

    Returns:
        The page, a string.

    Example:
    ```python
    from keras_electra.pretraining import inspection

    result = inspection.Inspection(
        texts=[inspection.InspectedText("<b>", [
            inspection.InspectedToken("<b>", "<b>", False, False, 0.1),
        ], truncated=False)],
        seed=0, objective="electra",
    )
    assert "&lt;b&gt;" in inspection.render_html(result)
    ```
    """
    legend = (
        '<div class="legend">'
        "<span>P(replaced): 0 <span class=\"ramp\"></span> 1</span>"
        '<span><span class="token masked">masked</span> masked, generator '
        "kept the original</span>"
        '<span><span class="token masked replaced">sample<span class="was">'
        "was: <s>original</s></span></span> replaced</span>"
        "</div>"
    )
    blocks = []
    for number, text in enumerate(inspection.texts, 1):
        truncated = " (truncated)" if text.truncated else ""
        tokens = " ".join(_token_html(token) for token in text.tokens)
        blocks.append(
            '<div class="text">'
            f'<div class="scores">{number}. {html.escape(_summary(text))}'
            f"{truncated}</div>{tokens}</div>"
        )
    title = "ELECTRA replaced-token detection"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1>"
        f"<p class=\"scores\">seed {html.escape(str(inspection.seed))}, "
        f"objective {html.escape(inspection.objective)}; all "
        f"{len(inspection.texts)} texts: "
        f"{html.escape(_summary(inspection))}</p>"
        f"{legend}{''.join(blocks)}</body></html>\n"
    )


def write_html(inspection, path):
    """Write `render_html(inspection)` to `path`, whole or not at all.

    Example:
    ```python
    import os
    import tempfile

    from keras_electra.pretraining import inspection

    result = inspection.Inspection(texts=[], seed=0, objective="electra")
    inspection.write_html(result, os.path.join(tempfile.mkdtemp(), "a.html"))
    ```
    """
    write_text_atomically(path, render_html(inspection))
