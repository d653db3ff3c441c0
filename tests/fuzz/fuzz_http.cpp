// The HTTP/1.1 codec on the same input as a request head, a response head and a chunked body.
// Invariants: consumed <= size; status and error agree; a Complete head re-parses alone to the same
// value and is NeedMore one byte short; an Invalid verdict survives more bytes arriving; a head's
// fields are clean (token names, values without CTLs or outer whitespace); what the proxy sends on
// re-parses with the same framing (no smuggling through the proxy's own rewriting); the body
// scanner gives the same verdict, length and payload whether fed whole, byte by byte or split.
// Every parse works on an exact-size heap copy so ASan sees any read past the span.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/http.hpp"

namespace {

using namespace fwgate::protocol;
using namespace fwgate::protocol::http;
using Buffer = std::vector<std::uint8_t>;

Buffer copyOf(Bytes in, std::size_t n) {
  return Buffer(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
}

Bytes bytesOf(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool isTokenText(std::string_view s) {
  constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  if (s.empty()) return false;
  for (const char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    kSpecials.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void checkFields(const std::vector<Field>& fields) {
  for (const Field& f : fields) {
    FUZZ_CHECK(isTokenText(f.name));
    for (const char c : f.value) {
      const auto b = static_cast<unsigned char>(c);
      FUZZ_CHECK(b == '\t' || (b >= 0x20 && b != 0x7F));
    }
    if (!f.value.empty()) {
      FUZZ_CHECK(f.value.front() != ' ' && f.value.front() != '\t');
      FUZZ_CHECK(f.value.back() != ' ' && f.value.back() != '\t');
    }
  }
}

bool sameRequest(const RequestHead& a, const RequestHead& b) {
  return a.method == b.method && a.target == b.target && a.form == b.form && a.host == b.host &&
         a.port == b.port && a.path == b.path && a.versionMinor == b.versionMinor &&
         a.fields == b.fields && a.body == b.body && a.contentLength == b.contentLength &&
         a.keepAlive == b.keepAlive && a.expectContinue == b.expectContinue &&
         a.upgrade == b.upgrade;
}

bool sameResponse(const ResponseHead& a, const ResponseHead& b) {
  return a.versionMinor == b.versionMinor && a.status == b.status && a.reason == b.reason &&
         a.fields == b.fields && a.body == b.body && a.contentLength == b.contentLength &&
         a.keepAlive == b.keepAlive;
}

// The tri-state contract, for either head parser.
template <typename Parse, typename Same>
auto checkHead(Parse parse, Same same, Bytes in) {
  const auto r = parse(in);
  FUZZ_CHECK(r.consumed <= in.size());
  switch (r.status) {
    case ParseStatus::Complete: {
      FUZZ_CHECK(r.error == Error::None && r.consumed >= 4);
      const auto alone = parse(copyOf(in, r.consumed));
      FUZZ_CHECK(alone.complete() && alone.consumed == r.consumed && same(alone.value, r.value));
      FUZZ_CHECK(parse(copyOf(in, r.consumed - 1)).needMore());
      checkFields(r.value.fields);
      break;
    }
    case ParseStatus::NeedMore:
      FUZZ_CHECK(r.error == Error::None && r.consumed == 0);
      if (!in.empty()) FUZZ_CHECK(parse(copyOf(in, in.size() - 1)).needMore());
      break;
    case ParseStatus::Invalid:
      FUZZ_CHECK(r.error != Error::None && r.consumed == 0);
      FUZZ_CHECK(statusFor(r.error) >= 400 && !describe(r.error).empty());
      for (const int extra : {0x00, 0xFF, 0x0D, 0x0A, 0x61}) {  // NUL, obs-text, CR, LF, 'a'
        Buffer longer = copyOf(in, in.size());
        longer.push_back(static_cast<std::uint8_t>(extra));
        const auto again = parse(longer);
        FUZZ_CHECK(again.invalid() && again.error == r.error);
      }
      break;
  }
  return r;
}

Limits smallLimits() {
  Limits limits;
  limits.maxRequestLine = 48;
  limits.maxHeaderBytes = 160;
  limits.maxHeaderCount = 4;
  return limits;
}

const Limits kWide{1 << 20, 1 << 20, 1000};

void checkRequest(Bytes in, const Limits& limits) {
  const auto parse = [&](Bytes b) { return parseRequest(b, limits); };
  const auto r = checkHead(parse, &sameRequest, in);
  if (!r.complete()) return;
  const RequestHead& h = r.value;
  FUZZ_CHECK(h.versionMinor == 0 || h.versionMinor == 1);
  FUZZ_CHECK(h.body == BodyKind::None || h.body == BodyKind::Length || h.body == BodyKind::Chunked);
  FUZZ_CHECK(!(h.find("Content-Length") && h.find("Transfer-Encoding")));
  switch (h.form) {
    case RequestHead::Form::Origin:
      FUZZ_CHECK(h.path == h.target && h.target.front() == '/' && h.host.empty());
      break;
    case RequestHead::Form::Absolute:
      FUZZ_CHECK(!h.host.empty() && h.port != 0 && h.path.front() == '/');
      break;
    case RequestHead::Form::Authority:
      FUZZ_CHECK(h.method == "CONNECT" && !h.host.empty() && h.port != 0 && h.path.empty());
      break;
    case RequestHead::Form::Asterisk:
      FUZZ_CHECK(h.method == "OPTIONS" && h.target == "*");
      break;
  }
  if (const auto credentials = proxyBasicCredentials(h)) {
    FUZZ_CHECK(credentials->user.find(':') == std::string::npos);
  }

  // The request sent on is framed as the client framed it.
  ForwardOptions options;
  options.via = "fwgate";
  options.forwardedFor = "192.0.2.1";
  const std::string sent = originRequest(h, options);
  const auto again = parseRequest(bytesOf(sent), kWide);
  const bool noAuthority =
      h.form == RequestHead::Form::Origin || h.form == RequestHead::Form::Asterisk;
  if (noAuthority && !h.find("Host")) {
    FUZZ_CHECK(again.invalid() && again.error == Error::MissingHost);  // HTTP/1.0 without Host
    return;
  }
  FUZZ_CHECK(again.complete() && again.consumed == sent.size());
  FUZZ_CHECK(again.value.body == h.body && again.value.contentLength == h.contentLength);
  FUZZ_CHECK(again.value.method == h.method && again.value.versionMinor == 1);
  FUZZ_CHECK(again.value.upgrade == h.upgrade);
  for (const char* hop : {"Proxy-Authorization", "Proxy-Connection", "Keep-Alive", "TE"}) {
    FUZZ_CHECK(again.value.find(hop) == nullptr);
  }
  if (h.form == RequestHead::Form::Absolute) {
    FUZZ_CHECK(again.value.form == RequestHead::Form::Origin || again.value.target == "*");
  }
}

void checkResponse(Bytes in, const Limits& limits, std::string_view method) {
  const auto parse = [&](Bytes b) { return parseResponse(b, limits, method); };
  const auto r = checkHead(parse, &sameResponse, in);
  if (!r.complete()) return;
  const ResponseHead& h = r.value;
  FUZZ_CHECK(h.status >= 100 && h.status <= 999);
  if (h.body == BodyKind::UntilClose) FUZZ_CHECK(!h.keepAlive);

  for (const bool dechunk : {false, true}) {
    const std::string sent = clientResponse(h, ForwardOptions{"fwgate", {}, true}, dechunk);
    const auto again = parseResponse(bytesOf(sent), kWide, method);
    FUZZ_CHECK(again.complete() && again.consumed == sent.size());
    FUZZ_CHECK(again.value.status == h.status && again.value.versionMinor == 1);
    if (!dechunk && h.body != BodyKind::UntilClose) {
      FUZZ_CHECK(again.value.body == h.body && again.value.contentLength == h.contentLength);
    }
  }
}

struct Scan {
  ParseStatus status = ParseStatus::NeedMore;
  std::size_t used = 0;
  std::string decoded;
  friend bool operator==(const Scan&, const Scan&) = default;
};

// Feeds `in` in pieces of `piece` bytes (0: all at once) until the body ends or breaks.
Scan scanBody(BodyKind kind, std::uint64_t length, Bytes in, std::size_t piece) {
  BodyScanner scanner(kind, length);
  Scan out;
  std::size_t offset = 0;
  do {
    const std::size_t n = piece == 0 ? in.size() : std::min(piece, in.size() - offset);
    const Buffer chunk = copyOf(in.subspan(offset), n);
    std::size_t used = 0;
    out.status = scanner.feed(chunk, used, &out.decoded);
    FUZZ_CHECK(used <= n);
    out.used += used;
    if (out.status == ParseStatus::NeedMore) FUZZ_CHECK(used == n);
    if (out.status == ParseStatus::Invalid) FUZZ_CHECK(scanner.error() == Error::BadChunk);
    offset += n;
  } while (out.status == ParseStatus::NeedMore && offset < in.size());
  FUZZ_CHECK(scanner.done() == (out.status == ParseStatus::Complete));
  return out;
}

void checkBody(BodyKind kind, std::uint64_t length, Bytes in) {
  const Scan whole = scanBody(kind, length, in, 0);
  FUZZ_CHECK(whole.decoded.size() <= whole.used);
  FUZZ_CHECK(scanBody(kind, length, in, 1) == whole);
  FUZZ_CHECK(scanBody(kind, length, in, 7) == whole);
  if (kind != BodyKind::Chunked || whole.status != ParseStatus::Complete) return;
  // The payload, chunked again in the plainest way, scans to the same payload.
  std::string plain;
  if (!whole.decoded.empty()) {
    constexpr char kHex[] = "0123456789abcdef";
    std::string size;
    for (std::size_t n = whole.decoded.size(); n > 0; n >>= 4)
      size.insert(size.begin(), kHex[n & 15]);
    plain += size;
    plain += "\r\n";
    plain += whole.decoded;
    plain += "\r\n";
  }
  plain += "0\r\n\r\n";
  const Scan again = scanBody(BodyKind::Chunked, 0, bytesOf(plain), 0);
  FUZZ_CHECK(again.status == ParseStatus::Complete && again.used == plain.size());
  FUZZ_CHECK(again.decoded == whole.decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  const Limits small = smallLimits();
  checkRequest(in, Limits{});
  checkRequest(in, small);
  static constexpr std::string_view kMethods[] = {"GET", "HEAD", "CONNECT", "POST"};
  const std::string_view method = kMethods[size % 4];
  checkResponse(in, Limits{}, method);
  checkResponse(in, small, method);
  checkBody(BodyKind::Chunked, 0, in);

  // A session reads the head, then its body from what follows.
  const auto request = parseRequest(in, Limits{});
  if (request.complete() && request.value.body != BodyKind::None) {
    checkBody(request.value.body, request.value.contentLength, in.subspan(request.consumed));
  }
  const auto response = parseResponse(in, Limits{}, method);
  if (response.complete()) {
    checkBody(response.value.body, response.value.contentLength, in.subspan(response.consumed));
  }
  return 0;
}
