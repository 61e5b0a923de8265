#!/usr/bin/env python3
"""A long-lived TLS client for the tests, using Python's ssl module (OpenSSL underneath).

usage: tls_client.py CA_FILE CERT KEY   (OPENSSL_CONF decides which providers are active)

The context is built once (load_cert_chain(CERT, KEY)); then each line on stdin is a
command:  "connect PORT [tls1_2|tls1_3]"  -> prints "ok PROTOCOL CN" or "error MESSAGE"
          "quit"
The server is `openssl s_server -www`, whose status page names the client certificate."""

import re
import socket
import ssl
import sys


def handshake(ctx, port, version):
    if version == "tls1_2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "tls1_3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.minimum_version, ctx.maximum_version = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.MAXIMUM_SUPPORTED
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            page = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                page += chunk
            text = page.decode("utf-8", "replace")
            m = re.search(r"Subject: CN=([^\s]+)", text)
            return f"ok {tls.version()} {m.group(1) if m else '(no client certificate on the server page)'}"


def main():
    ca_file, cert, key = sys.argv[1:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca_file)
    ctx.load_cert_chain(cert, key)
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        try:
            print(handshake(ctx, int(words[1]), words[2] if len(words) > 2 else ""), flush=True)
        except (OSError, ssl.SSLError) as e:
            print("error " + " ".join(str(e).split()), flush=True)


if __name__ == "__main__":
    main()
