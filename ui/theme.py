"""Light and dark palettes for the Fusion style, following the system scheme unless overridden."""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleFactory

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


# Fusion draws the frames of text fields, spin boxes and combo boxes in the window colour
# darkened, which on our dark window is the field's own colour: they had no visible edge
# (issue 14). A style sheet gave line edits one, but on a spin or combo box it makes Qt
# drop the native arrows, and it changed every widget's size hints. So the style draws
# the edge itself, over Fusion's frame, keeping the arrows.
_EDGE = {"normal": "#6b7280", "disabled": "#3a3f46"}


class EdgedFusion(QProxyStyle):
    """Fusion, plus a visible edge around fields, spin boxes and combo boxes on a dark palette."""

    def __init__(self):
        super().__init__(QStyleFactory.create("Fusion"))

    def drawPrimitive(self, element, option, painter, widget=None):  # noqa: N802 (Qt's name)
        super().drawPrimitive(element, option, painter, widget)
        if element == QStyle.PrimitiveElement.PE_FrameLineEdit:
            _edge(option, painter)

    def drawComplexControl(self, control, option, painter, widget=None):  # noqa: N802 (Qt's name)
        super().drawComplexControl(control, option, painter, widget)
        if control in (QStyle.ComplexControl.CC_SpinBox, QStyle.ComplexControl.CC_ComboBox) and option.frame:
            _edge(option, painter)


def _edge(option, painter) -> None:
    """A one-pixel rounded edge along the frame: light grey, the highlight while focused."""
    if option.palette.color(QPalette.ColorRole.Window).lightness() >= 128:
        return  # Fusion's own frame shows on a light window
    state = option.state
    if not state & QStyle.StateFlag.State_Enabled:
        color = QColor(_EDGE["disabled"])
    elif state & QStyle.StateFlag.State_HasFocus:
        color = option.palette.color(QPalette.ColorRole.Highlight)
    else:
        color = QColor(_EDGE["normal"])
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(color, 1))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(QRectF(option.rect).adjusted(0.5, 0.5, -0.5, -0.5), 2.5, 2.5)
    painter.restore()


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
        self._edged: bool | None = None  # whether the style now set is EdgedFusion
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
        self._set_style(scheme)
        self._app.setPalette(palette(scheme))
        self.changed.emit(scheme)

    def _set_style(self, scheme: str) -> None:
        """Fusion, which draws the same on every platform and honours our palettes fully; on
        the dark palette EdgedFusion, for the edges Fusion lacks there. Its Python overrides
        are called for every frame drawn (~450 before the window's first rows, ~3 ms), so
        the light palette, where they draw nothing, goes without them (issue 15)."""
        edged = scheme == "dark"
        if edged is self._edged or "Fusion" not in QStyleFactory.keys():
            return
        self._edged = edged
        self._app.setStyle(EdgedFusion() if edged else QStyleFactory.create("Fusion"))

    def accents(self) -> dict:
        return ACCENTS[self.scheme]

    def _on_system_changed(self, *_):
        if self.mode == "system":
            self.apply()


def current_accents() -> dict:
    """Accent colours for the palette now applied (judged by its window colour)."""
    window = QApplication.palette().color(QPalette.ColorRole.Window)
    return ACCENTS["dark" if window.lightness() < 128 else "light"]
