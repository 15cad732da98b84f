"""Schemathesis hooks for ``test_server_fuzz`` (loaded through ``SCHEMATHESIS_HOOKS``)."""

from __future__ import annotations

import schemathesis

from sematic.core import wire


@schemathesis.serializer(wire.PAYLOADS_TYPE)
def payload_frames(_context: schemathesis.SerializationContext, value: object) -> bytes:
    """A batch of payloads (``wire.payload_batch``) as generated: bytes or text, sent as is."""
    return value if isinstance(value, bytes) else str(value).encode()
