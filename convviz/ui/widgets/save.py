"""Saving a picture the user asked for: whole or not at all (:func:`convviz.core.atomic.atomic_write`)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice

from convviz.core.atomic import atomic_write
from convviz.core.errors import first_line


def save_png(picture, path: str) -> str:
    """Write ``picture`` (a QPixmap / QImage, or an (H, W, 3) uint8 array) as a PNG at ``path``;
    "" on success, else one line saying why not."""
    if isinstance(picture, np.ndarray):
        from PIL import Image

        data = np.ascontiguousarray(picture)
        write = lambda handle: Image.fromarray(data).save(handle, format="PNG")  # noqa: E731
    else:
        encoded = QByteArray()
        buffer = QBuffer(encoded)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        ok = picture.save(buffer, "PNG")
        buffer.close()
        if not ok:
            return f"could not encode the picture as PNG for {path}"
        data = bytes(encoded.data())
        write = lambda handle: handle.write(data)  # noqa: E731
    try:
        atomic_write(path, write)
    except (OSError, ValueError) as exc:  # WriteError names the path and the reason
        return first_line(exc)
    return ""
