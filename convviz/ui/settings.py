"""Persistent settings (QSettings) and the paths of the bundled sample photos."""
from __future__ import annotations

import os

from PySide6.QtCore import QSettings

APP_NAME = "convviz"
ORG_ENV = "CONVVIZ_SETTINGS_ORG"
SAMPLE_NAMES = ("cat", "coffee", "astronaut", "rocket")
SAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "resources", "samples")

KEY_IMAGE = "image/last_path"
KEY_MODEL = "model/last_spec"
KEY_GEOMETRY = "window/geometry"
KEY_TAB = "window/tab"


def organization() -> str:
    """Settings organisation: ``$CONVVIZ_SETTINGS_ORG`` (tests) or ``convviz``."""
    return os.environ.get(ORG_ENV) or APP_NAME


def app_settings() -> QSettings:
    """The settings store of the app (per user; tests get their own organisation)."""
    return QSettings(organization(), APP_NAME)


def sample_path(name: str) -> str:
    """Path of the bundled sample photo ``name`` (``cat``, ``coffee`` …)."""
    return os.path.join(SAMPLES_DIR, f"{name}.jpg")
