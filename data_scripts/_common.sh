# Shared by the data_scripts: argument check and the ctxseg executable.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: bash $0 RAW_DIR PREPARED_DIR [extra ctxseg prepare options]" >&2; exit 2; fi
RAW=$1; DST=$2; shift 2; EXTRA=("$@")
read -r -a CTXSEG <<< "${CTXSEG:-ctxseg}"     # e.g. CTXSEG="python -m ctxseg.cli"
mkdir -p "$RAW"
fetch() {  # fetch URL into RAW unless the file is there already
  local f="$RAW/$(basename "$1")"
  [ -s "$f" ] || { echo "downloading $1"; curl -fL --retry 3 -o "$f.part" "$1" && mv "$f.part" "$f"; }
}
