#!/bin/sh
# Runs as keyward-e2e.service inside a container booted with systemd (tests/boot/test_boot.py):
# the packaged layout under a real PID 1. Every check prints "CHECK name: value" for the test.
exec > /e2e/result.txt 2>&1
set -x
check() { name=$1; shift; printf 'CHECK %s: %s\n' "$name" "$("$@" 2>&1 | tr '\n' ' ' | sed 's/ *$//')"; }
sock=/run/keyward/agent.sock
ldconfig
systemd-sysusers /e2e/users.conf
check keyward-user id keyward
systemctl daemon-reload
systemctl start keywardd.socket
check socket-active systemctl is-active keywardd.socket
check socket-perms stat -c '%A %U %G' $sock
# The first client starts the service (socket activation) and is served, not refused.
check alice-status setpriv --reuid=alice --regid=alice --init-groups -- keyward --socket $sock status --json
check service-active systemctl is-active keywardd.service
pid=$(systemctl show -p MainPID --value keywardd.service)
check service-user ps -o user=,group=,supgrp= -p "$pid"
check service-dumpable sh -c "grep -E '^(CapEff|NoNewPrivs)' /proc/$pid/status | tr -s '\t ' ' '"
check service-core sh -c "grep 'Max core file size' /proc/$pid/limits | tr -s ' '"
check key-create keyward --socket $sock keys create web --type ec-p256
echo hello > /tmp/msg
setpriv --reuid=alice --regid=alice --init-groups -- keyward --socket $sock sign web --scheme ecdsa_secp256r1_sha256 --in /tmp/msg --out /tmp/sig
keyward --socket $sock keys pubkey web --out /tmp/web.pub
check alice-signature openssl dgst -sha256 -verify /tmp/web.pub -signature /tmp/sig /tmp/msg
check alice-uid id -u alice
check journal-fields sh -c "journalctl -u keywardd KEYWARD_AUDIT_OP=sign -o verbose --no-pager | grep -E '^ *KEYWARD_(KEY|UID|RESULT)=' | sort -u"
check bob-refused sh -c "setpriv --reuid=bob --regid=bob --init-groups -- keyward --socket $sock status; echo rc=\$?"
systemctl reload keywardd.service
check reload-active systemctl is-active keywardd.service
check reload-same-pid systemctl show -p MainPID --value keywardd.service
check after-reload-sign sh -c "setpriv --reuid=alice --regid=alice --init-groups -- keyward --socket $sock sign web --scheme ecdsa_secp256r1_sha256 --in /tmp/msg --out /dev/null; echo rc=\$?"
check notify-status systemctl show -p StatusText --value keywardd.service
systemctl stop keywardd.service keywardd.socket
check stopped systemctl is-active keywardd.service
timeout 10 journalctl -u keywardd --no-pager -o cat
echo E2E-DONE
