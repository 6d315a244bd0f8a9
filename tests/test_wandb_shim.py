"""`artifactfs.install_as_wandb()`: `import wandb` gets artifactfs after the call, and only then.

Every check runs in a fresh interpreter (the shim changes sys.meta_path for good). A stand-in
"real" wandb (a package and its dist-info on PYTHONPATH, as pip installs one) shows that
without the call `import wandb` and importlib.metadata find the real one, and that the call
takes over afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import artifactfs
from artifactfs.errors import NotSupportedAttributeError
from artifactfs.sdk.wandb_shim import WANDB_VERSION


def _python(code: str, tmp_path: Path, pythonpath: Path | None = None) -> str:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env["ARTIFACTFS_REGISTRY"] = str(tmp_path / "registry")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def test_import_wandb_and_its_submodules_get_artifactfs(tmp_path: Path) -> None:
    out = _python(
        f"""
        import importlib.metadata, importlib.util, sys
        import artifactfs
        assert importlib.util.find_spec("wandb") is None
        artifactfs.install_as_wandb()
        artifactfs.install_as_wandb()  # twice is once
        assert importlib.metadata.version("wandb") == {WANDB_VERSION!r}
        assert importlib.util.find_spec("wandb") is not None   # transformers' check
        import wandb
        assert wandb.__version__ == {WANDB_VERSION!r}
        assert wandb.Artifact is artifactfs.Artifact and wandb.Api is artifactfs.Api
        from wandb.sdk.lib import RunDisabled                 # Lightning
        from wandb.sdk.lib.config_util import ConfigError     # Transformers
        from wandb.wandb_run import Run
        import wandb.sdk.lib, artifactfs.sdk.lib
        assert wandb.sdk.lib is artifactfs.sdk.lib            # one module, two names
        assert Run is artifactfs.Run
        assert issubclass(artifactfs.ArtifactNotFoundError, wandb.errors.CommError)
        assert issubclass(wandb.errors.CommError, wandb.Error)
        assert issubclass(ConfigError, wandb.Error)
        rid = wandb.util.generate_id()
        assert len(rid) == 8 and rid.isalnum() and rid.islower()
        wandb.termwarn("a warning")
        wandb.require("service")
        assert wandb.run is None
        run = wandb.init(project="p", settings=wandb.Settings(run_name="from-settings"))
        assert wandb.run is run and artifactfs.run is run and run.name == "from-settings"
        assert isinstance(run, (Run, RunDisabled))
        run._label(code="transformers_trainer")
        wandb.config.update({{"lr": 0.1}})
        assert wandb.config["lr"] == 0.1
        wandb.finish()
        assert wandb.run is None
        try:
            import wandb.integration.keras
        except ModuleNotFoundError as e:
            assert "wandb.integration" in str(e) and "MIGRATING_FROM_WANDB" in str(e), e
        else:
            raise AssertionError("unknown W&B module imported")
        assert not hasattr(wandb, "watch") and not hasattr(wandb, "_attach")
        try:
            wandb.Image
        except AttributeError as e:
            assert "wandb.Image" in str(e) and "MIGRATING_FROM_WANDB" in str(e), e
        try:
            wandb.require("report-editing")
        except wandb.errors.UnsupportedError as e:
            assert "report-editing" in str(e)
        else:
            raise AssertionError("unknown requirement accepted")
        print("OK")
        """,
        tmp_path,
    )
    assert out.strip().endswith("OK")


def test_lightning_requirement_cache_sees_the_distribution(tmp_path: Path) -> None:
    pytest.importorskip("lightning_utilities")
    out = _python(
        """
        from lightning_utilities.core.imports import RequirementCache
        assert not RequirementCache("wandb>=0.12.10")
        import artifactfs
        artifactfs.install_as_wandb()
        req = RequirementCache("wandb>=0.12.10")
        assert req, str(req)
        print("OK")
        """,
        tmp_path,
    )
    assert "OK" in out


@pytest.fixture
def real_wandb(tmp_path: Path) -> Path:
    """A stand-in for a pip-installed wandb: its package and its dist-info."""
    site = tmp_path / "site"
    (site / "wandb").mkdir(parents=True)
    (site / "wandb" / "__init__.py").write_text("__version__ = '0.19.1'\nREAL = True\n")
    dist = site / "wandb-0.19.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wandb\nVersion: 0.19.1\n")
    (dist / "top_level.txt").write_text("wandb\n")
    return site


def test_a_real_wandb_stays_itself_without_the_call(tmp_path: Path, real_wandb: Path) -> None:
    out = _python(
        """
        import importlib.metadata
        import artifactfs, artifactfs.sdk.wandb_shim as shim
        import wandb
        assert wandb.REAL and importlib.metadata.version("wandb") == "0.19.1"
        assert not shim.installed()
        try:
            artifactfs.install_as_wandb()   # too late: modules may hold the real one
        except artifactfs.UsageError as e:
            assert "already imported" in str(e)
        else:
            raise AssertionError("install_as_wandb() after import wandb was accepted")
        print("OK")
        """,
        tmp_path,
        real_wandb,
    )
    assert "OK" in out


def test_the_call_takes_over_from_a_real_wandb(tmp_path: Path, real_wandb: Path) -> None:
    out = _python(
        f"""
        import importlib.metadata
        import artifactfs
        artifactfs.install_as_wandb()
        import wandb
        assert not hasattr(wandb, "REAL") and wandb.Artifact is artifactfs.Artifact
        assert importlib.metadata.version("wandb") == {WANDB_VERSION!r}
        print("OK")
        """,
        tmp_path,
        real_wandb,
    )
    assert "OK" in out


def test_old_module_paths_still_import() -> None:
    import artifactfs.fsspec_fs as old_fs  # type: ignore[import-not-found]
    import artifactfs.wandb_run as old_run  # type: ignore[import-not-found]
    from artifactfs.fsspec import filesystem
    from artifactfs.sdk import wandb_run

    assert old_fs is filesystem and old_run is wandb_run
    assert old_fs.ArtifactFileSystem is filesystem.ArtifactFileSystem


def test_unknown_names_raise_naming_the_migration_guide() -> None:
    with pytest.raises(NotSupportedAttributeError, match=r"wandb\.watch .*MIGRATING_FROM_WANDB"):
        artifactfs.watch  # noqa: B018
    with pytest.raises(AttributeError, match=r"wandb\.no_such_thing"):
        artifactfs.no_such_thing  # noqa: B018
    assert artifactfs.util.generate_id(12).isalnum()


def test_cli_takes_wandb_artifact_spellings(tmp_path: Path) -> None:
    env = {**os.environ, "ARTIFACTFS_REGISTRY": str(tmp_path / "reg")}
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "artifactfs", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    put = cli("artifact", "put", str(data), "--name", "proj/ds", "--type", "dataset")
    assert put.returncode == 0, put.stderr
    got = cli("artifact", "get", "proj/ds:latest", "--root", str(tmp_path / "out"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / "a.txt").read_text() == "hello"
    listed = cli("--debug", "artifact", "ls", "acme/proj")
    assert listed.returncode == 0 and "ds" in listed.stdout, listed.stderr
    cache = cli("artifact", "cache", "info")
    assert cache.returncode == 0, cache.stderr
    bad = cli("artifact", "delete", "proj/ds")
    assert bad.returncode == 2 and "put, get, ls, cache" in bad.stderr


@pytest.mark.parametrize(
    "name",
    [
        "save",
        "restore",
        "watch",
        "unwatch",
        "plot",
        "Image",
        "Audio",
        "Video",
        "Html",
        "Histogram",
        "Object3D",
        "Molecule",
        "sweep",
        "agent",
        "alert",
    ],
)
def test_known_unsupported_w_and_b_names_say_why(name: str) -> None:
    with pytest.raises(NotSupportedAttributeError, match=rf"wandb\.{name} \(.+\); see .*MIGRATING"):
        getattr(artifactfs, name)
    assert not hasattr(artifactfs, name)


def test_table_lacks_media_methods_and_says_so() -> None:
    table = artifactfs.Table(columns=["a"])
    for name in ("add_computed_columns", "cast"):
        with pytest.raises(NotSupportedAttributeError, match=rf"Table\.{name}.*MIGRATING"):
            getattr(table, name)
