// The kernel-level firewall client's programs (docs/kernel-client.md). Attached to one cgroup, they
// see every socket its processes make, whatever library (or none) the program uses:
//
//   connect4/connect6  a TCP connect to a destination outside the local tables goes to the
//                      helper's port on 127.0.0.1 instead; the original destination is kept by
//                      socket cookie. A TCP or UDP connect to a resolver's port 53 goes to the
//                      helper's name service.
//   sockops            when such a connect sends its SYN, the record is keyed again by the
//                      socket's local port, which is what the helper sees when it accepts.
//   sendmsg4/6         an unconnected datagram to a resolver's port 53 goes to the name service.
//   recvmsg4/6         its answer comes back from the resolver's address.
//   getpeername4/6     the program sees the destination it asked for.
//
// Userspace (src/kernel/interceptor.cpp) fills the tables; nothing here allocates or loops.
// IPv6 sockets are handled for IPv4-mapped destinations (::ffff:a.b.c.d), which dual-stack
// programs use for IPv4; native IPv6 destinations are left alone.

// <linux/bpf.h> first: libbpf's headers use its types.
#include <linux/bpf.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "redirect_abi.h"

// From <linux/net.h>, which userspace headers do not carry.
#define FWGATE_SOCK_STREAM 1
#define FWGATE_SOCK_DGRAM 2

char LICENSE[] SEC("license") = "GPL";

struct lpm_key4 {
  __u32 prefixlen;
  __u32 ip4;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct fwgate_settings);
} settings SEC(".maps");

// The local address table (LAT, locallat.txt, connected routes) as prefixes.
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 4096);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm_key4);
  __type(value, __u8);
} local4 SEC(".maps");

// The resolvers of /etc/resolv.conf.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16);
  __type(key, __u32);
  __type(value, __u8);
} resolvers4 SEC(".maps");

// Redirected sockets by cookie (getpeername, recvmsg) and connecting ones by local port (the
// helper's accept). LRU: a socket that closes leaves its entry to be pushed out.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct fwgate_origin);
} by_cookie SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct fwgate_origin);
} by_port SEC(".maps");

// Accounts whose programs are never diverted (the system-wide mode's exemptions).
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u8);
} exempt_uids SEC(".maps");

// Whether the calling process is left alone: the helper itself, an exempt account, or another
// network namespace than the helper's (where 127.0.0.1 is not the helper's).
static __always_inline int exempt(void* ctx, const struct fwgate_settings* s) {
  const __u64 pid_tgid = bpf_get_current_pid_tgid();
  if ((__u32)(pid_tgid >> 32) == s->helper_tgid) return 1;
  const __u32 uid = (__u32)bpf_get_current_uid_gid();
  if (bpf_map_lookup_elem(&exempt_uids, &uid) != 0) return 1;
  return s->netns_cookie != 0 && bpf_get_netns_cookie(ctx) != s->netns_cookie;
}

static __always_inline int always_local(__u32 ip4) {
  const __u32 host = bpf_ntohl(ip4);
  return (host >> 24) == 127 || host == 0 || (host >> 16) == 0xa9fe /* 169.254/16 */ ||
         (host >> 28) == 0xe /* multicast */ || host == 0xffffffff;
}

static __always_inline int is_local(__u32 ip4) {
  if (always_local(ip4)) return 1;
  struct lpm_key4 key = {.prefixlen = 32, .ip4 = ip4};
  return bpf_map_lookup_elem(&local4, &key) != 0;
}

static __always_inline int is_resolver(__u32 ip4, __u32 port) {
  return port == bpf_htons(53) && bpf_map_lookup_elem(&resolvers4, &ip4) != 0;
}

static __always_inline void remember(void* ctx, __u32 ip4, __u16 port, __u16 family) {
  struct fwgate_origin origin = {.ip4 = ip4, .port = port, .family = family};
  const __u64 pid_tgid = bpf_get_current_pid_tgid();
  origin.pid = pid_tgid >> 32;
  origin.uid = (__u32)bpf_get_current_uid_gid();
  bpf_get_current_comm(origin.comm, sizeof origin.comm);
  const __u64 cookie = bpf_get_socket_cookie(ctx);
  bpf_map_update_elem(&by_cookie, &cookie, &origin, BPF_ANY);
}

// Where a connect or a datagram to ip4:port goes instead: 0 when it stays as it is; -1 when it
// is refused.
static __always_inline __u16 divert(__u32 type, __u32 ip4, __u32 port,
                                    const struct fwgate_settings* s, int* refuse) {
  *refuse = 0;
  if (is_resolver(ip4, port)) return s->dns_port;
  if (type != FWGATE_SOCK_STREAM || is_local(ip4)) return 0;
  if (s->refuse) {
    *refuse = 1;
    return 0;
  }
  return s->tcp_port;
}

static __always_inline const struct fwgate_settings* current_settings(void) {
  const __u32 zero = 0;
  const struct fwgate_settings* s = bpf_map_lookup_elem(&settings, &zero);
  return s != 0 && s->tcp_port != 0 ? s : 0;
}

SEC("cgroup/connect4")
int fwgate_connect4(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || exempt(ctx, s)) return 1;
  const __u32 ip4 = ctx->user_ip4;
  const __u32 port = ctx->user_port;
  int refuse = 0;
  const __u16 to = divert(ctx->type, ip4, port, s, &refuse);
  if (refuse) return 0;
  if (to == 0) return 1;
  remember(ctx, ip4, (__u16)port, 2 /* AF_INET */);
  ctx->user_ip4 = s->helper_ip4;
  ctx->user_port = to;
  return 1;
}

// ::ffff:a.b.c.d: the IPv4 address of an IPv4-mapped IPv6 address, else 0.
static __always_inline __u32 mapped_ip4(const struct bpf_sock_addr* ctx) {
  if (ctx->user_ip6[0] != 0 || ctx->user_ip6[1] != 0 || ctx->user_ip6[2] != bpf_htonl(0xffff)) {
    return 0;
  }
  return ctx->user_ip6[3];
}

SEC("cgroup/connect6")
int fwgate_connect6(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || exempt(ctx, s)) return 1;
  const __u32 ip4 = mapped_ip4(ctx);
  if (ip4 == 0) return 1;
  const __u32 port = ctx->user_port;
  int refuse = 0;
  const __u16 to = divert(ctx->type, ip4, port, s, &refuse);
  if (refuse) return 0;
  if (to == 0) return 1;
  remember(ctx, ip4, (__u16)port, 10 /* AF_INET6 */);
  ctx->user_ip6[3] = s->helper_ip4;
  ctx->user_port = to;
  return 1;
}

SEC("sockops")
int fwgate_sockops(struct bpf_sock_ops* ops) {
  if (ops->op != BPF_SOCK_OPS_TCP_CONNECT_CB) return 1;
  const __u64 cookie = bpf_get_socket_cookie(ops);
  struct fwgate_origin* origin = bpf_map_lookup_elem(&by_cookie, &cookie);
  if (origin == 0) return 1;
  const __u32 port = ops->local_port;  // host byte order
  bpf_map_update_elem(&by_port, &port, origin, BPF_ANY);
  return 1;
}

SEC("cgroup/sendmsg4")
int fwgate_sendmsg4(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || !is_resolver(ctx->user_ip4, ctx->user_port) || exempt(ctx, s)) return 1;
  remember(ctx, ctx->user_ip4, (__u16)ctx->user_port, 2);
  ctx->user_ip4 = s->helper_ip4;
  ctx->user_port = s->dns_port;
  return 1;
}

SEC("cgroup/sendmsg6")
int fwgate_sendmsg6(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0) return 1;
  const __u32 ip4 = mapped_ip4(ctx);
  if (ip4 == 0 || !is_resolver(ip4, ctx->user_port) || exempt(ctx, s)) return 1;
  remember(ctx, ip4, (__u16)ctx->user_port, 10);
  ctx->user_ip6[3] = s->helper_ip4;
  ctx->user_port = s->dns_port;
  return 1;
}

// A reply from the name service, or a peer's address asked for: the original destination.
static __always_inline struct fwgate_origin* origin_of(void* ctx) {
  const __u64 cookie = bpf_get_socket_cookie(ctx);
  return bpf_map_lookup_elem(&by_cookie, &cookie);
}

SEC("cgroup/recvmsg4")
int fwgate_recvmsg4(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || ctx->user_ip4 != s->helper_ip4 || ctx->user_port != s->dns_port) return 1;
  struct fwgate_origin* origin = origin_of(ctx);
  if (origin == 0) return 1;
  ctx->user_ip4 = origin->ip4;
  ctx->user_port = origin->port;
  return 1;
}

SEC("cgroup/recvmsg6")
int fwgate_recvmsg6(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || mapped_ip4(ctx) != s->helper_ip4 || ctx->user_port != s->dns_port) return 1;
  struct fwgate_origin* origin = origin_of(ctx);
  if (origin == 0) return 1;
  ctx->user_ip6[3] = origin->ip4;
  ctx->user_port = origin->port;
  return 1;
}

SEC("cgroup/getpeername4")
int fwgate_getpeername4(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || ctx->user_ip4 != s->helper_ip4) return 1;
  struct fwgate_origin* origin = origin_of(ctx);
  if (origin == 0) return 1;
  ctx->user_ip4 = origin->ip4;
  ctx->user_port = origin->port;
  return 1;
}

SEC("cgroup/getpeername6")
int fwgate_getpeername6(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || mapped_ip4(ctx) != s->helper_ip4) return 1;
  struct fwgate_origin* origin = origin_of(ctx);
  if (origin == 0) return 1;
  ctx->user_ip6[3] = origin->ip4;
  ctx->user_port = origin->port;
  return 1;
}
