#!/usr/bin/env bash
# Install Odoo 18 from source into a virtual environment of the checkout, as
# docs/development.md (4.3) says: Debian's build dependencies, setuptools below 81,
# zope.interface below 8, Odoo's requirements, then Odoo's tree in editable (compat) mode.
#
#   scripts/install_odoo.sh SOURCE
#
# SOURCE is a directory holding Odoo 18's source (setup.py, odoo/release.py) or a git URL,
# cloned shallow (branch ODOO_BRANCH, default 18.0) into src/ beside the venv. The venv is
# ${STATELESS_ODOO_VENV:-.odoo/venv}; a second run with the same source and requirements
# does nothing. Prints the venv's python on its last line.
# Exit status: 0, 1 on an error, 3 when a Debian package is missing and cannot be installed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
HARNESS=install_odoo.sh
venv=${STATELESS_ODOO_VENV:-$ROOT/.odoo/venv}
STATE=$(dirname "$venv")  # the clone, the constraints and apt's log go beside the venv
ENV_FILE=/dev/null
# shellcheck source=scripts/harness.sh
source "$HERE/harness.sh"
die_packages() { echo "install_odoo.sh: $*" >&2; exit 3; }

source=${1:-}
[[ -n $source ]] || die "usage: scripts/install_odoo.sh SOURCE (a directory or a git URL)"
mkdir -p "$STATE"

if [[ ! -d $source ]]; then
    src=$STATE/src
    branch=${ODOO_BRANCH:-18.0}
    if [[ ! -f $src/odoo/release.py || $(cat "$STATE/src.origin" 2>/dev/null) != "$source $branch" ]]; then
        log "cloning $source (branch $branch, shallow) into $src"
        rm -rf "$src"
        git clone --quiet --depth 1 --branch "$branch" "$source" "$src" \
            || die "git clone of $source failed: give a directory or a reachable URL in ODOO_SOURCE"
        echo "$source $branch" >"$STATE/src.origin"
    fi
    source=$src
fi
source=$(cd "$source" && pwd)
[[ -f $source/setup.py && -f $source/odoo/release.py && -f $source/requirements.txt ]] \
    || die "$source does not hold Odoo's source (setup.py, odoo/release.py, requirements.txt)"
major=$(sed -n 's/^version_info = (\([0-9]*\),.*/\1/p' "$source/odoo/release.py")
[[ $major == 18 ]] || die "$source is Odoo ${major:-?}, not 18"

stamp=$venv/.stateless-stamp
want="$source $(sha1sum <"$source/requirements.txt" | cut -c1-40)"
if [[ -x $venv/bin/python && $(cat "$stamp" 2>/dev/null) == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

need=()
for header in ldap.h sasl/sasl.h libpq-fe.h; do
    [[ -e /usr/include/$header || -e /usr/include/postgresql/$header ]] || case $header in
        ldap.h) need+=(libldap2-dev) ;;
        sasl/sasl.h) need+=(libsasl2-dev) ;;
        libpq-fe.h) need+=(libpq-dev) ;;
    esac
done
((${#need[@]} == 0)) || apt_install die_packages "${need[@]}"

log "installing Odoo from $source into $venv (a few minutes the first time)"
python=${PYTHON:-python3}
[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
constraints=$STATE/constraints.txt
printf 'setuptools<81\nzope.interface<8\n' >"$constraints"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
export PIP_CONSTRAINT=$constraints PIP_BUILD_CONSTRAINT=$constraints
"${pip[@]}" install 'setuptools>=75,<81' wheel
"${pip[@]}" install -r "$source/requirements.txt"
"${pip[@]}" install --use-pep517 --config-settings editable_mode=compat -e "$source"
"$venv/bin/python" -c 'import odoo.release as r; assert r.version_info[0] == 18, r.version' \
    || die "the venv cannot import Odoo 18"
echo "$want" >"$stamp"
echo "$venv/bin/python"
