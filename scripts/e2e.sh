#!/usr/bin/env bash
# Infrastructure of the end-to-end scenario (tier 3): several stateless Odoo 18
# processes behind nginx, sharing the machine's PostgreSQL (the primary, on
# 127.0.0.1:5432) and a streaming, read-only replica of it.
#
#   scripts/e2e.sh up       install nginx if missing (without starting the system
#                           one), make and start the replica, wait until it
#                           streams, write the env file
#   scripts/e2e.sh down     stop the replica and remove its data, stop an nginx
#                           left running in the state dir's prefix, drop the state
#   scripts/e2e.sh status   one line per piece: does the replica stream?
#                           (exit 1 when it does not)
#   scripts/e2e.sh env      print the env file: eval "$(scripts/e2e.sh env)"
#
# The replica: a second PostgreSQL 15 cluster from Debian's binaries
# (/usr/lib/postgresql/15/bin), owned by and running as the `postgres` OS user,
# on 127.0.0.1:${STATELESS_E2E_REPLICA_PORT:-55433}, made by `pg_basebackup -R`
# from the primary, started with pg_ctl (not pg_ctlcluster: no systemd here,
# and it is not a cluster of /etc/postgresql), hot_standby=on.  It needs a
# `replication` line in the primary's pg_hba.conf: when replication
# connections from 127.0.0.1 are refused, `up` appends
#     host replication postgres 127.0.0.1/32 trust
# (once, after a backup beside the file) and reloads the primary; a changed
# wal_level or max_wal_senders would need a restart of the primary: `up` only
# says so.  No replication slot: a slot left behind by a replica that is gone
# would keep WAL on the machine's main cluster forever.
#
# nginx: `up` installs Debian's package with a policy-rc.d that forbids its
# postinst to start the system nginx (port 80); the scenario starts its own
# nginx with scripts/e2e/nginx.py (configuration: scripts/e2e/nginx.conf.template),
# by default in the prefix $E2E_NGINX_PREFIX (inside the state dir), which
# `down` stops.
#
# Odoo reaches the replica with --db_replica_host / --db_replica_port (both:
# without the port Odoo uses libpq's default, 5432); see E2E_ODOO_DB_ARGS.
# Odoo 18 then runs the routes marked readonly (/web/content, /web/image,
# /web/action/load, call_kw of @api.readonly methods, ...) on a read-only cursor
# of the replica, retries one on the primary when it tries to write, and uses
# the primary alone for 20 minutes when the replica refuses connections.
#
# Everything lives in ${STATELESS_E2E_DIR:-/tmp/stateless-odoo-e2e}; it is
# throwaway.  Exit status: 0, 1 on an error, 3 when a Debian package is missing
# and cannot be installed (not root, apt failed): the tests skip on 3 only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${STATELESS_E2E_DIR:-/tmp/stateless-odoo-e2e}
[[ $STATE == /* ]] || STATE=$PWD/$STATE
ENV_FILE=$STATE/e2e.env
TIMEOUT=${STATELESS_E2E_TIMEOUT:-60}

PG_BIN=/usr/lib/postgresql/15/bin
PG_OS_USER=postgres
PRIMARY_HOST=127.0.0.1 PRIMARY_PORT=5432 PG_USER=postgres
REPLICA_HOST=127.0.0.1
REPLICA_PORT=${STATELESS_E2E_REPLICA_PORT:-55433}
REPLICA_NAME=stateless_e2e_replica  # application_name and cluster_name
REPLICA_DIR=$STATE/pg-replica       # owned by postgres: data/, replica.log, socket
REPLICA_DATA=$REPLICA_DIR/data
REPLICA_LOG=$REPLICA_DIR/replica.log
HBA_LINE="host replication $PG_USER 127.0.0.1/32 trust"
HBA_MARK="# added by stateless-odoo scripts/e2e.sh: streaming replica for the e2e tests"

NGINX=/usr/sbin/nginx
NGINX_PREFIX=$STATE/nginx
NGINX_HELPER=$HERE/e2e/nginx.py

HARNESS=e2e.sh
# shellcheck source=scripts/harness.sh
source "$HERE/harness.sh"
die_packages() { echo "e2e.sh: $*" >&2; exit 3; }

as_postgres() { runuser -u "$PG_OS_USER" -- "$@"; }

# psql on the primary or the replica as the superuser, one value per line.
primary_sql() { psql -X -q -At -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$PG_USER" -d postgres -c "$1"; }
replica_sql() { psql -X -q -At -h "$REPLICA_HOST" -p "$REPLICA_PORT" -U "$PG_USER" -d postgres -c "$1"; }


# ---------------------------------------------------------------- install --
install_missing() {
    local pkgs=()
    [[ -x $NGINX ]] || pkgs+=(nginx)
    ((${#pkgs[@]})) || return 0
    apt_install die_packages "${pkgs[@]}"
    [[ -x $NGINX ]] || die_packages "nginx installed, but no $NGINX"
    ! port_open 80 || log "warning: something listens on port 80 after installing nginx"
}

# ---------------------------------------------------------------- primary --
primary_check() {
    pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" ||
        die "PostgreSQL is not ready on $PRIMARY_HOST:$PRIMARY_PORT (scripts/services.sh up starts it)"
    [[ -x $PG_BIN/pg_basebackup ]] || die_packages "no $PG_BIN/pg_basebackup (Debian's postgresql-15)"
    local version wal senders
    version=$(primary_sql "show server_version_num") || die "cannot query the primary as $PG_USER"
    [[ ${version:0:2} == 15 ]] ||
        die "the primary is PostgreSQL $version, the replica is made with PostgreSQL 15's binaries"
    wal=$(primary_sql "show wal_level")
    senders=$(primary_sql "show max_wal_senders")
    [[ $wal != minimal && $senders -gt 0 ]] ||
        die "the primary has wal_level=$wal, max_wal_senders=$senders: streaming needs wal_level=replica and max_wal_senders > 0 (a restart of the primary, not done here)"
}

replication_allowed() {
    psql -X -q -At "host=$PRIMARY_HOST port=$PRIMARY_PORT user=$PG_USER replication=true" \
        -c IDENTIFY_SYSTEM >/dev/null 2>&1
}

# Allow replication connections of the superuser from 127.0.0.1, with the
# least change: one line appended to the primary's pg_hba.conf (the `all`
# database keyword never matches replication connections, so this line is the
# first one that does), a backup of the file as it was, a reload.
hba_allow_replication() {
    replication_allowed && return 0
    local hba backup
    hba=$(primary_sql "show hba_file")
    [[ -f $hba ]] || die "replication connections are refused and $hba is not here to fix"
    [[ $(id -u) == 0 ]] || die "the primary refuses replication connections from 127.0.0.1; as root, e2e.sh would add '$HBA_LINE' to $hba"
    if ! grep -qxF "$HBA_LINE" "$hba"; then
        backup=$hba.before-stateless-e2e
        [[ -e $backup ]] || cp -p "$hba" "$backup"
        log "adding '$HBA_LINE' to $hba (backup: $backup) and reloading the primary"
        # (a file without a final newline would glue the line to its last one)
        if [[ -s $hba && -n $(tail -c 1 "$hba") ]]; then echo >>"$hba"; fi
        printf '%s\n%s\n' "$HBA_MARK" "$HBA_LINE" >>"$hba"
    fi
    [[ $(primary_sql "select pg_reload_conf()") == t ]] || die "could not reload the primary"
    local i
    for ((i = 0; i < 50; i++)); do
        replication_allowed && return 0
        sleep 0.1
    done
    die "the primary still refuses replication connections after adding '$HBA_LINE' to $hba (an earlier line rejecting them?); see: select * from pg_hba_file_rules"
}

# ---------------------------------------------------------------- replica --
replica_pid() {  # the postmaster's pid, when it runs on our data dir
    local pid
    pid=$(head -n 1 "$REPLICA_DATA/postmaster.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$REPLICA_DATA" || return 1
    echo "$pid"
}
replica_running() { replica_pid >/dev/null; }
replica_port() { sed -n 4p "$REPLICA_DATA/postmaster.pid" 2>/dev/null; }

replica_make() {
    local tmp=$REPLICA_DIR/data.tmp setting
    rm -rf "$REPLICA_DATA" "$tmp"
    mkdir -p "$REPLICA_DIR"
    chown "$PG_OS_USER:" "$REPLICA_DIR"
    chmod 700 "$REPLICA_DIR"
    log "pg_basebackup from $PRIMARY_HOST:$PRIMARY_PORT into $REPLICA_DATA"
    # -X stream: the WAL written during the copy comes along (with a temporary
    # slot); -c fast: an immediate checkpoint instead of waiting for one;
    # -R: standby.signal and primary_conninfo (application_name included, so
    # that pg_stat_replication names it); --no-sync: throwaway data.
    as_postgres "$PG_BIN/pg_basebackup" \
        -d "host=$PRIMARY_HOST port=$PRIMARY_PORT user=$PG_USER application_name=$REPLICA_NAME" \
        -D "$tmp" -R -X stream -c fast --no-sync >>"$REPLICA_LOG.basebackup" 2>&1 9>&- ||
        die "pg_basebackup failed; last lines of $REPLICA_LOG.basebackup:
$(tail -n 15 "$REPLICA_LOG.basebackup" 2>/dev/null)"
    # Debian keeps postgresql.conf and pg_hba.conf in /etc: the copy has
    # neither.  A hot standby refuses to start when these settings are lower
    # than the primary's, so they are copied.
    {
        echo "# scripts/e2e.sh: a streaming hot standby of $PRIMARY_HOST:$PRIMARY_PORT"
        echo "listen_addresses = '$REPLICA_HOST'"
        echo "port = $REPLICA_PORT"
        echo "unix_socket_directories = '$REPLICA_DIR'"
        echo "cluster_name = '$REPLICA_NAME'"
        echo "hot_standby = on"
        # replies every second: pg_stat_replication's lags stay current
        echo "wal_receiver_status_interval = 1s"
        # Odoo's read-only cursors run long reads on the replica: keep the
        # primary's vacuum from removing rows they still see.
        echo "hot_standby_feedback = on"
        echo "fsync = off"
        echo "log_destination = 'stderr'"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        for setting in max_connections max_worker_processes max_wal_senders \
            max_prepared_transactions max_locks_per_transaction; do
            echo "$setting = $(primary_sql "show $setting")"
        done
    } >"$tmp/postgresql.conf"
    printf '%s\n' 'local all all trust' 'host all all 127.0.0.1/32 trust' >"$tmp/pg_hba.conf"
    : >"$tmp/pg_ident.conf"
    chown "$PG_OS_USER:" "$tmp/postgresql.conf" "$tmp/pg_hba.conf" "$tmp/pg_ident.conf"
    mv "$tmp" "$REPLICA_DATA"
}

replica_start() {
    log "starting the replica on $REPLICA_HOST:$REPLICA_PORT"
    # pg_ctl -w: returns when the standby accepts (read-only) connections.
    as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DATA" -l "$REPLICA_LOG" -w -t "$TIMEOUT" \
        start >/dev/null 9>&- ||
        die "the replica did not start; last lines of $REPLICA_LOG:
$(tail -n 15 "$REPLICA_LOG" 2>/dev/null)"
}

replica_streaming() {  # on the primary: our walsender streams
    [[ $(primary_sql "select state from pg_stat_replication where application_name = '$REPLICA_NAME'" 2>/dev/null) == *streaming* ]]
}

replica_wait_streaming() {
    local deadline=$((SECONDS + TIMEOUT))
    until replica_streaming && [[ $(replica_sql "select pg_is_in_recovery()" 2>/dev/null) == t ]]; do
        ((SECONDS < deadline)) || die "the replica does not stream after ${TIMEOUT}s; last lines of $REPLICA_LOG:
$(tail -n 15 "$REPLICA_LOG" 2>/dev/null)"
        replica_running || die "the replica stopped; last lines of $REPLICA_LOG:
$(tail -n 15 "$REPLICA_LOG" 2>/dev/null)"
        sleep 0.2
    done
}

replica_stop() {
    replica_running || return 0
    local pid i
    pid=$(replica_pid)
    as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        kill -9 "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do replica_running || break; sleep 0.1; done
    log "stopped the replica"
}

# ------------------------------------------------------------------ nginx --
nginx_pid() {  # the master of an nginx in our prefix (started by nginx.py)
    local pid
    pid=$(cat "$NGINX_PREFIX/logs/nginx.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$NGINX_PREFIX" || return 1
    echo "$pid"
}

nginx_stop() {
    local pid i
    pid=$(nginx_pid) || return 0
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do nginx_pid >/dev/null || break; sleep 0.1; done
    if nginx_pid >/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    log "stopped nginx (prefix $NGINX_PREFIX)"
}

# ------------------------------------------------------------------- env --
write_env() {
    local odoo_args="--db_host=$PRIMARY_HOST --db_port=$PRIMARY_PORT --db_user=$PG_USER"
    odoo_args+=" --db_replica_host=$REPLICA_HOST --db_replica_port=$REPLICA_PORT"
    cat >"$ENV_FILE.tmp" <<EOF
export STATELESS_E2E_DIR=$(printf %q "$STATE")
export E2E_PG_HOST=$PRIMARY_HOST
export E2E_PG_PORT=$PRIMARY_PORT
export E2E_PG_USER=$PG_USER
export E2E_PG_REPLICA_HOST=$REPLICA_HOST
export E2E_PG_REPLICA_PORT=$REPLICA_PORT
export E2E_ODOO_DB_ARGS=$(printf %q "$odoo_args")
export E2E_NGINX=$(printf %q "$NGINX")
export E2E_NGINX_PREFIX=$(printf %q "$NGINX_PREFIX")
export E2E_NGINX_HELPER=$(printf %q "$NGINX_HELPER")
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# --------------------------------------------------------------- commands --
cmd_up() {
    [[ $(id -u) == 0 ]] || die "run as root (the replica runs as the postgres OS user)"
    mkdir -p "$STATE/log"
    chmod 755 "$STATE"  # the postgres user and nginx's workers go through it
    touch "$STATE/.stateless-e2e"  # lets `down` delete the dir
    install_missing
    primary_check
    local started=''
    if replica_running; then
        [[ $(replica_port) == "$REPLICA_PORT" ]] ||
            die "the replica runs on port $(replica_port), not $REPLICA_PORT; run '$0 down' first"
    else
        ! port_open "$REPLICA_PORT" ||
            die "port $REPLICA_PORT is in use by a process we did not start (STATELESS_E2E_REPLICA_PORT)"
        hba_allow_replication
        # A data dir of a stopped replica is not reused: the primary may have
        # recycled the WAL it would need to catch up (there is no slot).
        replica_make
        replica_start
        started=1
    fi
    replica_wait_streaming
    write_env
    log "up: replica streaming on $REPLICA_HOST:$REPLICA_PORT${started:+ (started)}; env in $ENV_FILE"
}

cmd_down() {
    nginx_stop
    replica_stop
    rm -rf "$REPLICA_DIR"
    # Only a dir that `up` made: STATELESS_E2E_DIR might point anywhere.
    if [[ -e $STATE/.stateless-e2e ]]; then rm -rf "$STATE"; fi
}

cmd_status() {
    local rc=0 recovery stream pid
    if replica_running; then
        recovery=$(replica_sql "select pg_is_in_recovery()" 2>/dev/null || echo '?')
        stream=$(primary_sql "select state || ' (replay lag ' || coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, 0) || ' bytes)' from pg_stat_replication where application_name = '$REPLICA_NAME'" 2>/dev/null || true)
        printf '%-12s running  %s:%s  pid %s  in recovery: %s  primary sees: %s\n' pg-replica \
            "$REPLICA_HOST" "$(replica_port)" "$(replica_pid)" "$recovery" "${stream:-no walsender}"
        [[ $recovery == t && $stream == streaming* ]] || rc=1
    else
        printf '%-12s stopped  %s:%s\n' pg-replica "$REPLICA_HOST" "$REPLICA_PORT"
        rc=1
    fi
    if pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" 2>/dev/null; then
        printf '%-12s running  %s:%s\n' pg-primary "$PRIMARY_HOST" "$PRIMARY_PORT"
    else
        printf '%-12s stopped  %s:%s\n' pg-primary "$PRIMARY_HOST" "$PRIMARY_PORT"
        rc=1
    fi
    if [[ ! -x $NGINX ]]; then
        printf '%-12s missing  (e2e.sh up installs it)\n' nginx
    elif pid=$(nginx_pid); then
        printf '%-12s running  prefix %s  pid %s\n' nginx "$NGINX_PREFIX" "$pid"
    else
        printf '%-12s stopped  prefix %s (started by scripts/e2e/nginx.py)\n' nginx "$NGINX_PREFIX"
    fi
    return "$rc"
}

harness_main "$@"
