/* MD5 (RFC 1321), for TCP's MD5 signature option (RFC 2385) and nothing
 * else: MD5 is broken as a hash, and RFC 2385 is kept because routers
 * still speak it (BGP sessions). A digest is taken over several pieces in
 * turn (ust_md5_add), as a segment's signature covers a pseudo-header, the
 * TCP header, the data and the key. */
#ifndef USTCP_MD5_H
#define USTCP_MD5_H

#include <stddef.h>
#include <stdint.h>

#define UST_MD5_LEN 16

struct ust_md5 {
	uint32_t h[4];
	uint64_t len;      /* bytes added so far */
	uint8_t buf[64];   /* the block being filled: len % 64 bytes */
};

void ust_md5_init(struct ust_md5 *m);
void ust_md5_add(struct ust_md5 *m, const void *data, size_t len);
void ust_md5_end(struct ust_md5 *m, uint8_t digest[UST_MD5_LEN]);

#endif
