#include "protocol/control.hpp"

#include <algorithm>

#include <cerrno>
#include <cstring>

namespace fwgate::protocol::control {

std::string_view statusText(Status status) {
  switch (status) {
    case Status::Ok:
      return "ok";
    case Status::VersionMismatch:
      return "control protocol version mismatch";
    case Status::AuthenticationFailed:
      return "authentication failed";
    case Status::NotFirewallClient:
      return "firewall clients are not enabled for this client's network";
    case Status::BadRequest:
      return "bad request";
    case Status::Denied:
      return "denied by the gateway's rules";
    case Status::Refused:
      return "connection refused";
    case Status::TimedOut:
      return "timed out";
    case Status::NetworkUnreachable:
      return "network unreachable";
    case Status::HostUnreachable:
      return "host unreachable";
    case Status::NameNotFound:
      return "name not found";
    case Status::NameTemporaryFailure:
      return "temporary failure in name resolution";
    case Status::AddressFamilyNotSupported:
      return "address family not supported";
    case Status::GeneralFailure:
      return "general failure";
    case Status::UnexpectedMessage:
      return "unexpected message";
    case Status::KeyMismatch:
      return "the gateway's key is not the one pinned";
    case Status::Replayed:
      return "handshake replayed or its clock too far off";
    case Status::EncryptionRequired:
      return "the gateway requires the encrypted channel";
    case Status::TicketRefused:
      return "the gateway refused the resumption ticket";
  }
  return "unknown status";
}

int errnoFor(Status status) {
  switch (status) {
    case Status::Ok:
      return 0;
    case Status::Denied:
    case Status::AuthenticationFailed:
    case Status::NotFirewallClient:
    case Status::KeyMismatch:
    case Status::EncryptionRequired:
      return EACCES;
    case Status::Refused:
      return ECONNREFUSED;
    case Status::TimedOut:
      return ETIMEDOUT;
    case Status::NetworkUnreachable:
      return ENETUNREACH;
    case Status::HostUnreachable:
    case Status::NameNotFound:
      return EHOSTUNREACH;
    case Status::AddressFamilyNotSupported:
      return EAFNOSUPPORT;
    case Status::VersionMismatch:
    case Status::BadRequest:
    case Status::UnexpectedMessage:
    case Status::Replayed:
    case Status::TicketRefused:
      return EPROTO;
    case Status::NameTemporaryFailure:
    case Status::GeneralFailure:
      return ECONNABORTED;
  }
  return ECONNABORTED;
}

Status statusForErrno(int error) {
  switch (error) {
    case 0:
      return Status::Ok;
    case ECONNREFUSED:
      return Status::Refused;
    case ETIMEDOUT:
      return Status::TimedOut;
    case ENETUNREACH:
    case ENETDOWN:
      return Status::NetworkUnreachable;
    case EHOSTUNREACH:
    case EHOSTDOWN:
      return Status::HostUnreachable;
    case EACCES:
    case EPERM:
      return Status::Denied;
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
      return Status::AddressFamilyNotSupported;
    default:
      return Status::GeneralFailure;
  }
}

ParseResult<Frame> parseFrame(Bytes in) {
  ParseResult<Frame> r;
  if (in.size() < kHeaderSize) return r;
  const std::size_t length = (std::size_t{in[1]} << 16) | (std::size_t{in[2]} << 8) | in[3];
  if (length > kMaxBody) {
    r.status = ParseStatus::Invalid;
    r.error = ParseError::BadLength;
    return r;
  }
  if (in.size() < kHeaderSize + length) return r;
  r.status = ParseStatus::Complete;
  r.value.type = in[0];
  r.value.body = in.subspan(kHeaderSize, length);
  r.consumed = kHeaderSize + length;
  return r;
}

bool AttributeReader::next(Tag& tag, Bytes& value) {
  if (!ok_ || rest_.empty()) return false;
  if (rest_.size() < 3) {
    ok_ = false;
    return false;
  }
  const std::size_t length = (std::size_t{rest_[1]} << 8) | rest_[2];
  if (rest_.size() < 3 + length) {
    ok_ = false;
    return false;
  }
  tag = static_cast<Tag>(rest_[0]);
  value = rest_.subspan(3, length);
  rest_ = rest_.subspan(3 + length);
  return true;
}

bool readU8(Bytes value, std::uint8_t& out) {
  if (value.size() != 1) return false;
  out = value[0];
  return true;
}

bool readU16(Bytes value, std::uint16_t& out) {
  if (value.size() != 2) return false;
  out = static_cast<std::uint16_t>((value[0] << 8) | value[1]);
  return true;
}

bool readU32(Bytes value, std::uint32_t& out) {
  if (value.size() != 4) return false;
  out = (std::uint32_t{value[0]} << 24) | (std::uint32_t{value[1]} << 16) |
        (std::uint32_t{value[2]} << 8) | value[3];
  return true;
}

bool readU64(Bytes value, std::uint64_t& out) {
  if (value.size() != 8) return false;
  out = 0;
  for (const std::uint8_t b : value) out = (out << 8) | b;
  return true;
}

std::string_view readText(Bytes value) {
  return {reinterpret_cast<const char*>(value.data()), value.size()};
}

namespace {

// Reads FAMILY + address from the front of value; returns the bytes used, 0 when malformed.
std::size_t readAddressPrefix(Bytes value, IpAddress& out) {
  if (value.empty()) return 0;
  const std::uint8_t family = value[0];
  const std::size_t size = family == 4 ? 4 : family == 6 ? 16 : 0;
  if (size == 0 || value.size() < 1 + size) return 0;
  out = IpAddress{};
  out.family = family;
  std::memcpy(out.bytes.data(), value.data() + 1, size);
  return 1 + size;
}

bool lessOrEqual(const IpAddress& a, const IpAddress& b) {
  return std::memcmp(a.bytes.data(), b.bytes.data(), a.size()) <= 0;
}

}  // namespace

bool readAddress(Bytes value, IpAddress& out) {
  const std::size_t used = readAddressPrefix(value, out);
  return used != 0 && used == value.size();
}

bool readEndpoint(Bytes value, Endpoint& out) {
  const std::size_t used = readAddressPrefix(value, out.address);
  if (used == 0 || value.size() != used + 2) return false;
  out.port = static_cast<std::uint16_t>((value[used] << 8) | value[used + 1]);
  return true;
}

bool readRange(Bytes value, AddressRange& out) {
  const std::size_t first = readAddressPrefix(value, out.first);
  if (first == 0) return false;
  const std::size_t last = readAddressPrefix(value.subspan(first), out.last);
  return last != 0 && first + last == value.size() && out.first.family == out.last.family &&
         lessOrEqual(out.first, out.last);
}

FrameWriter::FrameWriter(std::span<std::uint8_t> out, MessageType type) : out_(out) {
  if (out_.size() < kHeaderSize) {
    failed_ = true;
    return;
  }
  out_[0] = static_cast<std::uint8_t>(type);
}

bool FrameWriter::reserve(Tag tag, std::size_t length) {
  if (failed_ || length > kMaxAttribute || out_.size() - size_ < 3 + length ||
      size_ - kHeaderSize + 3 + length > kMaxBody) {
    failed_ = true;
    return false;
  }
  out_[size_] = static_cast<std::uint8_t>(tag);
  out_[size_ + 1] = static_cast<std::uint8_t>(length >> 8);
  out_[size_ + 2] = static_cast<std::uint8_t>(length);
  size_ += 3;
  return true;
}

FrameWriter& FrameWriter::raw(Tag tag, Bytes value) {
  if (reserve(tag, value.size())) {
    if (!value.empty()) std::memcpy(out_.data() + size_, value.data(), value.size());
    size_ += value.size();
  }
  return *this;
}

FrameWriter& FrameWriter::u8(Tag tag, std::uint8_t value) {
  return raw(tag, Bytes(&value, 1));
}

FrameWriter& FrameWriter::u16(Tag tag, std::uint16_t value) {
  const std::uint8_t b[2] = {static_cast<std::uint8_t>(value >> 8),
                             static_cast<std::uint8_t>(value)};
  return raw(tag, b);
}

FrameWriter& FrameWriter::u32(Tag tag, std::uint32_t value) {
  const std::uint8_t b[4] = {
      static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
      static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)};
  return raw(tag, b);
}

FrameWriter& FrameWriter::u64(Tag tag, std::uint64_t value) {
  std::uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(value >> (56 - 8 * i));
  return raw(tag, b);
}

FrameWriter& FrameWriter::text(Tag tag, std::string_view value) {
  return raw(tag, Bytes(reinterpret_cast<const std::uint8_t*>(value.data()), value.size()));
}

FrameWriter& FrameWriter::textIfAny(Tag tag, std::string_view value) {
  return value.empty() ? *this : text(tag, value);
}

namespace {

std::size_t putAddress(std::uint8_t* out, const IpAddress& a) {
  out[0] = a.family;
  std::memcpy(out + 1, a.bytes.data(), a.size());
  return 1 + a.size();
}

bool validFamily(const IpAddress& a) {
  return a.family == 4 || a.family == 6;
}

}  // namespace

FrameWriter& FrameWriter::address(Tag tag, const IpAddress& value) {
  if (!validFamily(value)) {
    failed_ = true;
    return *this;
  }
  std::uint8_t b[17];
  return raw(tag, Bytes(b, putAddress(b, value)));
}

FrameWriter& FrameWriter::endpoint(Tag tag, const Endpoint& value) {
  if (!validFamily(value.address)) {
    failed_ = true;
    return *this;
  }
  std::uint8_t b[19];
  std::size_t n = putAddress(b, value.address);
  b[n++] = static_cast<std::uint8_t>(value.port >> 8);
  b[n++] = static_cast<std::uint8_t>(value.port);
  return raw(tag, Bytes(b, n));
}

FrameWriter& FrameWriter::range(Tag tag, const AddressRange& value) {
  if (!validFamily(value.first) || value.first.family != value.last.family ||
      !lessOrEqual(value.first, value.last)) {
    failed_ = true;
    return *this;
  }
  std::uint8_t b[34];
  std::size_t n = putAddress(b, value.first);
  n += putAddress(b + n, value.last);
  return raw(tag, Bytes(b, n));
}

std::size_t FrameWriter::finish() {
  if (failed_) return 0;
  const std::size_t length = size_ - kHeaderSize;
  out_[1] = static_cast<std::uint8_t>(length >> 16);
  out_[2] = static_cast<std::uint8_t>(length >> 8);
  out_[3] = static_cast<std::uint8_t>(length);
  return size_;
}

namespace {

bool readStatus(Bytes value, Status& out) {
  std::uint8_t raw = 0;
  if (!readU8(value, raw) || raw > kMaxStatus) return false;
  out = static_cast<Status>(raw);
  return true;
}

}  // namespace

bool decodeHello(Bytes body, Hello& out) {
  out = Hello{};
  bool haveVersion = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Version:
        if (!readU16(value, out.version)) return false;
        haveVersion = true;
        break;
      case Tag::User:
        out.user = readText(value);
        break;
      case Tag::Password:
        out.password = readText(value);
        break;
      case Tag::Host:
        out.host = readText(value);
        break;
      case Tag::Application:
        out.application = readText(value);
        break;
      case Tag::OsUser:
        out.osUser = readText(value);
        break;
      case Tag::Pid:
        if (!readU32(value, out.pid)) return false;
        break;
      case Tag::Timestamp:
        if (!readU64(value, out.timestamp) || out.timestamp == 0) return false;
        break;
      case Tag::GssToken:
        if (value.empty()) return false;
        out.gssToken = value;
        break;
      default:
        break;
    }
  }
  return reader.ok() && haveVersion;
}

std::size_t encodeHello(std::span<std::uint8_t> out, const Hello& hello) {
  FrameWriter w(out, MessageType::Hello);
  w.u16(Tag::Version, hello.version)
      .textIfAny(Tag::User, hello.user)
      .textIfAny(Tag::Password, hello.password)
      .textIfAny(Tag::Host, hello.host)
      .textIfAny(Tag::Application, hello.application)
      .textIfAny(Tag::OsUser, hello.osUser)
      .u32(Tag::Pid, hello.pid);
  if (hello.timestamp != 0) w.u64(Tag::Timestamp, hello.timestamp);
  if (!hello.gssToken.empty()) w.raw(Tag::GssToken, hello.gssToken);
  return w.finish();
}

bool decodeWelcome(Bytes body, Welcome& out) {
  out = Welcome{};
  bool haveStatus = false;
  bool haveVersion = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Status:
        if (!readStatus(value, out.status)) return false;
        haveStatus = true;
        break;
      case Tag::Version:
        if (!readU16(value, out.version)) return false;
        haveVersion = true;
        break;
      case Tag::ServerName:
        out.serverName = readText(value);
        break;
      case Tag::Message:
        out.message = readText(value);
        break;
      case Tag::PublicKey: {
        PublicKey key;
        if (value.size() != key.size()) return false;
        std::copy(value.begin(), value.end(), key.begin());
        out.publicKey = key;
        break;
      }
      case Tag::Ticket:
        out.ticket = value;
        break;
      case Tag::TicketLifetime:
        if (!readU32(value, out.ticketLifetime)) return false;
        break;
      default:
        break;
    }
  }
  return reader.ok() && haveStatus && haveVersion;
}

std::size_t encodeWelcome(std::span<std::uint8_t> out, const Welcome& welcome) {
  FrameWriter w(out, MessageType::Welcome);
  w.u8(Tag::Status, static_cast<std::uint8_t>(welcome.status))
      .u16(Tag::Version, welcome.version)
      .textIfAny(Tag::ServerName, welcome.serverName)
      .textIfAny(Tag::Message, welcome.message);
  if (welcome.publicKey) w.raw(Tag::PublicKey, *welcome.publicKey);
  if (!welcome.ticket.empty()) {
    w.raw(Tag::Ticket, welcome.ticket).u32(Tag::TicketLifetime, welcome.ticketLifetime);
  }
  return w.finish();
}

bool decodeKeyOffer(Bytes body, KeyOffer& out) {
  out = KeyOffer{};
  bool haveVersion = false;
  bool haveKey = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Version:
        if (!readU16(value, out.version)) return false;
        haveVersion = true;
        break;
      case Tag::PublicKey:
        if (value.size() != out.publicKey.size()) return false;
        std::copy(value.begin(), value.end(), out.publicKey.begin());
        haveKey = true;
        break;
      case Tag::ServerName:
        out.serverName = readText(value);
        break;
      default:
        break;
    }
  }
  return reader.ok() && haveVersion && haveKey;
}

std::size_t encodeKeyOffer(std::span<std::uint8_t> out, const KeyOffer& offer) {
  FrameWriter w(out, MessageType::KeyOffer);
  w.u16(Tag::Version, offer.version)
      .raw(Tag::PublicKey, offer.publicKey)
      .textIfAny(Tag::ServerName, offer.serverName);
  return w.finish();
}

std::size_t encodeHandshake(std::span<std::uint8_t> out, Bytes noiseMessage) {
  const std::size_t n = kHeaderSize + noiseMessage.size();
  if (noiseMessage.size() > kMaxBody || out.size() < n) return 0;
  out[0] = static_cast<std::uint8_t>(MessageType::Handshake);
  out[1] = static_cast<std::uint8_t>(noiseMessage.size() >> 16);
  out[2] = static_cast<std::uint8_t>(noiseMessage.size() >> 8);
  out[3] = static_cast<std::uint8_t>(noiseMessage.size());
  std::copy(noiseMessage.begin(), noiseMessage.end(), out.begin() + kHeaderSize);
  return n;
}

bool decodeResolve(Bytes body, Resolve& out) {
  out = Resolve{};
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    if (tag == Tag::Name) {
      out.name = readText(value);
    } else if (tag == Tag::Family) {
      if (!readU8(value, out.family) || (out.family != 0 && out.family != 4 && out.family != 6)) {
        return false;
      }
    }
  }
  return reader.ok() && !out.name.empty();
}

std::size_t encodeResolve(std::span<std::uint8_t> out, const Resolve& resolve) {
  FrameWriter w(out, MessageType::Resolve);
  w.text(Tag::Name, resolve.name).u8(Tag::Family, resolve.family);
  return w.finish();
}

bool decodeResolved(Bytes body, Resolved& out) {
  out.status = Status::GeneralFailure;
  out.canonical = {};
  out.message = {};
  out.count = 0;
  bool haveStatus = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Status:
        if (!readStatus(value, out.status)) return false;
        haveStatus = true;
        break;
      case Tag::Address: {
        IpAddress a;
        if (!readAddress(value, a)) return false;
        if (out.count < out.addresses.size()) out.addresses[out.count++] = a;
        break;
      }
      case Tag::Canonical:
        out.canonical = readText(value);
        break;
      case Tag::Message:
        out.message = readText(value);
        break;
      default:
        break;
    }
  }
  return reader.ok() && haveStatus;
}

std::size_t encodeResolved(std::span<std::uint8_t> out, const Resolved& resolved) {
  FrameWriter w(out, MessageType::Resolved);
  w.u8(Tag::Status, static_cast<std::uint8_t>(resolved.status));
  for (std::size_t i = 0; i < resolved.count && i < resolved.addresses.size(); ++i) {
    w.address(Tag::Address, resolved.addresses[i]);
  }
  w.textIfAny(Tag::Canonical, resolved.canonical).textIfAny(Tag::Message, resolved.message);
  return w.finish();
}

bool decodeConnect(Bytes body, Connect& out) {
  out = Connect{};
  bool haveDestination = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    if (tag == Tag::Destination) {
      if (!readEndpoint(value, out.destination)) return false;
      haveDestination = true;
    } else if (tag == Tag::NameHint) {
      out.nameHint = readText(value);
    }
  }
  return reader.ok() && haveDestination;
}

std::size_t encodeConnect(std::span<std::uint8_t> out, const Connect& connect) {
  FrameWriter w(out, MessageType::Connect);
  w.endpoint(Tag::Destination, connect.destination).textIfAny(Tag::NameHint, connect.nameHint);
  return w.finish();
}

bool decodeConnected(Bytes body, Connected& out) {
  out = Connected{};
  bool haveStatus = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Status:
        if (!readStatus(value, out.status)) return false;
        haveStatus = true;
        break;
      case Tag::Bound:
        if (!readEndpoint(value, out.bound)) return false;
        break;
      case Tag::Definition:
        out.definition = readText(value);
        break;
      case Tag::Message:
        out.message = readText(value);
        break;
      default:
        break;
    }
  }
  return reader.ok() && haveStatus;
}

std::size_t encodeConnected(std::span<std::uint8_t> out, const Connected& connected) {
  FrameWriter w(out, MessageType::Connected);
  w.u8(Tag::Status, static_cast<std::uint8_t>(connected.status));
  if (connected.bound.address.family != 0) w.endpoint(Tag::Bound, connected.bound);
  w.textIfAny(Tag::Definition, connected.definition).textIfAny(Tag::Message, connected.message);
  return w.finish();
}

bool decodeBind(Bytes body, BindRequest& out) {
  out = BindRequest{};
  bool haveRequested = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Requested:
        if (!readEndpoint(value, out.requested)) return false;
        haveRequested = true;
        break;
      case Tag::BindMode: {
        std::uint8_t mode = 0;
        if (!readU8(value, mode) || mode > kMaxBindMode) return false;
        out.mode = static_cast<BindMode>(mode);
        break;
      }
      default:
        break;
    }
  }
  return reader.ok() && haveRequested;
}

std::size_t encodeBind(std::span<std::uint8_t> out, const BindRequest& bind) {
  FrameWriter w(out, MessageType::Bind);
  w.endpoint(Tag::Requested, bind.requested)
      .u8(Tag::BindMode, static_cast<std::uint8_t>(bind.mode));
  return w.finish();
}

bool decodeBound(Bytes body, BoundReply& out) {
  out = BoundReply{};
  bool haveStatus = false;
  bool haveBound = false;
  bool haveToken = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Status:
        if (!readStatus(value, out.status)) return false;
        haveStatus = true;
        break;
      case Tag::Bound:
        if (!readEndpoint(value, out.bound)) return false;
        haveBound = true;
        break;
      case Tag::Token:
        if (value.size() != kTokenSize) return false;
        std::memcpy(out.token.data(), value.data(), kTokenSize);
        haveToken = true;
        break;
      case Tag::Definition:
        out.definition = readText(value);
        break;
      case Tag::Message:
        out.message = readText(value);
        break;
      default:
        break;
    }
  }
  // An Ok answer is useless without where the gateway listens and how its connections prove
  // themselves.
  return reader.ok() && haveStatus && (out.status != Status::Ok || (haveBound && haveToken));
}

std::size_t encodeBound(std::span<std::uint8_t> out, const BoundReply& bound) {
  FrameWriter w(out, MessageType::Bound);
  w.u8(Tag::Status, static_cast<std::uint8_t>(bound.status));
  if (bound.status == Status::Ok) {
    w.endpoint(Tag::Bound, bound.bound).raw(Tag::Token, {bound.token.data(), bound.token.size()});
  }
  w.textIfAny(Tag::Definition, bound.definition).textIfAny(Tag::Message, bound.message);
  return w.finish();
}

bool decodeListen(Bytes body, ListenRequest& out) {
  out = ListenRequest{};
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    if (tag == Tag::Backlog && !readU16(value, out.backlog)) return false;
    if (tag == Tag::LocalPort && !readU16(value, out.localPort)) return false;
  }
  return reader.ok() && out.localPort != 0;
}

std::size_t encodeListen(std::span<std::uint8_t> out, const ListenRequest& listen) {
  FrameWriter w(out, MessageType::Listen);
  w.u16(Tag::LocalPort, listen.localPort).u16(Tag::Backlog, listen.backlog);
  return w.finish();
}

bool decodeListening(Bytes body, ListeningReply& out) {
  out = ListeningReply{};
  bool haveStatus = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    if (tag == Tag::Status) {
      if (!readStatus(value, out.status)) return false;
      haveStatus = true;
    } else if (tag == Tag::Message) {
      out.message = readText(value);
    }
  }
  return reader.ok() && haveStatus;
}

std::size_t encodeListening(std::span<std::uint8_t> out, const ListeningReply& listening) {
  FrameWriter w(out, MessageType::Listening);
  w.u8(Tag::Status, static_cast<std::uint8_t>(listening.status))
      .textIfAny(Tag::Message, listening.message);
  return w.finish();
}

bool decodeAccepted(Bytes body, AcceptedNotice& out) {
  out = AcceptedNotice{};
  bool haveToken = false;
  bool havePeer = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    if (tag == Tag::Token) {
      if (value.size() != kTokenSize) return false;
      std::memcpy(out.token.data(), value.data(), kTokenSize);
      haveToken = true;
    } else if (tag == Tag::Peer) {
      if (!readEndpoint(value, out.peer)) return false;
      havePeer = true;
    }
  }
  return reader.ok() && haveToken && havePeer;
}

std::size_t encodeAccepted(std::span<std::uint8_t> out, const AcceptedNotice& accepted) {
  FrameWriter w(out, MessageType::Accepted);
  w.raw(Tag::Token, {accepted.token.data(), accepted.token.size()})
      .endpoint(Tag::Peer, accepted.peer);
  return w.finish();
}

bool decodeUdpAssociate(Bytes body, UdpAssociateRequest& out) {
  out = UdpAssociateRequest{};
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    if (tag == Tag::LocalPort && !readU16(value, out.localPort)) return false;
    if (tag == Tag::PublishPort) {
      if (!readU16(value, out.publishPort)) return false;
      out.publish = true;
    }
  }
  return reader.ok() && out.localPort != 0 && (!out.publish || out.publishPort != 0);
}

std::size_t encodeUdpAssociate(std::span<std::uint8_t> out, const UdpAssociateRequest& request) {
  FrameWriter w(out, MessageType::UdpAssociate);
  w.u16(Tag::LocalPort, request.localPort);
  if (request.publish) w.u16(Tag::PublishPort, request.publishPort);
  return w.finish();
}

bool decodeUdpAssociated(Bytes body, UdpAssociatedReply& out) {
  out = UdpAssociatedReply{};
  bool haveStatus = false;
  bool haveRelay = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Status:
        if (!readStatus(value, out.status)) return false;
        haveStatus = true;
        break;
      case Tag::Bound:
        if (!readEndpoint(value, out.relay)) return false;
        haveRelay = true;
        break;
      case Tag::Message:
        out.message = readText(value);
        break;
      case Tag::Published:
        if (!readEndpoint(value, out.published)) return false;
        break;
      default:
        break;
    }
  }
  return reader.ok() && haveStatus && (out.status != Status::Ok || haveRelay);
}

std::size_t encodeUdpAssociated(std::span<std::uint8_t> out, const UdpAssociatedReply& reply) {
  FrameWriter w(out, MessageType::UdpAssociated);
  w.u8(Tag::Status, static_cast<std::uint8_t>(reply.status));
  if (reply.status == Status::Ok) w.endpoint(Tag::Bound, reply.relay);
  w.textIfAny(Tag::Message, reply.message);
  if (reply.status == Status::Ok && reply.published.address.family != 0) {
    w.endpoint(Tag::Published, reply.published);
  }
  return w.finish();
}

std::size_t encodeDatagramHeader(std::span<std::uint8_t> out, const Endpoint& peer) {
  const bool v6 = peer.address.family == 6;
  if (peer.address.family != 4 && !v6) return 0;
  const std::size_t size = v6 ? 22 : 10;
  if (out.size() < size) return 0;
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  out[3] = v6 ? 0x04 : 0x01;
  std::memcpy(out.data() + 4, peer.address.bytes.data(), v6 ? 16 : 4);
  out[size - 2] = static_cast<std::uint8_t>(peer.port >> 8);
  out[size - 1] = static_cast<std::uint8_t>(peer.port & 0xFF);
  return size;
}

std::size_t decodeDatagramHeader(Bytes datagram, Endpoint& peer) {
  if (datagram.size() < 10 || datagram[2] != 0) return 0;
  std::size_t size = 0;
  peer = Endpoint{};
  if (datagram[3] == 0x01) {
    size = 10;
    peer.address.family = 4;
    std::memcpy(peer.address.bytes.data(), datagram.data() + 4, 4);
  } else if (datagram[3] == 0x04 && datagram.size() >= 22) {
    size = 22;
    peer.address.family = 6;
    std::memcpy(peer.address.bytes.data(), datagram.data() + 4, 16);
  } else {
    return 0;
  }
  peer.port = static_cast<std::uint16_t>((datagram[size - 2] << 8) | datagram[size - 1]);
  return size;
}

bool validConfig(Bytes body) {
  bool haveStatus = false;
  AttributeReader reader(body);
  Tag tag;
  Bytes value;
  while (reader.next(tag, value)) {
    switch (tag) {
      case Tag::Status: {
        Status status;
        if (!readStatus(value, status)) return false;
        haveStatus = true;
        break;
      }
      case Tag::Range: {
        AddressRange range;
        if (!readRange(value, range)) return false;
        break;
      }
      case Tag::RefreshSeconds: {
        std::uint32_t seconds = 0;
        if (!readU32(value, seconds)) return false;
        break;
      }
      case Tag::Version: {
        std::uint16_t version = 0;
        if (!readU16(value, version)) return false;
        break;
      }
      default:
        break;
    }
  }
  return reader.ok() && haveStatus;
}

}  // namespace fwgate::protocol::control
