#!/usr/bin/env bash
# The README's set-up, the test suite or the benchmarks on another Debian release, in a chroot
# built from Debian's packages with debootstrap and reused on later runs.
#
#   bash scripts/setup.sh test-debian13 [pytest args]     # Debian 13 (trixie: libfuse 3.17,
#                                                         # Python 3.13); default -q -ra
#   bash scripts/setup.sh bench-debian13 [bench args]     # bench/run.py there
#   bash scripts/setup.sh bench-debian-testing [bench args]
#                                 # Debian testing (libfuse 3.18, Python 3.14): the figures a
#                                 # Python >= 3.14 gives (its open() sends no isatty ioctl)
#
# Test: runs, inside the chroot and unchanged, the README's two commands: `setup.sh demo
# --unmount`, then `setup.sh test [pytest args]` (torch is left out: on Python >= 3.13 pip would
# fetch a 5 GB CUDA build; the tests that need it are skipped there). Exits with the suite's
# status. Bench: `setup.sh bench [args]`, with torch and torchvision from Debian's own packages
# (python3-torch, a CPU build) where the release has them, for bench_loader.
#
# Needs root. Everything is mounted in a private mount namespace (unshare), so nothing it binds
# or the tests mount shows up outside it, and the namespace takes them down when it ends; the
# EXIT trap unmounts them explicitly first, and stops whatever still runs in the chroot.
#
#   ARTIFACTFS_CHROOT_DIR      where the chroots live (/var/cache/artifactfs-ci): debian13/,
#                              debian-testing/
#   ARTIFACTFS_DEBIAN_MIRROR   Debian mirror for debootstrap (http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
release=${1:?usage: chroot.sh 13|testing test|bench [args...]}
job=${2:?usage: chroot.sh 13|testing test|bench [args...]}
shift 2
case "$release" in
    13) suite=trixie; name=debian13 ;;
    testing) suite=testing; name=debian-testing ;;
    *) echo "chroot.sh: unknown release $release (13 or testing)" >&2; exit 2 ;;
esac
case "$job" in test|bench) ;; *) echo "chroot.sh: unknown job $job (test or bench)" >&2; exit 2 ;; esac
root=${ARTIFACTFS_CHROOT_DIR:-/var/cache/artifactfs-ci}/$name
mirror=${ARTIFACTFS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "$job-$name: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "needs root (debootstrap, chroot, mounts)"
    exit 1
fi
if [ -z "${_ARTIFACTFS_IN_NAMESPACE:-}" ]; then
    exec env _ARTIFACTFS_IN_NAMESPACE=1 unshare --mount --propagation private \
        bash "$0" "$release" "$job" "$@"
fi
# The new namespace starts with a copy of every mount outside it, FUSE mounts included: a copy
# held here keeps the original's unmount waiting until this run ends. Drop them (lazily, only
# here: the originals outside are untouched).
awk '$3 ~ /^fuse/ { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$(printf '%b' "$m")" 2>/dev/null || true
done

# -- the chroot: built once (a fresh, minimal Debian with git, as a contributor's machine) -----
if [ ! -e "$root/.artifactfs-chroot" ]; then
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            debootstrap >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends debootstrap >/dev/null; }
    fi
    partial="$root.partial"
    rm -rf --one-file-system "$partial"
    mkdir -p "$(dirname "$root")"
    say "building a Debian $release chroot in $root (debootstrap, a few minutes)"
    debootstrap --variant=minbase --include=ca-certificates,git "$suite" "$partial" "$mirror" \
        >"$partial.log" 2>&1 || { tail -20 "$partial.log" >&2; exit 1; }
    # A mirror's snapshot of testing outlives its Release file's Valid-Until (seen here: 30
    # days past): apt would then refuse every later update of the chroot.
    echo 'Acquire::Check-Valid-Until "false";' >"$partial/etc/apt/apt.conf.d/99artifactfs-ci"
    touch "$partial/.artifactfs-chroot"
    mv "$partial" "$root"
fi

# -- mounts, and the trap that takes them down ---------------------------------------------------
stop_chroot() {
    local status=$? pid mp
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do  # what the suite left running in the chroot
        [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && kill -9 "$pid" 2>/dev/null
    done
    # deepest first: test mounts (FUSE, tmpfs), then what was bound here
    for mp in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || say "could not unmount $mp"
    done
    exit "$status"
}
trap stop_chroot EXIT
trap 'exit 130' INT TERM

mount -t proc proc "$root/proc"
mount --bind /sys "$root/sys"
mount --bind /dev "$root/dev"           # /dev/fuse, /dev/null, ...
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"  # multiprocessing's semaphores
mount -t tmpfs -o mode=755 run "$root/run"

# -- trust what the host trusts (a TLS-inspecting proxy's CA: pip fails without it) -------------
cp /etc/resolv.conf "$root/etc/resolv.conf"
shopt -s nullglob
certs=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
if [ ${#certs[@]} -gt 0 ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp "${certs[@]}" "$root/usr/local/share/ca-certificates/"
fi
chroot "$root" update-ca-certificates >/dev/null
if [ ! -e "$root/.artifactfs-apt-updated" ]; then  # debootstrap's package lists are partial
    chroot "$root" apt-get update -qq && touch "$root/.artifactfs-apt-updated"
fi

# -- the checkout, as a clean clone would have it (its .venv kept between runs) ------------------
# (bench has its own copy: its venv sees Debian's torch, the suite's does not)
checkout=/root/artifactfs
[ "$job" = bench ] && checkout=/root/artifactfs-bench
mkdir -p "$root$checkout"
rsync -a --delete --exclude=/.venv --exclude=/.git --exclude=__pycache__ \
    --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache \
    "$repo/" "$root$checkout/"

args=("$@")
run() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb TMPDIR=/tmp \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 \
        PIP_DISABLE_PIP_VERSION_CHECK=1 ARTIFACTFS_NO_TORCH=1 "$@"
}
setup_env=()  # VAR=value settings for setup.sh inside (the bench's below)
setup() {
    run "${setup_env[@]}" bash -c 'cd "$0" && exec bash scripts/setup.sh "$@"' "$checkout" "$@"
}
versions="fuse3 $(chroot "$root" dpkg-query -W -f='${Version}' fuse3 2>/dev/null || echo '(not yet)'), \
$(chroot "$root" python3 --version 2>/dev/null || echo 'Python not yet installed')"
if [ "$job" = bench ]; then
    say "bash scripts/setup.sh bench ${args[*]} in Debian $release ($versions)"
    setup_env=(ARTIFACTFS_DEBIAN_TORCH=1)  # and BENCH_* settings (bench/*.py) reach the benchmarks
    while IFS= read -r var; do setup_env+=("$var"); done < <(env | grep '^BENCH_' || true)
    setup bench "${args[@]}"
    exit
fi
[ ${#args[@]} -gt 0 ] || args=(-q -ra)
say "README, first command: bash scripts/setup.sh demo (with --unmount)"
setup demo --unmount
say "README, second command, in Debian $release ($versions): bash scripts/setup.sh test ${args[*]}"
setup test "${args[@]}"  # its status is the script's (the trap keeps it); pytest's line is last
