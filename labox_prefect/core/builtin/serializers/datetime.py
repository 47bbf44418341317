"""Datetimes as ISO-8601 text that keeps their time zone (naive ones stay naive)."""

from __future__ import annotations

import datetime
import zoneinfo

from labox_prefect.core.builtin.serializers.text import TEXT_CONTENT_TYPE
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.serializer import SerializedData, Serializer


class DatetimeSerializer(Serializer[datetime.datetime]):
    """A datetime as ISO-8601 text; a named zone (ZoneInfo) and ``fold`` go in the config.

    The text alone carries the UTC offset, which any reader understands. The zone name is
    kept beside it so that ``Europe/Paris`` comes back as ``Europe/Paris`` rather than a
    fixed ``+01:00``, and ``fold`` so that the repeated hour of a DST change keeps its
    meaning. Other tzinfo implementations (pytz, dateutil, named offsets) would come back
    as another type, so they are refused.
    """

    name = "labox.datetime@v1"
    types = (datetime.datetime,)
    content_types = (TEXT_CONTENT_TYPE,)

    def serialize_data(self, value: datetime.datetime, /) -> SerializedData:
        if type(value) is not datetime.datetime:
            raise SerializationError(
                f"{self.name} writes datetime.datetime, not {type(value).__name__} (a subclass "
                f"would come back as datetime); convert it first (a date: "
                f"datetime.datetime.combine(d, datetime.time())), or use the values serializer "
                f"(it keeps pandas Timestamps)."
            )
        _check_zone(value, self.name)
        config: dict[str, object] = {}
        if isinstance(value.tzinfo, zoneinfo.ZoneInfo) and value.tzinfo.key:
            config["zone"] = value.tzinfo.key
        if value.fold:
            config["fold"] = value.fold
        return SerializedData(
            data=value.isoformat().encode(), content_type=TEXT_CONTENT_TYPE, config=config
        )

    def deserialize_data(self, content: SerializedData, /) -> datetime.datetime:
        try:
            value = datetime.datetime.fromisoformat(str(content.data, "ascii"))
        except (UnicodeDecodeError, ValueError):
            raise SerializationError(
                f"{self.name} cannot read {content.data[:64]!r}: it is not an ISO-8601 "
                f"datetime. The content is corrupted or was not written by {self.name}."
            ) from None
        value = value.replace(fold=int(content.config.get("fold", 0)))
        zone = content.config.get("zone")
        return value if zone is None else in_zone(value, str(zone), self.name)


def zone_is_kept(value: datetime.datetime | datetime.time) -> bool:
    """Whether ``value``'s tzinfo comes back as itself from its ISO text (plus a zone key).

    Naive values, named ``zoneinfo.ZoneInfo`` zones (datetimes only: a time has no date to
    find its offset) and unnamed ``datetime.timezone`` offsets do; pytz, dateutil and named
    offsets (``timezone(offset, "CET")``) would come back as another type or name.
    """
    tz = value.tzinfo
    if tz is None:
        return True
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key and type(value) is datetime.datetime:
        return True
    offset = tz.utcoffset(None)
    return (
        type(tz) is datetime.timezone
        and offset is not None
        and tz.tzname(None) == datetime.timezone(offset).tzname(None)
    )


def in_zone(value: datetime.datetime, key: str, reader: str) -> datetime.datetime:
    """``value`` (aware, as read from ISO text) in the ``zoneinfo`` zone named ``key``.

    The same wall time when the zone still gives the recorded offset; the recorded instant
    when the zone's rules changed since the save. Raises SerializationError when this
    machine has no data for the zone (``reader`` names who reads, for the message).
    """
    try:
        tz = zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SerializationError(
            f"{reader} cannot read a datetime in the time zone {key!r}: this machine has no "
            f"data for it. Install the tzdata package."
        ) from None
    zoned = value.replace(tzinfo=tz)
    if zoned.utcoffset() == value.utcoffset():
        return zoned
    return value.astimezone(tz)


def _check_zone(value: datetime.datetime, serializer_name: str) -> None:
    """Refuse a time zone that would not come back as the same type and name."""
    if zone_is_kept(value):
        return
    tz = value.tzinfo
    raise SerializationError(
        f"{serializer_name} cannot keep the time zone {tz!r} ({type(tz).__qualname__}): it "
        f"would come back as a fixed offset. Use a zoneinfo.ZoneInfo or an unnamed "
        f"datetime.timezone."
    )
