#!/bin/sh
# A certmonger-style CA helper for the monitoring tests: signs the CSR with `openssl ca` for
# $LIFETIME seconds from now (certificates that expire while a test watches), or fails as
# an unreachable CA (exit 3) when $HELPER_DIR/mode says "unreachable".
D="$HELPER_DIR"
mode=$(cat "$D/mode" 2>/dev/null || echo issue)
echo "op=$CERTMONGER_OPERATION mode=$mode" >> "$D/helper.log"
if [ "$mode" = unreachable ]; then echo "connection refused"; exit 3; fi
ca="$D/ca"
mkdir -p "$ca/new"
[ -f "$ca/index.txt" ] || : > "$ca/index.txt"
[ -f "$ca/serial" ] || echo 1000 > "$ca/serial"
cat > "$ca/ca.cnf" <<CNF
[ca]
default_ca = ca_default
[ca_default]
database = $ca/index.txt
new_certs_dir = $ca/new
serial = $ca/serial
policy = any
default_md = sha256
unique_subject = no
[any]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:$CERTMONGER_REQ_HOSTNAME
CNF
csr="$D/req-$$.csr"
printf '%s\n' "$CERTMONGER_CSR" > "$csr"
now=$(date +%s)
start=$(date -u -d "@$((now - 60))" +%Y%m%d%H%M%SZ)
end=$(date -u -d "@$((now + ${LIFETIME:-3600}))" +%Y%m%d%H%M%SZ)
openssl ca -batch -notext -config "$ca/ca.cnf" -extensions ext -cert "$CA_CERT" -keyfile "$CA_KEY" \
  -startdate "$start" -enddate "$end" -in "$csr" -out "$D/out-$$.pem" 2>>"$D/helper.err" \
  || { echo "signing failed"; exit 2; }
cat "$D/out-$$.pem"
exit 0
