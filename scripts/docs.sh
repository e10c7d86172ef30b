#!/usr/bin/env bash
# docs.sh BINARY — rewrites README.md's settings table from `BINARY config`.
set -euo pipefail
bin=${1:-build/ml-gateway}
cd "$(dirname "$0")/.."
table=$("$bin" config)
python3 - "$table" <<'PY'
import re, sys
table = sys.argv[1].rstrip("\n")
text = open("README.md").read()
begin = text.index("<!-- config:begin")
begin = text.index("-->", begin) + 3
end = text.index("<!-- config:end -->")
open("README.md", "w").write(text[:begin] + "\n" + table + "\n" + text[end:])
PY
echo "docs: README.md settings table updated" >&2
