// What redirect.bpf.c and its loader (interceptor.cpp) share: the layout of two tables' values.
// C, for both compilers. Addresses and ports in network byte order.
#pragma once

#include <linux/types.h>

// What userspace tells the programs. Addresses and ports in network byte order.
struct fwgate_settings {
  __u32 helper_ip4;    // 127.0.0.1
  __u16 tcp_port;      // remoted TCP connections
  __u16 dns_port;      // the name service, UDP and TCP
  __u32 refuse;        // 1: the gateway is unreachable; remoted connects fail at once (EPERM)
  __u32 helper_tgid;   // the helper's process: never diverted (the cgroup may hold it)
  __u64 netns_cookie;  // only sockets of this network namespace (the helper's); 0: any
  __u16 udp_port;      // datagrams to remote destinations (by slot, redirect.bpf.c); 0: none
  __u16 tcp6_port;     // native IPv6 TCP connects, to [::1]; 0: left alone
  __u32 unused32;
};

// A UDP destination a slot stands for.
struct fwgate_destination {
  __u32 ip4;
  __u16 port;
  __u16 unused;
};

// The destination a program asked for, and who asked. ip4/port in network byte order.
struct fwgate_origin {
  __u32 ip4;
  __u16 port;
  __u16 family;  // AF_INET or AF_INET6 (the socket's)
  __u32 ip6[4];  // a native IPv6 destination (ip4 is 0 then)
  __u32 pid;
  __u32 uid;
  char comm[16];
};
