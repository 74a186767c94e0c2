"""The session's task keys of the Fine-tune tab's steps (each runs a core task of :mod:`convviz.core.finetune.tasks`)."""

SCAN, PREPARE, FREEZE, PREVIEW, TRAIN, SAVE = (f"finetune.{step}" for step in
                                               ("scan", "prepare", "freeze", "preview", "train", "save"))
