"""A minimal window until the full browser lands."""

from __future__ import annotations


def run(argv: list[str], store_url: str | None = None, read_only: bool = False) -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(["hashlens", *argv])
    label = QLabel("Hashlens")
    label.resize(400, 200)
    label.show()
    return app.exec()
