# shellcheck shell=bash
# The runtime probe and bootstrap call of both steps (action.yml and upload/action.yml), one copy:
# each step's run: sources this file (`. "$GITHUB_ACTION_PATH/scripts/start.sh"`, with `upload` as
# the argument for the upload step), so the exec below replaces the step's own shell as before.
# Arguments: what entrypoint.py gets (none for the token, `upload` for the upload step).
# bootstrap.py is found beside this file, whichever action's folder GITHUB_ACTION_PATH names.
#
# One start per candidate to read its version, with flags any Python accepts (2.7 too) and no
# site-packages; then bootstrap.py runs isolated (-I, -S) on the interpreter that answered, so
# a pyenv or asdf shim is resolved once, not twice. PYTHONEXECUTABLE (from the job's env or
# an earlier step's GITHUB_ENV) would name sys.executable despite -E and -I, so the probe
# would report, and the step exec, a program of its choosing: it goes first.
# Refused with the fix: before 3.9.2 (no cryptography since 44.0 installs on 3.9.0 and 3.9.1),
# Windows arm64 before 3.11 (no cffi wheels there; sys.version names the build's machine),
# and Apple's /usr/bin/python3 stub on a Mac without the Command Line Tools (it prints
# "xcode-select: note: No developer tools were found" or "xcrun: error: invalid active
# developer path" and exits 1). stderr is read for that stub only; the probe's answer is its
# last line.
unset PYTHONEXECUTABLE
here=${BASH_SOURCE[0]%/*}
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
found="" title="" fix=""
for python in python3 python; do
  where=$(command -v "$python" 2>/dev/null) || continue
  if info=$("$python" -E -s -S -c 'import sys; v = tuple(sys.version_info[:3]); why = "too-old" if v < (3, 9) else "3.9.0-3.9.1" if v < (3, 9, 2) else "windows-arm64" if v < (3, 11) and sys.platform == "win32" and "(arm64)" in sys.version.lower() else "ok"; sys.stdout.write("%d.%d.%d %s %s" % (v + (why, sys.executable))); sys.exit(why != "ok")' 2>&1); then
    exe=${info##*$'\n'}
    exe=${exe#* ok }
    if [ "${RUNNER_OS:-}" = Windows ] || [ ! -x "$exe" ]; then exe=$python; fi
    exec "$exe" -I -S "$here/bootstrap.py" "$@"
  fi
  answer=${info##*$'\n'}
  case $answer in
    [0-9]*.[0-9]*.[0-9]*" "*" "*) version=${answer%% *}; why=${answer#* }; why=${why%% *} ;;
    *) version="" why="" ;;
  esac
  case $info in
    *"xcode-select: "*|*"xcrun: error"*) why=xcode ;;
  esac
  case $why in
    xcode) what="Apple's stub, which needs the Xcode Command Line Tools"
      this_title="Xcode Command Line Tools missing"
      this_fix="run \`xcode-select --install\` on the self-hosted Mac, or add actions/setup-python (python-version: 3.12) before this step." ;;
    windows-arm64) what="$version on Windows arm64, which needs Python 3.11 or newer (cffi has no Windows arm64 wheels for 3.9 and 3.10)"
      this_title="Python too old for Windows arm64"
      this_fix="add actions/setup-python (python-version: 3.12) before this step, or install Python 3.11 or newer on the self-hosted runner." ;;
    3.9.0-3.9.1) what="$version, which cryptography no longer supports (since 44.0 it needs 3.9.2 or newer)"
      this_title="Python 3.9.0 and 3.9.1 not supported"
      this_fix="add actions/setup-python (python-version: 3.x) before this step, or upgrade the self-hosted runner's Python to 3.9.2 or newer." ;;
    too-old) what=$version
      this_title="Python too old"
      this_fix="add actions/setup-python (python-version: 3.x) before this step, or upgrade the self-hosted runner's Python to 3.9.2 or newer." ;;
    *) what="not a working Python" this_title="" this_fix="" ;;
  esac
  found="${found:+$found; }$python ($where) is $what"
  if [ -z "$title" ] && [ -n "$this_title" ]; then title=$this_title fix=$this_fix; fi
done
if [ -z "$found" ]; then
  echo "::error title=Python not found::asc-token-action needs Python 3.9.2 or newer as python3 or python on the runner: add actions/setup-python before this step."
else
  echo "::error title=${title:-No working Python}::asc-token-action needs Python 3.9.2 or newer, but $found: ${fix:-add actions/setup-python (python-version: 3.x) before this step.}"
fi
exit 2  # a setting of the runner to fix, nothing sent (the exit status table in docs/troubleshooting.md)
