"""Fine-tuning on the user's own image folders (no Qt): scan → augment → heads/freeze → train → evaluate → save.

The GUI and the CLI call the same functions::

    scan = scan_folder(folder)                          # ScanResult (classes, samples, skipped + reasons)
    for p in fine_tune(loaded, scan, TrainConfig(), should_stop=flag.is_set):
        ...                                             # TrainProgress; the last one has .result
    p.result.save(path)                                 # atomic convviz checkpoint; load_model(path) reloads it
"""
from .augment import AugmentSpec, ShiftDemo, augmented_input, build_transform, preview_grid, shift_by_one_pixel_demo
from .checkpoint import atomic_write, check_writable, checkpoint_dict, save_checkpoint
from .evaluate import Evaluation, Misclassified, evaluate_logits
from .features import FeatureBackbone, cache_dir, graph_path, load_graph, prepare_graph
from .heads import FreezeReport, apply_freeze, backbone_blocks, head_name, replace_head, set_train_mode
from .scan import Sample, ScanResult, Skipped, scan_folder
from .train import FineTuneResult, TrainConfig, TrainProgress, arch_of, fine_tune

__all__ = [
    "AugmentSpec", "ShiftDemo", "augmented_input", "build_transform", "preview_grid", "shift_by_one_pixel_demo",
    "atomic_write", "check_writable", "checkpoint_dict", "save_checkpoint",
    "Evaluation", "Misclassified", "evaluate_logits",
    "FeatureBackbone", "cache_dir", "graph_path", "load_graph", "prepare_graph",
    "FreezeReport", "apply_freeze", "backbone_blocks", "head_name", "replace_head", "set_train_mode",
    "Sample", "ScanResult", "Skipped", "scan_folder",
    "FineTuneResult", "TrainConfig", "TrainProgress", "arch_of", "fine_tune",
]
