"""Fine-tune speed: feature extraction vs a raw forward, head epochs, and `convviz finetune DIR` vs a plain baseline.

    python tests/bench/bench_finetune.py [DATA_DIR] [--runs 3]

Prints one JSON line per figure. The baseline is a fresh process that loads the same backbone,
extracts features through a worker-less DataLoader at batch 32 with the default preprocessing,
and trains a linear head with Adam for 100 epochs. It and the default `convviz finetune DIR`
run back to back, alternating, so both see the same machine load; medians are reported.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout, not the installed one
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "clothing-longsleeve-outwear")

BASELINE = r'''
import json, sys, time
t0 = float(sys.argv[2])
import torch, torchvision
from convviz.core.images import load_image
from convviz.core.models import load_model
from convviz.core.finetune.scan import scan_folder
loaded = load_model("default")
model, pp = loaded.module.eval(), loaded.preprocess
model.reset_classifier(0)
scan = scan_folder(sys.argv[1])
class DS(torch.utils.data.Dataset):
    def __init__(self, s): self.s = s
    def __len__(self): return len(self.s)
    def __getitem__(self, i): return torch.from_numpy(pp.to_array(load_image(self.s[i].path).rgb)), self.s[i].label
def feats(samples):
    xs, ys = [], []
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(DS(samples), batch_size=32, num_workers=0):
            xs.append(model(x)); ys.append(y)
    return torch.cat(xs), torch.cat(ys)
xtr, ytr = feats(scan.train); xva, yva = feats(scan.val)
torch.manual_seed(0)
head = torch.nn.Linear(xtr.shape[1], len(scan.classes))
opt = torch.optim.Adam(head.parameters(), lr=1e-3)
for epoch in range(100):
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), 32):
        idx = perm[i:i + 32]
        loss = torch.nn.functional.cross_entropy(head(xtr[idx]), ytr[idx])
        opt.zero_grad(); loss.backward(); opt.step()
acc = float((head(xva).argmax(1) == yva).float().mean())
print(json.dumps({"val_accuracy": acc, "seconds": time.time() - t0}))
'''


def run_baseline(data: str) -> dict:
    started = time.time()
    out = subprocess.run([sys.executable, "-c", BASELINE, data, repr(started)], cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["seconds"] = time.time() - started
    return result


def run_ours(data: str, out_path: str, *extra: str) -> dict:
    started = time.time()
    out = subprocess.run([sys.executable, "-m", "convviz.cli", "finetune", data, "--json", "--out", out_path, *extra],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"convviz finetune failed: {out.stderr.strip().splitlines()[-1]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"val_accuracy": result["val_accuracy"], "seconds": time.time() - started}


def emit(**figure) -> None:
    print(json.dumps(figure), flush=True)


def bench_pieces(data: str) -> None:
    import torch

    from convviz.core.finetune.features import FeatureBackbone, ImageDataset, extract_features, normalize
    from convviz.core.finetune.scan import scan_folder
    from convviz.core.finetune import TrainConfig, fine_tune
    from convviz.core.models import load_model

    loaded = load_model("default")
    scan = scan_folder(data)
    samples = scan.train[:128]
    pp = loaded.preprocess
    started = time.perf_counter()
    backbone = FeatureBackbone(loaded.module, pp.input_size, arch="default", graph="auto")
    emit(figure="graph_setup", backbone=backbone.kind, seconds=round(time.perf_counter() - started, 2),
         note="includes one-time preparation when the cache was empty")
    images = torch.stack([ImageDataset(samples, pp)[i][0] for i in range(len(samples))])
    raw = backbone.eager.to(memory_format=torch.contiguous_format)
    x = normalize(images, pp).contiguous()
    with torch.no_grad():
        started = time.perf_counter()
        for i in range(0, len(x), 32):
            raw(x[i:i + 32])
        raw_s = time.perf_counter() - started
    backbone.eager.to(memory_format=torch.channels_last)
    started = time.perf_counter()
    for _ in extract_features(backbone, samples, pp, batch_size=32):
        pass
    ours_s = time.perf_counter() - started
    emit(figure="feature_extraction", images=len(samples), backbone=backbone.kind,
         ours_images_per_s=round(len(samples) / ours_s, 2), ours_includes="decode+resize+forward",
         raw_forward_images_per_s=round(len(samples) / raw_s, 2), raw_includes="eager NCHW forward of pre-decoded batches",
         speedup=round(raw_s / ours_s, 2))
    config = TrainConfig(epochs=100, graph="cached")
    epochs_s = []
    last = None
    for progress in fine_tune(loaded, scan, config):
        if progress.stage == "train":
            epochs_s.append(time.perf_counter())
        last = progress
    per_epoch = (epochs_s[-1] - epochs_s[0]) / (len(epochs_s) - 1)
    emit(figure="head_epoch_on_cached_features", train_images=len(scan.train), ms_per_epoch=round(per_epoch * 1000, 2),
         val_accuracy=last.result.evaluation.accuracy)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-pieces", action="store_true")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        raise SystemExit(f"no data at {args.data}")
    import torch

    torch.set_num_threads(2)
    if not args.skip_pieces:
        bench_pieces(args.data)
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            ours.append(run_ours(args.data, os.path.join(tmp, "ft.pt")))
            base.append(run_baseline(args.data))
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    emit(figure="default_finetune_vs_baseline", data=os.path.basename(os.path.normpath(args.data)), runs=args.runs,
         ours_seconds=[round(r["seconds"], 2) for r in ours], baseline_seconds=[round(r["seconds"], 2) for r in base],
         ours_accuracy=[round(r["val_accuracy"], 4) for r in ours], baseline_accuracy=[round(r["val_accuracy"], 4) for r in base],
         ours_median_s=round(med(ours, "seconds"), 2), baseline_median_s=round(med(base, "seconds"), 2),
         ratio=round(med(ours, "seconds") / med(base, "seconds"), 3))


if __name__ == "__main__":
    main()
