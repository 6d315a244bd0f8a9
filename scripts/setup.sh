#!/usr/bin/env bash
# Install everything artifactfs needs on a Debian machine, then run one job.
#
#   bash scripts/setup.sh demo    # seed the embedded registry with the examples, mount it, show the tree
#   bash scripts/setup.sh test    # the whole test suite (real FUSE mounts, SeaweedFS, nginx)
#   bash scripts/setup.sh bench   # the benchmarks (adds rclone and s3fs for the comparisons)
#
# As root it installs the Debian packages it needs (only those missing); as another user it
# expects them present. Python packages go into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-demo}"
shift || true

# Everything below (apt, pip, git in the tests, every `</dev/null`) trusts /dev/null. A root
# process elsewhere that renamed a file over it leaves a regular file full of old output, which
# then reads back as input; put the device back rather than fail in confusing ways.
if [ "$(id -u)" = 0 ] && [ ! -c /dev/null ]; then
    echo "setup: /dev/null was a regular file; recreating the device" >&2
    rm -f /dev/null && mknod -m 666 /dev/null c 1 3
fi

packages=(fuse3 libfuse3-3 libfuse2 rsync nginx-light ca-certificates graphviz)
# nftables: the slow-link tests drop packets at random in a network namespace (tests/slowlink.py)
[ "$job" = test ] && packages+=(nftables iproute2)
# graphviz: `dot` draws the lineage pictures of `artifactfs ui`; the browser tests of the page
# drive Debian's chromium through its chromedriver (no browser download).
[ "$job" = test ] && packages+=(chromium chromium-driver)
[ "$job" = bench ] && packages+=(rclone s3fs)
python3 -m venv --help >/dev/null 2>&1 || packages+=(python3 python3-venv)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,ui]'
if [ "$job" = test ] && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    # The real PyTorch DataLoader test; this machine kind keeps the CPU wheel of 2.13.0 on disk.
    .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 numpy \
        || echo "setup: torch unavailable; the DataLoader test will be skipped" >&2
fi
if [ "$job" = bench ] && ! .venv/bin/python -c 'import torchvision, PIL' 2>/dev/null; then
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
    *) echo "usage: $0 demo|test|bench [args...]" >&2; exit 2 ;;
esac
