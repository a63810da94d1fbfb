/*
 * help.h - the text of GET /help: what the service answers and how to ask.
 * Constant; any thread.
 */
#ifndef MW_HELP_H
#define MW_HELP_H

extern const char help_text[];

#endif
