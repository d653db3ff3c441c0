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

struct lpm_key6 {
  __u32 prefixlen;
  __u32 ip6[4];
};

// The same for IPv6.
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 4096);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm_key6);
  __type(value, __u8);
} local6 SEC(".maps");

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

// UDP sockets that sent to a remote destination, by local port (host byte order): who the
// helper's association speaks for. Known from the first sendmsg (the socket is bound by then);
// a connected socket's connect comes before its port, so it is not here.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct fwgate_origin);
} by_udp_port SEC(".maps");

// Who asks, into `origin` (whose destination the caller set), kept by the socket's cookie.
static __always_inline void keep(void* ctx, struct fwgate_origin* origin) {
  origin->pid = bpf_get_current_pid_tgid() >> 32;
  origin->uid = (__u32)bpf_get_current_uid_gid();
  bpf_get_current_comm(origin->comm, sizeof origin->comm);
  const __u64 cookie = bpf_get_socket_cookie(ctx);
  bpf_map_update_elem(&by_cookie, &cookie, origin, BPF_ANY);
}

static __always_inline void remember(void* ctx, __u32 ip4, __u16 port, __u16 family) {
  struct fwgate_origin origin = {.ip4 = ip4, .port = port, .family = family};
  keep(ctx, &origin);
}

// A hook's IPv6 address, word by word (the context is read at constant offsets only).
static __always_inline void read_ip6(const struct bpf_sock_addr* ctx, __u32 out[4]) {
  out[0] = ctx->user_ip6[0];
  out[1] = ctx->user_ip6[1];
  out[2] = ctx->user_ip6[2];
  out[3] = ctx->user_ip6[3];
}

static __always_inline void write_ip6(struct bpf_sock_addr* ctx, const __u32 in[4]) {
  ctx->user_ip6[0] = in[0];
  ctx->user_ip6[1] = in[1];
  ctx->user_ip6[2] = in[2];
  ctx->user_ip6[3] = in[3];
}

// UDP destinations by slot: a datagram to D goes to 127.64.0.0 + slot(D) on the helper's UDP
// port, so that the helper tells D from the address it was sent to (IP_PKTINFO), however many
// destinations one socket sends to; the answers come back from that address and recvmsg4 gives
// them D's. Slot 0 is none.
#define FWGATE_SLOT_NET 0x7f400000u /* 127.64.0.0/16 */
#define FWGATE_SLOTS 65536

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, FWGATE_SLOTS);
  __type(key, __u32);
  __type(value, struct fwgate_destination);
} slot_destination SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, FWGATE_SLOTS);
  __type(key, __u64);  // ip4 << 16 | port, both network byte order
  __type(value, __u32);
} destination_slot SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} slot_counter SEC(".maps");

static __always_inline __u32 slot_for(__u32 ip4, __u16 port) {
  __u64 key = ((__u64)ip4 << 16) | port;
  __u32* known = bpf_map_lookup_elem(&destination_slot, &key);
  if (known != 0) {
    const __u32 slot = *known;
    const struct fwgate_destination* d = bpf_map_lookup_elem(&slot_destination, &slot);
    if (d != 0 && d->ip4 == ip4 && d->port == port) return slot;  // not reused since
  }
  const __u32 zero = 0;
  __u32* counter = bpf_map_lookup_elem(&slot_counter, &zero);
  if (counter == 0) return 0;
  const __u32 slot = (__sync_fetch_and_add(counter, 1) % (FWGATE_SLOTS - 1)) + 1;
  const struct fwgate_destination d = {.ip4 = ip4, .port = port};
  bpf_map_update_elem(&slot_destination, &slot, &d, BPF_ANY);
  bpf_map_update_elem(&destination_slot, &key, &slot, BPF_ANY);
  return slot;
}

// Where a connect or a datagram to ip4:port goes instead: 1 rewritten into *to_ip4:*to_port,
// 0 left as it is, -1 refused (EPERM).
static __always_inline int divert(__u32 type, __u32 ip4, __u32 port,
                                  const struct fwgate_settings* s, __u32* to_ip4, __u32* to_port) {
  if (is_resolver(ip4, port)) {
    *to_ip4 = s->helper_ip4;
    *to_port = s->dns_port;
    return 1;
  }
  if (is_local(ip4)) return 0;
  if (type == FWGATE_SOCK_STREAM) {
    if (s->refuse) return -1;
    *to_ip4 = s->helper_ip4;
    *to_port = s->tcp_port;
    return 1;
  }
  if (type != FWGATE_SOCK_DGRAM || s->udp_port == 0) return 0;
  if (s->refuse) return -1;
  const __u32 slot = slot_for(ip4, (__u16)port);
  if (slot == 0) return 0;
  *to_ip4 = bpf_htonl(FWGATE_SLOT_NET + slot);
  *to_port = s->udp_port;
  return 1;
}

static __always_inline const struct fwgate_settings* current_settings(void) {
  const __u32 zero = 0;
  const struct fwgate_settings* s = bpf_map_lookup_elem(&settings, &zero);
  return s != 0 && s->tcp_port != 0 ? s : 0;
}

// ::ffff:a.b.c.d: the IPv4 address of an IPv4-mapped IPv6 address, else 0.
static __always_inline __u32 mapped_ip4(const struct bpf_sock_addr* ctx) {
  if (ctx->user_ip6[0] != 0 || ctx->user_ip6[1] != 0 || ctx->user_ip6[2] != bpf_htonl(0xffff)) {
    return 0;
  }
  return ctx->user_ip6[3];
}

// The IPv4 address a hook sees (v6: the mapped one, 0 when it is none) and its rewriting.
static __always_inline __u32 address_of(const struct bpf_sock_addr* ctx, int v6) {
  return v6 ? mapped_ip4(ctx) : ctx->user_ip4;
}

static __always_inline void rewrite(struct bpf_sock_addr* ctx, int v6, __u32 ip4, __u32 port) {
  if (v6) {
    ctx->user_ip6[3] = ip4;
  } else {
    ctx->user_ip4 = ip4;
  }
  ctx->user_port = port;
}

// connect4/6 and sendmsg4/6: the same decision, the destination rewritten in place.
static __always_inline int decide(struct bpf_sock_addr* ctx, int v6) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || exempt(ctx, s)) return 1;
  const __u32 ip4 = address_of(ctx, v6);
  if (ip4 == 0) return 1;
  const __u32 port = ctx->user_port;
  __u32 to_ip4 = 0;
  __u32 to_port = 0;
  const int action = divert(ctx->type, ip4, port, s, &to_ip4, &to_port);
  if (action < 0) return 0;
  if (action == 0) return 1;
  remember(ctx, ip4, (__u16)port, v6 ? 10 /* AF_INET6 */ : 2 /* AF_INET */);
  if (ctx->type == FWGATE_SOCK_DGRAM && ctx->sk != 0) {
    const __u32 local = ctx->sk->src_port;
    const __u64 cookie = bpf_get_socket_cookie(ctx);
    struct fwgate_origin* origin = bpf_map_lookup_elem(&by_cookie, &cookie);
    if (local != 0 && origin != 0) bpf_map_update_elem(&by_udp_port, &local, origin, BPF_NOEXIST);
  }
  rewrite(ctx, v6, to_ip4, to_port);
  return 1;
}

SEC("cgroup/connect4")
int fwgate_connect4(struct bpf_sock_addr* ctx) {
  return decide(ctx, 0);
}

// Loopback, unspecified, link-local, multicast, or in the LAT: an IPv6 destination stays.
static __always_inline int is_local6(const struct bpf_sock_addr* ctx) {
  const __u32 w0 = bpf_ntohl(ctx->user_ip6[0]);
  if ((w0 >> 24) == 0xff || (w0 & 0xffc00000u) == 0xfe800000u) return 1;
  if (w0 == 0 && ctx->user_ip6[1] == 0 && ctx->user_ip6[2] == 0 &&
      (ctx->user_ip6[3] == 0 || ctx->user_ip6[3] == bpf_htonl(1))) {
    return 1;
  }
  struct lpm_key6 key = {.prefixlen = 128};
  read_ip6(ctx, key.ip6);
  return bpf_map_lookup_elem(&local6, &key) != 0;
}

static __always_inline int is_helper6(const struct bpf_sock_addr* ctx,
                                      const struct fwgate_settings* s) {
  return s->tcp6_port != 0 && ctx->user_port == s->tcp6_port && ctx->user_ip6[0] == 0 &&
         ctx->user_ip6[1] == 0 && ctx->user_ip6[2] == 0 && ctx->user_ip6[3] == bpf_htonl(1);
}

// A native IPv6 TCP connect outside the LAT: to [::1] on the helper's IPv6 port.
static __always_inline int decide6(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || s->tcp6_port == 0 || ctx->type != FWGATE_SOCK_STREAM || exempt(ctx, s) ||
      is_local6(ctx)) {
    return 1;
  }
  if (s->refuse) return 0;
  struct fwgate_origin origin = {.port = (__u16)ctx->user_port, .family = 10 /* AF_INET6 */};
  read_ip6(ctx, origin.ip6);
  keep(ctx, &origin);
  const __u32 loopback[4] = {0, 0, 0, bpf_htonl(1)};
  write_ip6(ctx, loopback);
  ctx->user_port = s->tcp6_port;
  return 1;
}

SEC("cgroup/connect6")
int fwgate_connect6(struct bpf_sock_addr* ctx) {
  return mapped_ip4(ctx) != 0 ? decide(ctx, 1) : decide6(ctx);
}

SEC("cgroup/sendmsg4")
int fwgate_sendmsg4(struct bpf_sock_addr* ctx) {
  return decide(ctx, 0);
}

SEC("cgroup/sendmsg6")
int fwgate_sendmsg6(struct bpf_sock_addr* ctx) {
  return decide(ctx, 1);
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

// Who a datagram the program receives, or its connected peer, is: the destination it asked for.
// 0 when the address is none of the helper's.
static __always_inline int original(void* ctx, const struct fwgate_settings* s, __u32 ip4,
                                    __u32 port, __u32* out_ip4, __u32* out_port) {
  const __u32 host = bpf_ntohl(ip4);
  if (s->udp_port != 0 && port == s->udp_port && (host & 0xffff0000u) == FWGATE_SLOT_NET) {
    const __u32 slot = host & 0xffffu;
    const struct fwgate_destination* d = bpf_map_lookup_elem(&slot_destination, &slot);
    if (d == 0 || d->ip4 == 0) return 0;
    *out_ip4 = d->ip4;
    *out_port = d->port;
    return 1;
  }
  if (ip4 != s->helper_ip4) return 0;
  const __u64 cookie = bpf_get_socket_cookie(ctx);
  const struct fwgate_origin* origin = bpf_map_lookup_elem(&by_cookie, &cookie);
  if (origin == 0) return 0;
  *out_ip4 = origin->ip4;
  *out_port = origin->port;
  return 1;
}

static __always_inline int restore(struct bpf_sock_addr* ctx, int v6) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0) return 1;
  const __u32 ip4 = address_of(ctx, v6);
  __u32 to_ip4 = 0;
  __u32 to_port = 0;
  if (ip4 == 0 || !original(ctx, s, ip4, ctx->user_port, &to_ip4, &to_port)) return 1;
  rewrite(ctx, v6, to_ip4, to_port);
  return 1;
}

SEC("cgroup/recvmsg4")
int fwgate_recvmsg4(struct bpf_sock_addr* ctx) {
  return restore(ctx, 0);
}

SEC("cgroup/recvmsg6")
int fwgate_recvmsg6(struct bpf_sock_addr* ctx) {
  return restore(ctx, 1);
}

SEC("cgroup/getpeername4")
int fwgate_getpeername4(struct bpf_sock_addr* ctx) {
  return restore(ctx, 0);
}

SEC("cgroup/getpeername6")
int fwgate_getpeername6(struct bpf_sock_addr* ctx) {
  const struct fwgate_settings* s = current_settings();
  if (s == 0 || !is_helper6(ctx, s)) return restore(ctx, 1);
  const __u64 cookie = bpf_get_socket_cookie(ctx);
  const struct fwgate_origin* origin = bpf_map_lookup_elem(&by_cookie, &cookie);
  if (origin == 0 || origin->ip4 != 0) return 1;
  write_ip6(ctx, origin->ip6);
  ctx->user_port = origin->port;
  return 1;
}
