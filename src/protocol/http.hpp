// HTTP/1.1 messages for the Web Proxy (RFC 9110, RFC 9112), sans-I/O: request and response heads
// parsed from the front of a buffer (tri-state, like the SOCKS codecs), a body-framing scanner that
// says where a body ends without copying it, and the heads the proxy sends on.
//
// Written here rather than taken from Boost.Beast: the rest of the build is standalone Asio with no
// Boost, and the proxy must refuse every framing ambiguity of RFC 9112 section 6.3 and 11 (request
// smuggling) that a lenient general-purpose parser accepts or repairs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/parse.hpp"

namespace fwgate::protocol::http {

// Why a message was refused. Every value maps to one status code (statusFor) and one sentence
// (describe) that the error page and the session log carry.
enum class Error : std::uint8_t {
  None,
  Malformed,            // 400: a request line or field line that is not HTTP/1.x syntax
  BadVersion,           // 505: not HTTP/1.0 or HTTP/1.1
  BadTarget,            // 400: a target that is not origin-, absolute-, authority- or asterisk-form
                        //      for its method, userinfo in the URI, a bad host or port
  UnsupportedScheme,    // 400: absolute-form with a scheme other than http (https goes by CONNECT)
  RequestLineTooLong,   // 414: request line over Limits::maxRequestLine
  HeadersTooLarge,      // 431: head over Limits::maxHeaderBytes or more fields than maxHeaderCount
  BareCarriageReturn,   // 400: a CR not followed by LF anywhere in the head
  ObsFold,              // 400: a field line starting with SP or HTAB (obsolete line folding)
  SpaceBeforeColon,     // 400: whitespace between the field name and its colon
  LengthAndChunked,     // 400: Content-Length together with Transfer-Encoding
  ConflictingLengths,   // 400: two different Content-Length values (or a list of them)
  BadContentLength,     // 400: a Content-Length that is not 1*DIGIT or overflows
  BadTransferEncoding,  // 400: Transfer-Encoding whose last coding is not chunked (requests),
                        //      chunked applied twice, or an empty coding
  MissingHost,          // 400: HTTP/1.1 request without Host, or more than one Host
  BadChunk,             // 400 (request body) / 502 (response body): malformed chunked framing
};

int statusFor(Error e);              // 400, 414, 431, 505
std::string_view describe(Error e);  // "Content-Length together with Transfer-Encoding"

struct Limits {
  std::size_t maxRequestLine = 8192;   // bytes of the request line (or status line), CRLF excluded
  std::size_t maxHeaderBytes = 65536;  // the whole head, request line and final CRLF included
  std::size_t maxHeaderCount = 100;    // field lines
};

struct Field {
  std::string name;   // as received (case kept); compare with iequals
  std::string value;  // leading and trailing SP/HTAB removed
  friend bool operator==(const Field&, const Field&) = default;
};

// How a message body is delimited (RFC 9112 section 6.3).
enum class BodyKind : std::uint8_t {
  None,        // no body
  Length,      // Content-Length bytes
  Chunked,     // chunked transfer coding, ends with the last chunk and the trailer section
  UntilClose,  // responses only: everything until the origin closes
  Tunnel,      // responses only: 2xx to CONNECT, or 101: the connection is no longer HTTP
};

struct RequestHead {
  enum class Form : std::uint8_t { Origin, Absolute, Authority, Asterisk };

  std::string method;  // case-sensitive token as received ("GET", "CONNECT")
  std::string target;  // as received
  Form form = Form::Origin;
  // Absolute and authority form: the destination. `host` is lower-cased, IPv6 literals without
  // brackets; `port` is explicit or the scheme's default (80 for http). Empty/0 in origin and
  // asterisk form.
  std::string host;
  std::uint16_t port = 0;
  // Absolute form: path and query to send in origin form ("/" when the URI has no path); origin
  // form: the target itself. Empty for authority and asterisk form ("*" is in `target`).
  std::string path;
  int versionMinor = 1;  // HTTP/1.<versionMinor>, 0 or 1
  std::vector<Field> fields;

  // Framing, from the fields: BodyKind::None, Length or Chunked.
  BodyKind body = BodyKind::None;
  std::uint64_t contentLength = 0;  // when body == Length
  // The client wants the connection kept after this exchange: HTTP/1.1 without "close" in
  // Connection (or Proxy-Connection), HTTP/1.0 with "keep-alive" in one of them.
  bool keepAlive = true;
  bool expectContinue = false;  // Expect: 100-continue
  // Connection names "upgrade" and an Upgrade field is present (WebSocket over plain HTTP).
  bool upgrade = false;

  // The first field named `name` (case-insensitive), or null.
  const Field* find(std::string_view name) const;
};

struct ResponseHead {
  int versionMinor = 1;
  int status = 0;      // 100..999
  std::string reason;  // may be empty
  std::vector<Field> fields;
  BodyKind body = BodyKind::None;
  std::uint64_t contentLength = 0;
  bool keepAlive = true;  // the origin keeps the connection after this response
  bool interim() const { return status >= 100 && status < 200 && status != 101; }
  const Field* find(std::string_view name) const;
};

}  // namespace fwgate::protocol::http

namespace fwgate::protocol {

// The heads' parse results have ParseResult's shape, with `error` an http::Error (the generic
// ParseError is SOCKS-shaped), so that the session answers statusFor(result.error).
template <typename Head>
struct HttpParseResult {
  ParseStatus status = ParseStatus::NeedMore;
  Head value{};
  std::size_t consumed = 0;
  http::Error error = http::Error::None;

  bool complete() const { return status == ParseStatus::Complete; }
  bool needMore() const { return status == ParseStatus::NeedMore; }
  bool invalid() const { return status == ParseStatus::Invalid; }
};
template <>
struct ParseResult<http::RequestHead> : HttpParseResult<http::RequestHead> {};
template <>
struct ParseResult<http::ResponseHead> : HttpParseResult<http::ResponseHead> {};

}  // namespace fwgate::protocol

namespace fwgate::protocol::http {

// Parses one request head from the front of `in`. Complete: `consumed` bytes held the head (the
// body, if any, follows). NeedMore: no complete head yet, but nothing wrong so far and within the
// limits. Invalid: `error` says why; the connection must answer statusFor(error) and close.
// Empty lines before the request line are skipped (RFC 9112 section 2.2).
ParseResult<RequestHead> parseRequest(Bytes in, const Limits& limits);

// Parses one response head. `requestMethod` decides the framing: HEAD and 2xx to CONNECT, 1xx,
// 204 and 304 have no body (CONNECT 2xx and 101 are BodyKind::Tunnel). A response with
// Transfer-Encoding whose last coding is not chunked is UntilClose; Content-Length together with
// Transfer-Encoding is Invalid (LengthAndChunked), as are conflicting lengths.
ParseResult<ResponseHead> parseResponse(Bytes in, const Limits& limits,
                                        std::string_view requestMethod);

// Finds where a body ends while its bytes pass through untouched. Feed every byte that follows the
// head, in order, in pieces of any size.
class BodyScanner {
 public:
  BodyScanner() = default;  // BodyKind::None: done at once
  BodyScanner(BodyKind kind, std::uint64_t contentLength);

  // Looks at `in`: `used` is set to how many of its bytes belong to the body (the rest belong to
  // whatever follows it, e.g. a pipelined request). Returns Complete when the body ended within
  // those bytes (or had ended before), NeedMore when it goes on past them, Invalid for broken
  // chunked framing (`error()` is BadChunk). With `decoded`, the payload (chunk data only, without
  // sizes, extensions and trailers) is appended to it: the proxy de-chunks for HTTP/1.0 clients.
  // UntilClose never completes; Tunnel is done at once with nothing used.
  ParseStatus feed(Bytes in, std::size_t& used, std::string* decoded = nullptr);
  bool done() const;
  Error error() const { return error_; }
  BodyKind kind() const { return kind_; }

 private:
  // Chunked framing, one state per grammar position (RFC 9112 section 7.1).
  enum class State : std::uint8_t {
    Size,           // chunk-size hex digits
    SizeSpace,      // BWS after the size, before ";"
    ExtBeforeName,  // after ";", BWS
    ExtName,
    ExtAfterName,  // BWS after the name: "=" or ";" follows
    ExtBeforeValue,
    ExtToken,
    ExtQuoted,
    ExtQuotedPair,
    ExtAfterQuoted,  // just after the closing quote
    ExtAfterValue,   // BWS after the value: ";" follows
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,  // first byte of a trailer line, or the CR of the final CRLF
    TrailerName,
    TrailerValue,
    TrailerLf,
    LastLf,
    Done,
  };
  ParseStatus feedChunked(Bytes in, std::size_t& used, std::string* decoded);
  bool step(std::uint8_t c);  // one byte of chunked framing outside chunk data; false: BadChunk

  BodyKind kind_ = BodyKind::None;
  std::uint64_t remaining_ = 0;  // Length: bytes left; Chunked: bytes left of this chunk
  State state_ = State::Done;
  unsigned sizeDigits_ = 0;       // hex digits of the current chunk size
  std::size_t lineBytes_ = 0;     // bytes of the current size/extension line, CRLF excluded
  std::size_t trailerBytes_ = 0;  // bytes of the whole trailer section
  Error error_ = Error::None;
};

// What the proxy adds or changes when it sends a head on.
struct ForwardOptions {
  std::string_view via;  // received-by of Via, e.g. "fwgate"; empty: no Via added
  std::optional<std::string> forwardedFor;  // X-Forwarded-For value to append, when configured
  bool keepAlive = true;  // ask the next hop to keep the connection (else "Connection: close")
};

// The request to send to the origin: origin-form request line "METHOD path HTTP/1.1", every field
// except the hop-by-hop ones (those named in Connection, and Connection, Proxy-Connection,
// Keep-Alive, TE, Trailer, Upgrade, Proxy-Authorization, Proxy-Authenticate), Host rewritten from
// the absolute URI (the URI wins over a different Host field), Via appended ("1.1 fwgate" or
// "1.0 fwgate" after the client's own Via values), X-Forwarded-For when given, and
// "Connection: keep-alive" or "Connection: close". With head.upgrade, Upgrade is kept and
// Connection is "Upgrade". Content-Length / Transfer-Encoding are kept as received.
std::string originRequest(const RequestHead& head, const ForwardOptions& options);

// The response to send to the client: "HTTP/1.1 status reason" (the proxy speaks 1.1), every
// field except the hop-by-hop ones, Via appended, and "Connection: keep-alive" or "close" from
// `options.keepAlive`. `dechunk`: the body goes to the client decoded (an HTTP/1.0 client and a
// chunked origin response), so Transfer-Encoding is dropped and the client connection is closed.
// A 101 keeps Upgrade and sends "Connection: Upgrade".
std::string clientResponse(const ResponseHead& head, const ForwardOptions& options, bool dechunk);

// A response the proxy itself makes (errors, 200 to CONNECT, the PAC script): status line, the
// given extra field lines ("Name: value\r\n" each), Content-Length of `body`, Connection, Via-less.
std::string localResponse(int status, std::string_view reason, std::string_view extraFields,
                          std::string_view body, bool keepAlive);

// The standard reason phrase for a status code ("Bad Request"), or "" when unknown.
std::string_view reasonPhrase(int status);

// Case-insensitive ASCII equality of field names and tokens.
bool iequals(std::string_view a, std::string_view b);
// Whether a comma-separated field value (Connection, Transfer-Encoding) holds `token`
// (case-insensitive, optional whitespace around elements).
bool hasToken(std::string_view value, std::string_view token);

// The user and password of "Proxy-Authorization: Basic base64(user:password)", or nullopt when
// the field is absent, another scheme, or not valid base64 / has no colon.
struct BasicCredentials {
  std::string user;
  std::string password;
};
std::optional<BasicCredentials> proxyBasicCredentials(const RequestHead& head);
// The GSS-API token of "Proxy-Authorization: Negotiate base64(token)" (RFC 4559), decoded;
// nullopt when the field is absent or repeated, another scheme, empty or not valid base64.
std::optional<std::string> proxyNegotiateToken(const RequestHead& head);

}  // namespace fwgate::protocol::http
