"""A Hugging Face ``transformers`` model saved to a folder, and how to load it back."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from sematic.types.huggingface import HuggingFaceModelReference

_FULL = "full"  # the folder of a whole model
_BASE = "base"  # the folders of a peft model: its base model and its adapter
_PEFT = "peft"


@dataclass(frozen=True)
class HuggingFaceStoredModel:
    """A ``transformers`` model (or a ``peft`` model over one) saved in the folder ``path``.

    ``HuggingFaceStoredModel.store(model, "/some/folder")`` saves it (with
    ``save_pretrained``) and returns this reference, which steps pass to one another;
    ``stored.load()`` reads the model back (with ``from_pretrained``). The folder must be
    readable where ``load`` runs: a local folder, or one shared between machines.

    ``model_type`` is the model's class (``module.Name``), the base model's for a peft
    model, whose own class is ``peft_model_type``. With ``base_model_reference``, a peft
    model's base model was not saved: ``load`` gets it from Hugging Face Hub.
    """

    path: str
    model_type: str
    peft_model_type: str | None = None
    base_model_reference: HuggingFaceModelReference | None = None

    @classmethod
    def store(
        cls,
        model: Any,
        directory: str,
        base_model_reference: HuggingFaceModelReference | None = None,
    ) -> HuggingFaceStoredModel:
        """Save ``model`` under ``directory``; ``base_model_reference`` (peft models only):
        do not save the base model, ``load`` gets it from Hugging Face Hub instead."""
        directory = os.path.abspath(os.path.expanduser(directory))
        if not hasattr(model, "get_base_model"):
            model.save_pretrained(os.path.join(directory, _FULL))
            return cls(path=directory, model_type=_class_path(type(model)))
        base = model.get_base_model()
        if base_model_reference is None:
            base.save_pretrained(os.path.join(directory, _BASE))
        model.save_pretrained(os.path.join(directory, _PEFT))
        return cls(
            path=directory,
            model_type=_class_path(type(base)),
            peft_model_type=_class_path(type(model)),
            base_model_reference=base_model_reference,
        )

    def load(self, **from_pretrained_kwargs: Any) -> Any:
        """The model, read back; keyword arguments go to each ``from_pretrained`` call."""
        model_class = _import(self.model_type)
        if self.base_model_reference is not None:
            commit = self.base_model_reference.commit_sha
            model = model_class.from_pretrained(
                self.base_model_reference.repo_reference(),
                revision="main" if commit is None else commit,
                **from_pretrained_kwargs,
            )
        else:
            folder = _FULL if self.peft_model_type is None else _BASE
            model = model_class.from_pretrained(
                os.path.join(self.path, folder), **from_pretrained_kwargs
            )
        if self.peft_model_type is None:
            return model
        return _import(self.peft_model_type).from_pretrained(
            model, os.path.join(self.path, _PEFT), **from_pretrained_kwargs
        )


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)
