"""The text the test vocabularies are learned from.

It mixes the things a tokenizer has to get right: English prose, source code
with indentation and newlines, numbers, punctuation, accented words (some seen
often enough to become pieces, some only once), a non-Latin script and an emoji
(seen once, so SentencePiece vocabularies spell it with byte-fallback tokens).
Changing this text changes every test vocabulary, so append rather than edit.
"""

CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog was not amused, but the fox
did not care: it had jumped over the dog many times before, and it would jump
over the dog again tomorrow. Foxes are quick; dogs are lazy; that is the story.

A language model reads text as a sequence of tokens. Each token is a piece of a
word, a whole word, a number or a sign. The model predicts the next token from
the tokens before it, one step at a time, and a sampler picks one of the most
likely tokens. Models are trained on a lot of text, and the text they generate
reads like the text they were trained on. The more text they read, the better
they predict the next word in a sentence.

Tokenizers learn their pieces from a corpus. They start from single characters
or bytes and merge the pairs that appear most often, so frequent words become
single tokens and rare words are spelled out from smaller pieces. This is what
byte pair encoding does, and it is why "the", "ing" and "tion" are tokens in
almost every vocabulary in the world.

def tokenize(text, vocab):
    tokens = []
    for word in text.split(" "):
        if word in vocab:
            tokens.append(vocab[word])
        else:
            tokens.extend(vocab[c] for c in word)
    return tokens

class Counter:
    def __init__(self, start=0):
        self.value = start

    def add(self, n=1):
        self.value += n
        return self.value

int main(void) {
    int total = 0;
    for (int i = 0; i < 10; i++) {
        total += i * i;
    }
    printf("total = %d\\n", total);
    return 0;
}

A computer runs a program one instruction at a time. The processor reads the
instruction, reads the data it needs from memory, computes the result and writes
it back. Memory is slow compared to the processor, so computers keep recent data
in small fast caches, and programs that read memory in order run much faster
than programs that jump around. Matrix multiplication is the heart of a language
model: every layer multiplies the hidden state by large weight matrices, and
reading those weights from memory takes most of the time when the model
generates one token after another.

Weights can be stored with fewer bits to save memory. A quantized weight keeps
a scale for each small block of values and a few bits for each value in the
block. Four bits per weight keep most of the quality of the model, and the
model then needs a quarter of the memory. Graphics cards have fast memory and
thousands of small cores, so they multiply matrices much faster than a
processor does, but their memory is limited, and a large model may not fit on
one card. Then the layers can be split across several devices, and the hidden
state moves from one device to the next at every boundary between them.

In the morning the market opens early. People come from the villages around
the town to sell vegetables, bread, cheese and flowers. Children run between
the tables while their parents talk about the weather, the harvest and the
prices. By noon the square is full, and by evening it is empty again, except
for the pigeons looking for crumbs under the tables. The next morning it all
starts again, as it has every week for hundreds of years.

import numpy as np

def softmax(x, axis=-1):
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)

def rms_norm(x, weight, eps=1e-6):
    scale = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * scale * weight

for step in range(max_steps):
    logits = model.forward(tokens[-context:])
    next_token = int(np.argmax(logits[-1]))
    if next_token == eos_token_id:
        break
    tokens.append(next_token)

{"name": "test-model", "layers": 2, "heads": 4, "vocab": 512, "tied": true}
<p class="note">Read the <a href="/docs/index.html">documentation</a> first.</p>
$ pip install --upgrade numpy && python -m pytest -q tests/ > log.txt 2>&1

Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 256 1024 2048 3.14159 2.71828 1,000,000
and dates like 2024-01-15 or 12/31/1999, times like 09:30, prices like $19.99,
percentages like 75% and versions like v1.2.3 all appear in real text.

Punctuation: commas, periods. Questions? Exclamations! (Parentheses) [brackets]
{braces} <angles> "quotes" 'apostrophes' -- dashes; semicolons: colons... @#&*+=|~^

We met at a café in Zürich, ordered a crème brûlée at the same café, and talked
about naïve models over coffee. In Köln and München the Straße signs say Straße;
a résumé is a résumé. Привет, мир! 東京 is a city and 日本語 is a language.
It was a good day 🙂 and everyone went home happy.
"""
