#!/bin/sh
# A certmonger-style CA helper for the PKCS#11 module tests: signs the CSR with an
# intermediate CA and prints the certificate followed by the intermediate (the chain), so
# the identity's chain.pem is not empty. $P11_CA_DIR holds inter.crt and inter.key.
D="$P11_CA_DIR"
csr="$D/req-$$.csr"
ext="$D/ext-$$.cnf"
printf '%s\n' "$CERTMONGER_CSR" > "$csr"
{
  echo "basicConstraints=critical,CA:FALSE"
  echo "keyUsage=critical,digitalSignature"
  echo "extendedKeyUsage=clientAuth"
  [ -n "$CERTMONGER_REQ_HOSTNAME" ] && echo "subjectAltName=DNS:$CERTMONGER_REQ_HOSTNAME"
} > "$ext"
openssl x509 -req -in "$csr" -CA "$D/inter.crt" -CAkey "$D/inter.key" -CAcreateserial -days 2 \
  -extfile "$ext" 2>>"$D/helper.err" || { echo "signing failed"; exit 2; }
cat "$D/inter.crt"
rm -f "$csr" "$ext"
exit 0
