"""Fine-tuning on the user's own image folders (no Qt): scan → augment → heads/freeze → train → evaluate → save.

The GUI and the CLI call the same functions::

    scan = scan_folder(folder)                          # ScanResult (classes, samples, skipped + reasons)
    for p in fine_tune(loaded, scan, TrainConfig(), should_stop=flag.is_set):
        ...                                             # TrainProgress; the last one has .result
    p.result.save(path)                                 # atomic convviz checkpoint; load_model(path) reloads it
"""
import importlib

#: public name → the module that defines it; imported on first use, so ``AugmentSpec`` (torch-free)
#: can be read at GUI start-up without importing torch.
_WHERE = {
    'AugmentSpec': 'augment_spec',
    'ShiftDemo': 'augment',
    'augmented_input': 'augment',
    'build_transform': 'augment',
    'preview_grid': 'augment',
    'shift_by_one_pixel_demo': 'augment',
    'atomic_write': '.atomic',  # a leading dot: a module of convviz.core (the name's one home)
    'check_writable': '.atomic',
    'checkpoint_dict': '.model.files',
    'save_checkpoint': '.model.files',
    'Evaluation': 'evaluate',
    'Misclassified': 'evaluate',
    'evaluate_logits': 'evaluate',
    'FeatureBackend': 'backend',
    'cache_dir': 'backend',
    'choose_backend': 'backend',
    'Network': 'network',
    'FreezeReport': 'heads',
    'apply_freeze': 'heads',
    'backbone_blocks': 'heads',
    'head_name': 'heads',
    'replace_head': 'heads',
    'set_train_mode': 'heads',
    'Sample': 'scan',
    'ScanResult': 'scan',
    'Skipped': 'scan',
    'scan_folder': 'scan',
    'FineTuneResult': 'train_types',
    'TrainConfig': 'train_config',
    'TrainProgress': 'train_types',
    'arch_of': 'train',
    'fine_tune': 'train',
    'fine_tune_network': 'train',
    'network_of': 'train',
    'prepare_backbone': 'train',
    'with_taps': 'train',
    'preprocess_for': 'train_types',
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
