// Talking to the gateway's control channel from a firewall client: blocking exchanges with time
// limits (configuration, name resolution) and the two halves of a remoted connect on the
// application's own socket. Plain sockets and poll; no allocation, no threads. In the preload
// library these calls run with the hooks switched off for the calling thread.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "client/client_config.hpp"
#include "protocol/control.hpp"

namespace fwgate::client {

// The gateway's addresses, by family (len 0: none).
struct GatewayEndpoints {
  sockaddr_storage v4{};
  socklen_t v4Length = 0;
  sockaddr_storage v6{};
  socklen_t v6Length = 0;
  bool any() const { return v4Length != 0 || v6Length != 0; }
};
// Resolves the configured server (getaddrinfo; the gateway's name is an internal one). Returns 0
// or the EAI_* error.
int resolveServer(const ServerAddress& server, GatewayEndpoints& out);

// Who is asking, for Hello; and which gateway, for the agent (its pinned key, as text).
struct Identity {
  char host[256] = {};
  char osUser[64] = {};
  const char* app = "";
  const char* user = "";
  const char* password = "";
  std::uint32_t pid = 0;
  const char* gatewayKey = "";  // base64; "" when none is pinned
  char server[300] = {};        // "host:port"
};
void fillIdentity(const ClientConfig& config, Identity& out);
// Hello, into out; returns its size (0 if it did not fit). `timestamp`: its Timestamp (0: none,
// as in clear; the agent stamps the library's); `gssToken`: a Kerberos token (fwgate check).
std::size_t encodeHelloFor(const Identity& identity, std::span<std::uint8_t> out,
                           std::uint64_t timestamp = 0, protocol::Bytes gssToken = {});

// Milliseconds of CLOCK_MONOTONIC: deadlines in the client.
std::int64_t monotonicMs();

// Waits until fd is ready for `events` (POLLIN/POLLOUT) within timeoutMs (EINTR is retried with
// what is left). 0 when ready, else -1 with errno (ETIMEDOUT).
int waitFor(int fd, short events, int timeoutMs);

// A new TCP connection to the gateway (the first family that works), within timeoutMs.
// Returns the fd (close-on-exec) or -1 with errno.
int openControl(const GatewayEndpoints& gateway, int timeoutMs);

// All of `data` on a non-blocking socket, waiting at most timeoutMs for room each time. False
// with errno.
bool sendAll(int fd, const std::uint8_t* data, std::size_t n, int timeoutMs);
// Exactly one frame (and nothing after it: what follows belongs to the next reader) into buf by
// the deadline (monotonicMs): its size, or -1 with errno (ECONNRESET at EOF, EPROTO when larger
// than cap).
long readOneFrame(int fd, std::uint8_t* buf, std::size_t cap, std::int64_t deadline);
// Exactly one record of the encrypted channel (u16 length, then that many bytes), the same way.
long readOneRecord(int fd, std::uint8_t* buf, std::size_t cap, std::int64_t deadline);

// --- The encrypted channel through the agent ------------------------------------------------
// This library keeps no cryptography: `fwgate agent` holds it (docs/control-protocol.md, "The
// preload library and the agent"). The library sends the agent the frames it would send in
// clear and writes what comes back on its control connection; what it reads there goes back to
// the agent, and the frames come out.
//
// A control connection's channel: in clear (agent -1), or through the agent connection `agent`.
struct Channel {
  int agent = -1;
  bool welcomed = false;  // the Welcome is read (through the agent: message 2 opened)
};
// The agent: FWGATE_AGENT_SOCKET, else $XDG_RUNTIME_DIR/fwgate/agent.sock, else
// /run/fwgate/agent.sock; one run by root or by this user (SO_PEERCRED). A connection (fd,
// close-on-exec), -1 when none answers: then `required` says whether that is an error
// (FWGATE_AGENT_SOCKET names one) or the channel stays in clear.
int agentConnect(bool& required);
void closeChannel(Channel& channel);
// The agent's messages: Seal (frames in clear -> bytes for the gateway: the first time a
// Handshake frame, then records), Open (one unit from the gateway -> its frames in clear), and
// its Result (a status byte, then the bytes, or the agent's reason when the status is not 0).
enum class AgentMessage : std::uint8_t { Seal = 0x40, Open = 0x41, Result = 0x42 };
// One call; the result into `out` (which may be `in`'s memory): its size, or -1 with errno and
// the reason in `detail`. The first Seal of a connection has a `prefix`: the pinned key and the
// gateway ("host:port"), each behind a length byte.
long agentCall(int agent, AgentMessage message, protocol::Bytes prefix, protocol::Bytes in,
               std::span<std::uint8_t> out, int timeoutMs, char* detail, std::size_t detailSize);

struct Reply {
  protocol::control::Welcome welcome;
  std::uint8_t type = 0;  // of the reply to the request
  protocol::Bytes body;   // its body, a view into the caller's buffer
};
// Hello + `request` on a fresh connection, reads the Welcome and one reply into `buffer`.
// 0 on a complete exchange (check reply.welcome.status), else an errno: the gateway could not be
// reached, closed early (ECONNRESET) or answered nonsense (EPROTO).
int exchange(const GatewayEndpoints& gateway, const Identity& identity,
             std::span<const std::uint8_t> request, std::span<std::uint8_t> buffer, int timeoutMs,
             Reply& reply);

// --- Remoted connect on the application's socket ---------------------------------------------

// Sends Hello + Connect on `fd`, already connected to the gateway: through the agent when one
// answers (`channel` keeps it for the answer), else in clear. 0 or an errno.
int sendConnectRequest(int fd, const Identity& identity,
                       const protocol::control::Endpoint& destination, const char* nameHint,
                       Channel& channel, char* detail, std::size_t detailSize);

// The gateway's answer to a remoted connect, read without blocking. Each frame is consumed as
// soon as it is whole (found with MSG_PEEK), and nothing beyond it: the destination's first bytes
// may follow. `channel` carries the progress between calls (from sendConnectRequest). NeedMore
// until the Connected frame is in; then `error` is 0 (connected) or the errno for the status, and
// `detail` the gateway's message; the channel is closed then.
// `bound`, when given, receives the gateway's address toward the destination (family 0 if the
// gateway did not say).
enum class ReplyState { NeedMore, Done };
ReplyState takeConnectReply(int fd, Channel& channel, int& error, char* detail,
                            std::size_t detailSize, protocol::control::Endpoint* bound = nullptr);

// The same, for a caller that never waits (a non-blocking connect moved on from the program's
// poll, epoll or getsockopt): each agent call is split into its request and its Result, read
// only once the agent's descriptor is readable, so that no call waits for the agent either.
//
// Hello + Connect, in clear on `fd` (`sealing` false), or handed to the agent (`sealing` true:
// its Result is awaited on channel.agent). 0 or an errno.
int startConnectRequest(int fd, const Identity& identity,
                        const protocol::control::Endpoint& destination, const char* nameHint,
                        Channel& channel, bool& sealing, char* detail, std::size_t detailSize);
// The agent's Result to the Seal: written to `fd`. NeedMore until it is all in.
ReplyState finishSeal(int fd, Channel& channel, int& error, char* detail, std::size_t detailSize);
// The next unit of the gateway's answer: in clear, handled at once (as takeConnectReply does);
// through the agent, handed to it (`opening` true: its Result is awaited on channel.agent).
ReplyState takeConnectUnit(int fd, Channel& channel, bool& opening, int& error, char* detail,
                           std::size_t detailSize, protocol::control::Endpoint* bound);
// The agent's Result to the Open: the Welcome (NeedMore: the Connected comes next) or the
// Connected (Done, as takeConnectReply ends).
ReplyState finishOpen(Channel& channel, int& error, char* detail, std::size_t detailSize,
                      protocol::control::Endpoint* bound);

// --- Remoted listening socket ------------------------------------------------------------------

// A remoted bind: a new control connection (returned in `controlFd`, close-on-exec, kept open by
// the caller for as long as the listening socket lives) carrying Hello + Bind; waits for Welcome
// and Bound within timeoutMs. 0 with `bound` and `token` filled, else an errno (EACCES for a
// policy refusal) with the gateway's words in `detail`; controlFd is -1 then.
struct RemoteBind {
  protocol::control::Endpoint bound;
  protocol::control::Token token{};
};
// `channel` is kept for remoteListen (closed by it, or on failure).
int remoteBind(const GatewayEndpoints& gateway, const Identity& identity,
               const protocol::control::BindRequest& request, int timeoutMs, int& controlFd,
               Channel& channel, RemoteBind& out, char* detail, std::size_t detailSize);
// UDP through the gateway: a control connection (kept open by the caller while the UDP socket
// lives) carrying Hello + UdpAssociate for the socket's port; 0 with `relay` (where the socket
// sends its datagrams, each behind the SOCKS 5 UDP header) filled, else an errno.
// RemoteBindUdpPorts: with `publishPort` (not 0) the association is published on the gateway's
// external UDP port, and `published` (required then) gets the address remote senders use.
int udpAssociate(const GatewayEndpoints& gateway, const Identity& identity, std::uint16_t localPort,
                 int timeoutMs, int& controlFd, protocol::control::Endpoint& relay, char* detail,
                 std::size_t detailSize, std::uint16_t publishPort = 0,
                 protocol::control::Endpoint* published = nullptr);
// Listen on the control connection of a remoted bind (the client's socket listens on
// `localPort`), and its answer. 0 or an errno.
int remoteListen(int controlFd, Channel& channel, std::uint16_t localPort, std::uint16_t backlog,
                 int timeoutMs, char* detail, std::size_t detailSize);
// The Accepted frame at the start of a connection the gateway made to the client's listening
// socket, read exactly (nothing after it), within timeoutMs. 0 with `peer` filled when the token
// matches; EPROTO for anything else (not the gateway, or another listen's token).
int readAccepted(int fd, const protocol::control::Token& token, int timeoutMs,
                 protocol::control::Endpoint& peer);

}  // namespace fwgate::client
