#!/usr/bin/env bash
# Install everything artifactfs needs on a Debian machine, then run one job.
#
#   bash scripts/setup.sh demo    # seed the embedded registry with the examples, mount it, show the tree
#   bash scripts/setup.sh test    # the whole test suite (real FUSE mounts, SeaweedFS, nginx)
#   bash scripts/setup.sh bench   # the benchmarks (adds rclone and s3fs for the comparisons)
#   bash scripts/setup.sh test-debian13 [pytest args]   # the suite in a Debian 13 chroot
#                                 # (libfuse 3.17, Python 3.13; scripts/chroot.sh)
#   bash scripts/setup.sh bench-debian13 [args]          # the benchmarks there, and in Debian
#   bash scripts/setup.sh bench-debian-testing [args]    # testing (libfuse 3.18, Python 3.14)
#
# Debian 12 and 13, Ubuntu 24.04 and later: package names are picked by what the release offers.
# ARTIFACTFS_NO_TORCH=1 skips installing torch from PyPI (the tests that need it are skipped);
# ARTIFACTFS_DEBIAN_TORCH=1 takes torch and torchvision from Debian's packages instead (CPU
# builds, for any Python the release ships; the venv then sees the system's site-packages).
#
# As root it installs the Debian packages it needs (only those missing); as another user it
# expects them present. Python packages go into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-demo}"
shift || true
case "$job" in
    test-debian13) exec bash scripts/chroot.sh 13 test "$@" ;;
    bench-debian13) exec bash scripts/chroot.sh 13 bench "$@" ;;
    test-debian-testing) exec bash scripts/chroot.sh testing test "$@" ;;
    bench-debian-testing) exec bash scripts/chroot.sh testing bench "$@" ;;
esac

# Everything below (apt, pip, git in the tests, every `</dev/null`) trusts /dev/null. A root
# process elsewhere that renamed a file over it leaves a regular file full of old output, which
# then reads back as input; put the device back rather than fail in confusing ways.
if [ "$(id -u)" = 0 ] && [ ! -c /dev/null ]; then
    echo "setup: /dev/null was a regular file; recreating the device" >&2
    rm -f /dev/null && mknod -m 666 /dev/null c 1 3
fi

export DEBIAN_FRONTEND=noninteractive
apt_updated=
if [ "$(id -u)" = 0 ] && ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    apt-get update -qq  # a fresh machine has no package lists: apt could not tell the names
    apt_updated=1
fi
# pick NAME...: the first of these package names that is installed, else the first this
# release's apt offers as a real package (a purely virtual name has no candidate). Releases
# renamed libfuse: Debian 12 and Ubuntu 24.04 ship libfuse3-3; Debian 13 libfuse3-4 (3.17,
# soname 4) and libfuse2t64 (64-bit time_t), where `libfuse2` is only a virtual package.
# Output is captured before grep reads it: `apt-cache policy | grep -q` under pipefail fails
# whenever grep exits first and apt-cache dies of SIGPIPE, which made the pick depend on timing.
installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
available() {
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null || true)"
    grep -q 'Candidate: [^(]' <<<"$policy"
}
pick() {
    local p
    for p in "$@"; do
        if installed "$p"; then
            echo "$p"; return
        fi
    done
    for p in "$@"; do
        if available "$p"; then
            echo "$p"; return
        fi
    done
    echo "$1"
}

# gcc, libc6-dev: pip builds the mount's C fast path (fusefs/fastpath.c); without them the
# install still works and the mount answers every request in Python (slower cold reads)
packages=(fuse3 "$(pick libfuse3-4 libfuse3-3)" rsync nginx-light ca-certificates graphviz gcc
    libc6-dev)
# nftables: the slow-link tests drop packets at random in a network namespace (tests/slowlink.py)
[ "$job" = test ] && packages+=(nftables iproute2)
# graphviz: `dot` draws the lineage pictures of `artifactfs ui`; the browser tests of the page
# drive Debian's chromium through its chromedriver (no browser download). libfuse3-dev:
# tests/test_libfuse_abi.py compiles the libfuse headers' layouts to check ours against them.
[ "$job" = test ] && packages+=(chromium chromium-driver libfuse3-dev)
# libfuse2 only for the benchmarks' libfuse2-vs-libfuse3 matrix; the mount itself uses libfuse3
# (each only where the release has it: Debian testing drops rclone at times)
if [ "$job" = bench ]; then
    for p in rclone s3fs "$(pick libfuse2t64 libfuse2)"; do
        if installed "$p" || available "$p"; then packages+=("$p"); else
            echo "setup: $p is not in this release; the benchmarks that compare with it skip" >&2
        fi
    done
fi
# ensurepip, not venv: Debian's python3 has the venv module without python3-venv, and then
# `python3 -m venv` fails for want of ensurepip
python3 -c 'import ensurepip' >/dev/null 2>&1 || packages+=(python3 python3-venv)
venv_args=()
if [ -n "${ARTIFACTFS_DEBIAN_TORCH:-}" ]; then
    for p in python3-torch python3-torchvision python3-pil; do
        if installed "$p" || available "$p"; then packages+=("$p"); fi
    done
    venv_args=(--system-site-packages)
fi

missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    [ -n "$apt_updated" ] || apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv "${venv_args[@]}" .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,ui]'
if [ "$job" = test ] && [ -z "${ARTIFACTFS_NO_TORCH:-}" ] \
    && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    # The real PyTorch DataLoader test; this machine kind keeps the CPU wheel of 2.13.0 on disk.
    .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 numpy \
        || echo "setup: torch unavailable; the DataLoader test will be skipped" >&2
fi
if [ "$job" = test ] && .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    && ! .venv/bin/python -c 'import lightning, transformers, accelerate' 2>/dev/null; then
    # W&B integrations (tests/test_wandb_integrations.py): Lightning, Transformers and the CPU
    # torch 2.13.0 kept on disk for Python 3.11 only (elsewhere pip would fetch a CUDA build).
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[integrations]' \
        || echo "setup: integrations unavailable; their tests will be skipped" >&2
fi
if [ "$job" = bench ] && ! .venv/bin/python -c 'import safetensors' 2>/dev/null; then
    # bench_bigfile: safetensors.numpy.load_file of a ~1 GiB file (no torch needed)
    .venv/bin/python -m pip install -q --disable-pip-version-check safetensors
fi
if [ "$job" = bench ] && [ -z "${ARTIFACTFS_NO_TORCH:-}" ] \
    && ! .venv/bin/python -c 'import torchvision, PIL' 2>/dev/null; then
    # bench_loader: ImageFolder + DataLoader epochs (torchvision needs its matching torch; big)
    .venv/bin/python -m pip install -q --disable-pip-version-check \
        torch==2.14.1 torchvision==0.29.1 pillow
fi

case "$job" in
    demo)  exec .venv/bin/python examples/demo.py "$@" ;;
    test)
        # Static checks first: they take seconds and fail the run the way CI should.
        .venv/bin/ruff check --quiet .
        .venv/bin/ruff format --check --quiet .
        .venv/bin/mypy
        exec .venv/bin/python -m pytest "$@" ;;
    bench) exec .venv/bin/python bench/run.py "$@" ;;
    *) echo "usage: $0 demo|test|bench|test-debian13|bench-debian13|bench-debian-testing [args...]" >&2
       exit 2 ;;
esac
