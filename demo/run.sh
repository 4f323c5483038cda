#!/usr/bin/env bash
# Builds a demo beets library from the bundled clips, imports it with the mcbr plugin,
# and shows the tags, `beet similar` and the analysis timing. Run through `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
DEMO="$PWD/.demo"
rm -rf "$DEMO"
mkdir -p "$DEMO/config" "$DEMO/music"
export BEETSDIR="$DEMO/config"
cat > "$BEETSDIR/config.yaml" <<YAML
directory: $DEMO/music
library: $DEMO/library.db
plugins: mcbr
import:
  copy: yes
  write: yes
  quiet: yes
  duplicate_action: keep
  log: $DEMO/import.log
mcbr:
  auto: yes
YAML

echo "== beet import -A -s demo/audio  (as-is singletons: no network lookups)"
start=$(date +%s.%N)
"$BIN/beet" import -A -s demo/audio
end=$(date +%s.%N)
n=$("$BIN/beet" ls | wc -l)
python3 - "$start" "$end" "$n" <<'PY'
import sys
start, end, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"imported {n} tracks in {end - start:.1f} s including beets and model start-up ({(end - start) / n:.2f} s per track)")
PY

echo
echo "== tags written into the files (re-read from disk with mediafile)"
"$BIN/python" - "$DEMO/music" <<'PY'
import sys
from pathlib import Path
import mediafile
from beetsplug.mcbr import fields
if "mood" not in mediafile.MediaFile.fields():
    mediafile.MediaFile.add_field("mood", fields.mood_media_field())
for p in sorted(Path(sys.argv[1]).rglob("*.*")):
    mf = mediafile.MediaFile(str(p))
    print(f"{p.name[:42]:<42}  genres: {', '.join(mf.genres or []) or '-':<32} mood: {mf.mood or '-'}")
PY

echo
echo "== beet ls -f '\$title | arousal \$mcbr_arousal | valence \$mcbr_valence' 'mcbr_arousal:0.6..'  (energetic; typed, queryable)"
"$BIN/beet" ls -f '$title | arousal $mcbr_arousal | valence $mcbr_valence' 'mcbr_arousal:0.6..' || true
echo
echo "== beet ls -f '\$title | \$mcbr_genre_jazz' 'mcbr_genre_jazz:0.3..'  (every label's score is an attribute too)"
"$BIN/beet" ls -f '$title | jazz $mcbr_genre_jazz' 'mcbr_genre_jazz:0.3..' || true

echo
echo "== beet similar -n 5 title:Temple"
"$BIN/beet" similar -n 5 "title:Temple"
echo
echo "== beet similar -n 5 'artist:Muldjord'"
"$BIN/beet" similar -n 5 "artist:Muldjord"
echo
echo "== beet similar --artist -n 3 'artist:Arvid Picciani'"
"$BIN/beet" similar --artist -n 3 "artist:Arvid Picciani"

echo
echo "== beet mcbr-playlist radio title:Temple -n 5 -o .demo/radio.m3u"
"$BIN/beet" mcbr-playlist radio "title:Temple" -n 5 -o "$DEMO/radio.m3u"
cat "$DEMO/radio.m3u"
echo
echo "== beet mcbr-playlist path 'title:Mutilated Mime' to 'title:Lucid Dream' -n 4 -p"
"$BIN/beet" mcbr-playlist path "title:Mutilated Mime" to "title:Lucid Dream" -n 4 -p
echo
echo "== beet mcbr-playlist cluster --clusters 3 -p"
"$BIN/beet" mcbr-playlist cluster --clusters 3 -p

echo
echo "== analysis timing (bench/analyze.py demo/audio --workers 2)"
"$BIN/python" bench/analyze.py demo/audio --workers 2
