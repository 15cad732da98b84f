"""Value types with their own look in the web UI, as Sematic 0.41's ``sematic.types`` had.

Each is a plain frozen dataclass: it type-checks as a parameter or an output of a
``@sematic.func`` function, is stored as JSON like any dataclass (the same value always gives
the same artifact), and may be nested in lists, dicts and dataclasses.

- :class:`Image`: an image file's bytes, shown as the picture.
- :class:`Link`: a URL with a label, shown as a link that opens the URL.
- :class:`PromptResponse`: a language model's prompt and its response, shown as both texts.
- :class:`S3Bucket`, :class:`S3Location`: an S3 bucket, or an object or folder in one,
  shown as its ``s3://`` URI linking to the AWS console.
- :class:`HuggingFaceModelReference`, :class:`HuggingFaceDatasetReference`: a model or a
  dataset on Hugging Face Hub, shown as its name linking to its page on huggingface.co.
- :class:`HuggingFaceStoredModel`: a ``transformers`` model saved to a folder, with
  ``store`` and ``load``; shown as its fields (folder and model class).

pandas, matplotlib, plotly and torch values need nothing from here: they are recognised
wherever they appear (DataFrames shown as tables with statistics, figures as pictures,
plotly figures as their chart's data, tensors by shape and dtype).
"""

from sematic.types.aws import S3Bucket, S3Location
from sematic.types.huggingface import HuggingFaceDatasetReference, HuggingFaceModelReference
from sematic.types.image import Image
from sematic.types.link import Link
from sematic.types.prompt_response import PromptResponse
from sematic.types.stored_model import HuggingFaceStoredModel

__all__ = [
    "HuggingFaceDatasetReference",
    "HuggingFaceModelReference",
    "HuggingFaceStoredModel",
    "Image",
    "Link",
    "PromptResponse",
    "S3Bucket",
    "S3Location",
]
