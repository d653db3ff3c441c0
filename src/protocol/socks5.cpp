#include "protocol/socks5.hpp"

#include <algorithm>
#include <utility>

namespace fwgate::protocol::socks5 {
namespace {

constexpr std::size_t kMaxFieldLength = 255;

template <typename T>
ParseResult<T> invalid(ParseError error) {
  ParseResult<T> result;
  result.status = ParseStatus::Invalid;
  result.error = error;
  return result;
}

template <typename T>
ParseResult<T> complete(T value, std::size_t consumed) {
  ParseResult<T> result;
  result.status = ParseStatus::Complete;
  result.value = std::move(value);
  result.consumed = consumed;
  return result;
}

std::string toString(Bytes bytes) {
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

bool Greeting::offers(Method m) const {
  return std::find(methods.begin(), methods.end(), static_cast<std::uint8_t>(m)) != methods.end();
}

ParseResult<Greeting> parseGreeting(Bytes in) {
  if (in.empty()) return {};
  if (in[0] != kVersion) return invalid<Greeting>(ParseError::BadVersion);
  if (in.size() < 2) return {};
  // NMETHODS 0 is a complete greeting that offers nothing: RFC 1928's answer is X'FF'.
  const std::size_t count = in[1];
  if (in.size() < 2 + count) return {};

  const Bytes methods = in.subspan(2, count);
  return complete(Greeting{{methods.begin(), methods.end()}}, 2 + count);
}

std::vector<std::uint8_t> encodeGreeting(const Greeting& greeting) {
  if (greeting.methods.empty() || greeting.methods.size() > kMaxFieldLength) return {};
  std::vector<std::uint8_t> out{kVersion, static_cast<std::uint8_t>(greeting.methods.size())};
  out.insert(out.end(), greeting.methods.begin(), greeting.methods.end());
  return out;
}

std::array<std::uint8_t, 2> encodeMethodSelection(Method method) {
  return {kVersion, static_cast<std::uint8_t>(method)};
}

ParseResult<UserPassRequest> parseUserPass(Bytes in) {
  if (in.empty()) return {};
  if (in[0] != kUserPassVersion) return invalid<UserPassRequest>(ParseError::BadVersion);
  if (in.size() < 2) return {};
  const std::size_t usernameLength = in[1];
  if (usernameLength == 0) return invalid<UserPassRequest>(ParseError::BadLength);

  const std::size_t passwordLengthAt = 2 + usernameLength;
  if (in.size() < passwordLengthAt + 1) return {};
  const std::size_t passwordLength = in[passwordLengthAt];
  const std::size_t size = passwordLengthAt + 1 + passwordLength;
  if (in.size() < size) return {};

  UserPassRequest request;
  request.username = toString(in.subspan(2, usernameLength));
  request.password = toString(in.subspan(passwordLengthAt + 1, passwordLength));
  return complete(std::move(request), size);
}

ParseResult<GssMessage> parseGssMessage(Bytes in) {
  if (in.empty()) return {};
  if (in[0] != kGssVersion) return invalid<GssMessage>(ParseError::BadVersion);
  if (in.size() < 2) return {};
  GssMessage message;
  message.type = static_cast<GssMessageType>(in[1]);
  if (message.type == GssMessageType::Abort) return complete(std::move(message), 2);
  if (message.type != GssMessageType::Authentication &&
      message.type != GssMessageType::Protection) {
    return invalid<GssMessage>(ParseError::BadVersion);
  }
  if (in.size() < 4) return {};
  const std::size_t length = (std::size_t{in[2]} << 8) | in[3];
  if (length == 0) return invalid<GssMessage>(ParseError::BadLength);
  if (in.size() < 4 + length) return {};
  message.token.assign(in.begin() + 4, in.begin() + 4 + static_cast<std::ptrdiff_t>(length));
  return complete(std::move(message), 4 + length);
}

std::vector<std::uint8_t> encodeGssMessage(const GssMessage& message) {
  std::vector<std::uint8_t> out{kGssVersion, static_cast<std::uint8_t>(message.type)};
  if (message.type == GssMessageType::Abort) return out;
  if (message.token.empty() || message.token.size() > 0xFFFF) return {};
  out.push_back(static_cast<std::uint8_t>(message.token.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(message.token.size() & 0xFF));
  out.insert(out.end(), message.token.begin(), message.token.end());
  return out;
}

std::vector<std::uint8_t> encodeUserPass(const UserPassRequest& request) {
  if (request.username.empty() || request.username.size() > kMaxFieldLength ||
      request.password.size() > kMaxFieldLength) {
    return {};
  }
  std::vector<std::uint8_t> out{kUserPassVersion,
                                static_cast<std::uint8_t>(request.username.size())};
  out.insert(out.end(), request.username.begin(), request.username.end());
  out.push_back(static_cast<std::uint8_t>(request.password.size()));
  out.insert(out.end(), request.password.begin(), request.password.end());
  return out;
}

std::array<std::uint8_t, 2> encodeUserPassStatus(bool success) {
  return {kUserPassVersion, static_cast<std::uint8_t>(success ? 0x00 : 0x01)};
}

ParseResult<Request> parseRequest(Bytes in) {
  // VER CMD RSV, then the address; each check runs as soon as its byte is present.
  if (in.empty()) return {};
  if (in[0] != kVersion) return invalid<Request>(ParseError::BadVersion);
  if (in.size() < 3) return {};

  const ParseResult<Address> address = parseSocks5Address(in.subspan(3));
  if (address.invalid()) return invalid<Request>(address.error);
  if (!address.complete()) return {};
  return complete(Request{in[1], address.value}, 3 + address.consumed);
}

std::vector<std::uint8_t> encodeRequest(const Request& request) {
  if (!request.destination.isEncodable()) return {};
  std::vector<std::uint8_t> out{kVersion, request.command, 0x00};
  appendSocks5Address(out, request.destination);
  return out;
}

std::vector<std::uint8_t> encodeReply(Reply reply, const Address& bound) {
  if (!bound.isEncodable()) return {};
  std::vector<std::uint8_t> out{kVersion, static_cast<std::uint8_t>(reply), 0x00};
  appendSocks5Address(out, bound);
  return out;
}

ParseResult<UdpHeader> parseUdpHeader(Bytes datagram) {
  // RSV(2) FRAG(1), then the address. A datagram never grows: anything short is malformed.
  if (datagram.size() < 3) return invalid<UdpHeader>(ParseError::BadLength);

  const ParseResult<Address> address = parseSocks5Address(datagram.subspan(3));
  if (address.invalid()) return invalid<UdpHeader>(address.error);
  if (!address.complete()) return invalid<UdpHeader>(ParseError::BadLength);
  return complete(UdpHeader{datagram[2], address.value}, 3 + address.consumed);
}

std::vector<std::uint8_t> encodeUdpHeader(const Address& address) {
  if (!address.isEncodable()) return {};
  std::vector<std::uint8_t> out{0x00, 0x00, 0x00};
  appendSocks5Address(out, address);
  return out;
}

}  // namespace fwgate::protocol::socks5
