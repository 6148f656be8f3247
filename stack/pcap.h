/* USTCP_PCAP: every frame sent and received, in the classic pcap format that
 * tcpdump -r and wireshark read. */
#ifndef USTCP_PCAP_H
#define USTCP_PCAP_H

#include <stdio.h>

#include "base.h"

struct ust_pcap {
	FILE *f;
};

/* l3: the frames are bare IPv4 (LINKTYPE_RAW) rather than Ethernet. The file
 * is appended to when it already holds a pcap header (several processes of
 * one program may share it); otherwise it is created. Returns 0 or -errno. */
int ust_pcap_open(struct ust_pcap *pc, const char *path, bool l3);
/* The same on a file already open for appending (takes ownership of fd). */
int ust_pcap_adopt(struct ust_pcap *pc, int fd, bool l3);
void ust_pcap_write(struct ust_pcap *pc, const uint8_t *frame, size_t len);
/* Push buffered records to the file (after each batch). */
void ust_pcap_flush(struct ust_pcap *pc);
void ust_pcap_close(struct ust_pcap *pc);

#endif
