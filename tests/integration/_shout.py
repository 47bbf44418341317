"""A serializer that only a module of the tests exports (the user's own, in a real project)."""

from __future__ import annotations

from labox_prefect.core import SerializedData, Serializer


class Shout(Serializer[str]):
    """Text stored upper-cased, loaded back lower-cased."""

    name = "test.shout@v1"
    types = (str,)
    content_types = ("text/plain",)

    def serialize_data(self, value: str, /) -> SerializedData:
        return SerializedData(value.upper().encode(), "text/plain")

    def deserialize_data(self, content: SerializedData, /) -> str:
        return content.data.decode().lower()


shout = Shout()

__all__ = ["shout"]
