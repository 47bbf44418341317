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
            value = datetime.datetime.fromisoformat(content.data.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise SerializationError(
                f"{self.name} cannot read {content.data[:64]!r}: it is not an ISO-8601 "
                f"datetime. The content is corrupted or was not written by {self.name}."
            ) from None
        value = value.replace(fold=int(content.config.get("fold", 0)))
        zone = content.config.get("zone")
        if zone is None:
            return value
        try:
            tz = zoneinfo.ZoneInfo(str(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SerializationError(
                f"{self.name} cannot read a datetime in the time zone {zone!r}: this machine "
                f"has no data for it. Install the tzdata package."
            ) from None
        in_zone = value.replace(tzinfo=tz)
        if in_zone.utcoffset() == value.utcoffset():
            return in_zone
        # The zone's rules changed since the save: keep the instant that was recorded.
        return value.astimezone(tz)


def _check_zone(value: datetime.datetime, serializer_name: str) -> None:
    """Refuse a time zone that would not come back as the same type and name."""
    tz = value.tzinfo
    if tz is None or (isinstance(tz, zoneinfo.ZoneInfo) and tz.key):
        return
    offset = tz.utcoffset(value)
    if (
        type(tz) is datetime.timezone
        and offset is not None
        and tz.tzname(None) == datetime.timezone(offset).tzname(None)
    ):
        return
    raise SerializationError(
        f"{serializer_name} cannot keep the time zone {tz!r} ({type(tz).__qualname__}): it "
        f"would come back as a fixed offset. Use a zoneinfo.ZoneInfo or an unnamed "
        f"datetime.timezone."
    )
