"""A language model's prompt and the response it gave."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptResponse:
    """A prompt given to a language model and the response it gave to it.

    The web UI shows both texts, one under the other, labelled "Prompt" and "Response".
    """

    prompt: str
    response: str
