// fwgate-socks-login-bench: what a SOCKS 5 login costs, per method (bench/auth-methods.sh).
// COUNT sessions one after the other, after WARMUP untimed ones: connect to the proxy, greet
// with one method, authenticate, CONNECT to a sink (IPv4), read the reply, close. Methods:
//   none      method 0x00
//   password  RFC 1929 with USER and PASSWORD from the environment (BENCH_USER, BENCH_PASSWORD)
//   kerberos  RFC 1961: a Kerberos context with rcmd@PROXY (MIT GSS-API, the default credential
//             cache: kinit first), mutual authentication, the protection level (none) wrapped
// Prints one JSON line: median and 90th percentile of a session in µs, sessions per second.
// It speaks SOCKS itself and links only MIT's GSS-API: nothing of fwgate.
#include <arpa/inet.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

bool sendAll(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool readAll(int fd, void* data, std::size_t n) {
  auto* p = static_cast<unsigned char*>(data);
  while (n > 0) {
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool sendGss(int fd, unsigned char type, const gss_buffer_desc& token) {
  const unsigned char head[4] = {1, type, static_cast<unsigned char>(token.length >> 8),
                                 static_cast<unsigned char>(token.length & 0xFF)};
  return sendAll(fd, head, 4) && sendAll(fd, token.value, token.length);
}

bool readGss(int fd, unsigned char type, std::vector<unsigned char>& out) {
  unsigned char head[4];
  if (!readAll(fd, head, 2) || head[0] != 1 || head[1] != type) return false;
  if (!readAll(fd, head + 2, 2)) return false;
  out.resize((std::size_t{head[2]} << 8) | head[3]);
  return readAll(fd, out.data(), out.size());
}

bool kerberos(int fd, gss_name_t target) {
  gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
  OM_uint32 minor = 0;
  std::vector<unsigned char> reply;
  gss_buffer_desc input{0, nullptr};
  bool ok = false;
  for (int round = 0; round < 4; ++round) {
    gss_buffer_desc output{0, nullptr};
    const OM_uint32 major = gss_init_sec_context(
        &minor, GSS_C_NO_CREDENTIAL, &ctx, target, const_cast<gss_OID>(gss_mech_krb5),
        GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG, 0, GSS_C_NO_CHANNEL_BINDINGS,
        round == 0 ? GSS_C_NO_BUFFER : &input, nullptr, &output, nullptr, nullptr);
    if (GSS_ERROR(major)) break;
    const bool sent = output.length == 0 || sendGss(fd, 1, output);
    gss_release_buffer(&minor, &output);
    if (!sent) break;
    if (!(major & GSS_S_CONTINUE_NEEDED)) {
      ok = true;
      break;
    }
    if (!readGss(fd, 1, reply)) break;
    input = gss_buffer_desc{reply.size(), reply.data()};
  }
  if (ok) {
    unsigned char level = 0;
    gss_buffer_desc plain{1, &level};
    gss_buffer_desc wrapped{0, nullptr};
    ok = !GSS_ERROR(gss_wrap(&minor, ctx, 0, GSS_C_QOP_DEFAULT, &plain, nullptr, &wrapped)) &&
         sendGss(fd, 2, wrapped);
    gss_release_buffer(&minor, &wrapped);
    if (ok) {
      ok = readGss(fd, 2, reply);
      gss_buffer_desc in{reply.size(), reply.data()};
      gss_buffer_desc out{0, nullptr};
      ok =
          ok && !GSS_ERROR(gss_unwrap(&minor, ctx, &in, &out, nullptr, nullptr)) && out.length == 1;
      gss_release_buffer(&minor, &out);
    }
  }
  if (ctx != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr,
                 "usage: %s none|password|kerberos PROXY-IPV4 PORT SINK-IPV4 SINK-PORT [COUNT] "
                 "[WARMUP]\n",
                 argv[0]);
    return 2;
  }
  const std::string method = argv[1];
  sockaddr_in proxy{};
  proxy.sin_family = AF_INET;
  proxy.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[3])));
  in_addr sink{};
  if (inet_pton(AF_INET, argv[2], &proxy.sin_addr) != 1 ||
      inet_pton(AF_INET, argv[4], &sink) != 1) {
    std::fprintf(stderr, "not IPv4 addresses: %s %s\n", argv[2], argv[4]);
    return 2;
  }
  const auto sinkPort = static_cast<std::uint16_t>(std::atoi(argv[5]));
  const int count = argc > 6 ? std::atoi(argv[6]) : 500;
  const int warmup = argc > 7 ? std::atoi(argv[7]) : 20;
  const char* user = std::getenv("BENCH_USER");
  const char* password = std::getenv("BENCH_PASSWORD");
  unsigned char code = 0;
  if (method == "password") {
    code = 2;
    if (user == nullptr || password == nullptr) {
      std::fprintf(stderr, "password: set BENCH_USER and BENCH_PASSWORD\n");
      return 2;
    }
  } else if (method == "kerberos") {
    code = 1;
  } else if (method != "none") {
    std::fprintf(stderr, "unknown method %s\n", method.c_str());
    return 2;
  }
  gss_name_t target = GSS_C_NO_NAME;
  if (code == 1) {
    std::string service = std::string("rcmd@") + argv[2];
    gss_buffer_desc name{service.size(), service.data()};
    OM_uint32 minor = 0;
    if (GSS_ERROR(gss_import_name(&minor, &name, GSS_C_NT_HOSTBASED_SERVICE, &target))) {
      std::fprintf(stderr, "cannot name %s\n", service.c_str());
      return 2;
    }
  }
  unsigned char request[10] = {5, 1, 0, 1};
  std::memcpy(request + 4, &sink, 4);
  request[8] = static_cast<unsigned char>(sinkPort >> 8);
  request[9] = static_cast<unsigned char>(sinkPort & 0xFF);
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(count));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < warmup + count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool ok =
        fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&proxy), sizeof proxy) == 0;
    const unsigned char greeting[3] = {5, 1, code};
    unsigned char selected[2];
    ok = ok && sendAll(fd, greeting, 3) && readAll(fd, selected, 2) && selected[1] == code;
    if (ok && code == 2) {
      std::vector<unsigned char> auth{1, static_cast<unsigned char>(std::strlen(user))};
      auth.insert(auth.end(), user, user + std::strlen(user));
      auth.push_back(static_cast<unsigned char>(std::strlen(password)));
      auth.insert(auth.end(), password, password + std::strlen(password));
      unsigned char status[2];
      ok = sendAll(fd, auth.data(), auth.size()) && readAll(fd, status, 2) && status[1] == 0;
    } else if (ok && code == 1) {
      ok = kerberos(fd, target);
    }
    unsigned char reply[10];
    ok = ok && sendAll(fd, request, sizeof request) && readAll(fd, reply, sizeof reply) &&
         reply[1] == 0;
    if (fd >= 0) ::close(fd);
    if (!ok) {
      std::fprintf(stderr, "session %d (%s) failed\n", i, method.c_str());
      return 1;
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(us.begin(), us.end());
  const auto at = [&](double q) { return us[static_cast<std::size_t>(q * (us.size() - 1))]; };
  std::printf(
      "{\"method\":\"%s\",\"count\":%d,\"p50_us\":%.1f,\"p90_us\":%.1f,\"per_second\":%.0f}\n",
      method.c_str(), count, at(0.5), at(0.9), (warmup + count) / seconds);
  return 0;
}
