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

# ensure_debs PKG... : apt-get install the Debian packages that are missing
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
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}"
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
