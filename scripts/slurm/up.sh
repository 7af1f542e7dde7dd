#!/usr/bin/env bash
# Bring up a one-node SLURM cluster (node "localhost", partition "debug",
# cluster "localcluster") with slurmdbd accounting, on a Debian/Ubuntu machine
# without systemd. Must run as root. Idempotent: daemons that are already
# running are left alone; pids of the daemons this script starts are recorded
# in $GROWLAB_SLURM_STATE_DIR (default /run/growlab-slurm) for down.sh.
#
# Exits 0 once `sinfo` shows the node usable and `sacct` answers.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"

PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
T0=$(date +%s.%N)

die() {
  log "ERROR: $*"
  local f
  for f in "$STATE_DIR"/*.out "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log "$LOG_DIR"/slurmdbd.log; do
    [[ -s $f ]] || continue
    echo "----- tail $f -----" >&2
    tail -n 20 "$f" >&2
  done
  log "daemons started so far are recorded in $STATE_DIR; run down.sh to stop them"
  exit 1
}

[[ $EUID -eq 0 ]] || { log "ERROR: must run as root"; exit 1; }

# --------------------------------------------------------------------------
# 1. Packages (CI machines start bare).
# --------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages from starting their services: this script starts them.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  apt_install() {
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
  }
  rc=0
  if ! compgen -G '/var/lib/apt/lists/*Packages*' >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=300 update || rc=$?
  fi
  if ((rc == 0)); then
    apt_install || { apt-get -o DPkg::Lock::Timeout=300 update && apt_install; } || rc=$?
  fi
  if ((created_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || die "apt-get failed (rc=$rc)"
fi

# --------------------------------------------------------------------------
# 2. Directories, munge key.
# --------------------------------------------------------------------------
mkdir -p "$STATE_DIR" "$LOG_DIR" "$SLURM_ETC" "$SPOOL_DIR/slurmctld" "$SPOOL_DIR/slurmd"
chmod 755 "$STATE_DIR"
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /etc/munge /var/lib/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  log "creating /etc/munge/munge.key"
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o mysql -g mysql -m 755 /run/mysqld

# --------------------------------------------------------------------------
# 3. Configuration (rendered from the templates; rewritten only on change).
# --------------------------------------------------------------------------
node_hw=$(slurmd -C 2>/dev/null | head -n1 | tr ' ' '\n' |
  grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=' | tr '\n' ' ' || true)
if [[ $node_hw != *CPUs=* || $node_hw != *RealMemory=* ]]; then
  node_hw="CPUs=$(nproc) RealMemory=$(free -m | awk '/^Mem:/{print $2}')"
fi
node_hw=${node_hw% }

# Two existing device files stand for the two fake GPUs: /dev/tty1 and /dev/tty2, else (a
# container may have no ttys) /dev/zero and /dev/full; GROWLAB_FAKE_GPU_FILES overrides.
gpu_files=${GROWLAB_FAKE_GPU_FILES:-}
if [[ -z $gpu_files ]]; then
  if [[ -c /dev/tty1 && -c /dev/tty2 ]]; then gpu_files="/dev/tty1 /dev/tty2"; else gpu_files="/dev/zero /dev/full"; fi
fi
gres_lines=$(for f in $gpu_files; do printf 'NodeName=localhost Name=gpu File=%s\n' "$f"; done)
gres_template=$(mktemp)
sed -e "/@GRES_LINES@/{r /dev/stdin" -e "d}" "$HERE/gres.conf.template" <<<"$gres_lines" >"$gres_template"

render() { # render TEMPLATE -> stdout
  sed -e "s|@CLUSTER@|$CLUSTER_NAME|g" -e "s|@SPOOL@|$SPOOL_DIR|g" -e "s|@STATE@|$STATE_DIR|g" \
    -e "s|@LOGDIR@|$LOG_DIR|g" -e "s|@NODE_HW@|$node_hw|g" -e "s|@DBNAME@|$DB_NAME|g" \
    -e "s|@DBUSER@|$DB_USER|g" -e "s|@DBPASS@|$DB_PASS|g" "$1"
}

config_changed=0
install_conf() { # install_conf TEMPLATE DEST MODE
  local tmp
  tmp=$(mktemp)
  render "$1" >"$tmp"
  if [[ -f $2 ]] && cmp -s "$tmp" "$2"; then
    rm -f "$tmp"
    chmod "$3" "$2"
    return 0
  fi
  if [[ -f $2 ]] && ! grep -qF "$CONF_MARKER" "$2"; then
    log "backing up foreign $2 to $2.growlab-bak"
    cp -p "$2" "$2.growlab-bak"
  fi
  install -o root -g root -m "$3" "$tmp" "$2"
  rm -f "$tmp"
  config_changed=1
  log "wrote $2"
}
install_conf "$HERE/slurm.conf.template" "$SLURM_ETC/slurm.conf" 644
install_conf "$HERE/slurmdbd.conf.template" "$SLURM_ETC/slurmdbd.conf" 600
install_conf "$gres_template" "$SLURM_ETC/gres.conf" 644
rm -f "$gres_template"

if ((config_changed)); then
  # Restart any slurm daemons of ours so they pick up the new configuration.
  stop_recorded slurmd:slurmd slurmctld:slurmctld
  stop_recorded slurmdbd:slurmdbd
fi

# --------------------------------------------------------------------------
# 4. Daemons.
# --------------------------------------------------------------------------
# start_daemon NAME COMM CMD...: start CMD (in the foreground mode of the
# daemon, detached in its own session) unless NAME is already running, and
# record its pid. A matching daemon not started by us is reused, not recorded.
start_daemon() {
  local name=$1 comm=$2 pid
  shift 2
  if pid=$(recorded_pid "$name" "$comm"); then
    log "$name already running (pid $pid)"
    return 0
  fi
  rm -f "$STATE_DIR/$name.pid"
  if pid=$(pgrep -x "$comm" | head -n1) && [[ -n $pid ]]; then
    log "$name already running (pid $pid), not started by up.sh: reusing it"
    return 0
  fi
  # Non-interactive bash: the background child is no process-group leader, so
  # setsid(1) does not fork and $! is the daemon's pid (checked via comm).
  setsid "$@" </dev/null >>"$STATE_DIR/$name.out" 2>&1 &
  pid=$!
  echo "$pid" >"$STATE_DIR/$name.pid"
  log "started $name (pid $pid)"
}

# daemon_alive NAME COMM: the daemon we just started has not died (allowing
# a moment for setsid/setpriv to exec into it).
daemon_alive() {
  local pid
  if pid=$(recorded_pid "$1" "$2"); then
    ! is_zombie "$pid" && return 0
    return 1
  fi
  sleep 0.3
  pid=$(recorded_pid "$1" "$2") && ! is_zombie "$pid"
}

# wait_until NAME SECONDS CMD...: poll CMD until it succeeds; fail early if the
# daemon NAME that we started has died.
wait_until() {
  local name=$1 secs=$2 comm i
  shift 2
  comm=$name
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    [[ -e $STATE_DIR/$name.pid ]] && ! daemon_alive "$name" "$comm" && die "$name exited during start-up"
    sleep 0.1
  done
  die "timed out after ${secs}s waiting for $name: $*"
}

# munge -------------------------------------------------------------------
start_daemon munged munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
munge_ok() { munge -n </dev/null | unmunge >/dev/null; }
wait_until munged 20 munge_ok

# mariadb -----------------------------------------------------------------
if [[ ! -d /var/lib/mysql/mysql ]]; then
  log "initialising /var/lib/mysql"
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=socket \
    >>"$STATE_DIR/mariadb-install-db.out" 2>&1 || die "mariadb-install-db failed"
fi
start_daemon mariadbd mariadbd /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
  --socket="$MYSQL_SOCK"
mysql_root() { mariadb --protocol=socket -S "$MYSQL_SOCK" -u root "$@"; }
wait_until mariadbd 60 mysql_root -e 'SELECT 1'
mysql_root <<SQL || die "could not create the accounting database/user"
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1';
SQL

# slurmdbd ----------------------------------------------------------------
start_daemon slurmdbd slurmdbd /usr/sbin/slurmdbd -D
dbd_ok() { timeout 10 sacctmgr -n -P list cluster format=cluster; }
wait_until slurmdbd 60 dbd_ok
if ! timeout 10 sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER_NAME"; then
  timeout 20 sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null || die "sacctmgr add cluster failed"
  log "registered cluster $CLUSTER_NAME"
fi

# slurmctld ---------------------------------------------------------------
start_daemon slurmctld slurmctld /usr/sbin/slurmctld -D
ctld_ok() { timeout 5 scontrol ping | grep -q 'is UP'; }
wait_until slurmctld 60 ctld_ok

# slurmd ------------------------------------------------------------------
start_daemon slurmd slurmd /usr/sbin/slurmd -D -N localhost
node_state() { timeout 5 sinfo -h -N -n localhost -o %T 2>/dev/null | head -n1; }
node_ok() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }
resumed=0
for ((i = 0; i < 600; i++)); do
  node_ok && break
  [[ -e $STATE_DIR/slurmd.pid ]] && ! daemon_alive slurmd slurmd && die "slurmd exited during start-up"
  # A node left down/drained by an earlier run: resume it once slurmd is up.
  if ((i == 50 && !resumed)) && [[ $(node_state) =~ ^(down|drain) ]]; then
    log "node state '$(node_state)', resuming it"
    timeout 5 scontrol update NodeName=localhost State=RESUME || true
    resumed=1
  fi
  sleep 0.1
done
node_ok || die "node localhost not usable (state '$(node_state)')"

# accounting answers --------------------------------------------------------
wait_until slurmctld 30 timeout 10 sacct -n -X -S now

log "cluster up: node localhost $(node_state), $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
