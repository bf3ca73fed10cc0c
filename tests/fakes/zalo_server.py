"""An HTTP server speaking Zalo's token, OA message and ZNS APIs, on loopback.

It refuses what Zalo refuses (see ``shared/reference/zalo.md``): a reused refresh token
(tokens rotate, single use), a wrong ``secret_key``, unknown or expired access tokens, a bad
``tracking_id``, unknown templates and incomplete template data, phones without Zalo, users
not following the OA, exhausted quotas and the rate limit. Every accepted message is recorded.
Tests steer it through :class:`ZaloFakeState`; uvicorn serves it from a background thread.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

ZNS_KEYS = frozenset({"ma_ho_so", "ten_thu_tuc", "don_vi", "van_de", "thoi_diem"})
_PHONE = re.compile(r"84\d{9,10}")
_TRACKING_ID = re.compile(r"[A-Za-z0-9]{1,48}")


@dataclass
class ZaloFakeState:
    """Everything a test may configure or inspect; guarded by ``lock`` (server thread)."""

    app_id: str = "fake-app-id"
    secret_key: str = "fake-app-secret"
    access_ttl: int = 90000  # expires_in answered for new access tokens, in seconds
    expired_error: int = -220  # what an expired access token gets (-216 or -220)
    templates: dict[str, frozenset[str]] = field(default_factory=lambda: {"401234": ZNS_KEYS})
    no_zalo_phones: set[str] = field(default_factory=set)  # ZNS -118
    oa_unreachable: dict[str, int] = field(default_factory=dict)  # user_id -> -213/-230/-244
    oa_quota_remaining: int | None = None  # None = unlimited; 0 -> -211
    zns_daily_quota: int = 500
    zns_remaining: int = 500  # 0 -> ZNS quota error; answered after each send
    rate_limited: bool = False  # -32 on both message APIs
    fail_next: list[int] = field(default_factory=list)  # HTTP statuses for the next messages
    delay_next: float = 0.0  # seconds to stall the next message call (timeouts)
    oa_messages: list[dict[str, Any]] = field(default_factory=list)
    zns_messages: list[dict[str, Any]] = field(default_factory=list)
    refresh_attempts: list[tuple[str, str]] = field(default_factory=list)  # (token, outcome)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _live_refresh: set[str] = field(default_factory=set)
    _used_refresh: set[str] = field(default_factory=set)
    _access: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)

    def issue_refresh_token(self) -> str:
        """A fresh refresh token, as an operator gets from the Zalo console."""
        token = f"rt{secrets.token_hex(12)}"
        with self.lock:
            self._live_refresh.add(token)
        return token

    def issue_access_token(self, ttl: float | None = None) -> str:
        """An access token valid for ``ttl`` seconds (default ``access_ttl``)."""
        token = f"at{secrets.token_hex(12)}"
        with self.lock:
            self._access[token] = time.monotonic() + (self.access_ttl if ttl is None else ttl)
        return token

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on."""
        with self.lock:
            now = time.monotonic()
            for token in self._access:
                self._access[token] = now - 1

    def is_used_refresh_token(self, token: str) -> bool:
        with self.lock:
            return token in self._used_refresh

    # --- handlers' helpers (called with the lock held) ---

    def _token_error(self, token: str | None, *, zns: bool) -> dict[str, Any] | None:
        expiry = self._access.get(token or "")
        if expiry is None:
            if zns:
                return {"error": -124, "message": "Access token is invalid"}
            return {"error": -216, "message": "Access token is invalid"}
        if expiry <= time.monotonic():
            return {"error": self.expired_error, "message": "Access token has expired or removed"}
        return None


def create_app(server: FakeZaloServer) -> FastAPI:
    """The three endpoints; each request reads ``server.state`` (tests swap it per test)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/v4/oa/access_token")
    async def access_token(request: Request) -> JSONResponse:
        state = server.state
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        token = form.get("refresh_token", "")
        with state.lock:
            if request.headers.get("secret_key") != state.secret_key:
                state.refresh_attempts.append((token, "bad_secret"))
                return _oauth_error(-14003, "Invalid secret key", "secret_key is invalid")
            if form.get("app_id") != state.app_id or form.get("grant_type") != "refresh_token":
                state.refresh_attempts.append((token, "bad_request"))
                return _oauth_error(-14001, "Invalid parameter", "app_id or grant_type invalid")
            if token not in state._live_refresh:
                outcome = "reused" if token in state._used_refresh else "unknown"
                state.refresh_attempts.append((token, outcome))
                return _oauth_error(-14014, "Invalid refresh token", "Refresh token is invalid")
            state._live_refresh.discard(token)
            state._used_refresh.add(token)
            state.refresh_attempts.append((token, "ok"))
            ttl = state.access_ttl
        access = state.issue_access_token()
        refresh = state.issue_refresh_token()
        return JSONResponse(
            {"access_token": access, "refresh_token": refresh, "expires_in": str(ttl)}
        )

    @app.post("/v3.0/oa/message/cs")
    async def oa_message(request: Request) -> Response:
        state = server.state
        early = await _common_failures(state)
        if early is not None:
            return early
        body = await _json(request)
        with state.lock:
            error = state._token_error(request.headers.get("access_token"), zns=False)
            if error is not None:
                return JSONResponse(error)
            if state.rate_limited:
                return JSONResponse({"error": -32, "message": "Application request limit"})
            user_id = str((body.get("recipient") or {}).get("user_id") or "")
            text = (body.get("message") or {}).get("text")
            if not user_id or not isinstance(text, str) or not text or len(text) > 2000:
                return JSONResponse({"error": -201, "message": "Parameters are invalid"})
            if user_id in state.oa_unreachable:
                code = state.oa_unreachable[user_id]
                return JSONResponse({"error": code, "message": _OA_MESSAGES.get(code, "Refused")})
            if state.oa_quota_remaining is not None:
                if state.oa_quota_remaining <= 0:
                    return JSONResponse({"error": -211, "message": "Out of quota"})
                state.oa_quota_remaining -= 1
            message_id = secrets.token_hex(16)
            state.oa_messages.append({"user_id": user_id, "text": text, "message_id": message_id})
        return JSONResponse(
            {
                "error": 0,
                "message": "Success",
                "data": {"message_id": message_id, "user_id": user_id},
            }
        )

    @app.post("/message/template")
    async def zns_message(request: Request) -> Response:
        state = server.state
        early = await _common_failures(state)
        if early is not None:
            return early
        body = await _json(request)
        with state.lock:
            error = state._token_error(request.headers.get("access_token"), zns=True)
            if error is not None:
                return JSONResponse(error)
            if state.rate_limited:
                return JSONResponse({"error": -32, "message": "Application request limit"})
            refusal = _zns_refusal(state, body)
            if refusal is not None:
                return JSONResponse({"error": refusal[0], "message": refusal[1]})
            state.zns_remaining -= 1
            msg_id = secrets.token_hex(16)
            state.zns_messages.append({**body, "msg_id": msg_id})
            quota = {
                "dailyQuota": str(state.zns_daily_quota),
                "remainingQuota": str(state.zns_remaining),
            }
        sent_time = str(int(time.time() * 1000))
        return JSONResponse(
            {
                "error": 0,
                "message": "Success",
                "data": {"msg_id": msg_id, "sent_time": sent_time, "quota": quota},
            }
        )

    return app


_OA_MESSAGES = {
    -213: "User has not followed OA",
    -230: "User has not interacted with the OA in the last 7 days",
    -244: "User has restricted receiving this type of message",
}


def _zns_refusal(state: ZaloFakeState, body: dict[str, Any]) -> tuple[int, str] | None:
    """Zalo's check order, roughly: parameters, template, data, recipient, quota."""
    phone = body.get("phone")
    if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
        return -108, "Phone number invalid"
    tracking_id = body.get("tracking_id")
    if tracking_id is not None and (
        not isinstance(tracking_id, str) or not _TRACKING_ID.fullmatch(tracking_id)
    ):
        return -100, "tracking_id is invalid: at most 48 letters or digits"
    required = state.templates.get(str(body.get("template_id")))
    if required is None:
        return -109, "Template ID invalid"
    data = body.get("template_data")
    if not isinstance(data, dict) or not data:
        return -111, "Template data empty"
    if not required <= data.keys() or not all(isinstance(v, str) for v in data.values()):
        return -112, "Template data invalid"
    if phone in state.no_zalo_phones:
        return -118, "Zalo account not existed"
    if state.zns_remaining <= 0:
        return -144, "OA has exceeded the daily ZNS quota"
    return None


async def _common_failures(state: ZaloFakeState) -> Response | None:
    """Injected outages: a stall (client timeouts) or an HTTP error status."""
    with state.lock:
        delay, state.delay_next = state.delay_next, 0.0
        status = state.fail_next.pop(0) if state.fail_next else None
    if delay:
        await asyncio.sleep(delay)
    if status is not None:
        return PlainTextResponse("Internal Server Error", status_code=status)
    return None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _oauth_error(code: int, name: str, description: str) -> JSONResponse:
    return JSONResponse({"error": code, "error_name": name, "error_description": description})


class FakeZaloServer:
    """uvicorn in a daemon thread; ``base_url`` serves the token, OA and ZNS endpoints alike."""

    #: The listening socket's protocol: 0, as a plain ``socket.socket()`` has (the benchmark's
    #: subclass names TCP to get asyncio's ``TCP_NODELAY`` on accepted connections).
    socket_protocol = 0

    def __init__(self) -> None:
        self.state = ZaloFakeState()
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, self.socket_protocol)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(create_app(self), log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fake Zalo server did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def reset(self) -> ZaloFakeState:
        """A fresh state (tokens, quotas, records) for the next test."""
        self.state = ZaloFakeState()
        return self.state


@contextmanager
def running_fake_zalo() -> Iterator[FakeZaloServer]:
    """Start the fake on a free loopback port for the duration of the block."""
    server = FakeZaloServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
