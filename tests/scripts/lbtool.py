#!/usr/bin/env python3
"""Servers and clients for the IronVS end-to-end tests, run inside lab namespaces.

Every line a tool prints is flushed at once so the test can wait for it in the log:

  http-server  --bind ADDR --port P --name NAME
      answers every GET with "NAME\\n"; prints "listening on ADDR:P" when ready and
      "peer IP:PORT" for every request (the address the real server sees).
  echo-server  --bind ADDR --port P --name NAME
      on each connection prints "peer IP:PORT", sends "hello NAME\\n", then echoes every line.
  echo-client  --host H --port P --count N --interval S --stop-file PATH
      one connection for the whole run: prints "connected NAME", then sends a numbered line every
      S seconds and checks the echo; prints "echoes=K" every 10 echoes; ends with
      "done echoes=K reason=stop" (the stop file appeared) or "reason=count", exit 0; on a reset,
      timeout or wrong echo prints "error ..." and exits 1.
  probe        --host H --port P --count N
      N connections one after the other; for each prints the greeting's NAME or "error ...".
  udp-server   --bind ADDR --port P --name NAME
      prints "listening on ADDR:P" when ready, then for every datagram "datagram IP:PORT PAYLOAD"
      and answers it with "NAME".
  udp-client   --host H --port P --source ADDR:PORT --count N --tag T
      one socket bound to the source for the whole run: sends "T-0" .. "T-(N-1)", one at a
      time, and prints the answer of each ("reply NAME") or "error ..." when none comes in time.

Every network wait has a timeout; nothing loops without a bound.
"""

import argparse
import http.server
import os
import socket
import socketserver
import sys
import threading
import time

TIMEOUT = 2.0


def say(line):
    print(line, flush=True)


def http_server(args):
    body = (args.name + "\n").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            say("peer %s:%d" % self.client_address[:2])
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True

        def server_bind(self):
            # HTTPServer.server_bind resolves its own name (getfqdn), which waits for a DNS
            # timeout in a namespace whose default route leads nowhere: skip it.
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = self.server_address[:2]

    srv = Server((args.bind, args.port), Handler)
    say("listening on %s:%d" % (args.bind, args.port))
    srv.serve_forever()


def echo_server(args):
    greeting = ("hello %s\n" % args.name).encode()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            say("peer %s:%d" % self.client_address[:2])
            self.wfile.write(greeting)
            for line in self.rfile:
                self.wfile.write(line)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    srv = Server((args.bind, args.port), Handler)
    say("listening on %s:%d" % (args.bind, args.port))
    srv.serve_forever()


def read_line(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed by peer")
    return line.decode().rstrip("\n")


def greeting_name(line):
    if not line.startswith("hello "):
        raise ValueError("unexpected greeting %r" % line)
    return line[len("hello "):]


def echo_client(args):
    echoes = 0
    try:
        s = socket.create_connection((args.host, args.port), timeout=TIMEOUT)
        s.settimeout(TIMEOUT)
        f = s.makefile("rwb", buffering=0)
        say("connected %s" % greeting_name(read_line(f)))
        reason = "count"
        for i in range(args.count):
            if args.stop_file and os.path.exists(args.stop_file):
                reason = "stop"
                break
            msg = "line %d" % i
            f.write((msg + "\n").encode())
            got = read_line(f)
            if got != msg:
                raise ValueError("echo %r for %r" % (got, msg))
            echoes += 1
            if echoes % 10 == 0:
                say("echoes=%d" % echoes)
            time.sleep(args.interval)
        s.close()
        say("done echoes=%d reason=%s" % (echoes, reason))
    except Exception as e:  # reset, timeout, wrong echo: all are failures
        say("error after %d echoes: %s: %s" % (echoes, type(e).__name__, e))
        sys.exit(1)


def probe(args):
    for _ in range(args.count):
        try:
            with socket.create_connection((args.host, args.port), timeout=TIMEOUT) as s:
                s.settimeout(TIMEOUT)
                f = s.makefile("rb")
                say(greeting_name(read_line(f)))
        except Exception as e:
            say("error %s: %s" % (type(e).__name__, e))


def udp_server(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.bind, args.port))
    say("listening on %s:%d" % (args.bind, args.port))
    answer = args.name.encode()
    while True:
        data, peer = s.recvfrom(2048)
        say("datagram %s:%d %s" % (peer[0], peer[1], data.decode(errors="replace")))
        s.sendto(answer, peer)


def udp_client(args):
    addr, port = args.source.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.settimeout(TIMEOUT)
    for i in range(args.count):
        s.sendto(("%s-%d" % (args.tag, i)).encode(), (args.host, args.port))
        try:
            data, _ = s.recvfrom(2048)
            say("reply %s" % data.decode(errors="replace"))
        except Exception as e:
            say("error %s: %s" % (type(e).__name__, e))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("http-server", "echo-server"):
        s = sub.add_parser(name)
        s.add_argument("--bind", required=True)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--name", required=True)
    s = sub.add_parser("echo-client")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--interval", type=float, default=0.05)
    s.add_argument("--stop-file")
    s = sub.add_parser("udp-server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--name", required=True)
    s = sub.add_parser("udp-client")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--source", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--tag", required=True)
    s = sub.add_parser("probe")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    args = p.parse_args()
    {
        "http-server": http_server,
        "echo-server": echo_server,
        "echo-client": echo_client,
        "probe": probe,
        "udp-server": udp_server,
        "udp-client": udp_client,
    }[args.cmd](args)


if __name__ == "__main__":
    main()
