/* libFuzzer harness for ustcp-stat's reading of a stack's dump
 * (stack/dump.c): root's ustcp-stat reads the control sockets in every
 * user's run directory, so any local user can answer it with any bytes.
 *
 * Input: the bytes a control socket sends (a NUL ends the text, as it ends
 * ustcp-stat's buffer). Checked: every field the parser keeps is
 * terminated within its size and holds only printable ASCII (nothing that
 * could reach root's terminal as an escape sequence), ports are never
 * empty, and the arrays' counts match what was kept; ASan checks the rest,
 * ust_dump_free included. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

static void check_field(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n >= size)
		abort();
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			abort();
}

#define CHECK(field) check_field(field, sizeof(field))

static void check_dump(const struct ust_dump *d)
{
	CHECK(d->comm);
	CHECK(d->iface);
	CHECK(d->addr);
	CHECK(d->kind);
	CHECK(d->addr6);
	if ((d->nconns && !d->conns) || (d->nctrs && !d->ctrs))
		abort();
	for (size_t i = 0; i < d->nconns; i++) {
		const struct ust_dump_conn *c = &d->conns[i];
		CHECK(c->state);
		CHECK(c->timer);
		CHECK(c->laddr);
		CHECK(c->lport);
		CHECK(c->raddr);
		CHECK(c->rport);
		if (!c->lport[0] || !c->rport[0] || !c->state[0] || !c->timer[0])
			abort();
	}
	for (size_t i = 0; i < d->nctrs; i++) {
		CHECK(d->ctrs[i].name);
		if (!d->ctrs[i].name[0])
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct ust_dump d;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	/* ustcp-stat's defaults: the pid from the socket's name */
	memset(&d, 0, sizeof(d));
	d.pid = 4242;
	strcpy(d.kind, "program");
	(void)ust_dump_parse(text, &d);
	check_dump(&d);
	ust_dump_free(&d);
	if (d.conns || d.ctrs || d.nconns || d.nctrs)
		abort();
	free(text);
	return 0;
}
