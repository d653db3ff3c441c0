#include "gateway/web_proxy_session.hpp"

#include <sys/socket.h>

#include <fmt/format.h>
#include <array>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/write.hpp>
#include <cerrno>

#include "config/pac.hpp"
#include "gateway/net.hpp"
#include "gateway/relay.hpp"
#include "gateway/reply_code.hpp"
#include "protocol/address.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
namespace http = protocol::http;

namespace {

constexpr std::size_t kClientChunk = 16 * 1024;  // a head usually arrives in one
constexpr std::size_t kOriginChunk = 64 * 1024;  // bodies: fewer, larger reads
// How long a persistent connection keeps its buffers between requests.
constexpr std::chrono::milliseconds kHoldBuffers{50};

using Read = WebProxySession::Read;

bool isPacPath(std::string_view path) {
  return path == "/wpad.dat" || path == "/proxy.pac" || path == "/array.dll?Get.Routing.Script";
}

std::string withoutQuery(std::string_view path) {
  return std::string(path.substr(0, path.find('?')));
}

// The session log's "result" for a status the client was sent.
// The outcome of a status the proxy answers itself, when the caller did not decide a better one
// (a rule's 403 is Denied, a password's 407 AuthFailed, and so on).
policy::Outcome outcomeOfAnswer(int status) {
  if (status < 400) return policy::Outcome::Succeeded;
  if (status == 403) return policy::Outcome::NotAllowed;
  if (status == 407) return policy::Outcome::AuthFailed;
  if (status == 408) return policy::Outcome::HandshakeTimeout;
  if (status == 429) return policy::Outcome::SessionLimit;
  if (status == 502 || status == 504) return policy::Outcome::DestinationFailed;
  return policy::Outcome::BadRequest;  // malformed, too large, a loop, a method not served
}

std::string resultOf(int status) {
  if (status == 403) return "denied";
  if (status == 407) return "auth-required";
  if (status >= 400) return "error";
  return "ok";
}

// "host:port" of an absolute- or authority-form request ("[v6]:port").
std::string destinationText(const http::RequestHead& head) {
  return protocol::hostPortText(head.host, head.host.find(':') != std::string::npos, head.port);
}

// "GET http://host:port/path" for messages; the query stays out of logs and pages.
std::string requestText(const http::RequestHead& head) {
  std::string out = head.method;
  out += ' ';
  if (head.form == http::RequestHead::Form::Authority) {
    out += head.target;
  } else {
    out += "http://";
    out += destinationText(head);
    out += withoutQuery(head.path);
  }
  return out;
}

// A Via that names this proxy already: the request went round in a loop.
bool passedHere(const http::RequestHead& head, std::string_view viaName) {
  if (viaName.empty()) return false;
  for (const auto& f : head.fields) {
    if (!http::iequals(f.name, "Via")) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      std::string_view element = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) {
        element.remove_prefix(1);
      }
      const std::size_t space = element.find(' ');
      if (space == std::string_view::npos) continue;
      std::string_view by = element.substr(space + 1);
      by = by.substr(0, by.find_first_of(" \t("));
      if (by == viaName) return true;
    }
  }
  return false;
}

}  // namespace

WebProxySession::WebProxySession(Runtime& runtime, tcp::socket client, tcp::endpoint peer)
    : runtime_(runtime),
      snapshot_(runtime.snapshot()),
      client_(std::move(client)),
      clientEndpoint_(peer),
      timer_(client_.get_executor()) {}

http::Limits WebProxySession::limits() const {
  const auto& w = snapshot_->config->webProxy;
  return http::Limits{w.maxRequestLine, w.maxHeaderBytes, w.maxHeaderCount};
}

void WebProxySession::consume(std::size_t n) {
  inStart_ += n;
  if (inStart_ >= in_.size()) {
    in_.clear();
    inStart_ = 0;
  }
}

void WebProxySession::setDeadline(Clock::time_point deadline, tcp::socket* watched) {
  const bool earlier = deadline < deadline_;
  deadline_ = deadline;
  watched_ = watched;
  timedOut_ = false;
  if (earlier) timer_.cancel();  // the watchdog sleeps until the old one: wake it
}

asio::awaitable<void> WebProxySession::watchdog() {
  // One timer per connection, re-armed only when a deadline moves earlier, instead of a timer
  // raced against every read.
  for (;;) {
    timer_.expires_at(deadline_);
    auto [ec] = co_await timer_.async_wait(kNoThrow);
    if (finished_) co_return;
    if (ec && ec != asio::error::operation_aborted) co_return;
    if (!ec && Clock::now() >= deadline_ && watched_ != nullptr) {
      timedOut_ = true;
      std::error_code ignored;
      watched_->cancel(ignored);
      watched_ = nullptr;
    }
  }
}

asio::awaitable<WebProxySession::Read> WebProxySession::readInto(tcp::socket& socket, Buffer& buf,
                                                                 std::size_t chunk,
                                                                 Clock::time_point deadline) {
  setDeadline(deadline, &socket);
  // The watchdog never touches a socket after this returns (it may be gone by then).
  struct Unwatch {
    tcp::socket*& watched;
    ~Unwatch() { watched = nullptr; }
  } unwatch{watched_};
  for (int spurious = 0; spurious < 64; ++spurious) {
    auto [ec] = co_await socket.async_wait(tcp::socket::wait_read, kNoThrow);
    if (timedOut_) co_return Read::Timeout;
    if (ec) co_return Read::Error;
    const std::size_t old = buf.size();
    buf.resize(old + chunk);
    const ssize_t n = ::recv(socket.native_handle(), buf.data() + old, chunk, MSG_DONTWAIT);
    if (n > 0) {
      buf.resize(old + static_cast<std::size_t>(n));
      co_return Read::Ok;
    }
    buf.resize(old);
    if (n == 0) co_return Read::Eof;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
  }
  co_return Read::Error;
}

asio::awaitable<WebProxySession::Read> WebProxySession::readClient(Clock::time_point deadline) {
  if (inStart_ > 0) {
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(inStart_));
    inStart_ = 0;
  }
  const Read r = co_await readInto(client_, in_, kClientChunk, deadline);
  co_return r;
}

asio::awaitable<bool> WebProxySession::writeClient(const void* data, std::size_t n,
                                                   SessionRecord& record) {
  auto [ec, written] = co_await asio::async_write(client_, asio::buffer(data, n), kNoThrow);
  record.bytesDown += written;
  if (ec) {
    record.error = "write to client: " + ec.message();
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> WebProxySession::run() {
  std::error_code ec;
  localEndpoint_ = client_.local_endpoint(ec);
  if (ec) co_return;
  client_.set_option(tcp::no_delay(true), ec);
  const auto client = unmapped(clientEndpoint_.address());
  if (!runtime_.admitWebClient(client)) {
    SessionRecord record;
    record.client = endpointString(client, clientEndpoint_.port());
    record.protocol = "http";
    record.error = fmt::format(
        "{} has {} connections to the Web Proxy already "
        "(web_proxy.max_connections_per_client)",
        client.to_string(), snapshot_->config->webProxy.maxConnectionsPerClient);
    RecordWriter writer(runtime_.sessionLog(), record);
    co_await answer(429, false, record);
    writer.ended();
    co_return;
  }
  struct Slot {
    Runtime& runtime;
    asio::ip::address client;
    ~Slot() { runtime.releaseWebClient(client); }
  } slot{runtime_, client};

  co_await (serve() || watchdog());
  client_.shutdown(tcp::socket::shutdown_both, ec);
}

asio::awaitable<void> WebProxySession::serve() {
  bool first = true;
  for (;;) {
    // The wait has a frame of its own: while a connection is idle, nothing of a request's
    // state (its record, its parsed head) is allocated.
    if (!co_await nextRequest(first)) break;
    const bool keep = co_await serveOne();
    first = false;
    if (!keep) break;
  }
  finished_ = true;
  timer_.cancel();
  releaseKept();
}

void WebProxySession::releaseKept() {
  if (!kept_) return;
  const auto& w = snapshot_->config->webProxy;
  if (OriginPool::usable(kept_->socket)) {
    runtime_.origins().put(keptKey_, std::move(*kept_), w.originIdleTimeout, w.originPoolSize);
  }
  kept_.reset();
}

asio::awaitable<bool> WebProxySession::nextRequest(bool first) {
  const auto& w = snapshot_->config->webProxy;
  if (pending().empty()) {
    // A busy client's next request comes at once and finds the buffers where they were; a
    // connection that stays idle gives them back, so it costs no buffer while it waits.
    const auto wait = first ? w.headerTimeout : w.keepAliveTimeout;
    const auto until = Clock::now() + wait;
    Read r = co_await readClient(Clock::now() + std::min<Clock::duration>(kHoldBuffers, wait));
    if (r == Read::Timeout && Clock::now() < until) {
      releaseKept();
      Buffer().swap(in_);
      Buffer().swap(out_);
      inStart_ = 0;
      r = co_await readClient(until);
    }
    if (r != Read::Ok) co_return false;
  }
  co_return true;
}

asio::awaitable<bool> WebProxySession::serveOne() {
  // Each request is decided by the configuration current when it starts (a SIGHUP reaches
  // persistent connections at their next request).
  snapshot_ = runtime_.snapshot();
  const auto& w = snapshot_->config->webProxy;
  SessionRecord record;
  record.protocol = "http";
  record.client = endpointString(unmapped(clientEndpoint_.address()), clientEndpoint_.port());
  record.user = user_;
  if (user_) record.auth = userAuth_;
  record.http.emplace();  // filled in once the head is parsed; the status whatever happens
  RecordWriter writer(runtime_.sessionLog(), record);
  const auto headDeadline = Clock::now() + w.headerTimeout;
  const auto limits = this->limits();
  protocol::ParseResult<http::RequestHead> parsed;
  for (;;) {
    parsed = http::parseRequest(pending(), limits);
    if (!parsed.needMore()) break;
    const Read r = co_await readClient(headDeadline);
    if (r == Read::Ok) continue;
    record.bytesUp = pending().size();
    if (r == Read::Timeout) {
      record.error = fmt::format(
          "the request head did not arrive within {} ms "
          "(web_proxy.header_timeout)",
          w.headerTimeout.count());
      requestBodyLeft_ = true;
      co_await answer(408, false, record);
    } else {
      record.error = "the client closed the connection in the middle of a request head";
      record.outcome = policy::Outcome::ClientClosed;
    }
    writer.ended();
    co_return false;
  }
  if (parsed.invalid()) {
    record.bytesUp = pending().size();
    record.error = std::string(http::describe(parsed.error));
    requestBodyLeft_ = true;  // framing unknown: the connection cannot go on
    co_await answer(http::statusFor(parsed.error), false, record);
    writer.ended();
    co_return false;
  }
  record.bytesUp = parsed.consumed;
  consume(parsed.consumed);
  http::RequestHead head = std::move(parsed.value);
  const bool keep = co_await handle(head, record);
  writer.ended();
  co_return keep;
}

asio::awaitable<bool> WebProxySession::handle(http::RequestHead& head, SessionRecord& record) {
  using Form = http::RequestHead::Form;
  record.http = SessionRecord::Http{head.method, head.host, head.port, withoutQuery(head.path), 0};
  record.requested = destinationText(head);
  requestBodyLeft_ = head.body != http::BodyKind::None;
  requestKeepAlive_ = head.keepAlive;
  bool toSelf = head.form == Form::Origin || head.form == Form::Asterisk;
  if (head.form == Form::Absolute) {
    std::error_code ec;
    const auto literal = asio::ip::make_address(head.host, ec);
    toSelf = !ec && runtime_.isWebProxyListener(literal, head.port);
  }
  if (toSelf) {
    const bool keep = co_await servePac(head, record);
    co_return keep;
  }
  const auto& w = snapshot_->config->webProxy;
  if (w.via && passedHere(head, w.viaName)) {
    record.error = fmt::format("request loop: {} has passed this proxy (Via: {}) already",
                               requestText(head), w.viaName);
    const bool keep = co_await answer(508, true, record);
    co_return keep;
  }
  bool keep = false;
  if (co_await authenticate(head, record)) {
    if (head.method == "CONNECT") {
      keep = co_await tunnel(head, record);
    } else {
      keep = co_await forward(head, record);
    }
  } else {
    keep = lastAnswerKeeps_;
  }
  co_return keep;
}

asio::awaitable<bool> WebProxySession::answer(int status, bool keepAlive, SessionRecord& record) {
  const auto& w = snapshot_->config->webProxy;
  // The client's "Connection: close" (or HTTP/1.0 without keep-alive) closes after any answer.
  const bool keep = keepAlive && requestKeepAlive_ && !requestBodyLeft_;
  const std::string_view reason = http::reasonPhrase(status);
  std::string body = std::to_string(status);
  body += ' ';
  body += reason;
  body += "\n\n";
  body += record.error;
  body += "\n\n-- fwgate Web Proxy\n";
  std::string fields = "Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n";
  if (status == 407) {
    // Kerberos first: a browser takes the first scheme it can do without asking the user.
    if (snapshot_->kerberos) fields += "Proxy-Authenticate: Negotiate\r\n";
    if (snapshot_->users || !snapshot_->kerberos) {
      fields += "Proxy-Authenticate: Basic realm=\"";
      fields += w.realm;
      fields += "\"\r\n";
    }
  }
  const std::string out = http::localResponse(status, reason, fields, body, keep);
  if (record.http) record.http->status = status;
  record.reply = status;
  record.result = resultOf(status);
  if (!record.outcome) record.outcome = outcomeOfAnswer(status);
  const bool sent = co_await writeClient(out.data(), out.size(), record);
  lastAnswerKeeps_ = sent && keep;
  co_return lastAnswerKeeps_;
}

asio::awaitable<bool> WebProxySession::servePac(const http::RequestHead& head,
                                                SessionRecord& record) {
  const auto& config = *snapshot_->config;
  record.command = "pac";
  const std::string_view path = head.path;
  if (head.method != "GET" && head.method != "HEAD") {
    record.error = fmt::format("{} {}: the proxy itself answers only GET and HEAD", head.method,
                               withoutQuery(path));
    const bool keep = co_await answer(405, true, record);
    co_return keep;
  }
  if (!isPacPath(path)) {
    record.error = fmt::format(
        "{} is not here. This is the fwgate Web Proxy: configure it as your HTTP proxy, or use "
        "its automatic configuration script /wpad.dat (also /proxy.pac and "
        "/array.dll?Get.Routing.Script).",
        withoutQuery(path));
    const bool keep = co_await answer(404, true, record);
    co_return keep;
  }
  std::string proxy = config.webProxy.pacProxy;
  if (proxy.empty()) {
    const auto local = unmapped(localEndpoint_.address());
    proxy = protocol::hostPortText(local.to_string(), local.is_v6(), localEndpoint_.port());
  }
  const std::string script =
      config::pacScript(config, toPolicy(unmapped(clientEndpoint_.address())), proxy);
  const std::string out = http::localResponse(
      200, "OK", "Content-Type: application/x-ns-proxy-autoconfig\r\nCache-Control: no-cache\r\n",
      head.method == "HEAD" ? std::string_view{} : std::string_view{script}, head.keepAlive);
  record.http->status = 200;
  record.reply = 200;
  record.result = "ok";
  record.outcome = policy::Outcome::Succeeded;
  const bool sent = co_await writeClient(out.data(), out.size(), record);
  co_return sent&& head.keepAlive && !requestBodyLeft_;
}

asio::awaitable<bool> WebProxySession::authenticate(const http::RequestHead& head,
                                                    SessionRecord& record) {
  const http::Field* field = head.find("Proxy-Authorization");
  if (field == nullptr) co_return true;
  if (user_ && field->value == credentials_) co_return true;
  if (auto token = http::proxyNegotiateToken(head); token && snapshot_->kerberos) {
    std::string value(field->value);
    const bool ok = co_await negotiate(std::move(*token), std::move(value), record);
    co_return ok;
  }
  auto credentials = http::proxyBasicCredentials(head);
  // Another scheme, or no users to check against: the request stays anonymous.
  if (!credentials || !snapshot_->users) co_return true;
  record.user = credentials->user;
  std::string user = credentials->user;
  std::string password = std::move(credentials->password);
  const auto source = clientEndpoint_.address();
  const Login login =
      co_await runtime_.verifyPassword(snapshot_->users, source, user, std::move(password));
  if (!login.accepted()) {
    user_.reset();
    credentials_.clear();
    record.error = login.why;
    if (login.throttled()) record.outcome = policy::Outcome::AuthThrottled;
    // Throttled: 429, which a browser shows rather than asking for the password again.
    co_await answer(login.throttled() ? 429 : 407, true, record);
    co_return false;
  }
  user_ = user;
  userAuth_ = "password";
  credentials_ = field->value;
  co_return true;
}

asio::awaitable<bool> WebProxySession::negotiate(std::string token, std::string credentials,
                                                 SessionRecord& record) {
  record.auth = "kerberos";
  // Kerberos takes one token; SPNEGO's negotiation of another mechanism (a second round trip
  // with a 407 carrying the acceptor's token) is not offered: the context must finish at once.
  auto context = std::make_shared<gss::Context>(gss::Context::accepting(snapshot_->kerberos));
  gss::Token bytes(token.begin(), token.end());
  const auto source = clientEndpoint_.address();
  KerberosStep step = co_await runtime_.kerberosStep(source, context, std::move(bytes));
  if (step.login.accepted() && !step.step.done()) {
    step.login = Login{Login::Verdict::Rejected,
                       "Kerberos: the Negotiate token does not finish the exchange in one step "
                       "(only Kerberos, not NTLM, is accepted)"};
  }
  if (!step.login.accepted()) {
    user_.reset();
    credentials_.clear();
    record.user.reset();
    record.error = step.login.why;
    if (step.login.throttled()) record.outcome = policy::Outcome::AuthThrottled;
    co_await answer(step.login.throttled() ? 429 : 407, true, record);
    co_return false;
  }
  user_ = step.user;
  userAuth_ = "kerberos";
  record.user = step.user;
  credentials_ = std::move(credentials);
  co_return true;
}

asio::awaitable<std::optional<Allowed>> WebProxySession::admit(const http::RequestHead& head,
                                                               policy::Command command,
                                                               SessionRecord& record) {
  const auto& config = *snapshot_->config;
  std::vector<asio::ip::address> candidates;
  std::string name;
  std::error_code ec;
  const auto literal = asio::ip::make_address(head.host, ec);
  if (!ec) {
    candidates.push_back(unmapped(literal));
  } else if (!protocol::isValidHostName(head.host)) {
    record.error = fmt::format("{} is not a host name", head.host);
    co_await answer(400, true, record);
    co_return std::nullopt;
  } else {
    name = head.host;
    std::string host = head.host;
    ec = {};
    candidates =
        co_await resolveHost(runtime_, std::move(host), 0, config.limits.connectTimeout, ec);
    if (ec) {
      record.error =
          ec == asio::error::timed_out
              ? fmt::format("the name {} did not resolve within {} ms", head.host,
                            config.limits.connectTimeout.count())
              : fmt::format("the name {} does not resolve: {}", head.host, errorText(ec));
      co_await answer(ec == asio::error::timed_out ? 504 : 502, true, record);
      co_return std::nullopt;
    }
  }
  const Requester requester{unmapped(clientEndpoint_.address()), user_, true};
  Allowed allowed =
      allowedAddresses(runtime_, *snapshot_, requester, candidates, head.port, name, command);
  record.rule = allowed.rule;
  record.definition = allowed.protocol;
  if (!allowed.addresses.empty()) co_return allowed;
  const std::string what = requestText(head);
  record.outcome = policy::Outcome::Denied;
  record.deny({allowed.reason, policy::Transport::Tcp, policy::Direction::Outbound, head.port,
               allowed.protocol, allowed.rule});
  if (allowed.needsUser) {
    record.error = fmt::format(
        "{}: rule \"{}\" allows it for signed-in users only; sign in to "
        "the proxy (realm \"{}\")",
        what, allowed.rule, config.webProxy.realm);
    co_await answer(407, true, record);
  } else {
    const std::string who = user_ ? fmt::format("{} ({})", *user_, requester.client.to_string())
                                  : requester.client.to_string();
    if (allowed.rule == "default-deny") {
      record.error = fmt::format("{} for {}: no rule allows it (default-deny)", what, who);
    } else if (allowed.rule == "protected-destination") {
      record.error = fmt::format(
          "{} for {}: the destination is the gateway itself or loopback, "
          "which no rule opens to this client (protected-destination)",
          what, who);
    } else {
      record.error = fmt::format("{} for {}: denied by rule \"{}\"", what, who, allowed.rule);
    }
    co_await answer(403, true, record);
  }
  co_return std::nullopt;
}

asio::awaitable<tcp::socket> WebProxySession::connectOrigin(const Allowed& allowed,
                                                            std::uint16_t port,
                                                            SessionRecord& record) {
  const auto& limits = snapshot_->config->limits;
  tcp::socket origin(client_.get_executor());
  asio::ip::address connected;
  const auto ec =
      co_await connectAny(origin, allowed.addresses, port, limits.connectTimeout, connected);
  if (ec) {
    record.error = ec == asio::error::timed_out
                       ? fmt::format("connect to {}: no answer within {} ms", record.requested,
                                     limits.connectTimeout.count())
                       : fmt::format("connect to {}: {}", record.requested, ec.message());
    co_await answer(ec == asio::error::timed_out ? 504 : 502, true, record);
  } else {
    record.resolved = endpointString(connected, port);
    connected_ = connected;
    std::error_code ignored;
    origin.set_option(tcp::no_delay(true), ignored);
  }
  co_return std::move(origin);
}

asio::awaitable<bool> WebProxySession::sendBody(const http::RequestHead& head, tcp::socket& origin,
                                                SessionRecord& record) {
  const auto idle = snapshot_->config->limits.idleTimeout;
  http::BodyScanner scanner(head.body, head.contentLength);
  for (;;) {
    const auto piece = pending();
    if (!piece.empty() || scanner.done()) {
      std::size_t used = 0;
      const auto status = scanner.feed(piece, used);
      if (status == protocol::ParseStatus::Invalid) {
        record.error = fmt::format("request body: {}", http::describe(scanner.error()));
        co_await answer(400, false, record);
        co_return false;
      }
      if (used > 0) {
        auto [ec, n] =
            co_await asio::async_write(origin, asio::buffer(piece.data(), used), kNoThrow);
        if (ec) {
          record.error = "write to origin: " + ec.message();
          co_await answer(502, false, record);
          co_return false;
        }
        record.bytesUp += used;
        consume(used);
      }
      if (status == protocol::ParseStatus::Complete) {
        requestBodyLeft_ = false;
        co_return true;
      }
    }
    const Read r = co_await readClient(Clock::now() + idle);
    if (r != Read::Ok) {
      record.error = "the client closed the connection in the middle of the request body";
      co_return false;
    }
  }
}

asio::awaitable<bool> WebProxySession::forward(http::RequestHead& head, SessionRecord& record) {
  const auto& w = snapshot_->config->webProxy;
  const auto idle = snapshot_->config->limits.idleTimeout;
  record.command = "http";
  const auto allowed = co_await admit(head, policy::Command::Http, record);
  if (!allowed) co_return lastAnswerKeeps_;

  // The connection this client's last request used, if it went to the same origin for the same
  // identity; else a pooled one; else a new one. Always to an address the policy allows now.
  std::string key = record.requested;
  key += '\n';
  if (user_) key += *user_;
  std::optional<OriginPool::Connection> pooled;
  if (kept_ && keptKey_ == key &&
      std::find(allowed->addresses.begin(), allowed->addresses.end(), kept_->peer) !=
          allowed->addresses.end() &&
      OriginPool::usable(kept_->socket)) {
    pooled = std::move(kept_);
    kept_.reset();
  } else {
    releaseKept();
    pooled = runtime_.origins().take(key, allowed->addresses);
  }
  bool reused = pooled.has_value();
  tcp::socket origin(client_.get_executor());
  asio::ip::address peer;
  if (reused) {
    origin = std::move(pooled->socket);
    peer = pooled->peer;
    record.resolved = endpointString(peer, head.port);
  } else {
    origin = co_await connectOrigin(*allowed, head.port, record);
    if (!origin.is_open()) co_return lastAnswerKeeps_;
    peer = connected_;
  }

  http::ForwardOptions options;
  if (w.via) options.via = w.viaName;
  if (w.xForwardedFor) options.forwardedFor = unmapped(clientEndpoint_.address()).to_string();
  options.keepAlive = true;
  const std::string requestHead = http::originRequest(head, options);

  bool bodySent = head.body == http::BodyKind::None;
  Buffer& ob = out_;  // origin bytes not yet sent on
  ob.clear();
  std::size_t obStart = 0;
  http::ResponseHead response;
  const auto responseLimits = limits();
  bool retried = false;
  bool headSent = false;
  for (;;) {
    if (!headSent) {
      auto [ec, n] = co_await asio::async_write(origin, asio::buffer(requestHead), kNoThrow);
      if (ec && reused && !retried && head.body == http::BodyKind::None) {
        // The origin closed the idle connection meanwhile: once more on a new one.
        retried = true;
        origin = co_await connectOrigin(*allowed, head.port, record);
        if (!origin.is_open()) co_return lastAnswerKeeps_;
        continue;
      }
      if (ec) {
        record.error = fmt::format("write to {}: {}", record.requested, ec.message());
        co_await answer(502, false, record);
        co_return false;
      }
      headSent = true;
      if (!bodySent && !head.expectContinue) {
        if (!co_await sendBody(head, origin, record)) co_return false;
        bodySent = true;
      }
    }
    const auto parsed = http::parseResponse({ob.data() + obStart, ob.size() - obStart},
                                            responseLimits, head.method);
    if (parsed.complete()) {
      obStart += parsed.consumed;
      if (!parsed.value.interim()) {
        response = std::move(parsed.value);
        break;
      }
      // 1xx: on to an HTTP/1.1 client (an HTTP/1.0 one must not see them), then the final one.
      if (head.versionMinor >= 1) {
        const std::string interim = http::clientResponse(parsed.value, options, false);
        if (!co_await writeClient(interim.data(), interim.size(), record)) co_return false;
      }
      if (parsed.value.status == 100 && !bodySent) {
        if (!co_await sendBody(head, origin, record)) co_return false;
        bodySent = true;
      }
      continue;
    }
    if (parsed.invalid()) {
      record.error = fmt::format("the response of {} is not valid HTTP: {}", record.requested,
                                 http::describe(parsed.error));
      co_await answer(502, false, record);
      co_return false;
    }
    if (!bodySent && ob.size() == obStart) {
      // Expect: 100-continue. The body goes when the origin says 100 or when the client sends it
      // anyway (as curl does after a second): whichever comes first.
      if (pending().empty()) {
        asio::steady_timer wait(client_.get_executor(), idle);
        auto outcome = co_await (
            origin.async_wait(tcp::socket::wait_read, kNoThrow) ||
            (client_.async_wait(tcp::socket::wait_read, kNoThrow) || wait.async_wait(kNoThrow)));
        if (outcome.index() == 1) {
          if (std::get<1>(outcome).index() == 1) {
            record.error = "no answer from the origin and no request body from the client";
            co_await answer(504, false, record);
            co_return false;
          }
          if (!co_await sendBody(head, origin, record)) co_return false;
          bodySent = true;
        }
      } else {
        if (!co_await sendBody(head, origin, record)) co_return false;
        bodySent = true;
      }
      if (bodySent) continue;
    }
    if (obStart > 0) {
      ob.erase(ob.begin(), ob.begin() + static_cast<std::ptrdiff_t>(obStart));
      obStart = 0;
    }
    const Read r = co_await readInto(origin, ob, kClientChunk, Clock::now() + idle);
    if (r == Read::Ok) continue;
    if (r == Read::Eof && ob.empty() && reused && !retried && head.body == http::BodyKind::None) {
      retried = true;
      origin = co_await connectOrigin(*allowed, head.port, record);
      if (!origin.is_open()) co_return lastAnswerKeeps_;
      peer = connected_;
      headSent = false;
      continue;
    }
    record.error =
        r == Read::Timeout
            ? fmt::format("{} did not answer within {} ms (limits.idle_timeout)", record.requested,
                          idle.count())
            : fmt::format("{} closed the connection without a complete answer", record.requested);
    co_await answer(r == Read::Timeout ? 504 : 502, false, record);
    co_return false;
  }

  // The final response: head, then its body as it comes (de-chunked for an HTTP/1.0 client).
  const bool dechunk = head.versionMinor == 0 && response.body == http::BodyKind::Chunked;
  const bool tunnelled = response.body == http::BodyKind::Tunnel;
  const bool clientKeep = head.keepAlive && bodySent && !dechunk && !tunnelled &&
                          response.body != http::BodyKind::UntilClose;
  options.keepAlive = clientKeep;
  std::string out = http::clientResponse(response, options, dechunk);
  record.http->status = response.status;
  record.reply = response.status;
  record.result = resultOf(response.status);
  record.outcome = policy::Outcome::Succeeded;  // the origin's answer, whatever its status

  if (tunnelled) {  // 101 Switching Protocols: the connection is the application's now
    out.append(reinterpret_cast<const char*>(ob.data()) + obStart, ob.size() - obStart);
    if (!co_await writeClient(out.data(), out.size(), record)) co_return false;
    co_await relayWith(origin, record);
    co_return false;
  }

  http::BodyScanner scanner(response.body, response.contentLength);
  std::string decoded;
  bool complete = scanner.done();
  for (;;) {
    std::size_t used = 0;
    const protocol::Bytes piece{ob.data() + obStart, ob.size() - obStart};
    const auto status = scanner.feed(piece, used, dechunk ? &decoded : nullptr);
    if (status == protocol::ParseStatus::Invalid) {
      record.error = fmt::format("the response body of {}: {}", record.requested,
                                 http::describe(scanner.error()));
      if (!out.empty()) co_await answer(502, false, record);
      co_return false;
    }
    const std::uint8_t* data =
        dechunk ? reinterpret_cast<const std::uint8_t*>(decoded.data()) : piece.data();
    const std::size_t size = dechunk ? decoded.size() : used;
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(out), asio::buffer(data, size)};
    auto [ec, n] = co_await asio::async_write(client_, buffers, kNoThrow);
    record.bytesDown += n;
    if (ec) {
      record.error = "write to client: " + ec.message();
      co_return false;
    }
    out.clear();
    decoded.clear();
    obStart += used;
    if (status == protocol::ParseStatus::Complete) {
      complete = true;
      break;
    }
    ob.clear();
    obStart = 0;
    const Read r = co_await readInto(origin, ob, kOriginChunk, Clock::now() + idle);
    if (r == Read::Ok) continue;
    if (r == Read::Eof && response.body == http::BodyKind::UntilClose) break;
    record.error = r == Read::Timeout
                       ? fmt::format("{} stopped sending the response body for {} ms",
                                     record.requested, idle.count())
                       : fmt::format("{} closed the connection in the middle of the response body",
                                     record.requested);
    co_return false;
  }
  if (complete && response.keepAlive && bodySent && obStart == ob.size()) {
    // Kept for this client's next request; the pool gets it when the client goes elsewhere,
    // idles or leaves.
    kept_.emplace(OriginPool::Connection{std::move(origin), peer});
    keptKey_ = std::move(key);
  }
  co_return clientKeep&& complete;
}

asio::awaitable<bool> WebProxySession::tunnel(const http::RequestHead& head,
                                              SessionRecord& record) {
  const auto& w = snapshot_->config->webProxy;
  record.command = "connect";
  if (std::none_of(w.tunnelPorts.begin(), w.tunnelPorts.end(),
                   [&](const policy::PortRange& r) { return r.contains(head.port); })) {
    std::string ports;
    for (const auto& r : w.tunnelPorts) {
      if (!ports.empty()) ports += ", ";
      ports += r.toString();
    }
    record.rule = "tunnel-ports";
    record.error = fmt::format(
        "CONNECT {}: port {} is not a tunnel port (web_proxy.tunnel_ports: "
        "{})",
        head.target, head.port, ports.empty() ? "none" : ports);
    const bool keep = co_await answer(403, true, record);
    co_return keep;
  }
  const auto allowed = co_await admit(head, policy::Command::Connect, record);
  if (!allowed) co_return lastAnswerKeeps_;
  tcp::socket origin = co_await connectOrigin(*allowed, head.port, record);
  if (!origin.is_open()) co_return lastAnswerKeeps_;
  std::string ok = "HTTP/1.1 200 Connection established\r\n";
  if (w.via) {
    ok += "Via: 1.1 ";
    ok += w.viaName;
    ok += "\r\n";
  }
  ok += "\r\n";
  record.http->status = 200;
  record.reply = 200;
  record.result = "ok";
  record.outcome = policy::Outcome::Succeeded;
  if (!co_await writeClient(ok.data(), ok.size(), record)) co_return false;
  co_await relayWith(origin, record);
  co_return false;
}

asio::awaitable<void> WebProxySession::relayWith(tcp::socket& server, SessionRecord& record) {
  // Bytes the client sent behind the request (a TLS hello) go first, in order: the relay sends
  // them before it reads, and they stay in the buffer until it is over.
  const auto piece = pending();
  setDeadline(Clock::time_point::max(), nullptr);  // relay() keeps its own idle timer
  const auto result = co_await relay(client_, server, runtime_.relayPaths(),
                                     snapshot_->config->limits.idleTimeout, piece);
  consume(piece.size());
  record.addRelay(result.bytesUp, result.bytesDown, result.idleTimeout, result.error);
}

}  // namespace fwgate::gateway
