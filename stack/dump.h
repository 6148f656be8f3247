/* A stack's dump, as its control socket answers it (dump() in
 * stackthread/control.c) and as ustcp-stat(1) reads it:
 *
 *   ustcp 1
 *   process PID COMM IFACE ADDR/PREFIX KIND
 *   tcp STATE RECV-Q SEND-Q LOCAL PEER TIMER MS     (STATE and TIMER as ss)
 *   counter NAME VALUE
 *   end
 *
 * Root's ustcp-stat reads every user's run directory, so a dump is another
 * user's text: the parser trusts nothing in it, bounds every field, and
 * keeps only printable ASCII (a program names itself, COMM, and could
 * otherwise send escape sequences to root's terminal).
 * tests/fuzz/fuzz_dump.c feeds it every byte string. */
#ifndef USTCP_DUMP_H
#define USTCP_DUMP_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

struct ust_dump_conn {
	char state[16];
	unsigned long long rq, sq;
	char laddr[48], lport[8], raddr[48], rport[8]; /* port "*" for 0, as ss; IPv6 in brackets */
	char timer[16];
	long long ms;
};

struct ust_dump_counter {
	char name[64];
	unsigned long long value;
};

struct ust_dump {
	int pid;
	char comm[32], iface[IFNAMSIZ + 1], addr[24], kind[16];
	char addr6[48]; /* "ADDR6/PREFIX6", empty if the stack has no IPv6 address */
	struct ust_dump_conn *conns; /* malloc'd: ust_dump_free */
	size_t nconns;
	struct ust_dump_counter *ctrs;
	size_t nctrs;
};

/* Parses buf (NUL-terminated; cut into lines in place) into d, which the
 * caller has set to its defaults (pid from the socket's name, kind
 * "program"). Lines it does not know, or cannot read, are skipped: a newer
 * stack's. False if buf is not a dump or is cut short (no "end"); d must
 * be freed either way. */
bool ust_dump_parse(char *buf, struct ust_dump *d);

void ust_dump_free(struct ust_dump *d);

#endif
