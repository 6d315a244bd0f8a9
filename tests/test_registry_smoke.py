import multiprocessing as mp
import os

from artifactfs.resolver.backends.local import LocalStore
from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
from artifactfs.resolver.names import ArtifactRef
from artifactfs.resolver.registry import Registry


def _manifest(tmp, content: bytes) -> Manifest:
    p = tmp / f"f{os.getpid()}-{hash(content)}"
    p.write_bytes(content)
    e = ManifestEntry("data.bin", md5_b64_of_file(str(p)), len(content), local_path=str(p))
    return Manifest([e])


def _writer(root, tmp, i):
    import pathlib

    reg = Registry(LocalStore(root))
    reg.commit(
        "acme", "proj", "coll", "dataset", _manifest(pathlib.Path(tmp), f"content {i}".encode())
    )


def test_eight_processes_get_distinct_versions(tmp_path):
    root = tmp_path / "reg"
    procs = [
        mp.get_context("spawn").Process(target=_writer, args=(str(root), str(tmp_path), i))
        for i in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    reg = Registry(LocalStore(root))
    assert reg.version_numbers("acme", "proj", "coll") == list(range(8))
    assert reg.aliases("acme", "proj", "coll")["latest"] == 7
    digests = {reg.version("acme", "proj", "coll", n).digest for n in range(8)}
    assert len(digests) == 8


def test_same_digest_is_noop(tmp_path):
    reg = Registry(LocalStore(tmp_path / "reg"))
    a = reg.commit("e", "p", "n", "dataset", _manifest(tmp_path, b"x"))
    b = reg.commit("e", "p", "n", "dataset", _manifest(tmp_path, b"x"), aliases=["best"])
    assert a.version == b.version == 0
    assert reg.resolve(ArtifactRef("n", "e", "p", "best")).version == 0
    rec = reg.resolve(ArtifactRef("", "e", "p", a.digest))
    assert rec.version == 0


def test_remove_alias_never_removes_an_alias_another_writer_just_moved(tmp_path):
    """remove_alias is a compare-and-swap: if `best` moves to v1 between our read and our
    write, our removal of `best` from v0 must fail and leave it on v1."""
    store = LocalStore(tmp_path / "reg")
    reg = Registry(store)
    v0 = reg.commit("e", "p", "n", "dataset", _manifest(tmp_path, b"zero"), aliases=["best"])
    v1 = reg.commit("e", "p", "n", "dataset", _manifest(tmp_path, b"one"))
    other = Registry(LocalStore(tmp_path / "reg"))
    real_swap = store.swap

    def swap_after_a_concurrent_move(key, data, etag):
        if key.endswith("aliases/best.json") and b"null" in data:
            other.set_alias(v1, "best")  # lands between our read and our write
        return real_swap(key, data, etag)

    store.swap = swap_after_a_concurrent_move
    reg.remove_alias(v0, "best")
    assert Registry(LocalStore(tmp_path / "reg")).aliases("e", "p", "n")["best"] == 1
    store.swap = real_swap
    reg.remove_alias(v1, "best")
    assert "best" not in Registry(LocalStore(tmp_path / "reg")).aliases("e", "p", "n")
