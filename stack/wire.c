#include <stdio.h>
#include <string.h>

#include "csum.h"
#include "wire.h"

const uint8_t ust_eth_broadcast[UST_ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

enum ust_drop ust_eth_parse(const uint8_t *buf, size_t len, struct ust_eth *eth)
{
	if (len < UST_ETH_HLEN)
		return UST_DROP_ETH_SHORT;
	memcpy(eth->dst, buf, UST_ETH_ALEN);
	memcpy(eth->src, buf + 6, UST_ETH_ALEN);
	eth->type = ust_get16(buf + 12);
	return UST_OK;
}

void ust_eth_build(uint8_t *buf, const uint8_t dst[UST_ETH_ALEN],
		   const uint8_t src[UST_ETH_ALEN], uint16_t type)
{
	memcpy(buf, dst, UST_ETH_ALEN);
	memcpy(buf + 6, src, UST_ETH_ALEN);
	ust_put16(buf + 12, type);
}

enum ust_drop ust_arp_parse(const uint8_t *buf, size_t len, struct ust_arp *arp)
{
	if (len < UST_ARP_LEN)
		return UST_DROP_ARP_SHORT;
	/* Ethernet hardware (1), IPv4 protocol, 6- and 4-byte addresses. */
	if (ust_get16(buf) != 1 || ust_get16(buf + 2) != UST_ETHERTYPE_IPV4 ||
	    buf[4] != UST_ETH_ALEN || buf[5] != 4)
		return UST_DROP_ARP_FORMAT;
	arp->op = ust_get16(buf + 6);
	if (arp->op != UST_ARP_REQUEST && arp->op != UST_ARP_REPLY)
		return UST_DROP_ARP_FORMAT;
	memcpy(arp->sha, buf + 8, UST_ETH_ALEN);
	arp->spa = ust_get32(buf + 14);
	memcpy(arp->tha, buf + 18, UST_ETH_ALEN);
	arp->tpa = ust_get32(buf + 24);
	return UST_OK;
}

void ust_arp_build(uint8_t *buf, const struct ust_arp *arp)
{
	ust_put16(buf, 1);
	ust_put16(buf + 2, UST_ETHERTYPE_IPV4);
	buf[4] = UST_ETH_ALEN;
	buf[5] = 4;
	ust_put16(buf + 6, arp->op);
	memcpy(buf + 8, arp->sha, UST_ETH_ALEN);
	ust_put32(buf + 14, arp->spa);
	memcpy(buf + 18, arp->tha, UST_ETH_ALEN);
	ust_put32(buf + 24, arp->tpa);
}

/* RFC 791 options: EOL (0) ends the list, NOP (1) is one byte, every other
 * option is type, length (>= 2, within the header), value. */
static bool ipv4_options_valid(const uint8_t *opt, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (opt[i] == 0)
			return true;
		if (opt[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len || opt[i + 1] < 2 || opt[i + 1] > len - i)
			return false;
		i += opt[i + 1];
	}
	return true;
}

enum ust_drop ust_ipv4_parse(const uint8_t *buf, size_t len, struct ust_ipv4 *ip)
{
	if (len < UST_IPV4_HLEN)
		return UST_DROP_IP_SHORT;
	if (buf[0] >> 4 != 4)
		return UST_DROP_IP_VERSION;
	ip->hlen = (uint8_t)((buf[0] & 0x0f) * 4);
	if (ip->hlen < UST_IPV4_HLEN || ip->hlen > len)
		return UST_DROP_IP_HDR_LEN;
	ip->total_len = ust_get16(buf + 2);
	/* The frame may be longer (Ethernet pads to 60 bytes), never shorter. */
	if (ip->total_len < ip->hlen || ip->total_len > len)
		return UST_DROP_IP_TOTAL_LEN;
	if (ust_csum_fold(ust_csum_add(0, buf, ip->hlen)) != 0)
		return UST_DROP_IP_CSUM;
	if (ip->hlen > UST_IPV4_HLEN && !ipv4_options_valid(buf + UST_IPV4_HLEN, ip->hlen - UST_IPV4_HLEN))
		return UST_DROP_IP_OPTIONS;
	ip->tos = buf[1];
	ip->id = ust_get16(buf + 4);
	ip->frag = ust_get16(buf + 6);
	ip->ttl = buf[8];
	ip->proto = buf[9];
	ip->src = ust_get32(buf + 12);
	ip->dst = ust_get32(buf + 16);
	ip->payload = buf + ip->hlen;
	ip->payload_len = (uint16_t)(ip->total_len - ip->hlen);
	if (ip->frag & (UST_IP_MF | UST_IP_OFFMASK))
		return UST_DROP_IP_FRAGMENT;
	return UST_OK;
}

void ust_ipv4_build_tos(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t proto, uint8_t tos,
			uint16_t total_len, uint16_t id, uint8_t ttl, uint16_t frag)
{
	buf[0] = 0x45;
	buf[1] = tos;
	ust_put16(buf + 2, total_len);
	ust_put16(buf + 4, id);
	ust_put16(buf + 6, frag);
	buf[8] = ttl;
	buf[9] = proto;
	ust_put16(buf + 10, 0);
	ust_put32(buf + 12, src);
	ust_put32(buf + 16, dst);
	ust_put16(buf + 10, ust_csum_fold(ust_csum_add(0, buf, UST_IPV4_HLEN)));
}

enum ust_drop ust_icmp_parse(const uint8_t *buf, size_t len, struct ust_icmp *icmp)
{
	if (len < UST_ICMP_HLEN)
		return UST_DROP_ICMP_SHORT;
	if (ust_csum_fold(ust_csum_add(0, buf, len)) != 0)
		return UST_DROP_ICMP_CSUM;
	icmp->type = buf[0];
	icmp->code = buf[1];
	icmp->rest = ust_get32(buf + 4);
	icmp->data = buf + UST_ICMP_HLEN;
	icmp->data_len = (uint16_t)(len - UST_ICMP_HLEN);
	return UST_OK;
}

enum ust_drop ust_icmp_error_parse(const struct ust_icmp *icmp, struct ust_icmp_error *err)
{
	const uint8_t *q = icmp->data;
	size_t hlen;

	if (icmp->type != UST_ICMP_DEST_UNREACH && icmp->type != UST_ICMP_TIME_EXCEEDED &&
	    icmp->type != UST_ICMP_PARAM_PROBLEM)
		return UST_DROP_ICMP_TYPE;
	/* The quoted datagram: its IP header, then at least 8 bytes. Its
	 * checksum and total length describe the original and are not checked
	 * (routers may have altered or truncated it). */
	if (icmp->data_len < UST_IPV4_HLEN || q[0] >> 4 != 4)
		return UST_DROP_ICMP_SHORT;
	hlen = (size_t)(q[0] & 0x0f) * 4;
	if (hlen < UST_IPV4_HLEN || icmp->data_len < hlen + 8)
		return UST_DROP_ICMP_SHORT;
	err->type = icmp->type;
	err->code = icmp->code;
	err->proto = q[9];
	err->src = ust_get32(q + 12);
	err->dst = ust_get32(q + 16);
	memcpy(err->l4, q + hlen, 8);
	err->mtu = (uint16_t)(icmp->rest & 0xffff);
	return UST_OK;
}

void ust_icmp_build(uint8_t *buf, uint8_t type, uint8_t code, uint32_t rest, size_t data_len)
{
	buf[0] = type;
	buf[1] = code;
	ust_put16(buf + 2, 0);
	ust_put32(buf + 4, rest);
	ust_put16(buf + 2, ust_csum_fold(ust_csum_add(0, buf, UST_ICMP_HLEN + data_len)));
}

const char *ust_ip_str(uint32_t a, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
	return buf;
}
