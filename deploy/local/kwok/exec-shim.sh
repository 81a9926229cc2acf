#!/bin/bash
# Stands in for /bin/sh in kwok's private mount namespace (localcluster/kwok.py), so an exec into a
# fake pod never runs a real shell on the host: `kill -s TERM 1` would reach the host's PID 1.
# It records the request and exits 0, as a `kill` that worked would; the scale benchmark then plays
# the kubelet and ends the sidecar with the code the request implies.
printf '%s %s %s\n' "$EPOCHREALTIME" "${TANDEM_KWOK_SLOT:--}" "$*" >>"$TANDEM_KWOK_EXECS"
