#!/usr/bin/env bash
# Install the peer tools the benchmarks compare against, each into its own venv under .peers/.
#
# Separate venvs because the peers clash with us and with each other: CredSweeper pins its own
# versions, and LLM Guard depends on bc-detect-secrets, a fork that installs over the
# `detect_secrets` package of detect-secrets itself. bench/detection.py runs each peer through
# bench/peers/<peer>_runner.py with that venv's python. LiteLLM's proxy (an OpenAI-compatible
# gateway, no DLP scanning) is the peer of `dlpproxy gateway` in bench/gateway.py; it needs the
# `proxy` extra, and its version is pinned to the one the bench was checked with.
# Idempotent: .peers/<peer>/.installed marks a finished install (--force redoes them all). A peer
# that fails to install is recorded in .peers/status.json and the others still go ahead.
set -u
cd "$(dirname "$0")/.."

PEERS_DIR=.peers
STATUS=$PEERS_DIR/status.json
LOG=$PEERS_DIR/install.log
PEERS=(detect-secrets credsweeper llm-guard litellm)
# What pip installs for a peer, where that is more than its name.
declare -A SPECS=([litellm]="litellm[proxy]==1.103.6")

export PYENV_VERSION="${PYENV_VERSION:-3.12.1}"
PYTHON="${PEERS_PYTHON:-python3.12}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found; install Python 3.12 (pyenv install 3.12.1) or set PEERS_PYTHON" >&2
    exit 2
fi
mkdir -p "$PEERS_DIR"

install_peer() {
    local peer=$1 venv=$PEERS_DIR/$1
    if [[ "${FORCE:-0}" == 1 ]]; then
        rm -f "$venv/.installed" "$venv/.failed"
    fi
    [[ -f "$venv/.installed" ]] && return 0
    echo "installing $peer into $venv ..."
    { test -x "$venv/bin/python" || "$PYTHON" -m venv "$venv"; } >>"$LOG" 2>&1 || return 1
    "$venv/bin/python" -m pip install -q --upgrade pip >>"$LOG" 2>&1
    if "$venv/bin/python" -m pip install "${SPECS[$peer]:-$peer}" >>"$LOG" 2>&1; then
        rm -f "$venv/.failed"
        touch "$venv/.installed"
    else
        echo "pip install ${SPECS[$peer]:-$peer} failed; see $LOG" >"$venv/.failed"
        echo "  $peer did not install; see $LOG" >&2
    fi
}

[[ "${1:-}" == "--force" ]] && FORCE=1
for peer in "${PEERS[@]}"; do
    install_peer "$peer"
done

{
    echo "{"
    sep=""
    for peer in "${PEERS[@]}"; do
        venv=$PEERS_DIR/$peer
        version=$("$venv/bin/python" -m pip show "$peer" 2>/dev/null | awk '/^Version:/ {print $2}')
        if [[ -f "$venv/.installed" ]]; then outcome="installed"; else outcome="install failed (see $LOG)"; fi
        printf '%s  "%s": {"outcome": "%s", "version": "%s", "python": "%s"}' \
            "$sep" "$peer" "$outcome" "${version:-}" "$venv/bin/python"
        sep=$',\n'
    done
    echo
    echo "}"
} >"$STATUS"
cat "$STATUS"
