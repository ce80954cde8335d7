"""Light and dark palettes for the Fusion style, following the system scheme unless overridden."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

THEMES = ("system", "light", "dark")

# Hand-picked so selection, links and disabled text stay readable in both schemes.
_LIGHT = {
    "Window": "#f3f4f6", "WindowText": "#1f2328", "Base": "#ffffff", "AlternateBase": "#f6f8fa",
    "ToolTipBase": "#ffffe1", "ToolTipText": "#1f2328", "PlaceholderText": "#8b949e",
    "Text": "#1f2328", "Button": "#f6f8fa", "ButtonText": "#1f2328", "BrightText": "#cf222e",
    "Light": "#ffffff", "Midlight": "#e6e8eb", "Mid": "#c4c9d0", "Dark": "#9aa1a9", "Shadow": "#6e7781",
    "Highlight": "#2f6fba", "HighlightedText": "#ffffff", "Link": "#0b62c4", "LinkVisited": "#6e40c9",
}
_DARK = {
    "Window": "#23262b", "WindowText": "#e6e8eb", "Base": "#1a1c20", "AlternateBase": "#22252a",
    "ToolTipBase": "#2d3036", "ToolTipText": "#e6e8eb", "PlaceholderText": "#7d8590",
    "Text": "#e6e8eb", "Button": "#2c3036", "ButtonText": "#e6e8eb", "BrightText": "#ff7b72",
    "Light": "#3a3f46", "Midlight": "#33373d", "Mid": "#464b53", "Dark": "#15171a", "Shadow": "#0b0c0e",
    "Highlight": "#3d7fd0", "HighlightedText": "#ffffff", "Link": "#58a6ff", "LinkVisited": "#bc8cff",
}
_DISABLED = {
    "light": {"WindowText": "#9aa1a9", "Text": "#9aa1a9", "ButtonText": "#9aa1a9", "Highlight": "#b8c4d2"},
    "dark": {"WindowText": "#6b7079", "Text": "#6b7079", "ButtonText": "#6b7079", "Highlight": "#3a4250"},
}

# Colours for our own widgets (banners, the pHash grid) that the palette has no role for.
ACCENTS = {
    "light": {"banner_bg": "#fff4d6", "banner_fg": "#6b4a00", "banner_border": "#e8c767",
              "hint_bg": "#dcebfb", "hint_fg": "#0b3d75", "hint_border": "#9ec5f0",
              "error_fg": "#b3261e", "bit_on": "#1f2328", "bit_off": "#ffffff", "bit_mixed": "#e09b2d"},
    "dark": {"banner_bg": "#3d3113", "banner_fg": "#f5d68a", "banner_border": "#6b5419",
             "hint_bg": "#16304f", "hint_fg": "#b9d8fb", "hint_border": "#2c5a8f",
             "error_fg": "#ff8a80", "bit_on": "#e6e8eb", "bit_off": "#1a1c20", "bit_mixed": "#e09b2d"},
}


# Fusion draws a text field's frame in the window colour darkened, which on our dark
# window is the field's own colour: the fields had no visible edge (issue 14). A border of
# a light grey, and the highlight while focused, gives them one. Only framed line edits
# (those inside combo and spin boxes have none) and text areas: a style sheet on a spin or
# combo box makes Qt drop its native arrows, and Fusion draws those on the button colour.
_DARK_SHEET = """
QLineEdit[frame="true"], QPlainTextEdit, QTextEdit {
    border: 1px solid #5b616b; border-radius: 3px; background: #1a1c20;
}
QLineEdit[frame="true"] { padding: 2px 3px; }
QLineEdit[frame="true"]:focus, QPlainTextEdit:focus, QTextEdit:focus {
    border-color: #3d7fd0;
}
QLineEdit[frame="true"]:disabled { border-color: #3a3f46; }
"""


def style_sheet(scheme: str) -> str:
    """The application style sheet for a scheme: empty in light, field borders in dark."""
    return _DARK_SHEET if scheme == "dark" else ""


def palette(scheme: str) -> QPalette:
    colors = _DARK if scheme == "dark" else _LIGHT
    result = QPalette()
    for role, value in colors.items():
        result.setColor(getattr(QPalette.ColorRole, role), QColor(value))
    for role, value in _DISABLED[scheme].items():
        result.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, role), QColor(value))
    return result


def system_scheme() -> str:
    """'dark' when the platform says so; offscreen and plain X11 report Unknown (light)."""
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None and scheme() == Qt.ColorScheme.Dark:
        return "dark"
    return "light"


class ThemeManager(QObject):
    """Applies a palette to the application and re-applies it when the system flips."""

    changed = Signal(str)  # the scheme now in effect: "light" or "dark"

    def __init__(self, app: QApplication, mode: str = "system", parent: QObject | None = None):
        super().__init__(parent or app)
        self._app = app
        self.mode = mode if mode in THEMES else "system"
        self.scheme = "light"
        if "Fusion" in QStyleFactory.keys():
            # Fusion draws the same on every platform and honours our palettes fully.
            app.setStyle("Fusion")
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_system_changed)
        self.apply()

    def set_mode(self, mode: str) -> None:
        self.mode = mode if mode in THEMES else "system"
        self.apply()

    def apply(self) -> None:
        scheme = system_scheme() if self.mode == "system" else self.mode
        self.scheme = scheme
        self._app.setPalette(palette(scheme))
        self._app.setStyleSheet(style_sheet(scheme))
        self.changed.emit(scheme)

    def accents(self) -> dict:
        return ACCENTS[self.scheme]

    def _on_system_changed(self, *_):
        if self.mode == "system":
            self.apply()


def current_accents() -> dict:
    """Accent colours for the palette now applied (judged by its window colour)."""
    window = QApplication.palette().color(QPalette.ColorRole.Window)
    return ACCENTS["dark" if window.lightness() < 128 else "light"]
