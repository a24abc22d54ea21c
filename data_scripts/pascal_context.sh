#!/usr/bin/env bash
# PASCAL-Context (59 classes): VOC2010 images + the authors' 459-class annotations (trainval.tar.gz, labels.txt).
source "$(dirname "$0")/_common.sh"
if [ ! -d "$RAW/VOCdevkit/VOC2010" ] && [ ! -d "$RAW/VOC2010" ]; then
  fetch http://host.robots.ox.ac.uk/pascal/VOC/voc2010/VOCtrainval_03-May-2010.tar
  tar -xf "$RAW/VOCtrainval_03-May-2010.tar" -C "$RAW"
fi
if [ ! -d "$RAW/trainval" ]; then
  fetch https://cs.stanford.edu/~roozbeh/pascal-context/trainval.tar.gz
  tar -xzf "$RAW/trainval.tar.gz" -C "$RAW"
fi
[ -s "$RAW/labels.txt" ] || [ -s "$RAW/trainval/labels.txt" ] || fetch https://cs.stanford.edu/~roozbeh/pascal-context/labels.txt
"${CTXSEG[@]}" prepare pascal_context --src "$RAW" --dst "$DST" "${EXTRA[@]}"
