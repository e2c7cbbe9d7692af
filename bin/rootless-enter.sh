# Sourced by bin/tsrun.js's shell line for an unprivileged user (never run on its own): when the
# user's rootless namespace is already up and the command surely runs inside it, exec Node there
# directly through nsenter, so the command costs one Node start instead of two (the Node CLI's
# own door, src/rootless/enter.ts, starts a second Node under nsenter because a multi-threaded
# process cannot join a user namespace). Anything this does not recognise returns to the
# caller, which starts Node as before and lets enter.ts decide: that path stays the reference,
# and this one only takes the common case of it, conservatively.
#
# Taken only when: TSRUN_ROOTLESS is unset; the first word after tsrun's global options
# (--root DIR, --config DIR, --debug) is a verb that runs in the namespace (not help, version,
# info, system, login, logout; a group such as `container` goes to Node too; nor build and
# builder: a SIGKILLed build CLI must stop its build, which the second Node notices, see
# src/rootless/parent.ts); no --help, -h,
# --version or -v anywhere (Node's parser tells a container's `-h` from tsrun's, this does not);
# the run base (userRunBase: $XDG_RUNTIME_DIR/tsrun, else /tmp/tsrun-UID) is a directory of the
# user's own, not a symlink; and its pause.pid names a live (not zombie) `sleep` of this user
# with a user namespace mapping (namespace.ts isPause). Then, as enter.ts does: TSRUN_ROOTLESS=UID,
# TSRUN_CWD=the physical working directory, --preserve-credentials where setgroups is denied.
# $1.. are tsrun's arguments; $tsrun_entry is bin/tsrun.js's real path (set by the caller).

tsrun_fast() {
  [ -z "${TSRUN_ROOTLESS-}" ] || return 1
  tsrun_verb=
  tsrun_skip=
  for tsrun_a in "$@"; do
    if [ -n "$tsrun_skip" ]; then tsrun_skip=; continue; fi
    case "$tsrun_a" in
      --help | -h | --version | -v) return 1 ;;
    esac
    if [ -z "$tsrun_verb" ]; then
      case "$tsrun_a" in
        --root | --config) tsrun_skip=1 ;;
        --root=* | --config=* | --debug) ;;
        -*) return 1 ;;
        run | create | start | stop | restart | kill | rm | ps | logs | wait | cp | port | exec | attach | \
          pull | push | images | inspect | tag | history | rmi | save | load | \
          export | import | commit | diff | pause | unpause | rename | top | stats | update | events | unshare)
          tsrun_verb=$tsrun_a ;;
        *) return 1 ;;
      esac
    fi
  done
  [ -n "$tsrun_verb" ] || return 1
  tsrun_uid=
  while read -r tsrun_k tsrun_v tsrun_rest; do
    if [ "$tsrun_k" = Uid: ]; then tsrun_uid=$tsrun_v; break; fi
  done </proc/self/status
  [ -n "$tsrun_uid" ] && [ "$tsrun_uid" != 0 ] || return 1
  if [ -n "${XDG_RUNTIME_DIR-}" ]; then tsrun_base=$XDG_RUNTIME_DIR/tsrun; else tsrun_base=/tmp/tsrun-$tsrun_uid; fi
  [ -d "$tsrun_base" ] && [ ! -L "$tsrun_base" ] && [ -O "$tsrun_base" ] || return 1
  read -r tsrun_pid 2>/dev/null <"$tsrun_base/pause.pid" || return 1
  case "$tsrun_pid" in '' | *[!0-9]*) return 1 ;; esac
  read -r tsrun_comm 2>/dev/null <"/proc/$tsrun_pid/comm" || return 1
  [ "$tsrun_comm" = sleep ] && [ -O "/proc/$tsrun_pid" ] || return 1
  # Alive, not a zombie (a killed pause not yet reaped keeps its name, owner and maps).
  tsrun_state=
  while read -r tsrun_k tsrun_v tsrun_rest; do
    if [ "$tsrun_k" = State: ]; then tsrun_state=$tsrun_v; break; fi
  done 2>/dev/null <"/proc/$tsrun_pid/status" || return 1
  case "$tsrun_state" in S | R | D | I) ;; *) return 1 ;; esac
  read -r tsrun_map 2>/dev/null <"/proc/$tsrun_pid/uid_map" || return 1
  [ -n "$tsrun_map" ] || return 1
  tsrun_keep=
  read -r tsrun_sg 2>/dev/null <"/proc/$tsrun_pid/setgroups" && [ "$tsrun_sg" = deny ] && tsrun_keep=--preserve-credentials
  tsrun_nsenter=$(command -v nsenter) || return 1
  TSRUN_CWD=$(pwd -P) || return 1
  TSRUN_ROOTLESS=$tsrun_uid
  export TSRUN_CWD TSRUN_ROOTLESS
  exec "$tsrun_nsenter" --user --mount $tsrun_keep --target "$tsrun_pid" -- node -- "$tsrun_entry" "$@"
}
tsrun_fast "$@"
