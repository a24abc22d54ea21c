#!/usr/bin/env bash
# LIP (Look Into Person), 20 classes. Download TrainVal_images.zip and TrainVal_parsing_annotations.zip by hand
# from https://sysu-hcp.net/lip/overview.php (Google Drive / Baidu) into RAW_DIR first.
source "$(dirname "$0")/_common.sh"
for z in TrainVal_images TrainVal_parsing_annotations; do
  [ -d "$RAW/$z" ] || { [ -s "$RAW/$z.zip" ] || { echo "missing $RAW/$z.zip (download it from https://sysu-hcp.net/lip/overview.php)" >&2; exit 2; }
                        unzip -q "$RAW/$z.zip" -d "$RAW"; }
done
"${CTXSEG[@]}" prepare lip --src "$RAW" --dst "$DST" "${EXTRA[@]}"
