#!/bin/sh
# Installs the built .debs into a throw-away copy of this machine (an overlay over / in a
# private mount namespace: nothing on the host changes), then boots that copy with
# systemd-nspawn and checks the packaged agent: user made by sysusers, socket enabled and
# started by the postinst's policy, a member of group keyward signs.
#   install_and_boot.sh WORKDIR DEB...     (run as root; prints "CHECK name: value" lines)
set -eu
work=$1; shift
mkdir -p "$work/upper" "$work/work" "$work/root" "$work/debs"
cp "$@" "$work/debs/"
exec unshare --mount --propagation private sh -eu -c '
work=$1
mount -t tmpfs -o mode=0755 keyward-deb "$work/upper"
mkdir -p "$work/upper/u" "$work/upper/w"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper/u,workdir=$work/upper/w" "$work/root"
root=$work/root
for d in proc sys dev; do mount --rbind /$d "$root/$d"; done
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mkdir -p "$root/debs" && mount --bind "$work/debs" "$root/debs"
check() { name=$1; shift; printf "CHECK %s: %s\n" "$name" "$("$@" 2>&1 | tr "\n" " " | sed "s/ *\$//")"; }
check dpkg-install chroot "$root" sh -c "dpkg -i /debs/*.deb >/tmp/dpkg.log 2>&1; echo rc=\$?; tail -5 /tmp/dpkg.log"
check user chroot "$root" getent passwd keyward
check groups chroot "$root" id -nG keyward
check socket-enabled chroot "$root" sh -c "systemctl is-enabled keywardd.socket"
check service-enabled chroot "$root" sh -c "systemctl is-enabled keywardd.service"
check provider chroot "$root" sh -c "ls /usr/lib/*/ossl-modules/keyward.so"
check man chroot "$root" sh -c "man -w keywardd keyward keyward.toml | tr \"\n\" \" \""
umount "$root/debs" "$root/tmp" "$root/run"
for d in proc sys dev; do umount -R "$root/$d"; done
# Boot the installed copy: the enabled socket must come up by itself.
cat > "$root/etc/systemd/system/keyward-deb-check.service" <<UNIT
[Unit]
Wants=sockets.target
After=sockets.target keywardd.socket
[Service]
Type=oneshot
ExecStart=/bin/sh -c "exec > /result.txt 2>&1; \
  echo CHECK boot-socket: \$(systemctl is-active keywardd.socket); \
  systemd-sysusers; useradd -G keyward alice; \
  keyward keys create deb-key --type ec-p256 >/dev/null; echo hi > /tmp/m; \
  setpriv --reuid=alice --regid=alice --init-groups -- keyward sign deb-key --scheme ecdsa_secp256r1_sha256 --in /tmp/m --out /tmp/s; \
  keyward keys pubkey deb-key --out /tmp/p; echo CHECK boot-sign: \$(openssl dgst -sha256 -verify /tmp/p -signature /tmp/s /tmp/m); \
  echo CHECK boot-user: \$(ps -o user= -p \$(systemctl show -p MainPID --value keywardd.service)); echo DEB-DONE"
SuccessAction=poweroff-force
FailureAction=poweroff-force
UNIT
timeout 120 systemd-nspawn --directory="$root" --register=no --keep-unit --quiet --boot -- \
  systemd.unit=keyward-deb-check.service systemd.firstboot=off >"$work/console.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 240 ] && ! grep -q DEB-DONE "$root/result.txt" 2>/dev/null; do sleep 0.5; i=$((i+1)); done
cat "$root/result.txt" 2>/dev/null || { echo "no result from the booted copy"; tail -40 "$work/console.log"; }
kill $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
' _ "$work"
