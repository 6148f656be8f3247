#include "counters.h"

#define UST_X_NAME(e, name, desc) name,
static const char *const drop_names[UST_DROP_MAX] = { "ok", UST_DROP_LIST(UST_X_NAME) };
static const char *const event_names[UST_EVENT_MAX] = { UST_EVENT_LIST(UST_X_NAME) };
#undef UST_X_NAME

const char *ust_drop_name(enum ust_drop d)
{
	return (unsigned)d < UST_DROP_MAX ? drop_names[d] : "?";
}

const char *ust_event_name(enum ust_event e)
{
	return (unsigned)e < UST_EVENT_MAX ? event_names[e] : "?";
}

void ust_counters_print(const struct ust_counters *c, FILE *f)
{
	for (unsigned i = 0; i < UST_EVENT_MAX; i++)
		fprintf(f, "%s %llu\n", event_names[i], (unsigned long long)c->event[i]);
	for (unsigned i = 1; i < UST_DROP_MAX; i++)
		if (c->drop[i])
			fprintf(f, "drop %s %llu\n", drop_names[i], (unsigned long long)c->drop[i]);
}
