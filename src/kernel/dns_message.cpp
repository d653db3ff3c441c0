#include "kernel/dns_message.hpp"

#include <ldns/ldns.h>

#include <cstdlib>
#include <memory>

namespace fwgate::kernel {

namespace {

struct PacketFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Packet = std::unique_ptr<ldns_pkt, PacketFree>;

Packet parse(std::span<const std::uint8_t> bytes) {
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, bytes.data(), bytes.size()) != LDNS_STATUS_OK) return nullptr;
  return Packet(p);
}

// The one question of a standard query, or null.
const ldns_rr* questionOf(const ldns_pkt* p) {
  if (ldns_pkt_qr(p) || ldns_pkt_get_opcode(p) != LDNS_PACKET_QUERY || ldns_pkt_qdcount(p) != 1) {
    return nullptr;
  }
  const ldns_rr_list* questions = ldns_pkt_question(p);
  if (questions == nullptr || ldns_rr_list_rr_count(questions) != 1) return nullptr;
  const ldns_rr* q = ldns_rr_list_rr(questions, 0);
  return ldns_rr_get_class(q) == LDNS_RR_CLASS_IN ? q : nullptr;
}

}  // namespace

bool parseDnsQuery(std::span<const std::uint8_t> packet, DnsQuestion& out) {
  const Packet p = parse(packet);
  if (!p) return false;
  const ldns_rr* q = questionOf(p.get());
  if (q == nullptr || ldns_rr_owner(q) == nullptr) return false;
  char* text = ldns_rdf2str(ldns_rr_owner(q));
  if (text == nullptr) return false;
  out.name = text;
  std::free(text);
  while (!out.name.empty() && out.name.back() == '.') out.name.pop_back();
  out.type = static_cast<std::uint16_t>(ldns_rr_get_type(q));
  out.recursionDesired = ldns_pkt_rd(p.get());
  return true;
}

std::vector<std::uint8_t> dnsAnswer(std::span<const std::uint8_t> query, std::uint8_t rcode,
                                    std::span<const protocol::control::IpAddress> addresses,
                                    std::uint32_t ttl) {
  const Packet q = parse(query);
  if (!q) return {};
  const ldns_rr* question = questionOf(q.get());
  if (question == nullptr) return {};
  const Packet a(ldns_pkt_new());
  if (!a) return {};
  ldns_pkt_set_id(a.get(), ldns_pkt_id(q.get()));
  ldns_pkt_set_qr(a.get(), true);
  ldns_pkt_set_opcode(a.get(), LDNS_PACKET_QUERY);
  ldns_pkt_set_rd(a.get(), ldns_pkt_rd(q.get()));
  ldns_pkt_set_ra(a.get(), true);
  ldns_pkt_set_rcode(a.get(), rcode);
  ldns_pkt_push_rr(a.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(question));
  const ldns_rr_type type = ldns_rr_get_type(question);
  if (rcode == kDnsNoError) {
    for (const auto& address : addresses) {
      const bool v4 = address.family == 4;
      if ((v4 && type != LDNS_RR_TYPE_A) || (!v4 && type != LDNS_RR_TYPE_AAAA)) continue;
      ldns_rr* rr = ldns_rr_new();
      ldns_rr_set_owner(rr, ldns_rdf_clone(ldns_rr_owner(question)));
      ldns_rr_set_type(rr, type);
      ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
      ldns_rr_set_ttl(rr, ttl);
      ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                                 address.size(), address.bytes.data()));
      ldns_pkt_push_rr(a.get(), LDNS_SECTION_ANSWER, rr);
    }
  }
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&wire, a.get(), &size) != LDNS_STATUS_OK || wire == nullptr) return {};
  std::vector<std::uint8_t> out(wire, wire + size);
  std::free(wire);
  return out;
}

}  // namespace fwgate::kernel
