"""Small capture files for the monitor's edge cases, written byte by byte (classic pcap format):
Ethernet, VLAN tags, Linux cooked capture v1/v2, raw IP; IPv4/IPv6; TCP, UDP, ICMP, ARP."""

from __future__ import annotations

import ipaddress
import struct

ETH_SRC = bytes.fromhex("020000000001")
ETH_DST = bytes.fromhex("020000000002")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 1, frag: int = 0,
         ttl: int = 64, options: bytes = b"", total: int | None = None) -> bytes:
    ihl = 5 + len(options) // 4
    length = total if total is not None else ihl * 4 + len(payload)
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident, frag, ttl, proto, 0,
                       ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed) + options
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes, hop_limit: int = 64) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, hop_limit,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) + payload


FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}


def tcp(sport: int, dport: int, seq: int, ack: int, flags: str, window: int, data: bytes = b"") -> bytes:
    bits = sum(FLAGS[f] for f in flags)
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, window, 0, 0) + data


def udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def icmp(type_: int, code: int, rest: int, data: bytes) -> bytes:
    return struct.pack("!BBHI", type_, code, 0, rest) + data


def ether(payload: bytes, ethertype: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    tags = b"".join(struct.pack("!HH", 0x8100, v) for v in vlans)
    return ETH_DST + ETH_SRC + tags + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, protocol: int = 0x0800) -> bytes:
    # packet type 0 (to us), ARPHRD_ETHER, address length 6, address padded to 8, protocol
    return struct.pack("!HHH8sH", 0, 1, 6, ETH_SRC + b"\0\0", protocol) + payload


def sll2(payload: bytes, protocol: int = 0x0800) -> bytes:
    # protocol, reserved, interface index, ARPHRD_ETHER, packet type, address length, address
    return struct.pack("!HHIHBB8s", protocol, 0, 2, 1, 0, 6, ETH_SRC + b"\0\0") + payload


def write_pcap(path, frames: list[bytes], linktype: int = 1, snaplen: int = 262144,
               caplens: dict[int, int] | None = None) -> None:
    """frames[i] is written whole unless caplens[i] cuts it (the wire length stays)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
        for i, frame in enumerate(frames):
            cap = min(len(frame), (caplens or {}).get(i, len(frame)))
            f.write(struct.pack("<IIII", 1764000000 + i, 1000 * i, cap, len(frame)))
            f.write(frame[:cap])
