#include "protocol/http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <utility>

#include "protocol/address.hpp"

namespace fwgate::protocol::http {
namespace {

constexpr std::size_t kMaxChunkLine = 4096;      // chunk size and extensions, CRLF excluded
constexpr std::size_t kMaxTrailerBytes = 65536;  // the whole trailer section, CRLFs included
constexpr unsigned kMaxChunkSizeDigits = 16;     // 64 bits: more digits could only overflow
constexpr std::size_t kVersionLength = 8;        // "HTTP/1.1"

using Byte = unsigned char;

bool isDigit(Byte c) {
  return c >= '0' && c <= '9';
}
bool isAlpha(Byte c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool isWhitespace(Byte c) {
  return c == ' ' || c == '\t';
}
bool isVisible(Byte c) {
  return c >= 0x21 && c <= 0x7E;
}
// field-vchar, SP or HTAB (RFC 9110 section 5.5), obs-text included.
bool isFieldValueByte(Byte c) {
  return isWhitespace(c) || isVisible(c) || c >= 0x80;
}
// tchar (RFC 9110 section 5.6.2).
bool isTokenByte(Byte c) {
  if (isDigit(c) || isAlpha(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}
int hexValue(Byte c) {
  if (isDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
char toLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trimWhitespace(std::string_view s) {
  while (!s.empty() && isWhitespace(static_cast<Byte>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && isWhitespace(static_cast<Byte>(s.back()))) s.remove_suffix(1);
  return s;
}

// Calls `each` with every comma-separated element of `value`, trimmed (empty ones included);
// stops and returns false as soon as `each` does.
template <typename Each>
bool forEachElement(std::string_view value, Each each) {
  for (;;) {
    const std::size_t comma = value.find(',');
    if (!each(trimWhitespace(value.substr(0, comma)))) return false;
    if (comma == std::string_view::npos) return true;
    value.remove_prefix(comma + 1);
  }
}

template <typename Head>
std::size_t countFields(const Head& head, std::string_view name) {
  return static_cast<std::size_t>(
      std::count_if(head.fields.begin(), head.fields.end(),
                    [&](const Field& f) { return iequals(f.name, name); }));
}

bool anyFieldHasToken(const std::vector<Field>& fields, std::string_view name,
                      std::string_view token) {
  return std::any_of(fields.begin(), fields.end(), [&](const Field& f) {
    return iequals(f.name, name) && hasToken(f.value, token);
  });
}

// --- Head syntax ---------------------------------------------------------------------------
// Each check looks at a whole line (`complete`) or at the bytes of it received so far, and
// reports only what those bytes already decide: a verdict never changes as more bytes arrive.

// "HTTP/" DIGIT "." DIGIT (RFC 9112 section 2.3), or a prefix of it when !complete.
bool isVersionSyntax(std::string_view v, bool complete) {
  constexpr std::string_view kPattern = "HTTP/0.0";  // '0' stands for any DIGIT
  if (v.size() > kPattern.size() || (complete && v.size() != kPattern.size())) return false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const bool ok = kPattern[i] == '0' ? isDigit(static_cast<Byte>(v[i])) : v[i] == kPattern[i];
    if (!ok) return false;
  }
  return true;
}

// request-line = method SP request-target SP HTTP-version, single SPs (RFC 9112 section 3).
Error checkRequestLine(std::string_view line, bool complete) {
  std::size_t i = 0;
  while (i < line.size() && isTokenByte(static_cast<Byte>(line[i]))) ++i;
  if (i == line.size()) return complete ? Error::Malformed : Error::None;
  if (i == 0 || line[i] != ' ') return Error::Malformed;
  const std::size_t targetStart = ++i;
  while (i < line.size() && isVisible(static_cast<Byte>(line[i]))) ++i;
  if (i == line.size()) return complete ? Error::Malformed : Error::None;
  if (i == targetStart || line[i] != ' ') return Error::Malformed;
  return isVersionSyntax(line.substr(i + 1), complete) ? Error::None : Error::Malformed;
}

// status-line = HTTP-version SP 3DIGIT SP [reason-phrase]; "HTTP/1.1 200" without SP is
// tolerated (RFC 9112 section 4). A status below 100 is Malformed.
Error checkStatusLine(std::string_view line, bool complete) {
  if (!isVersionSyntax(line.substr(0, kVersionLength), false)) return Error::Malformed;
  if (line.size() < kVersionLength) return complete ? Error::Malformed : Error::None;
  for (std::size_t i = kVersionLength; i < kVersionLength + 4; ++i) {
    if (i == line.size()) return complete ? Error::Malformed : Error::None;
    const Byte c = static_cast<Byte>(line[i]);
    const bool ok = i == kVersionLength ? c == ' ' : isDigit(c) && (i > 9 || c != '0');
    if (!ok) return Error::Malformed;
  }
  if (line.size() == 12) return Error::None;
  if (line[12] != ' ') return Error::Malformed;
  const bool reasonOk = std::all_of(line.begin() + 13, line.end(),
                                    [](char c) { return isFieldValueByte(static_cast<Byte>(c)); });
  return reasonOk ? Error::None : Error::Malformed;
}

// field-line = field-name ":" OWS field-value OWS (RFC 9112 section 5), no obs-fold, no CTL but
// HTAB in the value, nothing between the name and the colon.
Error checkFieldLine(std::string_view line, bool complete) {
  if (line.empty()) return Error::None;
  if (isWhitespace(static_cast<Byte>(line[0]))) return Error::ObsFold;
  std::size_t i = 0;
  while (i < line.size() && isTokenByte(static_cast<Byte>(line[i]))) ++i;
  if (i == line.size()) return complete ? Error::Malformed : Error::None;
  if (isWhitespace(static_cast<Byte>(line[i]))) {
    while (i < line.size() && isWhitespace(static_cast<Byte>(line[i]))) ++i;
    if (i == line.size()) return complete ? Error::Malformed : Error::None;
    return line[i] == ':' ? Error::SpaceBeforeColon : Error::Malformed;
  }
  if (i == 0 || line[i] != ':') return Error::Malformed;
  const bool valueOk = std::all_of(line.begin() + static_cast<std::ptrdiff_t>(i) + 1, line.end(),
                                   [](char c) { return isFieldValueByte(static_cast<Byte>(c)); });
  return valueOk ? Error::None : Error::Malformed;
}

// A line ends with CRLF and nothing else. A bare LF is refused (Malformed) although RFC 9112
// section 2.2 lets a recipient accept it: a proxy that accepts a terminator its origin does not
// (or the reverse) disagrees with it about where the head ends, which is request smuggling.
// `at` is the index of the line's first CR or LF, or view.size() when none has arrived yet.
ParseStatus lineTerminator(std::string_view view, std::size_t at, Error& error) {
  if (at == view.size()) return ParseStatus::NeedMore;
  if (view[at] == '\n') {
    error = Error::Malformed;
    return ParseStatus::Invalid;
  }
  if (at + 1 == view.size()) return ParseStatus::NeedMore;
  if (view[at + 1] != '\n') {
    error = Error::BareCarriageReturn;
    return ParseStatus::Invalid;
  }
  return ParseStatus::Complete;
}

struct HeadLines {
  ParseStatus status = ParseStatus::NeedMore;
  Error error = Error::None;
  std::size_t end = 0;  // Complete: bytes of the head, final CRLF included
  std::vector<std::string_view> fieldLines;
};

// Splits a head into its start line and field lines, checking each as its bytes arrive, in
// stream order. `startLine` is called once with the complete start line and returns its verdict.
template <typename StartLine>
HeadLines scanHead(std::string_view in, const Limits& limits, bool request,
                   Error (*checkStart)(std::string_view, bool), StartLine startLine) {
  HeadLines out;
  // Nothing past maxHeaderBytes can belong to an acceptable head.
  const std::string_view view = in.substr(0, limits.maxHeaderBytes);
  const auto fail = [&](Error error) {
    out.status = ParseStatus::Invalid;
    out.error = error;
    return out;
  };
  const auto needMore = [&] {
    return in.size() > view.size() ? fail(Error::HeadersTooLarge) : HeadLines{};
  };
  const auto lineEnd = [&](std::size_t from) {
    return std::min(view.find_first_of("\r\n", from), view.size());
  };

  std::size_t pos = 0;
  Error error = Error::None;
  // Empty lines before a request line (RFC 9112 section 2.2), bounded by maxHeaderBytes.
  while (request && pos < view.size() && (view[pos] == '\r' || view[pos] == '\n')) {
    const ParseStatus t = lineTerminator(view, pos, error);
    if (t == ParseStatus::NeedMore) return needMore();
    if (t == ParseStatus::Invalid) return fail(error);
    pos += 2;
  }

  const std::size_t startEnd = lineEnd(pos);
  const std::size_t startLength = startEnd - pos;
  const std::string_view start = view.substr(pos, std::min(startLength, limits.maxRequestLine));
  if ((error = checkStart(start, false)) != Error::None) return fail(error);
  if (startLength > limits.maxRequestLine) return fail(Error::RequestLineTooLong);
  const ParseStatus t = lineTerminator(view, startEnd, error);
  if (t == ParseStatus::NeedMore) return needMore();
  if (t == ParseStatus::Invalid) return fail(error);
  if ((error = checkStart(start, true)) != Error::None) return fail(error);
  if ((error = startLine(start)) != Error::None) return fail(error);

  pos = startEnd + 2;
  for (;;) {
    const std::size_t end = lineEnd(pos);
    const std::string_view line = view.substr(pos, end - pos);
    if (!line.empty() && out.fieldLines.size() == limits.maxHeaderCount) {
      return fail(Error::HeadersTooLarge);
    }
    if ((error = checkFieldLine(line, false)) != Error::None) return fail(error);
    const ParseStatus lt = lineTerminator(view, end, error);
    if (lt == ParseStatus::NeedMore) return needMore();
    if (lt == ParseStatus::Invalid) return fail(error);
    if (line.empty()) {
      out.status = ParseStatus::Complete;
      out.end = end + 2;
      return out;
    }
    if ((error = checkFieldLine(line, true)) != Error::None) return fail(error);
    out.fieldLines.push_back(line);
    pos = end + 2;
  }
}

std::vector<Field> splitFields(const std::vector<std::string_view>& lines) {
  std::vector<Field> fields;
  fields.reserve(lines.size());
  for (const std::string_view line : lines) {
    const std::size_t colon = line.find(':');
    fields.push_back(Field{std::string(line.substr(0, colon)),
                           std::string(trimWhitespace(line.substr(colon + 1)))});
  }
  return fields;
}

// HTTP/1.0 or HTTP/1.1 from a syntactically valid "HTTP/x.y"; BadVersion otherwise.
Error versionMinor(std::string_view version, int& minor) {
  if (version[5] != '1' || version[7] > '1') return Error::BadVersion;
  minor = version[7] - '0';
  return Error::None;
}

// --- Request targets (RFC 9112 section 3.2) ----------------------------------------------

// host [":" port] with host a name, an IPv4 address or "[" IPv6 "]"; no userinfo. The host is
// returned lower-cased and without brackets. `defaultPort` 0: the port is required.
bool parseAuthority(std::string_view authority, std::uint16_t defaultPort, std::string& host,
                    std::uint16_t& port) {
  if (authority.find('@') != std::string_view::npos) return false;
  std::string_view rest;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host.assign(authority.substr(1, close - 1));
    in6_addr address{};
    if (host.empty() || ::inet_pton(AF_INET6, host.c_str(), &address) != 1) return false;
    rest = authority.substr(close + 1);
  } else {
    const std::size_t colon = authority.find(':');
    host.assign(authority.substr(0, colon));
    if (!isValidHostName(host)) return false;
    rest = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon);
  }
  std::transform(host.begin(), host.end(), host.begin(), toLower);

  if (rest.empty()) {
    port = defaultPort;
    return defaultPort != 0;
  }
  if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return false;
  unsigned value = 0;
  for (const char c : rest.substr(1)) {
    if (!isDigit(static_cast<Byte>(c))) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

// Where the authority of an absolute-form target starts, after "scheme://"; npos when the
// target is not absolute-form.
std::size_t authorityStart(std::string_view target) {
  std::size_t i = 0;
  if (target.empty() || !isAlpha(static_cast<Byte>(target[0]))) return std::string_view::npos;
  while (i < target.size() &&
         (isAlpha(static_cast<Byte>(target[i])) || isDigit(static_cast<Byte>(target[i])) ||
          target[i] == '+' || target[i] == '-' || target[i] == '.')) {
    ++i;
  }
  if (target.substr(i, 3) != "://") return std::string_view::npos;
  return i + 3;
}

Error parseTarget(RequestHead& head) {
  const std::string_view target = head.target;
  // No fragment: RFC 9112's request-target has none, and a client never sends one.
  if (target.find('#') != std::string_view::npos) return Error::BadTarget;
  if (head.method == "CONNECT") {
    head.form = RequestHead::Form::Authority;
    return parseAuthority(target, 0, head.host, head.port) ? Error::None : Error::BadTarget;
  }
  if (target == "*") {
    head.form = RequestHead::Form::Asterisk;
    return head.method == "OPTIONS" ? Error::None : Error::BadTarget;
  }
  if (target.front() == '/') {
    head.form = RequestHead::Form::Origin;
    head.path = target;
    return Error::None;
  }
  const std::size_t start = authorityStart(target);
  if (start == std::string_view::npos) return Error::BadTarget;
  if (!iequals(target.substr(0, start - 3), "http")) return Error::UnsupportedScheme;
  head.form = RequestHead::Form::Absolute;
  const std::size_t pathStart = std::min(target.find_first_of("/?", start), target.size());
  if (!parseAuthority(target.substr(start, pathStart - start), 80, head.host, head.port)) {
    return Error::BadTarget;
  }
  const std::string_view path = target.substr(pathStart);
  if (path.empty() || path.front() == '?') head.path = "/";
  head.path += path;
  return Error::None;
}

Error parseRequestLine(std::string_view line, RequestHead& head) {
  const std::size_t methodEnd = line.find(' ');
  const std::size_t targetEnd = line.find(' ', methodEnd + 1);
  head.method.assign(line.substr(0, methodEnd));
  head.target.assign(line.substr(methodEnd + 1, targetEnd - methodEnd - 1));
  if (const Error e = versionMinor(line.substr(targetEnd + 1), head.versionMinor);
      e != Error::None) {
    return e;
  }
  return parseTarget(head);
}

// --- Framing (RFC 9112 section 6) --------------------------------------------------------

// The transfer codings of every Transfer-Encoding field, in order: each a token with optional
// parameters; chunked at most once and without parameters; no empty element.
Error transferCodings(const std::vector<Field>& fields, bool& chunkedLast) {
  bool chunked = false;
  chunkedLast = false;
  bool ok = true;
  for (const Field& field : fields) {
    if (!iequals(field.name, "Transfer-Encoding")) continue;
    ok = forEachElement(field.value, [&](std::string_view element) {
      std::size_t nameEnd = 0;
      while (nameEnd < element.size() && isTokenByte(static_cast<Byte>(element[nameEnd]))) {
        ++nameEnd;
      }
      const std::string_view parameters = trimWhitespace(element.substr(nameEnd));
      if (nameEnd == 0 || (!parameters.empty() && parameters.front() != ';')) return false;
      if (!iequals(element.substr(0, nameEnd), "chunked")) {
        chunkedLast = false;
        return true;
      }
      if (chunked || !parameters.empty()) return false;
      chunked = chunkedLast = true;
      return true;
    });
    if (!ok) return Error::BadTransferEncoding;
  }
  return Error::None;
}

// Every Content-Length field and list element: 1*DIGIT without overflow, all the same value.
Error contentLength(const std::vector<Field>& fields, std::uint64_t& length) {
  bool seen = false;
  Error error = Error::None;
  for (const Field& field : fields) {
    if (!iequals(field.name, "Content-Length")) continue;
    forEachElement(field.value, [&](std::string_view element) {
      std::uint64_t value = 0;
      for (const char c : element) {
        const unsigned digit = static_cast<unsigned>(c - '0');
        if (!isDigit(static_cast<Byte>(c)) || value > (UINT64_MAX - digit) / 10) {
          error = Error::BadContentLength;
          return false;
        }
        value = value * 10 + digit;
      }
      if (element.empty()) error = Error::BadContentLength;
      if (error == Error::None && seen && value != length) error = Error::ConflictingLengths;
      length = value;
      seen = true;
      return error == Error::None;
    });
    if (error != Error::None) return error;
  }
  return Error::None;
}

Error requestFraming(RequestHead& head) {
  const bool chunkedField = countFields(head, "Transfer-Encoding") > 0;
  const bool lengthField = countFields(head, "Content-Length") > 0;
  if (chunkedField && lengthField) return Error::LengthAndChunked;
  if (chunkedField) {
    // RFC 9112 section 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
    if (head.versionMinor == 0) return Error::BadTransferEncoding;
    bool chunkedLast = false;
    if (transferCodings(head.fields, chunkedLast) != Error::None || !chunkedLast) {
      return Error::BadTransferEncoding;
    }
    head.body = BodyKind::Chunked;
  } else if (lengthField) {
    if (const Error e = contentLength(head.fields, head.contentLength); e != Error::None) return e;
    head.body = BodyKind::Length;
  }
  return Error::None;
}

// Persistence (RFC 9112 section 9.3) from Connection and the pre-standard Proxy-Connection.
bool wantsKeepAlive(const std::vector<Field>& fields, int versionMinor) {
  const auto has = [&](std::string_view token) {
    return anyFieldHasToken(fields, "Connection", token) ||
           anyFieldHasToken(fields, "Proxy-Connection", token);
  };
  if (has("close")) return false;
  return versionMinor == 1 || has("keep-alive");
}

std::string_view asText(Bytes in) {
  return {reinterpret_cast<const char*>(in.data()), in.size()};
}

template <typename Head>
ParseResult<Head> invalid(Error error) {
  ParseResult<Head> result;
  result.status = ParseStatus::Invalid;
  result.error = error;
  return result;
}

// --- Forwarding ----------------------------------------------------------------------------

// Field names listed in Connection and Proxy-Connection: hop-by-hop for this message.
std::vector<std::string_view> connectionOptions(const std::vector<Field>& fields) {
  std::vector<std::string_view> names;
  for (const Field& field : fields) {
    if (!iequals(field.name, "Connection") && !iequals(field.name, "Proxy-Connection")) continue;
    forEachElement(field.value, [&](std::string_view element) {
      if (!element.empty()) names.push_back(element);
      return true;
    });
  }
  return names;
}

bool isHopByHop(std::string_view name, const std::vector<std::string_view>& connectionOptions,
                bool keepUpgrade) {
  // Framing and Host are never dropped on the sender's say-so: "Connection: Content-Length"
  // would otherwise turn the body into the next request at the origin.
  for (const std::string_view kept : {"Content-Length", "Transfer-Encoding", "Host"}) {
    if (iequals(name, kept)) return false;
  }
  if (iequals(name, "Upgrade")) return !keepUpgrade;
  for (const std::string_view hop : {"Connection", "Proxy-Connection", "Keep-Alive", "TE",
                                     "Trailer", "Proxy-Authorization", "Proxy-Authenticate"}) {
    if (iequals(name, hop)) return true;
  }
  return std::any_of(connectionOptions.begin(), connectionOptions.end(),
                     [&](std::string_view option) { return iequals(name, option); });
}

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

void appendVia(std::string& out, int versionMinor, std::string_view via) {
  if (via.empty()) return;
  out += "Via: 1.";
  out += static_cast<char>('0' + versionMinor);
  out += ' ';
  out += via;
  out += "\r\n";
}

void appendStatusLine(std::string& out, int status, std::string_view reason) {
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason.empty() ? reasonPhrase(status) : reason;
  out += "\r\n";
}

// Host field value for the destination: IPv6 bracketed, the port unless it is http's 80.
std::string hostFieldValue(const RequestHead& head) {
  std::string value;
  const bool ipv6 = head.host.find(':') != std::string::npos;
  if (ipv6) value += '[';
  value += head.host;
  if (ipv6) value += ']';
  if (head.port != 80) {
    value += ':';
    value += std::to_string(head.port);
  }
  return value;
}

// The request target in the request line to the origin. OPTIONS to an absolute URI without path
// or query becomes "*" (RFC 9112 section 3.2.4).
std::string_view originTarget(const RequestHead& head) {
  if (head.form != RequestHead::Form::Absolute) return head.target;
  if (head.method == "OPTIONS") {
    const std::size_t start = authorityStart(head.target);
    if (head.target.find_first_of("/?", start) == std::string::npos) return "*";
  }
  return head.path;
}

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Base64 (RFC 4648 section 4) with its padding; nullopt for any other byte or length.
std::optional<std::string> decodeBase64(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    std::uint32_t bits = 0;
    int padding = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = in[i + k];
      int value = 0;
      if (c == '=') {
        if (!last || k < 2) return std::nullopt;
        ++padding;
      } else if (padding > 0 || (value = sextet(c)) < 0) {
        return std::nullopt;
      }
      bits = bits << 6 | static_cast<std::uint32_t>(value);
    }
    out += static_cast<char>(bits >> 16 & 0xFF);
    if (padding < 2) out += static_cast<char>(bits >> 8 & 0xFF);
    if (padding < 1) out += static_cast<char>(bits & 0xFF);
  }
  return out;
}

}  // namespace

int statusFor(Error e) {
  switch (e) {
    case Error::None:
      return 200;
    case Error::BadVersion:
      return 505;
    case Error::RequestLineTooLong:
      return 414;
    case Error::HeadersTooLarge:
      return 431;
    case Error::Malformed:
    case Error::BadTarget:
    case Error::UnsupportedScheme:
    case Error::BareCarriageReturn:
    case Error::ObsFold:
    case Error::SpaceBeforeColon:
    case Error::LengthAndChunked:
    case Error::ConflictingLengths:
    case Error::BadContentLength:
    case Error::BadTransferEncoding:
    case Error::MissingHost:
    case Error::BadChunk:
      return 400;
  }
  return 400;
}

std::string_view describe(Error e) {
  switch (e) {
    case Error::None:
      return "no error";
    case Error::Malformed:
      return "malformed request line or field line";
    case Error::BadVersion:
      return "HTTP version not supported (only HTTP/1.0 and HTTP/1.1)";
    case Error::BadTarget:
      return "request target not valid for its method";
    case Error::UnsupportedScheme:
      return "URI scheme other than http";
    case Error::RequestLineTooLong:
      return "request line too long";
    case Error::HeadersTooLarge:
      return "header section too large";
    case Error::BareCarriageReturn:
      return "CR not followed by LF";
    case Error::ObsFold:
      return "obsolete line folding";
    case Error::SpaceBeforeColon:
      return "whitespace between field name and colon";
    case Error::LengthAndChunked:
      return "Content-Length together with Transfer-Encoding";
    case Error::ConflictingLengths:
      return "conflicting Content-Length values";
    case Error::BadContentLength:
      return "invalid Content-Length";
    case Error::BadTransferEncoding:
      return "invalid Transfer-Encoding";
    case Error::MissingHost:
      return "missing or repeated Host";
    case Error::BadChunk:
      return "malformed chunked body";
  }
  return "unknown error";
}

const Field* RequestHead::find(std::string_view name) const {
  const auto it = std::find_if(fields.begin(), fields.end(),
                               [&](const Field& f) { return iequals(f.name, name); });
  return it == fields.end() ? nullptr : &*it;
}

const Field* ResponseHead::find(std::string_view name) const {
  const auto it = std::find_if(fields.begin(), fields.end(),
                               [&](const Field& f) { return iequals(f.name, name); });
  return it == fields.end() ? nullptr : &*it;
}

ParseResult<RequestHead> parseRequest(Bytes in, const Limits& limits) {
  RequestHead head;
  const HeadLines lines =
      scanHead(asText(in), limits, true, &checkRequestLine,
               [&](std::string_view line) { return parseRequestLine(line, head); });
  if (lines.status == ParseStatus::NeedMore) return {};
  if (lines.status == ParseStatus::Invalid) return invalid<RequestHead>(lines.error);

  head.fields = splitFields(lines.fieldLines);
  if (const Error e = requestFraming(head); e != Error::None) return invalid<RequestHead>(e);
  const std::size_t hosts = countFields(head, "Host");
  if (hosts > 1 || (hosts == 0 && head.versionMinor == 1)) {
    return invalid<RequestHead>(Error::MissingHost);
  }
  head.keepAlive = wantsKeepAlive(head.fields, head.versionMinor);
  // RFC 9110 sections 10.1.1 and 7.8: both are ignored in an HTTP/1.0 request.
  head.expectContinue =
      head.versionMinor == 1 && anyFieldHasToken(head.fields, "Expect", "100-continue");
  head.upgrade = head.versionMinor == 1 && anyFieldHasToken(head.fields, "Connection", "upgrade") &&
                 head.find("Upgrade") != nullptr;

  ParseResult<RequestHead> result;
  result.status = ParseStatus::Complete;
  result.value = std::move(head);
  result.consumed = lines.end;
  return result;
}

ParseResult<ResponseHead> parseResponse(Bytes in, const Limits& limits,
                                        std::string_view requestMethod) {
  ResponseHead head;
  const auto statusLine = [&](std::string_view line) {
    head.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (line.size() > 12) head.reason.assign(line.substr(13));
    return versionMinor(line.substr(0, kVersionLength), head.versionMinor);
  };
  const HeadLines lines = scanHead(asText(in), limits, false, &checkStatusLine, statusLine);
  if (lines.status == ParseStatus::NeedMore) return {};
  if (lines.status == ParseStatus::Invalid) return invalid<ResponseHead>(lines.error);

  head.fields = splitFields(lines.fieldLines);
  const bool chunkedField = countFields(head, "Transfer-Encoding") > 0;
  const bool lengthField = countFields(head, "Content-Length") > 0;
  if (chunkedField && lengthField) return invalid<ResponseHead>(Error::LengthAndChunked);
  bool chunkedLast = false;
  std::uint64_t length = 0;
  const Error error = chunkedField  ? transferCodings(head.fields, chunkedLast)
                      : lengthField ? contentLength(head.fields, length)
                                    : Error::None;
  if (error != Error::None) return invalid<ResponseHead>(error);

  const int status = head.status;
  if (requestMethod == "HEAD") {
    head.body = BodyKind::None;
  } else if ((requestMethod == "CONNECT" && status / 100 == 2) || status == 101) {
    head.body = BodyKind::Tunnel;
  } else if (status / 100 == 1 || status == 204 || status == 304) {
    head.body = BodyKind::None;
  } else if (chunkedField) {
    // Chunked last and HTTP/1.1: chunked. Otherwise only the close ends the body (RFC 9112
    // section 6.3 item 4; Transfer-Encoding in HTTP/1.0 is faulty framing, section 6.1).
    head.body = chunkedLast && head.versionMinor == 1 ? BodyKind::Chunked : BodyKind::UntilClose;
  } else if (lengthField) {
    head.body = BodyKind::Length;
    head.contentLength = length;
  } else {
    head.body = BodyKind::UntilClose;
  }
  head.keepAlive =
      head.body != BodyKind::UntilClose && wantsKeepAlive(head.fields, head.versionMinor);

  ParseResult<ResponseHead> result;
  result.status = ParseStatus::Complete;
  result.value = std::move(head);
  result.consumed = lines.end;
  return result;
}

// --- BodyScanner -------------------------------------------------------------------------

/*
 * chunked-body = *chunk last-chunk trailer-section CRLF          (RFC 9112 section 7.1)
 * chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 * last-chunk   = 1*("0") [ chunk-ext ] CRLF
 * chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 * chunk-ext-val = token / quoted-string
 * trailer-section = *( field-line CRLF )
 */
BodyScanner::BodyScanner(BodyKind kind, std::uint64_t contentLength) : kind_(kind) {
  if (kind == BodyKind::Length) remaining_ = contentLength;
  if (kind == BodyKind::Chunked) state_ = State::Size;
}

bool BodyScanner::done() const {
  switch (kind_) {
    case BodyKind::None:
    case BodyKind::Tunnel:
      return true;
    case BodyKind::Length:
      return remaining_ == 0;
    case BodyKind::Chunked:
      return state_ == State::Done;
    case BodyKind::UntilClose:
      return false;
  }
  return true;
}

ParseStatus BodyScanner::feed(Bytes in, std::size_t& used, std::string* decoded) {
  used = 0;
  switch (kind_) {
    case BodyKind::None:
    case BodyKind::Tunnel:
      return ParseStatus::Complete;
    case BodyKind::UntilClose:
      used = in.size();
      if (decoded) decoded->append(asText(in));
      return ParseStatus::NeedMore;
    case BodyKind::Length: {
      used = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
      if (decoded) decoded->append(asText(in.first(used)));
      remaining_ -= used;
      return remaining_ == 0 ? ParseStatus::Complete : ParseStatus::NeedMore;
    }
    case BodyKind::Chunked:
      return feedChunked(in, used, decoded);
  }
  return ParseStatus::Complete;
}

ParseStatus BodyScanner::feedChunked(Bytes in, std::size_t& used, std::string* decoded) {
  if (error_ != Error::None) return ParseStatus::Invalid;
  std::size_t i = 0;
  while (i < in.size() && state_ != State::Done) {
    if (state_ == State::Data) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
      if (decoded) decoded->append(asText(in.subspan(i, n)));
      i += n;
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::DataCr;
      continue;
    }
    if (!step(in[i])) {
      error_ = Error::BadChunk;
      used = i;
      return ParseStatus::Invalid;
    }
    ++i;
  }
  used = i;
  return state_ == State::Done ? ParseStatus::Complete : ParseStatus::NeedMore;
}

bool BodyScanner::step(std::uint8_t c) {
  if (state_ >= State::Size && state_ <= State::ExtAfterValue && c != '\r' &&
      ++lineBytes_ > kMaxChunkLine) {
    return false;
  }
  if (state_ >= State::TrailerStart && state_ <= State::LastLf &&
      ++trailerBytes_ > kMaxTrailerBytes) {
    return false;
  }
  const auto to = [&](State next) {
    state_ = next;
    return true;
  };
  const bool ws = isWhitespace(c);
  switch (state_) {
    case State::Size:
      if (const int digit = hexValue(c); digit >= 0) {
        if (++sizeDigits_ > kMaxChunkSizeDigits) return false;
        remaining_ = remaining_ << 4 | static_cast<std::uint64_t>(digit);
        return true;
      }
      if (sizeDigits_ == 0) return false;
      if (c == ';') return to(State::ExtBeforeName);
      if (ws) return to(State::SizeSpace);
      return c == '\r' && to(State::SizeLf);
    case State::SizeSpace:
      if (ws) return true;
      return c == ';' && to(State::ExtBeforeName);
    case State::ExtBeforeName:
      if (ws) return true;
      return isTokenByte(c) && to(State::ExtName);
    case State::ExtName:
      if (isTokenByte(c)) return true;
      if (c == '=') return to(State::ExtBeforeValue);
      if (c == ';') return to(State::ExtBeforeName);
      if (ws) return to(State::ExtAfterName);
      return c == '\r' && to(State::SizeLf);
    case State::ExtAfterName:
      if (ws) return true;
      if (c == '=') return to(State::ExtBeforeValue);
      return c == ';' && to(State::ExtBeforeName);
    case State::ExtBeforeValue:
      if (ws) return true;
      if (c == '"') return to(State::ExtQuoted);
      return isTokenByte(c) && to(State::ExtToken);
    case State::ExtToken:
      if (isTokenByte(c)) return true;
      if (c == ';') return to(State::ExtBeforeName);
      if (ws) return to(State::ExtAfterValue);
      return c == '\r' && to(State::SizeLf);
    case State::ExtQuoted:
      if (c == '"') return to(State::ExtAfterQuoted);
      if (c == '\\') return to(State::ExtQuotedPair);
      return isFieldValueByte(c);  // qdtext: HTAB, SP, VCHAR but '"' and '\', obs-text
    case State::ExtQuotedPair:
      return isFieldValueByte(c) && to(State::ExtQuoted);
    case State::ExtAfterQuoted:
      if (c == ';') return to(State::ExtBeforeName);
      if (ws) return to(State::ExtAfterValue);
      return c == '\r' && to(State::SizeLf);
    case State::ExtAfterValue:
      if (ws) return true;
      return c == ';' && to(State::ExtBeforeName);
    case State::SizeLf:
      if (c != '\n') return false;
      lineBytes_ = 0;
      return to(remaining_ == 0 ? State::TrailerStart : State::Data);
    case State::Data:
      return false;  // feedChunked copies data itself
    case State::DataCr:
      return c == '\r' && to(State::DataLf);
    case State::DataLf:
      if (c != '\n') return false;
      sizeDigits_ = 0;
      return to(State::Size);
    case State::TrailerStart:
      if (c == '\r') return to(State::LastLf);
      return isTokenByte(c) && to(State::TrailerName);  // SP/HTAB here: obs-fold
    case State::TrailerName:
      if (isTokenByte(c)) return true;
      return c == ':' && to(State::TrailerValue);
    case State::TrailerValue:
      if (isFieldValueByte(c)) return true;
      return c == '\r' && to(State::TrailerLf);
    case State::TrailerLf:
      return c == '\n' && to(State::TrailerStart);
    case State::LastLf:
      return c == '\n' && to(State::Done);
    case State::Done:
      return false;
  }
  return false;
}

// --- Heads sent on -----------------------------------------------------------------------

std::string originRequest(const RequestHead& head, const ForwardOptions& options) {
  std::string out;
  out += head.method;
  out += ' ';
  out += originTarget(head);
  out += " HTTP/1.1\r\n";

  const std::vector<std::string_view> hopByHop = connectionOptions(head.fields);
  const bool rewriteHost =
      head.form == RequestHead::Form::Absolute || head.form == RequestHead::Form::Authority;
  std::vector<const Field*> kept;
  for (const Field& field : head.fields) {
    if (!isHopByHop(field.name, hopByHop, head.upgrade)) kept.push_back(&field);
  }
  const auto lastForwardedFor = std::find_if(kept.rbegin(), kept.rend(), [](const Field* f) {
    return iequals(f->name, "X-Forwarded-For");
  });
  const Field* appendTo =
      options.forwardedFor && lastForwardedFor != kept.rend() ? *lastForwardedFor : nullptr;

  bool hostWritten = false;
  if (rewriteHost && head.find("Host") == nullptr) {
    appendField(out, "Host", hostFieldValue(head));
    hostWritten = true;
  }
  for (const Field* field : kept) {
    if (rewriteHost && iequals(field->name, "Host")) {
      if (!hostWritten) appendField(out, "Host", hostFieldValue(head));
      hostWritten = true;
    } else if (field == appendTo) {
      std::string value = field->value;
      if (!value.empty()) value += ", ";
      value += *options.forwardedFor;
      appendField(out, field->name, value);
    } else {
      appendField(out, field->name, field->value);
    }
  }
  if (options.forwardedFor && appendTo == nullptr) {
    appendField(out, "X-Forwarded-For", *options.forwardedFor);
  }
  appendVia(out, head.versionMinor, options.via);
  if (head.upgrade) {
    out += "Connection: Upgrade\r\n";
  } else {
    out += options.keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  }
  out += "\r\n";
  return out;
}

std::string clientResponse(const ResponseHead& head, const ForwardOptions& options, bool dechunk) {
  std::string out;
  appendStatusLine(out, head.status, head.reason);
  const std::vector<std::string_view> hopByHop = connectionOptions(head.fields);
  const bool upgrade = head.status == 101;
  for (const Field& field : head.fields) {
    if (dechunk &&
        (iequals(field.name, "Transfer-Encoding") || iequals(field.name, "Content-Length"))) {
      continue;
    }
    if (!isHopByHop(field.name, hopByHop, upgrade)) appendField(out, field.name, field.value);
  }
  appendVia(out, head.versionMinor, options.via);
  // An interim response says nothing about the connection; the final one after it does.
  if (upgrade) {
    out += "Connection: Upgrade\r\n";
  } else if (!head.interim()) {
    out += options.keepAlive && !dechunk ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  }
  out += "\r\n";
  return out;
}

std::string localResponse(int status, std::string_view reason, std::string_view extraFields,
                          std::string_view body, bool keepAlive) {
  std::string out;
  appendStatusLine(out, status, reason);
  out += extraFields;
  // 1xx: the status line and the given fields only (no body, no say on the connection); 204
  // has no Content-Length (RFC 9110 section 8.6).
  if (status >= 200) {
    if (status != 204) appendField(out, "Content-Length", std::to_string(body.size()));
    out += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  }
  out += "\r\n";
  if (status >= 200 && status != 204 && status != 304) out += body;
  return out;
}

std::string_view reasonPhrase(int status) {
  struct Reason {
    int status;
    std::string_view phrase;
  };
  // RFC 9110 section 15, with 103 (RFC 8297), 428, 429, 511 (RFC 6585) and 451 (RFC 7725).
  static constexpr Reason kReasons[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {103, "Early Hints"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {203, "Non-Authoritative Information"},
      {204, "No Content"},
      {205, "Reset Content"},
      {206, "Partial Content"},
      {300, "Multiple Choices"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {305, "Use Proxy"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {402, "Payment Required"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {406, "Not Acceptable"},
      {407, "Proxy Authentication Required"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {410, "Gone"},
      {411, "Length Required"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {415, "Unsupported Media Type"},
      {416, "Range Not Satisfiable"},
      {417, "Expectation Failed"},
      {421, "Misdirected Request"},
      {422, "Unprocessable Content"},
      {426, "Upgrade Required"},
      {428, "Precondition Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {451, "Unavailable For Legal Reasons"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
      {511, "Network Authentication Required"},
  };
  for (const Reason& r : kReasons) {
    if (r.status == status) return r.phrase;
  }
  return {};
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return toLower(x) == toLower(y);
         });
}

bool hasToken(std::string_view value, std::string_view token) {
  if (token.empty()) return false;
  return !forEachElement(value, [&](std::string_view element) { return !iequals(element, token); });
}

std::optional<BasicCredentials> proxyBasicCredentials(const RequestHead& head) {
  // Two Proxy-Authorization fields are ambiguous: which one would the next hop have checked?
  if (countFields(head, "Proxy-Authorization") != 1) return std::nullopt;
  const std::string_view value = head.find("Proxy-Authorization")->value;
  const std::size_t space = value.find(' ');
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "Basic")) {
    return std::nullopt;
  }
  const std::optional<std::string> decoded = decodeBase64(trimWhitespace(value.substr(space)));
  if (!decoded) return std::nullopt;
  const std::size_t colon = decoded->find(':');
  // RFC 7617 section 2: no control characters in user-id or password.
  const bool controls = std::any_of(decoded->begin(), decoded->end(), [](char c) {
    return static_cast<Byte>(c) < 0x20 || static_cast<Byte>(c) == 0x7F;
  });
  if (colon == std::string::npos || controls) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

std::optional<std::string> proxyNegotiateToken(const RequestHead& head) {
  if (countFields(head, "Proxy-Authorization") != 1) return std::nullopt;
  const std::string_view value = head.find("Proxy-Authorization")->value;
  const std::size_t space = value.find(' ');
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "Negotiate")) {
    return std::nullopt;
  }
  auto decoded = decodeBase64(trimWhitespace(value.substr(space)));
  if (!decoded || decoded->empty()) return std::nullopt;
  return decoded;
}

}  // namespace fwgate::protocol::http
