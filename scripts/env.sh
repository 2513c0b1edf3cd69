# Sourced by the other scripts: one shared cargo target dir (the session's and CI's clones reuse
# each other's builds: cold burn builds take tens of minutes on 2 cores), tools on PATH.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/graft/target}"
export PATH="$HOME/.cargo/bin:$PWD/tests/node_modules/.bin:$PATH"
