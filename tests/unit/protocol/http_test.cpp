// The HTTP/1.1 codec: request and response heads (every form, every refusal, the smuggling cases
// of RFC 9112 sections 6.3 and 11), fed whole, one byte at a time and split at every offset; the
// body scanner; and the heads the proxy sends on, byte for byte.
#include "protocol/http.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fwgate::protocol::http {
namespace {

Bytes bytesOf(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

ParseResult<RequestHead> request(std::string_view s, const Limits& limits = {}) {
  return parseRequest(bytesOf(s), limits);
}

ParseResult<ResponseHead> response(std::string_view s, std::string_view method = "GET",
                                   const Limits& limits = {}) {
  return parseResponse(bytesOf(s), limits, method);
}

// A complete request head, parsed whole.
RequestHead parsed(std::string_view s) {
  const auto r = request(s);
  EXPECT_TRUE(r.complete()) << describe(r.error) << " in " << s;
  EXPECT_EQ(r.consumed, s.size());
  return r.value;
}

// The request is refused with `error` once whole, and on every longer input.
void expectRefused(std::string_view s, Error error, const Limits& limits = {}) {
  SCOPED_TRACE(std::string(s));
  const auto r = request(s, limits);
  ASSERT_TRUE(r.invalid());
  EXPECT_EQ(r.error, error) << describe(r.error);
  EXPECT_EQ(r.consumed, 0u);
  const auto longer = request(std::string(s) + "GET / HTTP/1.1\r\n\r\n", limits);
  EXPECT_TRUE(longer.invalid());
  EXPECT_EQ(longer.error, error);
}

// NeedMore on every proper prefix, then Complete with `consumed` the whole message; and, with a
// pipelined message behind it, split in two at every offset, the head's bytes exactly.
template <typename Parse>
void expectIncremental(Parse parse, std::string_view message) {
  SCOPED_TRACE(std::string(message));
  for (std::size_t n = 0; n < message.size(); ++n) {
    const auto r = parse(message.substr(0, n));
    ASSERT_TRUE(r.needMore()) << "prefix of " << n << ": " << describe(r.error);
    EXPECT_EQ(r.consumed, 0u);
  }
  const auto whole = parse(message);
  ASSERT_TRUE(whole.complete()) << describe(whole.error);
  EXPECT_EQ(whole.consumed, message.size());

  const std::string stream = std::string(message) + "GET /next HTTP/1.1\r\nHost: b\r\n\r\n";
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    const auto first = parse(std::string_view(stream).substr(0, split));
    if (split < message.size()) {
      ASSERT_TRUE(first.needMore()) << "split at " << split;
    } else {
      ASSERT_TRUE(first.complete()) << "split at " << split;
      EXPECT_EQ(first.consumed, message.size());
      EXPECT_EQ(first.value.fields, whole.value.fields);
    }
  }
}

// NeedMore until byte `firstBad` arrives, then Invalid with `error` on every longer prefix.
void expectRefusedFrom(std::string_view s, std::size_t firstBad, Error error,
                       const Limits& limits = {}) {
  SCOPED_TRACE(std::string(s));
  for (std::size_t n = 0; n <= s.size(); ++n) {
    const auto r = request(s.substr(0, n), limits);
    if (n < firstBad) {
      EXPECT_TRUE(r.needMore()) << "prefix of " << n << ": " << describe(r.error);
    } else {
      EXPECT_TRUE(r.invalid()) << "prefix of " << n;
      EXPECT_EQ(r.error, error) << "prefix of " << n << ": " << describe(r.error);
    }
  }
}

const auto kRequestParser = [](std::string_view s) { return request(s); };

// --- Requests: every form, every method ---------------------------------------------------

TEST(HttpRequest, OriginForm) {
  const RequestHead h =
      parsed("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept:  */*  \r\n\r\n");
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/index.html?q=1");
  EXPECT_EQ(h.form, RequestHead::Form::Origin);
  EXPECT_EQ(h.path, "/index.html?q=1");
  EXPECT_EQ(h.host, "");
  EXPECT_EQ(h.port, 0);
  EXPECT_EQ(h.versionMinor, 1);
  const std::vector<Field> fields = {{"Host", "example.com"}, {"Accept", "*/*"}};
  EXPECT_EQ(h.fields, fields);
  EXPECT_EQ(h.body, BodyKind::None);
  EXPECT_TRUE(h.keepAlive);
  EXPECT_FALSE(h.expectContinue);
  EXPECT_FALSE(h.upgrade);
  ASSERT_NE(h.find("host"), nullptr);
  EXPECT_EQ(h.find("HOST")->value, "example.com");
  EXPECT_EQ(h.find("Cookie"), nullptr);
}

TEST(HttpRequest, AbsoluteForm) {
  RequestHead h = parsed("GET http://Example.COM:8080/a/B?c=D HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(h.form, RequestHead::Form::Absolute);
  EXPECT_EQ(h.target, "http://Example.COM:8080/a/B?c=D");
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.port, 8080);
  EXPECT_EQ(h.path, "/a/B?c=D");

  h = parsed("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.port, 80);
  EXPECT_EQ(h.path, "/");

  h = parsed("GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(h.path, "/?x=1");

  h = parsed("GET HTTP://example.com:80/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(h.form, RequestHead::Form::Absolute);
  EXPECT_EQ(h.port, 80);

  h = parsed("GET http://[2001:DB8::1]:8080/p HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(h.host, "2001:db8::1");
  EXPECT_EQ(h.port, 8080);
  EXPECT_EQ(h.path, "/p");

  h = parsed("GET http://[::1] HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(h.host, "::1");
  EXPECT_EQ(h.port, 80);

  h = parsed("GET http://192.0.2.1:65535/ HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(h.host, "192.0.2.1");
  EXPECT_EQ(h.port, 65535);
}

TEST(HttpRequest, AuthorityFormForConnect) {
  RequestHead h = parsed("CONNECT Example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  EXPECT_EQ(h.form, RequestHead::Form::Authority);
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.port, 443);
  EXPECT_EQ(h.path, "");

  h = parsed("CONNECT [2001:db8::2]:8443 HTTP/1.1\r\nHost: [2001:db8::2]:8443\r\n\r\n");
  EXPECT_EQ(h.host, "2001:db8::2");
  EXPECT_EQ(h.port, 8443);
}

TEST(HttpRequest, AsteriskFormForOptions) {
  const RequestHead h = parsed("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(h.form, RequestHead::Form::Asterisk);
  EXPECT_EQ(h.target, "*");
  EXPECT_EQ(h.path, "");
  EXPECT_EQ(h.port, 0);
}

TEST(HttpRequest, EveryMethodIsAToken) {
  for (const std::string_view method :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "PROPFIND", "M-SEARCH",
        "get", "X!#$%&'*+.^_`|~9"}) {
    std::string s(method);
    s += " /r HTTP/1.1\r\nHost: h\r\n\r\n";
    EXPECT_EQ(parsed(s).method, method);
  }
}

TEST(HttpRequest, Http10AndKeepAlive) {
  RequestHead h = parsed("GET http://h/ HTTP/1.0\r\n\r\n");  // no Host needed
  EXPECT_EQ(h.versionMinor, 0);
  EXPECT_FALSE(h.keepAlive);
  h = parsed("GET http://h/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_TRUE(h.keepAlive);
  h = parsed("GET http://h/ HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n");
  EXPECT_TRUE(h.keepAlive);
  h = parsed("GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n");
  EXPECT_FALSE(h.keepAlive);
  h = parsed("GET http://h/ HTTP/1.1\r\nHost: h\r\nProxy-Connection: close\r\n\r\n");
  EXPECT_FALSE(h.keepAlive);
  h = parsed("GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: te\r\n\r\n");
  EXPECT_TRUE(h.keepAlive);
}

TEST(HttpRequest, ExpectContinueAndUpgrade) {
  RequestHead h =
      parsed("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_TRUE(h.expectContinue);
  // RFC 9110 section 10.1.1: ignored in HTTP/1.0.
  h = parsed("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_FALSE(h.expectContinue);

  h = parsed(
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\n\r\n");
  EXPECT_TRUE(h.upgrade);
  h = parsed("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n");
  EXPECT_FALSE(h.upgrade);  // no Upgrade field
  h = parsed("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_FALSE(h.upgrade);  // not named in Connection
  h = parsed("GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_FALSE(h.upgrade);  // RFC 9110 section 7.8: ignored in HTTP/1.0
}

TEST(HttpRequest, Framing) {
  RequestHead h = parsed("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n");
  EXPECT_EQ(h.body, BodyKind::Length);
  EXPECT_EQ(h.contentLength, 42u);
  h = parsed("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(h.body, BodyKind::Length);
  EXPECT_EQ(h.contentLength, 0u);
  h = parsed("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n");
  EXPECT_EQ(h.contentLength, UINT64_MAX);
  // Identical duplicates, as fields or as a list, collapse to one.
  h = parsed("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n");
  EXPECT_EQ(h.contentLength, 7u);
  h = parsed("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 7 , 7,7\r\n\r\n");
  EXPECT_EQ(h.contentLength, 7u);

  h = parsed("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(h.body, BodyKind::Chunked);
  h = parsed("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n");
  EXPECT_EQ(h.body, BodyKind::Chunked);
  h = parsed(
      "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
      "Transfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(h.body, BodyKind::Chunked);
  h = parsed("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip;level=9, chunked\r\n\r\n");
  EXPECT_EQ(h.body, BodyKind::Chunked);
}

TEST(HttpRequest, FieldSyntaxAccepted) {
  const RequestHead h = parsed(
      "GET / HTTP/1.1\r\nHost: h\r\nEmpty:\r\nTabs:\t a \t b\t\r\nUtf8: caf\xc3\xa9\r\n"
      "X-Token!#$%&'*+-.^_`|~: v:w\r\n\r\n");
  const std::vector<Field> fields = {{"Host", "h"},
                                     {"Empty", ""},
                                     {"Tabs", "a \t b"},
                                     {"Utf8", "caf\xc3\xa9"},
                                     {"X-Token!#$%&'*+-.^_`|~", "v:w"}};
  EXPECT_EQ(h.fields, fields);
}

TEST(HttpRequest, LeadingEmptyLinesAreSkipped) {
  const std::string s = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  const RequestHead h = parsed(s);
  EXPECT_EQ(h.method, "GET");
  expectIncremental(kRequestParser, s);
}

// --- Requests: every refusal ---------------------------------------------------------------

TEST(HttpRequestErrors, Malformed) {
  for (const std::string_view s : {
           "GET / http/1.1\r\n\r\n",                     // HTTP-name is case-sensitive
           "GET /\r\n\r\n",                              // no version
           "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",         // two SPs
           "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",         // trailing SP
           "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",         // HTAB is not SP
           " GET / HTTP/1.1\r\nHost: h\r\n\r\n",         // leading SP
           "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n",         // method not a token
           "GET / HTTP/1.1x\r\nHost: h\r\n\r\n",         // garbage after the version
           "GET / HTTP/10.1\r\nHost: h\r\n\r\n",         // two-digit major
           "GET / HTTP/1\r\nHost: h\r\n\r\n",            // no minor
           "GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n",      // DEL in the target
           "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",  // raw UTF-8 in the target
           "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01"
           "b\r\n\r\n",                                          // CTL in a value
           "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",      // DEL in a value
           "GET / HTTP/1.1\r\nHost: h\r\n: empty name\r\n\r\n",  // empty name
           "GET / HTTP/1.1\r\nHost: h\r\nNa/me: v\r\n\r\n",      // name not a token
           "GET / HTTP/1.1\r\nHost: h\r\nNo colon\r\n\r\n",      // no colon
           "GET / HTTP/1.1\r\nHost: h\r\nNocolon\r\n\r\n",       // no colon
           "GET / HTTP/1.1\n\r\n",                               // bare LF ends the line
           "GET / HTTP/1.1\r\nHost: h\n\r\n",                    // bare LF ends a field
           "GET / HTTP/1.1\r\nHost: h\r\n\n",                    // bare LF ends the head
           "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",                // bare LF before the line
       }) {
    expectRefused(s, Error::Malformed);
  }
  const std::string nul = std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a") + '\0' + "b\r\n\r\n";
  expectRefused(nul, Error::Malformed);
}

TEST(HttpRequestErrors, BadVersion) {
  for (const std::string_view version : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"}) {
    std::string s = "GET / ";
    s += version;
    s += "\r\nHost: h\r\n\r\n";
    expectRefused(s, Error::BadVersion);
  }
  EXPECT_EQ(statusFor(Error::BadVersion), 505);
}

TEST(HttpRequestErrors, BadTarget) {
  for (const std::string_view line : {
           "CONNECT / HTTP/1.1",                     // CONNECT needs authority-form
           "CONNECT http://h:443/ HTTP/1.1",         //
           "CONNECT h HTTP/1.1",                     // port required
           "CONNECT h: HTTP/1.1",                    //
           "CONNECT h:0 HTTP/1.1",                   //
           "CONNECT h:65536 HTTP/1.1",               //
           "CONNECT h:123456 HTTP/1.1",              //
           "CONNECT u@h:443 HTTP/1.1",               // userinfo
           "CONNECT [::1 HTTP/1.1",                  // unterminated literal
           "CONNECT [::1]443 HTTP/1.1",              //
           "CONNECT * HTTP/1.1",                     //
           "GET * HTTP/1.1",                         // asterisk only for OPTIONS
           "GET h:80 HTTP/1.1",                      // authority-form only for CONNECT
           "GET h/path HTTP/1.1",                    //
           "GET http:/h/ HTTP/1.1",                  // not scheme "://"
           "GET http://user:pw@h/ HTTP/1.1",         // userinfo
           "GET http://@h/ HTTP/1.1",                //
           "GET http:/// HTTP/1.1",                  // empty host
           "GET http://:80/ HTTP/1.1",               //
           "GET http://h:/ HTTP/1.1",                // empty port
           "GET http://h:0/ HTTP/1.1",               // port 0
           "GET http://h:65536/ HTTP/1.1",           //
           "GET http://h:8o/ HTTP/1.1",              //
           "GET http://[zz::1]/ HTTP/1.1",           // not IPv6
           "GET http://[v1.x]/ HTTP/1.1",            // IPvFuture
           "GET http://[fe80::1%25eth0]/ HTTP/1.1",  // zone ID
           "GET http://ex%41mple.com/ HTTP/1.1",     // not a host name
           "GET http://a..b/ HTTP/1.1",              //
           "GET /page#frag HTTP/1.1",                // fragment
       }) {
    std::string s(line);
    s += "\r\nHost: h\r\n\r\n";
    expectRefused(s, Error::BadTarget);
  }
}

TEST(HttpRequestErrors, UnsupportedScheme) {
  for (const std::string_view target : {"https://h/", "HTTPS://h:443/", "ftp://h/", "ws://h/"}) {
    std::string s = "GET ";
    s += target;
    s += " HTTP/1.1\r\nHost: h\r\n\r\n";
    expectRefused(s, Error::UnsupportedScheme);
  }
}

TEST(HttpRequestErrors, TargetIsRefusedAsSoonAsTheRequestLineEnds) {
  const std::string_view s = "GET https://h/ HTTP/1.1\r\nHost: h\r\n";
  expectRefusedFrom(s, s.find('\n') + 1, Error::UnsupportedScheme);
}

TEST(HttpRequestErrors, RequestLineTooLong) {
  Limits limits;
  limits.maxRequestLine = 32;
  const std::string fits = "GET /" + std::string(18, 'a') + " HTTP/1.1";  // 32 bytes
  ASSERT_EQ(fits.size(), 32u);
  EXPECT_TRUE(request(fits + "\r\nHost: h\r\n\r\n", limits).complete());
  const std::string over = "GET /" + std::string(19, 'a') + " HTTP/1.1";
  expectRefused(over + "\r\nHost: h\r\n\r\n", Error::RequestLineTooLong, limits);
  // Known before the CRLF: the 33rd byte of the line decides, not the end of the line.
  const std::string endless = "GET /" + std::string(100, 'a');
  expectRefusedFrom(endless, 33, Error::RequestLineTooLong, limits);
  // The default is 8 KiB.
  EXPECT_TRUE(request("GET /" + std::string(8192, 'a')).invalid());
  EXPECT_EQ(request("GET /" + std::string(8192, 'a')).error, Error::RequestLineTooLong);
}

TEST(HttpRequestErrors, HeadersTooLarge) {
  Limits limits;
  limits.maxHeaderBytes = 64;
  const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(32, 'v') + "\r\n\r\n";
  ASSERT_EQ(head.size(), 64u);
  EXPECT_TRUE(request(head, limits).complete());
  const std::string over = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(33, 'v') + "\r\n\r\n";
  expectRefused(over, Error::HeadersTooLarge, limits);
  // Detected while incomplete: the 65th byte without the end of the head.
  const std::string endless = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(100, 'v');
  expectRefusedFrom(endless, 65, Error::HeadersTooLarge, limits);
  // Empty lines before the request line count too: they cannot go on for ever.
  std::string blank;
  for (int i = 0; i < 40; ++i) blank += "\r\n";
  expectRefusedFrom(blank, 65, Error::HeadersTooLarge, limits);

  Limits count;
  count.maxHeaderCount = 3;
  EXPECT_TRUE(request("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", count).complete());
  const std::string four = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  expectRefusedFrom(four, four.find("C:") + 1, Error::HeadersTooLarge, count);
  // The default: 100 fields.
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 99; ++i) many += "X: 1\r\n";
  EXPECT_TRUE(request(many + "\r\n").complete());
  EXPECT_EQ(request(many + "Y: 2\r\n\r\n").error, Error::HeadersTooLarge);
}

TEST(HttpRequestErrors, MissingHost) {
  expectRefused("GET / HTTP/1.1\r\n\r\n", Error::MissingHost);
  expectRefused("GET http://h/ HTTP/1.1\r\nAccept: */*\r\n\r\n", Error::MissingHost);
  expectRefused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Error::MissingHost);
  expectRefused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", Error::MissingHost);
  expectRefused("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", Error::MissingHost);
}

// --- Smuggling: RFC 9112 sections 6.3 and 11 ----------------------------------------------

TEST(HttpSmuggling, ContentLengthAndTransferEncoding) {
  expectRefused(
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
      "Transfer-Encoding: chunked\r\n\r\n",
      Error::LengthAndChunked);
  expectRefused(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 4\r\n\r\n",
      Error::LengthAndChunked);
  expectRefused("POST / HTTP/1.0\r\nContent-Length: 4\r\nTransfer-Encoding: gzip\r\n\r\n",
                Error::LengthAndChunked);
}

TEST(HttpSmuggling, TwoDifferentContentLengths) {
  expectRefused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
                Error::ConflictingLengths);
  expectRefused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 5\r\n\r\n",
                Error::ConflictingLengths);
  expectRefused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 4\r\nContent-Length: 40\r\n\r\n",
                Error::ConflictingLengths);
}

TEST(HttpSmuggling, BadContentLength) {
  for (const std::string_view value :
       {"abc", "-1", "+5", "5 5", "0x10", "", "1,", ",1", "5;", "18446744073709551616",
        "99999999999999999999999", "\xd9\xa3"}) {
    std::string s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ";
    s += value;
    s += "\r\n\r\n";
    expectRefused(s, Error::BadContentLength);
  }
}

TEST(HttpSmuggling, TransferEncodingWhoseLastCodingIsNotChunked) {
  for (const std::string_view value :
       {"gzip", "chunked, gzip", "chunked, chunked", "chunked,", ", chunked", "chunked,,gzip", "",
        "chunked;ext=1", "chun ked", "\"chunked\"", "xchunked"}) {
    std::string s = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ";
    s += value;
    s += "\r\n\r\n";
    expectRefused(s, Error::BadTransferEncoding);
  }
  // Chunked twice across two fields, and chunked followed by another coding in a second field.
  expectRefused(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: chunked\r\n\r\n",
      Error::BadTransferEncoding);
  expectRefused(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: gzip\r\n\r\n",
      Error::BadTransferEncoding);
  // RFC 9112 section 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
  expectRefused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                Error::BadTransferEncoding);
}

TEST(HttpSmuggling, ObsFold) {
  expectRefused("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", Error::ObsFold);
  expectRefused("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", Error::ObsFold);
  // Folding a Transfer-Encoding is the classic: refused before it can be read as two fields.
  const std::string_view s =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n";
  expectRefusedFrom(s, s.find(" chunked") + 1, Error::ObsFold);
  // An empty Transfer-Encoding folded onto the next line, beside a Content-Length.
  expectRefused(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n"
      "Content-Length: 5\r\n\r\nhello",
      Error::ObsFold);
  // A field line may not start the head with whitespace either.
  expectRefused("GET / HTTP/1.1\r\n Host: h\r\n\r\n", Error::ObsFold);
}

TEST(HttpSmuggling, BareCarriageReturn) {
  expectRefused("GET / HTTP/1.1\rHost: h\r\n\r\n", Error::BareCarriageReturn);
  expectRefused("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", Error::BareCarriageReturn);
  expectRefused("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n", Error::BareCarriageReturn);
  expectRefused("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", Error::BareCarriageReturn);
  expectRefused("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", Error::BareCarriageReturn);
  expectRefused("GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", Error::BareCarriageReturn);
  const std::string_view s = "GET / HTTP/1.1\r\nHost: h\rX";
  expectRefusedFrom(s, s.size(), Error::BareCarriageReturn);
}

TEST(HttpSmuggling, SpaceBeforeColon) {
  expectRefused("GET / HTTP/1.1\r\nHost : h\r\n\r\n", Error::SpaceBeforeColon);
  expectRefused("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding\t: chunked\r\n\r\n",
                Error::SpaceBeforeColon);
  expectRefused("GET / HTTP/1.1\r\nHost: h\r\nContent-Length  : 5\r\n\r\n",
                Error::SpaceBeforeColon);
  // Whitespace then something other than a colon is not a field line at all.
  expectRefused("GET / HTTP/1.1\r\nHost: h\r\nX y: z\r\n\r\n", Error::Malformed);
}

TEST(HttpSmuggling, ChunkSizeOverflowAndBadChunkCrlf) {
  const auto scan = [](std::string_view body) {
    BodyScanner scanner(BodyKind::Chunked, 0);
    std::size_t used = 0;
    const ParseStatus status = scanner.feed(bytesOf(body), used);
    EXPECT_EQ(scanner.error(), status == ParseStatus::Invalid ? Error::BadChunk : Error::None);
    return status;
  };
  EXPECT_EQ(scan("10000000000000000\r\n"), ParseStatus::Invalid);   // 17 hex digits: over 64 bits
  EXPECT_EQ(scan("00000000000000001\r\n"), ParseStatus::Invalid);   // 17 digits even when small
  EXPECT_EQ(scan("ffffffffffffffff\r\n"), ParseStatus::NeedMore);   // 16: the largest there is
  EXPECT_EQ(scan("3\r\nabcX\r\n0\r\n\r\n"), ParseStatus::Invalid);  // no CRLF after the data
  EXPECT_EQ(scan("3\r\nabc\rX0\r\n\r\n"), ParseStatus::Invalid);
  EXPECT_EQ(scan("3\r\nabc\n0\r\n\r\n"), ParseStatus::Invalid);  // bare LF after the data
  EXPECT_EQ(scan("3\nabc\r\n0\r\n\r\n"), ParseStatus::Invalid);  // bare LF after the size
  EXPECT_EQ(scan("3\rabc\r\n0\r\n\r\n"), ParseStatus::Invalid);  // bare CR after the size
  EXPECT_EQ(scan("3\r\nabc\r\n0\r\n\n"), ParseStatus::Invalid);  // bare LF at the end
}

// --- Incremental and pipelined --------------------------------------------------------------

TEST(HttpIncremental, RequestsByteAtATimeAndSplitAtEveryOffset) {
  for (const std::string_view s : {
           "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
           "User-Agent: test/1.0\r\n\r\n",
           "POST http://h/form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
           "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic "
           "YTpi\r\n\r\n",
           "OPTIONS * HTTP/1.0\r\n\r\n",
           "\r\n\r\nGET / HTTP/1.0\r\n\r\n",
       }) {
    expectIncremental(kRequestParser, s);
  }
}

TEST(HttpIncremental, PipelinedRequestsConsumeOnlyTheFirstHead) {
  const std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string stream = first + second;
  const auto r1 = request(stream);
  ASSERT_TRUE(r1.complete());
  EXPECT_EQ(r1.consumed, first.size());
  EXPECT_EQ(r1.value.path, "/a");
  const auto r2 = request(std::string_view(stream).substr(r1.consumed));
  ASSERT_TRUE(r2.complete());
  EXPECT_EQ(r2.consumed, second.size());
  EXPECT_EQ(r2.value.path, "/b");

  // A head followed by its body and garbage: the body is not the head's business.
  const std::string post = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n";
  const auto r3 = request(post + "\x01\x02\r\n junk");
  ASSERT_TRUE(r3.complete());
  EXPECT_EQ(r3.consumed, post.size());
}

TEST(HttpIncremental, RefusedAtTheFirstBadByte) {
  const std::string_view fold = "GET / HTTP/1.1\r\nHost: h\r\n x";
  expectRefusedFrom(fold, fold.size() - 1, Error::ObsFold);
  const std::string_view colon = "GET / HTTP/1.1\r\nHost  :";
  expectRefusedFrom(colon, colon.size(), Error::SpaceBeforeColon);
  const std::string_view method = "G@T / HTTP/1.1\r\n";
  expectRefusedFrom(method, 2, Error::Malformed);
  const std::string_view version = "GET / HTTQ";
  expectRefusedFrom(version, version.size(), Error::Malformed);
  const std::string_view lf = "GET / HTTP/1.1\n";
  expectRefusedFrom(lf, lf.size(), Error::Malformed);
  const std::string_view ctl = "GET / HTTP/1.1\r\nHost: \x02";
  expectRefusedFrom(ctl, ctl.size(), Error::Malformed);
}

// --- Responses ---------------------------------------------------------------------------

TEST(HttpResponse, StatusLine) {
  auto r = response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.versionMinor, 1);
  EXPECT_EQ(r.value.status, 200);
  EXPECT_EQ(r.value.reason, "OK");
  EXPECT_EQ(r.value.body, BodyKind::Length);
  EXPECT_EQ(r.value.contentLength, 2u);
  EXPECT_TRUE(r.value.keepAlive);
  ASSERT_NE(r.value.find("content-length"), nullptr);

  r = response("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");  // no SP, no reason
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.reason, "");
  r = response("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n");  // SP, empty reason
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.reason, "");
  r = response("HTTP/1.0 999 Strange \t reason \xe2\x80\x94\r\n\r\n");
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.status, 999);
  EXPECT_EQ(r.value.reason, "Strange \t reason \xe2\x80\x94");
  EXPECT_EQ(r.value.versionMinor, 0);
}

TEST(HttpResponse, Refusals) {
  const auto refused = [](std::string_view s, Error error) {
    const auto r = response(s);
    EXPECT_TRUE(r.invalid()) << s;
    EXPECT_EQ(r.error, error) << s << ": " << describe(r.error);
  };
  refused("HTTP/1.1 099 Low\r\n\r\n", Error::Malformed);
  refused("HTTP/1.1 1000 Long\r\n\r\n", Error::Malformed);
  refused("HTTP/1.1 20 Short\r\n\r\n", Error::Malformed);
  refused("HTTP/1.1  200 OK\r\n\r\n", Error::Malformed);
  refused("HTTP/1.1 200 O\x01K\r\n\r\n", Error::Malformed);
  refused("HTTP/1.1\r\n\r\n", Error::Malformed);
  refused("http/1.1 200 OK\r\n\r\n", Error::Malformed);
  refused("\r\nHTTP/1.1 200 OK\r\n\r\n", Error::Malformed);  // no empty lines before a response
  refused("HTTP/2.0 200 OK\r\n\r\n", Error::BadVersion);
  refused("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", Error::ObsFold);
  refused("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", Error::SpaceBeforeColon);
  refused("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", Error::BareCarriageReturn);
  refused("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
          Error::LengthAndChunked);
  refused("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
          Error::ConflictingLengths);
  refused("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", Error::BadContentLength);
  refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
          Error::BadTransferEncoding);
  refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,\r\n\r\n", Error::BadTransferEncoding);
  Limits limits;
  limits.maxRequestLine = 16;
  EXPECT_EQ(response("HTTP/1.1 200 OK, a long reason", "GET", limits).error,
            Error::RequestLineTooLong);
  limits = {};
  limits.maxHeaderBytes = 32;
  EXPECT_EQ(response("HTTP/1.1 200 OK\r\nX: " + std::string(20, 'x'), "GET", limits).error,
            Error::HeadersTooLarge);
}

TEST(HttpResponse, Framing) {
  struct Case {
    std::string_view head;
    std::string_view method;
    BodyKind body;
    bool keepAlive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", BodyKind::None, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", BodyKind::None, true},
      {"HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT", BodyKind::Tunnel, true},
      {"HTTP/1.1 204 OK\r\n\r\n", "CONNECT", BodyKind::Tunnel, true},
      {"HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", "CONNECT", BodyKind::Length, true},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
       "GET", BodyKind::Tunnel, true},
      {"HTTP/1.1 100 Continue\r\n\r\n", "POST", BodyKind::None, true},
      {"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n", "GET", BodyKind::None, true},
      {"HTTP/1.1 204 No Content\r\n\r\n", "GET", BodyKind::None, true},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", "GET", BodyKind::None, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", BodyKind::Chunked, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET", BodyKind::Chunked,
       true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", BodyKind::UntilClose, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "GET", BodyKind::UntilClose,
       false},
      {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n", "GET",
       BodyKind::UntilClose, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "GET", BodyKind::Length, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n", "GET",
       BodyKind::Length, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n", "GET", BodyKind::Length, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 10\r\nConnection: Keep-Alive\r\n\r\n", "GET",
       BodyKind::Length, true},
      {"HTTP/1.1 200 OK\r\n\r\n", "GET", BodyKind::UntilClose, false},
      {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n", "POST", BodyKind::UntilClose, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + std::string(c.head));
    const auto r = response(c.head, c.method);
    ASSERT_TRUE(r.complete()) << describe(r.error);
    EXPECT_EQ(r.consumed, c.head.size());
    EXPECT_EQ(r.value.body, c.body);
    EXPECT_EQ(r.value.keepAlive, c.keepAlive);
  }
  EXPECT_TRUE(response("HTTP/1.1 100 Continue\r\n\r\n").value.interim());
  EXPECT_TRUE(response("HTTP/1.1 199 Odd\r\n\r\n").value.interim());
  EXPECT_FALSE(response("HTTP/1.1 101 Switching\r\n\r\n").value.interim());
  EXPECT_FALSE(response("HTTP/1.1 200 OK\r\n\r\n").value.interim());
}

TEST(HttpResponse, ByteAtATimeAndSplitAtEveryOffset) {
  const auto parse = [](std::string_view s) { return response(s); };
  expectIncremental(parse, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: x\r\n\r\n");
  expectIncremental(parse, "HTTP/1.1 204\r\n\r\n");
  expectIncremental(parse, "HTTP/1.0 302 Found\r\nLocation: http://h/\r\n\r\n");
}

// --- Body scanner -------------------------------------------------------------------------

struct Scanned {
  ParseStatus status = ParseStatus::NeedMore;
  std::size_t used = 0;  // bytes of the stream that belonged to the body
  std::string decoded;
};

// Feeds `stream` in pieces of the given sizes (the last repeated), stopping at Complete or Invalid.
Scanned scanInPieces(BodyKind kind, std::uint64_t length, std::string_view stream,
                     std::vector<std::size_t> pieces) {
  BodyScanner scanner(kind, length);
  Scanned out;
  std::size_t offset = 0;
  std::size_t piece = 0;
  while (true) {
    const std::size_t size =
        std::min(pieces[std::min(piece, pieces.size() - 1)], stream.size() - offset);
    ++piece;
    std::size_t used = 0;
    out.status = scanner.feed(bytesOf(stream.substr(offset, size)), used, &out.decoded);
    EXPECT_LE(used, size);
    out.used += used;
    if (out.status != ParseStatus::NeedMore) {
      EXPECT_EQ(scanner.done(), out.status == ParseStatus::Complete);
      return out;
    }
    EXPECT_EQ(used, size);  // NeedMore: every byte was the body's
    offset += size;
    if (offset == stream.size()) return out;
  }
}

// The body, however it is cut, ends where it ends and leaves what follows.
void expectBody(BodyKind kind, std::uint64_t length, std::string_view body,
                std::string_view payload) {
  SCOPED_TRACE(std::string(body));
  const std::string pipelined = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string stream = std::string(body) + pipelined;
  const auto check = [&](const Scanned& s) {
    EXPECT_EQ(s.status, ParseStatus::Complete);
    EXPECT_EQ(s.used, body.size());
    EXPECT_EQ(s.decoded, payload);
  };
  check(scanInPieces(kind, length, stream, {stream.size()}));
  check(scanInPieces(kind, length, stream, {1}));
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    check(scanInPieces(kind, length, stream, {split, stream.size()}));
  }
  // One byte short: never Complete.
  const Scanned shortOne = scanInPieces(kind, length, body.substr(0, body.size() - 1), {1});
  EXPECT_EQ(shortOne.status, ParseStatus::NeedMore);
  EXPECT_EQ(shortOne.used, body.size() - 1);
}

TEST(HttpBody, Length) {
  expectBody(BodyKind::Length, 5, "hello", "hello");
  expectBody(BodyKind::Length, 1, "\r", "\r");
  BodyScanner empty(BodyKind::Length, 0);
  EXPECT_TRUE(empty.done());
  std::size_t used = 9;
  EXPECT_EQ(empty.feed(bytesOf("GET"), used), ParseStatus::Complete);
  EXPECT_EQ(used, 0u);
}

TEST(HttpBody, Chunked) {
  expectBody(BodyKind::Chunked, 0, "5\r\nhello\r\n0\r\n\r\n", "hello");
  expectBody(BodyKind::Chunked, 0, "0\r\n\r\n", "");
  expectBody(BodyKind::Chunked, 0, "000\r\n\r\n", "");
  expectBody(BodyKind::Chunked, 0, "A\r\n0123456789\r\n1\r\n\n\r\n0\r\n\r\n", "0123456789\n");
  expectBody(BodyKind::Chunked, 0, "a\r\n0123\r\n6789\r\n00\r\n\r\n", "0123\r\n6789");
  expectBody(BodyKind::Chunked, 0, "3;name=value;flag\r\nabc\r\n0;last\r\n\r\n", "abc");
  expectBody(BodyKind::Chunked, 0, "3 ; a = \"q \\\" ;\\\\x\" ;b\r\nabc\r\n0\r\n\r\n", "abc");
  expectBody(BodyKind::Chunked, 0, "3\t;a=b\r\nabc\r\n0\r\n\r\n", "abc");
}

TEST(HttpBody, ChunkedWithTrailers) {
  expectBody(BodyKind::Chunked, 0,
             "4\r\nwiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\nX-Sum:  abc \t\r\nEmpty:\r\n\r\n",
             "wikipedia");
}

TEST(HttpBody, ChunkedRefusals) {
  for (const std::string_view body : {
           "\r\n",                              // no size
           "x\r\n",                             // not hex
           "-1\r\n",                            //
           "0x5\r\n",                           //
           " 5\r\nhello\r\n0\r\n\r\n",          // leading space
           "5 \r\nhello\r\n0\r\n\r\n",          // whitespace not followed by ';'
           "5;\r\nhello\r\n0\r\n\r\n",          // ';' without a name
           "5;a=\r\nhello\r\n0\r\n\r\n",        // '=' without a value
           "5;a =\r\n",                         //
           "5;a=\"x\r\n",                       // unterminated quoted string
           "5;a=\"x\"y\r\n",                    //
           "5;a=b c\r\n",                       //
           "5;a b\r\n",                         //
           "5;a=\x01\r\n",                      //
           "5;a\x7f\r\n",                       //
           "5\r\nhello\r\n0\r\nX : y\r\n\r\n",  // trailer: space before the colon
           "5\r\nhello\r\n0\r\n y\r\n\r\n",     // trailer: obs-fold
           "5\r\nhello\r\n0\r\nNo colon\r\n\r\n",
           "5\r\nhello\r\n0\r\n: x\r\n\r\n",  // trailer: empty name
           "5\r\nhello\r\n0\r\nX: a\x01\r\n\r\n",
           "5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n",
           "5\r\nhello\r\n0\r\nX: a\n\r\n",
           "5\r\nhello\r\n0\r\n\r\r",
       }) {
    SCOPED_TRACE(std::string(body));
    const Scanned whole = scanInPieces(BodyKind::Chunked, 0, body, {body.size()});
    EXPECT_EQ(whole.status, ParseStatus::Invalid);
    EXPECT_EQ(scanInPieces(BodyKind::Chunked, 0, body, {1}).status, ParseStatus::Invalid);
  }
}

TEST(HttpBody, ChunkedLimits) {
  // An extension line of 4096 bytes is accepted, one more is not.
  std::string line = "1;a=" + std::string(4092, 'x');
  ASSERT_EQ(line.size(), 4096u);
  EXPECT_EQ(scanInPieces(BodyKind::Chunked, 0, line + "\r\nz\r\n0\r\n\r\n", {7}).status,
            ParseStatus::Complete);
  EXPECT_EQ(scanInPieces(BodyKind::Chunked, 0, line + "x", {7}).status, ParseStatus::Invalid);
  // A trailer section over 64 KiB is refused before its end arrives.
  std::string trailers = "0\r\n";
  while (trailers.size() < 70000) trailers += "X-Filler: " + std::string(90, 'f') + "\r\n";
  EXPECT_EQ(scanInPieces(BodyKind::Chunked, 0, trailers, {1000}).status, ParseStatus::Invalid);
  std::string fits = "0\r\n";
  while (fits.size() < 60000) fits += "X-Filler: " + std::string(90, 'f') + "\r\n";
  EXPECT_EQ(scanInPieces(BodyKind::Chunked, 0, fits + "\r\n", {1000}).status,
            ParseStatus::Complete);
}

TEST(HttpBody, InvalidStaysInvalidAndUsedStopsAtTheBadByte) {
  BodyScanner scanner(BodyKind::Chunked, 0);
  std::size_t used = 0;
  std::string decoded;
  EXPECT_EQ(scanner.feed(bytesOf("3\r\nabcX"), used, &decoded), ParseStatus::Invalid);
  EXPECT_EQ(used, 6u);
  EXPECT_EQ(decoded, "abc");
  EXPECT_EQ(scanner.error(), Error::BadChunk);
  EXPECT_FALSE(scanner.done());
  EXPECT_EQ(scanner.feed(bytesOf("\r\n0\r\n\r\n"), used), ParseStatus::Invalid);
  EXPECT_EQ(used, 0u);
}

TEST(HttpBody, DoneBodyUsesNothingMore) {
  BodyScanner scanner(BodyKind::Chunked, 0);
  std::size_t used = 0;
  EXPECT_EQ(scanner.feed(bytesOf("0\r\n\r\nGET"), used), ParseStatus::Complete);
  EXPECT_EQ(used, 5u);
  EXPECT_TRUE(scanner.done());
  EXPECT_EQ(scanner.feed(bytesOf("GET"), used), ParseStatus::Complete);
  EXPECT_EQ(used, 0u);
}

TEST(HttpBody, NoneTunnelAndUntilClose) {
  std::size_t used = 7;
  BodyScanner none;
  EXPECT_TRUE(none.done());
  EXPECT_EQ(none.kind(), BodyKind::None);
  EXPECT_EQ(none.feed(bytesOf("abc"), used), ParseStatus::Complete);
  EXPECT_EQ(used, 0u);

  BodyScanner tunnel(BodyKind::Tunnel, 0);
  EXPECT_TRUE(tunnel.done());
  EXPECT_EQ(tunnel.feed(bytesOf("abc"), used), ParseStatus::Complete);
  EXPECT_EQ(used, 0u);

  BodyScanner untilClose(BodyKind::UntilClose, 0);
  std::string decoded;
  EXPECT_EQ(untilClose.feed(bytesOf("abc"), used, &decoded), ParseStatus::NeedMore);
  EXPECT_EQ(used, 3u);
  EXPECT_EQ(untilClose.feed(bytesOf("0\r\n\r\n"), used, &decoded), ParseStatus::NeedMore);
  EXPECT_EQ(decoded, "abc0\r\n\r\n");
  EXPECT_FALSE(untilClose.done());
}

// --- Heads sent on ------------------------------------------------------------------------

ForwardOptions viaFwgate(bool keepAlive = true) {
  ForwardOptions options;
  options.via = "fwgate";
  options.keepAlive = keepAlive;
  return options;
}

TEST(HttpForward, OriginRequestDropsHopByHopAndRewritesHost) {
  const RequestHead h = parsed(
      "GET http://Example.com/a?b=c HTTP/1.1\r\n"
      "User-Agent: curl/8\r\n"
      "Host: wrong.example\r\n"
      "Proxy-Connection: Keep-Alive, X-Secret-Hop\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "X-Hop: 1\r\n"
      "x-secret-hop: 2\r\n"
      "Keep-Alive: timeout=5\r\n"
      "TE: trailers\r\n"
      "Trailer: X-Sum\r\n"
      "Upgrade: h2c\r\n"
      "Proxy-Authorization: Basic YTpi\r\n"
      "Proxy-Authenticate: Basic\r\n"
      "Via: 1.1 upstream\r\n"
      "Accept: */*\r\n"
      "\r\n");
  EXPECT_FALSE(h.upgrade);
  EXPECT_EQ(originRequest(h, viaFwgate()),
            "GET /a?b=c HTTP/1.1\r\n"
            "User-Agent: curl/8\r\n"
            "Host: example.com\r\n"
            "Via: 1.1 upstream\r\n"
            "Accept: */*\r\n"
            "Via: 1.1 fwgate\r\n"
            "Connection: keep-alive\r\n"
            "\r\n");
}

TEST(HttpForward, OriginRequestHostPortVersionAndForwardedFor) {
  RequestHead h = parsed(
      "POST http://[2001:db8::1]:8080/up HTTP/1.0\r\nContent-Length: 3\r\n"
      "X-Forwarded-For: 198.51.100.1\r\n\r\n");
  ForwardOptions options = viaFwgate(false);
  options.forwardedFor = "192.0.2.7";
  EXPECT_EQ(originRequest(h, options),
            "POST /up HTTP/1.1\r\n"
            "Host: [2001:db8::1]:8080\r\n"
            "Content-Length: 3\r\n"
            "X-Forwarded-For: 198.51.100.1, 192.0.2.7\r\n"
            "Via: 1.0 fwgate\r\n"
            "Connection: close\r\n"
            "\r\n");

  h = parsed(
      "PUT http://h:81/x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nHost: h:81\r\n\r\n");
  options.via = {};
  options.keepAlive = true;
  EXPECT_EQ(originRequest(h, options),
            "PUT /x HTTP/1.1\r\n"
            "Transfer-Encoding: gzip, chunked\r\n"
            "Host: h:81\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "Connection: keep-alive\r\n"
            "\r\n");
}

TEST(HttpForward, OriginRequestNeverDropsFramingNamedInConnection) {
  const RequestHead h = parsed(
      "POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
      "Connection: Content-Length, Host, Transfer-Encoding\r\n\r\n");
  EXPECT_EQ(originRequest(h, viaFwgate()),
            "POST / HTTP/1.1\r\n"
            "Host: h\r\n"
            "Content-Length: 4\r\n"
            "Via: 1.1 fwgate\r\n"
            "Connection: keep-alive\r\n"
            "\r\n");
}

TEST(HttpForward, OriginRequestKeepsUpgrade) {
  const RequestHead h = parsed(
      "GET http://h/chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  ASSERT_TRUE(h.upgrade);
  EXPECT_EQ(originRequest(h, viaFwgate()),
            "GET /chat HTTP/1.1\r\n"
            "Host: h\r\n"
            "Upgrade: websocket\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Via: 1.1 fwgate\r\n"
            "Connection: Upgrade\r\n"
            "\r\n");
}

TEST(HttpForward, OriginRequestOtherForms) {
  // No Host field at all (HTTP/1.0): one from the URI, first.
  RequestHead h = parsed("GET http://h HTTP/1.0\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(originRequest(h, viaFwgate()),
            "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nVia: 1.0 fwgate\r\n"
            "Connection: keep-alive\r\n\r\n");
  // Origin form (a request to the proxy itself): the target and Host as received.
  h = parsed("GET /proxy.pac HTTP/1.1\r\nHost: Proxy:8080\r\n\r\n");
  EXPECT_EQ(originRequest(h, viaFwgate()),
            "GET /proxy.pac HTTP/1.1\r\nHost: Proxy:8080\r\nVia: 1.1 fwgate\r\n"
            "Connection: keep-alive\r\n\r\n");
  // OPTIONS to an absolute URI without path: "*" (RFC 9112 section 3.2.4).
  h = parsed("OPTIONS http://h:8000 HTTP/1.1\r\nHost: h:8000\r\n\r\n");
  EXPECT_EQ(originRequest(h, {}),
            "OPTIONS * HTTP/1.1\r\nHost: h:8000\r\nConnection: keep-alive\r\n\r\n");
  h = parsed("OPTIONS http://h/ HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(originRequest(h, {}),
            "OPTIONS / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
}

TEST(HttpForward, ClientResponse) {
  auto r = response(
      "HTTP/1.1 200 Fine\r\nServer: origin\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
      "Keep-Alive: timeout=5\r\nContent-Length: 2\r\nProxy-Authenticate: Basic\r\n"
      "Trailer: X-Sum\r\nVia: 1.0 cache\r\n\r\n");
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(clientResponse(r.value, viaFwgate(), false),
            "HTTP/1.1 200 Fine\r\n"
            "Server: origin\r\n"
            "Content-Length: 2\r\n"
            "Via: 1.0 cache\r\n"
            "Via: 1.1 fwgate\r\n"
            "Connection: keep-alive\r\n"
            "\r\n");

  // An HTTP/1.0 origin without a reason, to a client the proxy will close.
  r = response("HTTP/1.0 404\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(clientResponse(r.value, viaFwgate(false), false),
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nVia: 1.0 fwgate\r\n"
            "Connection: close\r\n\r\n");
}

TEST(HttpForward, ClientResponseDechunked) {
  const auto r =
      response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n");
  EXPECT_EQ(clientResponse(r.value, viaFwgate(true), true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nVia: 1.1 fwgate\r\n"
            "Connection: close\r\n\r\n");
}

TEST(HttpForward, ClientResponseUpgradeAndInterim) {
  auto r = response(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  EXPECT_EQ(clientResponse(r.value, viaFwgate(), false),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nVia: 1.1 fwgate\r\n"
            "Connection: Upgrade\r\n\r\n");
  r = response("HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(clientResponse(r.value, viaFwgate(), false),
            "HTTP/1.1 100 Continue\r\nVia: 1.1 fwgate\r\n\r\n");
}

TEST(HttpForward, LocalResponse) {
  EXPECT_EQ(localResponse(403, "Forbidden", "Content-Type: text/html\r\n", "<p>no</p>", false),
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 9\r\n"
            "Connection: close\r\n\r\n<p>no</p>");
  EXPECT_EQ(localResponse(407, "", "Proxy-Authenticate: Basic realm=\"fwgate\"\r\n", "", true),
            "HTTP/1.1 407 Proxy Authentication Required\r\n"
            "Proxy-Authenticate: Basic realm=\"fwgate\"\r\nContent-Length: 0\r\n"
            "Connection: keep-alive\r\n\r\n");
  EXPECT_EQ(localResponse(100, "Continue", "", "", true), "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(localResponse(204, "", "", "", true),
            "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
  // What the proxy sends parses back.
  const std::string page = localResponse(502, "Bad Gateway", "", "oops", true);
  const auto r = response(page);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.value.status, 502);
  EXPECT_EQ(r.value.contentLength, 4u);
  EXPECT_EQ(page.substr(r.consumed), "oops");
}

TEST(HttpForward, ForwardedRequestParsesBack) {
  const RequestHead h = parsed(
      "POST http://h:8080/x HTTP/1.1\r\nHost: h:8080\r\nConnection: X-A\r\nX-A: 1\r\n"
      "Transfer-Encoding: chunked\r\n\r\n");
  const std::string sent = originRequest(h, viaFwgate());
  const auto again = request(sent);
  ASSERT_TRUE(again.complete());
  EXPECT_EQ(again.consumed, sent.size());
  EXPECT_EQ(again.value.body, BodyKind::Chunked);
  EXPECT_EQ(again.value.find("Host")->value, "h:8080");
  EXPECT_EQ(again.value.find("X-A"), nullptr);
}

// --- Credentials, tokens, texts ------------------------------------------------------------

std::optional<BasicCredentials> credentials(std::string_view fields) {
  std::string s = "GET http://h/ HTTP/1.1\r\nHost: h\r\n";
  s += fields;
  s += "\r\n";
  return proxyBasicCredentials(parsed(s));
}

TEST(HttpCredentials, Basic) {
  auto c = credentials("Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "s3cret");
  c = credentials("proxy-authorization: bASIC   Ym9iOnBhOnNzOndvcmQ=\r\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "bob");
  EXPECT_EQ(c->password, "pa:ss:word");
  c = credentials("Proxy-Authorization: Basic Om5vdXNlcg==\r\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "");
  EXPECT_EQ(c->password, "nouser");
  c = credentials("Proxy-Authorization: Basic dTo=\r\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "u");
  EXPECT_EQ(c->password, "");
  c = credentials("Proxy-Authorization: Basic YWI6Yw==\r\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "ab");
  EXPECT_EQ(c->password, "c");
}

std::optional<std::string> negotiate(std::string_view fields) {
  std::string s = "GET http://h/ HTTP/1.1\r\nHost: h\r\n";
  s += fields;
  s += "\r\n";
  return proxyNegotiateToken(parsed(s));
}

TEST(HttpCredentials, Negotiate) {
  EXPECT_EQ(negotiate("Proxy-Authorization: Negotiate YIIBAA==\r\n"),
            std::string("\x60\x82\x01\x00", 4));
  EXPECT_EQ(negotiate("proxy-authorization: negotiate   YIIBAA==\r\n"),
            std::string("\x60\x82\x01\x00", 4));
  EXPECT_FALSE(negotiate("Proxy-Authorization: Negotiate\r\n"));
  EXPECT_FALSE(negotiate("Proxy-Authorization: Negotiate !!!\r\n"));
  EXPECT_FALSE(negotiate("Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n"));
  EXPECT_FALSE(
      negotiate("Proxy-Authorization: Negotiate YIIBAA==\r\n"
                "Proxy-Authorization: Negotiate YIIBAA==\r\n"));
}

TEST(HttpCredentials, Refused) {
  EXPECT_FALSE(credentials(""));
  EXPECT_FALSE(credentials("Authorization: Basic YWxpY2U6czNjcmV0\r\n"));  // not the proxy's
  EXPECT_FALSE(credentials("Proxy-Authorization: Bearer YWxpY2U6czNjcmV0\r\n"));
  EXPECT_FALSE(credentials("Proxy-Authorization: BasicYWxpY2U6czNjcmV0\r\n"));
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic\r\n"));
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic \r\n"));
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic bm9jb2xvbg==\r\n"));       // no colon
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic YWxpY2U6czNjcmV0=\r\n"));  // length
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic YWxpY2U6czNjcmV\r\n"));    // length
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic YWxp Y2U6czNjcmV0\r\n"));
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic YWxpY2U6czNj*mV0\r\n"));  // alphabet
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic YWxpY2U6czNjcm-0\r\n"));  // base64url
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic YT=pYg==\r\n"));          // padding inside
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic YTpi====\r\n"));
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic Y===\r\n"));
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic dTo=YTpi\r\n"));      // data after padding
  EXPECT_FALSE(credentials("Proxy-Authorization: Basic YWwAaWNlOnB3\r\n"));  // NUL in the user
  // Two fields: which one would the next hop have checked?
  EXPECT_FALSE(
      credentials("Proxy-Authorization: Basic YTpi\r\nProxy-Authorization: Basic dTo=\r\n"));
}

TEST(HttpText, IequalsAndHasToken) {
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(iequals("Content-Length", "Content-Lengt"));
  EXPECT_FALSE(iequals("a", "\xc1"));  // no folding outside ASCII
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(hasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(hasToken(" close ", "close"));
  EXPECT_TRUE(hasToken("a,\tb ,c", "b"));
  EXPECT_TRUE(hasToken(",,close,", "close"));
  EXPECT_FALSE(hasToken("closed", "close"));
  EXPECT_FALSE(hasToken("keep-alive", "alive"));
  EXPECT_FALSE(hasToken("", "close"));
  EXPECT_FALSE(hasToken("a,,b", ""));
}

TEST(HttpText, StatusAndDescriptionForEveryError) {
  const std::vector<std::pair<Error, int>> all = {
      {Error::Malformed, 400},
      {Error::BadVersion, 505},
      {Error::BadTarget, 400},
      {Error::UnsupportedScheme, 400},
      {Error::RequestLineTooLong, 414},
      {Error::HeadersTooLarge, 431},
      {Error::BareCarriageReturn, 400},
      {Error::ObsFold, 400},
      {Error::SpaceBeforeColon, 400},
      {Error::LengthAndChunked, 400},
      {Error::ConflictingLengths, 400},
      {Error::BadContentLength, 400},
      {Error::BadTransferEncoding, 400},
      {Error::MissingHost, 400},
      {Error::BadChunk, 400},
  };
  std::set<std::string_view> sentences;
  for (const auto& [error, status] : all) {
    EXPECT_EQ(statusFor(error), status) << describe(error);
    EXPECT_FALSE(reasonPhrase(statusFor(error)).empty());
    EXPECT_TRUE(sentences.insert(describe(error)).second) << describe(error);
  }
  EXPECT_EQ(describe(Error::LengthAndChunked), "Content-Length together with Transfer-Encoding");
  EXPECT_FALSE(describe(Error::None).empty());
}

TEST(HttpText, ReasonPhrase) {
  EXPECT_EQ(reasonPhrase(200), "OK");
  EXPECT_EQ(reasonPhrase(400), "Bad Request");
  EXPECT_EQ(reasonPhrase(407), "Proxy Authentication Required");
  EXPECT_EQ(reasonPhrase(414), "URI Too Long");
  EXPECT_EQ(reasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reasonPhrase(502), "Bad Gateway");
  EXPECT_EQ(reasonPhrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reasonPhrase(299), "");
  EXPECT_EQ(reasonPhrase(0), "");
}

}  // namespace
}  // namespace fwgate::protocol::http
