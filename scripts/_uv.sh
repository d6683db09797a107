# Sourced by the scripts in this folder: make sure a `uv` is on PATH, installing it from PyPI
# if the machine has none. Needs only Python >= 3.10 and the package index.
_tap_acumatica_find_uv() {
  command -v uv >/dev/null 2>&1 && return 0
  export PATH="$HOME/.local/bin:$PATH"
  command -v uv >/dev/null 2>&1 && return 0
  local py
  py="$(command -v python3 || command -v python || true)"
  if [ -z "$py" ]; then
    echo "error: Python >= 3.10 is needed (python3 not found)" >&2
    return 1
  fi
  echo "uv not found: installing it from PyPI ..." >&2
  # 1) a user install; 2) PEP 668 ("externally managed") Pythons refuse that, so a private venv;
  # 3) last resort for Pythons without the venv module.
  if "$py" -m pip install --user --quiet uv >/dev/null 2>&1 && command -v uv >/dev/null 2>&1; then
    return 0
  fi
  local boot="${XDG_CACHE_HOME:-$HOME/.cache}/tap-acumatica/uv-bootstrap"
  if "$py" -m venv "$boot" >/dev/null 2>&1 && "$boot/bin/python" -m pip install --quiet uv; then
    export PATH="$boot/bin:$PATH"
    return 0
  fi
  "$py" -m pip install --user --quiet --break-system-packages uv
  command -v uv >/dev/null 2>&1
}
_tap_acumatica_find_uv
