"""The Panel base: work held back while a tab is hidden (``when_shown``, ``view_while_shown``)."""
from __future__ import annotations

from PySide6.QtWidgets import QStackedWidget, QWidget

from convviz.ui.panel import Panel
from convviz.workers.session import Session


def test_a_view_while_shown_is_subscribed_only_while_the_tab_is_on_screen(qtbot):
    session = Session()
    stack = QStackedWidget()
    qtbot.addWidget(stack)
    other, panel = QWidget(), Panel()
    stack.addWidget(other)
    stack.addWidget(panel)
    panel.bind(session)
    stack.show()
    panel.view_while_shown("top", "predictions", k=10)
    assert session.subscription("top") is None  # the other tab is on screen
    stack.setCurrentWidget(panel)
    sub = session.subscription("top")
    assert (sub.kind, sub.layer, sub.args) == ("predictions", None, {"k": 10})
    stack.setCurrentWidget(other)
    assert session.subscription("top") is None
    stack.setCurrentWidget(panel)
    assert session.subscription("top").args == {"k": 10}
    assert session.shutdown(5.0)
