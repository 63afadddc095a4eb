#!/bin/sh
# Dump Alsa Trade's PostgreSQL database to $DEST (custom format, for pg_restore) and delete dumps
# older than $KEEP_DAYS days. DATABASE_URL comes from the environment, else from the app's .env.
# Run by deploy/alsatrade-backup.timer; by hand: runuser -u alsatrade -- /srv/alsatrade/app/deploy/backup.sh
set -eu
umask 077
APP=${APP:-/srv/alsatrade/app}
DEST=${DEST:-/var/backups/alsatrade}
KEEP_DAYS=${KEEP_DAYS:-14}
url=${DATABASE_URL:-$(sed -n 's/^DATABASE_URL=//p' "$APP/.env")}
case "$url" in
    postgres://*|postgresql://*) ;;
    *) echo "backup.sh: DATABASE_URL is not PostgreSQL; for SQLite see docs/DEPLOY.md" >&2; exit 2 ;;
esac
file="$DEST/alsatrade-$(date -u +%Y%m%dT%H%M%SZ).dump"
pg_dump --format=custom --file="$file.part" "$url"
mv "$file.part" "$file"
find "$DEST" -name 'alsatrade-*.dump' -mtime +"$KEEP_DAYS" -delete
echo "$file"
