/* libFuzzer harness for the configuration (stack/config.c): every USTCP_*
 * variable a local user can set for a program, and XDG_RUNTIME_DIR.
 *
 * Input: records separated by NUL bytes, each NAME=VALUE (a value may hold
 * any other byte, newlines too, as an environment can); the first record of
 * a name counts, as getenv's does. Checked: the result is 0 or -EINVAL; a
 * failure leaves exactly one line of text in err (no control characters,
 * within its size); a success leaves a configuration that keeps its
 * promises (strings terminated, the address a host address of its prefix,
 * passthrough prefixes normalised, buffer sizes ordered, absolute paths). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define MAX_VARS 64

static struct { const char *name; size_t nlen; const char *value; } vars[MAX_VARS];
static unsigned nvars;

static const char *fuzz_getenv(const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < nvars; i++)
		if (vars[i].nlen == n && memcmp(vars[i].name, name, n) == 0)
			return vars[i].value;
	return NULL;
}

static void check_string(const char *s, size_t size)
{
	if (strnlen(s, size) >= size)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *p, *end;
	static struct ust_config c;
	char err[UST_CONFIG_ERR_MAX];
	int r;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	nvars = 0;
	for (p = text, end = text + size; p <= end && nvars < MAX_VARS; p += strlen(p) + 1) {
		char *eq = strchr(p, '=');
		if (!eq)
			continue;
		vars[nvars].name = p;
		vars[nvars].nlen = (size_t)(eq - p);
		vars[nvars].value = eq + 1;
		nvars++;
	}

	memset(err, 0x55, sizeof(err));
	r = ust_config_load(&c, fuzz_getenv, err, sizeof(err));
	if (r != 0 && r != -EINVAL)
		abort();
	if (r) {
		size_t n = strnlen(err, sizeof(err));
		if (n == 0 || n >= sizeof(err))
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f)
				abort(); /* one line, printable */
	} else {
		uint32_t mask = ust_prefix_mask(c.prefix);

		check_string(c.iface, sizeof(c.iface));
		check_string(c.cc, sizeof(c.cc));
		check_string(c.log_file, sizeof(c.log_file));
		check_string(c.pcap, sizeof(c.pcap));
		check_string(c.close_log, sizeof(c.close_log));
		check_string(c.run_dir, sizeof(c.run_dir));
		if (!c.iface[0] || c.prefix > 32 || c.run_dir[0] != '/')
			abort();
		if (c.prefix < 31 && ((c.addr & ~mask) == 0 || (c.addr & ~mask) == ~mask))
			abort(); /* the network's or the broadcast address */
		if (c.n_passthrough > UST_PASSTHROUGH_MAX)
			abort();
		for (unsigned i = 0; i < c.n_passthrough; i++)
			if (c.passthrough[i].net & ~c.passthrough[i].mask)
				abort();
		if (c.rmem[0] > c.rmem[1] || c.rmem[1] > c.rmem[2] || c.wmem[0] > c.wmem[1] ||
		    c.wmem[1] > c.wmem[2] || c.ecn > 2)
			abort();
		if (c.mtu && (c.mtu < 576 || c.mtu > 65535))
			abort();
	}
	free(text);
	return 0;
}
