#!/usr/bin/env bash
# Real photos for tests and the demo: Debian's tuxpaint-stamps-default (GPL-2+; fetched at test
# time, never committed). Lays out data/photos/<class>/<file>.png for five classes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=data/photos
[ -f "$OUT/.done" ] && exit 0
tmp=$(mktemp -d)
( cd "$tmp" && apt-get download tuxpaint-stamps-default >/dev/null 2>&1 ) || {
  apt-get update >/dev/null && ( cd "$tmp" && apt-get download tuxpaint-stamps-default >/dev/null )
}
dpkg-deb -x "$tmp"/tuxpaint-stamps-default_*.deb "$tmp/x"
src="$tmp/x/usr/share/tuxpaint/stamps"
rm -rf "$OUT"
declare -A classes=([bird]=animals/birds [mammal]=animals/mammals [fruit]=food/fruit [vegetable]=food/vegetables [flower]=plants/flowers)
for cls in "${!classes[@]}"; do
  mkdir -p "$OUT/$cls"
  # Stamps in sub-folders can share a name: prefix the folder to keep every photo.
  find "$src/${classes[$cls]}" -name '*.png' | sort | while read -r f; do
    rel=${f#"$src/${classes[$cls]}/"}
    cp "$f" "$OUT/$cls/${rel//\//_}"
  done
done
rm -rf "$tmp"
touch "$OUT/.done"
echo "photos: $(find "$OUT" -name '*.png' | wc -l) in $OUT"
