/* Reading a stack's dump (dump.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

/* What another user's text may put on root's terminal: printable ASCII.
 * Anything else becomes '?', as ps(1) shows an unprintable command name. */
static void printable(char *s)
{
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			*s = '?';
}

/* "a.b.c.d:port" or "[v6]:port" into its halves, as ss shows them ("*" for port 0);
 * neither half may be empty. */
static bool split_addr(const char *s, char *addr, size_t asize, char *port, size_t psize)
{
	const char *colon = strrchr(s, ':');

	if (!colon || colon == s || !colon[1] || (size_t)(colon - s) >= asize || strlen(colon + 1) >= psize)
		return false;
	memcpy(addr, s, (size_t)(colon - s));
	addr[colon - s] = 0;
	strcpy(port, strcmp(colon + 1, "0") == 0 ? "*" : colon + 1);
	return true;
}

static bool parse_tcp(const char *line, struct ust_dump_conn *c)
{
	char local[64], peer[64];

	if (sscanf(line, "tcp %15s %llu %llu %63s %63s %15s %lld", c->state, &c->rq, &c->sq, local, peer,
		   c->timer, &c->ms) != 7 ||
	    !split_addr(local, c->laddr, sizeof(c->laddr), c->lport, sizeof(c->lport)) ||
	    !split_addr(peer, c->raddr, sizeof(c->raddr), c->rport, sizeof(c->rport)))
		return false;
	printable(c->state);
	printable(c->timer);
	printable(c->laddr);
	printable(c->lport);
	printable(c->raddr);
	printable(c->rport);
	return true;
}

static bool parse_process(const char *line, struct ust_dump *d)
{
	/* Cleaned even when the line is refused: d never holds another's
	 * escape sequence, whatever its caller does with it. */
	int n = sscanf(line, "process %d %31s %16s %23s %15s %47s", &d->pid, d->comm, d->iface, d->addr, d->kind,
		       d->addr6);

	printable(d->comm);
	printable(d->iface);
	printable(d->addr);
	printable(d->kind);
	printable(d->addr6);
	return n >= 4;
}

/* Each record into its array's next slot, kept only if it reads whole. */
static bool add_tcp(const char *line, struct ust_dump *d)
{
	struct ust_dump_conn *nc = realloc(d->conns, (d->nconns + 1) * sizeof(*nc));

	if (!nc)
		return false;
	d->conns = nc;
	memset(&nc[d->nconns], 0, sizeof(*nc));
	if (parse_tcp(line, &nc[d->nconns]))
		d->nconns++;
	return true;
}

static bool add_counter(const char *line, struct ust_dump *d)
{
	struct ust_dump_counter *nc = realloc(d->ctrs, (d->nctrs + 1) * sizeof(*nc));

	if (!nc)
		return false;
	d->ctrs = nc;
	if (sscanf(line, "counter %63s %llu", nc[d->nctrs].name, &nc[d->nctrs].value) == 2) {
		printable(nc[d->nctrs].name);
		d->nctrs++;
	}
	return true;
}

bool ust_dump_parse(char *buf, struct ust_dump *d)
{
	char *save = NULL, *line = strtok_r(buf, "\n", &save);

	if (!line || strcmp(line, "ustcp 1") != 0)
		return false;
	while ((line = strtok_r(NULL, "\n", &save))) {
		if (strcmp(line, "end") == 0)
			return true;
		if (strncmp(line, "process ", 8) == 0) {
			if (!parse_process(line, d))
				return false;
		} else if (strncmp(line, "tcp ", 4) == 0) {
			if (!add_tcp(line, d))
				return false;
		} else if (strncmp(line, "counter ", 8) == 0) {
			if (!add_counter(line, d))
				return false;
		}
		/* Other records: a newer stack's; skipped. */
	}
	return false;
}

void ust_dump_free(struct ust_dump *d)
{
	free(d->conns);
	free(d->ctrs);
	d->conns = NULL;
	d->ctrs = NULL;
	d->nconns = d->nctrs = 0;
}
