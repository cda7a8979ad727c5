"""Token counting without a model hub: a word-and-punctuation tokenizer shipped with loadgen.

It is not a model's BPE tokenizer: counts are comparable between runs of this tool and match an
endpoint that streams one word per token (loadgen's own target), but a real model's counts differ.
The summary names it under `tokenizer` so nobody mistakes one for the other."""

import re

NAME = "loadgen-words (built in: one token per word or punctuation mark)"

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))
