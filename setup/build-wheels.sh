#!/usr/bin/env bash
# Build the wheels of the core (stateless-odoo), of every installable addon
# (odoo-addon-<name>, from setup/<name>) and of the meta package.
# Usage: setup/build-wheels.sh [OUTDIR]   (default: dist/)
# Run it with the pip of any scratch venv; build backends come from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
pip=(python -m pip wheel --no-deps --quiet --wheel-dir "$out")

"${pip[@]}" .
for link in setup/*/; do
    name=$(basename "$link")
    [ "$name" = _metapackage ] && continue
    installable=$(python -c 'import ast, sys
print(ast.literal_eval(open(sys.argv[1]).read()).get("installable", True))' "$link/__manifest__.py")
    if [ "$installable" != True ]; then
        echo "skip $name: not installable yet"
        continue
    fi
    if [ ! -f "$link/pyproject.toml" ]; then
        echo "error: $name is installable but has no pyproject.toml (run: whool init $name)" >&2
        exit 1
    fi
    grep -q "odoo-addon-$name==" setup/_metapackage/pyproject.toml \
        || echo "warning: $name is not listed in setup/_metapackage/pyproject.toml" >&2
    "${pip[@]}" "$link"
done
"${pip[@]}" setup/_metapackage
rm -rf setup/_metapackage/build setup/_metapackage/*.egg-info
ls -1 "$out"
