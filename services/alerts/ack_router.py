"""``GET /ack/{token}`` shows what would be acknowledged; ``POST /ack/{token}`` acknowledges.

The links in alerts (contract §4): outside ``/api/v1``, no API key — the signed token is the
credential and names the account recorded. GET changes nothing, because mail scanners and link
previews open every link; only the form's POST writes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from services.alerts import service
from services.alerts.content.formatting import short_time
from services.alerts.content.rendering import html_environment
from services.alerts.links import AckClaim, AckLinks, InvalidAckLink
from shared.db import unit_of_work
from shared.vocabulary import DISCREPANCY_STATUS_LABELS
from shared.web.deps import ClockDep, EngineDep
from shared.web.openapi import html_responses

router = APIRouter(tags=["ack"])

# Each answer is a page saying what happened (the link is opened in a browser).
PAGE_ANSWERS = {
    400: "Liên kết không hợp lệ / Not a genuine link (e.g. cut short when copied)",
    404: "Không còn sai lệch mà liên kết nhắc tới / The discrepancy no longer exists",
    410: "Liên kết đã hết hạn / The link has expired; a reminder brings a new one",
}

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def _page(
    status_code: int,
    *,
    title: str,
    message: str,
    tone: str,
    item: dict[str, Any] | None = None,
    state: str | None = None,
    form: bool = False,
    account: str | None = None,
) -> HTMLResponse:
    """The one page template, never cached or indexed (the URL is a credential)."""
    html = (
        html_environment()
        .get_template("ack_page.html.j2")
        .render(
            title=title,
            message=message,
            tone=tone,
            item=item,
            state_label=DISCREPANCY_STATUS_LABELS.get(state or "", state or ""),
            form=form,
            account=account,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def _bad_link(error: InvalidAckLink) -> HTMLResponse:
    """410 for a genuine but expired link (a reminder brings a new one), 400 otherwise."""
    if error.expired:
        return _page(
            status.HTTP_410_GONE,
            title="Liên kết đã hết hạn",
            message="Liên kết xác nhận này đã hết hạn. Thông báo nhắc lại sẽ kèm liên kết mới; "
            "anh/chị cũng có thể xác nhận sai lệch trên doisoat.",
            tone="warn",
        )
    return _page(
        status.HTTP_400_BAD_REQUEST,
        title="Liên kết không hợp lệ",
        message="Liên kết xác nhận không hợp lệ (có thể bị cắt mất một phần khi sao chép). "
        "Vui lòng mở lại liên kết đầy đủ trong thông báo.",
        tone="error",
    )


def _not_found() -> HTMLResponse:
    return _page(
        status.HTTP_404_NOT_FOUND,
        title="Không tìm thấy sai lệch",
        message="Không tìm thấy sai lệch mà liên kết này nhắc tới.",
        tone="error",
    )


def _claim(request: Request, token: str) -> AckClaim | HTMLResponse:
    """The token's claim, or the page explaining why the link cannot be used."""
    links: AckLinks = request.app.state.ack_links
    try:
        return links.read(token)
    except InvalidAckLink as error:
        return _bad_link(error)


def _resolved(row: Any, item: dict[str, Any], status_code: int) -> HTMLResponse:
    reason = f" ({row.resolution})" if row.resolution else ""
    return _page(
        status_code,
        title="Sai lệch đã được giải quyết",
        message=f"Sai lệch này đã được giải quyết lúc {short_time(row.resolved_at)}{reason}. "
        "Không cần xác nhận nữa.",
        tone="info",
        item=item,
        state=row.status,
    )


def _already(row: Any, item: dict[str, Any]) -> HTMLResponse:
    return _page(
        status.HTTP_200_OK,
        title="Đã được xác nhận trước đó",
        message=f"Sai lệch này đã được tài khoản {row.acknowledged_by} xác nhận lúc "
        f"{short_time(row.acknowledged_at)}. Không cần xác nhận lại.",
        tone="info",
        item=item,
        state=row.status,
    )


@router.get("/ack/{token}", response_class=HTMLResponse, responses=html_responses(PAGE_ANSWERS))
async def show_acknowledgement(token: str, request: Request, engine: EngineDep) -> HTMLResponse:
    """What the link would acknowledge, with a form; changes nothing."""
    claim = _claim(request, token)
    if isinstance(claim, HTMLResponse):
        return claim
    async with unit_of_work(engine, "ack_link_show") as connection:
        found = await service.ack_target(connection, discrepancy_id=claim.discrepancy_id)
    if found is None:
        return _not_found()
    row, item = found.discrepancy, found.item
    if row.status == "acknowledged":
        return _already(row, item)
    if row.status == "resolved":
        return _resolved(row, item, status.HTTP_200_OK)  # showing is not a conflict
    return _page(
        status.HTTP_200_OK,
        title="Xác nhận đã tiếp nhận cảnh báo",
        message="Anh/chị sắp xác nhận đã tiếp nhận sai lệch dưới đây. Bấm nút bên dưới để "
        "xác nhận; chỉ mở trang này thì chưa có gì thay đổi.",
        tone="info",
        item=item,
        state=row.status,
        form=True,
        account=claim.account,
    )


@router.post(
    "/ack/{token}",
    response_class=HTMLResponse,
    responses=html_responses(
        {**PAGE_ANSWERS, 409: "Sai lệch đã được giải quyết / Already resolved"}
    ),
)
async def acknowledge(
    token: str, request: Request, engine: EngineDep, clock: ClockDep
) -> HTMLResponse:
    """Acknowledge as the token's account, in one unit of work."""
    claim = _claim(request, token)
    if isinstance(claim, HTMLResponse):
        return claim
    now = clock()
    async with unit_of_work(engine, "ack_link") as connection:
        found = await service.acknowledge(
            connection, discrepancy_id=claim.discrepancy_id, account=claim.account, now=now
        )
    if found is None:
        return _not_found()
    row, item = found.discrepancy, found.item
    if row.status == "resolved":
        return _resolved(row, item, status.HTTP_409_CONFLICT)
    if not found.acknowledged_now:
        return _already(row, item)
    return _page(
        status.HTTP_200_OK,
        title="Đã xác nhận",
        message=f"Cảm ơn anh/chị. Sai lệch đã được xác nhận bằng tài khoản {claim.account} lúc "
        f"{short_time(now)}. Đề nghị tiếp tục: {item['action']}",
        tone="ok",
        item=item,
        state=row.status,
    )
