# Shared by scripts/test and scripts/bench: find Pythons, install Debian
# packages that are missing, make virtual environments.

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# find_python 3.11 -> path of a CPython 3.11 (pyenv's, or one on PATH)
find_python() {
    local v=$1 root cand
    root=${PYENV_ROOT:-$HOME/.pyenv}
    for cand in $(ls -d "$root"/versions/"$v".* 2>/dev/null | sort -V -r); do
        [[ $cand == *t ]] && continue            # not a free-threaded build
        if [ -x "$cand/bin/python$v" ]; then echo "$cand/bin/python$v"; return 0; fi
    done
    if command -v "python$v" >/dev/null 2>&1 && "python$v" -c 'import sys' >/dev/null 2>&1; then
        command -v "python$v"; return 0
    fi
    return 1
}

# ensure_debs PKG... : apt-get install the Debian packages that are missing,
# without starting or enabling the services they ship (apt would do both:
# redis-server and prometheus are started by the tests themselves, on
# loopback ports, never as system services)
ensure_debs() {
    local missing=() p sudo=
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || sudo=sudo
    log "installing Debian packages: ${missing[*]}"
    # wait for the dpkg lock rather than fail when another install runs
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    # invoke-rc.d asks policy-rc.d whether it may start a service: 101 is no
    local policy=/usr/sbin/policy-rc.d ours=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# scripts/test (corecache): no service starts while it installs\nexit 101\n' \
            | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        ours=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" || rc=$?
    [ -n "$ours" ] && $sudo rm -f "$policy"
    [ $rc -eq 0 ] || die "apt-get install ${missing[*]} failed"
    disable_units / "${missing[@]}"
}

# disable_units ROOT PKG... : leave every systemd unit that these packages
# ship disabled (apt enables them on install: the *.wants/ and alias
# symlinks under ROOT/etc/systemd/system); ROOT is / or a chroot.  Units
# of other packages are left as they are.
disable_units() {
    local root=${1%/} run=() sudo= units unit left; shift
    [ "$(id -u)" = 0 ] || { sudo=sudo; run=(sudo); }
    [ -n "$root" ] && run+=(chroot "$root")
    units=$("${run[@]}" dpkg-query -L "$@" 2>/dev/null \
            | grep -E '^/(usr/)?lib/systemd/system/[^/@]+\.(service|socket|timer)$' \
            | xargs -r -n1 basename | sort -u) || true
    [ -n "$units" ] || return 0
    # shellcheck disable=SC2086
    if "${run[@]}" sh -c 'command -v systemctl' >/dev/null 2>&1; then
        "${run[@]}" systemctl disable --no-reload --quiet $units >/dev/null 2>&1 || true
    fi
    for unit in $units; do     # no systemctl, or one that refused: the links by hand
        left=$(find "$root/etc/systemd/system" -type l -lname "*/$unit" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -z "$left" ] || $sudo rm -f $left
        left=$(find "$root/etc/systemd/system" -type l -lname "*/$unit" 2>/dev/null)
        [ -z "$left" ] || die "cannot disable $unit: $left"
    done
}

# make_venv DIR PYTHON : create (or reuse) a virtual environment with
# current pip and the build tools
make_venv() {
    local dir=$1 py=$2
    if [ ! -x "$dir/bin/python" ]; then
        "$py" -m venv "$dir"
    fi
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -U pip setuptools wheel "Cython>=3.1"
}

# extra_deps EXTRA : the requirements of an extra, read from pyproject.toml
extra_deps() {
    "${PARSE_PY:-python3}" "$ROOT/scripts/extra_deps.py" "$1"
}

# source_stamp PYTHON : one line that changes whenever what a build of
# corecache with PYTHON depends on changes: the sources and build files (not
# what a build leaves in the tree), the interpreter, and the build switches.
# scripts/bench skips its set-up while the stamp it wrote still matches.
source_stamp() {
    local py=$1
    {
        "$py" -c 'import sys; print(sys.executable, sys.version)'
        echo "CORECACHE_NO_EXTENSIONS=${CORECACHE_NO_EXTENSIONS:-}"
        echo "CORECACHE_DEBUG_BUILD=${CORECACHE_DEBUG_BUILD:-}"
        echo "CORECACHE_SANITIZE=${CORECACHE_SANITIZE:-}"
        find setup.py pyproject.toml MANIFEST.in README.md LICENSE csrc corecache \
             scripts/bench scripts/lib.sh scripts/extra_deps.py -type f \
             ! -path '*/__pycache__/*' ! -name '*.so' ! -name '*.pyd' ! -name '*.py[cod]' \
             -print0 2>/dev/null \
            | LC_ALL=C sort -z \
            | grep -zv -E '^corecache/[^/]*\.c$' \
            | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}
