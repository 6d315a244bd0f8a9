"""The mount's libfuse declarations against the libfuse it loads (fusefs/libfuse_abi.py).

Ground truth is the installed headers (libfuse3-dev, matching the loaded library): a C program
compiled here prints sizeof/offsetof of every structure the mount declares or relies on from
mfusepy, and each declared function is assigned to a pointer of the declared type with -Werror.
A mismatch fails by name (`struct fuse_buf: size 40, header 48`), before a user sees a crash.
Then the behaviour that rests on them: reads spanning cache blocks, write-back without a
GETXATTR per write, libfuse3 whatever else is installed, and the fail-safe mode an unknown
libfuse gets.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mountutil import commit_files, mounted, open_registry

from artifactfs.fusefs import libfuse_abi
from artifactfs.fusefs.libfuse_abi import (
    FUNCTIONS,
    CustomIo,
    FileInfo317,
    InitOutHead,
    Iovec,
    bufvec_type,
    ctype_of,
)
from artifactfs.fusefs.mountpoint import library_package

pytestmark = pytest.mark.fuse

ABI = libfuse_abi.current()
import mfusepy  # noqa: E402  (after current(): the libfuse3 the mount loads)

INCLUDE = Path("/usr/include/fuse3")
_PADDING = ("padding", "reserved")

# What the mount relies on in mfusepy's declarations: (struct, mfusepy type, fields, sized).
# `sized`: Python allocates it, so its size must be libfuse's too; None: every field.
_CONN = ["proto_major", "max_readahead", "capable", "want", "max_background", "time_gran"]
if ABI.version[:2] >= (3, 17):
    _CONN += ["capable_ext", "want_ext"]
MFUSEPY: list[tuple[str, Any, list[str] | None, bool]] = [
    ("struct fuse_conn_info", mfusepy.fuse_conn_info, _CONN, True),
    (
        "struct fuse_file_info",
        mfusepy.fuse_file_info,
        ["flags", "fh", "lock_owner", "writepage", "direct_io", "keep_cache"],
        False,
    ),
    (
        "struct fuse_config",
        mfusepy.fuse_config,
        ["entry_timeout", "negative_timeout", "attr_timeout", "use_ino", "hard_remove"],
        False,
    ),
    ("struct fuse_context", mfusepy.fuse_context, None, False),
    ("struct fuse_operations", mfusepy.fuse_operations, None, False),  # every callback's slot
]


def _declared() -> dict[str, tuple[str, Any, list[str] | None, bool]]:
    """id -> (C struct, ctypes type, fields, sized) for the loaded version."""
    out: dict[str, tuple[str, Any, list[str] | None, bool]] = {}
    if ABI.buf_type is not None:
        out["fuse_buf"] = ("struct fuse_buf", ABI.buf_type, None, True)
        out["fuse_bufvec"] = ("struct fuse_bufvec", bufvec_type(ABI.buf_type, 1), None, True)
    if ABI.init_patch:
        out["fuse_custom_io"] = ("struct fuse_custom_io", CustomIo, None, True)
    if ABI.version[:2] >= (3, 17):
        out["fuse_file_info_317"] = ("struct fuse_file_info", FileInfo317, None, True)
    out["iovec"] = ("struct iovec", Iovec, None, True)
    out["fuse_init_out"] = ("struct fuse_init_out", InitOutHead, None, False)
    for c_name, kind, fields, sized in MFUSEPY:
        out["mfusepy " + c_name.split()[-1]] = (c_name, kind, fields, sized)
    return out


DECLARED = _declared()


def _fields(kind: Any, wanted: list[str] | None) -> list[tuple[str, bool]]:
    """(name, is_bitfield) of the fields to compare; padding has no name in common."""
    out = []
    for spec in kind._fields_:
        name = spec[0]
        if (wanted is None and not name.startswith(_PADDING)) or (wanted and name in wanted):
            out.append((name, len(spec) == 3))
    return out


def _compile_run(tmp: Path, body: str) -> str:
    if not (INCLUDE / "fuse_lowlevel.h").exists() or shutil.which("gcc") is None:
        pytest.fail("libfuse3-dev and gcc are needed (bash scripts/setup.sh test installs them)")
    use = ABI.version[0] * 100 + ABI.version[1]
    src = tmp / "abi.c"
    src.write_text(
        f"#define FUSE_USE_VERSION {use}\n#define _GNU_SOURCE\n"
        "#include <fuse.h>\n#include <fuse_lowlevel.h>\n#include <linux/fuse.h>\n"
        "#include <stdbool.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <string.h>\n#include <sys/uio.h>\n"
        "__attribute__((unused)) static void bit(const char *n, const void *p, size_t len) {\n"
        "  const unsigned char *b = p; for (size_t i = 0; i < len; i++) if (b[i])\n"
        '    printf("bit %s %zu %u\\n", n, i, b[i]); }\n'
        f"int main(void) {{\n{body}\nreturn 0; }}\n"
    )
    exe = tmp / "abi"
    cc = subprocess.run(
        ["gcc", "-Wall", "-Werror", f"-I{INCLUDE}", str(src), "-o", str(exe), "-lfuse3"],
        capture_output=True,
        text=True,
    )
    assert cc.returncode == 0, cc.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def header_facts(tmp_path_factory) -> dict[str, int]:
    """`size <id>`, `offset <id> <field>`, `fsize <id> <field>` (its size), `bit <id>.<field>
    <byte> <value>` (the bytes one set bit touches), from the headers."""
    lines = [
        'printf("version %d\\n", FUSE_VERSION);',
        *(f'printf("scalar {c} %zu\\n", sizeof({c}));' for c in _scalars()),
    ]
    for key, (c_name, kind, wanted, _sized) in DECLARED.items():
        lines.append(f'printf("size {key} %zu\\n", sizeof({c_name}));')
        for name, is_bit in _fields(kind, wanted):
            if is_bit:
                lines.append(
                    f"{{ {c_name} s; memset(&s, 0, sizeof s); s.{name} = 1; "
                    f'bit("{key}.{name}", &s, sizeof s); }}'
                )
            else:
                lines.append(f'printf("offset {key} {name} %zu\\n", offsetof({c_name}, {name}));')
                lines.append(
                    f'printf("fsize {key} {name} %zu\\n", sizeof((({c_name} *)0)->{name}));'
                )
    out = _compile_run(tmp_path_factory.mktemp("abi"), "\n".join(lines))
    facts: dict[str, int] = {}
    for line in out.splitlines():
        *key, value = line.split(" ")
        facts[" ".join(key)] = int(value)
    return facts


def _scalars() -> list[str]:
    return sorted(c for c in libfuse_abi.C_SCALARS if c != "void")


def test_the_headers_are_the_loaded_libfuse(header_facts):
    major, minor = divmod(header_facts["version"], 100)
    assert (major, minor) == ABI.version[:2], f"headers of {major}.{minor}, {ABI.describe()}"


@pytest.mark.parametrize("c_type", _scalars())
def test_c_type_maps_to_a_ctypes_type_of_its_size(header_facts, c_type):
    assert ctypes.sizeof(ctype_of(c_type)) == header_facts[f"scalar {c_type}"], c_type


@pytest.mark.parametrize("key", sorted(DECLARED))
def test_structure_layout_matches_the_headers(header_facts, key):
    c_name, kind, wanted, sized = DECLARED[key]
    wrong = []
    if sized and ctypes.sizeof(kind) != header_facts[f"size {key}"]:
        wrong.append(f"size {ctypes.sizeof(kind)}, header {header_facts[f'size {key}']}")
    for name, is_bit in _fields(kind, wanted):
        if is_bit:  # set the bit in Python as the C program did: the same bytes must be set
            s = kind()
            setattr(s, name, 1)
            raw = bytes(s)
            ours = {f"bit {key}.{name} {i}": b for i, b in enumerate(raw) if b}
            theirs = {k: v for k, v in header_facts.items() if k.startswith(f"bit {key}.{name} ")}
            if ours != theirs:
                wrong.append(f"bitfield {name}: bytes {ours}, header {theirs}")
            continue
        ours_at, ours_size = getattr(kind, name).offset, getattr(kind, name).size
        at, size = header_facts[f"offset {key} {name}"], header_facts[f"fsize {key} {name}"]
        if (ours_at, ours_size) != (at, size):
            wrong.append(f"{name}: {ours_size} bytes at {ours_at}, header {size} at {at}")
    assert not wrong, f"{c_name} ({key}, {ABI.describe()}): " + "; ".join(wrong)


DECLARED_FUNCTIONS = [f for f in FUNCTIONS if f.declared_for(ABI.version)]


@pytest.mark.parametrize("fn", DECLARED_FUNCTIONS, ids=lambda f: f.name)
def test_function_signature_matches_the_header(tmp_path, fn):
    args = ", ".join(fn.argtypes) or "void"
    _compile_run(tmp_path, f"{fn.restype} (*p)({args}) = &{fn.name}; (void)p;")
    bound = ABI.function(fn.name)
    assert bound is not None or fn.optional, f"{ABI.describe()} exports no {fn.name}@{fn.node}"
    if bound is not None:
        assert bound.restype is ctype_of(fn.restype)


def test_an_unknown_newer_libfuse_gets_no_fast_path_built_on_a_declared_layout(caplog):
    abi = libfuse_abi.LibfuseAbi(ABI.lib, ABI.path, version=(3, 99, 0))
    assert not abi.known and not abi.buffers and not abi.init_patch
    assert abi.function("fuse_session_custom_io") is None  # 3.17 reused that name
    assert abi.function("fuse_invalidate_path") is not None  # pinned by its symbol version

    class Ops:
        def read_buf(self) -> None: ...

    ops = Ops()
    abi.fit(ops)
    assert ops.read_buf is None and ops.write_buf is None  # type: ignore[attr-defined]
    assert len([r for r in caplog.records if "3.99.0" in r.getMessage()]) == 1


def test_importing_the_mount_loads_libfuse3_even_with_libfuse2_installed():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSE_LIBRARY")}
    code = "import artifactfs.fusefs.operations, mfusepy; print(mfusepy._libfuse_path)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "fuse3" in out.stdout, out.stdout


def test_error_messages_name_the_package_this_release_ships():
    owner = subprocess.run(
        ["dpkg", "-S", os.path.basename(os.path.realpath(_loaded_path()))],
        capture_output=True,
        text=True,
    )
    assert owner.returncode == 0, owner.stderr
    assert owner.stdout.split(":")[0] == library_package("fuse3")


def _loaded_path() -> str:
    """The file the process mapped for libfuse3 (mfusepy names only the soname)."""
    with open("/proc/self/maps") as f:
        return next(line.split()[-1] for line in f if "libfuse3.so" in line)


BIG = {"model/weights.bin": os.urandom(20 << 20 | 12345)}
"""Above the cache's 16 MiB block threshold: read at random it is cached as 4 MiB blocks."""


@pytest.mark.parametrize("version", [None, "3.99.0"], ids=["loaded", "unknown-newer"])
def test_reads_across_cache_blocks_and_draft_writes_give_the_same_bytes(
    tmp_path, monkeypatch, version
):
    """The issue's crash (a read spanning two cache blocks killed the daemon on 3.17: the reply
    is one fuse_buf per block, at struct fuse_buf's stride), and the fail-safe mode: plain
    read/write, the same bytes, one log line saying so."""
    if version:
        monkeypatch.setenv(libfuse_abi.VERSION_ENV, version)
    url = str(tmp_path / "registry")
    commit_files(open_registry(url).registry, tmp_path, "ds", BIG)
    data = BIG["model/weights.bin"]
    with mounted(tmp_path / "mnt", registry=url, extra_args={"write_cache": True}) as m:
        src = m.path / "acme/proj/ds:v0/model/weights.bin"
        fd = os.open(src, os.O_RDONLY)
        try:  # first fetched as blocks, then (page cache dropped) answered from their fds
            for boundary in (4 << 20, 8 << 20, 12 << 20) * 2:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the read asks the mount
                at = boundary - (300 << 10)
                assert os.pread(fd, 600 << 10, at) == data[at : at + (600 << 10)]
        finally:
            os.close(fd)
        assert hashlib.sha256(src.read_bytes()).digest() == hashlib.sha256(data).digest()
        draft = m.path / "acme/proj/ds/copy.bin"
        shutil.copyfile(src, draft)
        assert draft.read_bytes() == data
        upcalls = m.stats()["mount"]["upcalls"]
        log = m.log()
    assert ("read_buf" in upcalls) is (version is None), upcalls
    assert ("write_buf" in upcalls) is (version is None), upcalls
    assert log.count("is not one this mount was checked against") == (1 if version else 0), log
    # the C fast path (fastpath.py) trusts the same layouts: off on an unknown libfuse
    assert ("C fast path off: this libfuse is newer" in log) is bool(version), log
    assert ("C fast path on" in log) is (version is None), log


def test_write_back_costs_no_getxattr_per_write(tmp_path):
    """KILLPRIV_V2 reaches the kernel (INIT patch on 3.14-3.16, capability on >= 3.17): 200
    small writes are page-cache copies, not 200 security.capability lookups."""
    url = str(tmp_path / "registry")
    commit_files(open_registry(url).registry, tmp_path, "ds", {"a.txt": b"a"})
    with mounted(tmp_path / "mnt", registry=url, extra_args={"write_cache": True}) as m:
        fd = os.open(m.path / "acme/proj/ds/small.txt", os.O_WRONLY | os.O_CREAT, 0o644)
        before = m.stats()["mount"]["upcalls"].get("getxattr", 0)
        try:
            for _ in range(200):
                os.write(fd, b"x" * 100)
            after = m.stats()["mount"]["upcalls"].get("getxattr", 0)
        finally:
            os.close(fd)
        assert (m.path / "acme/proj/ds/small.txt").read_bytes() == b"x" * 20000
    assert after - before < 10, f"{after - before} GETXATTR upcalls for 200 writes"
