"""encode() leaves some values to orjson: it must write exactly dumps(to_wire()), or fail alike.

Also holds orjson to the formatting that lets it (tactor/codecs/leaves.py).
"""

from __future__ import annotations

import dataclasses
import enum
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactor.codecs import JsonCodec, TypeCodec
from tactor.errors import EncodeError
from tests.test_codec_roundtrip import FAMILIES, INT64, PROPERTY, Color, Level, Mixed

CODEC = JsonCodec()

WHOLE_MINUTES = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
ODD_OFFSETS = st.one_of(
    st.integers(-86399, 86399).map(lambda s: timezone(timedelta(seconds=s))),
    st.integers(1, 999_999).map(lambda us: timezone(timedelta(seconds=60, microseconds=us))),
)
ZONES = st.sampled_from(
    [zoneinfo.ZoneInfo(k) for k in ("UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata")]
)
ANY_ZONE = st.none() | st.just(UTC) | WHOLE_MINUTES | ODD_OFFSETS | ZONES
DATETIMES = st.datetimes(timezones=ANY_ZONE)


class Stamp(datetime):
    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "stamp"


class Day(date):
    pass


class Id(UUID):
    pass


class Word(enum.StrEnum):
    A = "a"


class Perm(enum.IntFlag):
    R = 1
    W = 2


class Typed(enum.Enum):
    _value_: float
    ONE = 1.0
    HALF = 0.5


@dataclasses.dataclass
class When:
    at: datetime
    day: date
    clock: time
    id: UUID
    color: Color
    level: Level
    word: Word
    perm: Perm
    typed: Typed
    mixed: Mixed
    maybe: datetime | None = None
    many: list[datetime] = dataclasses.field(default_factory=list)
    by_day: dict[str, date] = dataclasses.field(default_factory=dict)


WHENS = st.builds(
    When,
    DATETIMES,
    st.dates(),
    st.times(timezones=st.none() | WHOLE_MINUTES),
    st.uuids(),
    st.sampled_from(Color),
    st.sampled_from(Level),
    st.sampled_from(Word),
    st.sampled_from([Perm.R, Perm.W, Perm.R | Perm.W, Perm(0)]),
    st.sampled_from(Typed),
    st.sampled_from(Mixed),
    st.none() | DATETIMES,
    st.lists(DATETIMES, max_size=3),
    st.dictionaries(st.text(max_size=3), st.dates(), max_size=3),
)
EXTRA: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (datetime, DATETIMES),
    (datetime, DATETIMES.map(lambda d: Stamp.fromisoformat(d.isoformat()))),
    (date, st.dates().map(lambda d: Day(d.year, d.month, d.day))),
    (UUID, st.uuids().map(lambda u: Id(int=u.int))),
    (time, st.times(timezones=st.none() | WHOLE_MINUTES)),
    (When, WHENS),
    (list[When], st.lists(WHENS, max_size=2)),
]
ALL = FAMILIES + EXTRA


def outcome(make: Any) -> tuple[str, Any]:
    try:
        return "ok", make()
    except EncodeError as exc:
        return "error", str(exc)


def both(value: Any, tp: Any) -> None:
    native = outcome(lambda: CODEC.encode(value, tp))
    plain = outcome(lambda: CODEC.dumps(CODEC.to_wire(value, tp)))
    assert native == plain, (tp, value)


@pytest.mark.parametrize(("tp", "values"), ALL, ids=[str(tp) for tp, _ in ALL])
@PROPERTY
@given(data=st.data())
def test_encode_writes_the_bytes_of_dumps_to_wire(
    tp: Any, values: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    both(data.draw(values), tp)


WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=3),
    st.decimals(),
    DATETIMES,
    st.dates(),
    st.times(),
    st.uuids(),
    st.sampled_from(Color),
    st.sampled_from(Level),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2),
)


@pytest.mark.parametrize("tp", [tp for tp, _ in ALL], ids=[str(tp) for tp, _ in ALL])
@PROPERTY
@given(wrong=WRONG)
def test_values_of_other_types_fail_or_pass_as_in_to_wire(tp: Any, wrong: Any) -> None:
    both(wrong, tp)


@pytest.mark.parametrize(
    ("value", "tp", "problem"),
    [
        (float("nan"), float, "non-finite float"),
        ([1.0, float("inf")], list[float], "non-finite float"),
        (2**64, int, "Integer exceeds 64-bit range"),
        ({"a": "\ud800"}, dict[str, str], "str is not valid UTF-8"),
        (Decimal("NaN"), Decimal, "non-finite Decimal"),
    ],
)
def test_unencodable_values_are_refused_with_the_same_message(
    value: Any, tp: Any, problem: str
) -> None:
    with pytest.raises(EncodeError, match=problem) as native:
        CODEC.encode(value, tp)
    with pytest.raises(EncodeError) as plain:
        CODEC.dumps(CODEC.to_wire(value, tp))
    assert str(native.value) == str(plain.value)


def test_a_registered_codec_beats_the_native_form() -> None:
    codec = JsonCodec([TypeCodec(datetime, lambda d: d.timestamp(), datetime.fromtimestamp)])
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert codec.encode(at, datetime) == orjson.dumps(at.timestamp())
    assert codec.encode([at], list[datetime]) == orjson.dumps([at.timestamp()])
    codec.register(TypeCodec(Color, lambda c: c.name, lambda n: Color[n]))
    assert codec.encode(Color.RED, Color) == b'"RED"'


# --- what orjson itself must do for encode() to leave values to it ------------------


@PROPERTY
@given(value=st.datetimes(timezones=st.none() | st.just(UTC) | WHOLE_MINUTES))
def test_orjson_writes_datetimes_with_whole_minute_offsets_as_isoformat(value: datetime) -> None:
    assert orjson.dumps(value) == orjson.dumps(value.isoformat())


@PROPERTY
@given(value=st.dates(), uuid=st.uuids())
def test_orjson_writes_dates_and_uuids_as_isoformat_and_str(value: date, uuid: UUID) -> None:
    assert orjson.dumps(value) == orjson.dumps(value.isoformat())
    assert orjson.dumps(uuid) == orjson.dumps(str(uuid))


def test_times_are_not_left_to_orjson() -> None:
    # orjson 3.13 drops a zero here; isoformat() is the wire form.
    assert CODEC.encode(time(0, 0, 0, 10000), time) == b'"00:00:00.010000"'
    assert CODEC.encode(datetime(2026, 1, 1, 0, 0, 0, 10000), datetime).endswith(b'.010000"')


def test_odd_offsets_keep_their_seconds() -> None:
    at = datetime(1900, 1, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Amsterdam"))  # +00:19:32
    assert CODEC.encode(at, datetime) == orjson.dumps(at.isoformat())
    off = datetime(2026, 1, 1, tzinfo=timezone(timedelta(seconds=3725)))
    assert CODEC.encode(off, datetime) == b'"2026-01-01T00:00:00+01:02:05"'


def test_enum_members_go_out_by_value() -> None:
    assert CODEC.encode([Word.A, Perm.R | Perm.W, Typed.HALF], list[Word | Perm | Typed]) == (
        b'["a",3,0.5]'
    )
    assert CODEC.to_wire(Level.HIGH, Level).__class__ is int


def test_decimal_fields_still_refuse_what_to_wire_refuses() -> None:
    @dataclasses.dataclass
    class Price:
        amount: Decimal

    for bad in (Decimal("NaN"), Decimal("-Infinity"), 1.5, "1.5"):
        with pytest.raises(EncodeError) as native:
            CODEC.encode(Price(bad), Price)  # type: ignore[arg-type]
        with pytest.raises(EncodeError) as plain:
            CODEC.to_wire(Price(bad), Price)  # type: ignore[arg-type]
        assert str(native.value) == str(plain.value)


@given(value=INT64)
def test_ints_pass_through(value: int) -> None:
    assert CODEC.encode(value, int) == orjson.dumps(value)
