"""`fwgate monitor`: frame lines in the seed's Network Monitor style, read from capture files the
tests write byte by byte (edge cases, every link type) and from real traffic captured with tcpdump
in the namespace topology of test_client.py (an FTP session in active mode, a DNS query and a TLS
connection), compared with tshark's reading of the same files; the protocol definitions and packet
filters --suggest proposes (accepted by `fwgate config check`, and making the program work through
the gateway); live capture with its kernel statistics, lost packets with a small buffer; the
gateway log's denied attempts (--log). Fixed ports (2121, 8443, 9) are the topology's namespaces'."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import fwit
import pcapgen as pg
from conftest import FWGATE_BIN
from test_client import DNS, EXTERNAL, NAME, client_env, fwrun, out, start_gateway
from test_client import topo  # noqa: F401 (the namespace topology, a fixture)

pytestmark = pytest.mark.fwgate_only

GATEWAY_OUTSIDE = "203.0.113.1"
SEED_LINE = "TCP: ....S., len: 0, seq: 28201-28201, ack: 0, win: 8192, src: 1124 dst: 443"
LINE = re.compile(r"^(\d+) \d\d:\d\d:\d\d\.\d{6} (?:vlan \d+ )*(\S+) -> (\S+) (TCP|UDP|ICMP|ICMPv6): (.*)$")
TCP_BODY = re.compile(r"^([.UAPRSF]{6}), len: (\d+), seq: (\d+)-(\d+), ack: (\d+), win: (\d+), src: (\d+) dst: (\d+)")
UDP_BODY = re.compile(r"^len: (\d+), src: (\d+) dst: (\d+)")


def monitor(*args: str, netns: str | None = None, timeout: float = 60, stdin=None) -> subprocess.CompletedProcess:
    argv = ([*(["ip", "netns", "exec", netns] if netns else [])] + [FWGATE_BIN, "monitor", *args])
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout * fwit.SLOW,
                          input=stdin)


def lines_of(cp: subprocess.CompletedProcess) -> list[str]:
    return [line for line in cp.stdout.decode().splitlines() if line.strip()]


def seed_frames() -> list[bytes]:
    syn = pg.tcp(1124, 443, 28201, 0, "S", 8192)
    return [
        pg.ether(pg.ipv4("10.1.1.2", "203.0.113.7", 6, syn)),
        pg.ether(pg.ipv4("203.0.113.7", "10.1.1.2", 6, pg.tcp(443, 1124, 9000, 28202, "SA", 65535))),
        pg.ether(pg.ipv4("10.1.1.2", "203.0.113.7", 6, pg.tcp(1124, 443, 28202, 9001, "PA", 502, b"x" * 100))),
        pg.ether(pg.ipv4("10.1.1.2", "203.0.113.53", 17, pg.udp(53124, 53, b"q" * 33))),
        pg.ether(pg.ipv4("10.1.1.2", "203.0.113.7", 1, pg.icmp(8, 0, (7 << 16) | 1, b"p" * 56))),
        pg.ether(pg.ipv4("203.0.113.7", "10.1.1.2", 1, pg.icmp(
            3, 3, 0, pg.ipv4("10.1.1.2", "203.0.113.7", 17, pg.udp(40000, 9, b""))[:28]))),
        pg.ether(pg.ipv4("10.1.1.2", "203.0.113.7", 6, syn), vlans=(10,)),
        pg.ether(pg.ipv6("2001:db8::2", "2001:db8::7", 6, pg.tcp(1124, 443, 28201, 0, "S", 8192)), 0x86DD),
        pg.ether(pg.ipv4("10.1.1.2", "203.0.113.7", 6, syn)),  # cut inside the TCP header below
        pg.ether(b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\0" * 20, 0x0806),
        pg.ether(pg.ipv4("10.1.1.2", "203.0.113.7", 6, pg.tcp(1124, 443, 1, 2, "FA", 100, b"y" * 1000)),
                 vlans=(20, 30)),
    ]


def test_seed_style_lines_from_a_handcrafted_capture(tmp_path):
    path = tmp_path / "seed.pcap"
    # frame 9 (index 8) is cut 10 bytes into its TCP header; frame 11 (index 10) after 40 data bytes
    pg.write_pcap(path, seed_frames(), caplens={8: 14 + 20 + 10, 10: 14 + 8 + 20 + 20 + 40})
    cp = monitor("-r", str(path))
    assert cp.returncode == 0, out(cp)
    lines = lines_of(cp)
    assert len(lines) == 11, lines
    assert lines[0].startswith("1 ") and lines[0].endswith(f"10.1.1.2 -> 203.0.113.7 {SEED_LINE}"), lines[0]
    assert lines[1].endswith("TCP: .A..S., len: 0, seq: 9000-9000, ack: 28202, win: 65535, src: 443 dst: 1124"), lines[1]
    assert lines[2].endswith("TCP: .AP..., len: 100, seq: 28202-28302, ack: 9001, win: 502, src: 1124 dst: 443"), lines[2]
    assert lines[3].endswith("10.1.1.2 -> 203.0.113.53 UDP: len: 33, src: 53124 dst: 53"), lines[3]
    assert lines[4].endswith("ICMP: Echo Request, id: 7, seq: 1, len: 56"), lines[4]
    assert "ICMP: Destination Unreachable (Port Unreachable)" in lines[5], lines[5]
    assert lines[5].endswith("for UDP 10.1.1.2 src: 40000 -> 203.0.113.7 dst: 9"), lines[5]
    assert " vlan 10 10.1.1.2 -> 203.0.113.7 " + SEED_LINE in lines[6], lines[6]
    assert lines[7].endswith(f"2001:db8::2 -> 2001:db8::7 {SEED_LINE}"), lines[7]
    assert "truncated TCP header" in lines[8] and "TCP: " in lines[8], lines[8]
    assert lines[9].startswith("10 ") and "ARP" in lines[9], lines[9]
    # The data length comes from the IP header, not from what the capture kept.
    assert "vlan 20 vlan 30 " in lines[10] and "TCP: .A...F, len: 1000, seq: 1-1001," in lines[10], lines[10]
    assert "11 frames read" in cp.stderr.decode(), out(cp)


@pytest.mark.parametrize("linktype,wrap", [(113, pg.sll), (276, pg.sll2), (101, None), (228, None)],
                         ids=["linux-sll", "linux-sll2", "raw", "ipv4"])
def test_link_types(tmp_path, linktype, wrap):
    packet = pg.ipv4("10.1.1.2", "203.0.113.7", 6, pg.tcp(1124, 443, 28201, 0, "S", 8192))
    path = tmp_path / "link.pcap"
    pg.write_pcap(path, [wrap(packet) if wrap else packet], linktype=linktype)
    cp = monitor("-r", str(path))
    assert cp.returncode == 0, out(cp)
    assert lines_of(cp)[0].endswith(f"10.1.1.2 -> 203.0.113.7 {SEED_LINE}"), out(cp)


def test_pcapng_from_tshark_reads_the_same(tmp_path):
    fwit.require_tool("tshark")
    pcap, pcapng = tmp_path / "seed.pcap", tmp_path / "seed.pcapng"
    pg.write_pcap(pcap, seed_frames())
    conv = fwit.run(["tshark", "-r", str(pcap), "-F", "pcapng", "-w", str(pcapng)])
    assert conv.returncode == 0 and pcapng.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a", out(conv)
    a, b = monitor("-r", str(pcap)), monitor("-r", str(pcapng))
    assert a.returncode == 0 and b.returncode == 0, out(a) + out(b)
    assert lines_of(a) == lines_of(b)


def test_filter_count_and_write(tmp_path):
    path, saved = tmp_path / "seed.pcap", tmp_path / "saved.pcap"
    pg.write_pcap(path, seed_frames())
    cp = monitor("-r", str(path), "--filter", "udp or icmp")
    assert cp.returncode == 0, out(cp)
    bodies = [LINE.match(line).group(4) for line in lines_of(cp)]
    assert bodies == ["UDP", "ICMP", "ICMP"], lines_of(cp)
    cp = monitor("-r", str(path), "-c", "2", "-w", str(saved))
    assert cp.returncode == 0 and len(lines_of(cp)) == 2, out(cp)
    again = monitor("-r", str(saved))
    assert lines_of(again) == lines_of(cp), out(again)


def test_bad_input_gets_a_clear_error(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture file at all\n" * 10)
    cp = monitor("-r", str(junk))
    assert cp.returncode == 1 and "junk.pcap" in cp.stderr.decode() and not cp.stdout, out(cp)
    cp = monitor("-r", str(tmp_path / "missing.pcap"))
    assert cp.returncode == 1 and "missing.pcap" in cp.stderr.decode(), out(cp)
    good = tmp_path / "seed.pcap"
    pg.write_pcap(good, seed_frames())
    cp = monitor("-r", str(good), "--filter", "tcp port nonsense")
    assert cp.returncode == 1 and "filter" in cp.stderr.decode(), out(cp)
    cp = monitor()
    assert cp.returncode == 2 and "-i INTERFACE" in cp.stderr.decode(), out(cp)
    wifi = tmp_path / "wifi.pcap"
    pg.write_pcap(wifi, [b"\x80\x00" + b"\0" * 30], linktype=105)
    cp = monitor("-r", str(wifi))
    assert cp.returncode == 1 and "link type 105" in cp.stderr.decode(), out(cp)
    # A truncated file: the frames before the cut, then libpcap's complaint, no crash.
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-7])
    cp = monitor("-r", str(cut))
    assert cp.returncode == 1 and len(lines_of(cp)) == 10, out(cp)
    assert "after 10 frames" in cp.stderr.decode() and "10 frames read" in cp.stderr.decode(), out(cp)
    # ... and the suggestion from those frames is still made.
    cp = monitor("-r", str(cut), "--suggest")
    assert cp.returncode == 1 and "# client 10.1.1.2" in cp.stdout.decode(), out(cp)
    # Names that would not make a valid definition, and -w to the standard output, are refused.
    for args in (["--name", "My App"], ["--name", 'a"b'], ["--name", "x" * 101], ["-w", "-"]):
        cp = monitor("-r", str(good), "--suggest", *args)
        assert cp.returncode == 2 and not cp.stdout, (args, out(cp))


# ---- real traffic in the namespace topology ---------------------------------------------------

class Tcpdump:
    """tcpdump writing a capture file in a namespace; stop() waits until it has flushed."""

    def __init__(self, topo, role: str, iface: str, path, bpf: list[str]):
        self.path = path
        self.proc = topo.spawn(role, ["tcpdump", "-Z", "root", "--immediate-mode", "-U", "-n", "-i", iface,
                                      "-w", str(path), *bpf], stdout=subprocess.DEVNULL)
        fwit.read_pipe(self.proc.stderr, 400, 10, until=b"\n")

    def stop(self) -> None:
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)


def tshark_rows(path) -> dict[int, dict]:
    cp = fwit.run(["tshark", "-n", "-r", str(path), "-o", "tcp.analyze_sequence_numbers:FALSE",
                   "-o", "tcp.relative_sequence_numbers:FALSE", "-T", "fields", "-E", "separator=|",
                   "-e", "frame.number", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.flags",
                   "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.window_size_value", "-e", "tcp.len",
                   "-e", "udp.srcport", "-e", "udp.dstport", "-e", "icmp.type", "-e", "icmpv6.type"])
    assert cp.returncode == 0, out(cp)
    rows = {}
    for line in cp.stdout.decode().splitlines():
        f = line.split("|")
        rows[int(f[0])] = dict(zip(["tsport", "tdport", "flags", "seq", "ack", "win", "len", "usport", "udport",
                                    "icmp", "icmp6"], f[1:]))
    return rows


def compare_with_tshark(path) -> int:
    """Every TCP and UDP line of `fwgate monitor -r` against tshark's fields; returns how many."""
    mine = monitor("-r", str(path))
    assert mine.returncode == 0, out(mine)
    theirs = tshark_rows(path)
    assert len(lines_of(mine)) == len(theirs), (len(lines_of(mine)), len(theirs))
    checked = 0
    for line in lines_of(mine):
        m = LINE.match(line)
        assert m, line
        number, kind, body = int(m.group(1)), m.group(4), m.group(5)
        t = theirs[number]
        if t["icmp"] or t["icmp6"]:
            assert kind.startswith("ICMP"), (line, t)
            continue
        if kind == "TCP":
            flags, length, seq, end, ack, win, sport, dport = TCP_BODY.match(body).groups()
            bits = int(t["flags"], 16)
            want = "".join(c if bits & v else "." for c, v in
                           (("U", 0x20), ("A", 0x10), ("P", 0x08), ("R", 0x04), ("S", 0x02), ("F", 0x01)))
            assert (sport, dport, flags, seq, ack, win, length) == \
                   (t["tsport"], t["tdport"], want, t["seq"], t["ack"], t["win"], t["len"]), (line, t)
            assert int(end) == (int(seq) + int(length)) % (1 << 32), line
        elif kind == "UDP":
            length, sport, dport = UDP_BODY.match(body).groups()
            assert (sport, dport) == (t["usport"], t["udport"]), (line, t)
        checked += 1
    return checked


@pytest.fixture
def ftp2121(topo):
    """pyftpdlib on the external host, port 2121: no built-in definition knows it."""
    root = topo.tmp / "ftp-root"
    root.mkdir()
    for name in ("alpha.txt", "beta.txt"):
        (root / name).write_text(f"{name} " * 1000 + "\n")
    log = open(topo.tmp / "ftp-server.log", "wb")
    topo.logs.append(log)
    proc = topo.spawn("external", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "ftp_server.py"), "--host", EXTERNAL,
                                   "--port", "2121", "--root", str(root), "--lifetime", "300"], stderr=log)
    assert fwit.read_pipe(proc.stdout, 16, 15, until=b"\n").strip() == b"ready"
    return root


def lftp_active(dest) -> list[str]:
    return ["lftp", "-e", f"set ftp:passive-mode off; set net:max-retries 1; set net:timeout 15; "
            f"set ftp:prefer-epsv no; get -O {dest} alpha.txt; cls -1; bye", f"ftp://{EXTERNAL}:2121"]


def base_config(tmp_path) -> str:
    cp = subprocess.run([FWGATE_BIN, "config", "default"], stdout=subprocess.PIPE, check=True)
    return cp.stdout.decode()


def config_check(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "check.toml"
    path.write_text(text)
    return subprocess.run([FWGATE_BIN, "config", "check", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)


def definitions_only(suggestion: str) -> str:
    return suggestion.split("[packet_filters]")[0]


def test_ftp_active_session_suggests_its_definition(topo, gateway, ftp2121):
    """The seed's procedure end to end: capture the program on the gateway's external interface,
    read the capture, get the definition; it passes config check, and with it (and a rule naming
    it) the same program works through the firewall client, where before it was denied."""
    fwit.require_tool("tshark")
    ge = topo.link["ge"]
    pcap = topo.tmp / "ftp.pcap"
    cap = Tcpdump(topo, "gateway", ge, pcap, ["tcp"])
    dest = topo.tmp / "direct"
    dest.mkdir()
    cp = topo.run_in("gateway", lftp_active(dest), timeout=60)
    cap.stop()
    assert cp.returncode == 0 and (dest / "alpha.txt").exists(), out(cp)

    assert compare_with_tshark(pcap) > 20
    # In the gateway's namespace 203.0.113.1 is a local address: packet filters too.
    sug = monitor("-r", str(pcap), "--suggest", netns=topo.ns["gateway"])
    text = sug.stdout.decode()
    assert sug.returncode == 0, out(sug)
    assert f"client {GATEWAY_OUTSIDE}" in text, text
    assert "[protocols.CustomApp]\nport = 2121\ntransport = \"tcp\"\ndirection = \"outbound\"\n" in text, text
    assert '{ ports = 0, transport = "tcp", direction = "inbound" }' in text, text
    # Each line says which conversations and frames showed it.
    assert re.search(r"# +primary tcp 2121 outbound: C\d+, 203\.0\.113\.1:\d+ -> 203\.0\.113\.7:2121, SYN frame \d+, "
                     r"answered in frame \d+", text), text
    assert re.search(r"# +secondary tcp 0 \(dynamic\) inbound: C\d+, C\d+ \(frames \d+, \d+\)", text), text
    assert "[[packet_filters.filter]]" in text and "remote_port = 2121" in text, text
    # The server connected back twice to ports lftp picked: one filter for the range they come from.
    assert len(re.findall(r'direction = "inbound"\nlocal_port = "\d+-\d+"\nremote_port = "any"\n'
                          r'remote_host = "203.0.113.7"', text)) == 1, text
    check = config_check(topo.tmp, base_config(topo.tmp) + "\n" + text)
    assert check.returncode == 0, out(check) + text
    # Elsewhere (another host's namespace) the address is not local: no packet filters...
    elsewhere = monitor("-r", str(pcap), "--suggest", "--client", GATEWAY_OUTSIDE)
    assert "[packet_filters]" not in elsewhere.stdout.decode(), out(elsewhere)
    # ... unless asked for.
    asked = monitor("-r", str(pcap), "--suggest", "--client", GATEWAY_OUTSIDE, "--gateway-host")
    assert "[packet_filters]" in asked.stdout.decode(), out(asked)

    # Before: the firewall client's attempt is denied for want of a definition.
    gw = start_gateway(gateway, topo)
    before = topo.tmp / "before"
    before.mkdir()
    cp = fwrun(topo, lftp_active(before), timeout=60)
    assert not (before / "alpha.txt").exists(), out(cp)
    denied = gw.wait_session(lambda s: s.get("error") == "no protocol definition covers tcp outbound port 2121")
    assert denied["application"] == "lftp", denied
    gw.expected_exit = True
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(15) is not None
    # After: the suggested definition and a rule naming it.
    gw = start_gateway(gateway, topo, extra="\n" + definitions_only(text),
                       rules=[{"name": "custom app", "action": "allow", "sources": ["internal"],
                               "protocols": ["CustomApp"]}])
    after = topo.tmp / "after"
    after.mkdir()
    cp = fwrun(topo, lftp_active(after), timeout=60)
    assert cp.returncode == 0 and (after / "alpha.txt").read_text() == (ftp2121 / "alpha.txt").read_text(), out(cp)
    accepts = gw.wait_session(lambda s: s.get("command") == "accept" and s.get("result") == "succeeded")
    assert accepts["definition"] == "CustomApp", accepts


def test_dns_query_and_tls_connection(topo):
    """A program that resolves a name (a DNS query) and then opens a TLS connection on 8443."""
    fwit.require_tool("tshark")
    fwit.require_tool("openssl")
    key, cert = topo.tmp / "key.pem", topo.tmp / "cert.pem"
    made = fwit.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                     "-subj", "/CN=fwgate-test", "-days", "1"])
    assert made.returncode == 0, out(made)
    server = topo.spawn("external", ["openssl", "s_server", "-quiet", "-accept", f"{EXTERNAL}:8443", "-cert", str(cert),
                                     "-key", str(key), "-www"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    topo.wait_port("external", EXTERNAL, 8443)
    pcap = topo.tmp / "tls.pcap"
    cap = Tcpdump(topo, "gateway", topo.link["ge"], pcap, ["not", "arp", "and", "not", "icmp6"])
    dig = topo.run_in("gateway", ["dig", "+time=3", "+tries=1", "+short", f"@{DNS}", NAME], timeout=20)
    assert dig.returncode == 0 and EXTERNAL in dig.stdout.decode(), out(dig)
    tls = topo.run_in("gateway", ["curl", "-sSk", "--max-time", "10", f"https://{EXTERNAL}:8443/"], timeout=30)
    cap.stop()
    server.kill()
    assert tls.returncode == 0 and b"<HTML>" in tls.stdout, out(tls)
    assert compare_with_tshark(pcap) > 10

    sug = monitor("-r", str(pcap), "--suggest", "--client", GATEWAY_OUTSIDE)
    text = sug.stdout.decode()
    assert sug.returncode == 0, out(sug)
    # The query: the built-in DNS definition covers it; the TLS connection needs its own.
    assert re.search(r'# +primary udp 53 send: C1, 203\.0\.113\.1:\d+ -> 203\.0\.113\.53:53, first datagram '
                     r'frame \d+, answered in frame \d+', text), text
    assert 'The built-in definition "DNS" covers it' in text, text
    assert "[protocols.CustomApp]\nport = 8443\ntransport = \"tcp\"\ndirection = \"outbound\"\n" in text, text
    assert "secondary = [" not in text, text
    assert config_check(topo.tmp, base_config(topo.tmp) + text).returncode == 0


def test_live_capture_reports_kernel_statistics(topo):
    ge = topo.link["ge"]
    mon = topo.spawn("gateway", [FWGATE_BIN, "monitor", "-i", ge, "--filter", "tcp port 80"])
    fwit.read_pipe(mon.stderr, 400, 10, until=b"\n")  # "capturing on ..."
    time.sleep(0.3)
    cp = topo.run_in("gateway", ["curl", "-sS", "--max-time", "10", f"http://{EXTERNAL}/"], timeout=20)
    assert cp.returncode == 0, out(cp)
    seen = b""
    deadline = time.monotonic() + 10
    while b".A..S." not in seen and time.monotonic() < deadline:
        seen += fwit.read_pipe(mon.stdout, 1 << 16, 1)
    mon.send_signal(signal.SIGINT)
    rest, err = mon.communicate(timeout=10)
    text = (seen + rest).decode()
    assert mon.returncode == 0, (text, err)
    lines = text.splitlines()
    assert any(f"{GATEWAY_OUTSIDE} -> {EXTERNAL} TCP: ....S., len: 0" in line and "dst: 80" in line for line in lines), text
    assert any(f"{EXTERNAL} -> {GATEWAY_OUTSIDE} TCP: .A..S." in line and "src: 80" in line for line in lines), text
    m = re.search(rb"(\d+) frames shown from \S+; the kernel received (\d+) and dropped (\d+)", err)
    assert m and int(m.group(1)) == len(lines) and int(m.group(3)) == 0, err


def test_the_default_buffer_keeps_a_burst(topo, tmp_path):
    """5,000 small datagrams at once, written to a file: the default 2 MB buffer holds them all
    (libpcap's immediate mode would have lost about half)."""
    ge = topo.link["ge"]
    sink = open(tmp_path / "frames.txt", "wb")
    mon = topo.spawn("gateway", [FWGATE_BIN, "monitor", "-i", ge, "--filter", "udp port 9"], stdout=sink)
    sink.close()
    fwit.read_pipe(mon.stderr, 400, 10, until=b"\n")
    time.sleep(0.3)
    burst = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             f"for i in range(5000): s.sendto(b'x'*100,('{GATEWAY_OUTSIDE}',9))\n")
    cp = topo.run_in("external", [fwit.PYTHON, "-c", burst], timeout=60)
    assert cp.returncode == 0, out(cp)
    time.sleep(1.0)
    mon.send_signal(signal.SIGINT)
    mon.wait(20)
    err = mon.stderr.read().decode()
    m = re.search(r"(\d+) frames shown from \S+; the kernel received (\d+) and dropped (\d+)", err)
    assert mon.returncode == 0 and m, err
    assert int(m.group(3)) == 0 and int(m.group(1)) == 5000, err
    assert len((tmp_path / "frames.txt").read_text().splitlines()) == 5000


def test_a_reader_that_goes_away_ends_an_idle_capture(topo):
    """`fwgate monitor -i IF | head -1`: once head has its line and exits, the monitor ends too,
    even though no more frames come to write."""
    ge = topo.link["ge"]
    mon = topo.spawn("gateway", [FWGATE_BIN, "monitor", "-i", ge, "--filter", "udp port 9"])
    fwit.read_pipe(mon.stderr, 400, 10, until=b"\n")
    time.sleep(0.3)
    send = f"import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.sendto(b'x',('{GATEWAY_OUTSIDE}',9))\n"
    assert topo.run_in("external", [fwit.PYTHON, "-c", send], timeout=20).returncode == 0
    assert b"UDP: len: 1, " in fwit.read_pipe(mon.stdout, 200, 10, until=b"\n")
    mon.stdout.close()
    try:
        mon.wait(5 * fwit.SLOW)
    except subprocess.TimeoutExpired:
        pytest.fail("the monitor kept running after its reader had gone")


def test_a_small_buffer_says_it_lost_packets(topo):
    """The monitor's output is not read while a flood goes by: the 1 MB buffer overflows, and the
    summary says so and how to raise it."""
    ge = topo.link["ge"]
    mon = topo.spawn("gateway", [FWGATE_BIN, "monitor", "-i", ge, "--buffer-size", "1", "--filter", "udp"])
    fwit.read_pipe(mon.stderr, 400, 10, until=b"\n")
    flood = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             f"for i in range(40000): s.sendto(b'x'*1200,('{GATEWAY_OUTSIDE}',9))\n")
    cp = topo.run_in("external", [fwit.PYTHON, "-c", flood], timeout=60)
    assert cp.returncode == 0, out(cp)
    drained = []
    reader = threading.Thread(target=lambda: drained.append(mon.stdout.read()), daemon=True)
    reader.start()
    time.sleep(1.0)
    mon.send_signal(signal.SIGINT)
    mon.wait(20)
    reader.join(20)
    err = mon.stderr.read().decode()
    m = re.search(r"the kernel received (\d+) and dropped (\d+)", err)
    assert mon.returncode == 0 and m and int(m.group(2)) > 0, err
    assert "LOST" in err and "--buffer-size" in err, err
    assert 0 < len(drained[0].splitlines()) < 40000, err


def test_log_lists_denied_attempts_with_the_definition_that_allows_them(topo, gateway):
    deny_smtp = {"name": "no smtp", "action": "deny", "sources": ["internal"], "protocols": ["SMTP"]}
    allow = {"name": "internal clients", "action": "allow", "sources": ["internal"]}
    gw = start_gateway(gateway, topo, rules=[deny_smtp, allow])
    for port in (8443, 8443, 25):
        cp = fwrun(topo, ["curl", "-sS", "--max-time", "5", f"http://{EXTERNAL}:{port}/"], timeout=30)
        assert cp.returncode != 0, out(cp)
    gw.wait_session(lambda s: s.get("requested") == f"{EXTERNAL}:25" and s.get("result") != "succeeded")
    log = Path(gw.session_log)
    cp = monitor("--log", str(log))
    text = cp.stdout.decode()
    assert cp.returncode == 0, out(cp)
    assert re.search(r"denied 2x +tcp outbound port 8443", text), text
    assert "[protocols.CustomApp]" in text and "port = 8443" in text, text
    assert "no smtp" in text and '"SMTP"' in text, text
    snippet = "\n".join(line[4:] if line.startswith("    ") else "# " + line for line in text.splitlines())
    check = config_check(topo.tmp, base_config(topo.tmp) + "\n" + snippet)
    assert check.returncode == 0, out(check) + snippet
    # The same through standard input, and only the given client.
    cp = monitor("--log", "-", "--client", "10.99.99.99", stdin=log.read_bytes())
    assert cp.returncode == 0 and "8443" not in cp.stdout.decode(), out(cp)


def test_live_suggest_for_a_program_on_the_gateway_host(topo):
    """--suggest on a live capture: curl on the gateway host itself; --duration ends it."""
    ge = topo.link["ge"]
    mon = topo.spawn("gateway", [FWGATE_BIN, "monitor", "-i", ge, "--suggest", "--duration", "3",
                                 "--filter", "tcp"])
    fwit.read_pipe(mon.stderr, 400, 10, until=b"\n")
    time.sleep(0.3)
    cp = topo.run_in("gateway", ["curl", "-sS", "--max-time", "10", f"http://{EXTERNAL}/"], timeout=20)
    assert cp.returncode == 0, out(cp)
    text, err = mon.communicate(timeout=20 * fwit.SLOW)
    text = text.decode()
    assert mon.returncode == 0, (text, err)
    assert f"client {GATEWAY_OUTSIDE} (opened the first conversation" in text, text
    assert 'The built-in definition "HTTP" covers it' in text, text
    assert '[[packet_filters.filter]]' in text and 'remote_port = 80\n' in text, text
    assert config_check(topo.tmp, base_config(topo.tmp) + text).returncode == 0, text


DENIED_SHAPES = r"""
import errno, socket, sys, time
# A datagram no definition covers (port 9999), sent through the gateway; nothing answers.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"hello", (sys.argv[1], 9999))
# A server listen on a port no inbound definition covers (ServerBindTcpPorts = 4500).
s = socket.socket()
try:
    s.bind(("0.0.0.0", 4500))
    print("server bound")
except OSError as e:
    print("server", errno.errorcode[e.errno])
# A secondary listen of a program whose only primary connection is HTTP (no secondaries).
p = socket.create_connection((sys.argv[1], 80), timeout=20)
l = socket.socket()
try:
    l.bind((p.getsockname()[0], 0))
    print("secondary bound")
except OSError as e:
    print("secondary", errno.errorcode[e.errno])
time.sleep(0.5)
"""


def test_log_reads_the_denials_the_gateway_wrote_for_listens_and_datagrams(topo, gateway):
    """The gateway's own lines for a datagram, a server listen and a secondary listen it denied
    carry `outcome` and `denial`; `fwgate monitor --log` groups them from those fields."""
    gw = start_gateway(gateway, topo,
                       extra='\n[firewall_client.applications.python3]\nServerBindTcpPorts = "4500"\n')
    cp = fwrun(topo, [fwit.PYTHON, "-c", DENIED_SHAPES, EXTERNAL], timeout=60)
    assert cp.returncode == 0, out(cp)
    assert cp.stdout.decode().split() == ["server", "EACCES", "secondary", "EACCES"], out(cp)

    def denied(command):
        return gw.wait_session(lambda s: s.get("command") == command and "denial" in s)

    udp = denied("udp")
    assert udp["denial"] == {"reason": "no-definition", "transport": "udp", "direction": "send",
                             "port": 9999, "definition": "", "rule": "internal clients",
                             "host": EXTERNAL, "peer": False}, udp
    assert udp["outcome"] == "succeeded" and udp["datagrams_up"] == 0, udp
    server = denied("listen-server")
    assert server["outcome"] == "denied" and server["denial"]["reason"] == "no-definition", server
    assert (server["denial"]["transport"], server["denial"]["direction"], server["denial"]["port"]) == \
        ("tcp", "inbound", 4500), server
    secondary = denied("listen")
    assert secondary["outcome"] == "denied" and secondary["denial"]["reason"] == "no-primary", secondary
    assert secondary["denial"]["port"] == 0 and secondary["denial"]["rule"] == "", secondary
    # The old fields are still written, for one release.
    assert server["result"] == "denied by the gateway's rules" and "error" in secondary, (server, secondary)

    report = monitor("--log", gw.session_log)
    text = report.stdout.decode()
    assert report.returncode == 0, out(report)
    assert re.search(r"denied 1x +udp send port 9999 +\(no protocol definition covers it\)", text), text
    assert f"to {EXTERNAL}" in text, text
    assert re.search(r"denied 1x +listen for tcp inbound on port 4500 +\(no protocol definition covers it\)",
                     text), text
    assert re.search(r"denied 1x +listen for tcp inbound on a dynamic port +\(no definition of the "
                     r"program's connections has it as a secondary connection\)", text), text
    snippet = "\n".join(line[4:] if line.startswith("    ") else "# " + line for line in text.splitlines())
    check = config_check(topo.tmp, base_config(topo.tmp) + "\n" + snippet)
    assert check.returncode == 0, out(check) + snippet
