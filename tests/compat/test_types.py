"""``sematic.types`` as Sematic 0.41 documents it: Image, Link, PromptResponse, S3Bucket,
S3Location and the Hugging Face references, alone and as parameters and outputs of
pipelines run by the silent and the local resolver (worker processes included)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

import sematic
from sematic import LocalResolver, SilentResolver
from sematic.types import (
    HuggingFaceDatasetReference,
    HuggingFaceModelReference,
    HuggingFaceStoredModel,
    Image,
    Link,
    PromptResponse,
    S3Bucket,
    S3Location,
)
from tests.harness.png import png
from tests.unit.resolvers.conftest import recorded_runs, store

SHA = "1234567890123456789012345678901234567890"


# --- The types on their own -------------------------------------------------------------


def test_an_image_is_its_bytes_and_can_be_read_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    path.write_bytes(png(3, 2))
    image = Image.from_file(str(path))
    assert image == Image(bytes=png(3, 2)) == Image.from_file(path)
    assert image.bytes == png(3, 2)
    assert image.mime_type == "image/png"
    assert hash(image) == hash(Image(png(3, 2)))
    assert repr(image) == f"Image(<{len(png(3, 2))} bytes, image/png>)"  # not the bytes
    assert Image(b"\xff\xd8\xff\xe0rest").mime_type == "image/jpeg"
    assert Image(b"GIF89a....").mime_type == "image/gif"
    assert Image(b"RIFF\0\0\0\0WEBPVP8 ").mime_type == "image/webp"
    assert Image(b'<?xml version="1.0"?>\n<svg xmlns="x"/>').mime_type == "image/svg+xml"
    assert Image(b"plain text").mime_type == "application/octet-stream"
    with pytest.raises(dataclasses.FrozenInstanceError):
        image.bytes = b""  # type: ignore[misc]


def test_a_link_needs_an_absolute_url() -> None:
    link = Link(label="Sematic documentation", url="https://docs.sematic.dev")
    assert (link.label, link.url) == ("Sematic documentation", "https://docs.sematic.dev")
    assert Link("docs", "https://docs.sematic.dev") == link.__class__(
        "docs", "https://docs.sematic.dev"
    )
    with pytest.raises(ValueError, match="absolute URL"):
        Link(label="relative", url="/docs/types")
    with pytest.raises(ValueError, match="host"):
        Link(label="no host", url="https:///path")
    with pytest.raises(TypeError, match="str"):
        Link(label="not text", url=42)  # type: ignore[arg-type]


def test_a_prompt_response_holds_both_texts() -> None:
    exchange = PromptResponse(prompt="Say hi", response="Hi!")
    assert (exchange.prompt, exchange.response) == ("Say hi", "Hi!")
    assert exchange == PromptResponse("Say hi", "Hi!")
    with pytest.raises(dataclasses.FrozenInstanceError):
        exchange.response = "Bye"  # type: ignore[misc]


def test_s3_locations_read_and_walk_uris() -> None:
    location = S3Location.from_uri("s3://my-bucket/path/to/blob", region="us-west-2")
    assert location == S3Location(S3Bucket("my-bucket", "us-west-2"), "path/to/blob")
    assert location.uri == location.to_uri() == "s3://my-bucket/path/to/blob"
    assert location.bucket.uri == "s3://my-bucket"
    assert location.parent_directory.to_uri() == "s3://my-bucket/path/to/"
    assert location.sibling_location("other-blob").to_uri() == "s3://my-bucket/path/to/other-blob"
    folder = location.parent_directory
    assert folder.child_location("more").to_uri() == "s3://my-bucket/path/to/more"
    assert (folder / "last").to_uri() == "s3://my-bucket/path/to/last"
    assert (location / "x").to_uri() == "s3://my-bucket/path/to/blob/x"
    assert S3Location.from_uri("s3://b/dir/").parent_directory.location == ""
    assert S3Bucket("b").region is None
    for bad in ("https://my-bucket/key", "s3:///key", "s3://my-bucket", "s3://my-bucket/"):
        with pytest.raises(ValueError):
            S3Location.from_uri(bad)


def test_s3_values_link_to_the_aws_console() -> None:
    assert S3Bucket("b").console_url == "https://s3.console.aws.amazon.com/s3/buckets/b"
    assert S3Bucket("b", "eu-west-1").console_url.endswith("/buckets/b?region=eu-west-1")
    location = S3Location(S3Bucket("b", "eu-west-1"), "a dir/x&y")
    assert location.console_url == (
        "https://s3.console.aws.amazon.com/s3/buckets/b?region=eu-west-1&prefix=a+dir%2Fx%26y"
    )


def test_hugging_face_references_parse_and_print_their_slugs() -> None:
    dataset = HuggingFaceDatasetReference.from_string(f"the_owner/the_repo:the_subset@{SHA}")
    assert dataset == HuggingFaceDatasetReference(
        owner="the_owner", repo="the_repo", subset="the_subset", commit_sha=SHA
    )
    assert dataset.to_string() == f"the_owner/the_repo:the_subset@{SHA}"
    assert dataset.to_string(full_dataset=True) == f"the_owner/the_repo@{SHA}"
    assert dataset.repo_reference() == "the_owner/the_repo"
    assert dataset.local_override_dir is None

    bare = HuggingFaceDatasetReference.from_string("squad")
    assert (bare.owner, bare.repo, bare.subset, bare.commit_sha) == (None, "squad", None, None)
    assert bare.to_string() == bare.repo_reference() == "squad"

    model = HuggingFaceModelReference.from_string(f"the_owner/the_repo@{SHA}")
    assert model == HuggingFaceModelReference(owner="the_owner", repo="the_repo", commit_sha=SHA)
    assert model.to_string() == f"the_owner/the_repo@{SHA}"
    assert HuggingFaceModelReference.from_string("gpt2").repo_reference() == "gpt2"
    assert HuggingFaceModelReference(None, "gpt2") == HuggingFaceModelReference.from_string("gpt2")

    for bad in ("", "a/b/c", "owner/", "repo@", "a:b:c"):
        with pytest.raises(ValueError):
            HuggingFaceDatasetReference.from_string(bad)
    with pytest.raises(ValueError, match="no subset"):
        HuggingFaceModelReference.from_string("owner/model:subset")
    with pytest.raises(ValueError, match="repo"):
        HuggingFaceModelReference(owner="o", repo="")


def test_hugging_face_references_link_to_the_hub() -> None:
    model = HuggingFaceModelReference("the_owner", "the_repo")
    assert model.hub_url == "https://huggingface.co/the_owner/the_repo"
    assert model.display_name == "the_owner/the_repo"
    pinned = dataclasses.replace(model, commit_sha=SHA)
    assert pinned.hub_url == f"https://huggingface.co/the_owner/the_repo/tree/{SHA}"
    assert pinned.display_name == "the_owner/the_repo@1234567"

    dataset = HuggingFaceDatasetReference(owner=None, repo="squad", subset="plain_text")
    assert dataset.hub_url == "https://huggingface.co/datasets/squad/viewer/plain_text"
    # The Hub links a commit or a subset, not both: the commit wins, as 0.41's UI had it.
    pinned_dataset = dataclasses.replace(dataset, commit_sha=SHA)
    assert pinned_dataset.hub_url == f"https://huggingface.co/datasets/squad/tree/{SHA}"
    assert pinned_dataset.display_name == "squad:plain_text@1234567"


# --- In pipelines ----------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """Every type, as fields of one dataclass output."""

    picture: Image
    docs: Link
    exchange: PromptResponse
    location: S3Location
    bucket: S3Bucket
    model: HuggingFaceModelReference
    dataset: HuggingFaceDatasetReference
    links: dict[str, Link]


@sematic.func(inline=False)
def load_image(path: str) -> Image:
    """Reads an image in a worker process."""
    return Image.from_file(path)


@sematic.func(inline=False)
def locate(uri: str) -> S3Location:
    return S3Location.from_uri(uri, region="us-east-2")


@sematic.func
def bucket_of(location: S3Location) -> S3Bucket:
    return location.bucket


@sematic.func(inline=False)
def console_link(location: S3Location) -> Link:
    return Link(label=f"Open {location.to_uri()}", url=location.console_url)


@sematic.func
def answer(prompt: str) -> PromptResponse:
    return PromptResponse(prompt=prompt, response=prompt.upper())


@sematic.func(inline=False)
def references(slug: str) -> tuple[HuggingFaceModelReference, HuggingFaceDatasetReference]:
    dataset = HuggingFaceDatasetReference.from_string(slug)
    return HuggingFaceModelReference.from_string(dataset.to_string(full_dataset=True)), dataset


@sematic.func(inline=False)
def collect(
    picture: Image,
    docs: Link,
    exchange: PromptResponse,
    location: S3Location,
    bucket: S3Bucket,
    refs: tuple[HuggingFaceModelReference, HuggingFaceDatasetReference],
) -> Catalogue:
    """Receives every type as an input in a worker process."""
    return Catalogue(
        picture=picture,
        docs=docs,
        exchange=exchange,
        location=location,
        bucket=bucket,
        model=refs[0],
        dataset=refs[1],
        links={"model": Link("model", refs[0].hub_url), "docs": docs},
    )


@sematic.func
def catalogue(image_path: str, uri: str, slug: str) -> Catalogue:
    location = locate(uri)
    return collect(
        load_image(image_path),
        console_link(location),
        answer("what is in the bucket?"),
        location,
        bucket_of(location),
        references(slug),
    )


def expected_catalogue() -> Catalogue:
    location = S3Location(S3Bucket("data", "us-east-2"), "images/red.png")
    docs = Link(
        "Open s3://data/images/red.png",
        "https://s3.console.aws.amazon.com/s3/buckets/data?region=us-east-2"
        "&prefix=images%2Fred.png",
    )
    model = HuggingFaceModelReference("owner", "repo", commit_sha=SHA)
    return Catalogue(
        picture=Image(png(4, 3)),
        docs=docs,
        exchange=PromptResponse("what is in the bucket?", "WHAT IS IN THE BUCKET?"),
        location=location,
        bucket=location.bucket,
        model=model,
        dataset=HuggingFaceDatasetReference("owner", "repo", commit_sha=SHA, subset="sub"),
        links={"model": Link("model", model.hub_url), "docs": docs},
    )


@pytest.fixture
def image_path(tmp_path: Path) -> str:
    path = tmp_path / "red.png"
    path.write_bytes(png(4, 3))
    return str(path)


def pipeline(image_path: str) -> sematic.Future[Catalogue]:
    return catalogue(image_path, "s3://data/images/red.png", f"owner/repo:sub@{SHA}")


def test_every_type_goes_through_a_silent_pipeline(image_path: str) -> None:
    assert SilentResolver().resolve(pipeline(image_path)) == expected_catalogue()


def test_every_type_goes_through_worker_processes_with_stable_artifacts(
    home: Path, image_path: str
) -> None:
    first = pipeline(image_path)
    assert LocalResolver(progress=False).resolve(first) == expected_catalogue()
    second = pipeline(image_path)
    assert LocalResolver(progress=False).resolve(second) == expected_catalogue()

    def outputs(root_id: str) -> dict[str, str | None]:
        runs = recorded_runs(root_id)
        assert all(run.state == "RESOLVED" for run in runs)
        return {run.name: run.output for run in runs}

    first_outputs, second_outputs = outputs(first.id), outputs(second.id)
    assert set(first_outputs) == {
        "catalogue",
        "locate",
        "load_image",
        "console_link",
        "answer",
        "bucket_of",
        "references",
        "collect",
    }
    assert first_outputs == second_outputs  # the same values: the same artifacts
    assert {run.name for run in recorded_runs(first.id) if not run.inline} >= {
        "load_image",
        "collect",
    }


def test_a_pipelines_artifacts_carry_what_the_ui_shows(home: Path, image_path: str) -> None:
    future = pipeline(image_path)
    LocalResolver(progress=False).resolve(future)
    outputs = {run.name: run.output for run in recorded_runs(future.id)}
    with store() as metadata:
        summaries = {name: metadata.get_artifact(str(out)).summary for name, out in outputs.items()}

    picture = summaries["load_image"]
    assert picture["class"] == "sematic.types.Image" and picture["size"] == [4, 3]
    assert picture["image"].startswith("data:image/png;base64,")
    link = summaries["console_link"]
    assert link["label"] == "Open s3://data/images/red.png"
    assert link["href"].startswith("https://s3.console.aws.amazon.com/s3/buckets/data?")
    assert summaries["locate"]["label"] == "s3://data/images/red.png"
    assert summaries["bucket_of"]["label"] == "s3://data"
    assert summaries["answer"] == {
        "class": "sematic.types.PromptResponse",
        "prompt": "what is in the bucket?",
        "response": "WHAT IS IN THE BUCKET?",
    }
    model, dataset = summaries["references"]
    assert model["href"] == f"https://huggingface.co/owner/repo/tree/{SHA}"
    assert dataset["href"] == f"https://huggingface.co/datasets/owner/repo/tree/{SHA}"
    assert dataset["label"] == "\N{HUGGING FACE} owner/repo:sub@1234567"

    nested = summaries["collect"]  # a dataclass: each field previewed by its type
    assert nested["picture"] == picture
    assert nested["docs"] == link
    assert nested["links"]["model"]["href"] == f"https://huggingface.co/owner/repo/tree/{SHA}"


def test_wrong_values_fail_the_type_checks(image_path: str) -> None:
    with pytest.raises(sematic.TypeCheckError):
        bucket_of("s3://data/images/red.png")  # type: ignore[arg-type]
    with pytest.raises(sematic.TypeCheckError):
        collect(
            Link("not an image", "https://example.com"),  # type: ignore[arg-type]
            Link("docs", "https://example.com"),
            PromptResponse("p", "r"),
            S3Location.from_uri("s3://b/k"),
            S3Bucket("b"),
            (HuggingFaceModelReference(None, "m"), HuggingFaceDatasetReference(None, "d")),
        )
    with pytest.raises(sematic.TypeCheckError):  # a future of the wrong type, before running
        bucket_of(answer("x"))  # type: ignore[arg-type]

    @sematic.func
    def broken() -> Link:
        return "https://example.com"  # type: ignore[return-value]

    with pytest.raises(sematic.PipelineRunError) as raised:
        SilentResolver().resolve(broken())
    assert isinstance(raised.value.__cause__, TypeError)


# --- HuggingFaceStoredModel, with stand-ins for transformers and peft classes ------------


class FakeModel:
    """Saves and loads like a ``transformers`` model: a folder holding its name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def save_pretrained(self, folder: str) -> None:
        Path(folder).mkdir(parents=True)
        (Path(folder) / "name").write_text(self.name)

    @classmethod
    def from_pretrained(cls, where: str, **kwargs: object) -> FakeModel:
        name = Path(where, "name").read_text() if Path(where).is_dir() else f"hub:{where}"
        return cls(name + "".join(f",{k}={v}" for k, v in sorted(kwargs.items())))


class FakePeftModel:
    """Saves and loads like a ``peft`` model over a base model."""

    def __init__(self, base: FakeModel, adapter: str) -> None:
        self.base, self.adapter = base, adapter

    def get_base_model(self) -> FakeModel:
        return self.base

    def save_pretrained(self, folder: str) -> None:
        Path(folder).mkdir(parents=True)
        (Path(folder) / "adapter").write_text(self.adapter)

    @classmethod
    def from_pretrained(cls, base: FakeModel, folder: str, **kwargs: object) -> FakePeftModel:
        return cls(base, Path(folder, "adapter").read_text())


def test_a_stored_model_saves_and_loads_a_model(tmp_path: Path) -> None:
    stored = HuggingFaceStoredModel.store(FakeModel("bert"), str(tmp_path / "model"))
    assert stored == HuggingFaceStoredModel(
        path=str(tmp_path / "model"), model_type=f"{__name__}.FakeModel"
    )
    assert (tmp_path / "model" / "full" / "name").read_text() == "bert"
    assert stored.load().name == "bert"
    assert stored.load(device_map="auto").name == "bert,device_map=auto"


def test_a_stored_peft_model_saves_its_base_model_unless_it_is_on_the_hub(
    tmp_path: Path,
) -> None:
    peft = FakePeftModel(FakeModel("t5"), "lora")
    stored = HuggingFaceStoredModel.store(peft, str(tmp_path / "a"))
    assert stored.model_type == f"{__name__}.FakeModel"
    assert stored.peft_model_type == f"{__name__}.FakePeftModel"
    loaded = stored.load()
    assert (loaded.base.name, loaded.adapter) == ("t5", "lora")

    hub = HuggingFaceModelReference.from_string(f"google/t5@{SHA}")
    on_hub = HuggingFaceStoredModel.store(peft, str(tmp_path / "b"), base_model_reference=hub)
    assert not (tmp_path / "b" / "base").exists()
    loaded = on_hub.load()
    assert (loaded.base.name, loaded.adapter) == (f"hub:google/t5,revision={SHA}", "lora")


def test_a_stored_model_goes_through_a_pipeline(tmp_path: Path) -> None:
    @sematic.func
    def train(folder: str) -> HuggingFaceStoredModel:
        return HuggingFaceStoredModel.store(FakeModel("tuned"), folder)

    @sematic.func
    def evaluate(model: HuggingFaceStoredModel) -> str:
        return str(model.load().name)

    assert SilentResolver().resolve(evaluate(train(str(tmp_path / "m")))) == "tuned"
