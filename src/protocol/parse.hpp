// Shared vocabulary of the sans-I/O codecs: tri-state parse results over byte spans.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace fwgate::protocol {

using Bytes = std::span<const std::uint8_t>;

enum class ParseStatus { Complete, NeedMore, Invalid };

// Why a message is invalid; the session turns this into the protocol's reply (or a clean close).
enum class ParseError {
  None,
  BadVersion,      // first byte is not the expected protocol version
  BadAddressType,  // SOCKS5 ATYP not 1, 3 or 4: reply 0x08
  BadLength,       // a length field that is zero where forbidden, or a field past its limit
  BadReserved,     // a reserved field that must be zero is not (SOCKS codecs leave RSV alone)
};

// The result of parsing one message from the front of a buffer.
// `consumed` is meaningful only when status == Complete: the bytes the message occupied.
template <typename T>
struct ParseResult {
  ParseStatus status = ParseStatus::NeedMore;
  T value{};
  std::size_t consumed = 0;
  ParseError error = ParseError::None;

  bool complete() const { return status == ParseStatus::Complete; }
  bool needMore() const { return status == ParseStatus::NeedMore; }
  bool invalid() const { return status == ParseStatus::Invalid; }
};

}  // namespace fwgate::protocol
