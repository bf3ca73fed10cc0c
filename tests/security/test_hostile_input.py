"""Hostile and broken input (issue 6, point 5).

(a) The event parser is total: hypothesis throws arbitrary bytes, arbitrary JSON and valid
    envelopes with fuzzed fields at :func:`shared.events.parse_message`; the answer is always a
    ``DossierEvent`` or a ``Rejection`` with a known reason code, never an exception.
(b) The real consumer: a few hundred hypothesis-drawn messages on a fresh topic of the real
    broker, consumed by ``KafkaIngestor`` into PostgreSQL. Every message ends as an event row
    or a dead letter (with the reason the parser gives), and the consumer keeps running.
(c) SQL-injection-shaped strings and long Unicode strings (Vietnamese with diacritics, NFD
    combining marks, emoji, RTL marks, control characters) are stored and returned verbatim by
    the API in every free-text field, on both backends; the fields the contract bounds refuse
    them cleanly.

The known failures found here (inputs that still raise, poison the consumer or answer 500) are
kept as regression tests at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import unicodedata
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from services.ingest.config import IngestSettings
from services.ingest.consumer import KafkaIngestor
from shared.clock import fixed_clock
from shared.db import create_engine
from shared.events import DossierEvent, Reason, Rejection, parse_envelope, parse_message
from shared.models import DeadLetter, Dossier, Event
from shared.web.errors import INSTALLED_MARKER, install_error_handlers
from tests.conftest import (
    ADMIN_KEY,
    DESK_KEY,
    OFFICER_KEY,
    SOURCE_KEY,
    TEST_NOW,
    bearer,
    make_settings,
)
from tests.factories import BASE_TIME, UNIT, dossier_code, progress, snapshot
from tests.support.broker import Broker, committed_offsets, create_topic, end_offsets, produce

REASONS = frozenset(value for name, value in vars(Reason).items() if name.isupper())
BACKENDS = ("postgresql", "sqlite")
PARSER_EXAMPLES = 600
CONSUMER_MESSAGES = 200
MAX_MESSAGE_BYTES = 4096  # small, so that some fuzzed messages are dead letters for size
FUZZ_SOURCE = "hostile-fuzz"

FUZZ = settings(
    max_examples=PARSER_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------------- strategies

SNAPSHOT_FIELDS = (
    "MaHoSo",
    "MaTTHC",
    "TenTTHC",
    "KenhThucHien",
    "ChuHoSo",
    "SoGiayToChuHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "TrangThaiHoSo",
    "NgayKetThucXuLy",
    "NgayTra",
    "NgayTuChoi",
    "DonViXuLy",
    "HoSoCoThanhPhanSoHoa",
    "DanhSachHoSoBoSung",
    "DanhSachXinLoi",
    "DanhSachGiayToKetQua",
    "TruongKhac",
)
STEP_FIELDS = (
    "MaHoSo",
    "NguoiXuLy",
    "ChucDanh",
    "ThoiDiemXuLy",
    "PhongBanXuLy",
    "NoiDungXuLy",
    "TrangThai",
    "NgayBatDau",
    "NgayKetThucTheoQuyDinh",
    "TruongKhac",
)
ENVELOPE_FIELDS = ("event_id", "type", "source", "emitted_at", "data", "extra")


def text_values(*, nul: bool) -> st.SearchStrategy[str]:
    """Any text; ``nul=False`` leaves out U+0000 (see the known failures for why)."""
    if nul:
        return st.text(max_size=40)
    return st.text(st.characters(exclude_characters="\x00"), max_size=40)


def json_values(*, nul: bool) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | text_values(nul=nul)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(text_values(nul=nul), children, max_size=4)
        ),
        max_leaves=12,
    )


def _offset(minutes: int) -> str:
    if minutes == 0:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _rfc3339(moment: datetime, offset_minutes: int, fraction: bool, lower: bool) -> str:
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if fraction:
        text += f".{moment.microsecond:06d}"
    text += _offset(offset_minutes)
    return text.replace("T", "t").replace("Z", "z") if lower else text


# Mostly plausible years (1900–2999 are accepted), some far outside, years 1 and 9999 included.
_plausible = st.datetimes(min_value=datetime(1890, 1, 1), max_value=datetime(3010, 12, 31))
_moments = st.one_of(  # three draws in four plausible, so that many envelopes are accepted
    _plausible,
    _plausible,
    _plausible,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
)
rfc3339_moments = st.builds(
    _rfc3339,
    _moments,
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    st.booleans(),
    st.booleans(),
)


def _thoi_diem(moment: datetime) -> str:
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    )


thoi_diem_values = st.one_of(
    _moments.map(_thoi_diem),
    st.from_regex(r"\A[0-9]{14}\Z"),
)


def field_values(field: str, *, nul: bool) -> st.SearchStrategy[Any]:
    """A plausible or hostile value for one contract field."""
    anything = json_values(nul=nul)
    if field in ("NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra", "NgayTuChoi"):
        return thoi_diem_values | anything
    if field in ("ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh"):
        return thoi_diem_values | anything
    if field in ("TrangThaiHoSo", "TrangThai", "KenhThucHien", "HoSoCoThanhPhanSoHoa"):
        return st.integers(-2, 12) | st.floats(0, 11) | anything
    if field in ("MaHoSo", "DonViXuLy"):
        return st.from_regex(r"\A[0-9A-Za-z._-]{1,70}\Z") | anything
    if field in ("DanhSachHoSoBoSung", "DanhSachXinLoi"):
        entry = st.fixed_dictionaries(
            {"NgayYeuCau": thoi_diem_values, "NgayHenTraMoi": thoi_diem_values},
            optional={"LyDo": text_values(nul=nul), "NgayHenTraTruoc": thoi_diem_values},
        )
        return st.lists(entry, max_size=3) | anything
    return text_values(nul=nul) | anything


@st.composite
def fuzzed_envelopes(draw: st.DrawFn, *, nul: bool = True) -> dict[str, Any]:
    """A valid snapshot or step, then a few envelope and data fields deleted or replaced."""
    number = draw(st.integers(0, 9999))
    code = dossier_code(number)
    event_id = draw(st.integers(0, 10**6).map("fuzz-{}".format))
    fields: tuple[str, ...]
    if draw(st.booleans()):
        envelope = snapshot(code, event_id=event_id, emitted_at=BASE_TIME)
        fields = SNAPSHOT_FIELDS
    else:
        envelope = progress(code, event_id=event_id, emitted_at=BASE_TIME, step_at=BASE_TIME)
        fields = STEP_FIELDS
    # A source of its own: the newest-event gauge only moves forward, per source, per process,
    # and fuzzed moments reach year 9998.
    envelope["source"] = FUZZ_SOURCE
    for name in draw(st.lists(st.sampled_from(fields), unique=True, max_size=3)):
        if draw(st.integers(0, 4)) == 0:
            envelope["data"].pop(name, None)
        else:
            envelope["data"][name] = draw(field_values(name, nul=nul))
    for name in draw(st.lists(st.sampled_from(ENVELOPE_FIELDS), unique=True, max_size=2)):
        if draw(st.integers(0, 4)) == 0:
            envelope.pop(name, None)
        elif name == "emitted_at":
            envelope[name] = draw(rfc3339_moments | json_values(nul=nul))
        elif name == "type":
            envelope[name] = draw(
                st.sampled_from(["dossier.snapshot", "dossier.progress"]) | json_values(nul=nul)
            )
        else:
            envelope[name] = draw(json_values(nul=nul))
    return envelope


def encode_json(value: Any) -> bytes:
    """Any JSON value as text (lone surrogates escaped: the parser must refuse them itself)."""
    return json.dumps(value).encode("ascii")


def assert_total(result: Any, key: bytes | None = None) -> None:
    assert isinstance(result, DossierEvent | Rejection), result
    if isinstance(result, Rejection):
        assert result.reason in REASONS, result
        assert isinstance(result.detail, str)
        return
    assert result.dossier_code == result.data["MaHoSo"]
    assert result.emitted_at.tzinfo is not None
    if key is not None:
        assert key.decode("utf-8", errors="replace") == result.dossier_code


# ------------------------------------------------------------- (a) the parser is total


@FUZZ
@given(value=st.binary(max_size=600), key=st.none() | st.binary(max_size=40))
def test_arbitrary_bytes_never_raise(value: bytes, key: bytes | None) -> None:
    assert_total(parse_message(value, key), key)


@FUZZ
@given(value=json_values(nul=True))
def test_arbitrary_json_never_raises(value: Any) -> None:
    assert_total(parse_message(encode_json(value)))
    assert_total(parse_envelope(value))


@FUZZ
@given(
    envelope=fuzzed_envelopes(nul=True),
    key_kind=st.sampled_from(["none", "own", "other"]),
    other=st.binary(max_size=30),
)
def test_fuzzed_envelopes_never_raise(
    envelope: dict[str, Any], key_kind: str, other: bytes
) -> None:
    value = encode_json(envelope)
    code = (
        envelope.get("data", {}).get("MaHoSo") if isinstance(envelope.get("data"), dict) else None
    )
    key = {"none": None, "own": str(code).encode("utf-8", "surrogatepass"), "other": other}[
        key_kind
    ]
    assert_total(parse_message(value, key), key)
    assert_total(parse_envelope(envelope))


@FUZZ
@given(
    envelope=fuzzed_envelopes(nul=True),
    cut=st.integers(0, 10_000),
    flip=st.integers(0, 255),
)
def test_truncated_and_corrupted_envelopes_never_raise(
    envelope: dict[str, Any], cut: int, flip: int
) -> None:
    value = bytearray(encode_json(envelope))
    position = cut % max(len(value), 1)
    assert_total(parse_message(bytes(value[:position])))
    value[position % len(value)] ^= flip
    assert_total(parse_message(bytes(value)))


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"data": ' * 2000 + b"1" + b"}" * 2000,
        b"\xef\xbb\xbf{}",  # a BOM
        b'"\\ud800"',  # a lone surrogate
        b"1e400",
        b"-" * 100,
        b"\x00" * 10,
        b"null",
        b" " * 2000,
        b'{"event_id": "a", "event_id": "b"}',
    ],
    ids=lambda value: repr(value[:20]),
)
def test_pathological_messages_are_rejections(value: bytes) -> None:
    result = parse_message(value)
    assert isinstance(result, Rejection), result
    assert result.reason in REASONS


# ----------------------------------------------------- (b) the real consumer, end to end


MESSAGE_KINDS = (
    "bytes",
    "json",
    "envelope",
    "envelope",
    "envelope",
    "envelope",
    "truncated",
    "oversized",
    "emitted_at",
    "date",
    "null",
    "clean",
    "clean",
    "clean",
)
_CLEAN_IDS = itertools.count()


@st.composite
def clean_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with a fresh id, a fuzzed moment and any (NUL-free) free text."""
    code = dossier_code(draw(st.integers(0, 9999)))
    event_id = f"clean-{next(_CLEAN_IDS)}"  # hypothesis repeats drawn ids a lot
    emitted_at = datetime.fromisoformat(draw(rfc3339_moments).replace("t", "T").replace("z", "Z"))
    text = text_values(nul=False)
    if draw(st.booleans()):
        envelope = snapshot(code, event_id=event_id, emitted_at=BASE_TIME)
        for name in ("TenTTHC", "ChuHoSo", "TenLinhVuc"):
            envelope["data"][name] = draw(text)
    else:
        envelope = progress(code, event_id=event_id, emitted_at=BASE_TIME, step_at=BASE_TIME)
        for name in ("NoiDungXuLy", "ChucDanh", "PhongBanXuLy"):
            envelope["data"][name] = draw(text)
    envelope["emitted_at"] = emitted_at.isoformat()
    envelope["source"] = FUZZ_SOURCE
    return envelope


@st.composite
def kafka_messages(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    """A mix: arbitrary bytes and JSON, fuzzed envelopes (the most), truncated or oversized
    envelopes, odd ``emitted_at`` and date texts, null values; keys none, right or wrong."""
    kind = draw(st.sampled_from(MESSAGE_KINDS))
    if kind == "null":
        return draw(st.none() | st.binary(max_size=10)), None
    if kind == "bytes":
        return draw(st.none() | st.binary(max_size=20)), draw(st.binary(max_size=300))
    if kind == "json":
        return None, encode_json(draw(json_values(nul=False)))
    envelope = draw(clean_envelopes() if kind == "clean" else fuzzed_envelopes(nul=False))
    data = envelope.get("data")
    if kind == "oversized" and isinstance(data, dict):
        data["TenLinhVuc"] = "Đ" * draw(st.integers(MAX_MESSAGE_BYTES // 2, MAX_MESSAGE_BYTES))
    elif kind == "emitted_at":
        envelope["emitted_at"] = draw(
            rfc3339_moments.map(lambda text: text.replace("T", " "))
            | st.from_regex(r"\A[0-9T:+-]{10,30}\Z")
            | text_values(nul=False)
        )
    elif kind == "date" and isinstance(data, dict):
        data["NgayHenTra" if "TrangThaiHoSo" in data else "ThoiDiemXuLy"] = draw(
            st.from_regex(r"\A[1-9][0-9]{13}\Z")
        )
    value = encode_json(envelope)
    if kind == "truncated":
        value = value[: draw(st.integers(1, max(len(value) - 1, 1)))]
    code = data.get("MaHoSo") if isinstance(data, dict) else None
    key_kind = draw(st.sampled_from(["none", "own", "own", "other"]))
    if key_kind == "own" and isinstance(code, str):
        key: bytes | None = code.encode("utf-8", "surrogatepass")
    elif key_kind == "other":
        key = draw(st.binary(min_size=1, max_size=30))
    else:
        key = None
    return key, value


def draw_examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy``, the same on every run."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn


def ingest_settings(
    broker: Broker, topic: str, database_url: str, **overrides: Any
) -> IngestSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": broker.bootstrap,
        "kafka_topic": topic,
        "kafka_group_id": f"group-{topic}",
        "kafka_batch_max_messages": 50,
        "kafka_poll_timeout_ms": 100,
        "kafka_session_timeout_ms": 2000,
        "kafka_heartbeat_interval_ms": 300,
        "kafka_retry_backoff_seconds": 0.2,
        "kafka_retry_backoff_max_seconds": 1.0,
        "kafka_max_message_bytes": MAX_MESSAGE_BYTES,
        "_env_file": None,
    }
    values.update(overrides)
    return IngestSettings(**values)


def fresh_topic(broker: Broker) -> str:
    name = f"tthc.hoso.hostile.{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, name, 1)
    return name


def batch_failures() -> float:
    return REGISTRY.get_sample_value("doisoat_ingest_batch_failures_total") or 0.0


class ConsumerStuck(AssertionError):
    pass


@contextlib.asynccontextmanager
async def consuming(
    settings_: IngestSettings, engine: AsyncEngine
) -> AsyncIterator[tuple[KafkaIngestor, asyncio.Task[None]]]:
    ingestor = KafkaIngestor(settings_, engine, fixed_clock(TEST_NOW))
    task = asyncio.create_task(ingestor.run())
    try:
        yield ingestor, task
    finally:
        ingestor.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=30)


async def until_all_committed(
    settings_: IngestSettings, task: asyncio.Task[None], *, seconds: float
) -> None:
    """Until the group's offsets reach the topic's end; fail fast on a crash or a failed batch."""
    bootstrap, topic = settings_.kafka_bootstrap_servers or "", settings_.kafka_topic
    failures = batch_failures()
    ends = await end_offsets(bootstrap, topic)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while await committed_offsets(bootstrap, settings_.kafka_group_id, topic) != ends:
        if task.done():
            error = None if task.cancelled() else task.exception()
            raise ConsumerStuck(f"the consumer stopped: {error!r}")
        if batch_failures() > failures:
            raise ConsumerStuck("a batch failed and is being retried from the same offset")
        if loop.time() > deadline:
            raise ConsumerStuck(f"offsets not committed to {ends} within {seconds} s")
        await asyncio.sleep(0.2)


async def rows(engine: AsyncEngine, statement: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(statement)).all())


async def test_fuzzed_messages_all_end_stored_or_dead_lettered(
    broker: Broker, pg_engine: AsyncEngine, pg_database_url: str
) -> None:
    messages = draw_examples(kafka_messages(), CONSUMER_MESSAGES)
    assert len(messages) == CONSUMER_MESSAGES
    expected = [parse_message(value, key, max_bytes=MAX_MESSAGE_BYTES) for key, value in messages]
    accepted_ids = {item.event_id for item in expected if isinstance(item, DossierEvent)}
    rejected = {
        offset: item.reason for offset, item in enumerate(expected) if isinstance(item, Rejection)
    }
    accepted = len(expected) - len(rejected)
    # The draw must exercise both outcomes, and repeated event_ids, to mean anything.
    assert accepted >= 30 and len(rejected) >= 40, (accepted, len(rejected))
    assert len(set(rejected.values())) >= 6, set(rejected.values())

    topic = fresh_topic(broker)
    produce(broker.bootstrap, topic, messages, partition=0)
    settings_ = ingest_settings(broker, topic, pg_database_url)
    async with consuming(settings_, pg_engine) as (ingestor, task):
        await until_all_committed(settings_, task, seconds=60)
        stored = {event_id for (event_id,) in await rows(pg_engine, select(Event.event_id))}
        letters = await rows(
            pg_engine,
            select(DeadLetter.offset, DeadLetter.reason, DeadLetter.payload, DeadLetter.key),
        )
        # Still alive: a good message after all that is stored too.
        good = snapshot(dossier_code(1), event_id="after-the-fuzz", emitted_at=BASE_TIME)
        produce(broker.bootstrap, topic, [(None, orjson.dumps(good))], partition=0)
        await until_all_committed(settings_, task, seconds=30)
        assert not task.done()
        assert await ingestor.ready()

    assert len(stored) + len(letters) == len(messages) - (accepted - len(accepted_ids))
    assert stored == accepted_ids
    assert {offset: reason for offset, reason, _, _ in letters} == rejected
    for offset, _, payload, key in letters:
        assert payload == (messages[offset][1] or b"")
        assert key == messages[offset][0]
    final = {event_id for (event_id,) in await rows(pg_engine, select(Event.event_id))}
    assert final == accepted_ids | {"after-the-fuzz"}


# ------------------------------------------ (c) hostile strings stored and returned verbatim

INJECTION = (
    "'; DROP TABLE dossiers; --",
    '" OR 1=1 --',
    "' OR '1'='1",
    "$$; SELECT pg_sleep(30); $$",
    "1); DELETE FROM events WHERE (1=1",
    "Robert'); DROP TABLE units;--",
    "\\'; TRUNCATE dead_letters; --",
    '%\' AND 1=0 UNION SELECT "ChuHoSo" FROM dossiers --',
    "${jndi:ldap://127.0.0.1/a} {{7*7}} <script>alert(1)</script>",
    "a\x01b\x02c\x07d\x08e\x1b[31mf\x7fg\th\ni\rj\x1fk",
    "\\x00 \\u0000 %00 (written out, not the character)",
)


def long_unicode(length: int) -> str:
    """``length`` code points: Vietnamese (NFC and NFD), emoji, RTL marks, combining marks."""
    pieces = [
        "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất; ",
        unicodedata.normalize("NFD", "Nguyễn Thị Ánh Tuyết — hồ sơ bổ sung lần thứ hai; "),
        "👩🏽‍💼🇻🇳👨‍👩‍👧‍👦🙂 ",
        "\u200f\u202bمرحبا\u202c\u200e \u202eabc\u202c ",
        "e\u0301\u0323\u0302 ạ̀ ",
        "漢字 한국어 ",
        "\u00a0\u2009\u200b\u2028 ",
    ]
    text = ""
    index = 0
    while len(text) < length:
        text += pieces[index % len(pieces)]
        index += 1
    text = "Đ" + text[1 : length - 1] + "t"  # no blank at either end (the directory trims)
    assert len(text) == length
    return text


HOSTILE = (*INJECTION, long_unicode(4000))


def clip(text: str, limit: int) -> str:
    clipped = text[:limit]
    return clipped if len(clipped) == len(text) else clipped[:-1] + "t"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture
def backend_database_url(request: pytest.FixtureRequest, backend: str) -> str:
    fixture = "pg_database_url" if backend == "postgresql" else "sqlite_database_url"
    return cast(str, request.getfixturevalue(fixture))


@pytest.fixture
async def api_engine(backend_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(backend_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(
    api_engine: AsyncEngine, backend_database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        make_settings(backend_database_url), engine=api_engine, clock=fixed_clock(TEST_NOW)
    )
    if not getattr(app.state, INSTALLED_MARKER, False):
        install_error_handlers(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
        yield http


async def post_events(api: httpx.AsyncClient, *envelopes: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await api.post(
        "/api/v1/events", content=orjson.dumps(list(envelopes)), headers=bearer(SOURCE_KEY)
    )
    assert answer.status_code == 200, answer.text[:500]
    return cast(list[dict[str, Any]], answer.json()["results"])


def hostile_dossier(number: int, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    code = dossier_code(9000 + number)
    state = snapshot(
        code,
        event_id=f"hostile-s-{number}",
        emitted_at=BASE_TIME,
        TenTTHC=clip(text, 1000),
        ChuHoSo=clip(text, 500),
        TenLinhVuc=clip(text, 500),
        DanhSachXinLoi=[
            {
                "NgayYeuCau": "20241022080000",
                "NgayHenTraMoi": "20241101170000",
                "LyDo": clip(text, 2000),
            }
        ],
    )
    step = progress(code, event_id=f"hostile-p-{number}", emitted_at=BASE_TIME, step_at=BASE_TIME)
    step["data"].update(
        NoiDungXuLy=clip(text, 4000),
        ChucDanh=clip(text, 256),
        PhongBanXuLy=clip(text, 256),
        NguoiXuLy=clip(text, 128),
    )
    return state, step


async def test_hostile_strings_in_events_come_back_verbatim(
    api: httpx.AsyncClient, api_engine: AsyncEngine
) -> None:
    for number, text in enumerate(HOSTILE):
        state, step = hostile_dossier(number, text)
        results = await post_events(api, state, step)
        assert [item["outcome"] for item in results] == ["stored", "stored"], results
        answer = await api.get(
            f"/api/v1/dossiers/{state['data']['MaHoSo']}", headers=bearer(OFFICER_KEY)
        )
        assert answer.status_code == 200, answer.text[:300]
        body = answer.json()
        for field in ("TenTTHC", "ChuHoSo", "TenLinhVuc"):
            assert body[field] == state["data"][field], field
        assert body["DanhSachXinLoi"][0]["LyDo"] == clip(text, 2000)
        assert body["responsible"] == clip(text, 128)
        (shown,) = body["progress"]
        for field in ("NoiDungXuLy", "ChucDanh", "PhongBanXuLy", "NguoiXuLy"):
            assert shown[field] == step["data"][field], field
    async with api_engine.connect() as connection:
        names = (await connection.execute(select(Dossier.procedure_name))).scalars().all()
        assert set(names) == {clip(text, 1000) for text in HOSTILE}


async def test_hostile_strings_in_field_reports_come_back_verbatim(api: httpx.AsyncClient) -> None:
    code = dossier_code(8000)
    await post_events(api, snapshot(code, event_id="report-target", emitted_at=BASE_TIME))
    for number, text in enumerate(HOSTILE):
        report = {
            "report_id": clip(f"r{number}-{text}", 128),
            "dossier_code": code,
            "kind": "returned",
            "occurred_at": "2024-10-30T10:40:00+07:00",
            "officer": clip(text, 128),
            "unit_code": UNIT,
            "note": clip(text, 2000),
        }
        answer = await api.post("/api/v1/field-reports", json=report, headers=bearer(DESK_KEY))
        assert answer.status_code == 201, answer.text[:300]
        for field in ("report_id", "officer", "note"):
            assert answer.json()[field] == report[field], field
    dossier = (await api.get(f"/api/v1/dossiers/{code}", headers=bearer(OFFICER_KEY))).json()
    notes = {item["note"] for item in dossier["field_reports"]}
    assert notes == {clip(text, 2000) for text in HOSTILE}


async def test_hostile_strings_in_the_directory_come_back_verbatim(api: httpx.AsyncClient) -> None:
    admin = bearer(ADMIN_KEY)
    for number, text in enumerate(HOSTILE):
        if text != text.strip():
            continue  # the directory trims blanks at the ends, by design
        unit = await api.put(
            f"/api/v1/units/U{number}", json={"name": clip(text, 500)}, headers=admin
        )
        assert unit.status_code == 200, unit.text[:300]
        assert (await api.get(f"/api/v1/units/U{number}", headers=admin)).json()["name"] == clip(
            text, 500
        )
        officer = {"full_name": clip(text, 256), "unit_code": f"U{number}", "role": "handler"}
        put = await api.put(f"/api/v1/officers/acc{number}", json=officer, headers=admin)
        assert put.status_code == 200, put.text[:300]
        read = await api.get(f"/api/v1/officers/acc{number}", headers=admin)
        assert read.json()["full_name"] == clip(text, 256)


async def test_injection_in_filters_and_paths_matches_nothing(
    api: httpx.AsyncClient, api_engine: AsyncEngine
) -> None:
    admin = bearer(ADMIN_KEY)
    await post_events(api, snapshot(dossier_code(1), event_id="bystander", emitted_at=BASE_TIME))
    await api.put(
        "/api/v1/officers/bystander",
        json={"full_name": "B", "unit_code": UNIT, "role": "desk"},
        headers=admin,
    )
    for text in INJECTION:
        officers = await api.get("/api/v1/officers", params={"unit": text}, headers=admin)
        assert officers.status_code == 200 and officers.json()["total"] == 0, officers.text
        found = await api.get("/api/v1/discrepancies", params={"dossier": text}, headers=admin)
        assert found.status_code == 200 and found.json()["total"] == 0, found.text
        dossier = await api.get(f"/api/v1/dossiers/{quote(text, safe='')}", headers=admin)
        assert dossier.status_code == 404, dossier.text
        unit = await api.get(f"/api/v1/units/{quote(text, safe='')}", headers=admin)
        assert unit.status_code == 404, unit.text
    async with api_engine.connect() as connection:
        assert (
            await connection.execute(select(func.count()).select_from(Dossier))
        ).scalar_one() == 1
        assert (await connection.execute(select(func.count()).select_from(Event))).scalar_one() == 1


async def test_values_the_contract_bounds_are_refused_cleanly(
    api: httpx.AsyncClient, api_engine: AsyncEngine
) -> None:
    admin, desk = bearer(ADMIN_KEY), bearer(DESK_KEY)
    long_text = long_unicode(4001)
    bad_code = snapshot("'; DROP TABLE dossiers; --", event_id="bad-code", emitted_at=BASE_TIME)
    long_name = snapshot(
        dossier_code(2), event_id="long-name", emitted_at=BASE_TIME, TenTTHC=long_text[:1001]
    )
    step = progress(dossier_code(2), event_id="long-step", emitted_at=BASE_TIME, step_at=BASE_TIME)
    step["data"]["NoiDungXuLy"] = long_text
    bad_id = snapshot(dossier_code(3), event_id="e" * 129, emitted_at=BASE_TIME)
    results = await post_events(api, bad_code, long_name, step, bad_id)
    assert [item["outcome"] for item in results] == ["refused"] * 4
    assert all(item["reason"].startswith("schema:") for item in results), results
    async with api_engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(Event))).scalar_one() == 0

    report = {
        "report_id": "too-long",
        "dossier_code": dossier_code(2),
        "kind": "returned",
        "occurred_at": "2024-10-30T10:40:00+07:00",
        "officer": "lethic.motcua",
        "unit_code": UNIT,
    }
    for changes in (
        {"note": long_text[:2001]},
        {"dossier_code": "' OR 1=1 --"},
        {"officer": "x" * 129},
        {"report_id": ""},
    ):
        answer = await api.post("/api/v1/field-reports", json={**report, **changes}, headers=desk)
        assert answer.status_code == 422, (changes, answer.text[:300])
        assert " / " in answer.json()["detail"]

    officer = {"full_name": long_text[:257], "unit_code": UNIT, "role": "handler"}
    assert (await api.put("/api/v1/officers/acc", json=officer, headers=admin)).status_code == 422
    bad_account = await api.put(
        "/api/v1/officers/a%01b", json={**officer, "full_name": "A"}, headers=admin
    )
    assert bad_account.status_code == 422
    bad_unit = await api.put("/api/v1/units/a'b", json={"name": "A"}, headers=admin)
    assert bad_unit.status_code == 422
    unit_name = await api.put("/api/v1/units/U1", json={"name": long_text[:501]}, headers=admin)
    assert unit_name.status_code == 422


# ------------------------------------------------- regressions: inputs that once reached a 500


@pytest.mark.parametrize(
    ("backend", "send"),
    [pytest.param("postgresql", name) for name in ("event", "report", "unit", "path", "query")]
    + [pytest.param("sqlite", name) for name in ("event", "report", "unit", "path", "query")],
)
async def test_nul_characters_are_stored_or_refused_never_a_500(
    api: httpx.AsyncClient, backend: str, send: str
) -> None:
    text = "trước\x00sau"
    if send == "event":
        state = snapshot(dossier_code(5), event_id="nul", emitted_at=BASE_TIME, TenTTHC=text)
        answer = await api.post(
            "/api/v1/events", content=orjson.dumps([state]), headers=bearer(SOURCE_KEY)
        )
    elif send == "report":
        report = {
            "report_id": "nul",
            "dossier_code": dossier_code(5),
            "kind": "returned",
            "occurred_at": "2024-10-30T10:40:00+07:00",
            "officer": "lethic.motcua",
            "unit_code": UNIT,
            "note": text,
        }
        answer = await api.post("/api/v1/field-reports", json=report, headers=bearer(DESK_KEY))
    elif send == "unit":
        answer = await api.put("/api/v1/units/U1", json={"name": text}, headers=bearer(ADMIN_KEY))
    elif send == "path":
        answer = await api.get("/api/v1/dossiers/a%00b", headers=bearer(ADMIN_KEY))
    else:
        answer = await api.get("/api/v1/officers", params={"unit": text}, headers=bearer(ADMIN_KEY))
    assert answer.status_code < 500, answer.text


@pytest.mark.parametrize("emitted_at", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_parse_message_is_total_on_extreme_emitted_at(emitted_at: str) -> None:
    envelope = snapshot(dossier_code(1), event_id="edge", emitted_at=BASE_TIME)
    envelope["emitted_at"] = emitted_at
    assert_total(parse_message(orjson.dumps(envelope)))


def _poison(kind: str) -> dict[str, Any]:
    envelope = snapshot(dossier_code(4), event_id=f"poison-{kind}", emitted_at=BASE_TIME)
    if kind == "year-one":
        envelope["data"]["NgayTiepNhan"] = "00010101000000"
    elif kind == "deep":
        value: Any = 1
        for _ in range(300):
            value = [value]
        envelope["data"]["TruongKhac"] = value
    elif kind == "nul":
        envelope["data"]["TenTTHC"] = "trước\x00sau"
    elif kind == "extreme-emitted-at":
        envelope["emitted_at"] = "9999-12-31T23:59:59-23:59"
    return envelope


@pytest.mark.parametrize(
    "kind",
    [
        "year-one",
        "deep",
        "nul",
        "extreme-emitted-at",
    ],
)
async def test_a_poison_message_does_not_stop_the_consumer(
    broker: Broker, pg_engine: AsyncEngine, pg_database_url: str, kind: str
) -> None:
    """The message ends stored or dead-lettered, and the good one after it is stored."""
    topic = fresh_topic(broker)
    good = snapshot(dossier_code(6), event_id="after-the-poison", emitted_at=BASE_TIME)
    value = json.dumps(_poison(kind)).encode()  # json: orjson would refuse to write 300 levels
    produce(broker.bootstrap, topic, [(None, value), (None, orjson.dumps(good))], partition=0)
    settings_ = ingest_settings(broker, topic, pg_database_url, kafka_max_message_bytes=1024 * 1024)
    async with consuming(settings_, pg_engine) as (_, task):
        await until_all_committed(settings_, task, seconds=20)
        assert not task.done()
    stored = {event_id for (event_id,) in await rows(pg_engine, select(Event.event_id))}
    letters = await rows(pg_engine, select(DeadLetter.offset))
    assert "after-the-poison" in stored
    assert len(stored) + len(letters) == 2


@pytest.mark.parametrize(
    "kind",
    [
        "year-one",
        "extreme-emitted-at",
    ],
)
async def test_a_poison_event_over_http_is_refused_not_a_500(
    api: httpx.AsyncClient, backend: str, kind: str
) -> None:
    answer = await api.post(
        "/api/v1/events", content=orjson.dumps([_poison(kind)]), headers=bearer(SOURCE_KEY)
    )
    assert answer.status_code < 500, answer.text
