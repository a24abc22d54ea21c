#!/usr/bin/env bash
# ADE20K SceneParsing (ADEChallengeData2016), 150 classes.
source "$(dirname "$0")/_common.sh"
if [ ! -d "$RAW/ADEChallengeData2016" ] && [ ! -d "$RAW/images" ]; then
  fetch http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip
  unzip -q "$RAW/ADEChallengeData2016.zip" -d "$RAW"
fi
"${CTXSEG[@]}" prepare ade20k --src "$RAW" --dst "$DST" "${EXTRA[@]}"
