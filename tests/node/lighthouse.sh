#!/usr/bin/env bash
# Lighthouse (mobile defaults) on the stem cell landing page and one blog post, against the real app
# served by gunicorn on 127.0.0.1 with a throwaway SQLite database. Prints the four category scores.
#   usage: tests/node/lighthouse.sh [path ...]     (default: /stem-cell-therapy and one post)
# Needs: Debian's chromium at /usr/bin/chromium and the project's .venv; installs Lighthouse (pinned) on first use.
# Lighthouse stays out of package.json: its dependencies ask for "latest" versions, which breaks `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
NODE_DIR=$ROOT/tests/node
LH_DIR=$NODE_DIR/.lighthouse
LIGHTHOUSE=$LH_DIR/node_modules/.bin/lighthouse
[ -x "$LIGHTHOUSE" ] || npm install --prefix "$LH_DIR" --no-save --no-audit --no-fund --loglevel=error lighthouse@12.8.2
export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}
[ -x "$CHROME_PATH" ] || { echo "chromium not found at $CHROME_PATH (apt-get install chromium)" >&2; exit 2; }

PAGES=("$@")
[ ${#PAGES[@]} -gt 0 ] || PAGES=(/stem-cell-therapy /blog/what-happens-during-a-stem-cell-procedure)

WORK=$(mktemp -d)
PORT=$("$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export INSTANCE_PATH=$WORK/instance DATABASE_URL=sqlite:///$WORK/lighthouse.db SITE_URL=http://127.0.0.1:$PORT
export SECRET_KEY=lighthouse-only FLASK_APP=app:create_app LOG_LEVEL=WARNING
"$ROOT/.venv/bin/flask" db upgrade >/dev/null
"$ROOT/.venv/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers 2 --log-level warning 'app:create_app()' &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "$SITE_URL/healthz" >/dev/null && break; sleep 0.2; done

status=0
n=0
for path in "${PAGES[@]}"; do
  n=$((n + 1))
  report=$WORK/$n$(echo "$path" | tr -c 'a-z0-9\n' '-').json
  "$LIGHTHOUSE" "$SITE_URL$path" --quiet \
    --chrome-flags="--headless --no-sandbox --disable-gpu" \
    --only-categories=performance,accessibility,best-practices,seo \
    --output=json --output-path="$report"
  node -e '
    const r = require(process.argv[1]);
    const s = k => Math.round(r.categories[k].score * 100);
    const scores = {performance: s("performance"), accessibility: s("accessibility"),
                    "best-practices": s("best-practices"), seo: s("seo")};
    console.log(process.argv[2].padEnd(50), JSON.stringify(scores));
    for (const [cat, c] of Object.entries(r.categories)) {
      for (const ref of c.auditRefs) {
        const a = r.audits[ref.id];
        if (ref.weight > 0 && a.score !== null && a.score < 1) console.log("   ", cat, a.id, a.score, a.displayValue || "");
      }
    }
    const ok = scores.accessibility === 100 && scores.seo === 100 && scores["best-practices"] >= 96 && scores.performance >= 95;
    process.exit(ok ? 0 : 1);
  ' "$report" "$path" || status=1
done
echo "reports: $WORK/*.json"
exit $status
