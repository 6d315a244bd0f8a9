"""The "use this version" box: copyable snippets for the ways people read an artifact.

WHY these four: they are the four front doors of the product (README): the W&B-style Python API
(`use_artifact` inside a run, `download` to a folder), the CLI (`artifactfs get`), the mount (a
plain path, fetched lazily), and fsspec (`artifact://`, what pandas, datasets and pyarrow open).
Every snippet names the immutable `vN`, never an alias, so what a person pastes today reads the
same bytes next month; a file page's snippets name that file.
"""

from __future__ import annotations

from dataclasses import dataclass

from artifactfs.resolver.records import VersionRecord

MOUNT_HINT = "~/artifacts"
"""The mount point the snippets assume (any empty directory works)."""


@dataclass
class Snippet:
    id: str
    title: str
    code: str


def snippets(record: VersionRecord, path: str = "", *, folder: bool = False) -> list[Snippet]:
    """Snippets for version `record`, or for file `path` in it (a folder when `folder`)."""
    full = f"{record.entity}/{record.project}/{record.name}:v{record.version}"
    python = (
        "import artifactfs as wandb  # or: import wandb\n\n"
        f'run = wandb.init(project="{record.project}", job_type="train")\n'
        f'artifact = run.use_artifact("{full}")\n'
    )
    if path and folder:
        python += f'data_dir = artifact.download(path_prefix="{path}/")\n'
        cli = f"artifactfs get {full} {path}"
    elif path:
        python += f'local_file = artifact.get_entry("{path}").download()\n'
        cli = f"artifactfs get {full} {path}"
    else:
        python += "data_dir = artifact.download()\n"
        cli = f"artifactfs get {full} --root ./data"
    mount = f"artifactfs mount {MOUNT_HINT}\nls {MOUNT_HINT}/{full}/{path}"
    if folder or not path:
        fsspec = (
            "import fsspec\n\n"
            'fs = fsspec.filesystem("artifact")\n'
            f'names = fs.ls("artifact://{full}/{path}")\n'
        )
    else:
        fsspec = (
            "import fsspec\n\n"
            f'with fsspec.open("artifact://{full}/{path}", "rb") as f:\n'
            "    data = f.read()\n"
        )
    if path.lower().endswith((".parquet", ".csv")):
        reader = "read_parquet" if path.lower().endswith(".parquet") else "read_csv"
        fsspec = f'import pandas as pd\n\ndf = pd.{reader}("artifact://{full}/{path}")\n'
    return [
        Snippet("python", "Python", python),
        Snippet("cli", "CLI", cli),
        Snippet("mount", "Mount", mount),
        Snippet("fsspec", "fsspec URL", fsspec),
    ]
