"""``doisoat rejudge``: judge every dossier again now, with progress and a summary.

What a reconciler does by itself when it starts with other judging settings; by hand after a
change an operator wants applied at once. Changes reach the alerts outbox as usual when a
channel is configured.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import typer

from services.app.console import load_settings, number, open_database, run_async
from services.reconciler.config import ReconcilerSettings
from shared.clock import system_clock
from shared.db import unit_of_work

if TYPE_CHECKING:
    from services.alerts.planner import AlertPlanner
    from services.reconciler import service


def rejudge() -> None:
    """Đối soát lại toàn bộ hồ sơ ngay (sau khi đổi ngưỡng, giờ làm việc hoặc ngày nghỉ)."""
    # Imported here: the ``doisoat`` command loads only what the command run needs.
    from services.alerts.config import AlertsSettings
    from services.alerts.planner import AlertPlanner

    settings = load_settings(ReconcilerSettings)
    planner = AlertPlanner(load_settings(AlertsSettings))
    run_async(_rejudge(settings, planner))


async def _rejudge(settings: ReconcilerSettings, planner: AlertPlanner) -> None:
    from services.app.wiring import outbox_hook
    from services.reconciler import rejudge as rejudging
    from services.reconciler.worker import Reconciler

    tally: Counter[str] = Counter()
    async with open_database(settings.database_url) as engine:
        async with unit_of_work(engine, "rejudge_mark") as connection:
            marked = await rejudging.mark_everything(
                connection, rejudging.judging_fingerprint(settings), now=system_clock()
            )
        typer.echo(
            f"Đối soát lại {number(marked)} hồ sơ… / Judging {marked} dossiers again…", err=True
        )
        hook = outbox_hook(planner) if planner.active else None
        reconciler = Reconciler(settings, engine, system_clock, on_changes=hook)
        with typer.progressbar(length=marked, label="Đang đối soát", file=None) as bar:

            def count(judgement: service.Judgement) -> None:
                tally["judged"] += judgement.evaluated
                tally["opened"] += judgement.count("opened")
                tally["resolved"] += judgement.count("resolved")
                tally["handed_over"] += judgement.count("handed_over")
                bar.update(judgement.evaluated)

            await reconciler.drain(on_chunk=count)
    typer.echo(
        f"Xong: đã đối soát {number(tally['judged'])} hồ sơ; mở {number(tally['opened'])} sai "
        f"lệch, tự động đóng {number(tally['resolved'])}, chuyển người xử lý "
        f"{number(tally['handed_over'])}. / Done: {tally['judged']} dossiers judged, "
        f"{tally['opened']} discrepancies opened, {tally['resolved']} resolved, "
        f"{tally['handed_over']} handed over."
    )
