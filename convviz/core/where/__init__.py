"""Where a network looks: Grad-CAM, dense class maps, sliding windows + NMS (localization, detection,
segmentation), top patches per channel, before/after fine-tuning, effective receptive fields.

Each module holds plain functions (checked against torch in tests) and the :mod:`convviz.core.tasks`
tasks the GUI session and the CLI run them through.
"""
