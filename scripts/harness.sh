# Sourced by scripts/services.sh and scripts/e2e.sh: the pieces they share.
# The caller sets HARNESS (its file name, for messages), STATE (its state dir) and
# ENV_FILE before sourcing, defines cmd_up, cmd_down and cmd_status, and ends with
# `harness_main "$@"`.

die() { echo "$HARNESS: $*" >&2; exit 1; }
log() { echo "$HARNESS: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# apt_install FAIL PACKAGE...: install Debian packages; FAIL is the function that
# reports an error and exits (die, or a caller's own exit status).  Package postinst
# scripts start their daemons (nginx on port 80, memcached on 11211, swift-* from
# /etc/swift) through invoke-rc.d unless policy-rc.d says 101.  Docker-derived images
# ship such a policy; if there is none, one is in place for the install only.
apt_install() {
    local fail=$1
    shift
    [[ $(id -u) == 0 ]] || "$fail" "missing packages ($*); run as root"
    log "installing $*"
    local policy=/usr/sbin/policy-rc.d ours='' rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        ours=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    mkdir -p "$STATE/log"
    {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            --no-install-recommends "$@"
    } >"$STATE/log/apt.log" 2>&1 || rc=$?
    if [[ -n $ours ]]; then rm -f "$policy"; trap - EXIT; fi
    ((rc == 0)) || "$fail" "apt-get install $* failed; last lines:
$(tail -n 20 "$STATE/log/apt.log")"
}

cmd_env() {
    [[ -e $ENV_FILE ]] || die "no $ENV_FILE; run scripts/$HARNESS up first"
    cat "$ENV_FILE"
}

# Serialise concurrent up/down (e.g. parallel test runners); the lock file sits
# beside the state dir because `down` deletes the dir.  Every daemon is started
# with 9>&-: one that inherited fd 9 would hold the lock forever.
lock() {
    mkdir -p "$(dirname "$STATE")"
    exec 9>"$STATE.lock"
    flock -w 300 9 || die "another $HARNESS up/down holds $STATE.lock"
}

harness_main() {
    case ${1:-} in
        up | down) lock; "cmd_$1" ;;
        status | env) "cmd_$1" ;;
        *) die "usage: $0 up|down|status|env" ;;
    esac
}
