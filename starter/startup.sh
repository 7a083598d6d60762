#!/bin/sh
# aplspawn script mode: PID 1 of a container started with cntCommon.startupScript (see
# docs/spawn.md). Works with the default Debian image. aplspawn has already provisioned the
# container (user, SSH key, host keys, resolver) and sets its IP from the host, so all this script
# does is load the original's variables, run sshd and stay PID 1 until it is told to stop.
#
# Environment from aplspawn (systemd-nspawn --setenv): ipaddress, cName.
# Variables file (cntCommon.variablesFile, beside this script): userName, userGroup, dnsAddress,
# netPrefix, defGateway, sshPublicKeyPath.

here=$(dirname "$0")
if [ -r "$here/variables.sh" ]; then
    . "$here/variables.sh"
fi
echo "startup.sh: container ${cName:-?} (${ipaddress:-?}) starting sshd"

# Privilege separation directory (the image's tmpfiles.d would make it under systemd).
mkdir -p /run/sshd
chmod 0755 /run/sshd
# Host keys come from aplspawn's provisioning; generate any missing type as a fallback only.
ssh-keygen -A >/dev/null 2>&1 || true

/usr/sbin/sshd -D -e &
sshd_pid=$!

# As PID 1 this shell only receives signals it has a handler for: systemd-nspawn forwards SIGTERM
# (--kill-signal=SIGTERM) when aplspawn stops the container.
stop() {
    echo "startup.sh: stopping"
    kill -TERM "$sshd_pid" 2>/dev/null
    wait "$sshd_pid" 2>/dev/null
    exit 0
}
trap stop TERM INT HUP

# Stay PID 1 (and reap orphans) for as long as sshd runs.
while kill -0 "$sshd_pid" 2>/dev/null; do
    wait "$sshd_pid"
done
echo "startup.sh: sshd exited"
exit 1
