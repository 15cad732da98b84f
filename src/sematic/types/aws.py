"""S3 buckets and locations in them, which the web UI shows as links to the AWS console."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

_CONSOLE = "https://s3.console.aws.amazon.com/s3/buckets/"


@dataclass(frozen=True)
class S3Bucket:
    """An S3 bucket, by name, and its AWS region if known (e.g. ``"us-west-2"``).

    The web UI shows its URI, ``s3://<name>``, as a link to the bucket in the AWS console.
    """

    name: str
    region: str | None = None

    @property
    def uri(self) -> str:
        """``s3://<name>``."""
        return f"s3://{self.name}"

    @property
    def console_url(self) -> str:
        """The bucket's page in the AWS console."""
        return _console_url(self, None)


@dataclass(frozen=True)
class S3Location:
    """An object, or a "folder", in an S3 bucket: ``location`` is its key.

    S3 has no folders, only keys: by convention a location whose key ends with ``/`` is a
    folder, any other is an object. The web UI shows its URI, ``s3://<bucket>/<key>``, as a
    link to it in the AWS console.
    """

    bucket: S3Bucket
    location: str

    @classmethod
    def from_uri(cls, uri: str, region: str | None = None) -> S3Location:
        """The location of ``s3://<bucket>/<key>``; ValueError for another URI, or one
        without a bucket or a key."""
        parts = urlsplit(uri)
        if parts.scheme != "s3":
            raise ValueError(f"an S3 URI starts with s3://: {uri!r}")
        if not parts.netloc:
            raise ValueError(f"the S3 URI has no bucket (s3://<bucket>/<key>): {uri!r}")
        key = parts.path.removeprefix("/")
        if not key:
            raise ValueError(f"the S3 URI has no key (s3://<bucket>/<key>): {uri!r}")
        return cls(bucket=S3Bucket(name=parts.netloc, region=region), location=key)

    @property
    def uri(self) -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket.name}/{self.location}"

    def to_uri(self) -> str:
        """``s3://<bucket>/<key>`` (the same as :attr:`uri`)."""
        return self.uri

    @property
    def console_url(self) -> str:
        """The location's page in the AWS console (the console opens an object's page)."""
        return _console_url(self.bucket, self.location)

    @property
    def parent_directory(self) -> S3Location:
        """The folder holding this location: for ``a/b/c`` or ``a/b/c/``, ``a/b/``."""
        parts = self.location.removesuffix("/").split("/")
        return S3Location(bucket=self.bucket, location="".join(f"{p}/" for p in parts[:-1]))

    def sibling_location(self, location: str) -> S3Location:
        """``location`` in the same folder as this one."""
        return S3Location(bucket=self.bucket, location=self.parent_directory.location + location)

    def child_location(self, location: str) -> S3Location:
        """``location`` inside this one, taken as a folder."""
        folder = self.location if self.location.endswith("/") else self.location + "/"
        return S3Location(bucket=self.bucket, location=folder + location)

    def __truediv__(self, location: str) -> S3Location:
        """``folder / "name"``: the same as :meth:`child_location`."""
        return self.child_location(location)


def _console_url(bucket: S3Bucket, prefix: str | None) -> str:
    query = {}
    if bucket.region is not None:
        query["region"] = bucket.region
    if prefix is not None:
        query["prefix"] = prefix
    url = _CONSOLE + quote(bucket.name, safe="")
    return f"{url}?{urlencode(query)}" if query else url
