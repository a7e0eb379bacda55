#!/usr/bin/env bash
# Real servers for the stateless_odoo tests, all on 127.0.0.1:
# three Redis servers (plain, with password, TLS-only with password: its
# throwaway CA, server and client certificates are made on the first `up` of
# a state dir, in tls/), a Redis Sentinel, memcached, an
# OpenStack Keystone (identity v3 only) and a one-node OpenStack Swift with
# two proxies: one with tempauth (Swift API v1 auth + tempurl + S3 API via
# s3api), one with keystone auth (authtoken + keystoneauth, tempurl, s3api
# with s3token); checks the machine's PostgreSQL on 5432.
#
#   scripts/services.sh up       install missing packages, start what is not
#                                running, wait until healthy, write env file
#   scripts/services.sh down     stop what `up` started (pidfiles), drop state
#   scripts/services.sh status   one line per service
#   scripts/services.sh env      print the env file:
#                                eval "$(scripts/services.sh env)"
#
# Everything (data, logs, configs, rings, pidfiles) lives in the state dir,
# ${STATELESS_SERVICES_DIR:-/tmp/stateless-odoo-services}; it is throwaway.
# Ports: STATELESS_{REDIS,REDIS_AUTH,REDIS_TLS,SENTINEL,MEMCACHED,KEYSTONE}_PORT and
# STATELESS_SWIFT_{PROXY,KEYSTONE_PROXY,OBJECT,CONTAINER,ACCOUNT}_PORT
# (defaults below).
# Swift's object server needs user xattrs on that filesystem (ext4/xfs/btrfs:
# yes; tmpfs only on Linux >= 6.6); `up` checks and says so.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATES=$HERE/services
STATE=${STATELESS_SERVICES_DIR:-/tmp/stateless-odoo-services}
# Absolute: redis-server resolves its pidfile after chdir to --dir, and the
# env file hands out paths (the TLS CA) to processes started elsewhere.
[[ $STATE == /* ]] || STATE=$PWD/$STATE
ENV_FILE=$STATE/services.env
HEALTH_TIMEOUT=${STATELESS_SERVICES_TIMEOUT:-30}

REDIS_PORT=${STATELESS_REDIS_PORT:-16379}
REDIS_AUTH_PORT=${STATELESS_REDIS_AUTH_PORT:-16380}
REDIS_TLS_PORT=${STATELESS_REDIS_TLS_PORT:-16382}
SENTINEL_PORT=${STATELESS_SENTINEL_PORT:-16381}
MEMCACHED_PORT=${STATELESS_MEMCACHED_PORT:-16211}
SWIFT_PROXY_PORT=${STATELESS_SWIFT_PROXY_PORT:-16080}
SWIFT_KEYSTONE_PROXY_PORT=${STATELESS_SWIFT_KEYSTONE_PROXY_PORT:-16081}
KEYSTONE_PORT=${STATELESS_KEYSTONE_PORT:-16500}
SWIFT_OBJECT_PORT=${STATELESS_SWIFT_OBJECT_PORT:-16010}
SWIFT_CONTAINER_PORT=${STATELESS_SWIFT_CONTAINER_PORT:-16011}
SWIFT_ACCOUNT_PORT=${STATELESS_SWIFT_ACCOUNT_PORT:-16012}
PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres

REDIS_PASSWORD=stateless-test-password
REDIS_TLS_PASSWORD=stateless-tls-password
TLS=$STATE/tls  # ca.crt/key, redis.crt/key (server), client.crt/key
SENTINEL_MASTER=stateless-test
TEMP_URL_KEY=stateless-temp-url-key
# Keystone: the bootstrap admin (user admin, project admin), the test user
# (role member on its project; owns the Swift account AUTH_<project id>, with
# an EC2 credential for S3) and the keystone proxy's own service user.
KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
KEYSTONE_REGION=RegionOne
KEYSTONE_ADMIN_PASSWORD=stateless-keystone-admin
KEYSTONE_PROJECT=stateless KEYSTONE_USER=swiftuser KEYSTONE_PASSWORD=swiftpass
KEYSTONE_EC2_ACCESS=stateless-ks-access KEYSTONE_EC2_SECRET=stateless-ks-secret
KEYSTONE_SERVICE_PROJECT=service KEYSTONE_SERVICE_USER=swift
KEYSTONE_SERVICE_PASSWORD=swiftservicepass

# Start order; the storage servers come before the proxies.
SERVICES=(redis redis-auth redis-tls redis-sentinel memcached keystone
          swift-account swift-container swift-object swift-proxy
          swift-keystone-proxy)

HARNESS=services.sh
# shellcheck source=scripts/harness.sh
source "$HERE/harness.sh"

port_of() {
    case $1 in
        redis) echo "$REDIS_PORT" ;;
        redis-auth) echo "$REDIS_AUTH_PORT" ;;
        redis-tls) echo "$REDIS_TLS_PORT" ;;
        redis-sentinel) echo "$SENTINEL_PORT" ;;
        memcached) echo "$MEMCACHED_PORT" ;;
        keystone) echo "$KEYSTONE_PORT" ;;
        swift-account) echo "$SWIFT_ACCOUNT_PORT" ;;
        swift-container) echo "$SWIFT_CONTAINER_PORT" ;;
        swift-object) echo "$SWIFT_OBJECT_PORT" ;;
        swift-proxy) echo "$SWIFT_PROXY_PORT" ;;
        swift-keystone-proxy) echo "$SWIFT_KEYSTONE_PROXY_PORT" ;;
    esac
}
pidfile() { echo "$STATE/run/$1.pid"; }
portfile() { echo "$STATE/run/$1.port"; }  # the port it was started on
logfile() { echo "$STATE/log/$1.log"; }

# A pid from a pidfile counts only if that process is still ours: after a
# reboot the pidfile is stale and the pid may belong to anything.  Redis and
# memcached carry their port in their command line (the port recorded at
# start, so `down` works whatever the caller's env), swift daemons and
# keystone's uwsgi their config path (inside the state dir).
is_running() {
    local pid
    pid=$(cat "$(pidfile "$1")" 2>/dev/null) && is_ours "$1" "$pid"
}
is_ours() {  # service pid
    local token
    [[ $2 =~ ^[0-9]+$ ]] || return 1
    case $1 in
        swift-*) token=$STATE/swift/${1#swift-}-server.conf ;;
        keystone) token=$STATE/keystone/uwsgi.ini ;;
        *) token=$(cat "$(portfile "$1")" 2>/dev/null) || return 1 ;;
    esac
    # A zombie (PID 1 here reaps orphans only every few seconds) has an
    # empty cmdline, so it does not count.
    tr '\0' ' ' 2>/dev/null <"/proc/$2/cmdline" | grep -qF -- "$token"
}


rcli() { redis-cli -h 127.0.0.1 "$@" 2>/dev/null; }

# Render template $1 to $2, replacing @KEY@ by value for each KEY=value arg
# (pure bash: the quoted replacement is literal, whatever the path holds).
render() {
    local dst=$2 kv text
    text=$(<"$1")
    shift 2
    for kv in "$@"; do text=${text//"@${kv%%=*}@"/"${kv#*=}"}; done
    printf '%s\n' "$text" >"$dst.tmp" && mv "$dst.tmp" "$dst"
}

# ---------------------------------------------------------------- install --
install_missing() {
    local -A need=(
        [redis-server]=redis-server [redis-cli]=redis-tools
        [memcached]=memcached [curl]=curl
        # Markdown to reStructuredText for scripts/gen_readme.py (the addons'
        # README.rst) and tests/test_readme.py
        [pandoc]=pandoc
        [swift-ring-builder]=swift [swift-proxy-server]=swift-proxy
        [swift-account-server]=swift-account
        [swift-container-server]=swift-container
        [swift-object-server]=swift-object
        [uwsgi-core]=uwsgi-plugin-python3
        # keystone-manage, keystone-wsgi-public and, as dependencies,
        # keystonemiddleware (authtoken) and keystoneauth1; not the
        # `keystone` package, whose postinst configures a system keystone.
        [keystone-manage]=python3-keystone
        # for the alert rules' tests and the e2e scenario, which start their
        # own server: never started here
        [prometheus]=prometheus [promtool]=prometheus
    )
    local bin pkgs=()
    for bin in "${!need[@]}"; do
        command -v "$bin" >/dev/null || pkgs+=("${need[$bin]}")
    done
    ((${#pkgs[@]})) || return 0
    apt_install die "${pkgs[@]}"
}

# ----------------------------------------------------------------- starts --
start_redis() {  # $1 = service name, rest = extra redis-server args
    local svc=$1 listen
    shift
    # The TLS one has no plain TCP port; its process title then shows the
    # TLS port ("redis-server 127.0.0.1:PORT"), which is_ours looks for.
    listen=(--port "$(port_of "$svc")")
    if [[ $svc == redis-tls ]]; then listen=(--port 0 --tls-port "$(port_of "$svc")"); fi
    mkdir -p "$STATE/$svc"
    redis-server --daemonize yes --bind 127.0.0.1 "${listen[@]}" \
        --save "" --appendonly no --dir "$STATE/$svc" \
        --pidfile "$(pidfile "$svc")" --logfile "$(logfile "$svc")" "$@" 9>&-
}

# A throwaway CA (EC P-256, 10 years) and, signed by it, the TLS Redis's
# certificate (SAN IP:127.0.0.1, DNS:localhost) and a client certificate for
# mutual TLS (the server does not ask for one: tls-auth-clients no).  Made
# once per state dir, in a scratch dir moved into place when complete.
tls_prepare() {
    local f missing=()
    for f in ca.crt ca.key redis.crt redis.key client.crt client.key; do
        [[ -s $TLS/$f ]] || missing+=("$f")
    done
    ((${#missing[@]})) || return 0
    log "making a throwaway CA and certificates in $TLS"
    rm -rf "$TLS.tmp" "$TLS"
    mkdir -p "$TLS.tmp"
    cat >"$TLS.tmp/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
    (cd "$TLS.tmp" && tls_make >>"$(logfile openssl)" 2>&1) ||
        die "openssl failed making the test certificates; last lines of $(logfile openssl):
$(tail -n 15 "$(logfile openssl)" 2>/dev/null)"
    mv "$TLS.tmp" "$TLS"
}
tls_make() {  # in the scratch dir
    tls_key ca.key &&
        openssl req -x509 -new -config openssl.cnf -extensions ca -key ca.key \
            -subj "/CN=stateless-odoo throwaway test CA" -days 3650 -out ca.crt &&
        tls_cert redis localhost server &&
        tls_cert client stateless-test-client client &&
        chmod 600 ca.key redis.key
}
tls_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
tls_cert() {  # name, CN, extensions section of openssl.cnf
    tls_key "$1.key" &&
        openssl req -new -config openssl.cnf -key "$1.key" -subj "/CN=$2" -out "$1.csr" &&
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -days 3650 \
            -set_serial "0x$(openssl rand -hex 16)" -extfile openssl.cnf \
            -extensions "$3" -out "$1.crt" &&
        rm "$1.csr"
}

start_redis-sentinel() {
    mkdir -p "$STATE/redis-sentinel"
    render "$TEMPLATES/sentinel.conf.in" "$STATE/redis-sentinel/sentinel.conf" \
        "SENTINEL_PORT=$SENTINEL_PORT" "REDIS_PORT=$REDIS_PORT" \
        "MASTER=$SENTINEL_MASTER" "DIR=$STATE/redis-sentinel" \
        "PIDFILE=$(pidfile redis-sentinel)" "LOGFILE=$(logfile redis-sentinel)"
    # The plain redis-server binary becomes a Sentinel with --sentinel; the
    # separate redis-sentinel package is only a symlink and init script.
    redis-server "$STATE/redis-sentinel/sentinel.conf" --sentinel 9>&-
}

start_memcached() {
    # memcached refuses to run as root without -u.
    memcached -d -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 \
        -u "$(id -un)" -P "$(pidfile memcached)" >>"$(logfile memcached)" 2>&1 9>&-
}

# Swift daemons read rings from swift_dir, but swift.conf (hash prefix and
# suffix, storage policies) always from /etc/swift/swift.conf: the path is
# hard-coded in swift.common.utils and no env var overrides it.  Debian's
# `swift` package ships that file (prefix/suffix "changeme", fine for tests),
# so we write one only if it is missing.
swift_prepare() {
    local dir=$STATE/swift kind
    mkdir -p "$dir/devices/d1"
    if [[ ! -e /etc/swift/swift.conf ]]; then
        log "writing missing /etc/swift/swift.conf"
        mkdir -p /etc/swift
        printf '%s\n' '[swift-hash]' 'swift_hash_path_prefix = stateless-test' \
            'swift_hash_path_suffix = stateless-test' \
            '[storage-policy:0]' 'name = Policy-0' 'default = yes' \
            >/etc/swift/swift.conf
    fi
    # The object server keeps metadata in user xattrs.
    /usr/bin/python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.t", b"1")' \
        "$dir/devices/d1" 2>/dev/null ||
        die "$dir is on a filesystem without user xattrs (tmpfs?); point STATELESS_SERVICES_DIR elsewhere"
    render "$TEMPLATES/proxy-server.conf.in" "$dir/proxy-server.conf" \
        "SWIFT_PROXY_PORT=$SWIFT_PROXY_PORT" "MEMCACHED_PORT=$MEMCACHED_PORT" \
        "USER=$(id -un)" "SWIFT_DIR=$dir"
    render "$TEMPLATES/keystone-proxy-server.conf.in" \
        "$dir/keystone-proxy-server.conf" "PORT=$SWIFT_KEYSTONE_PROXY_PORT" \
        "MEMCACHED_PORT=$MEMCACHED_PORT" "USER=$(id -un)" "SWIFT_DIR=$dir" \
        "KEYSTONE_URL=$KEYSTONE_URL" \
        "SERVICE_PROJECT=$KEYSTONE_SERVICE_PROJECT" \
        "SERVICE_USER=$KEYSTONE_SERVICE_USER" \
        "SERVICE_PASSWORD=$KEYSTONE_SERVICE_PASSWORD"
    for kind in account container object; do
        render "$TEMPLATES/storage-server.conf.in" "$dir/$kind-server.conf" \
            "KIND=$kind" "PORT=$(port_of "swift-$kind")" "USER=$(id -un)" \
            "SWIFT_DIR=$dir" "DEVICES=$dir/devices"
    done
    # One ring per server type: 2^10 partitions, 1 replica, one device (a
    # plain directory) -- what `swift-ring-builder X create 10 1 1; add
    # r1z1-127.0.0.1:PORT/d1 1; rebalance` does, in one python process
    # instead of nine (3.6 s -> 0.5 s).  Rebuilt only when a port changed.
    local ports="$SWIFT_ACCOUNT_PORT $SWIFT_CONTAINER_PORT $SWIFT_OBJECT_PORT"
    [[ $(cat "$dir/rings.ports" 2>/dev/null) == "$ports" ]] && return 0
    env -u PYTHONPATH -u PYTHONHOME /usr/bin/python3 - "$dir" \
        "$SWIFT_ACCOUNT_PORT" "$SWIFT_CONTAINER_PORT" "$SWIFT_OBJECT_PORT" <<'PY' ||
import sys
from swift.common.ring import RingBuilder
swift_dir, ports = sys.argv[1], sys.argv[2:]
for kind, port in zip(("account", "container", "object"), ports):
    builder = RingBuilder(10, 1, 1)
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1",
                     "port": int(port), "device": "d1", "weight": 1})
    builder.rebalance()
    builder.save(f"{swift_dir}/{kind}.builder")
    builder.get_ring().save(f"{swift_dir}/{kind}.ring.gz")
PY
        die "building the swift rings failed"
    echo "$ports" >"$dir/rings.ports"
}

start_swift() {  # $1 = account|container|object|proxy|keystone-proxy
    local svc=swift-$1
    # Swift runs on Debian's /usr/bin/python3; keep a project venv's
    # PYTHONPATH/PYTHONHOME away from it.  setsid: survive the caller's ^C.
    # -v: log to stderr (there is no syslog here).
    env -u PYTHONPATH -u PYTHONHOME setsid "swift-${1#keystone-}-server" \
        "$STATE/swift/$1-server.conf" -v </dev/null >>"$(logfile "$svc")" 2>&1 9>&- &
    echo $! >"$(pidfile "$svc")"
}

# Keystone keeps everything in the state dir: sqlite database, fernet and
# credential keys.  The database is made (db_sync, bootstrap: the admin user,
# roles admin/member/reader, region, identity endpoints) on the first start
# in a state dir, and bootstrapped again only when the port changed.
keystone_prepare() {
    local dir=$STATE/keystone
    mkdir -p "$dir"
    render "$TEMPLATES/keystone.conf.in" "$dir/keystone.conf" "DIR=$dir"
    render "$TEMPLATES/keystone-uwsgi.ini.in" "$dir/uwsgi.ini" \
        "KEYSTONE_PORT=$KEYSTONE_PORT" "DIR=$dir"
    [[ $(cat "$dir/bootstrapped" 2>/dev/null) == "$KEYSTONE_PORT" ]] && return 0
    log "bootstrapping keystone in $dir"
    local owner=(--keystone-user "$(id -un)" --keystone-group "$(id -gn)")
    # Each keystone-manage run costs ~1.5 s of imports: the key
    # repositories do not need the database, so they are made meanwhile.
    keystone_manage fernet_setup "${owner[@]}" &
    local fernet=$!
    keystone_manage credential_setup "${owner[@]}" &
    local credential=$!
    if ! {
        keystone_manage db_sync && keystone_wal && wait "$fernet" && wait "$credential" &&
            keystone_manage bootstrap --bootstrap-password "$KEYSTONE_ADMIN_PASSWORD" \
                --bootstrap-region-id "$KEYSTONE_REGION" \
                --bootstrap-admin-url "$KEYSTONE_URL" \
                --bootstrap-internal-url "$KEYSTONE_URL" \
                --bootstrap-public-url "$KEYSTONE_URL"
    }; then
        die "keystone-manage failed; last lines of $(logfile keystone-manage):
$(tail -n 15 "$(logfile keystone-manage)")"
    fi
    echo "$KEYSTONE_PORT" >"$dir/bootstrapped"
}

# On sqlite, some keystone requests hold a read transaction open in one
# connection while writing through another: with sqlite's default rollback
# journal the write waits 5 s, fails with "database is locked" and leaves the
# database locked (POST /v3/credentials does, every time).  In WAL mode
# readers do not block writers.  The mode is stored in the database file.
keystone_wal() {
    env -u PYTHONPATH -u PYTHONHOME /usr/bin/python3 -c '
import sqlite3, sys
mode = sqlite3.connect(sys.argv[1]).execute("pragma journal_mode=wal").fetchone()[0]
sys.exit(mode != "wal")' "$STATE/keystone/keystone.db"
}

keystone_manage() {
    env -u PYTHONPATH -u PYTHONHOME keystone-manage \
        --config-file "$STATE/keystone/keystone.conf" "$@" \
        </dev/null >>"$(logfile keystone-manage)" 2>&1 9>&-
}

start_keystone() {
    # uwsgi in the foreground (master + two workers), like swift.
    env -u PYTHONPATH -u PYTHONHOME setsid uwsgi-core --ini "$STATE/keystone/uwsgi.ini" \
        </dev/null >>"$(logfile keystone)" 2>&1 9>&- &
    echo $! >"$(pidfile keystone)"
}

start() {
    case $1 in
        redis) start_redis redis ;;
        redis-auth) start_redis redis-auth --requirepass "$REDIS_PASSWORD" ;;
        redis-tls)
            start_redis redis-tls --requirepass "$REDIS_TLS_PASSWORD" \
                --tls-cert-file "$TLS/redis.crt" --tls-key-file "$TLS/redis.key" \
                --tls-ca-cert-file "$TLS/ca.crt" --tls-auth-clients no ;;
        redis-sentinel) start_redis-sentinel ;;
        memcached) start_memcached ;;
        keystone) start_keystone ;;
        swift-*) start_swift "${1#swift-}" ;;
    esac
}

# ----------------------------------------------------------------- health --
healthy() {
    local port
    port=$(port_of "$1")
    case $1 in
        redis) [[ $(rcli -p "$port" ping) == PONG ]] ;;
        redis-auth)
            [[ $(rcli -p "$port" -a "$REDIS_PASSWORD" --no-auth-warning ping) == PONG ]] ;;
        redis-tls)
            [[ $(rcli --tls --cacert "$TLS/ca.crt" -p "$port" \
                -a "$REDIS_TLS_PASSWORD" --no-auth-warning ping) == PONG ]] ;;
        redis-sentinel)
            rcli -p "$port" sentinel get-master-addr-by-name "$SENTINEL_MASTER" |
                grep -qx "$REDIS_PORT" ;;
        memcached)
            (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'version\r\n' >&3 &&
                read -r -t 2 reply <&3 && [[ $reply == VERSION* ]]) ;;
        keystone)
            curl -sf -m 2 "http://127.0.0.1:$port/v3" | grep -q '"id": "v3' ;;
        swift-*)
            [[ $(curl -sf -m 2 "http://127.0.0.1:$port/healthcheck") == OK ]] ;;
    esac
}

wait_healthy() {
    local svc=$1 deadline=$((SECONDS + HEALTH_TIMEOUT))
    until healthy "$svc" 2>/dev/null; do
        if ((SECONDS >= deadline)) || ! is_running "$svc"; then
            local why="did not become healthy in ${HEALTH_TIMEOUT}s"
            is_running "$svc" || why="is not running (exited or never started)"
            die "$svc $why; last log lines of $(logfile "$svc"):
$(tail -n 15 "$(logfile "$svc")" 2>/dev/null)"
        fi
        sleep 0.2
    done
}

# Authenticate as test:tester and set the account's temp URL key.  This goes
# through proxy, memcached and the account server, so it doubles as an
# end-to-end check of Swift.
swift_setup_account() {
    local deadline=$((SECONDS + HEALTH_TIMEOUT)) headers token url code
    while :; do
        headers=$(curl -s -m 5 -D - -o /dev/null \
            -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' \
            "http://127.0.0.1:$SWIFT_PROXY_PORT/auth/v1.0" | tr -d '\r') || true
        token=$(sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p' <<<"$headers")
        url=$(sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p' <<<"$headers")
        code=000
        [[ -z $token ]] || code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' \
            -X POST -H "X-Auth-Token: $token" \
            -H "X-Account-Meta-Temp-URL-Key: $TEMP_URL_KEY" "$url") || true
        [[ $code != 204 ]] || return 0
        ((SECONDS < deadline)) || die "swift: could not set the temp URL key on AUTH_test (HTTP $code) in ${HEALTH_TIMEOUT}s; last log lines:
$(tail -n 15 "$(logfile swift-proxy)" "$(logfile swift-account)" 2>/dev/null)"
        sleep 0.3
    done
}

# Projects, users, roles, the object-store endpoints (pointing at the
# keystone proxy) and an EC2 credential, then the test user's temp URL key on
# its account through the keystone proxy: see services/keystone-setup.py.
# Records the user's storage URL (AUTH_<project id>) for the env file.
keystone_setup() {
    local url
    url=$(env -u PYTHONPATH -u PYTHONHOME /usr/bin/python3 \
        "$TEMPLATES/keystone-setup.py" "keystone_url=$KEYSTONE_URL" \
        "admin_password=$KEYSTONE_ADMIN_PASSWORD" \
        "swift_url=http://127.0.0.1:$SWIFT_KEYSTONE_PROXY_PORT/v1/AUTH_%(project_id)s" \
        "region=$KEYSTONE_REGION" "project=$KEYSTONE_PROJECT" \
        "user=$KEYSTONE_USER" "password=$KEYSTONE_PASSWORD" \
        "ec2_access=$KEYSTONE_EC2_ACCESS" "ec2_secret=$KEYSTONE_EC2_SECRET" \
        "service_project=$KEYSTONE_SERVICE_PROJECT" \
        "service_user=$KEYSTONE_SERVICE_USER" \
        "service_password=$KEYSTONE_SERVICE_PASSWORD" \
        "temp_url_key=$TEMP_URL_KEY" "timeout=$HEALTH_TIMEOUT" 9>&-) ||
        die "keystone setup failed; last log lines:
$(tail -n 15 "$(logfile keystone)" "$(logfile swift-keystone-proxy)" 2>/dev/null)"
    echo "$url" >"$STATE/keystone/storage-url"
}

# ------------------------------------------------------------- postgresql --
postgres_up() {
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && return 0
    log "PostgreSQL not ready on $PG_HOST:$PG_PORT; starting the cluster"
    local version
    version=$(ls /etc/postgresql)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 9>&-
    echo "$version" >"$STATE/run/postgresql.started-by-us"
    local deadline=$((SECONDS + HEALTH_TIMEOUT))
    until pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; do
        ((SECONDS < deadline)) || die "postgresql did not become ready in ${HEALTH_TIMEOUT}s"
        sleep 0.3
    done
}

write_env() {
    cat >"$ENV_FILE.tmp" <<EOF
export STATELESS_SERVICES_DIR=$(printf %q "$STATE")
export TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export TEST_REDIS_AUTH_URL=redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_AUTH_PORT/0
export TEST_REDIS_AUTH_HOST=127.0.0.1
export TEST_REDIS_AUTH_PORT=$REDIS_AUTH_PORT
export TEST_REDIS_AUTH_PASSWORD=$REDIS_PASSWORD
export TEST_REDIS_TLS_URL=rediss://:$REDIS_TLS_PASSWORD@127.0.0.1:$REDIS_TLS_PORT/0
export TEST_REDIS_TLS_HOST=127.0.0.1
export TEST_REDIS_TLS_PORT=$REDIS_TLS_PORT
export TEST_REDIS_TLS_PASSWORD=$REDIS_TLS_PASSWORD
export TEST_REDIS_TLS_CA=$(printf %q "$TLS/ca.crt")
export TEST_REDIS_TLS_CLIENT_CERT=$(printf %q "$TLS/client.crt")
export TEST_REDIS_TLS_CLIENT_KEY=$(printf %q "$TLS/client.key")
export TEST_REDIS_SENTINEL_HOST=127.0.0.1
export TEST_REDIS_SENTINEL_PORT=$SENTINEL_PORT
export TEST_REDIS_SENTINEL_MASTER=$SENTINEL_MASTER
export TEST_MEMCACHED_SERVER=127.0.0.1:$MEMCACHED_PORT
export TEST_SWIFT_AUTH_URL=http://127.0.0.1:$SWIFT_PROXY_PORT/auth/v1.0
export TEST_SWIFT_ACCOUNT=test:tester
export TEST_SWIFT_PASSWORD=testing
export TEST_SWIFT_OTHER_ACCOUNT=test2:tester2
export TEST_SWIFT_OTHER_PASSWORD=testing2
export TEST_SWIFT_READER_ACCOUNT=test:reader
export TEST_SWIFT_READER_PASSWORD=readerpass
export TEST_SWIFT_TEMP_URL_KEY=$TEMP_URL_KEY
export TEST_S3_ENDPOINT=http://127.0.0.1:$SWIFT_PROXY_PORT
export TEST_S3_REGION=us-east-1
export TEST_S3_ACCESS_KEY=test:tester
export TEST_S3_SECRET_KEY=testing
export TEST_S3_OTHER_ACCESS_KEY=test2:tester2
export TEST_S3_OTHER_SECRET_KEY=testing2
export TEST_KEYSTONE_URL=$KEYSTONE_URL
export TEST_KEYSTONE_USER=$KEYSTONE_USER
export TEST_KEYSTONE_PASSWORD=$KEYSTONE_PASSWORD
export TEST_KEYSTONE_PROJECT=$KEYSTONE_PROJECT
export TEST_KEYSTONE_REGION=$KEYSTONE_REGION
export TEST_KEYSTONE_USER_DOMAIN=Default
export TEST_KEYSTONE_PROJECT_DOMAIN=Default
export TEST_KEYSTONE_ADMIN_USER=admin
export TEST_KEYSTONE_ADMIN_PASSWORD=$KEYSTONE_ADMIN_PASSWORD
export TEST_KEYSTONE_ADMIN_PROJECT=admin
export TEST_KEYSTONE_SWIFT_STORAGE_URL=$(cat "$STATE/keystone/storage-url")
export TEST_KEYSTONE_S3_ENDPOINT=http://127.0.0.1:$SWIFT_KEYSTONE_PROXY_PORT
export TEST_KEYSTONE_S3_ACCESS_KEY=$KEYSTONE_EC2_ACCESS
export TEST_KEYSTONE_S3_SECRET_KEY=$KEYSTONE_EC2_SECRET
export TEST_PG_HOST=$PG_HOST
export TEST_PG_PORT=$PG_PORT
export TEST_PG_USER=$PG_USER
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# --------------------------------------------------------------- commands --
cmd_up() {
    mkdir -p "$STATE/run" "$STATE/log"
    touch "$STATE/.stateless-services"  # lets `down` delete the dir
    install_missing
    local svc port todo=() started=()
    for svc in "${SERVICES[@]}"; do
        port=$(port_of "$svc")
        if is_running "$svc"; then
            [[ $(cat "$(portfile "$svc")") == "$port" ]] ||
                die "$svc is running on port $(cat "$(portfile "$svc")"), not $port; run '$0 down' first"
            continue
        fi
        ! port_open "$port" ||
            die "$svc: port $port is in use by a process we did not start"
        todo+=("$svc")
    done
    if [[ ${todo[*]} == *swift-* ]]; then swift_prepare; fi
    if [[ " ${todo[*]} " == *" keystone "* ]]; then keystone_prepare; fi
    if [[ " ${todo[*]} " == *" redis-tls "* ]]; then tls_prepare; fi
    for svc in "${todo[@]}"; do
        rm -f "$(pidfile "$svc")"  # stale, e.g. from before a reboot
        log "starting $svc on 127.0.0.1:$(port_of "$svc")"
        port_of "$svc" >"$(portfile "$svc")"
        start "$svc" || die "$svc failed to start; last log lines:
$(tail -n 15 "$(logfile "$svc")" 2>/dev/null)"
        started+=("$svc")
    done
    for svc in "${SERVICES[@]}"; do wait_healthy "$svc"; done
    # Set the temp URL key whenever swift (re)started: also an end-to-end check.
    if [[ ! -e $ENV_FILE || ${started[*]} == *swift* ]]; then swift_setup_account; fi
    if [[ ! -e $ENV_FILE || ${started[*]} == *swift* || ${started[*]} == *keystone* ]]; then
        keystone_setup
    fi
    postgres_up
    write_env
    log "up: all running${started[*]:+ (started ${started[*]})}; env in $ENV_FILE"
}

cmd_down() {
    local svc pid port i
    for svc in "${SERVICES[@]}"; do
        if is_running "$svc"; then
            pid=$(cat "$(pidfile "$svc")")
            kill "$pid" 2>/dev/null || true
            # Not is_running: redis deletes its pidfile before it exits.
            for ((i = 0; i < 100; i++)); do is_ours "$svc" "$pid" || break; sleep 0.1; done
            if is_ours "$svc" "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
            # An exiting process loses its cmdline a moment before its sockets.
            port=$(cat "$(portfile "$svc")")
            for ((i = 0; i < 50; i++)); do port_open "$port" || break; sleep 0.1; done
            log "stopped $svc"
        fi
    done
    if [[ -e $STATE/run/postgresql.started-by-us ]]; then
        pg_ctlcluster --skip-systemctl-redirect \
            "$(cat "$STATE/run/postgresql.started-by-us")" main stop || true
        log "stopped postgresql (started by services.sh up)"
    fi
    # Only a dir that `up` made: STATELESS_SERVICES_DIR might point anywhere.
    if [[ -e $STATE/.stateless-services ]]; then rm -rf "$STATE"; fi
}

cmd_status() {
    local svc
    for svc in "${SERVICES[@]}"; do
        if is_running "$svc"; then
            printf '%-20s running  127.0.0.1:%s  pid %s\n' "$svc" "$(cat "$(portfile "$svc")")" \
                "$(cat "$(pidfile "$svc")")"
        else
            printf '%-20s stopped  127.0.0.1:%s\n' "$svc" "$(port_of "$svc")"
        fi
    done
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
        printf '%-20s running  %s:%s\n' postgresql "$PG_HOST" "$PG_PORT"
    else
        printf '%-20s stopped  %s:%s\n' postgresql "$PG_HOST" "$PG_PORT"
    fi
}

harness_main "$@"
