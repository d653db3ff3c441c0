// The Web Proxy the control channel offers a firewall client: the configured one, else the web
// listener on the address the client reached, with its /wpad.dat.
#include "config/web_proxy_offer.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace fwgate::config {
namespace {

policy::IpAddress ip(std::string_view text) {
  const auto a = policy::IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(policy::IpAddress{});
}

Listener at(std::string address, std::uint16_t port) {
  Listener l;
  l.address = std::move(address);
  l.port = port;
  return l;
}

TEST(WebProxyOfferTest, TheConfiguredWebProxyWinsAndHasNoPacUrl) {
  Config config;
  config.firewallClient.webProxy = "proxy.corp.example:3128";
  const std::vector<Listener> web{at("10.0.0.1", 8080)};
  const WebProxyOffer offer = webProxyOffer(config, web, ip("10.0.0.1"));
  EXPECT_EQ(offer.proxy, "proxy.corp.example:3128");
  EXPECT_EQ(offer.pacUrl, "");
}

TEST(WebProxyOfferTest, TheListenerOnTheAddressReached) {
  const Config config;
  const std::vector<Listener> web{at("10.0.0.1", 8080), at("10.0.1.1", 8081)};
  const WebProxyOffer offer = webProxyOffer(config, web, ip("10.0.1.1"));
  EXPECT_EQ(offer.proxy, "10.0.1.1:8081");
  EXPECT_EQ(offer.pacUrl, "http://10.0.1.1:8081/wpad.dat");
}

TEST(WebProxyOfferTest, AnUnspecifiedListenerIsNamedByTheAddressReached) {
  const Config config;
  const std::vector<Listener> v4any{at("0.0.0.0", 8080)};
  EXPECT_EQ(webProxyOffer(config, v4any, ip("192.0.2.1")).proxy, "192.0.2.1:8080");
  EXPECT_EQ(webProxyOffer(config, v4any, ip("fd00::1")).proxy, "");  // 0.0.0.0 is IPv4 only
  const std::vector<Listener> dual{at("::", 3128)};
  EXPECT_EQ(webProxyOffer(config, dual, ip("192.0.2.1")).proxy, "192.0.2.1:3128");
  const WebProxyOffer v6 = webProxyOffer(config, dual, ip("fd00::1"));
  EXPECT_EQ(v6.proxy, "[fd00::1]:3128");
  EXPECT_EQ(v6.pacUrl, "http://[fd00::1]:3128/wpad.dat");
}

TEST(WebProxyOfferTest, TheFirstThatFits) {
  const Config config;
  const std::vector<Listener> web{at("10.0.0.9", 1), at("0.0.0.0", 8080), at("10.0.0.1", 8081)};
  EXPECT_EQ(webProxyOffer(config, web, ip("10.0.0.1")).proxy, "10.0.0.1:8080");
}

TEST(WebProxyOfferTest, AMappedAddressIsItsIpv4Address) {
  const Config config;
  policy::IpAddress mapped;
  mapped.v6 = true;
  mapped.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  const std::vector<Listener> web{at("127.0.0.1", 8080)};
  EXPECT_EQ(webProxyOffer(config, web, mapped).proxy, "127.0.0.1:8080");
}

TEST(WebProxyOfferTest, NoneWithoutAFittingBoundListener) {
  const Config config;
  EXPECT_EQ(webProxyOffer(config, {}, ip("10.0.0.1")).proxy, "");
  const std::vector<Listener> other{at("10.0.0.2", 8080)};
  EXPECT_EQ(webProxyOffer(config, other, ip("10.0.0.1")).pacUrl, "");
  // Port 0 is what the configuration asked for, not a port anybody can reach.
  const std::vector<Listener> unbound{at("10.0.0.1", 0)};
  EXPECT_EQ(webProxyOffer(config, unbound, ip("10.0.0.1")).proxy, "");
}

}  // namespace
}  // namespace fwgate::config
