"""Persistent settings (QSettings) and the paths of the bundled sample photos."""
from __future__ import annotations

import os
from importlib.resources import files

from PySide6.QtCore import QSettings

APP_NAME = "convviz"
ORG_ENV = "CONVVIZ_SETTINGS_ORG"
SAMPLE_NAMES = ("cat", "coffee", "astronaut", "rocket")
RESOURCES = "convviz.resources"  # the top-level resources/ folder, installed as a package

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
    """Path of the bundled sample photo ``name`` (``cat``, ``coffee`` …), found through the installed package."""
    try:
        folder = files(RESOURCES)
    except ModuleNotFoundError as exc:  # an editable install made before resources/ became a package
        raise ModuleNotFoundError(f"{RESOURCES} is not installed: reinstall convviz "
                                  "(python -m pip install -e .)") from exc
    return str(folder / "samples" / f"{name}.jpg")
