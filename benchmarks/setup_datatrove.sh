#!/usr/bin/env bash
# Creates benchmarks/.venv-datatrove: datatrove 0.10.1 for bench_vs_datatrove.py, kept apart from
# curate's own environment (their pins differ). Rerunning it reuses the venv. Needs Python >= 3.10.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-datatrove"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# datatrove's filters and MinHash import regex, xxhash (<4, as datatrove's own extra pins) and
# pyarrow (ParquetReader/Writer), tokenizers (imported by datatrove.pipeline.dedup); spacy is its default English word tokenizer (spacy.blank("en"):
# no model download); psutil samples peak RSS.
"$venv/bin/pip" install -q 'datatrove==0.10.1' 'pyarrow==26.0.1' 'regex==2026.11.15' 'xxhash<4' \
  'spacy==3.8.18' 'psutil==7.2.2' 'orjson==3.13.0' 'tokenizers==0.23.3'
"$venv/bin/python" -c "import datatrove, importlib.metadata as m; print('datatrove', m.version('datatrove'), 'in', '$venv')"
