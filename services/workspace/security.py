"""Headers every page carries: a Content-Security-Policy without inline scripts, and no caching.

Everything a page loads is served by doisoat (``'self'``): no CDN, no font or script from any
other server — a province's intranet may have no internet, and an event field such as
``TenTTHC`` or ``ChuHoSo`` carrying ``<script>`` must stay text (Jinja2 escapes it; the policy
would refuse it even if it did not).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    # Sign-in links carry their token in the path: never let a page leak it as a referrer.
    b"referrer-policy": b"no-referrer",
}
NO_STORE = (b"cache-control", b"no-store")
# The JSON API, and FastAPI's interactive API documentation for operators (it loads Swagger UI
# from its CDN by design; it is no page of the workspace).
NOT_PAGES = ("/api/", "/docs", "/openapi.json")


class PageHeaders:
    """Adds :data:`PAGE_HEADERS` to every HTML answer (and ``no-store`` to all but assets)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(NOT_PAGES):
            await self.app(scope, receive, send)
            return
        asset = str(scope["path"]).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in PAGE_HEADERS
                ]
                headers += list(PAGE_HEADERS.items())
                if not asset:
                    headers.append(NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
