"""References to models and datasets on Hugging Face Hub (values only: nothing is fetched).

As a string, a reference reads ``[owner/]repo[:subset][@commit_sha]`` (``subset`` for
datasets only), e.g. ``the_owner/the_repo:the_subset@1234567`` or ``the_repo``. The web UI
shows it as that string, the commit shortened, linking to its page on huggingface.co.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

_HUB = "https://huggingface.co"
_PART = r"[^/@:]+"
_SLUG = re.compile(
    rf"(?:(?P<owner>{_PART})/)?(?P<repo>{_PART})(?::(?P<subset>{_PART}))?(?:@(?P<commit>{_PART}))?"
)


@dataclass(frozen=True)
class _HubReference:
    """What model and dataset references share (see the module's docstring)."""

    owner: str | None
    repo: str
    commit_sha: str | None = None
    local_override_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.repo, str) or not self.repo:
            raise ValueError(f"a Hugging Face reference needs a repo name, got {self.repo!r}")

    @classmethod
    def from_string(cls, as_string: str) -> Self:
        """The reference written ``[owner/]repo[:subset][@commit_sha]``; ValueError else."""
        match = _SLUG.fullmatch(as_string)
        if match is None:
            raise ValueError(
                f"not a Hugging Face reference ([owner/]repo[:subset][@commit_sha]): "
                f"{as_string!r}"
            )
        fields: dict[str, Any] = {
            "owner": match["owner"],
            "repo": match["repo"],
            "commit_sha": match["commit"],
        }
        if match["subset"] is not None:
            if not cls._has_subsets():
                raise ValueError(f"a {cls.__name__} has no subset: {as_string!r}")
            fields["subset"] = match["subset"]
        return cls(**fields)

    def repo_reference(self) -> str:
        """``owner/repo``, or ``repo`` without an owner: how Hugging Face libraries name it."""
        return self.repo if self.owner is None else f"{self.owner}/{self.repo}"

    def to_string(self) -> str:
        """``[owner/]repo[:subset][@commit_sha]``."""
        text = self.repo_reference()
        subset = getattr(self, "subset", None)
        if subset is not None:
            text += f":{subset}"
        if self.commit_sha is not None:
            text += f"@{self.commit_sha}"
        return text

    @property
    def hub_url(self) -> str:
        """Its page on huggingface.co: at its commit if it has one."""
        return self._hub_page(self._hub_prefix() + "/" + quote(self.repo_reference()))

    @property
    def display_name(self) -> str:
        """``to_string()`` with the commit shortened to 7 characters, as the UI shows it."""
        full = self.to_string()
        if self.commit_sha is None:
            return full
        return full[: len(full) - len(self.commit_sha)] + self.commit_sha[:7]

    @classmethod
    def _has_subsets(cls) -> bool:
        return False

    @classmethod
    def _hub_prefix(cls) -> str:
        return ""

    def _hub_page(self, path: str) -> str:
        if self.commit_sha is not None:
            path += "/tree/" + quote(self.commit_sha, safe="")
        return _HUB + path


@dataclass(frozen=True)
class HuggingFaceModelReference(_HubReference):
    """A model on Hugging Face Hub: ``owner`` (None for the Hub's own models), ``repo``,
    ``commit_sha`` (None for the latest commit, which changes over time).

    ``HuggingFaceModelReference.from_string("the_owner/the_repo@1234567")`` reads one;
    ``repo_reference()`` gives the name to pass to ``from_pretrained``.
    """


@dataclass(frozen=True)
class HuggingFaceDatasetReference(_HubReference):
    """A dataset on Hugging Face Hub: ``owner`` (None for the Hub's own datasets), ``repo``,
    ``subset`` (None for the whole dataset), ``commit_sha`` (None for the latest commit,
    which changes over time).

    ``HuggingFaceDatasetReference.from_string("owner/repo:subset@1234567")`` reads one.
    """

    subset: str | None = None

    def to_string(self, full_dataset: bool = False) -> str:
        """``[owner/]repo[:subset][@commit_sha]``; without the subset if ``full_dataset``."""
        if full_dataset and self.subset is not None:
            return HuggingFaceDatasetReference(
                owner=self.owner, repo=self.repo, commit_sha=self.commit_sha
            ).to_string()
        return super().to_string()

    @classmethod
    def _has_subsets(cls) -> bool:
        return True

    @classmethod
    def _hub_prefix(cls) -> str:
        return "/datasets"

    def _hub_page(self, path: str) -> str:
        # The Hub links either a commit or a subset's viewer, not both: the commit wins.
        if self.commit_sha is None and self.subset is not None:
            return _HUB + path + "/viewer/" + quote(self.subset, safe="")
        return super()._hub_page(path)
