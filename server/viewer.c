/* viewer.c - see viewer.h. The placeholders are fixed-width, so each
 * variant is the embedded page with a few bytes overwritten in place. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/viewer.h"

extern const unsigned char viewer_html[];
extern const size_t viewer_html_len;

#define BUDGET_MARK "data-budget=\"%%%%%%%%%%%%%%%%%%%%\"" /* 20 digits: any uint64_t */
#define BUDGET_DIGITS 20
#define TRACE_OFF "data-trace=\"off\""
#define TRACE_ON "data-trace=\"on\" " /* the same length */

static char *find(char *page, size_t len, const char *mark)
{
	return memmem(page, len, mark, strlen(mark));
}

int viewer_init(struct viewer *v, uint64_t budget)
{
	char digits[BUDGET_DIGITS + 1];
	size_t len = viewer_html_len;
	char *p = malloc(2 * (len + 1));

	_Static_assert(sizeof TRACE_OFF == sizeof TRACE_ON, "in-place placeholder");
	if (!p)
		return -ENOMEM;
	memcpy(p, viewer_html, len + 1);
	char *b = find(p, len, BUDGET_MARK), *t = find(p, len, TRACE_OFF);
	if (!b || !t) {
		free(p);
		return -EINVAL;
	}
	/* Left-aligned, space-padded: Number() in the page ignores the spaces. */
	snprintf(digits, sizeof digits, "%-*" PRIu64, BUDGET_DIGITS, budget);
	memcpy(b + strlen("data-budget=\""), digits, BUDGET_DIGITS);
	memcpy(p + len + 1, p, len + 1);
	memcpy(p + len + 1 + (t - p), TRACE_ON, strlen(TRACE_ON));
	v->page[0] = p;
	v->page[1] = p + len + 1;
	v->len = len;
	return 0;
}

const char *viewer_page(const struct viewer *v, int trace_allowed, size_t *len)
{
	*len = v->len;
	return v->page[trace_allowed != 0];
}

void viewer_free(struct viewer *v)
{
	free(v->page[0]);
	v->page[0] = v->page[1] = NULL;
}
