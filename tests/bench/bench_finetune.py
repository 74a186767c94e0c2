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
from convviz.core.model.loading import load_model
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


def run_ours(data: str, out_path: str, *extra: str, cache: str | None = None) -> dict:
    env = dict(os.environ, **({"CONVVIZ_CACHE_DIR": cache} if cache else {}))
    started = time.time()
    out = subprocess.run([sys.executable, "-m", "convviz.cli", "finetune", data, "--json", "--out", out_path, *extra],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"convviz finetune failed: {out.stderr.strip().splitlines()[-1]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"val_accuracy": result["val_accuracy"], "seconds": time.time() - started}


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def emit(**figure) -> None:
    print(json.dumps({**figure, "load_1_5_15": load()}), flush=True)


def bench_pieces(data: str) -> None:
    import torch

    from convviz.core.finetune import TrainConfig, fine_tune
    from convviz.core.finetune.backend import choose_backend
    from convviz.core.finetune.features import ImageDataset, extract_features, normalize
    from convviz.core.finetune.scan import scan_folder
    from convviz.core.finetune.train import network_of
    from convviz.core.model.loading import load_model

    loaded = load_model("default")
    network = network_of(loaded, TrainConfig())  # the features the default run reads (core.taps), its input
    scan = scan_folder(data)
    samples = scan.train[:128]
    pp = network.preprocess  # the default recipe's input (whole image, 224 px)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CONVVIZ_CACHE_DIR"] = cache
        try:
            started = time.perf_counter()
            choose_backend(network, graph="auto").open()
            cold = time.perf_counter() - started
            started = time.perf_counter()
            backbone = choose_backend(network, graph="auto")
            backbone.open()
            warm = time.perf_counter() - started
        finally:
            del os.environ["CONVVIZ_CACHE_DIR"]
    emit(figure="graph_setup", backbone=backbone.kind, input_size=pp.input_size, cold_cache_s=round(cold, 2),
         warm_cache_s=round(warm, 2), note="cold: empty cache dir (the bundled model fills its shipped graph: no export); warm: the same again")
    images = torch.stack([ImageDataset(samples, pp)[i][0] for i in range(len(samples))])
    x = normalize(images, pp).contiguous()
    raw = network.headless().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        raw(x[:32])
        started = time.perf_counter()
        for i in range(0, len(x), 32):
            raw(x[i:i + 32])
        raw_s = time.perf_counter() - started
    backbone(x[:32])
    started = time.perf_counter()
    for i in range(0, len(x), 32):
        backbone(x[i:i + 32])
    graph_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in extract_features(backbone, samples, pp, batch_size=32, workers=0, cache=False):
        pass
    ours_s = time.perf_counter() - started
    emit(figure="feature_extraction", images=len(samples), input_size=pp.input_size, backbone=backbone.kind,
         ours_images_per_s=round(len(samples) / ours_s, 2), ours_includes="decode+resize+forward",
         graph_forward_ms_per_image=round(graph_s / len(samples) * 1000, 2),
         raw_forward_ms_per_image=round(raw_s / len(samples) * 1000, 2), raw_includes="eager NCHW forward of pre-decoded batches",
         forward_speedup=round(raw_s / graph_s, 2))
    for head in ("lbfgs", "adamw"):
        stamps, last = [], None
        for progress in fine_tune(loaded, scan, TrainConfig(graph="eager" if backbone.kind == "eager" else "auto", head=head)):
            if progress.stage == "train":
                stamps.append(time.perf_counter())
            last = progress
        emit(figure="head_fit_on_cached_features", head=head, train_samples_with_mirrors=2 * len(scan.train),
             seconds=round(time.perf_counter() - stamps[0], 3), val_accuracy=last.result.evaluation.accuracy,
             note="includes choosing L2 by 5-fold CV on train (and importing scipy.optimize)" if head == "lbfgs"
             else "100 epochs of mini-batch AdamW (the first optimizer also imports torch._dynamo)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-pieces", action="store_true")
    parser.add_argument("--ours-args", default="", help="extra `convviz finetune` options for ours, e.g. --ours-args=--no-mirror")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        raise SystemExit(f"no data at {args.data}")
    import torch

    torch.set_num_threads(2)
    if not args.skip_pieces:
        bench_pieces(args.data)
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        extra = args.ours_args.split()
        first = run_ours(args.data, os.path.join(tmp, "ft.pt"), *extra, cache=cache)
        for _ in range(args.runs):
            ours.append(run_ours(args.data, os.path.join(tmp, "ft.pt"), *extra, cache=cache))
            base.append(run_baseline(args.data))
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    emit(figure="first_run", data=os.path.basename(os.path.normpath(args.data)), seconds=round(first["seconds"], 2),
         accuracy=round(first["val_accuracy"], 4), ratio=round(first["seconds"] / med(base, "seconds"), 3),
         note="empty cache dir (no prepared graph, no cached features) vs the baseline's median; the runs below reuse "
              "that cache: features of images already seen are read, not computed")
    emit(figure="warm_finetune_vs_baseline", data=os.path.basename(os.path.normpath(args.data)), runs=args.runs, ours_args=args.ours_args,
         ours_seconds=[round(r["seconds"], 2) for r in ours], baseline_seconds=[round(r["seconds"], 2) for r in base],
         ours_accuracy=[round(r["val_accuracy"], 4) for r in ours], baseline_accuracy=[round(r["val_accuracy"], 4) for r in base],
         ours_median_s=round(med(ours, "seconds"), 2), baseline_median_s=round(med(base, "seconds"), 2),
         ratio=round(med(ours, "seconds") / med(base, "seconds"), 3))


if __name__ == "__main__":
    main()
