#!/usr/bin/env python3
"""Writes a deterministic classic pcap (Ethernet, microsecond timestamps) of a realistic mix of
traffic, for bench/monitor-read.sh: `fwgate monitor -r` against `tshark -r` and `tcpdump -r`.

    python3 bench/monitor/make_pcap.py --out FILE [--bytes N] [--seed S]

The mix (conversations interleaved, up to 48 open at a time, fixed seed):
  - TCP bulk transfers over IPv4 (and some over IPv6): SYN, SYN-ACK, ACK with the usual Linux
    options (MSS, SACK permitted, timestamps, window scale), a small request, then segments of
    1448 bytes of payload (1428 over IPv6; 12 bytes of timestamp option) with the receiver
    ACKing every second segment, then FIN/ACK from each side.
  - TCP request/response conversations: a handful of small segments each way, then FIN/ACK.
  - Refused connections: SYN answered by RST/ACK.
  - DNS over UDP: a valid query (A or AAAA) and its answer (1-4 records, or NXDOMAIN).
  - ICMP echo request/reply (ping: 56 bytes of data), and a few port-unreachable errors quoting
    the UDP datagram that caused them.
  - Hosts: 600 IPv4 and 120 IPv6 clients, 2,000 IPv4 and 300 IPv6 servers, some busier than
    others; one MAC address per client.
  - About 1 client in 10 is on an 802.1Q-tagged VLAN (100-139): its frames carry the tag; about
    1 in 8 TCP and DNS conversations runs over IPv6.
Lengths are right everywhere (IP total/payload length, UDP length, DNS counts). UDP and ICMP
checksums are right (tshark checks those by default, and a zero UDP checksum is illegal over
IPv6); IPv4 header and TCP checksums are zero (neither tshark nor tcpdump checks them by
default). Frames shorter than 60 bytes sent by the far side are padded to 60, as on a real wire.
The file stops before the frame that would take it over --bytes. Prints one JSON line:
{"frames": N, "bytes": M, ...} and writes the same line to FILE.meta.
"""

import argparse
import json
import os
import random
import struct
import sys
import time

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10

MAX_OPEN = 48  # conversations open at a time
START_SECONDS = 1_700_000_000  # 2023-11-14 22:13:20 UTC

_ip4 = struct.Struct("!BBHHHBBH4s4s")  # 20-byte IPv4 header
_ip6 = struct.Struct("!IHBB16s16s")  # 40-byte IPv6 header
_tcp = struct.Struct("!HHIIBBHHH")  # 20-byte TCP header, no options
_udp = struct.Struct("!HHHH")
_rec = struct.Struct("<IIII")  # pcap record header
_ts_opt = struct.Struct("!BBBBII")  # NOP NOP TS(8,10) tsval tsecr: 12 bytes


class Ctx:
    """What every conversation shares: the random source and a block of payload bytes."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        # 64 KiB of fixed pseudo-random bytes: payload is a slice of it at a varying offset.
        self.blob = bytes(self.rng.getrandbits(8) for _ in range(65536)) * 2
        self.mv = memoryview(self.blob)
        self.ip_id = 1
        # Host populations: a few hundred clients on the inside, a few thousand servers outside
        # (a fresh random address per conversation would be unrealistic, and tcpdump's address
        # cache, hash chains that only grow, slows down with every new address).
        rng = self.rng
        self.clients4 = [bytes([10, 1 + i // 200, (i % 200) // 100, 10 + i % 100])
                         for i in range(600)]
        self.clients6 = [bytes.fromhex("20010db8000a0001") + rng.getrandbits(64).to_bytes(8, "big")
                         for _ in range(120)]
        prefixes = ([203, 0, 113], [198, 51, 100], [192, 0, 2], [100, 64, 7], [172, 20, 9],
                    [172, 20, 10], [172, 20, 11], [172, 20, 12])
        self.servers4 = [bytes(prefixes[i // 250] + [1 + i % 250]) for i in range(2000)]
        rng.shuffle(self.servers4)
        self.servers6 = [bytes.fromhex("20010db8ffff0000") + (1 + i).to_bytes(8, "big")
                         for i in range(300)]
        # About 1 client in 10 sits on a tagged VLAN (its own, 100-139).
        self.vlan = {c: 100 + i % 40
                     for i, c in enumerate(self.clients4 + self.clients6) if i % 10 == 3}
        self.names = [
            self._qname(f"{word}{i}.{zone}")
            for i, (word, zone) in enumerate(
                (w, z)
                for w in ("www", "api", "cdn", "mail", "login", "update", "static", "img")
                for z in ("example.com", "example.net", "example.org", "corp.example")
            )
        ]

    @staticmethod
    def _qname(name):
        out = b""
        for label in name.split("."):
            out += bytes([len(label)]) + label.encode()
        return out + b"\x00"

    def payload(self, n):
        off = self.rng.randrange(0, 65536)
        return self.mv[off:off + n]

    def next_id(self):
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        return self.ip_id


class Endpoints:
    """Link and network headers for one conversation, both directions."""

    def __init__(self, ctx, v6, client, server, proto):
        self.ctx = ctx
        self.v6 = v6
        self.proto = proto
        mac_c = bytes([0x02, 0x00, 0x5E]) + client[-3:]  # one MAC per client host
        mac_gw = bytes([0x00, 0x1B, 0x21, 0x3A, 0x4F, 0x01])
        ethertype = ETH_IPV6 if v6 else ETH_IPV4
        vlan = ctx.vlan.get(client, 0)
        if vlan:
            tag = struct.pack("!HH", ETH_VLAN, vlan) + struct.pack("!H", ethertype)
        else:
            tag = struct.pack("!H", ethertype)
        self.link = (mac_gw + mac_c + tag, mac_c + mac_gw + tag)  # (client->server, server->client)
        self.addr = (client, server)

    def ip(self, direction, l4len):
        """IP header for direction 0 (client to server) or 1 (back) carrying l4len bytes."""
        src = self.addr[direction]
        dst = self.addr[1 - direction]
        if self.v6:
            return self.link[direction] + _ip6.pack(0x60000000, l4len, self.proto, 64, src, dst)
        ttl = 64 if direction == 0 else 54
        return self.link[direction] + _ip4.pack(
            0x45, 0, 20 + l4len, self.ctx.next_id(), 0x4000, ttl, self.proto, 0, src, dst)


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_datagram(ep, direction, sport, dport, data):
    """Link + IP + UDP header with its checksum (pseudo-header included) + data."""
    n = 8 + len(data)
    src, dst = ep.addr[direction], ep.addr[1 - direction]
    if ep.v6:
        pseudo = src + dst + struct.pack("!IxxxB", n, 17)
    else:
        pseudo = src + dst + struct.pack("!xBH", 17, n)
    csum = checksum(pseudo + _udp.pack(sport, dport, n, 0) + bytes(data)) or 0xFFFF
    return ep.ip(direction, n) + _udp.pack(sport, dport, n, csum) + data


def icmp_message(ep, direction, head, data):
    """Link + IP + ICMP message; head is the 8-byte ICMP header with a zero checksum."""
    csum = checksum(head + bytes(data))
    return (ep.ip(direction, len(head) + len(data)) + head[:2] + struct.pack("!H", csum)
            + head[4:] + data)


def pad(frame, direction):
    # The far side's short frames arrive padded to the Ethernet minimum (60 bytes before FCS).
    if direction == 1 and len(frame) < 60:
        return frame + b"\x00" * (60 - len(frame))
    return frame


def pick(ctx, pool):
    """A host from a pool, skewed: the first hosts of the pool are the busiest, as on a real LAN."""
    return pool[int(len(pool) * ctx.rng.random() ** 2)]


def client4(ctx):
    return pick(ctx, ctx.clients4)


def server4(ctx):
    return pick(ctx, ctx.servers4)


def client6(ctx):
    return pick(ctx, ctx.clients6)


def server6(ctx):
    return pick(ctx, ctx.servers6)


# ------------------------------------------------------------------------------------------ TCP

class Tcp:
    """One TCP connection: keeps sequence numbers, ACKs and timestamps right in both directions."""

    def __init__(self, ctx, v6):
        rng = ctx.rng
        self.ctx = ctx
        if v6:
            ends = (client6(ctx), server6(ctx))
        else:
            ends = (client4(ctx), server4(ctx))
        self.ep = Endpoints(ctx, v6, ends[0], ends[1], 6)
        self.port = (rng.randrange(32768, 61000),
                     rng.choice((443, 443, 443, 443, 22, 8443, 993, 5001)))
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.win = (rng.choice((501, 502, 1002, 64240 >> 7)), rng.choice((235, 509, 1024)))
        self.tsval = [rng.getrandbits(31), rng.getrandbits(31)]
        self.mss = 1428 if v6 else 1448

    def syn_options(self, d):
        # MSS, SACK permitted, timestamps, NOP, window scale 7: 20 bytes, as Linux sends them.
        mss = 1440 if self.ep.v6 else 1460
        return (struct.pack("!BBH", 2, 4, mss) + b"\x04\x02"
                + struct.pack("!BBII", 8, 10, self.tsval[d], self.tsval[1 - d] if d else 0)
                + b"\x01\x03\x03\x07")

    def segment(self, d, flags, payload=b"", syn=False):
        """A frame from direction d; advances that direction's sequence number."""
        self.tsval[d] = (self.tsval[d] + 3) & 0xFFFFFFFF
        if syn:
            opts = self.syn_options(d)
            win = 64240 if not self.ep.v6 else 64800
        elif flags & RST:
            opts = b""  # Linux sends a bare RST
            win = 0
        else:
            opts = _ts_opt.pack(1, 1, 8, 10, self.tsval[d], self.tsval[1 - d])
            win = self.win[d]
        ack = self.seq[1 - d] if flags & ACK else 0
        hdr = _tcp.pack(self.port[d], self.port[1 - d], self.seq[d], ack,
                        (5 + len(opts) // 4) << 4, flags, win, 0, 0)
        n = len(payload)
        l4len = 20 + len(opts) + n
        frame = b"".join((self.ep.ip(d, l4len), hdr, opts, payload))
        self.seq[d] = (self.seq[d] + n + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        return pad(frame, d)

    def handshake(self):
        yield self.segment(0, SYN, syn=True)
        yield self.segment(1, SYN | ACK, syn=True)
        yield self.segment(0, ACK)

    def close(self, closer):
        other = 1 - closer
        yield self.segment(closer, FIN | ACK)
        yield self.segment(other, FIN | ACK)
        yield self.segment(closer, ACK)


def tcp_bulk(ctx, v6):
    rng = ctx.rng
    c = Tcp(ctx, v6)
    yield from c.handshake()
    yield c.segment(0, PSH | ACK, ctx.payload(rng.randrange(200, 600)))
    yield c.segment(1, ACK)
    # The transfer: full-size segments, the receiver ACKs every second one; the last one is
    # short and pushed.
    segments = rng.randrange(20, 900)
    for i in range(1, segments + 1):
        if i < segments:
            yield c.segment(1, ACK, ctx.payload(c.mss))
        else:
            yield c.segment(1, PSH | ACK, ctx.payload(rng.randrange(1, c.mss)))
        if i % 2 == 0 or i == segments:
            yield c.segment(0, ACK)
    yield from c.close(rng.randrange(2))


def tcp_request_response(ctx, v6):
    rng = ctx.rng
    c = Tcp(ctx, v6)
    yield from c.handshake()
    for _ in range(rng.randrange(1, 8)):
        yield c.segment(0, PSH | ACK, ctx.payload(rng.randrange(40, 700)))
        yield c.segment(1, PSH | ACK, ctx.payload(rng.randrange(20, 1200)))
        yield c.segment(0, ACK)
    yield from c.close(rng.randrange(2))


def tcp_refused(ctx, v6):
    c = Tcp(ctx, v6)
    yield c.segment(0, SYN, syn=True)
    c.seq[1] = 0
    yield c.segment(1, RST | ACK)


# ------------------------------------------------------------------------------- UDP and ICMP

RESOLVERS4 = (bytes([10, 0, 0, 53]), bytes([192, 0, 2, 53]))
RESOLVERS6 = (bytes.fromhex("20010db8000000000000000000000053"),)


def dns(ctx, v6):
    rng = ctx.rng
    if v6:
        ep = Endpoints(ctx, True, client6(ctx), rng.choice(RESOLVERS6), 17)
    else:
        ep = Endpoints(ctx, False, client4(ctx), rng.choice(RESOLVERS4), 17)
    sport = rng.randrange(1024, 65536)
    qid = rng.randrange(65536)
    qname = rng.choice(ctx.names)
    aaaa = rng.random() < 0.3
    qtype = 28 if aaaa else 1
    question = qname + struct.pack("!HH", qtype, 1)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
    yield udp_datagram(ep, 0, sport, 53, query)
    if rng.random() < 0.08:
        answers, rcode = [], 3  # NXDOMAIN
    else:
        rcode = 0
        answers = []
        for _ in range(rng.randrange(1, 5)):
            rdata = rng.getrandbits(128).to_bytes(16, "big") if aaaa else bytes(
                [198, 18, rng.randrange(256), rng.randrange(1, 255)])
            answers.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, rng.randrange(30, 3600),
                                       len(rdata)) + rdata)
    reply = (struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0) + question
             + b"".join(answers))
    yield pad(udp_datagram(ep, 1, 53, sport, reply), 1)


PING_DATA = bytes(range(16, 64))  # ping's pattern after the 8-byte timestamp


def icmp_echo(ctx):
    rng = ctx.rng
    ep = Endpoints(ctx, False, client4(ctx), server4(ctx), 1)
    ident = rng.randrange(65536)
    for seq in range(1, rng.randrange(2, 9)):
        data = struct.pack("<II", rng.getrandbits(32), rng.getrandbits(32)) + PING_DATA
        yield icmp_message(ep, 0, struct.pack("!BBHHH", 8, 0, 0, ident, seq), data)
        yield icmp_message(ep, 1, struct.pack("!BBHHH", 0, 0, 0, ident, seq), data)


def port_unreachable(ctx):
    """A UDP datagram to a closed port and the ICMP error quoting it (all of it, as Linux does
    for a small datagram)."""
    rng = ctx.rng
    ep = Endpoints(ctx, False, client4(ctx), server4(ctx), 17)
    sport = rng.randrange(32768, 61000)
    dport = rng.choice((33434, 33435, 161, 514, 7, 12345))
    data = bytes(ctx.payload(rng.randrange(12, 100)))
    frame = udp_datagram(ep, 0, sport, dport, data)
    yield frame
    original = frame[len(ep.link[0]):]  # the IP datagram, without the link header
    err = Endpoints(ctx, False, ep.addr[0], ep.addr[1], 1)
    yield pad(icmp_message(err, 1, struct.pack("!BBHI", 3, 3, 0, 0), original), 1)


# ----------------------------------------------------------------------------------- the mix

def new_conversation(ctx):
    rng = ctx.rng
    r = rng.random()
    v6 = rng.random() < 0.125
    if r < 0.08:
        return tcp_bulk(ctx, v6)
    if r < 0.38:
        return tcp_request_response(ctx, v6)
    if r < 0.42:
        return tcp_refused(ctx, v6)
    if r < 0.87:
        return dns(ctx, v6)
    if r < 0.97:
        return icmp_echo(ctx)
    return port_unreachable(ctx)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--bytes", type=int, default=10**9, help="file size limit (default 10^9)")
    ap.add_argument("--seed", type=int, default=20240521)
    args = ap.parse_args()

    started = time.monotonic()
    ctx = Ctx(args.seed)
    rng = ctx.rng
    tmp = args.out + ".partial"
    frames = 0
    size = 24
    usec = 0
    open_convs = [new_conversation(ctx) for _ in range(MAX_OPEN)]
    chunks = []
    pending = 0
    rec = _rec.pack
    rand = rng.random
    with open(tmp, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))  # LINKTYPE_ETHERNET
        while True:
            i = int(rand() * MAX_OPEN)
            frame = next(open_convs[i], None)
            if frame is None:
                open_convs[i] = new_conversation(ctx)
                continue
            n = len(frame)
            if size + 16 + n > args.bytes:
                break
            usec += 3 + int(rand() * 40)
            chunks.append(rec(START_SECONDS + usec // 1_000_000, usec % 1_000_000, n, n))
            chunks.append(frame)
            size += 16 + n
            frames += 1
            pending += n
            if pending > (4 << 20):
                f.write(b"".join(chunks))
                chunks.clear()
                pending = 0
        f.write(b"".join(chunks))
    os.replace(tmp, args.out)
    meta = {"frames": frames, "bytes": size, "seed": args.seed,
            "capture_seconds": round(usec / 1e6, 3),
            "generated_in_s": round(time.monotonic() - started, 1)}
    line = json.dumps(meta)
    with open(args.out + ".meta", "w") as f:
        f.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
