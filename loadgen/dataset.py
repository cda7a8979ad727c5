"""The dataset service's content: prompts with their token counts, made once in the controller and
carried inside each credit (no per-request round trip to a dataset service)."""

import random

from loadgen.config import RunConfig, load_dataset
from loadgen.tokenizer import count_tokens

# A fixed vocabulary: synthetic prompts of exactly `isl` tokens under loadgen's tokenizer.
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
          "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
          "whiskey", "xray", "yankee", "zulu")
SYNTHETIC_PROMPTS = 100


def build(cfg: RunConfig) -> list[dict]:
    """[{"text", "isl", "osl"}]: the file's entries, or synthetic prompts of --isl tokens."""
    if cfg.dataset:
        return [{"text": e["text"], "isl": count_tokens(e["text"]), "osl": e.get("output_length", cfg.osl)}
                for e in load_dataset(cfg.dataset)]
    rng = random.Random(cfg.seed)
    return [{"text": " ".join(rng.choice(_WORDS) for _ in range(cfg.isl)), "isl": cfg.isl, "osl": cfg.osl}
            for _ in range(SYNTHETIC_PROMPTS)]
