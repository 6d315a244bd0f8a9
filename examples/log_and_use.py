"""Log a small dataset and a small model, use them, download, verify, and print a summary.

Runs on the embedded default registry with no configuration:

    python examples/log_and_use.py

Set ARTIFACTFS_REGISTRY (a directory or s3://bucket/prefix) to use another registry.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import tempfile
from pathlib import Path

import artifactfs as af


def make_dataset(root: Path, rows: int = 200, seed: int = 0) -> Path:
    """A tiny two-class point cloud, split into train/test CSV files."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", rows), ("test", rows // 4)):
        with open(root / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["x", "y", "label"])
            for _ in range(n):
                label = rng.randint(0, 1)
                w.writerow([round(rng.gauss(label * 2, 0.7), 4), round(rng.gauss(0, 1), 4), label])
    return root


def train(train_csv: Path) -> dict[str, float]:
    """'Train' a threshold classifier on x: the midpoint of the two class means."""
    sums, counts = [0.0, 0.0], [0, 0]
    with open(train_csv) as f:
        for row in csv.DictReader(f):
            label = int(row["label"])
            sums[label] += float(row["x"])
            counts[label] += 1
    means = [s / max(c, 1) for s, c in zip(sums, counts, strict=True)]
    return {"threshold": (means[0] + means[1]) / 2}


def accuracy(model: dict[str, float], test_csv: Path) -> float:
    with open(test_csv) as f:
        rows = list(csv.DictReader(f))
    right = sum((float(r["x"]) > model["threshold"]) == (r["label"] == "1") for r in rows)
    return right / len(rows)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="artifactfs-example-"))
    data_dir = make_dataset(work / "points")

    with af.init(project="example", job_type="prepare") as run:
        dataset = af.Artifact("points", type="dataset", metadata={"classes": 2})
        dataset.add_dir(data_dir)
        dataset.add(
            af.Table(columns=["split", "rows"], data=[["train", 200], ["test", 50]]), "splits"
        )
        run.log_artifact(dataset, aliases=["demo"])

    with af.init(project="example", job_type="train") as run:
        ds = run.use_artifact("points:demo", type="dataset")
        ds_dir = Path(ds.download(work / "download" / ds.name))
        ds.verify(ds_dir)
        model_params = train(ds_dir / "train.csv")
        acc = accuracy(model_params, ds_dir / "test.csv")
        model = af.Artifact("threshold-model", type="model", metadata={"accuracy": acc})
        with model.new_file("model.json") as f:
            json.dump(model_params, f)
        run.log_artifact(model, aliases=["candidate"])

    with af.init(project="example", job_type="evaluate") as run:
        m = run.use_artifact("threshold-model:latest", type="model")
        m_dir = Path(m.download(work / "download" / m.name))
        m.verify(m_dir)
        loaded = json.loads((m_dir / "model.json").read_text())
        splits = ds.get("splits")
        m_used = [r.id for r in m.used_by()]

    print(f"dataset  {ds.qualified_name}  {len(ds.manifest)} files, {ds.size} bytes")
    print(f"         aliases {sorted(ds.aliases)}  digest {ds.digest}  splits {splits.data}")
    print(f"model    {m.qualified_name}  threshold {loaded['threshold']:.3f}")
    print(f"         accuracy {m.metadata['accuracy']:.2f}  logged by run {m.logged_by().id}")
    print(f"         used by runs {m_used}")
    print("both downloaded through the cache and verified")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
