#!/usr/bin/env bash
# Install prontuario and everything its lab and tests need, on Debian 12 as root.
# Idempotent. Usage: ./install.sh            (Debian packages + /opt/prontuario/venv)
#                    ./install.sh --no-apt   (only the Python side)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${PRONTUARIO_VENV:-/opt/prontuario/venv}
APT_PACKAGES=(
  postgresql-15 postgresql-client-15      # the database Patroni manages
  postgresql-15-pglogical                 # logical decoding the Cloud SQL replica subscribes through
  etcd-server etcd-client                 # 3-member DCS: one per Mac + the witness
  haproxy                                 # write/read frontends routed by Patroni's REST API
  redis-server redis-sentinel             # Redis primary/replica + 3 Sentinels
  prometheus                              # promtool, to check the alert rules
  openssh-server                          # sshd for the SSH-path tests
  rsync                                   # model bytes Mac to Mac (delta transfer over SSH)
  systemd                                 # systemd-analyze checks the units 'serve install' renders
  espeak-ng                               # real speech WAVs for the Whisper server's tests
  iproute2                                # ss: a test reads the inference servers' listen backlog
  sudo                                    # bootstrap as an unprivileged user (sudo -n), as on the Macs
  python3-venv ca-certificates procps
)

say() { printf '%s\n' "install: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  say "run as root (it installs Debian packages and creates $VENV)"; exit 77
fi

if [ "${1:-}" != "--no-apt" ]; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The lab runs its own instances on its own ports; never the distribution's units.
  for unit in postgresql etcd haproxy redis-server redis-sentinel prometheus prometheus-node-exporter; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi

# The venv is built from /usr/bin/python3 in a world-readable place, because Patroni
# runs as the postgres user (a pyenv Python under /root is unreadable to it).
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  mkdir -p "$(dirname "$VENV")"
  /usr/bin/python3 -m venv "$VENV"
fi
chmod 755 "$(dirname "$VENV")" "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1
say "pip install -e $HERE[test,serve]"
"$VENV/bin/python" -m pip install -q -e "$HERE[test,serve]" 2>&1 | grep -vE '^(WARNING: Location|  |$)' >&2 || true
# mlx-whisper declares a CUDA torch (~6 GB) it needs only to convert weights: not installed.
"$VENV/bin/python" -m pip install -q --no-deps "mlx-whisper>=0.4.3" 2>&1 | grep -vE '^(WARNING: Location|  |$)' >&2 || true
"$VENV/bin/python" -c "import prontuario_cli, patroni, psycopg, redis, paramiko, httpx" \
  || { say "the Python environment is incomplete"; exit 1; }
"$VENV/bin/python" -c "import mlx.core, mlx_lm, mlx_whisper, onnxruntime, starlette, uvicorn" \
  || { say "the inference servers' environment (extra 'serve') is incomplete"; exit 1; }
ln -sf "$VENV/bin/prontuario" /usr/local/bin/prontuario
say "done: $("$VENV/bin/prontuario" --version)"
