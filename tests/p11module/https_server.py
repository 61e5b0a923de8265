#!/usr/bin/env python3
"""A static HTTPS server for the git test: serves DIR (a bare repository prepared for git's
dumb HTTP protocol) on 127.0.0.1:PORT, requires a client certificate issued by CA, and
appends the subject of every client certificate it accepted to LOG.

    https_server.py DIR PORT CERT KEY CA LOG
"""

import functools
import http.server
import ssl
import sys


def main():
    root, port, cert, key, ca, log = sys.argv[1:7]

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            peer = self.connection.getpeercert()
            subject = dict(x[0] for x in peer.get("subject", ())) if peer else {}
            with open(log, "a") as f:
                f.write(f"GET {self.path} client={subject.get('commonName', '-')}\n")
            super().do_GET()

        def log_message(self, *args):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)),
                                             functools.partial(Handler, directory=root))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
