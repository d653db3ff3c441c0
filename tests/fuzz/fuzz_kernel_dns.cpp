// The kernel client's name service reads whatever a program sends to its resolver: a query it
// accepts must get an answer that is a response to it (same id, QR set, one question).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kernel/dns_message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  fwgate::kernel::DnsQuestion question;
  if (!fwgate::kernel::parseDnsQuery(in, question)) return 0;
  fwgate::protocol::control::IpAddress addresses[2];
  addresses[0].family = 4;
  addresses[1].family = 6;
  for (const std::uint8_t rcode : {fwgate::kernel::kDnsNoError, fwgate::kernel::kDnsNxDomain}) {
    const auto answer = fwgate::kernel::dnsAnswer(in, rcode, addresses, 60);
    if (answer.size() < 12 || answer[0] != data[0] || answer[1] != data[1] ||
        (answer[2] & 0x80) == 0 || answer[4] != 0 || answer[5] != 1) {
      std::abort();
    }
    fwgate::kernel::DnsQuestion again;
    if (fwgate::kernel::parseDnsQuery(answer, again)) std::abort();  // a response, not a query
  }
  return 0;
}
