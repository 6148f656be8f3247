/* Internet checksum (RFC 1071), computed in one pass over each buffer. */
#ifndef USTCP_CSUM_H
#define USTCP_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* Add the 16-bit big-endian words of buf to a running 32-bit sum. Several
 * calls may be chained (pseudo-header, header, payload); only the last buffer
 * may have an odd length. The running sum is defined up to one's-complement
 * folding: compare sums only through ust_csum_fold. */
uint32_t ust_csum_add(uint32_t sum, const void *buf, size_t len);

/* Fold a running sum to 16 bits and complement it: the value to store in a
 * checksum field (host order). A buffer whose stored checksum is right folds
 * to 0. */
uint16_t ust_csum_fold(uint32_t sum);

/* Sum of the IPv4 pseudo-header for a transport checksum. Addresses in host
 * order. */
uint32_t ust_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);

#endif
