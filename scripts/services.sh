#!/usr/bin/env bash
# Starts PostgreSQL and Redis when nothing listens on their ports, and makes
# sure the `test` database exists with trust auth on loopback (development
# and CI machines only). Idempotent; run by `make run` and `make test`.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! listening 6379; then
	echo "services: starting redis-server on 127.0.0.1:6379"
	$SUDO mkdir -p /var/lib/redis /var/log/redis
	$SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/warden.log
fi

if ! listening 5432; then
	ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1 || true)
	if [ -z "$ver" ]; then
		echo "services: PostgreSQL is not installed (run scripts/deps.sh)" >&2
		exit 1
	fi
	hba=/etc/postgresql/$ver/main/pg_hba.conf
	if ! grep -q "warden: trust loopback" "$hba"; then
		echo "services: enabling trust auth on loopback in $hba (development/CI machine)"
		$SUDO sed -i '1i # warden: trust loopback (development/CI machine)\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
	fi
	echo "services: starting PostgreSQL $ver on 127.0.0.1:5432"
	$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start
fi

for i in $(seq 1 30); do
	listening 5432 && listening 6379 && break
	sleep 1
done
listening 5432 || { echo "services: PostgreSQL did not come up" >&2; exit 1; }
listening 6379 || { echo "services: Redis did not come up" >&2; exit 1; }

if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1; then
	if psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null 2>&1; then
		echo "services: created database test"
	else
		echo "services: cannot reach PostgreSQL as postgres on 127.0.0.1 without a password; set WARDEN_TEST_POSTGRES_URL" >&2
	fi
fi
