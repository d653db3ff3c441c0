// fwgate proxy-env's text: the proxy URL, no_proxy from the LDT and the LAT, both formats.
#include "client/proxy_env.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace fwgate::client {
namespace {

AddressRange range(std::string_view first, std::string_view last) {
  AddressRange r;
  EXPECT_TRUE(parseAddress(first, r.first)) << first;
  EXPECT_TRUE(parseAddress(last, r.last)) << last;
  return r;
}

std::vector<std::string> entries(const AddressRange& r) {
  std::vector<std::string> out;
  appendNoProxyRange(r, out);
  return out;
}

using Strings = std::vector<std::string>;

TEST(NoProxyRangeTest, OneAddressOrTheFewestExactBlocks) {
  EXPECT_EQ(entries(range("10.0.0.5", "10.0.0.5")), Strings{"10.0.0.5"});
  EXPECT_EQ(entries(range("10.0.0.0", "10.255.255.255")), Strings{"10.0.0.0/8"});
  EXPECT_EQ(entries(range("10.0.0.1", "10.0.0.6")),
            (Strings{"10.0.0.1", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6"}));
  EXPECT_EQ(entries(range("192.168.1.10", "192.168.1.20")),
            (Strings{"192.168.1.10/31", "192.168.1.12/30", "192.168.1.16/30", "192.168.1.20"}));
  EXPECT_EQ(entries(range("0.0.0.0", "255.255.255.255")), Strings{"0.0.0.0/0"});
  EXPECT_EQ(entries(range("255.255.255.254", "255.255.255.255")), Strings{"255.255.255.254/31"});
  EXPECT_EQ(entries(range("fd00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            Strings{"fd00::/8"});
  EXPECT_EQ(entries(range("::1", "::1")), Strings{"::1"});
  EXPECT_EQ(entries(range("2001:db8::1", "2001:db8::3")),
            (Strings{"2001:db8::1", "2001:db8::2/127"}));
  EXPECT_EQ(entries(range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), Strings{"::/0"});
  // Mapped addresses are IPv4; a reversed or mixed range gives nothing.
  EXPECT_EQ(entries(range("::ffff:10.1.0.0", "::ffff:10.1.255.255")), Strings{"10.1.0.0/16"});
  EXPECT_TRUE(entries(range("10.0.0.9", "10.0.0.1")).empty());
  EXPECT_TRUE(entries(range("10.0.0.1", "::1")).empty());
}

TEST(NoProxyRangeTest, AnEntryIsAddedOnce) {
  Strings out{"10.0.0.0/8"};
  appendNoProxyRange(range("10.0.0.0", "10.255.255.255"), out);
  EXPECT_EQ(out, Strings{"10.0.0.0/8"});
}

std::unique_ptr<ClientConfig> configWith(std::string_view proxy) {
  auto c = std::make_unique<ClientConfig>();
  std::memcpy(c->webProxy.data(), proxy.data(), proxy.size());
  c->ldt.add("Corp.Example");
  c->ldt.add("lab.example");
  c->lat.add(range("10.0.0.0", "10.0.255.255"));
  c->lat.add(range("127.0.0.0", "127.255.255.255"));
  c->lat.add(range("fd00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  c->lat.add(range("10.0.0.0", "10.0.255.255"));  // a route that repeats the gateway's range
  return c;
}

TEST(ProxyEnvironmentTest, FromTheWebProxyTheLdtAndTheLat) {
  const auto c = configWith("10.0.0.1:8080");
  const ProxyEnvironment env = proxyEnvironment(*c);
  EXPECT_EQ(env.proxyUrl, "http://10.0.0.1:8080");
  EXPECT_EQ(env.noProxy,
            (Strings{"localhost", "127.0.0.1", "::1", "corp.example", ".corp.example",
                     "lab.example", ".lab.example", "10.0.0.0/16", "127.0.0.0/8", "fd00::/8"}));
  EXPECT_EQ(proxyEnvironment(*configWith("[fd00::1]:3128")).proxyUrl, "http://[fd00::1]:3128");
  EXPECT_EQ(proxyEnvironment(*configWith("http://gw:8080")).proxyUrl, "http://gw:8080");
  EXPECT_EQ(proxyEnvironment(*configWith("")).proxyUrl, "");
}

TEST(ProxyEnvironmentTest, ShellAndSystemdFormats) {
  ProxyEnvironment env;
  env.proxyUrl = "http://[::1]:8080";
  env.noProxy = {"localhost", "::1"};
  EXPECT_EQ(renderProxyEnvironment(env, EnvFormat::Shell),
            "export http_proxy='http://[::1]:8080'\n"
            "export https_proxy='http://[::1]:8080'\n"
            "export HTTP_PROXY='http://[::1]:8080'\n"
            "export HTTPS_PROXY='http://[::1]:8080'\n"
            "export no_proxy='localhost,::1'\n"
            "export NO_PROXY='localhost,::1'\n");
  EXPECT_EQ(renderProxyEnvironment(env, EnvFormat::Systemd),
            "http_proxy=http://[::1]:8080\n"
            "https_proxy=http://[::1]:8080\n"
            "HTTP_PROXY=http://[::1]:8080\n"
            "HTTPS_PROXY=http://[::1]:8080\n"
            "no_proxy=localhost,::1\n"
            "NO_PROXY=localhost,::1\n");
  env.proxyUrl = "http://it's:1";
  EXPECT_NE(renderProxyEnvironment(env, EnvFormat::Shell).find("'http://it'\\''s:1'"),
            std::string::npos);
}

}  // namespace
}  // namespace fwgate::client

namespace fwgate::client {
namespace {

namespace control = protocol::control;

TEST(GatewayConfigTest, TheWebProxyAndPacUrlAreKept) {
  std::vector<std::uint8_t> buffer(4096);
  control::FrameWriter w(buffer, control::MessageType::Config);
  w.u8(control::Tag::Status, 0)
      .text(control::Tag::WebProxy, "[fd00::1]:8080")
      .text(control::Tag::PacUrl, "http://[fd00::1]:8080/wpad.dat");
  const std::size_t n = w.finish();
  ASSERT_GT(n, 0u);
  auto c = std::make_unique<ClientConfig>();
  ASSERT_TRUE(
      applyGatewayConfig({buffer.data() + control::kHeaderSize, n - control::kHeaderSize}, *c));
  EXPECT_STREQ(c->webProxy.data(), "[fd00::1]:8080");
  EXPECT_STREQ(c->pacUrl.data(), "http://[fd00::1]:8080/wpad.dat");
}

TEST(GatewayConfigTest, ATooLongValueIsLeftOutNotCut) {
  std::vector<std::uint8_t> buffer(4096);
  control::FrameWriter w(buffer, control::MessageType::Config);
  const std::string url = "http://gw:8080/" + std::string(600, 'a');
  w.u8(control::Tag::Status, 0)
      .text(control::Tag::WebProxy, "gw:8080")
      .text(control::Tag::PacUrl, url);
  const std::size_t n = w.finish();
  ASSERT_GT(n, 0u);
  auto c = std::make_unique<ClientConfig>();
  ASSERT_TRUE(
      applyGatewayConfig({buffer.data() + control::kHeaderSize, n - control::kHeaderSize}, *c));
  EXPECT_STREQ(c->webProxy.data(), "gw:8080");
  EXPECT_STREQ(c->pacUrl.data(), "");
}

}  // namespace
}  // namespace fwgate::client
