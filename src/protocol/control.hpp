// The firewall-client control channel (docs/control-protocol.md): frames of typed attributes.
// Allocation-free: decoders return views into the caller's bytes, encoders write into the caller's
// buffer. The preload library uses this codec inside connect() and getaddrinfo().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "protocol/parse.hpp"

namespace fwgate::protocol::control {

// One number, compared exactly: a client and a gateway of different versions say so and stop.
// 2: remoted listens (Bind, Listen, Accepted) and UDP (UdpAssociate) added to 1.
// 3: the encrypted channel (KeyRequest, KeyOffer, Handshake; Hello's Timestamp).
inline constexpr std::uint16_t kVersion = 3;
inline constexpr std::uint16_t kDefaultPort = 1745;
// The encrypted channel's Noise prologue: both sides hash it first, so that a handshake of another
// protocol or version never completes.
inline constexpr std::string_view kNoisePrologue = "fwgate control 3";

/*
 * Frame:     +------+----------------+------------------+
 *            | TYPE | LENGTH (u24 BE) | BODY (LENGTH)    |
 *            +------+----------------+------------------+
 *            |  1   |       3        | 0 to kMaxBody    |
 * Body: attributes, each
 *            +-----+---------------+-------+
 *            | TAG | LENGTH (u16 BE)| VALUE |
 *            +-----+---------------+-------+
 * Receivers skip attributes whose tag they do not know (later minor additions stay compatible).
 */
inline constexpr std::size_t kHeaderSize = 4;
inline constexpr std::size_t kMaxBody = 1 << 20;
inline constexpr std::size_t kMaxAttribute = 0xFFFF;

enum class MessageType : std::uint8_t {
  Hello = 0x01,         // client: first message on every connection
  Welcome = 0x02,       // gateway: answer to Hello (status, the gateway's version)
  GetConfig = 0x03,     // client: the client configuration for my network, please
  Config = 0x04,        // gateway: LAT, local domains, application settings, refresh interval
  Resolve = 0x05,       // client: resolve this name at the gateway
  Resolved = 0x06,      // gateway: the addresses, or why not
  Connect = 0x07,       // client, on the application's own socket: connect it to this destination
  Connected = 0x08,     // gateway: the result; on Ok the connection carries the application's bytes
  Bind = 0x09,          // client: a remoted bind; the gateway binds a socket on its external side
  Bound = 0x0A,         // gateway: the external address and port, and the connect-back token
  Listen = 0x0B,        // client: the program listens; the gateway starts accepting
  Listening = 0x0C,     // gateway: the result of Listen
  Accepted = 0x0D,      // gateway, first frame on a connection to the client's listening socket
  UdpAssociate = 0x0E,  // client: relay this UDP socket's datagrams to remote destinations
  UdpAssociated = 0x0F,  // gateway: where to send them (the relay's address on the client side)
  KeyRequest = 0x10,     // client, in clear: the gateway's static key, please (trust on first use)
  KeyOffer = 0x11,       // gateway, in clear: its static key and name
  Handshake = 0x12,      // a Noise IK message as the body: 1 from the client, 2 from the gateway
  Resume = 0x13,         // a resumed connection's first record (client: behind ticket and counter)
};

enum class Tag : std::uint8_t {
  Version = 0x01,         // u16
  Status = 0x02,          // u8 Status
  Message = 0x03,         // text: a human-readable detail
  User = 0x04,            // text
  Password = 0x05,        // text
  Host = 0x06,            // text: the client host's name
  Application = 0x07,     // text: the program's binary name without path
  Pid = 0x08,             // u32
  OsUser = 0x09,          // text: the local account running the program (not authenticated)
  ServerName = 0x10,      // text: the gateway's name, as it calls itself
  Name = 0x11,            // text: a host name to resolve
  Family = 0x12,          // u8: 0 any, 4, 6
  Address = 0x13,         // address (repeated in Resolved)
  Canonical = 0x14,       // text: canonical name (Resolved)
  Destination = 0x15,     // endpoint (Connect)
  NameHint = 0x16,        // text: the name the client resolved the destination from (Connect)
  Bound = 0x17,           // endpoint: the gateway's address toward the destination (Connected),
                          // the remoted listening socket's external address (Bound)
  Requested = 0x18,       // endpoint: the address and port the program bound to (Bind)
  LocalPort = 0x19,       // u16: the port of the client's own socket (Listen, UdpAssociate)
  BindMode = 0x1A,        // u8 BindMode (Bind)
  Token = 0x1B,           // 16 bytes: proves a connection to the client comes from the gateway
  Peer = 0x1C,            // endpoint: the remote host that connected (Accepted)
  Backlog = 0x1D,         // u16 (Listen)
  Definition = 0x1E,      // text: the protocol definition that allowed it (Bound, Connected)
  Network = 0x20,         // text: the gateway network the client is in (Config)
  Range = 0x21,           // range (repeated): the local address table
  DomainSuffix = 0x22,    // text (repeated): the local domain table
  Settings = 0x23,        // text: application settings sections, INI
  RefreshSeconds = 0x24,  // u32
  WebProxy = 0x25,        // text: host:port of the Web Proxy
  PacUrl = 0x26,          // text: URL of the automatic configuration script (PAC)
  PublishPort = 0x27,     // u16: publish the association on this external UDP port (UdpAssociate)
  Published = 0x28,       // endpoint: the published association's external address (UdpAssociated)
  PublicKey = 0x29,       // 32 bytes: the gateway's static X25519 key (KeyOffer, Welcome)
  Timestamp = 0x2A,       // u64: milliseconds since 1970 when the client wrote it (Hello)
  Ticket = 0x2B,          // bytes: resumes later connections without a handshake (Welcome)
  TicketLifetime = 0x2C,  // u32 seconds the Ticket is good for (Welcome)
  // bytes: a Kerberos GSS-API token for fwgate/GATEWAY, bound to the encrypted channel (Hello;
  // never in clear)
  GssToken = 0x2D,
};

// Result of a request. Clients map it to errno / EAI_* (errnoFor, below).
enum class Status : std::uint8_t {
  Ok = 0,
  VersionMismatch = 1,
  AuthenticationFailed = 2,
  NotFirewallClient = 3,  // the client's address is in no network with firewall clients enabled
  BadRequest = 4,
  Denied = 5,  // a rule denied it
  Refused = 6,
  TimedOut = 7,
  NetworkUnreachable = 8,
  HostUnreachable = 9,
  NameNotFound = 10,
  NameTemporaryFailure = 11,
  AddressFamilyNotSupported = 12,
  GeneralFailure = 13,
  UnexpectedMessage = 14,
  KeyMismatch = 15,         // the Handshake was for another key than the gateway's (Welcome, clear)
  Replayed = 16,            // a Handshake seen before, or its Timestamp too far from the gateway's
  EncryptionRequired = 17,  // a clear Hello where [control] encryption = "required"
  TicketRefused = 18,       // a Resume whose ticket is not this gateway's, or expired (clear)
};
inline constexpr std::uint8_t kMaxStatus = 18;
inline constexpr std::size_t kPublicKeySize = 32;
using PublicKey = std::array<std::uint8_t, kPublicKeySize>;
std::string_view statusText(Status status);
// errno a remoted call fails with (EACCES for Denied, ECONNREFUSED, ETIMEDOUT, ...); 0 for Ok.
int errnoFor(Status status);
// The status a gateway reports for an errno from its own connect() or socket calls.
Status statusForErrno(int error);

// An IPv4 or IPv6 address, network order. family is 4 or 6 (0: none).
struct IpAddress {
  std::uint8_t family = 0;
  std::array<std::uint8_t, 16> bytes{};
  std::size_t size() const { return family == 4 ? 4 : 16; }
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};
// Wire: FAMILY (4|6), 4 or 16 bytes. Endpoint: address, then PORT u16 BE. Range: two addresses of
// one family, first <= last.
struct Endpoint {
  IpAddress address;
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
struct AddressRange {
  IpAddress first;
  IpAddress last;
  friend bool operator==(const AddressRange&, const AddressRange&) = default;
};

// A frame at the front of `in`; body is a view into `in`. Unknown types parse Complete (the
// receiver answers UnexpectedMessage). Invalid (BadLength) when LENGTH exceeds kMaxBody.
struct Frame {
  std::uint8_t type = 0;
  Bytes body;
};
ParseResult<Frame> parseFrame(Bytes in);

// Walks a body's attributes. next() is false at the end, and also on a truncated attribute, which
// leaves ok() false.
class AttributeReader {
 public:
  explicit AttributeReader(Bytes body) : rest_(body) {}
  bool next(Tag& tag, Bytes& value);
  bool ok() const { return ok_; }

 private:
  Bytes rest_;
  bool ok_ = true;
};

bool readU8(Bytes value, std::uint8_t& out);
bool readU16(Bytes value, std::uint16_t& out);
bool readU32(Bytes value, std::uint32_t& out);
bool readU64(Bytes value, std::uint64_t& out);
std::string_view readText(Bytes value);
bool readAddress(Bytes value, IpAddress& out);
bool readEndpoint(Bytes value, Endpoint& out);
bool readRange(Bytes value, AddressRange& out);

// Builds one frame in a caller's buffer. finish() returns the frame's size, or 0 when it did not
// fit, an attribute was too long, or the body passed kMaxBody: nothing partial is ever sent.
class FrameWriter {
 public:
  FrameWriter(std::span<std::uint8_t> out, MessageType type);
  FrameWriter& raw(Tag tag, Bytes value);
  FrameWriter& u8(Tag tag, std::uint8_t value);
  FrameWriter& u16(Tag tag, std::uint16_t value);
  FrameWriter& u32(Tag tag, std::uint32_t value);
  FrameWriter& u64(Tag tag, std::uint64_t value);
  FrameWriter& text(Tag tag, std::string_view value);
  // Skipped when value is empty: absent and empty text mean the same.
  FrameWriter& textIfAny(Tag tag, std::string_view value);
  FrameWriter& address(Tag tag, const IpAddress& value);
  FrameWriter& endpoint(Tag tag, const Endpoint& value);
  FrameWriter& range(Tag tag, const AddressRange& value);
  std::size_t finish();

 private:
  bool reserve(Tag tag, std::size_t length);
  std::span<std::uint8_t> out_;
  std::size_t size_ = kHeaderSize;
  bool failed_ = false;
};

// --- Typed messages: decode* return false when a required attribute is missing or malformed. ---

struct Hello {
  std::uint16_t version = 0;  // required
  std::string_view user, password, host, application, osUser;
  std::uint32_t pid = 0;
  std::uint64_t timestamp = 0;  // 0: absent (a clear Hello)
  Bytes gssToken;               // empty: absent
};
bool decodeHello(Bytes body, Hello& out);
std::size_t encodeHello(std::span<std::uint8_t> out, const Hello& hello);

struct Welcome {
  Status status = Status::GeneralFailure;  // required
  std::uint16_t version = 0;               // required: the gateway's version
  std::string_view serverName, message;
  std::optional<PublicKey> publicKey;  // KeyMismatch: the key the gateway has
  Bytes ticket;                        // after a handshake: for resuming (empty: none)
  std::uint32_t ticketLifetime = 0;    // seconds
};
bool decodeWelcome(Bytes body, Welcome& out);
std::size_t encodeWelcome(std::span<std::uint8_t> out, const Welcome& welcome);

struct Resolve {
  std::string_view name;    // required, non-empty
  std::uint8_t family = 0;  // 0, 4 or 6
};
bool decodeResolve(Bytes body, Resolve& out);
// KeyOffer: the answer to a KeyRequest (whose body is empty).
struct KeyOffer {
  std::uint16_t version = 0;  // required
  PublicKey publicKey{};      // required
  std::string_view serverName;
};
bool decodeKeyOffer(Bytes body, KeyOffer& out);
std::size_t encodeKeyOffer(std::span<std::uint8_t> out, const KeyOffer& offer);
// A Handshake frame around a Noise message (the body is the message itself, not attributes).
std::size_t encodeHandshake(std::span<std::uint8_t> out, Bytes noiseMessage);
std::size_t encodeResolve(std::span<std::uint8_t> out, const Resolve& resolve);

inline constexpr std::size_t kMaxResolvedAddresses = 32;
struct Resolved {
  Status status = Status::GeneralFailure;  // required
  std::string_view canonical, message;
  std::array<IpAddress, kMaxResolvedAddresses> addresses{};  // further addresses are dropped
  std::size_t count = 0;
};
bool decodeResolved(Bytes body, Resolved& out);
std::size_t encodeResolved(std::span<std::uint8_t> out, const Resolved& resolved);

struct Connect {
  Endpoint destination;  // required
  std::string_view nameHint;
};
bool decodeConnect(Bytes body, Connect& out);
std::size_t encodeConnect(std::span<std::uint8_t> out, const Connect& connect);

struct Connected {
  Status status = Status::GeneralFailure;  // required
  Endpoint bound;                          // family 0 when absent
  std::string_view definition, message;
};
bool decodeConnected(Bytes body, Connected& out);
std::size_t encodeConnected(std::span<std::uint8_t> out, const Connected& connected);

// --- Remoted listening sockets (bind / listen / accept), docs/control-protocol.md -------------

// Secondary: a connection back for a primary connection the same program opened (FTP's PORT),
// as long as that primary lives, from its host only by default. Server: a server bound on the
// gateway (ServerBindTcpPorts), accepting many connections, as its rules allow. Publish: a bind to
// the wildcard address and port 0 with no primary connection (PublishBindTcp), on a port of the
// gateway's dynamic range, accepting many connections as its rules allow, where the gateway's
// [firewall_client] publish_listens names the program.
enum class BindMode : std::uint8_t { Secondary = 0, Server = 1, Publish = 2 };
inline constexpr std::uint8_t kMaxBindMode = 2;
inline constexpr std::size_t kTokenSize = 16;
using Token = std::array<std::uint8_t, kTokenSize>;

struct BindRequest {
  Endpoint requested;  // required: what the program passed to bind()
  BindMode mode = BindMode::Secondary;
};
bool decodeBind(Bytes body, BindRequest& out);
std::size_t encodeBind(std::span<std::uint8_t> out, const BindRequest& bind);

struct BoundReply {
  Status status = Status::GeneralFailure;  // required
  Endpoint bound;                          // on Ok: the gateway's external address and port
  Token token{};                           // on Ok
  std::string_view definition, message;
};
bool decodeBound(Bytes body, BoundReply& out);
std::size_t encodeBound(std::span<std::uint8_t> out, const BoundReply& bound);

// Sent once the program's own socket listens (so that the gateway's first connection to it finds
// it listening); a refused Bind therefore leaves the program's socket as it was.
struct ListenRequest {
  std::uint16_t localPort = 0;  // required, non-zero: the client's own listening socket
  std::uint16_t backlog = 0;
};
bool decodeListen(Bytes body, ListenRequest& out);
std::size_t encodeListen(std::span<std::uint8_t> out, const ListenRequest& listen);

struct ListeningReply {
  Status status = Status::GeneralFailure;  // required
  std::string_view message;
};
bool decodeListening(Bytes body, ListeningReply& out);
std::size_t encodeListening(std::span<std::uint8_t> out, const ListeningReply& listening);

struct AcceptedNotice {
  Token token{};  // required
  Endpoint peer;  // required: the remote host that connected to the gateway
};
bool decodeAccepted(Bytes body, AcceptedNotice& out);
std::size_t encodeAccepted(std::span<std::uint8_t> out, const AcceptedNotice& accepted);

// --- UDP through the gateway ------------------------------------------------------------------

struct UdpAssociateRequest {
  std::uint16_t localPort = 0;  // required, non-zero: the client's UDP socket's port
  // RemoteBindUdpPorts: the relay's remote side listens on the gateway's external address at
  // `publishPort` (non-zero when `publish`), for senders the gateway's policy allows.
  bool publish = false;
  std::uint16_t publishPort = 0;
};
bool decodeUdpAssociate(Bytes body, UdpAssociateRequest& out);
std::size_t encodeUdpAssociate(std::span<std::uint8_t> out, const UdpAssociateRequest& request);

struct UdpAssociatedReply {
  Status status = Status::GeneralFailure;  // required
  Endpoint relay;                          // on Ok: where the client sends its datagrams
  std::string_view message;
  Endpoint published;  // on Ok to a publish: the external address and port (family 0: none)
};
bool decodeUdpAssociated(Bytes body, UdpAssociatedReply& out);
std::size_t encodeUdpAssociated(std::span<std::uint8_t> out, const UdpAssociatedReply& reply);

/*
 * Every datagram between a firewall client and its relay starts with the SOCKS 5 UDP request
 * header (RFC 1928 section 7), with an IPv4 or IPv6 address: toward the relay, the destination;
 * from it, the remote source.
 *            +-----+------+------+----------+----------+----------+
 *            | RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
 *            +-----+------+------+----------+----------+----------+
 *            |  2  |  1   | 1|4  |  4 | 16  |    2     | Variable |
 */
inline constexpr std::size_t kMaxDatagramHeader = 22;
// The header for `peer` into `out`: its size (10 or 22), or 0 when it does not fit.
std::size_t encodeDatagramHeader(std::span<std::uint8_t> out, const Endpoint& peer);
// The header at the front of `datagram`: its size, or 0 when it is not one (too short, a
// fragment, a domain name or an unknown address type).
std::size_t decodeDatagramHeader(Bytes datagram, Endpoint& peer);

// Config is built with FrameWriter directly (its ranges and suffixes repeat) and read with
// AttributeReader; this checks it: a status, and every Range and Version well formed.
bool validConfig(Bytes body);

}  // namespace fwgate::protocol::control
