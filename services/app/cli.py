"""The ``doisoat`` command (contract §5): one typer app, a module per command group.

Messages for people are in Vietnamese, English beside; see :mod:`services.app.console`.
"""

from __future__ import annotations

import typer

from services.app.commands import processes
from services.app.commands.demo import demo
from services.app.commands.imports import import_app
from services.app.commands.keys import keys_app
from services.app.commands.purge import purge
from services.app.commands.rejudge import rejudge
from services.app.commands.sign_in import sign_in_link, sign_out

app = typer.Typer(
    help="doisoat — đối soát trạng thái hồ sơ thủ tục hành chính với thực tế tại Bộ phận Một cửa.",
    no_args_is_help=True,
    add_completion=False,
)

for command in (
    processes.migrate,
    processes.run,
    processes.api,
    processes.ingest,
    processes.reconciler,
    processes.alerts,
    purge,
    rejudge,
    demo,
):
    app.command()(command)
app.command("sign-in-link")(sign_in_link)
app.command("sign-out")(sign_out)
app.add_typer(import_app, name="import")
app.add_typer(keys_app, name="keys")


if __name__ == "__main__":
    app()
