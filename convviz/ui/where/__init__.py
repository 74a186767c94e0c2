"""The "Where it looks" tab: Grad-CAM, detection two ways, coarse segmentation."""
