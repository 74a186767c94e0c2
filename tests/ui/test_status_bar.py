"""The status bar's busy indicator: shown only for work that lasts, errors kept until later work ends."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QStatusBar

from convviz.ui.widgets.status_bar import ERROR_STYLE, StatusFields


@pytest.fixture
def fields(qtbot):
    bar = QStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    status = StatusFields(bar)
    status.busy_delay_ms = 40
    return status


def test_short_work_never_shows_the_spinner(fields):
    fields.set_busy("Computing mosaic…")
    assert fields.busy_bar.isHidden() and fields.busy_text.text() == "Ready"
    fields.set_idle()
    assert not fields._busy_timer.isActive()
    assert fields.busy_bar.isHidden() and fields.busy_text.text() == "Ready"


def test_lasting_work_shows_the_newest_job_then_ready(qtbot, fields):
    fields.set_busy("Opening cat.jpg…")
    fields.set_busy("Computing mosaic…")
    with qtbot.waitSignal(fields._busy_timer.timeout, timeout=2000):
        pass
    assert not fields.busy_bar.isHidden() and fields.busy_text.text() == "Computing mosaic…"
    fields.set_busy("Training…")  # while shown, a newer job's name replaces it at once
    assert fields.busy_text.text() == "Training…"
    fields.set_idle()
    assert fields.busy_bar.isHidden() and fields.busy_text.text() == "Ready"


def test_an_error_stays_until_work_started_after_it_ends(fields):
    fields.set_busy("Opening holiday.jpg…")
    fields.set_error("holiday.jpg: cannot identify image file")
    fields.set_idle()  # the failed job's own end: the message stays
    assert fields.busy_text.text().startswith("holiday.jpg") and fields.busy_text.styleSheet() == ERROR_STYLE
    fields.set_busy("Opening cat.jpg…")
    assert fields.busy_text.text().startswith("holiday.jpg")  # short work does not wipe it
    fields.set_idle()
    assert fields.busy_text.text() == "Ready" and fields.busy_text.styleSheet() == ""
