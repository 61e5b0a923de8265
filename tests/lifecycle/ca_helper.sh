#!/bin/sh
# A certmonger-style CA helper for the lifecycle tests: a software CA (openssl x509 -req)
# whose behaviour the test chooses by writing one word to $HELPER_DIR/mode:
#   issue          sign the CSR (clientAuth, SAN from CERTMONGER_REQ_HOSTNAME)  -> exit 0
#   reject         exit 2 with a message          unreachable     exit 3
#   underconfigured exit 4                        unsupported     exit 6
#   wait1          SUBMIT: exit 1 + cookie; POLL: issue
#   wait5          SUBMIT: exit 5 + "DELAY\ncookie" (DELAY from $HELPER_DIR/delay, default 1); POLL: issue
#   block          write its pid to blocked.pid, then block reading the fifo
#   garbage        exit 0 with text that is not a certificate
#   hang           write its pid to hang.pid (and start a child), then sleep far beyond any timeout
#   wrongkey       issue for a fresh software key instead of the CSR's key
#   serverauth     issue with serverAuth only     otherca   issue from another CA
#   norevoke       REVOKE: exit 6 (what certmonger helpers answer an unknown operation)
#   (REVOKE otherwise: reject -> exit 2, unreachable -> exit 3, else the serial and reason
#   appended to revoked.log, exit 0)
# Every call is logged to helper.log and its environment saved to helper.env. With OCSP_URL set,
# certificates name that OCSP responder (authorityInfoAccess); with CRL_URL, that CRL.
D="$HELPER_DIR"
mode=$(cat "$D/mode" 2>/dev/null || echo issue)
renew=no
[ -n "$CERTMONGER_CERTIFICATE" ] && renew=yes
echo "op=$CERTMONGER_OPERATION mode=$mode cookie=$CERTMONGER_CA_COOKIE renew=$renew subject=$CERTMONGER_REQ_SUBJECT hostname=$CERTMONGER_REQ_HOSTNAME" >> "$D/helper.log"
env > "$D/helper.env"

# keyward's REVOKE operation (docs/renewal.md): the serial and reason go to revoked.log.
if [ "$CERTMONGER_OPERATION" = REVOKE ]; then
  case "$mode" in
    norevoke) exit 6 ;;
    reject) echo "revocation refused by test CA policy"; exit 2 ;;
    unreachable) echo "connection refused"; exit 3 ;;
  esac
  serial=$(printf '%s\n' "$CERTMONGER_CERTIFICATE" | openssl x509 -noout -serial 2>>"$D/helper.err" | cut -d= -f2)
  [ -n "$serial" ] || { echo "no certificate to revoke"; exit 2; }
  echo "serial=$serial reason=$KEYWARD_REVOKE_REASON code=$KEYWARD_REVOKE_REASON_CODE" >> "$D/revoked.log"
  echo "revoked $serial"
  exit 0
fi

case "$mode" in
  reject) echo "rejected by test CA policy"; exit 2 ;;
  unreachable) echo "connection refused"; exit 3 ;;
  underconfigured) echo "no CA configured here"; exit 4 ;;
  unsupported) exit 6 ;;
  wait1) if [ "$CERTMONGER_OPERATION" = SUBMIT ]; then echo "cookie-$$"; exit 1; fi ;;
  wait5) if [ "$CERTMONGER_OPERATION" = SUBMIT ]; then printf '%s\ncookie-%s\n' "$(cat "$D/delay" 2>/dev/null || echo 1)" $$; exit 5; fi ;;
  block) echo $$ > "$D/blocked.pid"; cat "$D/fifo" > /dev/null ;;
  garbage) echo "this is not a certificate"; exit 0 ;;
  hang) sleep 300 & echo "$$ $!" > "$D/hang.pid"; wait; exit 0 ;;
esac

csr="$D/req-$$.csr"
printf '%s\n' "$CERTMONGER_CSR" > "$csr"
ca_cert="$CA_CERT"
ca_key="$CA_KEY"
eku=clientAuth
case "$mode" in
  serverauth) eku=serverAuth ;;
  otherca) ca_cert="$D/other-ca.crt"; ca_key="$D/other-ca.key" ;;
  wrongkey)
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/wrong.key" \
      -subj "/CN=$CERTMONGER_REQ_HOSTNAME" -out "$csr" 2>>"$D/helper.err" ;;
esac
ext="$D/ext-$$.cnf"
{
  echo "basicConstraints=critical,CA:FALSE"
  echo "keyUsage=critical,digitalSignature"
  echo "extendedKeyUsage=$eku"
  [ -n "$CERTMONGER_REQ_HOSTNAME" ] && echo "subjectAltName=DNS:$CERTMONGER_REQ_HOSTNAME"
  [ -n "$OCSP_URL" ] && echo "authorityInfoAccess=OCSP;URI:$OCSP_URL"
  [ -n "$CRL_URL" ] && echo "crlDistributionPoints=URI:$CRL_URL"
} > "$ext"
openssl x509 -req -in "$csr" -CA "$ca_cert" -CAkey "$ca_key" -CAcreateserial -days "${CERT_DAYS:-2}" \
  -extfile "$ext" 2>>"$D/helper.err" || { echo "signing failed"; exit 2; }
exit 0
