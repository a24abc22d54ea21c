#!/usr/bin/env bash
# Cityscapes (fine): needs an account at https://www.cityscapes-dataset.com (csDownload asks for it).
source "$(dirname "$0")/_common.sh"
cd "$RAW"
for z in leftImg8bit_trainvaltest.zip gtFine_trainvaltest.zip; do
  d=${z%%_*}                                  # leftImg8bit / gtFine
  [ -d "$d" ] || { [ -s "$z" ] || csDownload "$z"; unzip -q -o "$z"; }
done
cd - >/dev/null
"${CTXSEG[@]}" prepare cityscapes --src "$RAW" --dst "$DST" "${EXTRA[@]}"
