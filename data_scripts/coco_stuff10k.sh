#!/usr/bin/env bash
# COCO-Stuff-10k v1.1 (.mat annotations), 171 classes.
source "$(dirname "$0")/_common.sh"
if [ ! -d "$RAW/imageLists" ] && [ ! -d "$RAW/cocostuff-10k-v1.1" ]; then
  fetch http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/cocostuff-10k-v1.1.zip
  unzip -q "$RAW/cocostuff-10k-v1.1.zip" -d "$RAW"
fi
"${CTXSEG[@]}" prepare coco_stuff10k --src "$RAW" --dst "$DST" "${EXTRA[@]}"
