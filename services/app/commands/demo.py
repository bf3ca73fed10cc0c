"""``doisoat demo``: seed a synthetic one-stop desk, run the pipeline, print what it found."""

from __future__ import annotations

import typer

from services.app.console import fail, load_settings
from services.app.demo import DEFAULT_DOSSIERS, DEFAULT_SEED
from services.reconciler.config import ReconcilerSettings


def demo(
    dossiers: int = typer.Option(DEFAULT_DOSSIERS, help="Số hồ sơ mẫu (50–20.000)."),
    seed: int = typer.Option(
        DEFAULT_SEED, help="Hạt giống sinh dữ liệu (cùng hạt giống, cùng dữ liệu)."
    ),
    reset: bool = typer.Option(False, help="Xóa tệp SQLite cũ trước khi tạo dữ liệu mẫu."),
) -> None:
    """Tạo một Bộ phận Một cửa mẫu, chạy đối soát và in bảng tóm tắt (chỉ để dùng thử)."""
    from services.app.demo.run import DemoError, demo_command

    settings = load_settings(ReconcilerSettings)
    try:
        demo_command(
            settings.database_url,
            dossiers=dossiers,
            seed=seed,
            echo=typer.echo,
            reset=reset,
            settings=settings,
        )
    except DemoError as error:
        raise fail(str(error)) from None
