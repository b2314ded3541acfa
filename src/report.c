/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report.c - storage for what the decoders find.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "util.h"

struct bounce *
report_add_bounce(struct report *r)
{
	if (r->nbounces == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 4;
		r->bounces = xrealloc(r->bounces, r->cap * sizeof(*r->bounces));
	}
	struct bounce *b = &r->bounces[r->nbounces++];
	memset(b, 0, sizeof(*b));
	b->code = 550;
	b->content = xstrdup("");
	return b;
}

static void
bounce_free(struct bounce *b)
{
	free(b->recipient);
	free(b->final_recipient);
	free(b->original_recipient);
	free(b->action);
	free(b->content);
	free(b->status_comment);
	free(b->reporting_mta);
	free(b->remote_mta);
	free(b->diagnostic_type);
}

void
report_free(struct report *r)
{
	for (size_t i = 0; i < r->nbounces; i++)
		bounce_free(&r->bounces[i]);
	free(r->bounces);
	if (r->feedback_report)
		json_decref(r->feedback_report);
	if (r->trace)
		json_decref(r->trace);
	memset(r, 0, sizeof(*r));
}
