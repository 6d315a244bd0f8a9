"""A small registry for the web page's tests (and the README screenshot): two versions of a
dataset with every previewable kind of file, a model trained from it, an evaluation using it.

    acme/mnist/digits:v0, :v1 (latest)   dataset: png, csv, parquet, W&B Table, json, yaml, text
    run train  (job_type train) used digits:v1, logged classifier:v0 (a file + a file:// reference)
    run eval   (job_type eval)  used classifier:v0
    acme/pets/pets:v0 (latest, prod)     an ImageFolder (train/{bird,cat,dog}/*.png), README.md,
                                         a wide Parquet (45 columns), a W&B Table of images,
                                         JSON lines; logged by the run named "pets-import"
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import artifactfs as af
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config


def png_bytes(width: int = 64, height: int = 40) -> bytes:
    """A real RGB PNG (a gradient), written with zlib alone."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 6 % 256, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _dataset_files(root: Path, version: int) -> None:
    (root / "images").mkdir(parents=True)
    (root / "images" / "digit-0.png").write_bytes(png_bytes())
    (root / "images" / "digit-1.png").write_bytes(png_bytes(32, 32))
    rows = ["id,label,pixels"] + [f"{i},{i % 10},{i * 7}" for i in range(120 + version)]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    (root / "config.yaml").write_text(f"classes: 10\nversion: {version}\n")
    (root / "stats.json").write_text(json.dumps({"mean": 0.13, "std": 0.31, "v": version}))
    if version == 0:
        (root / "README.txt").write_text("Handwritten digits, a small sample.\n")
    else:
        (root / "NOTES.md").write_text("# digits\n\nv1 adds one labelled row.\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(200)), "score": [i / 200 for i in range(200)]})
    pq.write_table(table, root / "scores.parquet", row_group_size=64)


def seed(tmp: Path) -> dict[str, str]:
    """Fill the configured registry; returns the run ids by job type."""
    ids: dict[str, str] = {}
    with af.init(project="mnist", job_type="prepare") as run:
        for version in (0, 1):
            root = tmp / f"digits-{version}"
            _dataset_files(root, version)
            art = af.Artifact(
                "digits",
                type="dataset",
                description=f"digits sample, release {version}",
                metadata={"rows": 120 + version, "source": "synthetic"},
            )
            art.add_dir(str(root))
            art.add(
                af.Table(columns=["id", "label"], data=[[i, i % 10] for i in range(7)]), "preds"
            )
            run.log_artifact(art, aliases=["stable"] if version == 0 else None)
        ids["prepare"] = run.id
    with af.init(project="mnist", job_type="train", config={"lr": 0.01, "epochs": 3}) as run:
        run.use_artifact("digits:latest")
        log = getattr(run, "log", None)
        if callable(log):  # run history (issue 11's API); the page shows what exists
            for step in range(20):
                log({"loss": 1.0 / (step + 1), "acc": step / 20})
        model = tmp / "model.bin"
        model.write_bytes(b"\x00weights" * 100)
        art = af.Artifact("classifier", type="model", metadata={"acc": 0.97})
        art.add_file(str(model))
        notes = tmp / "training-notes.txt"
        notes.write_text("trained on digits:v1 for 3 epochs\n")
        art.add_reference(notes.as_uri())  # bytes stay where they are
        run.log_artifact(art, aliases=["best"])
        ids["train"] = run.id
    with af.init(project="mnist", job_type="eval") as run:
        run.use_artifact("classifier:best")
        ids["eval"] = run.id
    ids["pets"] = seed_pets(tmp / "pets")
    return ids


PET_CLASSES = {"bird": 5, "cat": 14, "dog": 12}
PET_README = (
    "# Pets\n\nA tiny **ImageFolder** sample.\n\n| class | images |\n|---|---|\n"
    + "".join(f"| {k} | {n} |\n" for k, n in PET_CLASSES.items())
)


def pet_png(kind: str, i: int) -> bytes:
    """A small picture per class (Pillow): a bird is a triangle, a cat a circle, a dog a box."""
    import io

    from PIL import Image, ImageDraw

    hue = {"bird": (70, 140, 220), "cat": (235, 150, 60), "dog": (140, 100, 70)}[kind]
    img = Image.new("RGB", (160, 120), (245 - i * 3, 240, 230 + i % 20))
    draw = ImageDraw.Draw(img)
    box = (28 + i % 5 * 5, 16 + i % 3 * 6, 130 - i % 4 * 4, 106)
    if kind == "bird":
        draw.polygon(
            [(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=hue
        )
    elif kind == "cat":
        draw.ellipse(box, fill=hue)
    else:
        draw.rectangle(box, fill=hue)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def seed_pets(root: Path) -> str:
    """The ImageFolder dataset of the pets project; returns the run id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for kind, n in PET_CLASSES.items():
        (root / "train" / kind).mkdir(parents=True)
        for i in range(n):
            (root / "train" / kind / f"{kind}-{i:03d}.png").write_bytes(pet_png(kind, i))
    (root / "README.md").write_text(PET_README)
    wide = {"id": list(range(1000)), "label": [("bird", "cat", "dog")[i % 3] for i in range(1000)]}
    for j in range(43):
        wide[f"feature_{j:02d}"] = [
            None if (i + j) % 17 == 0 else (i * (j + 1)) % 101 / 10 for i in range(1000)
        ]
    pq.write_table(pa.table(wide), root / "features.parquet", row_group_size=128)
    cells = [
        [
            {"_type": "image-file", "path": f"train/{kind}/{kind}-{i:03d}.png"},
            kind,
            round(0.5 + i / 40, 3),
        ]
        for kind, n in PET_CLASSES.items()
        for i in range(min(n, 4))
    ]
    (root / "predictions.table.json").write_text(
        json.dumps({"_type": "table", "columns": ["image", "truth", "score"], "data": cells})
    )
    lines = [
        json.dumps({"file": f"train/cat/cat-{i:03d}.png", "ok": i % 3 != 0}) for i in range(14)
    ]
    (root / "index.jsonl").write_text("\n".join(lines) + "\n")
    with af.init(project="pets", name="pets-import", job_type="prepare") as run:
        art = af.Artifact(
            "pets",
            type="dataset",
            description="**Pets**: a tiny *ImageFolder* sample.\n\n- 3 classes\n- see `README.md`",
        )
        art.add_dir(str(root))
        run.log_artifact(art, aliases=["prod"])
        return run.id


@dataclass
class Seeded:
    resolver: Resolver
    runs: dict[str, str]
    base: Path


@contextlib.contextmanager
def seeded_registry(base: Path) -> Iterator[Seeded]:
    """The seed in a fresh embedded registry under `base`, for a whole module of tests: its own
    XDG dirs while seeding (the per-test isolated_home is function-scoped), then a Resolver
    over it that later tests read through whatever their environment says."""
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_CACHE_HOME", "cache"),
            ("XDG_DATA_HOME", "data"),
        ):
            (base / sub).mkdir(parents=True)
            mp.setenv(var, str(base / sub))
        for var in list(os.environ):
            if var.startswith("ARTIFACTFS_"):
                mp.delenv(var)
        mp.setenv("ARTIFACTFS_ENTITY", "acme")
        mp.setenv("ARTIFACTFS_REGISTRY", str(base / "registry"))
        runs = seed(base / "src")
        config = load_config()
    resolver = Resolver.open(config)
    try:
        yield Seeded(resolver, runs, base)
    finally:
        resolver.close()
