#!/usr/bin/env python3
"""A stand-in director that checks the LVS labs and the tests' own checks without ironvs.

Opens one interface with an AF_PACKET socket, answers ARP for the VIP and the director address with
the interface's MAC, and sends each new TCP connection to VIP:PORT to the next real server (round
robin), in DR (destination MAC rewritten) or TUN (IPv4-in-IPv4 from the director address, inner
TTL - 1) mode. Test-only: IPv4, TCP, no expiry, one thread.

usage: standin_director.py --iface d0 --addr 192.0.2.1 --vip 192.0.2.100 --port 80 --mode dr|tun
                           RS_IP=RS_MAC [RS_IP=RS_MAC ...]
Prints "ready" once listening and "conn CLIENT:PORT -> RS_IP" for every new connection.
"""

import argparse
import socket
import struct

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def with_checksum(hdr):
    hdr = bytearray(hdr)
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
    return bytes(hdr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iface", required=True)
    p.add_argument("--addr", required=True)
    p.add_argument("--vip", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=("dr", "tun"), required=True)
    p.add_argument("rs", nargs="+")
    a = p.parse_args()
    servers = []
    for r in a.rs:
        ip, mac = r.split("=")
        servers.append((socket.inet_aton(ip), bytes.fromhex(mac.replace(":", ""))))
    vip, me = socket.inet_aton(a.vip), socket.inet_aton(a.addr)

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.iface, 0))
    mac = s.getsockname()[4]
    conns = {}
    nxt = 0
    print("ready", flush=True)
    while True:
        f, addr = s.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING or len(f) < 42:
            continue
        etype = f[12:14]
        if etype == b"\x08\x06" and f[20:22] == b"\x00\x01" and f[38:42] in (vip, me):
            # ARP request for one of ours: reply with our MAC.
            sha, spa, tpa = f[22:28], f[28:32], f[38:42]
            arp = b"\x00\x01\x08\x00\x06\x04\x00\x02" + mac + tpa + sha + spa
            s.send(sha + mac + b"\x08\x06" + arp)
            continue
        if etype != b"\x08\x00" or f[23] != 6 or f[30:34] != vip:
            continue
        ihl = (f[14] & 0x0F) * 4
        total = struct.unpack("!H", f[16:18])[0]
        l4 = 14 + ihl
        sport, dport = struct.unpack("!HH", f[l4:l4 + 4])
        if dport != a.port:
            continue
        key = (f[26:30], sport)
        if key not in conns:
            if not f[l4 + 13] & 0x02:  # not a SYN: no connection to follow
                continue
            conns[key] = servers[nxt % len(servers)]
            nxt += 1
            print("conn %s:%d -> %s" % (socket.inet_ntoa(key[0]), sport,
                                        socket.inet_ntoa(conns[key][0])), flush=True)
        rip, rmac = conns[key]
        if a.mode == "dr":
            s.send(rmac + mac + f[12:])
            continue
        inner = bytearray(f[14:14 + total])
        inner[8] -= 1
        inner = with_checksum(inner[:ihl]) + bytes(inner[ihl:])
        outer = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(inner), 0, 0x4000, 64, 4, 0, me, rip)
        s.send(rmac + mac + b"\x08\x00" + with_checksum(outer) + inner)


if __name__ == "__main__":
    main()
